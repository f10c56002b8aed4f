//! The runner core: functions, their cursors, event planning, group commit.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use alloy_primitives::B256;
use bytes::Bytes;
use xxfunc_abi::{ChainBlock, EventKind};
use xxfunc_api::{
    BlockRef, Counters, DesiredState, FeedEntry, FeedSnapshot, FunctionId, FunctionReport,
    FunctionSpec, InvocationRecord, InvocationStatus, ObservedState, RunnerReport, StartFrom,
};

use crate::{
    config::RunnerConfig,
    dispatch::{self, Delivery, Job},
    engine::WasmEngine,
    error::{Result, RunnerError},
    module_cache::{LoadedModule, ModuleCache},
    modules::ModuleSource,
    source::{BlockSource, ChainEvent, block_ref},
    state_db::{Checkpoint, FunctionRecord, Position, StateDb},
};

/// Invocation records kept in memory for the next registry report.
const RECENT_RECORDS: usize = 1024;

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
}

/// The runner core. Single-threaded control (`&mut self`), parallel dispatch
/// inside [`Runner::process`].
///
/// Exactly-once: every call that runs invocations ends with one synced
/// RocksDB batch holding each affected function's new cursor, counters and
/// invocation records, plus the source checkpoint. A crash before that write
/// loses nothing (the events are re-sent and re-run, deterministically); after
/// it, nothing is re-run.
pub struct Runner {
    config: RunnerConfig,
    cache: Arc<ModuleCache>,
    modules: Arc<dyn ModuleSource>,
    db: StateDb,
    functions: BTreeMap<FunctionId, Function>,
    checkpoint: Checkpoint,
    window: BTreeMap<u64, Arc<ChainBlock>>,
    history: Option<Arc<dyn BlockSource>>,
    recent: VecDeque<InvocationRecord>,
    totals: BatchSummary,
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
        let slots = u32::try_from(config.workers.max(1) * 2 + 2).unwrap_or(64);
        let engine = Arc::new(WasmEngine::new(config.limits.clone(), slots)?);
        let cache = Arc::new(ModuleCache::new(
            engine,
            Some(&config.data_dir.join("artifacts")),
        ));
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
        let db = StateDb::open(&config.data_dir.join("db"))?;
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
            recent: VecDeque::new(),
            totals: BatchSummary::default(),
            db,
        };
        for rec in runner.db.functions()? {
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

    /// The last blocks the runner committed, oldest first, ending at the
    /// checkpoint's tip (at most [`RunnerConfig::reorg_blocks`]; after a
    /// restart, those stored on disk). [`serve`](crate::serve) hands them to
    /// the chain source, so it can revert blocks the node no longer has.
    pub fn recent_blocks(&self) -> Vec<Arc<ChainBlock>> {
        let Some(tip) = self.checkpoint.tip else {
            return Vec::new();
        };
        if self
            .window
            .get(&tip.number)
            .is_none_or(|b| b.hash != tip.hash)
        {
            return Vec::new();
        }
        let keep = usize::try_from(self.config.reorg_blocks).unwrap_or(usize::MAX);
        let mut out: Vec<_> = self
            .window
            .range(..=tip.number)
            .rev()
            .take(keep)
            .map(|(_, b)| b.clone())
            .collect();
        out.reverse();
        out
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

    fn load(&self, f: &mut Function) {
        let hash = f.rec.hash;
        match self.cache.load(&hash, || self.modules.fetch(&hash)) {
            Ok((module, from)) => {
                tracing::info!(id = %f.rec.id, %hash, ?from, "module loaded");
                f.module = Some(module);
                f.load_error = None;
            }
            Err(e) => {
                tracing::warn!(id = %f.rec.id, %hash, "module failed to load: {e}");
                f.module = None;
                f.load_error = Some(e.to_string());
            }
        }
    }

    fn persist(&self, rec: &FunctionRecord) -> Result<()> {
        let mut batch = self.db.batch();
        batch.put_function(rec);
        batch.commit()
    }

    /// Applies the registry's desired state for one function: start (fresh,
    /// per `spec.start`, when `start_generation` changed), stop, or redeploy
    /// (a new hash keeps the cursor and runs from the next event). A new
    /// start or a redeploy clears quarantine. Takes effect for the next event.
    ///
    /// # Errors
    /// [`RunnerError::Db`] when the change cannot be persisted. A module that
    /// fails to load is reported as `LoadFailed`, not returned.
    pub fn apply(&mut self, spec: &FunctionSpec) -> Result<()> {
        let started = spec.desired == DesiredState::Started;
        let fresh_position = |tip: Option<BlockRef>| match spec.start {
            StartFrom::Block(number) => Position::From { number },
            StartFrom::Head => tip.map_or(Position::Head, |t| Position::From {
                number: t.number + 1,
            }),
        };
        let tip = self.checkpoint.tip;
        let mut f = match self.functions.remove(&spec.id) {
            Some(f) => f,
            None if !started => return Ok(()),
            None => Function {
                rec: FunctionRecord {
                    id: spec.id.clone(),
                    hash: spec.hash,
                    started: true,
                    start_generation: spec.start_generation,
                    position: fresh_position(tip),
                    counters: Counters::default(),
                    quarantined: None,
                    last_error: None,
                    next_record: 0,
                },
                module: None,
                load_error: None,
            },
        };
        let before = f.rec.clone();
        if started {
            if spec.start_generation != f.rec.start_generation {
                f.rec.start_generation = spec.start_generation;
                f.rec.position = fresh_position(tip);
                f.rec.quarantined = None;
                f.rec.counters.consecutive_failures = 0;
            }
            if spec.hash != f.rec.hash {
                f.rec.hash = spec.hash;
                f.rec.quarantined = None;
                f.rec.counters.consecutive_failures = 0;
            }
            f.rec.started = true;
            if f.module.as_ref().is_none_or(|m| *m.hash() != f.rec.hash) {
                self.load(&mut f);
            }
        } else {
            f.rec.started = false;
            if spec.hash != f.rec.hash {
                f.rec.hash = spec.hash;
            }
            f.module = None;
        }
        if f.rec != before || before.next_record == 0 {
            tracing::info!(id = %spec.id, hash = %spec.hash, started, position = ?f.rec.position, "function updated");
            self.persist(&f.rec)?;
        }
        self.functions.insert(spec.id.clone(), f);
        Ok(())
    }

    /// Stops a function the registry no longer lists (its state is kept).
    ///
    /// # Errors
    /// [`RunnerError::Db`] when the change cannot be persisted.
    pub fn remove(&mut self, id: &FunctionId) -> Result<()> {
        if let Some(f) = self.functions.get_mut(id)
            && f.rec.started
        {
            f.rec.started = false;
            f.module = None;
            let rec = f.rec.clone();
            self.persist(&rec)?;
        }
        Ok(())
    }

    /// Applies a whole snapshot: every listed spec, and stops functions it
    /// does not list.
    ///
    /// # Errors
    /// As [`Runner::apply`].
    pub fn sync_snapshot(&mut self, snapshot: &FeedSnapshot) -> Result<()> {
        for spec in &snapshot.functions {
            self.apply(spec)?;
        }
        let listed: Vec<&FunctionId> = snapshot.functions.iter().map(|s| &s.id).collect();
        let gone: Vec<FunctionId> = self
            .functions
            .keys()
            .filter(|id| !listed.contains(id))
            .cloned()
            .collect();
        for id in gone {
            self.remove(&id)?;
        }
        Ok(())
    }

    /// Applies one change-feed entry.
    ///
    /// # Errors
    /// As [`Runner::apply`].
    pub fn apply_feed_entry(&mut self, entry: &FeedEntry) -> Result<()> {
        match &entry.spec {
            Some(spec) => self.apply(spec),
            None => self.remove(&entry.id),
        }
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

    fn window_apply(&mut self, ev: &ChainEvent) {
        match ev.kind {
            EventKind::Commit => {
                self.window.split_off(&ev.block.number);
                self.window.insert(ev.block.number, ev.block.clone());
            }
            EventKind::Revert => {
                if self
                    .window
                    .get(&ev.block.number)
                    .is_some_and(|b| b.hash == ev.block.hash)
                {
                    self.window.remove(&ev.block.number);
                }
            }
        }
        while self.window.len() > self.config.block_window {
            self.window.pop_first();
        }
    }

    fn lookup(&self, number: u64) -> Option<Arc<ChainBlock>> {
        if let Some(b) = self.window.get(&number) {
            return Some(b.clone());
        }
        match self.history.as_ref()?.block(number) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(number, "backfill: fetching the block failed: {e}");
                None
            }
        }
    }

    fn execute(
        &mut self,
        mut planner: Planner,
        checkpoint: Option<Checkpoint>,
    ) -> Result<BatchSummary> {
        let mut blocks = Vec::with_capacity(planner.chain.len());
        if self.config.reorg_blocks > 0 {
            for (kind, block) in std::mem::take(&mut planner.chain) {
                let envelope = match kind {
                    EventKind::Commit => Some(planner.envelope(EventKind::Commit, &block)?),
                    EventKind::Revert => None,
                };
                blocks.push((block.number, envelope));
            }
        }
        let mut ids = Vec::new();
        let mut jobs = Vec::new();
        for (id, deliveries) in planner.plans {
            if deliveries.is_empty() {
                continue;
            }
            let f = &self.functions[&id];
            let module = f
                .module
                .clone()
                .expect("only runnable functions are planned");
            jobs.push(Job {
                module,
                deliveries,
                consecutive_failures: f.rec.counters.consecutive_failures,
            });
            ids.push(id);
        }
        if jobs.is_empty() && checkpoint.is_none() {
            return Ok(BatchSummary::default());
        }
        let results = dispatch::run_jobs(
            self.cache.engine(),
            &jobs,
            self.config.workers,
            self.config.quarantine_after,
        );
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut summary = BatchSummary::default();
        let mut batch = self.db.batch();
        for ((id, job), outcomes) in ids.iter().zip(&jobs).zip(results) {
            let f = self.functions.get_mut(id).expect("planned functions exist");
            for (d, o) in job.deliveries.iter().zip(outcomes) {
                summary.invocations += 1;
                f.rec.counters.invocations += 1;
                if let InvocationStatus::Failed { reason } = &o.status {
                    summary.failures += 1;
                    f.rec.counters.failures += 1;
                    f.rec.counters.consecutive_failures += 1;
                    f.rec.last_error = Some(reason.clone());
                } else {
                    f.rec.counters.consecutive_failures = 0;
                }
                let record = InvocationRecord {
                    id: id.clone(),
                    hash: f.rec.hash,
                    kind: api_kind(d.kind),
                    block: block_ref(&d.block),
                    status: o.status,
                    duration_us: o.duration.as_micros() as u64,
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                    at_ms: now_ms,
                };
                batch.put_record(id, f.rec.next_record, &record);
                f.rec.next_record += 1;
                f.rec.position = d.after;
                if self.recent.len() >= RECENT_RECORDS {
                    self.recent.pop_front();
                }
                self.recent.push_back(record);
            }
            if f.rec.counters.consecutive_failures >= self.config.quarantine_after {
                let reason = format!(
                    "{} consecutive failures; last: {}",
                    f.rec.counters.consecutive_failures,
                    f.rec.last_error.as_deref().unwrap_or("unknown")
                );
                tracing::warn!(id = %id, "quarantined: {reason}");
                f.rec.quarantined = Some(reason);
            }
            if f.rec.next_record > self.config.keep_records {
                batch.prune_records(id, f.rec.next_record - self.config.keep_records);
            }
            batch.put_function(&f.rec);
        }
        for (number, envelope) in &blocks {
            match envelope {
                Some(envelope) => batch.put_block(*number, envelope),
                None => batch.delete_blocks_from(*number),
            }
        }
        if let Some(cp) = checkpoint {
            if let Some(tip) = cp.tip
                && !blocks.is_empty()
            {
                batch.prune_blocks(tip.number.saturating_sub(self.config.reorg_blocks - 1));
            }
            batch.put_checkpoint(&cp);
        }
        batch.commit()?;
        if let Some(cp) = checkpoint {
            self.checkpoint = cp;
        }
        self.totals.invocations += summary.invocations;
        self.totals.failures += summary.failures;
        Ok(summary)
    }

    /// The lowest cursor over started, running functions: every such
    /// function has processed this height, so the node may be told it as
    /// `FinishedHeight`. With no running function it is the tip. Quarantined
    /// and stopped functions do not hold it back (they catch up from their
    /// cursor by number when they run again).
    pub fn safe_height(&self) -> Option<u64> {
        let tip = self.checkpoint.tip.map(|t| t.number);
        let mut lowest: Option<u64> = None;
        for f in self.functions.values().filter(|f| f.runnable()) {
            let h = match f.rec.position {
                Position::Block { block, .. } => Some(block.number),
                Position::From { number } => Some(number.saturating_sub(1)),
                Position::Head => tip,
            };
            if let Some(h) = h {
                lowest = Some(lowest.map_or(h, |l| l.min(h)));
            }
        }
        match (lowest, tip) {
            (Some(l), Some(t)) => Some(l.min(t)),
            (l, t) => l.or(t),
        }
    }

    /// The last `limit` invocation records of `id`, oldest first.
    ///
    /// # Errors
    /// [`RunnerError::UnknownFunction`], or a database error.
    pub fn records(&self, id: &FunctionId, limit: usize) -> Result<Vec<InvocationRecord>> {
        let f = self
            .functions
            .get(id)
            .ok_or_else(|| RunnerError::UnknownFunction(id.clone()))?;
        let from = f.rec.next_record.saturating_sub(limit as u64);
        self.db.records(id, from, limit)
    }

    /// The stdout of every successful invocation of `id` still kept, in order,
    /// tagged with the event kind and block number: `(kind, number, stdout)`.
    ///
    /// # Errors
    /// As [`Runner::records`].
    pub fn outputs(&self, id: &FunctionId) -> Result<Vec<InvocationRecord>> {
        self.records(id, usize::MAX)
    }

    /// One function's report.
    pub fn function_report(&self, id: &FunctionId) -> Option<FunctionReport> {
        self.functions.get(id).map(|f| FunctionReport {
            id: id.clone(),
            hash: f.rec.hash,
            observed: f.observed(),
            cursor: f.rec.position.cursor(),
            last_error: f.rec.last_error.clone(),
            counters: f.rec.counters,
        })
    }

    /// The runner's view of every function, without invocation records.
    pub fn report(&self) -> RunnerReport {
        RunnerReport {
            head: self.checkpoint.tip,
            safe_height: self.safe_height(),
            functions: self
                .functions
                .keys()
                .filter_map(|id| self.function_report(id))
                .collect(),
            invocations: Vec::new(),
        }
    }

    /// [`Runner::report`] plus the invocation records since the previous call
    /// (at most the last 1024).
    pub fn take_report(&mut self) -> RunnerReport {
        let mut report = self.report();
        report.invocations = self.recent.drain(..).collect();
        report
    }

    /// The position of a function (cursor or pending start).
    pub fn position(&self, id: &FunctionId) -> Option<Position> {
        self.functions.get(id).map(|f| f.rec.position)
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

/// Decides, event by event, which functions get what, simulating their
/// positions (which do not depend on outcomes: a failed invocation still
/// consumes its event).
struct Planner {
    positions: BTreeMap<FunctionId, Position>,
    plans: BTreeMap<FunctionId, Vec<Delivery>>,
    budget: HashMap<FunctionId, u64>,
    envelopes: HashMap<(EventKind, B256), Bytes>,
    /// The chain events of this batch, in order (to store recent blocks).
    chain: Vec<(EventKind, Arc<ChainBlock>)>,
}

impl Planner {
    fn new(runner: &Runner) -> Self {
        let positions: BTreeMap<FunctionId, Position> = runner
            .functions
            .iter()
            .filter(|(_, f)| f.runnable())
            .map(|(id, f)| (id.clone(), f.rec.position))
            .collect();
        let budget = positions
            .keys()
            .map(|id| (id.clone(), runner.config.catch_up_per_round))
            .collect();
        Self {
            positions,
            plans: BTreeMap::new(),
            budget,
            envelopes: HashMap::new(),
            chain: Vec::new(),
        }
    }

    fn envelope(&mut self, kind: EventKind, block: &ChainBlock) -> Result<Bytes> {
        if let Some(b) = self.envelopes.get(&(kind, block.hash)) {
            return Ok(b.clone());
        }
        let bytes: Bytes = xxfunc_abi::encode(kind, block)
            .map_err(|source| RunnerError::Envelope {
                number: block.number,
                source,
            })?
            .into();
        self.envelopes.insert((kind, block.hash), bytes.clone());
        Ok(bytes)
    }

    fn push(
        &mut self,
        id: &FunctionId,
        kind: EventKind,
        block: Arc<ChainBlock>,
        after: Position,
    ) -> Result<()> {
        let envelope = self.envelope(kind, &block)?;
        self.positions.insert(id.clone(), after);
        self.plans.entry(id.clone()).or_default().push(Delivery {
            kind,
            block,
            envelope,
            after,
        });
        Ok(())
    }

    fn plan_event(&mut self, runner: &Runner, ev: &ChainEvent) -> Result<()> {
        let ids: Vec<FunctionId> = self.positions.keys().cloned().collect();
        let b = &ev.block;
        for id in ids {
            let pos = self.positions[&id];
            match ev.kind {
                EventKind::Revert => {
                    if let Position::Block { block, first } = pos
                        && block == ev.block_ref()
                    {
                        let after = if b.number <= first {
                            Position::From { number: first }
                        } else {
                            Position::Block {
                                block: BlockRef {
                                    number: b.number - 1,
                                    hash: b.parent_hash,
                                },
                                first,
                            }
                        };
                        self.push(&id, EventKind::Revert, b.clone(), after)?;
                    }
                }
                EventKind::Commit => {
                    let next = match pos {
                        Position::Head => b.number,
                        Position::From { number } => number,
                        Position::Block { block, .. } => block.number + 1,
                    };
                    if next < b.number {
                        self.catch_up(runner, &id, b.number - 1)?;
                    }
                    let first = match self.positions[&id] {
                        Position::Head => Some(b.number),
                        Position::From { number } => (number == b.number).then_some(number),
                        Position::Block { block, first } => (block.number + 1 == b.number
                            && block.hash == b.parent_hash)
                            .then_some(first),
                    };
                    if let Some(first) = first {
                        self.push(
                            &id,
                            EventKind::Commit,
                            b.clone(),
                            Position::Block {
                                block: ev.block_ref(),
                                first,
                            },
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Plans past blocks for `id` up to `target` (inclusive), within budget,
    /// stopping at a block that is unavailable or does not link to its cursor.
    fn catch_up(&mut self, runner: &Runner, id: &FunctionId, target: u64) -> Result<()> {
        loop {
            let pos = self.positions[id];
            let (next, parent, first) = match pos {
                Position::Head => return Ok(()),
                Position::From { number } => (number, None, number),
                Position::Block { block, first } => (block.number + 1, Some(block.hash), first),
            };
            let budget = self
                .budget
                .get_mut(id)
                .expect("budget per planned function");
            if next > target || *budget == 0 {
                return Ok(());
            }
            *budget -= 1;
            let Some(block) = runner.lookup(next) else {
                tracing::debug!(id = %id, number = next, "backfill: block not available yet");
                return Ok(());
            };
            if parent.is_some_and(|p| p != block.parent_hash) {
                tracing::warn!(id = %id, number = next, "backfill: block does not extend the function's cursor");
                return Ok(());
            }
            let after = Position::Block {
                block: block_ref(&block),
                first,
            };
            self.push(id, EventKind::Commit, block, after)?;
        }
    }
}
