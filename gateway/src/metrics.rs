//! Prometheus counters and their text rendering.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use parking_lot::Mutex;

/// Request counters by route and status, plus domain counters.
#[derive(Default)]
pub(crate) struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, RequestStats>>,
    pub(crate) uploads_created: AtomicU64,
    pub(crate) uploads_existing: AtomicU64,
    pub(crate) uploads_rejected: AtomicU64,
    pub(crate) deploys: AtomicU64,
    pub(crate) gc_removed: AtomicU64,
    pub(crate) reports: AtomicU64,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestKey {
    method: String,
    route: String,
    status: u16,
}

#[derive(Default)]
struct RequestStats {
    count: u64,
    seconds: f64,
}

/// Gauges read at scrape time.
pub(crate) struct Gauges {
    pub(crate) feed_head: u64,
    pub(crate) functions: u64,
    pub(crate) started: u64,
}

impl Metrics {
    pub(crate) fn record(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = RequestKey {
            method: method.to_string(),
            route: route.to_string(),
            status,
        };
        let mut requests = self.requests.lock();
        let stats = requests.entry(key).or_default();
        stats.count += 1;
        stats.seconds += elapsed.as_secs_f64();
    }

    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn render(&self, gauges: &Gauges) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let requests = self.requests.lock();
        for (name, help, value) in [
            (
                "xxfunc_http_requests_total",
                "HTTP requests by method, route pattern and status.",
                (|s| s.count.to_string()) as fn(&RequestStats) -> String,
            ),
            (
                "xxfunc_http_request_seconds_total",
                "Time spent serving requests.",
                |s| format!("{:.6}", s.seconds),
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (k, s) in requests.iter() {
                let _ = writeln!(
                    out,
                    "{name}{{method=\"{}\",route=\"{}\",status=\"{}\"}} {}",
                    k.method,
                    escape(&k.route),
                    k.status,
                    value(s)
                );
            }
        }
        drop(requests);
        let counters = [
            (
                "xxfunc_module_uploads_total{result=\"created\"}",
                get(&self.uploads_created),
            ),
            (
                "xxfunc_module_uploads_total{result=\"existing\"}",
                get(&self.uploads_existing),
            ),
            (
                "xxfunc_module_uploads_total{result=\"rejected\"}",
                get(&self.uploads_rejected),
            ),
        ];
        out.push_str("# HELP xxfunc_module_uploads_total Module uploads by result.\n");
        out.push_str("# TYPE xxfunc_module_uploads_total counter\n");
        for (k, v) in counters {
            let _ = writeln!(out, "{k} {v}");
        }
        for (name, help, kind, value) in [
            (
                "xxfunc_deploys_total",
                "Binds that recorded a new version.",
                "counter",
                get(&self.deploys),
            ),
            (
                "xxfunc_gc_removed_total",
                "Modules removed by garbage collection.",
                "counter",
                get(&self.gc_removed),
            ),
            (
                "xxfunc_runner_reports_total",
                "Runner reports received.",
                "counter",
                get(&self.reports),
            ),
            (
                "xxfunc_feed_head",
                "Highest change feed seq.",
                "gauge",
                gauges.feed_head,
            ),
            (
                "xxfunc_functions",
                "Functions known to the registry.",
                "gauge",
                gauges.functions,
            ),
            (
                "xxfunc_functions_started",
                "Functions whose desired state is started.",
                "gauge",
                gauges.started,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
