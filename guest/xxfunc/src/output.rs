//! Output records: one JSON line each on stdout, buffered and flushed at exit.

use crate::error::Result;
use serde::Serialize;
use std::cell::RefCell;
use std::io::Write;

/// Records are flushed to stdout whenever this much is buffered, and at exit.
const FLUSH_AT: usize = 64 * 1024;

thread_local! {
    static STDOUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Writes `record` as one line of JSON to stdout (the function's output).
///
/// Output is buffered and flushed when the function returns, so a function that fails
/// midway still may have written part of its records; the runner discards the output of a
/// failed invocation.
///
/// # Errors
///
/// [`crate::Error::Json`] when `record` cannot be serialized (e.g. a map with non-string
/// keys), [`crate::Error::Io`] when stdout refuses the bytes.
///
/// # Examples
///
/// ```
/// xxfunc::emit(&xxfunc::json!({ "block": 12, "transfers": 3 }))?;
/// # Ok::<(), xxfunc::Error>(())
/// ```
pub fn emit<T: Serialize + ?Sized>(record: &T) -> Result<()> {
    let full = STDOUT.with(|buf| -> Result<bool> {
        let mut buf = buf.borrow_mut();
        serde_json::to_writer(&mut *buf, record)?;
        buf.push(b'\n');
        Ok(buf.len() >= FLUSH_AT)
    })?;
    if full {
        flush()?;
    }
    Ok(())
}

/// Writes buffered records to stdout. The generated `main` calls this before exiting.
///
/// # Errors
///
/// [`crate::Error::Io`] when stdout refuses the bytes.
pub fn flush() -> Result<()> {
    let bytes = STDOUT.with(|buf| std::mem::take(&mut *buf.borrow_mut()));
    if !bytes.is_empty() {
        let mut out = std::io::stdout().lock();
        out.write_all(&bytes)?;
        out.flush()?;
    }
    Ok(())
}
