//! The runner's Prometheus metrics, encoded by `prometheus-client` (the
//! Prometheus project's Rust client), and [`MetricsServer`]: a loopback HTTP
//! endpoint (hyper) answering `GET /metrics`.
//!
//! | metric | type | labels | what |
//! |---|---|---|---|
//! | `xxfunc_runner_head` | gauge | | chain tip the runner has processed |
//! | `xxfunc_runner_safe_height` | gauge | | lowest cursor over running functions |
//! | `xxfunc_runner_node_errors_total` | counter | | failed questions to the node (ExEx resume point, `FinishedHeight`) |
//! | `xxfunc_runner_outcomes_pending` | gauge | | outcomes kept but not yet acknowledged by the registry (absent without one) |
//! | `xxfunc_function_invocations_total` | counter | `id` | invocations run (persisted: survives restarts) |
//! | `xxfunc_function_failures_total` | counter | `id` | failed invocations (persisted) |
//! | `xxfunc_function_dropped_by_retention_total` | counter | `id` | outcomes the retention budget pruned before every consumer acknowledged them (persisted) |
//! | `xxfunc_function_cursor` | gauge | `id` | last block each function fully processed |
//! | `xxfunc_function_state` | gauge | `id`, `state` | 1 for the state each function is in |
//! | `xxfunc_function_unsupported_wasi_calls_total` | counter | `id` | calls to WASI functions the sandbox does not implement (`sock_*`), by the function's module since the process started; logged at most once per module per 10 s ([`crate::host_calls`]) |
//! | `xxfunc_state_reads_total` | counter | `result` | functions' chain-state reads since the process started: `hit` (the runner's cache answered), `miss` (the backend did), `unavailable` (neither could; the invocation is retried) |
//! | `xxfunc_state_backend_read_duration_seconds` | histogram | `kind` | wall time of each chain-state read the backend answered or failed (cache misses only), by `kind`: `account`, `storage`, `code`, `call`; buckets from 1 µs to 1 s |
//! | `xxfunc_function_invocation_duration_seconds` | histogram | `id` | wall time of each invocation since the process started; buckets from 10 µs to 10 s |
//! | `xxfunc_sink_state` | gauge | `sink`, `id`, `state` | 1 for the state each sink is in (`starting`, `delivering`, `idle`, `retrying`, `failed`, `stopped`) |
//! | `xxfunc_sink_cursor_outcome` | gauge | `sink`, `id` | last outcome seq the sink's destination acknowledged |
//! | `xxfunc_sink_cursor_item` | gauge | `sink`, `id` | last item (record) seq it acknowledged |
//! | `xxfunc_sink_lag_blocks` | gauge | `sink`, `id` | blocks between the function's cursor and the sink's (includes its confirmations) |
//! | `xxfunc_sink_lag_records` | gauge | `sink`, `id` | records of the function after the sink's cursor |
//! | `xxfunc_sink_attempts` | gauge | `sink`, `id` | failed attempts of the batch being delivered (0: the last one succeeded) |
//! | `xxfunc_sink_delivered_batches_total` | counter | `sink`, `id` | batches acknowledged since the process started |
//! | `xxfunc_sink_delivered_records_total` | counter | `sink`, `id` | records in them |
//! | `xxfunc_sink_failed_attempts_total` | counter | `sink`, `id` | failed attempts since the process started |
//!
//! The gauges and the persisted counters are read from the [`StatusHandle`]'s
//! latest report at each scrape; the histogram is recorded by the runner as
//! invocations finish ([`InvocationMetrics`]).
//!
//! The server reads a request's headers within
//! [`MetricsOptions::header_read_timeout`] or drops the connection, serves at
//! most [`MetricsOptions::max_connections`] connections at once (others wait
//! in the listen backlog), and closes any connection after
//! [`MetricsOptions::connection_timeout`], so a client that connects and
//! sends nothing never keeps others from scraping.

use std::{
    convert::Infallible,
    fmt,
    net::SocketAddr,
    sync::{Arc, LazyLock},
    thread::JoinHandle,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text},
    metrics::{
        MetricType, counter::ConstCounter, family::Family, gauge::ConstGauge, histogram::Histogram,
    },
    registry::{Registry, Unit},
};
use tokio::sync::{Semaphore, oneshot};
use xxfunc_api::{FunctionId, ObservedState, RunnerReport};

use crate::{
    error::{Result, RunnerError},
    service::{NodeErrors, StatusHandle},
    sinks::SinkStatus,
};

/// Upper bounds of the invocation-duration buckets, in seconds: 1, 2.5 and 5
/// per decade from 10 µs to 10 s (the wall-time limit defaults to 1 s).
const DURATION_BUCKETS: [f64; 19] = [
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the state-backend read buckets, in seconds: 1, 2.5 and 5 per decade
/// from 1 µs (a read from memory) to 1 s (a slow call over JSON-RPC).
const READ_BUCKETS: [f64; 19] = [
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReadLabels {
    kind: &'static str,
}

fn read_histogram() -> Histogram {
    Histogram::new(READ_BUCKETS)
}

/// Histograms by label set, each made with a fixed bucket layout.
type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

/// Backend read durations of this process, by kind (`xxfunc_state_backend_read_duration`).
static STATE_READS: LazyLock<Histograms<ReadLabels>> =
    LazyLock::new(|| Family::new_with_constructor(read_histogram));

/// Records one read of `kind` (`account`, `storage`, `code`, `call`) the state backend
/// took `duration` to answer or fail.
pub(crate) fn observe_state_read(kind: &'static str, duration: Duration) {
    STATE_READS
        .get_or_create(&ReadLabels { kind })
        .observe(duration.as_secs_f64());
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    id: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Invocation durations per function, recorded by the runner as invocations
/// finish. Cloning shares the histograms.
#[derive(Clone, Debug)]
pub struct InvocationMetrics {
    durations: Histograms<FunctionLabels>,
}

impl Default for InvocationMetrics {
    fn default() -> Self {
        Self {
            durations: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl InvocationMetrics {
    /// Records one invocation of `id` that took `duration`.
    pub(crate) fn observe(&self, id: &FunctionId, duration: Duration) {
        self.durations
            .get_or_create(&FunctionLabels { id: id.to_string() })
            .observe(duration.as_secs_f64());
    }
}

/// The metrics of `status` in the Prometheus text exposition format
/// (version 0.0.4).
pub fn render(status: &StatusHandle) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(ReportMetrics {
        report: status.get(),
        node: status.node_errors(),
        outcomes_pending: status.outcomes_pending(),
        sinks: status.sinks(),
    }));
    registry.register_with_unit(
        "xxfunc_function_invocation_duration",
        "Wall time of each invocation (instantiation, run, output capture)",
        Unit::Seconds,
        status.metrics().durations.clone(),
    );
    registry.register_with_unit(
        "xxfunc_state_backend_read_duration",
        "Wall time of each chain-state read the backend answered or failed (cache misses)",
        Unit::Seconds,
        STATE_READS.clone(),
    );
    let mut out = String::new();
    prometheus_text::encode(&mut out, &registry)
        .expect("encoding metrics into a String cannot fail");
    out
}

/// The metrics read from one report, encoded at scrape time.
#[derive(Debug)]
struct ReportMetrics {
    report: RunnerReport,
    node: NodeErrors,
    outcomes_pending: Option<u64>,
    sinks: Vec<SinkStatus>,
}

impl ReportMetrics {
    fn per_sink<M: EncodeMetric>(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        metric_type: MetricType,
        value: impl Fn(&SinkStatus) -> M,
    ) -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
        for s in &self.sinks {
            let labels = [("sink", s.name.clone()), ("id", s.function.to_string())];
            value(s).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn sinks(&self, encoder: &mut DescriptorEncoder<'_>) -> fmt::Result {
        let gauge = MetricType::Gauge;
        let counter = MetricType::Counter;
        self.per_sink(
            encoder,
            "xxfunc_sink_cursor_outcome",
            "Last outcome seq the sink's destination acknowledged.",
            gauge,
            |s| ConstGauge::new(s.cursor.outcome),
        )?;
        self.per_sink(
            encoder,
            "xxfunc_sink_cursor_item",
            "Last item seq the sink's destination acknowledged.",
            gauge,
            |s| ConstGauge::new(s.cursor.item),
        )?;
        self.per_sink(
            encoder,
            "xxfunc_sink_lag_blocks",
            "Blocks between the function's cursor and the sink's.",
            gauge,
            |s| ConstGauge::new(s.lag_blocks),
        )?;
        self.per_sink(
            encoder,
            "xxfunc_sink_lag_records",
            "Records of the function after the sink's cursor.",
            gauge,
            |s| ConstGauge::new(s.lag_records),
        )?;
        self.per_sink(
            encoder,
            "xxfunc_sink_attempts",
            "Failed attempts of the batch being delivered.",
            gauge,
            |s| ConstGauge::new(s.attempts),
        )?;
        self.per_sink(
            encoder,
            "xxfunc_sink_delivered_batches",
            "Batches acknowledged since the process started.",
            counter,
            |s| ConstCounter::new(s.delivered_batches),
        )?;
        self.per_sink(
            encoder,
            "xxfunc_sink_delivered_records",
            "Records in acknowledged batches since the process started.",
            counter,
            |s| ConstCounter::new(s.delivered_records),
        )?;
        self.per_sink(
            encoder,
            "xxfunc_sink_failed_attempts",
            "Failed delivery attempts since the process started.",
            counter,
            |s| ConstCounter::new(s.failed_attempts),
        )?;
        let mut state = encoder.encode_descriptor(
            "xxfunc_sink_state",
            "1 for the state each sink is in.",
            None,
            MetricType::Gauge,
        )?;
        for s in &self.sinks {
            let labels = [
                ("sink", s.name.clone()),
                ("id", s.function.to_string()),
                ("state", s.state.as_str().to_string()),
            ];
            ConstGauge::new(1u64).encode(state.encode_family(&labels)?)?;
        }
        Ok(())
    }

    fn gauge(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        value: Option<u64>,
    ) -> fmt::Result {
        let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        match value {
            Some(v) => ConstGauge::new(v).encode(metric),
            None => Ok(()),
        }
    }

    fn per_function<M: EncodeMetric>(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        metric_type: MetricType,
        value: impl Fn(&xxfunc_api::FunctionReport) -> Option<M>,
    ) -> fmt::Result {
        let mut family = encoder.encode_descriptor(name, help, None, metric_type)?;
        for f in &self.report.functions {
            if let Some(v) = value(f) {
                let labels = [("id", f.id.to_string())];
                v.encode(family.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

// Help texts end with a full stop, as before this used prometheus-client
// (`Registry::register` adds one; a collector writes its text as given).
impl Collector for ReportMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let r = &self.report;
        Self::gauge(
            &mut encoder,
            "xxfunc_runner_head",
            "Chain tip the runner has processed.",
            r.head.map(|h| h.number),
        )?;
        Self::gauge(
            &mut encoder,
            "xxfunc_runner_safe_height",
            "Lowest cursor over running functions.",
            r.safe_height,
        )?;
        ConstCounter::new(self.node.count).encode(encoder.encode_descriptor(
            "xxfunc_runner_node_errors",
            "Failed questions to the node (ExEx resume point, FinishedHeight).",
            None,
            MetricType::Counter,
        )?)?;
        Self::gauge(
            &mut encoder,
            "xxfunc_runner_outcomes_pending",
            "Outcomes kept but not yet acknowledged by the registry.",
            self.outcomes_pending,
        )?;
        self.per_function(
            &mut encoder,
            "xxfunc_function_invocations",
            "Invocations run.",
            MetricType::Counter,
            |f| Some(ConstCounter::new(f.counters.invocations)),
        )?;
        self.per_function(
            &mut encoder,
            "xxfunc_function_failures",
            "Failed invocations.",
            MetricType::Counter,
            |f| Some(ConstCounter::new(f.counters.failures)),
        )?;
        self.per_function(
            &mut encoder,
            "xxfunc_function_dropped_by_retention",
            "Outcomes the retention budget pruned before every consumer acknowledged them.",
            MetricType::Counter,
            |f| Some(ConstCounter::new(f.counters.dropped_by_retention)),
        )?;
        self.per_function(
            &mut encoder,
            "xxfunc_function_cursor",
            "Last block each function fully processed.",
            MetricType::Gauge,
            |f| f.cursor.map(|c| ConstGauge::new(c.number)),
        )?;
        self.per_function(
            &mut encoder,
            "xxfunc_function_unsupported_wasi_calls",
            "Calls to WASI functions the sandbox does not implement (sock_*), per module \
             since the process started.",
            MetricType::Counter,
            |f| {
                Some(ConstCounter::new(
                    crate::host_calls::unsupported_wasi_calls(&f.hash),
                ))
            },
        )?;
        self.sinks(&mut encoder)?;
        let (hits, misses, unavailable) = crate::state::READS.get();
        let mut reads = encoder.encode_descriptor(
            "xxfunc_state_reads",
            "Chain-state reads of functions since the process started, by result.",
            None,
            MetricType::Counter,
        )?;
        for (result, n) in [
            ("hit", hits),
            ("miss", misses),
            ("unavailable", unavailable),
        ] {
            ConstCounter::new(n).encode(reads.encode_family(&[("result", result)])?)?;
        }
        let mut state = encoder.encode_descriptor(
            "xxfunc_function_state",
            "1 for the state each function is in.",
            None,
            MetricType::Gauge,
        )?;
        for f in &r.functions {
            let name = match f.observed {
                ObservedState::Running => "running",
                ObservedState::Stopped => "stopped",
                ObservedState::Quarantined { .. } => "quarantined",
                ObservedState::LoadFailed { .. } => "load_failed",
            };
            let labels = [("id", f.id.to_string()), ("state", name.to_string())];
            ConstGauge::new(1u64).encode(state.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Knobs of the [`MetricsServer`].
#[derive(Clone, Debug)]
pub struct MetricsOptions {
    /// A connection whose request headers have not arrived within this is
    /// dropped (a client that connects and sends nothing, or an idle
    /// keep-alive connection).
    pub header_read_timeout: Duration,
    /// Any connection is closed after this, whatever it is doing (a client
    /// that reads the answer very slowly).
    pub connection_timeout: Duration,
    /// Connections served at once; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(5),
            connection_timeout: Duration::from_secs(30),
            max_connections: 16,
        }
    }
}

/// Serves `GET /metrics` on `addr` (use a loopback address) with the default
/// [`MetricsOptions`]. Any other request answers 404.
///
/// # Errors
/// As [`MetricsServer::start`].
pub fn serve_metrics(addr: SocketAddr, status: StatusHandle) -> Result<MetricsServer> {
    MetricsServer::start(addr, status, MetricsOptions::default())
}

/// The metrics endpoint, served from a thread of its own (with its own
/// single-threaded tokio runtime, so it never competes with the runner's
/// threads or an embedder's runtime). Dropping it stops accepting and closes
/// the open connections; [`stop`](Self::stop) also waits for the thread.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MetricsServer {
    /// Binds `addr` and serves the metrics of `status` on it.
    ///
    /// # Errors
    /// [`RunnerError::MetricsListen`] when the address cannot be bound,
    /// [`RunnerError::Runtime`] when the server's runtime cannot start.
    pub fn start(addr: SocketAddr, status: StatusHandle, options: MetricsOptions) -> Result<Self> {
        let listen_err = |source| RunnerError::MetricsListen { addr, source };
        let listener = std::net::TcpListener::bind(addr).map_err(listen_err)?;
        listener.set_nonblocking(true).map_err(listen_err)?;
        let local = listener.local_addr().map_err(listen_err)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| RunnerError::Runtime {
                what: "metrics server".into(),
                source,
            })?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("xxfunc-metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, status, options, stop_rx).await,
                        Err(e) => tracing::error!("metrics endpoint on {local}: {e}"),
                    }
                });
            })
            .expect("spawning the metrics thread");
        Ok(Self {
            addr: local,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on (the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and waits for its thread.
    pub fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    status: StatusHandle,
    options: MetricsOptions,
    mut stop: oneshot::Receiver<()>,
) {
    let slots = Arc::new(Semaphore::new(options.max_connections.max(1)));
    loop {
        let slot = tokio::select! {
            _ = &mut stop => return,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin.
                    tracing::warn!("metrics endpoint: accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let status = status.clone();
        let options = options.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let service = service_fn(move |request| {
                let status = status.clone();
                async move { Ok::<_, Infallible>(respond(&request, &status)) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(options.header_read_timeout)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(options.connection_timeout, connection).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::debug!("metrics endpoint: connection closed: {e}"),
                Err(_) => tracing::debug!("metrics endpoint: connection timed out"),
            }
        });
    }
}

fn respond(request: &Request<Incoming>, status: &StatusHandle) -> Response<Full<Bytes>> {
    let (code, content_type, body) =
        if request.method() == Method::GET && request.uri().path() == "/metrics" {
            (
                StatusCode::OK,
                prometheus_text::CONTENT_TYPE,
                render(status),
            )
        } else {
            (
                StatusCode::NOT_FOUND,
                "text/plain; charset=utf-8",
                "not found; try GET /metrics\n".to_string(),
            )
        };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = code;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}
