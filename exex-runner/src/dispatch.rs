//! Runs planned deliveries: functions in parallel on a bounded number of
//! threads, each function's deliveries strictly in order on one thread.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use bytes::Bytes;
use parking_lot::Mutex;
use xxfunc_abi::{ChainBlock, EventKind};

use crate::{
    engine::WasmEngine,
    invoke::{EventInput, Outcome},
    module_cache::LoadedModule,
    state_db::Position,
};

/// One event for one function, and where the function stands after it.
#[derive(Clone, Debug)]
pub(crate) struct Delivery {
    pub(crate) kind: EventKind,
    pub(crate) block: Arc<ChainBlock>,
    pub(crate) envelope: Bytes,
    pub(crate) after: Position,
}

/// A function's deliveries for one batch.
pub(crate) struct Job {
    pub(crate) module: Arc<LoadedModule>,
    pub(crate) deliveries: Vec<Delivery>,
    /// Failures in a row before this batch.
    pub(crate) consecutive_failures: u64,
}

/// Runs every job and returns, per job in the same order, the outcomes of
/// its deliveries. A job stops early once its consecutive failures reach
/// `quarantine_after` (the remaining deliveries are not run).
pub(crate) fn run_jobs(
    engine: &WasmEngine,
    jobs: &[Job],
    workers: usize,
    quarantine_after: u64,
) -> Vec<Vec<Outcome>> {
    let run = |job: &Job| {
        let mut consecutive = job.consecutive_failures;
        let mut outcomes = Vec::with_capacity(job.deliveries.len());
        for d in &job.deliveries {
            let outcome = engine.invoke(
                &job.module,
                EventInput {
                    envelope: &d.envelope,
                    timestamp: d.block.timestamp,
                    block_hash: &d.block.hash.0,
                },
            );
            consecutive = if outcome.is_ok() { 0 } else { consecutive + 1 };
            outcomes.push(outcome);
            if consecutive >= quarantine_after {
                break;
            }
        }
        outcomes
    };
    let threads = workers.max(1).min(jobs.len());
    if threads <= 1 {
        return jobs.iter().map(run).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Vec<Outcome>>>> = Mutex::new(vec![None; jobs.len()]);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    let out = run(job);
                    results.lock()[i] = Some(out);
                }
            });
        }
    });
    results
        .into_inner()
        .into_iter()
        .map(|r| r.expect("every job index is claimed by exactly one worker"))
        .collect()
}
