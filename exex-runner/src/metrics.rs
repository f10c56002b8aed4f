//! Prometheus text for a runner's status, and a tiny loopback HTTP server
//! that answers `GET /metrics` with it.

use std::{
    fmt::Write as _,
    io::{Read, Write},
    net::{SocketAddr, TcpListener},
    thread::JoinHandle,
};

use xxfunc_api::{FunctionReport, ObservedState, RunnerReport};

use crate::{
    error::{Result, RunnerError},
    service::StatusHandle,
};

/// Renders `report` in the Prometheus text exposition format.
pub fn render(report: &RunnerReport) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, value: Option<u64>| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        if let Some(v) = value {
            let _ = writeln!(out, "{name} {v}");
        }
    };
    gauge(
        "xxfunc_runner_head",
        "Chain tip the runner has processed.",
        report.head.map(|h| h.number),
    );
    gauge(
        "xxfunc_runner_safe_height",
        "Lowest cursor over running functions.",
        report.safe_height,
    );
    for (name, help, value) in [
        (
            "xxfunc_function_invocations_total",
            "Invocations run.",
            (|f| f.counters.invocations) as fn(&FunctionReport) -> u64,
        ),
        (
            "xxfunc_function_failures_total",
            "Failed invocations.",
            |f| f.counters.failures,
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for f in &report.functions {
            let _ = writeln!(out, "{name}{{id=\"{}\"}} {}", f.id, value(f));
        }
    }
    let _ = writeln!(
        out,
        "# HELP xxfunc_function_cursor Last block each function fully processed.\n# TYPE xxfunc_function_cursor gauge"
    );
    for f in &report.functions {
        if let Some(c) = f.cursor {
            let _ = writeln!(
                out,
                "xxfunc_function_cursor{{id=\"{}\"}} {}",
                f.id, c.number
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP xxfunc_function_state 1 for the state each function is in.\n# TYPE xxfunc_function_state gauge"
    );
    for f in &report.functions {
        let state = match f.observed {
            ObservedState::Running => "running",
            ObservedState::Stopped => "stopped",
            ObservedState::Quarantined { .. } => "quarantined",
            ObservedState::LoadFailed { .. } => "load_failed",
        };
        let _ = writeln!(
            out,
            "xxfunc_function_state{{id=\"{}\",state=\"{state}\"}} 1",
            f.id
        );
    }
    out
}

/// Serves `GET /metrics` on `addr` (use a loopback address) from a thread.
/// Any other path answers 404.
///
/// # Errors
/// [`RunnerError::MetricsListen`] when the address cannot be bound.
pub fn serve_metrics(
    addr: SocketAddr,
    status: StatusHandle,
) -> Result<(SocketAddr, JoinHandle<()>)> {
    let listener =
        TcpListener::bind(addr).map_err(|source| RunnerError::MetricsListen { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| RunnerError::MetricsListen { addr, source })?;
    let handle = std::thread::Builder::new()
        .name("xxfunc-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]);
                let (code, body) = if request.starts_with("GET /metrics ") {
                    ("200 OK", render(&status.get()))
                } else {
                    ("404 Not Found", "not found; try GET /metrics\n".to_string())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {code}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .expect("spawning the metrics thread");
    Ok((local, handle))
}
