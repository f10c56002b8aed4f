//! The runner's main loop: a chain source thread, a registry feed thread, the
//! outcome pusher and reporter threads (with a registry), and the control
//! thread that owns the [`Runner`] and group-commits events (it never waits
//! for the registry once running: it publishes reports to the reporter); and
//! the [`StatusHandle`] through which embedders watch it.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded, select, unbounded};
use parking_lot::{Mutex, RwLock};
use xxfunc_api::{
    BlockRef, FeedEntry, FeedPage, FeedSnapshot, FunctionId, ObservedState, RunnerReport,
};

use crate::{
    error::{Result, RunnerError},
    metrics::InvocationMetrics,
    pusher::{self, Pusher},
    registry::Registry,
    reporter::Reporter,
    runner::Runner,
    sinks::{SinkBoard, SinkEngine, SinkStatus},
    source::{ChainSource, EventSink, SourceMessage},
};

/// How the loop ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UntilDone {
    /// Run until [`StopHandle::stop`] (a node follower, `dev`).
    #[default]
    Stopped,
    /// Also return once the source is exhausted and every function has
    /// caught up (fixture replay, `cargo xxfunc test`).
    SourceEnd,
}

/// Options of [`serve`].
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// When to return.
    pub until: UntilDone,
    /// How often the registry gets a report.
    pub report_every: Duration,
    /// How long the loop waits for an event before a backfill round.
    pub idle: Duration,
    /// With [`UntilDone::SourceEnd`]: how long `serve` lets the sinks catch
    /// up before it returns (a sink that is `failed` does not hold it).
    /// Otherwise a stop gives sinks as long as the outcome pusher (2 s).
    pub sink_drain: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            until: UntilDone::Stopped,
            report_every: Duration::from_secs(1),
            idle: Duration::from_millis(100),
            sink_drain: Duration::from_secs(30),
        }
    }
}

/// Stops a running [`serve`] loop (after its current batch).
#[derive(Clone, Debug, Default)]
pub struct StopHandle(Arc<AtomicBool>);

impl StopHandle {
    /// A new, unset handle.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the loop to return.
    pub fn stop(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether stop was asked.
    pub fn is_stopped(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The runner's status for embedders (`/metrics`, `cargo xxfunc dev`, a node
/// adapter): the latest [`RunnerReport`] (without invocation records),
/// refreshed after every batch; the invocation-duration histograms the
/// runner records into once [`serve`] runs it; and the errors of the node a
/// node adapter asked ([`NodeLink`](crate::NodeLink)). Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct StatusHandle(Arc<Status>);

#[derive(Debug)]
struct Status {
    report: RwLock<RunnerReport>,
    node: Mutex<NodeErrors>,
    metrics: InvocationMetrics,
    outcomes_pending: Mutex<Option<u64>>,
    sinks: SinkBoard,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            report: RwLock::new(RunnerReport {
                head: None,
                safe_height: None,
                functions: Vec::new(),
                invocations: Vec::new(),
            }),
            node: Mutex::new(NodeErrors::default()),
            metrics: InvocationMetrics::default(),
            outcomes_pending: Mutex::new(None),
            sinks: SinkBoard::default(),
        }
    }
}

/// Questions to the node that failed (block hashes for the ExEx's resume
/// point and `FinishedHeight`), as a node adapter's [`NodeLink`](crate::NodeLink)
/// recorded them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeErrors {
    /// How many failed since the runner started.
    pub count: u64,
    /// The last one, as text.
    pub last: Option<String>,
}

/// One in this many repeated node errors is logged (a new error always is).
const NODE_ERROR_LOG_EVERY: u64 = 60;

impl StatusHandle {
    /// The latest report.
    pub fn get(&self) -> RunnerReport {
        self.0.report.read().clone()
    }

    /// The latest report's safe height (without copying the report).
    pub fn safe_height(&self) -> Option<u64> {
        self.0.report.read().safe_height
    }

    /// The node's failures so far.
    pub fn node_errors(&self) -> NodeErrors {
        self.0.node.lock().clone()
    }

    /// The invocation metrics [`serve`] hands to the runner it runs.
    pub fn metrics(&self) -> &InvocationMetrics {
        &self.0.metrics
    }

    /// Outcomes kept but not yet acknowledged by the registry, over all
    /// functions, as the pusher last saw them (`None` without a registry).
    pub fn outcomes_pending(&self) -> Option<u64> {
        *self.0.outcomes_pending.lock()
    }

    /// Every sink's status (state, cursor, attempts, last error, lag), as
    /// its thread last published it; empty before [`serve`] starts them.
    pub fn sinks(&self) -> Vec<SinkStatus> {
        self.0.sinks.statuses()
    }

    /// Asks sink `name` to try again now: a `failed` sink resumes at the
    /// batch it failed on (the attempt count starts over), a `retrying` one
    /// skips the rest of its backoff. Returns whether such a sink runs.
    pub fn retry_sink(&self, name: &str) -> bool {
        self.0.sinks.retry(name)
    }

    pub(crate) fn sink_board(&self) -> &SinkBoard {
        &self.0.sinks
    }

    /// The cursor block of `id` in the latest report.
    pub(crate) fn function_cursor(&self, id: &FunctionId) -> Option<BlockRef> {
        self.0
            .report
            .read()
            .functions
            .iter()
            .find(|f| &f.id == id)
            .and_then(|f| f.cursor)
    }

    /// `report` with each function's sinks as the sink engine shows them.
    pub(crate) fn with_sinks(&self, mut report: RunnerReport) -> RunnerReport {
        let sinks = self.0.sinks.statuses();
        if sinks.is_empty() {
            return report;
        }
        for f in &mut report.functions {
            f.sinks = sinks
                .iter()
                .filter(|s| s.function == f.id)
                .map(SinkStatus::report)
                .collect();
        }
        report
    }

    /// Shows `runner`'s report, with its sinks, from now on.
    pub(crate) fn refresh(&self, runner: &Runner) {
        self.set(self.with_sinks(runner.report()));
    }

    pub(crate) fn set(&self, report: RunnerReport) {
        *self.0.report.write() = report;
    }

    pub(crate) fn set_outcomes_pending(&self, pending: Option<u64>) {
        *self.0.outcomes_pending.lock() = pending;
    }

    /// Counts `error` (a failed question to the node), keeps its text, and
    /// logs it under `xxfunc::exex` with what happens because of it: every
    /// new error, and every 60th repetition of the same one.
    pub(crate) fn record_node_error(&self, error: &RunnerError, consequence: &str) {
        let text = error.to_string();
        let mut node = self.0.node.lock();
        node.count += 1;
        if node.last.as_deref() != Some(text.as_str()) || node.count % NODE_ERROR_LOG_EVERY == 1 {
            tracing::warn!(target: "xxfunc::exex", errors = node.count, "{consequence}: {text}");
        }
        node.last = Some(text);
    }
}

/// The shortest gap between two reports when desired state changed.
const REPORT_CHANGE_AFTER: Duration = Duration::from_millis(50);

/// How long a clean stop keeps pushing outcomes.
const PUSH_FLUSH: Duration = Duration::from_secs(2);

/// How long a clean stop waits for the registry to take the last report.
const LAST_REPORT_WITHIN: Duration = Duration::from_secs(2);

enum Control {
    Entry(FeedEntry),
    /// A new snapshot: the registry followed was replaced or lost entries.
    Snapshot(FeedSnapshot),
}

/// Runs `runner` on `source`, following `registry` (when given) for desired
/// state and pushing every function's outcome log to it (from a thread of
/// its own), until `stop` (or the end of the source, per `options.until`).
/// Returns the runner so an embedder can read outputs afterwards.
///
/// With a registry, the registry is a consumer of the outcome logs: an
/// outcome is pruned only once it acknowledged it (and its block is final),
/// or when a function's retention budget forces it.
///
/// # Errors
/// The first fatal error: the source failed for good, the registry snapshot
/// could not be read, or the runner's database failed.
pub fn serve(
    mut runner: Runner,
    mut source: Box<dyn ChainSource>,
    registry: Option<Arc<dyn Registry>>,
    stop: StopHandle,
    status: StatusHandle,
    options: ServeOptions,
) -> Result<Runner> {
    tracing::info!(source = %source.describe(), checkpoint = ?runner.checkpoint(), "runner starting");
    runner.set_metrics(status.metrics().clone());
    runner.set_block_source(source.blocks());
    source.remember(runner.recent_blocks());
    let closed = Arc::new(AtomicBool::new(false));
    let (event_tx, event_rx) = bounded(4096);
    let sink = EventSink::new(event_tx, closed.clone());
    let resume = runner.checkpoint();
    let source_thread = std::thread::Builder::new()
        .name("xxfunc-source".into())
        .spawn(move || source.run(resume, sink))
        .expect("spawning the chain source thread");

    // The sinks deliver from threads of their own, from now on.
    let mut sinks = SinkEngine::new(runner.outcome_log());
    sinks.apply(runner.take_sink_changes(), &status);

    let (control_tx, control_rx) = unbounded();
    let mut feed_thread: Option<JoinHandle<()>> = None;
    let mut pusher: Option<Pusher> = None;
    let mut reporter: Option<Reporter> = None;
    if let Some(registry) = &registry {
        let snapshot = registry.snapshot()?;
        runner.sync_snapshot(&snapshot)?;
        sinks.apply(runner.take_sink_changes(), &status);
        let log = runner.outcome_log();
        log.add_consumer(pusher::CONSUMER)?;
        pusher = Some(Pusher::start(log, registry.clone(), status.clone()));
        reporter = Some(Reporter::start(registry.clone()));
        let registry = registry.clone();
        let closed = closed.clone();
        let position = FeedPosition::of(&snapshot);
        feed_thread = Some(
            std::thread::Builder::new()
                .name("xxfunc-feed".into())
                .spawn(move || follow_feed(registry.as_ref(), position, &control_tx, &closed))
                .expect("spawning the registry feed thread"),
        );
    }

    let result = event_loop(
        &mut runner,
        &mut sinks,
        &event_rx,
        &control_rx,
        reporter.as_ref(),
        &stop,
        &status,
        &options,
    );
    closed.store(true, Ordering::Relaxed);
    drop(event_rx);
    if let Some(t) = feed_thread {
        let _ = t.join();
    }
    let source_result = source_thread
        .join()
        .unwrap_or_else(|_| Err(RunnerError::SourcePanicked));
    // The last outcomes and the last report go out side by side, each with
    // a deadline, from their own threads: a hanging registry delays the
    // return by those deadlines at most.
    let flush_by = Instant::now() + PUSH_FLUSH;
    if let Some(pusher) = &pusher {
        pusher.finish_by(flush_by);
    }
    let mut sinks = Some(sinks);
    if options.until == UntilDone::SourceEnd && result.is_ok() {
        // A replay to its end: the sinks catch up first, so the last report shows
        // where they ended.
        if let Some(mut engine) = sinks.take() {
            engine.finish_by(Instant::now() + options.sink_drain);
            engine.join();
        }
    } else if let Some(engine) = &mut sinks {
        engine.finish_by(flush_by);
    }
    if let Some(reporter) = reporter {
        // The last report: nothing runs any more once serve returns.
        let mut last = status.with_sinks(runner.report());
        for f in &mut last.functions {
            if f.observed == ObservedState::Running {
                f.observed = ObservedState::Stopped;
            }
        }
        reporter.finish(last, LAST_REPORT_WITHIN);
    }
    if let Some(pusher) = pusher {
        pusher.join_by(flush_by);
    }
    if let Some(engine) = sinks {
        engine.join();
    }
    status.refresh(&runner);
    result?;
    match source_result {
        Ok(()) | Err(RunnerError::Stopped) => Ok(runner),
        Err(e) => Err(e),
    }
}

/// Where the feed thread stands: the registry's epoch and the last entry seen.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FeedPosition {
    epoch: String,
    after: u64,
}

impl FeedPosition {
    fn of(snapshot: &FeedSnapshot) -> Self {
        Self {
            epoch: snapshot.epoch.clone(),
            after: snapshot.seq,
        }
    }

    /// Why `page` says the registry is not the one followed any more: another epoch
    /// (reset or replaced), or a head below the position (restored from a backup).
    /// A registry without epochs (older gateways) is judged by its head only.
    fn lost(&self, page: &FeedPage) -> Option<String> {
        if !page.epoch.is_empty() && !self.epoch.is_empty() && page.epoch != self.epoch {
            return Some(format!(
                "the registry's epoch changed ({} -> {}): it was reset or replaced",
                self.epoch, page.epoch
            ));
        }
        (page.head < self.after).then(|| {
            format!(
                "the registry's feed head {} is below the runner's position {}: it lost \
                 entries (restored from a backup?)",
                page.head, self.after
            )
        })
    }
}

/// Follows the registry's change feed until `closed`: each entry goes to the event
/// loop in order; when the registry is not the one followed any more
/// ([`FeedPosition::lost`]) a new snapshot goes instead, and the feed is followed
/// from it.
fn follow_feed(
    registry: &dyn Registry,
    mut position: FeedPosition,
    control: &Sender<Control>,
    closed: &AtomicBool,
) {
    while !closed.load(Ordering::Relaxed) {
        let page = match registry.wait_changes(position.after, Duration::from_millis(250)) {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!("following the registry feed: {e}");
                std::thread::sleep(Duration::from_millis(500));
                continue;
            }
        };
        if let Some(why) = position.lost(&page) {
            match registry.snapshot() {
                Ok(snapshot) => {
                    tracing::warn!(
                        "{why}; taking a new snapshot of desired state (feed seq {})",
                        snapshot.seq
                    );
                    position = FeedPosition::of(&snapshot);
                    if control.send(Control::Snapshot(snapshot)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!("{why}; taking a new snapshot failed: {e}");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
            continue;
        }
        for entry in page.entries {
            position.after = entry.seq;
            if control.send(Control::Entry(entry)).is_err() {
                return;
            }
        }
    }
}

/// Applies a change feed entry to `runner`, and to `sinks` the sink changes
/// it brings.
fn apply_entry(
    runner: &mut Runner,
    sinks: &mut SinkEngine,
    entry: &FeedEntry,
    status: &StatusHandle,
) -> Result<()> {
    runner.apply_feed_entry(entry)?;
    sinks.apply(runner.take_sink_changes(), status);
    Ok(())
}

/// Applies a control message (a feed entry or a new snapshot).
fn apply_control(
    runner: &mut Runner,
    sinks: &mut SinkEngine,
    control: &Control,
    status: &StatusHandle,
) -> Result<()> {
    match control {
        Control::Entry(entry) => apply_entry(runner, sinks, entry, status),
        Control::Snapshot(snapshot) => {
            runner.sync_snapshot(snapshot)?;
            sinks.apply(runner.take_sink_changes(), status);
            Ok(())
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn event_loop(
    runner: &mut Runner,
    sinks: &mut SinkEngine,
    events: &Receiver<SourceMessage>,
    control: &Receiver<Control>,
    reporter: Option<&Reporter>,
    stop: &StopHandle,
    status: &StatusHandle,
    options: &ServeOptions,
) -> Result<()> {
    let mut source_ended = false;
    let mut last_report = Instant::now();
    // A desired-state change is reported soon (not only every
    // `report_every`), so whoever started or stopped a function sees the
    // runner's answer within a fraction of a second.
    let mut changed = false;
    let max = runner.config().max_batch_events.max(1);
    status.refresh(runner);
    while !stop.is_stopped() {
        let mut batch = Vec::new();
        let mut idle = false;
        select! {
            recv(control) -> msg => {
                if let Ok(msg) = msg {
                    apply_control(runner, sinks, &msg, status)?;
                    changed = true;
                }
            }
            recv(events) -> msg => match msg {
                Ok(SourceMessage::Event(ev)) => batch.push(ev),
                Ok(SourceMessage::End) => source_ended = true,
                // The source thread returned without ending its stream: it
                // failed for good (or was stopped). `serve` returns its error.
                Err(_) if !source_ended => return Ok(()),
                Err(_) => {}
            },
            default(options.idle) => idle = true,
        }
        while !batch.is_empty() && batch.len() < max {
            match events.try_recv() {
                Ok(SourceMessage::Event(ev)) => batch.push(ev),
                Ok(SourceMessage::End) => {
                    source_ended = true;
                    break;
                }
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            runner.process(&batch)?;
        }
        if idle || source_ended {
            let summary = runner.catch_up()?;
            if source_ended
                && summary.invocations == 0
                && runner.running() == 0
                && options.until == UntilDone::SourceEnd
            {
                // Drain control messages that raced the end, then finish.
                match control.recv_timeout(Duration::from_millis(1)) {
                    Ok(msg) => apply_control(runner, sinks, &msg, status)?,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                        status.refresh(runner);
                        return Ok(());
                    }
                }
            }
            if source_ended && options.until == UntilDone::Stopped {
                std::thread::sleep(options.idle);
            }
        }
        let report = status.with_sinks(runner.report());
        let since = last_report.elapsed();
        if let Some(reporter) = reporter
            && (since >= options.report_every || (changed && since >= REPORT_CHANGE_AFTER))
        {
            last_report = Instant::now();
            changed = false;
            // The reporter thread sends it; a newer one replaces it unsent.
            reporter.publish(report.clone());
        }
        status.set(report);
    }
    Ok(())
}
