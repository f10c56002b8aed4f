//! The pusher: a thread of its own (never the control thread) that sends
//! every function's outcome log to the registry by seq and records what the
//! registry acknowledged, so a slow or dead gateway never delays an
//! invocation.
//!
//! - It reads pages from the runner's database, starting after the stored
//!   acknowledgement (so a restart resumes there), at most [`PAGE_BYTES`] of
//!   encoded outcomes per page (at least one outcome), and calls
//!   [`Registry::push_outcomes`]. The answer's `head` becomes the
//!   acknowledgement; a `head_before` below the acknowledgement means the
//!   registry lost outcomes (restored or reset), and the pusher rewinds to it
//!   and resends what the log still keeps.
//! - On an error it keeps everything and retries with a backoff from
//!   [`BACKOFF_MIN`] to [`BACKOFF_MAX`], warning at most every
//!   [`WARN_EVERY`].
//! - It is woken after every commit, and polls every [`POLL`] anyway. When
//!   [`Pusher::finish`] is called (a clean stop) it pushes what it can until
//!   the deadline, then returns.

use std::{
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use xxfunc_api::{FunctionId, outputs::OutcomesPage};

use crate::{
    error::RunnerError,
    outcome_log::{LogBounds, OutcomeLog},
    registry::Registry,
    service::StatusHandle,
};

/// The consumer name the registry's acknowledgements are stored under.
pub(crate) const CONSUMER: &str = "registry";

/// Most encoded bytes of outcomes in one page (a single larger outcome is
/// still sent alone): well under the gateway's default body limit.
pub(crate) const PAGE_BYTES: usize = 4 << 20;

/// How often the pusher looks for outcomes when not woken.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// First wait after a failed push; doubled per failure up to [`BACKOFF_MAX`].
pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(100);

/// Longest wait between two attempts.
pub(crate) const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Failed pushes are logged at most this often.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(5);

/// Why a push did not advance.
#[derive(Debug, thiserror::Error)]
enum PushError {
    #[error("pushing outcomes of {id}: {source}")]
    Registry {
        id: FunctionId,
        #[source]
        source: Box<RunnerError>,
    },
    #[error("reading outcomes of {id} from the runner's database: {source}")]
    Db {
        id: FunctionId,
        #[source]
        source: Box<RunnerError>,
    },
    #[error(
        "the registry acknowledged outcomes of {id} only up to seq {head} after a page of \
         seqs {first}..={last}"
    )]
    NoProgress {
        id: FunctionId,
        head: u64,
        first: u64,
        last: u64,
    },
}

/// The running pusher thread.
#[derive(Debug)]
pub(crate) struct Pusher {
    log: Arc<OutcomeLog>,
    thread: Option<JoinHandle<()>>,
}

impl Pusher {
    /// Starts pushing `log` to `registry`, publishing the outcomes still
    /// pending in `status`.
    pub(crate) fn start(
        log: Arc<OutcomeLog>,
        registry: Arc<dyn Registry>,
        status: StatusHandle,
    ) -> Self {
        let thread = {
            let log = log.clone();
            std::thread::Builder::new()
                .name("xxfunc-pusher".into())
                .spawn(move || run(&log, registry.as_ref(), &status))
                .expect("spawning the outcome pusher thread")
        };
        Self {
            log,
            thread: Some(thread),
        }
    }

    /// Pushes what it can within `within`, then stops the thread and waits
    /// for it.
    pub(crate) fn finish(mut self, within: Duration) {
        self.log.finish_by(Instant::now() + within);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the outcome pusher thread panicked");
        }
    }
}

impl Drop for Pusher {
    fn drop(&mut self) {
        if self.thread.is_some() {
            // Not finished explicitly (an error path): stop at once.
            self.log.finish_by(Instant::now());
        }
    }
}

fn run(log: &OutcomeLog, registry: &dyn Registry, status: &StatusHandle) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u64;
    let mut last_warn: Option<Instant> = None;
    loop {
        let (generation, finish_by) = log.wake_state();
        let round = push_round(log, registry);
        status.set_outcomes_pending(Some(log.pending(CONSUMER)));
        let now = Instant::now();
        match round {
            Ok(more) => {
                if failures > 0 {
                    tracing::info!(
                        failures,
                        "pushing outcomes to the registry works again after {failures} failed attempt(s)"
                    );
                    failures = 0;
                    last_warn = None;
                }
                backoff = BACKOFF_MIN;
                if finish_by.is_some_and(|d| !more || now >= d) {
                    return;
                }
                if !more {
                    log.wait(Some(generation), now + POLL);
                }
            }
            Err(e) => {
                failures += 1;
                if last_warn.is_none_or(|t| now.duration_since(t) >= WARN_EVERY) {
                    tracing::warn!(
                        failures,
                        "{e}; keeping the outcomes and retrying (attempt {failures}, next in {backoff:?})"
                    );
                    last_warn = Some(now);
                }
                if let Some(deadline) = finish_by
                    && now + backoff > deadline
                {
                    let pending = log.pending(CONSUMER);
                    tracing::warn!(
                        pending,
                        "stopping with {pending} outcome(s) not acknowledged by the registry; \
                         they are kept and sent after the next start"
                    );
                    return;
                }
                log.wait(None, now + backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One page per function that has outcomes to send. Returns whether any
/// function may have more.
fn push_round(log: &OutcomeLog, registry: &dyn Registry) -> Result<bool, PushError> {
    let mut more = false;
    for (id, bounds) in log.bounds() {
        more |= push_page(log, registry, &id, bounds)?;
    }
    Ok(more)
}

/// Sends the next page of `id`'s log, if any. Returns whether more remain.
fn push_page(
    log: &OutcomeLog,
    registry: &dyn Registry,
    id: &FunctionId,
    bounds: LogBounds,
) -> Result<bool, PushError> {
    let acked = log.ack(CONSUMER, id);
    let after = acked.max(bounds.pruned_to);
    if after >= bounds.last_seq {
        return Ok(false);
    }
    let outcomes = log
        .db()
        .outcomes(id, after, usize::MAX, PAGE_BYTES)
        .map_err(|source| PushError::Db {
            id: id.clone(),
            source: Box::new(source),
        })?;
    let (Some(first), Some(last)) = (
        outcomes.first().map(|o| o.seq),
        outcomes.last().map(|o| o.seq),
    ) else {
        // Pruned since the bounds were published (the budget forced it).
        return Ok(false);
    };
    let page = OutcomesPage {
        id: id.clone(),
        outcomes,
    };
    let ack = registry
        .push_outcomes(&page)
        .map_err(|source| PushError::Registry {
            id: id.clone(),
            source: Box::new(source),
        })?;
    if ack.head_before < acked {
        tracing::warn!(
            id = %id,
            "the registry holds outcomes of {id} only up to seq {}, but had acknowledged {acked}: \
             it lost some (restored or reset); resending what this runner keeps after seq {}",
            ack.head_before,
            ack.head_before
        );
        record(log, id, ack.head_before);
        return Ok(true);
    }
    if ack.head > last {
        tracing::warn!(
            id = %id,
            "the registry holds outcomes of {id} up to seq {}, beyond this runner's seq {last}: \
             they come from another runner with the same runner id, or an earlier data directory",
            ack.head
        );
    }
    let head = ack.head.min(last);
    if head < first {
        return Err(PushError::NoProgress {
            id: id.clone(),
            head: ack.head,
            first,
            last,
        });
    }
    record(log, id, head);
    Ok(head < bounds.last_seq)
}

fn record(log: &OutcomeLog, id: &FunctionId, seq: u64) {
    if let Err(e) = log.record_ack(CONSUMER, id, seq) {
        tracing::warn!(id = %id, "storing the registry's acknowledgement of seq {seq}: {e}");
    }
}
