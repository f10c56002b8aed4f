//! Guest-caused host logging, aggregated: calls a guest makes to WASI functions the
//! sandbox does not implement (the `sock_*` family) are counted per module and logged at
//! most once per module per [`LOG_INTERVAL`], with the count, so a guest cannot flood the
//! operator's log. The totals are exported as
//! `xxfunc_function_unsupported_wasi_calls_total` (see [`crate::metrics`]).
//!
//! The counts are process-wide, like the engine that runs the guests (one per process),
//! and keyed by module hash: every function running a module shares its count.

use std::{
    collections::{BTreeSet, HashMap},
    sync::LazyLock,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use xxfunc_store::ModuleHash;

/// The shortest gap between two log lines about one module.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The process's counts.
pub(crate) static UNSUPPORTED_CALLS: LazyLock<UnsupportedCalls> =
    LazyLock::new(UnsupportedCalls::default);

/// Calls to unimplemented WASI functions of the module `hash` since the process started
/// (0 if it made none).
pub fn unsupported_wasi_calls(hash: &ModuleHash) -> u64 {
    UNSUPPORTED_CALLS.total(hash)
}

#[derive(Default)]
struct Entry {
    total: u64,
    /// Calls not yet mentioned in a log line.
    unlogged: u64,
    last_log: Option<Instant>,
    names: BTreeSet<&'static str>,
}

/// Counts per module hash.
#[derive(Default)]
pub(crate) struct UnsupportedCalls {
    entries: Mutex<HashMap<ModuleHash, Entry>>,
}

/// What to log after a [`UnsupportedCalls::record`].
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct LogLine {
    /// Calls since the previous line (or since the first call).
    pub(crate) calls: u64,
    /// Calls since the process started.
    pub(crate) total: u64,
    /// The functions called, sorted.
    pub(crate) names: Vec<&'static str>,
}

impl UnsupportedCalls {
    /// Counts the `calls` (`(function, times)`) of one invocation of `hash` at `now`, and
    /// returns the line to log if none was logged for `hash` within [`LOG_INTERVAL`].
    pub(crate) fn record(
        &self,
        hash: &ModuleHash,
        calls: &[(&'static str, u64)],
        now: Instant,
    ) -> Option<LogLine> {
        let n: u64 = calls.iter().map(|(_, times)| times).sum();
        if n == 0 {
            return None;
        }
        let mut entries = self.entries.lock();
        let entry = entries.entry(*hash).or_default();
        entry.total += n;
        entry.unlogged += n;
        entry.names.extend(
            calls
                .iter()
                .filter(|(_, times)| *times > 0)
                .map(|(name, _)| *name),
        );
        if entry
            .last_log
            .is_some_and(|at| now.saturating_duration_since(at) < LOG_INTERVAL)
        {
            return None;
        }
        entry.last_log = Some(now);
        Some(LogLine {
            calls: std::mem::take(&mut entry.unlogged),
            total: entry.total,
            names: std::mem::take(&mut entry.names).into_iter().collect(),
        })
    }

    /// Counts and logs (rate-limited) the calls of one invocation of `hash`.
    pub(crate) fn record_and_log(&self, hash: &ModuleHash, calls: &[(&'static str, u64)]) {
        if let Some(line) = self.record(hash, calls, Instant::now()) {
            tracing::warn!(
                module = %hash,
                calls = line.calls,
                total = line.total,
                "guest called WASI functions the sandbox does not implement ({}); answered \
                 ENOTSOCK/EBADF; logged at most once per {}s per module",
                line.names.join(", "),
                LOG_INTERVAL.as_secs(),
            );
        }
    }

    /// Calls of `hash` since the process started.
    pub(crate) fn total(&self, hash: &ModuleHash) -> u64 {
        self.entries.lock().get(hash).map_or(0, |e| e.total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_interval_with_the_count() {
        let calls = UnsupportedCalls::default();
        let hash = ModuleHash::of(b"one_line_per_interval");
        let other = ModuleHash::of(b"another module");
        let t0 = Instant::now();
        assert_eq!(
            calls.record(&hash, &[("sock_accept", 5), ("sock_recv", 0)], t0),
            Some(LogLine {
                calls: 5,
                total: 5,
                names: vec!["sock_accept"]
            })
        );
        // Within the interval: counted, not logged, whatever the number of invocations.
        for i in 1..100u64 {
            let at = t0 + Duration::from_millis(i * 10);
            assert_eq!(
                calls.record(&hash, &[("sock_recv", 1), ("sock_send", 1)], at),
                None
            );
        }
        // Another module has its own interval.
        assert!(calls.record(&other, &[("sock_shutdown", 1)], t0).is_some());
        assert_eq!(calls.total(&hash), 5 + 99 * 2);
        // Past the interval: one line with everything since the last one.
        assert_eq!(
            calls.record(&hash, &[("sock_accept", 1)], t0 + LOG_INTERVAL),
            Some(LogLine {
                calls: 99 * 2 + 1,
                total: 5 + 99 * 2 + 1,
                names: vec!["sock_accept", "sock_recv", "sock_send"]
            })
        );
        assert_eq!(
            calls.record(&hash, &[("sock_accept", 0)], t0 + LOG_INTERVAL * 3),
            None
        );
        assert_eq!(calls.total(&other), 1);
    }
}
