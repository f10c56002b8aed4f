//! Floods stdout with 64 MiB, far past any sensible output cap.

use std::io::Write;

#[xxfunc::main]
fn main(_event: xxfunc::Event) -> xxfunc::Result<()> {
    let line = [b'x'; 64 * 1024];
    let mut out = std::io::stdout().lock();
    for _ in 0..1024 {
        out.write_all(&line)?;
    }
    out.flush()?;
    Ok(())
}
