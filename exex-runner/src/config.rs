//! Runner configuration: invocation limits and scheduling knobs.

use std::{path::PathBuf, time::Duration};

use crate::state::StateLimits;

/// Limits applied to every invocation. A breach fails that invocation with a
/// reason naming the limit; it never affects other functions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall time of one invocation, enforced with epoch interruption (the
    /// engine's epoch advances every [`Limits::EPOCH_TICK`], so the effective
    /// limit is this rounded up to the next tick).
    pub wall_time: Duration,
    /// Optional fuel (deterministic instruction budget). Fuel costs a few
    /// percent of guest speed; epochs alone bound time but not determinism.
    pub fuel: Option<u64>,
    /// Linear memory of one instance, in bytes.
    pub memory_bytes: usize,
    /// Bytes a guest may write to stdout (its output) per invocation.
    pub stdout_bytes: usize,
    /// Bytes a guest may write to stderr (its log) per invocation.
    pub stderr_bytes: usize,
    /// Host calls, gas per call and answer bytes of the state reads of one invocation.
    pub state: StateLimits,
}

impl Limits {
    /// How often the epoch ticker advances the engine's epoch.
    pub const EPOCH_TICK: Duration = Duration::from_millis(5);
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            wall_time: Duration::from_secs(1),
            fuel: None,
            memory_bytes: 64 << 20,
            stdout_bytes: 1 << 20,
            stderr_bytes: 256 << 10,
            state: StateLimits::default(),
        }
    }
}

/// Everything needed to open a [`Runner`](crate::Runner).
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Directory of the runner's own state: `db/` (cursors and outcomes) and
    /// `artifacts/` (precompiled modules).
    pub data_dir: PathBuf,
    /// Invocation limits.
    pub limits: Limits,
    /// Functions run in parallel on at most this many threads (each function
    /// still strictly in order).
    pub workers: usize,
    /// Consecutive failed invocations after which a function is quarantined.
    pub quarantine_after: u64,
    /// How long a batch waits for its slowest function (isolation). Functions
    /// still running then are committed by a later batch, so the others'
    /// records become durable and visible without waiting for them.
    pub detach_after: Duration,
    /// An invocation at least this long makes its function slow: its job
    /// ends there (the rest is planned again), and its next jobs run at once
    /// on low-priority threads of their own, never holding a batch back, until
    /// an invocation of it is fast again.
    pub slow_invocation: Duration,
    /// Most events committed in one synced batch (group commit).
    pub max_batch_events: usize,
    /// Most past blocks a lagging (backfilling) function is given per round,
    /// so one backfill never stalls the functions at the head for long.
    pub catch_up_per_round: u64,
    /// Blocks on top of an outcome's block after which it is final: an
    /// outcome is pruned from its function's log once every consumer
    /// acknowledged it (without consumers, at once) and its block is at
    /// least this many blocks below the tip. Pruning happens in the commit
    /// batch, so it never costs an extra write.
    pub finality_depth: u64,
    /// Encoded bytes of outcomes kept per function. When a function's log
    /// grows past it, its oldest outcomes are pruned even if a consumer has
    /// not acknowledged them or they are not final yet; those a consumer had
    /// not acknowledged are counted in `Counters::dropped_by_retention` and
    /// logged, never dropped silently.
    pub outcome_budget_bytes: u64,
    /// How many recent canonical blocks the runner keeps in memory to serve
    /// backfill without asking the chain source.
    pub block_window: usize,
    /// How many of the last committed blocks are stored on disk with the
    /// checkpoint, so that after a restart the runner can still revert
    /// blocks a reorg replaced while it was down (a JSON-RPC node does not
    /// serve orphaned blocks). 0 stores none.
    pub reorg_blocks: u64,
    /// Bytes of precompiled modules kept in `artifacts/` (least recently used
    /// evicted first; see [`crate::ModuleCache::with_artifact_budget`]).
    pub artifact_budget_bytes: u64,
}

impl RunnerConfig {
    /// Defaults for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            limits: Limits::default(),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            quarantine_after: 5,
            detach_after: Duration::from_millis(500),
            slow_invocation: Duration::from_millis(200),
            max_batch_events: 64,
            catch_up_per_round: 256,
            finality_depth: 64,
            outcome_budget_bytes: 256 << 20,
            block_window: 1024,
            reorg_blocks: 64,
            artifact_budget_bytes: crate::DEFAULT_ARTIFACT_BUDGET,
        }
    }
}
