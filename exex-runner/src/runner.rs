//! The runner core: functions, their cursors, event planning, group commit.
//!
//! [`Runner`] is defined here with its constructors and the two entry points
//! that run events ([`Runner::process`], [`Runner::catch_up`]); the rest
//! lives in submodules named for what they hold: `desired` (start, stop,
//! redeploy), `window` (recent blocks and backfill lookups), `planner` (who
//! gets which event), `commit` (execution and the one synced batch) and
//! `report` (safe height, reports, records).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use xxfunc_abi::{ChainBlock, EventKind};
use xxfunc_api::{BlockRef, FunctionId, ObservedState};

use crate::{
    config::RunnerConfig,
    dispatch::Running,
    engine::WasmEngine,
    error::{Result, RunnerError},
    metrics::InvocationMetrics,
    module_cache::{LoadedModule, ModuleCache},
    modules::ModuleSource,
    outcome_log::{LogBounds, OutcomeLog},
    source::{BlockSource, ChainEvent},
    state::StateSource,
    state_db::{Checkpoint, FunctionRecord, StateDb},
};

mod commit;
mod desired;
mod planner;
mod report;
mod retention;
mod sinks;
mod window;

pub(crate) use sinks::SinkChange;
pub use sinks::SinkPolicy;

use planner::Planner;

/// A function the runner knows.
struct Function {
    rec: FunctionRecord,
    module: Option<Arc<LoadedModule>>,
    load_error: Option<String>,
}

impl Function {
    fn runnable(&self) -> bool {
        self.rec.started && self.rec.quarantined.is_none() && self.module.is_some()
    }

    fn observed(&self) -> ObservedState {
        if !self.rec.started {
            ObservedState::Stopped
        } else if let Some(reason) = &self.rec.quarantined {
            ObservedState::Quarantined {
                reason: reason.clone(),
            }
        } else if let Some(reason) = &self.load_error {
            ObservedState::LoadFailed {
                reason: reason.clone(),
            }
        } else {
            ObservedState::Running
        }
    }
}

/// What one call to [`Runner::process`] or [`Runner::catch_up`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BatchSummary {
    /// Events consumed (not counting ones skipped as already processed).
    pub events: usize,
    /// Invocations run.
    pub invocations: usize,
    /// Of which failed.
    pub failures: usize,
    /// Invocations not counted above because a state read could not be answered:
    /// their functions run the same event again later.
    pub unavailable: usize,
}

/// The runner core. Single-threaded control (`&mut self`), parallel dispatch
/// inside [`Runner::process`].
///
/// Exactly-once: every call that runs invocations ends with one synced
/// RocksDB batch holding each affected function's new cursor, counters and
/// outcomes (appended to its outcome log), plus the source checkpoint. A
/// crash before that write loses nothing (the events are re-sent and re-run,
/// deterministically); after it, nothing is re-run.
///
/// The outcome log of each function numbers outcomes 1, 2, 3, ... and their
/// output records (items) contiguously; it is read by seq
/// ([`Runner::outcomes`]) and pruned in the same batch once every consumer
/// acknowledged an outcome and its block is final, or when the function's
/// byte budget forces it (counted in `dropped_by_retention`).
pub struct Runner {
    config: RunnerConfig,
    cache: Arc<ModuleCache>,
    modules: Arc<dyn ModuleSource>,
    db: Arc<StateDb>,
    log: Arc<OutcomeLog>,
    functions: BTreeMap<FunctionId, Function>,
    checkpoint: Checkpoint,
    window: BTreeMap<u64, Arc<ChainBlock>>,
    history: Option<Arc<dyn BlockSource>>,
    totals: BatchSummary,
    metrics: InvocationMetrics,
    /// Jobs still running after the batch that started them was committed.
    running: Vec<Running>,
    /// Jobs that finished and wait for the next commit.
    ready: Vec<crate::dispatch::Done>,
    /// Functions with a recent slow invocation, and how many fast jobs they
    /// had since: their jobs never hold a batch back (see `commit`).
    slow: HashMap<FunctionId, u32>,
    /// Blocks reverted recently, by hash, so a function whose cursor was on
    /// one (it was running when the revert came) is reverted from here.
    orphans: window::Orphans,
    /// Sink changes [`serve`](crate::serve) gives the sink engine.
    sink_changes: Vec<SinkChange>,
    /// Sinks the registry configured, as last applied.
    registry_sinks: sinks::AppliedSinks,
    /// Names of the sinks of `--sink` flags ([`Runner::add_sink`]).
    flag_sinks: std::collections::BTreeSet<String>,
    /// How registry-configured sinks are started.
    sink_policy: SinkPolicy,
    /// Where functions' state reads go (`None`: they answer "state unavailable").
    state: Option<StateSource>,
    /// Functions waiting to run an event again after its state could not be read.
    retry: HashMap<FunctionId, Retry>,
}

/// When a function whose state read was unavailable runs again.
#[derive(Clone, Copy, Debug)]
struct Retry {
    at: std::time::Instant,
    attempts: u32,
}

/// The first wait before running an event again after "state unavailable"; it
/// doubles with every attempt up to [`STATE_RETRY_MAX`].
pub const STATE_RETRY_MIN: std::time::Duration = std::time::Duration::from_millis(100);
/// The longest wait between two attempts.
pub const STATE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(30);

impl Retry {
    fn after(attempts: u32) -> Self {
        let wait = STATE_RETRY_MIN
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
            .min(STATE_RETRY_MAX);
        Self {
            at: std::time::Instant::now() + wait,
            attempts,
        }
    }
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("data_dir", &self.config.data_dir)
            .field("checkpoint", &self.checkpoint)
            .field("functions", &self.functions.len())
            .finish_non_exhaustive()
    }
}

impl Runner {
    /// Opens (or creates) the runner state under `config.data_dir`, builds the
    /// engine, and loads the modules of every started function.
    ///
    /// # Errors
    /// [`RunnerError::Db`] when the database cannot be opened,
    /// [`RunnerError::Engine`] when the engine cannot be built. A module that
    /// fails to load is not an error: its function reports `LoadFailed`.
    pub fn open(config: RunnerConfig, modules: Arc<dyn ModuleSource>) -> Result<Self> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| RunnerError::Artifact {
            path: config.data_dir.clone(),
            source,
        })?;
        // Invocations at once: the workers', the slow lane's, and jobs a
        // batch left running (each function at most one).
        let workers = config.workers.max(1);
        let slots = u32::try_from(workers * (workers + 2) + crate::dispatch::SLOW_THREADS + 2)
            .unwrap_or(1024)
            .min(1024);
        let engine = Arc::new(WasmEngine::new(config.limits.clone(), slots)?);
        let cache = Arc::new(
            ModuleCache::new(engine, Some(&config.data_dir.join("artifacts")))
                .with_artifact_budget(config.artifact_budget_bytes),
        );
        Self::open_with_cache(config, cache, modules)
    }

    /// Like [`Runner::open`] with an existing module cache (and its engine),
    /// e.g. one shared by several runners in a test process.
    ///
    /// # Errors
    /// As [`Runner::open`].
    pub fn open_with_cache(
        config: RunnerConfig,
        cache: Arc<ModuleCache>,
        modules: Arc<dyn ModuleSource>,
    ) -> Result<Self> {
        let db = Arc::new(StateDb::open(&config.data_dir.join("db"))?);
        let checkpoint = db.checkpoint()?;
        // The stored recent blocks, when they end at the checkpoint's tip, are
        // the runner's view of the chain: they refill the window.
        let mut window = BTreeMap::new();
        let recent = db.recent_blocks()?;
        if let (Some(tip), Some(last)) = (checkpoint.tip, recent.last())
            && last.hash == tip.hash
        {
            window.extend(recent.into_iter().map(|b| (b.number, b)));
        }
        let mut runner = Self {
            config,
            cache,
            modules,
            functions: BTreeMap::new(),
            checkpoint,
            window,
            history: None,
            totals: BatchSummary::default(),
            metrics: InvocationMetrics::default(),
            running: Vec::new(),
            ready: Vec::new(),
            slow: HashMap::new(),
            orphans: window::Orphans::default(),
            sink_changes: Vec::new(),
            registry_sinks: sinks::AppliedSinks::new(),
            flag_sinks: std::collections::BTreeSet::new(),
            sink_policy: SinkPolicy::default(),
            state: None,
            retry: HashMap::new(),
            log: Arc::new(OutcomeLog::new(db.clone())),
            db,
        };
        for rec in runner.db.functions()? {
            runner.log.publish(&rec.id, bounds(&rec));
            let mut f = Function {
                rec,
                module: None,
                load_error: None,
            };
            if f.rec.started {
                runner.load(&mut f);
            }
            runner.functions.insert(f.rec.id.clone(), f);
        }
        Ok(runner)
    }

    /// Sets where functions read chain state from (`event.state()`; docs/abi.md §8).
    /// Without one, every state read answers "state unavailable" and the function is
    /// retried, never recorded.
    /// The answers that committed outcomes read are stored with them, and consulted
    /// before the backend (a revert after a restart answers them identically).
    pub fn set_state(&mut self, state: Option<StateSource>) {
        let db: Arc<dyn crate::state::RecordedAnswers> = self.db.clone();
        self.state = state.map(|s| s.with_recorded(db));
    }

    /// Where functions read chain state from.
    pub fn state(&self) -> Option<&StateSource> {
        self.state.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// The module cache (and through it the engine).
    pub fn cache(&self) -> &Arc<ModuleCache> {
        &self.cache
    }

    /// Where the runner stands in its chain source.
    pub fn checkpoint(&self) -> Checkpoint {
        self.checkpoint
    }

    /// Sets where past blocks come from when a function backfills beyond the
    /// runner's in-memory window.
    pub fn set_block_source(&mut self, blocks: Option<Arc<dyn BlockSource>>) {
        self.history = blocks;
    }

    /// Totals since the runner was opened.
    pub fn totals(&self) -> BatchSummary {
        self.totals
    }

    /// Where invocation durations are recorded from now on ([`serve`](crate::serve)
    /// passes its [`StatusHandle`](crate::StatusHandle)'s, so `/metrics` shows them).
    pub fn set_metrics(&mut self, metrics: InvocationMetrics) {
        self.metrics = metrics;
    }

    /// The invocation metrics the runner records into.
    pub fn metrics(&self) -> &InvocationMetrics {
        &self.metrics
    }

    /// Processes events in order (group commit: one synced batch for all of
    /// them). Events with `seq` at or below the checkpoint were processed
    /// before a restart: they only refill the window of recent blocks. An
    /// event with `seq` 0 is numbered after the checkpoint.
    ///
    /// # Errors
    /// [`RunnerError::Envelope`] when a block cannot be framed,
    /// [`RunnerError::Db`] when the batch cannot be written (the runner must
    /// then be reopened: memory may be ahead of disk).
    pub fn process(&mut self, events: &[ChainEvent]) -> Result<BatchSummary> {
        let mut planner = Planner::new(self);
        let mut checkpoint = self.checkpoint;
        let mut consumed = 0;
        for ev in events {
            let seq = if ev.seq == 0 {
                checkpoint.seq + 1
            } else {
                ev.seq
            };
            self.window_apply(ev);
            if seq <= checkpoint.seq {
                continue;
            }
            if let Some(tip) = checkpoint.tip {
                let fits = match ev.kind {
                    EventKind::Commit => ev.block.parent_hash == tip.hash,
                    EventKind::Revert => ev.block.hash == tip.hash,
                };
                if !fits {
                    tracing::warn!(seq, kind = %ev.kind, block = ev.block.number, "event does not extend the runner's tip");
                }
            }
            checkpoint = Checkpoint {
                seq,
                tip: tip_after(ev),
            };
            consumed += 1;
            planner.chain.push((ev.kind, ev.block.clone()));
            planner.plan_event(self, ev)?;
        }
        if consumed == 0 {
            return Ok(BatchSummary::default());
        }
        let mut summary = self.execute(planner, Some(checkpoint))?;
        summary.events = consumed;
        self.totals.events += consumed;
        Ok(summary)
    }

    /// One backfill round: every function behind the tip is given up to
    /// `catch_up_per_round` past blocks. Returns what ran (nothing when every
    /// function is at the tip or waiting for blocks).
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn catch_up(&mut self) -> Result<BatchSummary> {
        let Some(tip) = self.checkpoint.tip else {
            return Ok(BatchSummary::default());
        };
        let mut planner = Planner::new(self);
        let ids: Vec<FunctionId> = planner.positions.keys().cloned().collect();
        for id in ids {
            planner.catch_up(self, &id, tip.number)?;
        }
        self.execute(planner, None)
    }

    /// How many functions have a job that a committed batch left running.
    pub fn running(&self) -> usize {
        self.running.iter().map(|r| r.busy().len()).sum()
    }

    /// Waits for every job a committed batch left running and commits their
    /// outcomes (nothing else runs).
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn finish_running(&mut self) -> Result<BatchSummary> {
        for running in &mut self.running {
            running.take_all(&mut self.ready);
        }
        self.running.clear();
        self.execute(Planner::new(self), None)
    }

    /// Waits for every job still running, commits it, and runs backfill
    /// rounds, until no function has anything left to run (quarantined
    /// functions and blocks that are not available yet end it too). What
    /// tests and a clean stop use to see every outcome of the events so far.
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn settle(&mut self) -> Result<BatchSummary> {
        let mut total = BatchSummary::default();
        loop {
            let committed = self.finish_running()?;
            let caught_up = self.catch_up()?;
            total.invocations += committed.invocations + caught_up.invocations;
            total.failures += committed.failures + caught_up.failures;
            total.unavailable += committed.unavailable + caught_up.unavailable;
            if self.running.is_empty() && committed.invocations + caught_up.invocations == 0 {
                return Ok(total);
            }
        }
    }
}

fn bounds(rec: &FunctionRecord) -> LogBounds {
    LogBounds {
        pruned_to: rec.pruned_to,
        last_seq: rec.last_seq,
        last_item: rec.last_item,
    }
}

fn tip_after(ev: &ChainEvent) -> Option<BlockRef> {
    match ev.kind {
        EventKind::Commit => Some(ev.block_ref()),
        EventKind::Revert => ev.block.number.checked_sub(1).map(|number| BlockRef {
            number,
            hash: ev.block.parent_hash,
        }),
    }
}

pub(crate) fn api_kind(kind: EventKind) -> xxfunc_api::EventKind {
    match kind {
        EventKind::Commit => xxfunc_api::EventKind::Commit,
        EventKind::Revert => xxfunc_api::EventKind::Revert,
    }
}
