//! What `#[xxfunc::main]` expands to: reading stdin, the executor, and the exit protocol.
//!
//! Exit codes (also in `docs/abi.md`): 0 success, 1 the function returned an error or
//! output could not be written, 2 stdin was not a valid envelope, 101 a panic.

use crate::event::Event;
use std::fmt::Display;
use std::future::Future;
use std::io::Read;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// The function returned an error.
pub const EXIT_ERROR: i32 = 1;
/// stdin was not a valid event envelope.
pub const EXIT_BAD_ENVELOPE: i32 = 2;
/// The function panicked.
pub const EXIT_PANIC: i32 = 101;

/// Installs the panic hook and reads stdin to its end. The bytes live for the rest of the
/// program, which handles exactly one event.
pub fn start() -> &'static [u8] {
    std::panic::set_hook(Box::new(|info| {
        eprintln!("xxfunc: function panicked: {info}");
        std::process::exit(EXIT_PANIC);
    }));
    let mut input = Vec::new();
    if let Err(err) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("xxfunc: cannot read the event from stdin: {err}");
        std::process::exit(EXIT_BAD_ENVELOPE);
    }
    Vec::leak(input)
}

/// Decodes the envelope, or exits with [`EXIT_BAD_ENVELOPE`] and the reason on stderr.
pub fn decode_event(input: &'static [u8]) -> Event {
    match Event::from_static(input) {
        Ok(event) => event,
        Err(err) => {
            eprintln!("xxfunc: {err} ({} bytes on stdin)", input.len());
            std::process::exit(EXIT_BAD_ENVELOPE);
        }
    }
}

/// What a `main` may return: `()` or `Result<(), E>` with a displayable error.
pub trait Outcome {
    /// `Err(message)` for a failed run.
    fn into_outcome(self) -> Result<(), String>;
}

impl Outcome for () {
    fn into_outcome(self) -> Result<(), String> {
        Ok(())
    }
}

impl<E: Display> Outcome for Result<(), E> {
    fn into_outcome(self) -> Result<(), String> {
        self.map_err(|e| format!("{e:#}"))
    }
}

/// Flushes emitted records and exits: 0 on success, [`EXIT_ERROR`] with the error on
/// stderr otherwise.
pub fn finish(outcome: impl Outcome) -> ! {
    let result = outcome
        .into_outcome()
        .and_then(|()| crate::output::flush().map_err(|e| e.to_string()));
    match result {
        Ok(()) => std::process::exit(0),
        Err(message) => {
            eprintln!("xxfunc: function failed: {message}");
            std::process::exit(EXIT_ERROR);
        }
    }
}

struct Flag(AtomicBool);

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs a future to completion on the current thread, without a reactor.
///
/// A guest has no I/O to wait for, so a future can only make progress if it wakes itself
/// (as `yield`-style futures do). If it returns `Pending` without having been woken,
/// nothing could ever wake it: that is reported as an error (exit 1) rather than spinning
/// until the runner's time limit.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let flag = Arc::new(Flag(AtomicBool::new(false)));
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        flag.0.store(false, Ordering::SeqCst);
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        if !flag.0.load(Ordering::SeqCst) {
            eprintln!("xxfunc: the async main is pending with nothing left to wake it");
            std::process::exit(EXIT_ERROR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pending once, waking itself first: the executor must poll again.
    struct YieldOnce(bool);

    impl Future for YieldOnce {
        type Output = u32;
        fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<u32> {
            if self.0 {
                Poll::Ready(7)
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[test]
    fn block_on_drives_self_waking_futures() {
        assert_eq!(
            block_on(async { YieldOnce(false).await + YieldOnce(false).await }),
            14
        );
        assert_eq!(block_on(async { 3 }), 3);
    }

    #[test]
    fn outcomes() {
        assert_eq!(().into_outcome(), Ok(()));
        assert_eq!(Ok::<(), String>(()).into_outcome(), Ok(()));
        assert_eq!(Err::<(), _>("boom").into_outcome(), Err("boom".to_string()));
    }
}
