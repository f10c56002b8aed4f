//! The reporter: a thread of its own (never the control thread) that sends
//! the runner's [`RunnerReport`] to the registry, so a slow or dead gateway
//! never delays an invocation or the ExEx.
//!
//! - The control thread [publishes](Reporter::publish) its latest report
//!   into a slot of one: the latest wins and replaces one not yet sent, so
//!   nothing queues up while the registry hangs. The thread sends whatever
//!   the slot holds as soon as its previous report is answered (or failed).
//! - Every report is bounded by [`REPORT_TIMEOUT`] (on top of whatever the
//!   registry's client allows itself), so the thread is never stuck for long.
//! - Failures are logged at most every [`WARN_EVERY`]; the next published
//!   report is the retry.
//! - [`Reporter::finish`] (a clean stop) hands over the last report, which
//!   supersedes any unsent one and is sent after the report in flight, if
//!   any, so it is the last the registry gets from this thread. It is sent
//!   only before its deadline: `serve` waits for it at most that long, and a
//!   report arriving after `serve` returned could overwrite a restarted
//!   runner's.

use std::{
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use parking_lot::{Condvar, Mutex};
use xxfunc_api::RunnerReport;

use crate::registry::Registry;

/// Longest wait for the registry's answer to one periodic report.
pub(crate) const REPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Failed reports are logged at most this often.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(5);

/// How much longer than the last report's deadline [`Reporter::finish`]
/// waits for the thread to return (it checks the deadline itself).
const FINISH_GRACE: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Slot {
    /// The latest published report, not yet taken by the thread.
    latest: Option<RunnerReport>,
    /// The last report and its deadline, once a clean stop handed it over.
    last: Option<(RunnerReport, Instant)>,
    /// Dropped without a finish: the thread returns after its current report.
    closed: bool,
}

#[derive(Debug, Default)]
struct Shared {
    slot: Mutex<Slot>,
    woken: Condvar,
}

impl Shared {
    fn close(&self) {
        self.slot.lock().closed = true;
        self.woken.notify_all();
    }
}

/// What the thread sends next.
enum Job {
    Periodic(RunnerReport),
    Last(RunnerReport, Instant),
}

/// The running reporter thread.
#[derive(Debug)]
pub(crate) struct Reporter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected once the thread returned.
    done: Receiver<()>,
}

impl Reporter {
    /// Starts sending published reports to `registry`.
    pub(crate) fn start(registry: Arc<dyn Registry>) -> Self {
        let shared = Arc::new(Shared::default());
        let (done_tx, done) = bounded(0);
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("xxfunc-reporter".into())
                .spawn(move || run(&shared, registry.as_ref(), done_tx))
                .expect("spawning the reporter thread")
        };
        Self {
            shared,
            thread: Some(thread),
            done,
        }
    }

    /// Makes `report` the next one sent, replacing one not sent yet. Never
    /// blocks on the registry.
    pub(crate) fn publish(&self, report: RunnerReport) {
        self.shared.slot.lock().latest = Some(report);
        self.shared.woken.notify_all();
    }

    /// Sends `last` (after the report in flight, instead of any unsent one)
    /// if the registry answers within `within`, then stops the thread.
    /// Returns after the thread did, or after `within` (and a little grace)
    /// at the latest, leaving a thread still blocked on the registry behind;
    /// it returns by itself within [`REPORT_TIMEOUT`].
    pub(crate) fn finish(mut self, last: RunnerReport, within: Duration) {
        let deadline = Instant::now() + within;
        {
            let mut slot = self.shared.slot.lock();
            slot.latest = None;
            slot.last = Some((last, deadline));
        }
        self.shared.woken.notify_all();
        let Some(thread) = self.thread.take() else {
            return;
        };
        match self.done.recv_deadline(deadline + FINISH_GRACE) {
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                if thread.join().is_err() {
                    tracing::error!("the reporter thread panicked");
                }
            }
            Ok(()) | Err(RecvTimeoutError::Timeout) => {
                tracing::warn!(
                    "the registry did not answer within {within:?}: stopping without the last \
                     report (it would have shown the functions stopped)"
                );
            }
        }
    }
}

impl Drop for Reporter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Not finished explicitly (an error path): no last report.
            self.shared.close();
        }
    }
}

fn next_job(shared: &Shared) -> Option<Job> {
    let mut slot = shared.slot.lock();
    loop {
        if let Some((report, deadline)) = slot.last.take() {
            return Some(Job::Last(report, deadline));
        }
        if slot.closed {
            return None;
        }
        if let Some(report) = slot.latest.take() {
            return Some(Job::Periodic(report));
        }
        shared.woken.wait(&mut slot);
    }
}

fn run(shared: &Shared, registry: &dyn Registry, _done: Sender<()>) {
    let mut failures = 0u64;
    let mut last_warn: Option<Instant> = None;
    while let Some(job) = next_job(shared) {
        match job {
            Job::Periodic(report) => {
                match registry.report_by(&report, Instant::now() + REPORT_TIMEOUT) {
                    Ok(()) => {
                        if failures > 0 {
                            tracing::info!(
                                failures,
                                "reporting to the registry works again after {failures} failed \
                                 attempt(s)"
                            );
                            failures = 0;
                            last_warn = None;
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        let now = Instant::now();
                        if last_warn.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
                            tracing::warn!(
                                failures,
                                "reporting to the registry: {e} (attempt {failures}; the next \
                                 report is the retry)"
                            );
                            last_warn = Some(now);
                        }
                    }
                }
            }
            Job::Last(report, deadline) => {
                if Instant::now() >= deadline {
                    tracing::warn!(
                        "the last report is not sent: the registry was still answering an \
                         earlier one at the deadline"
                    );
                } else if let Err(e) = registry.report_by(&report, deadline) {
                    tracing::warn!("sending the last report to the registry: {e}");
                }
                return;
            }
        }
    }
}
