//! The sink engine: delivers each function's outputs to its sinks
//! (`xxfunc_sinks`), off the invocation path.
//!
//! - **One thread per sink**, each with its own single-threaded tokio runtime:
//!   a slow or dead sink never delays invocations (the control thread only
//!   publishes log bounds and wakes consumers), other sinks, or the node.
//! - A sink is a **consumer of its function's outcome log** with its own
//!   cursor ([`SinkCursor`], stored in the runner's database and, as the
//!   acknowledgement, holding retention back: an outcome is pruned only once
//!   every consumer acknowledged it; a budget that prunes anyway is counted in
//!   `dropped_by_retention`, and the sink then stops as `failed`, never
//!   skipping silently).
//! - Outcomes are read by seq after the cursor and fed to the confirmations
//!   filter ([`ConfirmationFilter`], the one the outputs API uses) with the
//!   sink's `confirmations` depth: 0 delivers every block at once and undoes
//!   reorgs with the revert's batch; N delivers a block once N blocks are on
//!   top of it, so reorgs shallower than N are never seen. Each released
//!   outcome is one [`Batch`], delivered **strictly in order**: the next is
//!   only tried once the previous is acknowledged.
//! - Each attempt is bounded by the sink's timeout. A transient failure
//!   (destination down, 5xx, timeout) is retried with exponential backoff
//!   (from [`BACKOFF_MIN`] to [`BACKOFF_MAX`], full jitter over the upper
//!   half) for as long as it lasts, the state showing `retrying`, the
//!   attempts and the last error; a permanent refusal is tried `attempts`
//!   times, then the sink is `failed` until [`StatusHandle::retry_sink`]
//!   (or a restart) resumes it at the same batch.
//! - The cursor moves after each acknowledged batch. A sink that keeps its
//!   cursor at the destination (PostgreSQL, in the transaction of the rows)
//!   answers it on open, and that cursor wins over the runner's; batches of
//!   commits without records are not delivered, the cursor passes them at
//!   the next batch or through [`Sink::checkpoint`].
//!
//! Resuming is exact: the filter restarts at the outcome after the cursor
//! (the oldest outcome still undecided, or the next undelivered one), and
//! items up to the cursor's item seq are not delivered again.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use xxfunc_api::{
    BlockRef, EventKind, FunctionId,
    outputs::{ConfirmationFilter, ItemKind, Released},
};
use xxfunc_sinks::{Batch, DeliveryError, Sink, SinkCursor, SinkKind, SinkSpec};

use crate::{outcome_log::OutcomeLog, runner::SinkChange, service::StatusHandle};

/// First wait after a failed attempt; doubled per failure up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// Outcomes read per page.
const PAGE: usize = 256;
/// Most encoded bytes of outcomes read per page.
const PAGE_BYTES: usize = 4 << 20;
/// How often an idle sink looks for outcomes when not woken.
const POLL: Duration = Duration::from_millis(500);
/// Retrying attempts are logged at most this often per sink.
const WARN_EVERY: Duration = Duration::from_secs(5);
/// How much longer than its deadline [`SinkEngine::join_by`] waits.
const FINISH_GRACE: Duration = Duration::from_millis(200);

/// The consumer name sink `name`'s acknowledgements are stored under.
pub(crate) fn consumer(name: &str) -> String {
    format!("sink:{name}")
}

/// What a sink is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkState {
    /// Opening (connecting, creating tables).
    Starting,
    /// Delivering a batch.
    Delivering,
    /// Caught up with its function's log.
    Idle,
    /// The last attempt failed; trying again after a backoff.
    Retrying,
    /// Stopped on a permanent failure (or a gap in the log): nothing after
    /// its cursor is delivered until a retry.
    Failed,
    /// Its thread returned (the runner stopped).
    Stopped,
}

impl SinkState {
    /// The name in status and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Delivering => "delivering",
            Self::Idle => "idle",
            Self::Retrying => "retrying",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }

    /// Every state, for metrics.
    pub const ALL: [SinkState; 6] = [
        Self::Starting,
        Self::Delivering,
        Self::Idle,
        Self::Retrying,
        Self::Failed,
        Self::Stopped,
    ];
}

/// One sink as status and `/metrics` show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkStatus {
    /// The sink's name.
    pub name: String,
    /// Its function.
    pub function: FunctionId,
    /// Its kind.
    pub kind: SinkKind,
    /// Its destination (without secrets).
    pub target: String,
    /// Its confirmations depth.
    pub confirmations: u64,
    /// What it is doing.
    pub state: SinkState,
    /// Where it stands (acknowledged by the destination).
    pub cursor: SinkCursor,
    /// The block of the last outcome the cursor covers.
    pub block: Option<BlockRef>,
    /// Failed attempts of the current batch (0 when the last one succeeded).
    pub attempts: u64,
    /// The last failure, kept after a success (see `attempts`).
    pub last_error: Option<String>,
    /// Blocks between the function's cursor and the sink's (includes the
    /// confirmations depth).
    pub lag_blocks: u64,
    /// Items of the function's log after the sink's cursor.
    pub lag_records: u64,
    /// Batches acknowledged since the runner started.
    pub delivered_batches: u64,
    /// Records in them.
    pub delivered_records: u64,
    /// Failed attempts since the runner started.
    pub failed_attempts: u64,
}

impl SinkStatus {
    /// As a runner report carries it.
    pub fn report(&self) -> xxfunc_api::sinks::SinkReport {
        xxfunc_api::sinks::SinkReport {
            name: self.name.clone(),
            kind: self.kind,
            target: self.target.clone(),
            confirmations: self.confirmations,
            state: self.state.as_str().to_string(),
            cursor_outcome: self.cursor.outcome,
            cursor_item: self.cursor.item,
            block: self.block,
            attempts: self.attempts,
            last_error: self.last_error.clone(),
            lag_blocks: self.lag_blocks,
            lag_records: self.lag_records,
            delivered_batches: self.delivered_batches,
            delivered_records: self.delivered_records,
        }
    }
}

/// One sink's shared slot: its status, its retry request and its stop request.
#[derive(Debug)]
struct Slot {
    status: Mutex<SinkStatus>,
    retry: AtomicBool,
    /// Asked to stop for good (removed or reconfigured by the registry).
    removed: AtomicBool,
    /// And to forget its cursor then (removed).
    forget: AtomicBool,
}

/// The sinks' statuses, shared by the engine's threads and the
/// [`StatusHandle`].
#[derive(Debug, Default)]
pub(crate) struct SinkBoard {
    slots: Mutex<Vec<Arc<Slot>>>,
}

impl SinkBoard {
    fn add(&self, status: SinkStatus) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            status: Mutex::new(status),
            retry: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            forget: AtomicBool::new(false),
        });
        let mut slots = self.slots.lock();
        slots.retain(|s| s.status.lock().name != slot.status.lock().name);
        slots.push(slot.clone());
        slot
    }

    pub(crate) fn statuses(&self) -> Vec<SinkStatus> {
        self.slots
            .lock()
            .iter()
            .map(|s| s.status.lock().clone())
            .collect()
    }

    /// Takes `slot` off the board (its sink is gone), unless another took its place.
    fn drop_slot(&self, slot: &Arc<Slot>) {
        self.slots.lock().retain(|s| !Arc::ptr_eq(s, slot));
    }

    /// Asks sink `name` to stop for good (forgetting its cursor if `forget`), and takes
    /// it off the board.
    fn stop(&self, name: &str, forget: bool) {
        let mut slots = self.slots.lock();
        slots.retain(|s| {
            if s.status.lock().name != name {
                return true;
            }
            s.forget.store(forget, Ordering::SeqCst);
            s.removed.store(true, Ordering::SeqCst);
            false
        });
    }

    pub(crate) fn retry(&self, name: &str) -> bool {
        let slots = self.slots.lock();
        match slots.iter().find(|s| s.status.lock().name == name) {
            Some(slot) => {
                slot.retry.store(true, Ordering::SeqCst);
                true
            }
            None => false,
        }
    }
}

/// A sink waiting for [`serve`](crate::serve) to start it.
pub(crate) struct PendingSink {
    pub(crate) spec: SinkSpec,
    pub(crate) sink: Box<dyn Sink>,
    pub(crate) runner_id: String,
}

impl std::fmt::Debug for PendingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSink")
            .field("name", &self.spec.name)
            .finish_non_exhaustive()
    }
}

/// The running sink threads.
#[derive(Debug)]
pub(crate) struct SinkEngine {
    log: Arc<OutcomeLog>,
    threads: Vec<(String, JoinHandle<()>, Receiver<()>)>,
    deadline: Option<Instant>,
}

impl SinkEngine {
    /// The engine, with no sink yet: [`SinkEngine::apply`] starts them.
    pub(crate) fn new(log: Arc<OutcomeLog>) -> Self {
        Self {
            log,
            threads: Vec::new(),
            deadline: None,
        }
    }

    /// Applies the runner's sink changes: starts a thread per new sink (one that
    /// takes the place of a stopping sink of the same name waits for it first), stops
    /// removed ones, retries, and shows sinks the runner refused.
    pub(crate) fn apply(&mut self, changes: Vec<SinkChange>, status: &StatusHandle) {
        if changes.is_empty() {
            return;
        }
        self.threads.retain(|(_, thread, _)| !thread.is_finished());
        for change in changes {
            match change {
                SinkChange::Start(pending) => self.start_one(*pending, status),
                SinkChange::Refuse(refused) => {
                    status.sink_board().add(*refused);
                }
                SinkChange::Stop { name, forget } => status.sink_board().stop(&name, forget),
                SinkChange::Retry(name) => {
                    status.sink_board().retry(&name);
                }
            }
        }
        self.log.notify();
    }

    fn start_one(&mut self, pending: PendingSink, status: &StatusHandle) {
        let name = pending.spec.name.clone();
        let after = self
            .threads
            .iter()
            .rev()
            .find(|(n, thread, _)| *n == name && !thread.is_finished())
            .map(|(_, _, done)| done.clone());
        let slot = status.sink_board().add(initial_status(&pending));
        let (done_tx, done) = bounded(0);
        let worker = Worker {
            log: self.log.clone(),
            slot,
            status: status.clone(),
            consumer: consumer(&name),
            spec: pending.spec,
            sink: pending.sink,
            runner_id: pending.runner_id,
            rng: seed(),
            last_warn: None,
            after,
        };
        let thread = std::thread::Builder::new()
            .name(format!("xxfunc-sink-{name}"))
            .spawn(move || worker.run(done_tx))
            .expect("spawning a sink thread");
        self.threads.push((name, thread, done));
    }

    /// Asks every sink to deliver what it can until `deadline` (returning
    /// once caught up), then return.
    pub(crate) fn finish_by(&mut self, deadline: Instant) {
        if !self.threads.is_empty() {
            self.log.finish_by(deadline);
            self.deadline = Some(deadline);
        }
    }

    /// Waits for the threads at most until shortly after the finish
    /// deadline (one still blocked in a delivery returns by itself within
    /// its timeout).
    pub(crate) fn join(mut self) {
        let deadline = self.deadline.unwrap_or_else(Instant::now);
        for (name, thread, done) in std::mem::take(&mut self.threads) {
            match done.recv_deadline(deadline + FINISH_GRACE) {
                Err(RecvTimeoutError::Disconnected) => {
                    if thread.join().is_err() {
                        tracing::error!(sink = %name, "the thread of sink {name} panicked");
                    }
                }
                Ok(()) | Err(RecvTimeoutError::Timeout) => {
                    tracing::warn!(sink = %name, "sink {name} was still delivering at the stop's deadline; its cursor stays at the last acknowledged batch");
                }
            }
        }
    }
}

impl Drop for SinkEngine {
    fn drop(&mut self) {
        if !self.threads.is_empty() && self.deadline.is_none() {
            // Not finished explicitly (an error path): stop at once.
            self.log.finish_by(Instant::now());
        }
    }
}

fn initial_status(p: &PendingSink) -> SinkStatus {
    SinkStatus::new(
        &p.spec.name,
        &p.spec.function,
        p.spec.kind,
        p.sink.describe(),
        p.spec.confirmations,
    )
}

impl SinkStatus {
    /// A sink that has delivered nothing yet, `starting`.
    pub(crate) fn new(
        name: &str,
        function: &FunctionId,
        kind: SinkKind,
        target: String,
        confirmations: u64,
    ) -> Self {
        Self {
            name: name.to_string(),
            function: function.clone(),
            kind,
            target,
            confirmations,
            state: SinkState::Starting,
            cursor: SinkCursor::default(),
            block: None,
            attempts: 0,
            last_error: None,
            lag_blocks: 0,
            lag_records: 0,
            delivered_batches: 0,
            delivered_records: 0,
            failed_attempts: 0,
        }
    }
}

fn seed() -> u64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (nanos ^ 0x9E37_79B9_7F4A_7C15) | 1
}

/// One call to the sink.
enum Op<'a> {
    Open,
    Deliver(&'a Batch),
    Checkpoint(SinkCursor),
}

/// Why a worker stops delivering.
enum Halt {
    /// The runner is stopping.
    Finished,
}

struct Worker {
    log: Arc<OutcomeLog>,
    slot: Arc<Slot>,
    status: StatusHandle,
    consumer: String,
    spec: SinkSpec,
    sink: Box<dyn Sink>,
    runner_id: String,
    rng: u64,
    last_warn: Option<Instant>,
    /// The thread of the sink of this name this one replaces, until it ends.
    after: Option<Receiver<()>>,
}

/// Where the worker stands while feeding outcomes.
struct Position {
    /// Acknowledged by the destination (and stored).
    acked: SinkCursor,
    /// Decided, maybe not yet acknowledged (commits without records).
    cursor: SinkCursor,
    /// Outcomes fed to the filter up to this seq.
    fed: u64,
    /// Blocks of fed outcomes not yet behind the cursor: (seq, block).
    blocks: VecDeque<(u64, BlockRef)>,
    block: Option<BlockRef>,
}

impl Position {
    fn at(cursor: SinkCursor) -> Self {
        Self {
            acked: cursor,
            cursor,
            fed: cursor.outcome,
            blocks: VecDeque::new(),
            block: None,
        }
    }

    /// Moves the decided cursor to `to` (never back), tracking its block.
    fn advance(&mut self, to: SinkCursor) {
        self.cursor.outcome = self.cursor.outcome.max(to.outcome);
        self.cursor.item = self.cursor.item.max(to.item);
        while self
            .blocks
            .front()
            .is_some_and(|(seq, _)| *seq <= self.cursor.outcome)
        {
            self.block = self.blocks.pop_front().map(|(_, b)| b);
        }
    }
}

/// Marks the sink `failed` if its thread unwinds (a bug), so the status
/// never shows a dead sink as delivering.
struct PanicGuard(Arc<Slot>);

impl Drop for PanicGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let mut s = self.0.status.lock();
            s.state = SinkState::Failed;
            s.last_error = Some("the sink's thread panicked (a bug; see the runner's log); restart the runner to resume".into());
        }
    }
}

impl Worker {
    fn run(mut self, _done: Sender<()>) {
        let _guard = PanicGuard(self.slot.clone());
        if let Some(before) = self.after.take() {
            // Disconnected once the sink it replaces has stopped.
            let _ = before.recv();
        }
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                self.fail_for_good(&format!("starting its runtime: {e}"));
                return;
            }
        };
        let _ = self.deliver_loop(&runtime);
        {
            let mut s = self.slot.status.lock();
            if s.state != SinkState::Failed {
                s.state = SinkState::Stopped;
            }
        }
        if self.slot.removed.load(Ordering::SeqCst) {
            self.status.sink_board().drop_slot(&self.slot);
            if self.slot.forget.load(Ordering::SeqCst) {
                match self.log.db().forget_sink(self.name(), &self.consumer) {
                    Ok(()) => {
                        tracing::info!(sink = %self.name(), "sink {} stopped and forgotten", self.name())
                    }
                    Err(e) => {
                        tracing::warn!(sink = %self.name(), "forgetting the cursor of removed sink {}: {e}", self.name())
                    }
                }
            }
        }
    }

    /// Whether to stop now: the runner stops and its deadline passed, or the sink was
    /// removed.
    fn halted(&self) -> bool {
        self.slot.removed.load(Ordering::SeqCst)
            || self.finish_deadline().is_some_and(|d| Instant::now() >= d)
    }

    fn name(&self) -> &str {
        &self.spec.name
    }

    fn finish_deadline(&self) -> Option<Instant> {
        self.log.wake_state().1
    }

    /// Delivers until the runner stops, opening the sink again after a
    /// cursor that does not fit the log was retried.
    fn deliver_loop(&mut self, rt: &tokio::runtime::Runtime) -> Result<(), Halt> {
        loop {
            self.session(rt)?;
        }
    }

    /// Opens the sink and delivers from its cursor; returns (to open again)
    /// after a retry of a cursor ahead of the log.
    fn session(&mut self, rt: &tokio::runtime::Runtime) -> Result<(), Halt> {
        let id = self.spec.function.clone();
        let dest = self.attempt(rt, "opening", Op::Open)?;
        let stored = match self.log.db().sink_cursor(self.name()) {
            Ok(c) => c,
            Err(e) => {
                self.fail_for_good(&format!(
                    "reading its cursor from the runner's database: {e}"
                ));
                return Err(Halt::Finished);
            }
        };
        // A new sink starts at the oldest outcome its function's log keeps.
        let oldest = self.log.bounds_of(&id).map_or(0, |b| b.pruned_to);
        let fresh = SinkCursor {
            outcome: oldest,
            item: 0,
        };
        // The destination's cursor is the truth when it keeps one (its
        // default: it holds nothing yet); otherwise the runner's.
        let start = match dest {
            Some(c) if c == SinkCursor::default() => fresh,
            Some(c) => c,
            None => stored.unwrap_or(fresh),
        };
        tracing::info!(
            sink = %self.name(),
            function = %id,
            target = %self.sink.describe(),
            from_outcome = start.outcome,
            from_item = start.item,
            "sink {} resumes after outcome {} (item {}){}",
            self.name(),
            start.outcome,
            start.item,
            if dest.is_some() { ", the cursor its destination keeps" } else { "" }
        );
        let mut pos = Position::at(start);
        self.store(&mut pos, start);
        let mut filter = ConfirmationFilter::new(self.spec.confirmations);
        loop {
            let (generation, finish_by) = self.log.wake_state();
            if self.halted() {
                return Err(Halt::Finished);
            }
            self.handle_retry_request();
            let Some(bounds) = self.log.bounds_of(&id) else {
                self.set_state(SinkState::Idle);
                if finish_by.is_some() {
                    return Err(Halt::Finished);
                }
                self.log.wait(Some(generation), Instant::now() + POLL);
                continue;
            };
            self.refresh_lag();
            if bounds.last_seq < pos.fed {
                // The cursor saw outcomes this runner's log never had (its
                // data directory was reset, or another runner delivers to
                // the same destination): delivering would mix two logs.
                self.set_failed(&format!(
                    "the sink's cursor (outcome {}, item {}) is ahead of this runner's log of \
                     {id} (last outcome {}): was the runner's data directory reset, or does \
                     another runner deliver to the same destination? Give this sink another \
                     name (or table), or delete its cursor at the destination, then retry",
                    pos.fed, pos.cursor.item, bounds.last_seq
                ));
                self.wait_for_retry()?;
                return Ok(());
            }
            if pos.fed < bounds.pruned_to {
                let message = format!(
                    "outcomes {}..={} of {id} were pruned by the runner's retention budget before \
                     this sink delivered them; retry to continue after them (they are lost for this sink)",
                    pos.fed + 1,
                    bounds.pruned_to
                );
                self.set_failed(&message);
                self.wait_for_retry()?;
                tracing::warn!(sink = %self.name(), "sink {} skips outcomes {}..={} on request", self.name(), pos.fed + 1, bounds.pruned_to);
                pos = Position::at(SinkCursor {
                    outcome: bounds.pruned_to,
                    item: pos.cursor.item,
                });
                filter = ConfirmationFilter::new(self.spec.confirmations);
                continue;
            }
            if pos.fed >= bounds.last_seq {
                if pos.cursor != pos.acked {
                    let cursor = pos.cursor;
                    self.attempt(rt, "storing its cursor", Op::Checkpoint(cursor))?;
                    self.store(&mut pos, cursor);
                    self.refresh_lag();
                }
                self.set_state(SinkState::Idle);
                if finish_by.is_some() {
                    return Err(Halt::Finished);
                }
                self.log.wait(Some(generation), Instant::now() + POLL);
                continue;
            }
            let page = match self.log.db().outcomes(&id, pos.fed, PAGE, PAGE_BYTES) {
                Ok(page) => page,
                Err(e) => {
                    self.note_failure(&DeliveryError::transient(
                        "the runner's database",
                        format!("reading outcomes of {id}: {e}"),
                    ));
                    self.sleep(BACKOFF_MAX)?;
                    continue;
                }
            };
            if page.is_empty() {
                // Pruned between the bounds and the read: the gap check above
                // decides, after a short wait.
                self.log
                    .wait(None, Instant::now() + Duration::from_millis(10));
                continue;
            }
            for outcome in page {
                filter.push(&outcome, outcome.items(&self.runner_id));
                pos.fed = outcome.seq;
                pos.blocks.push_back((outcome.seq, outcome.block));
                let mut released = Vec::new();
                while let Some(r) = filter.pop_released() {
                    released.push(r);
                }
                let end = filter
                    .first_pending_outcome()
                    .unwrap_or(pos.fed + 1)
                    .min(pos.fed + 1);
                let restarts: Vec<u64> = released
                    .iter()
                    .skip(1)
                    .map(|r| r.outcome.min(end))
                    .chain([end])
                    .collect();
                for (r, restart) in released.into_iter().zip(restarts) {
                    self.deliver_released(rt, &mut pos, r, restart)?;
                }
                pos.advance(SinkCursor {
                    outcome: end - 1,
                    item: pos.cursor.item,
                });
                self.refresh_lag();
            }
        }
    }

    /// Delivers one released outcome (unless it has nothing to deliver),
    /// then moves the cursor to `restart - 1`.
    fn deliver_released(
        &mut self,
        rt: &tokio::runtime::Runtime,
        pos: &mut Position,
        released: Released,
        restart: u64,
    ) -> Result<(), Halt> {
        let Released {
            outcome,
            kind,
            block,
            module,
            items,
        } = released;
        let first_item = items.first().map(|i| i.seq);
        let last_item = items.last().map(|i| i.seq);
        let had_items = !items.is_empty();
        let records: Vec<_> = items
            .into_iter()
            .filter(|i| i.seq > pos.cursor.item)
            .collect();
        let next = SinkCursor {
            outcome: restart - 1,
            item: last_item.unwrap_or(pos.cursor.item).max(pos.cursor.item),
        };
        // Commits without records need no delivery; records already
        // delivered (a destination ahead of the runner) neither.
        if records.is_empty() && (kind == EventKind::Commit || had_items) {
            pos.advance(next);
            return Ok(());
        }
        let batch = Batch {
            function: self.spec.function.clone(),
            runner: self.runner_id.clone(),
            kind: ItemKind::of(kind),
            block,
            module,
            outcome,
            first_item: records
                .first()
                .map(|i| i.seq)
                .or(first_item)
                .unwrap_or(pos.cursor.item + 1),
            records,
            cursor: next,
        };
        self.attempt(rt, "delivering", Op::Deliver(&batch))?;
        {
            let mut s = self.slot.status.lock();
            s.delivered_batches += 1;
            s.delivered_records += batch.records.len() as u64;
        }
        pos.advance(next);
        self.store(pos, next);
        Ok(())
    }

    /// Records that the destination acknowledged `cursor`.
    fn store(&mut self, pos: &mut Position, cursor: SinkCursor) {
        pos.acked = cursor;
        if let Err(e) = self.log.db().put_sink_cursor(self.name(), &cursor) {
            tracing::warn!(sink = %self.name(), "storing the cursor of sink {}: {e}", self.name());
        }
        if let Err(e) = self
            .log
            .record_ack(&self.consumer, &self.spec.function, cursor.outcome)
        {
            tracing::warn!(sink = %self.name(), "storing the acknowledgement of sink {}: {e}", self.name());
        }
        let mut s = self.slot.status.lock();
        s.cursor = cursor;
        s.block = pos.block;
    }

    /// Recomputes the lag from the acknowledged cursor, the function's log
    /// and its cursor in the latest report.
    fn refresh_lag(&self) {
        let (last_item, last_seq) = self
            .log
            .bounds_of(&self.spec.function)
            .map_or((0, 0), |b| (b.last_item, b.last_seq));
        let head = self
            .status
            .function_cursor(&self.spec.function)
            .map(|b| b.number);
        let mut s = self.slot.status.lock();
        s.lag_records = last_item.saturating_sub(s.cursor.item);
        s.lag_blocks = match (head, s.block) {
            (Some(h), Some(b)) => h.saturating_sub(b.number),
            // No block acknowledged yet: the events of the log not decided
            // (one per block the function saw, plus its reverts).
            (_, None) if last_item > s.cursor.item => last_seq.saturating_sub(s.cursor.outcome),
            _ => 0,
        };
    }

    /// Runs `call` until it succeeds: transient failures retried with
    /// backoff, permanent ones `attempts` times, then `failed` until a retry.
    fn attempt(
        &mut self,
        rt: &tokio::runtime::Runtime,
        what: &str,
        op: Op<'_>,
    ) -> Result<Option<SinkCursor>, Halt> {
        let mut backoff = BACKOFF_MIN;
        let mut permanent = 0u32;
        loop {
            let deadline = self.finish_deadline();
            if self.halted() {
                return Err(Halt::Finished);
            }
            self.handle_retry_request();
            if self.slot.status.lock().state != SinkState::Retrying {
                self.set_state(SinkState::Delivering);
            }
            let mut timeout = self.spec.timeout;
            if let Some(d) = deadline {
                timeout = timeout.min(d.saturating_duration_since(Instant::now()));
            }
            let sink = self.sink.as_mut();
            let call = async {
                match &op {
                    Op::Open => sink.open().await,
                    Op::Deliver(batch) => sink.deliver(batch).await.map(|()| None),
                    Op::Checkpoint(cursor) => sink.checkpoint(*cursor).await.map(|()| None),
                }
            };
            let result = rt.block_on(async { tokio::time::timeout(timeout, call).await });
            let error = match result {
                Ok(Ok(value)) => {
                    let mut s = self.slot.status.lock();
                    s.attempts = 0;
                    s.state = SinkState::Delivering;
                    if self.last_warn.take().is_some() {
                        tracing::info!(sink = %self.spec.name, "sink {} delivers again", self.spec.name);
                    }
                    return Ok(value);
                }
                Ok(Err(e)) => e,
                Err(_) => DeliveryError::transient(
                    self.sink.describe(),
                    format!("no answer within {timeout:?}"),
                ),
            };
            self.note_failure(&error);
            let attempts = self.slot.status.lock().attempts;
            if error.is_permanent() {
                permanent += 1;
                if permanent >= self.spec.attempts {
                    self.set_failed(&format!(
                        "{what} failed permanently after {permanent} attempt(s): {error}"
                    ));
                    self.wait_for_retry()?;
                    permanent = 0;
                    backoff = BACKOFF_MIN;
                    continue;
                }
            }
            self.set_state(SinkState::Retrying);
            self.refresh_lag();
            let now = Instant::now();
            if self
                .last_warn
                .is_none_or(|t| now.duration_since(t) >= WARN_EVERY)
            {
                tracing::warn!(
                    sink = %self.spec.name,
                    attempts,
                    "sink {}: {what}: {error}; retrying in {backoff:?} (attempt {attempts})",
                    self.spec.name
                );
                self.last_warn = Some(now);
            }
            let wait = self.jitter(backoff);
            self.sleep(wait)?;
            backoff = (backoff * 2).min(BACKOFF_MAX);
        }
    }

    /// Full jitter over the upper half: a wait in `[d/2, d]`.
    fn jitter(&mut self, d: Duration) -> Duration {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let half = d / 2;
        let extra = (half.as_nanos() as u64).max(1);
        half + Duration::from_nanos(self.rng % extra)
    }

    /// Sleeps `d`, returning early on a retry request; `Err` when the runner
    /// is stopping and the wait would pass its deadline.
    fn sleep(&self, d: Duration) -> Result<(), Halt> {
        let until = Instant::now() + d;
        if self
            .finish_deadline()
            .is_some_and(|deadline| until > deadline)
        {
            return Err(Halt::Finished);
        }
        while Instant::now() < until {
            if self.slot.removed.load(Ordering::SeqCst) {
                return Err(Halt::Finished);
            }
            if self.slot.retry.load(Ordering::SeqCst) {
                return Ok(());
            }
            self.log
                .wait(None, until.min(Instant::now() + Duration::from_millis(50)));
            if self
                .finish_deadline()
                .is_some_and(|deadline| until > deadline)
            {
                return Err(Halt::Finished);
            }
        }
        Ok(())
    }

    /// Waits in `failed` until a retry is asked; `Err` when the runner stops.
    fn wait_for_retry(&self) -> Result<(), Halt> {
        loop {
            if self.slot.retry.swap(false, Ordering::SeqCst) {
                tracing::info!(sink = %self.spec.name, "sink {} resumes on request", self.spec.name);
                let mut s = self.slot.status.lock();
                s.state = SinkState::Delivering;
                s.attempts = 0;
                return Ok(());
            }
            if self.finish_deadline().is_some() || self.slot.removed.load(Ordering::SeqCst) {
                return Err(Halt::Finished);
            }
            self.log
                .wait(None, Instant::now() + Duration::from_millis(50));
        }
    }

    /// A retry asked while not failed only shortens the current backoff.
    fn handle_retry_request(&self) {
        if self.slot.status.lock().state != SinkState::Failed {
            self.slot.retry.store(false, Ordering::SeqCst);
        }
    }

    fn note_failure(&self, error: &DeliveryError) {
        let mut s = self.slot.status.lock();
        s.attempts += 1;
        s.failed_attempts += 1;
        s.last_error = Some(error.to_string());
    }

    fn set_state(&self, state: SinkState) {
        self.slot.status.lock().state = state;
    }

    fn set_failed(&self, message: &str) {
        tracing::error!(sink = %self.spec.name, "sink {} failed: {message}; it delivers nothing more until a retry", self.spec.name);
        let mut s = self.slot.status.lock();
        s.state = SinkState::Failed;
        s.last_error = Some(message.to_string());
    }

    fn fail_for_good(&self, message: &str) {
        self.set_failed(message);
    }
}
