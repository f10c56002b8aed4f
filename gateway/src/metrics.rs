//! The gateway's Prometheus metrics, kept and encoded by `prometheus-client`.
//!
//! Per request (labels `method`, route pattern `route`, `status`): a counter
//! and a latency histogram. Domain counters: module uploads by result,
//! deploys, modules removed by garbage collection, runner reports, outcomes stored,
//! event streams cut for not reading; connected event-stream clients. Gauges read
//! from the registry at scrape time: feed head, functions, started functions.

use std::time::Duration;

use prometheus_client::{
    encoding::{EncodeLabelSet, EncodeLabelValue, prometheus_text},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Upper bounds (seconds) of the request latency buckets: 100 µs to 10 s in
/// 1-2.5-5 steps. A cached `GET` answers in well under a millisecond; an
/// upload of a large module to S3, or a long poll cut short, takes seconds.
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

/// Labels of the per-request families, in the order they are written.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    /// The matched route pattern (`/v1/functions/{name}`), never the raw
    /// path, so the number of series stays bounded.
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
enum UploadResult {
    created,
    existing,
    rejected,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UploadLabels {
    result: UploadResult,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// Every metric of one gateway. Handlers bump the public counters with
/// [`Metrics::inc`]; the request middleware calls [`Metrics::record`].
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    pub(crate) uploads_created: Counter,
    pub(crate) uploads_existing: Counter,
    pub(crate) uploads_rejected: Counter,
    pub(crate) deploys: Counter,
    pub(crate) gc_removed: Counter,
    pub(crate) reports: Counter,
    /// Outcomes stored from runners' pushes.
    pub(crate) outcomes_stored: Counter,
    /// Event-stream clients connected now.
    sse_clients: Gauge,
    /// Event-stream clients disconnected because they did not read.
    pub(crate) sse_slow_clients: Counter,
}

/// One connected event-stream client, counted in the gauge while it lives.
pub(crate) struct SseClient(Gauge);

impl Drop for SseClient {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Gauges read at scrape time.
pub(crate) struct Gauges {
    pub(crate) feed_head: u64,
    pub(crate) functions: u64,
    pub(crate) started: u64,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "xxfunc_http_requests",
            "HTTP requests by method, route pattern and status",
            requests.clone(),
        );
        let latency: LatencyFamily =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "xxfunc_http_request_duration_seconds",
            "Time from a request's arrival to its response, by method, route pattern and status",
            latency.clone(),
        );
        let uploads = Family::<UploadLabels, Counter>::default();
        registry.register(
            "xxfunc_module_uploads",
            "Module uploads by result",
            uploads.clone(),
        );
        // Create each result's series now, so all three are scraped from the start.
        let [uploads_created, uploads_existing, uploads_rejected] = [
            UploadResult::created,
            UploadResult::existing,
            UploadResult::rejected,
        ]
        .map(|result| uploads.get_or_create_owned(&UploadLabels { result }));
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let deploys = counter("xxfunc_deploys", "Binds that recorded a new version");
        let gc_removed = counter("xxfunc_gc_removed", "Modules removed by garbage collection");
        let reports = counter("xxfunc_runner_reports", "Runner reports received");
        let outcomes_stored = counter(
            "xxfunc_outcomes_stored",
            "Outcomes stored from runners' pushes (duplicates skipped)",
        );
        let sse_slow_clients = counter(
            "xxfunc_sse_slow_clients",
            "Output event streams cut because the client did not read",
        );
        let sse_clients = Gauge::default();
        registry.register(
            "xxfunc_sse_clients",
            "Output event-stream clients connected",
            sse_clients.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            uploads_created,
            uploads_existing,
            uploads_rejected,
            deploys,
            gc_removed,
            reports,
            outcomes_stored,
            sse_clients,
            sse_slow_clients,
        }
    }
}

impl Metrics {
    /// Records one answered request.
    pub(crate) fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            method: method.to_string(),
            route: route.to_string(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    pub(crate) fn inc(counter: &Counter) {
        counter.inc();
    }

    /// Counts an event-stream client until the returned guard drops.
    pub(crate) fn sse_client(&self) -> SseClient {
        self.sse_clients.inc();
        SseClient(self.sse_clients.clone())
    }

    /// The Prometheus text exposition (format 0.0.4): every metric, then
    /// `gauges`, which are read for this scrape and kept nowhere else.
    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut scrape = Registry::default();
        for (name, help, value) in [
            (
                "xxfunc_feed_head",
                "Highest change feed seq",
                gauges.feed_head,
            ),
            (
                "xxfunc_functions",
                "Functions known to the registry",
                gauges.functions,
            ),
            (
                "xxfunc_functions_started",
                "Functions whose desired state is started",
                gauges.started,
            ),
        ] {
            let gauge = Gauge::<u64, std::sync::atomic::AtomicU64>::default();
            gauge.set(value);
            scrape.register(name, help, gauge);
        }
        let mut out = String::new();
        // The text format has no end marker, so two registries concatenate.
        prometheus_text::encode(&mut out, &self.registry)
            .and_then(|()| prometheus_text::encode(&mut out, &scrape))
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            feed_head: 7,
            functions: 3,
            started: 2,
        }
    }

    #[test]
    fn renders_every_family_under_its_name() {
        let metrics = Metrics::default();
        Metrics::inc(&metrics.deploys);
        Metrics::inc(&metrics.uploads_created);
        let _client = metrics.sse_client();
        drop(metrics.sse_client());
        metrics.record(
            "GET",
            "/v1/functions/{name}",
            200,
            Duration::from_micros(300),
        );
        metrics.record("GET", "/v1/functions/{name}", 200, Duration::from_secs(3));
        let text = metrics.render(&gauges());
        for line in [
            "# TYPE xxfunc_http_requests_total counter",
            r#"xxfunc_http_requests_total{method="GET",route="/v1/functions/{name}",status="200"} 2"#,
            "# TYPE xxfunc_http_request_duration_seconds histogram",
            r#"xxfunc_http_request_duration_seconds_bucket{method="GET",route="/v1/functions/{name}",status="200",le="0.0005"} 1"#,
            r#"xxfunc_http_request_duration_seconds_bucket{method="GET",route="/v1/functions/{name}",status="200",le="2.5"} 1"#,
            r#"xxfunc_http_request_duration_seconds_bucket{method="GET",route="/v1/functions/{name}",status="200",le="5"} 2"#,
            r#"xxfunc_http_request_duration_seconds_bucket{method="GET",route="/v1/functions/{name}",status="200",le="+Inf"} 2"#,
            r#"xxfunc_http_request_duration_seconds_count{method="GET",route="/v1/functions/{name}",status="200"} 2"#,
            r#"xxfunc_module_uploads_total{result="created"} 1"#,
            r#"xxfunc_module_uploads_total{result="existing"} 0"#,
            r#"xxfunc_module_uploads_total{result="rejected"} 0"#,
            "xxfunc_deploys_total 1",
            "xxfunc_gc_removed_total 0",
            "xxfunc_runner_reports_total 0",
            "xxfunc_outcomes_stored_total 0",
            "xxfunc_sse_slow_clients_total 0",
            "xxfunc_sse_clients 1",
            "# TYPE xxfunc_feed_head gauge",
            "xxfunc_feed_head 7",
            "xxfunc_functions 3",
            "xxfunc_functions_started 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing from\n{text}"
            );
        }
        // The sum is the time spent, in seconds.
        let sum = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("xxfunc_http_request_duration_seconds_sum{")
                    .and_then(|rest| rest.rsplit_once(' '))
            })
            .map(|(_, v)| v.parse::<f64>().unwrap())
            .unwrap();
        assert!((sum - 3.0003).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::default();
        metrics.record("GET", "a\"b\\c\nd", 404, Duration::ZERO);
        let text = metrics.render(&gauges());
        assert!(
            text.contains(r#"route="a\"b\\c\nd",status="404""#),
            "{text}"
        );
    }
}
