//! Runs planned deliveries: functions in parallel, each function's deliveries
//! strictly in order on one thread, on threads that are not tied to the batch
//! that started them.
//!
//! Isolation: a batch waits for its jobs only up to a deadline (and not at all
//! for functions known to be slow, which get a thread each at once); a job
//! still running then finishes on its thread and its outcomes are committed by
//! a later batch, so one function's slowness never holds back another's
//! records. A job also ends after its first slow invocation: the rest of its
//! deliveries are planned again later (the function then lags, and catches up
//! from the block window).

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, unbounded};
use xxfunc_abi::{ChainBlock, EventKind};
use xxfunc_api::FunctionId;
use xxfunc_store::ModuleHash;

use crate::{
    engine::WasmEngine,
    invoke::{EventInput, Outcome},
    module_cache::LoadedModule,
    state::{BlockAt, StateScope, StateSource},
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
    pub(crate) id: FunctionId,
    /// The function's start generation and module when it was planned: a job
    /// whose function was restarted, redeployed or stopped meanwhile is not
    /// committed (its events are planned again for what the function is now).
    pub(crate) generation: u64,
    pub(crate) hash: ModuleHash,
    pub(crate) module: Arc<LoadedModule>,
    pub(crate) deliveries: Vec<Delivery>,
    /// Failures in a row before this batch.
    pub(crate) consecutive_failures: u64,
    /// Where its state reads go.
    pub(crate) state: Option<StateSource>,
}

/// When a job stops early.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cutoffs {
    /// Consecutive failures that quarantine the function.
    pub(crate) quarantine_after: u64,
    /// An invocation at least this long ends the job (its function is slow).
    pub(crate) slow: Duration,
}

/// A finished job: its function, the deliveries it was given, and the
/// outcomes of the first `outcomes.len()` of them, in order.
pub(crate) struct Done {
    pub(crate) job: Arc<Job>,
    pub(crate) outcomes: Vec<Outcome>,
    /// The job stopped because the state at this block could not be read (why): the
    /// delivery after the last outcome runs again later.
    pub(crate) unavailable: Option<(u64, String)>,
}

/// Jobs started on their threads, whose results have not all been taken.
pub(crate) struct Running {
    rx: Receiver<Done>,
    left: Vec<FunctionId>,
    lane: Lane,
    /// The threads' ids, so a batch that leaves them running can lower their
    /// priority.
    threads: Arc<parking_lot::Mutex<Vec<i64>>>,
}

/// Which threads a set of jobs runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lane {
    /// Up to the runner's `workers` threads, at normal priority.
    Normal,
    /// Functions known to be slow: up to [`SLOW_THREADS`] threads at a low
    /// CPU priority, so they take mostly the CPU time others leave.
    Slow,
}

/// Most threads the jobs of slow functions run on at once.
pub(crate) const SLOW_THREADS: usize = 4;

impl Running {
    /// Starts `jobs` on threads of `lane` (at least one, at most one per
    /// job), each taking the next job when it is done with one.
    pub(crate) fn start(
        engine: &Arc<WasmEngine>,
        jobs: Vec<Job>,
        lane: Lane,
        workers: usize,
        cutoffs: Cutoffs,
    ) -> Self {
        let threads = match lane {
            Lane::Normal => workers,
            Lane::Slow => SLOW_THREADS,
        };
        let left = jobs.iter().map(|j| j.id.clone()).collect();
        let (tx, rx) = unbounded();
        let threads = threads.max(1).min(jobs.len());
        let jobs: Arc<Vec<Arc<Job>>> = Arc::new(jobs.into_iter().map(Arc::new).collect());
        let next = Arc::new(AtomicUsize::new(0));
        let ids = Arc::new(parking_lot::Mutex::new(Vec::new()));
        // Each thread takes the next job until none is left.
        let work =
            move |engine: &WasmEngine, jobs: &[Arc<Job>], next: &AtomicUsize, tx: &Sender<Done>| {
                while let Some(job) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (outcomes, unavailable) = run(engine, job, cutoffs);
                    let done = Done {
                        job: job.clone(),
                        outcomes,
                        unavailable,
                    };
                    if tx.send(done).is_err() {
                        break;
                    }
                }
            };
        for _ in 0..threads {
            let mine = (
                engine.clone(),
                jobs.clone(),
                next.clone(),
                tx.clone(),
                ids.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name("xxfunc-invoke".into())
                .spawn(move || {
                    let (engine, jobs, next, tx, ids) = mine;
                    let tid = thread_id();
                    if lane == Lane::Slow {
                        lower_priority(tid);
                    }
                    ids.lock().push(tid);
                    work(&engine, &jobs, &next, &tx);
                    // Off the list before the thread ends (and its id can be
                    // reused): `detach` only touches live threads.
                    ids.lock().retain(|t| *t != tid);
                });
            if let Err(e) = spawned {
                // Without a thread the jobs still run, here, so none is lost.
                tracing::warn!("starting an invocation thread failed: {e}; running inline");
                work(engine, &jobs, &next, &tx);
            }
        }
        Self {
            rx,
            left,
            lane,
            threads: ids,
        }
    }

    /// The functions whose jobs have not been taken yet.
    pub(crate) fn busy(&self) -> &[FunctionId] {
        &self.left
    }

    /// Lowers the CPU priority of its threads: the batch that started them
    /// is committed without them, and they must not slow the next ones.
    pub(crate) fn detach(&self) {
        // Under the lock no listed thread can end, so every id is live.
        for tid in self.threads.lock().iter() {
            lower_priority(*tid);
        }
    }

    /// The lane its jobs run on.
    pub(crate) fn lane(&self) -> Lane {
        self.lane
    }

    /// Whether every result was taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.left.is_empty()
    }

    /// Takes every job's result, waiting for all of them.
    pub(crate) fn take_all(&mut self, out: &mut Vec<Done>) {
        while !self.left.is_empty() {
            match self.rx.recv() {
                Ok(done) => self.taken(done, out),
                Err(_) => return,
            }
        }
    }

    fn taken(&mut self, done: Done, out: &mut Vec<Done>) {
        if let Some(i) = self.left.iter().position(|id| *id == done.job.id) {
            self.left.swap_remove(i);
        }
        out.push(done);
    }

    /// Takes finished jobs, waiting for more until `deadline` (`None`: only
    /// what is ready now).
    pub(crate) fn take(&mut self, deadline: Option<Instant>, out: &mut Vec<Done>) {
        while !self.left.is_empty() {
            let done = match deadline {
                Some(deadline) => {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match self.rx.recv_timeout(wait) {
                        Ok(done) => done,
                        Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match self.rx.try_recv() {
                    Ok(done) => done,
                    Err(_) => return,
                },
            };
            self.taken(done, out);
        }
    }
}

/// Runs one job's deliveries in order, stopping once its consecutive
/// failures reach the quarantine threshold, after a slow invocation, or at one
/// whose state could not be read (that one is not an outcome: it runs again).
fn run(engine: &WasmEngine, job: &Job, cutoffs: Cutoffs) -> (Vec<Outcome>, Option<(u64, String)>) {
    let mut consecutive = job.consecutive_failures;
    let mut outcomes = Vec::with_capacity(job.deliveries.len());
    for d in &job.deliveries {
        let scope = job.state.as_ref().map(|source| StateScope {
            source: source.clone(),
            at: BlockAt {
                number: d.block.number,
                hash: d.block.hash,
            },
            revert: d.kind == EventKind::Revert,
        });
        let outcome = engine.invoke(
            &job.module,
            EventInput {
                envelope: &d.envelope,
                timestamp: d.block.timestamp,
                block_hash: &d.block.hash.0,
                state: scope.as_ref(),
            },
        );
        if let Some(reason) = outcome.unavailable {
            return (outcomes, Some((d.block.number, reason)));
        }
        consecutive = if outcome.is_ok() { 0 } else { consecutive + 1 };
        let slow = outcome.duration >= cutoffs.slow;
        outcomes.push(outcome);
        if consecutive >= cutoffs.quarantine_after || slow {
            break;
        }
    }
    (outcomes, None)
}

/// The calling thread's kernel id (0 where there is none to use).
fn thread_id() -> i64 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        i64::from(unsafe { libc::gettid() })
    }
    #[cfg(not(target_os = "linux"))]
    {
        0
    }
}

/// The nice value of slow functions' threads: about a tenth of a normal
/// thread's CPU share when both want it, so slow functions cannot crowd out
/// the others, yet are not starved into their wall-time limit on a busy machine.
const SLOW_NICE: libc::c_int = 10;

/// Gives thread `tid` of this process a low CPU priority ([`SLOW_NICE`]; a
/// per-thread attribute on Linux), so slow functions never starve the others.
fn lower_priority(tid: i64) {
    #[cfg(target_os = "linux")]
    {
        let Ok(who) = libc::id_t::try_from(tid) else {
            return;
        };
        if who == 0 {
            return;
        }
        // SAFETY: setpriority only reads its arguments; for a thread that has
        // ended meanwhile it fails with ESRCH, which is harmless.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, who, SLOW_NICE) };
        if rc != 0 {
            tracing::debug!(
                "lowering a slow function's thread priority failed: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}
