//! The runner's `/metrics`: what it shows after real invocations, and a
//! server that a silent client cannot block.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpStream},
    sync::Arc,
    time::Duration,
};

use xxfunc_api::{DesiredState, FunctionSpec, StartFrom};
use xxfunc_runner::{
    ChainEvent, Runner, RunnerConfig, ServeOptions, StatusHandle, StoreModules,
    metrics::{MetricsOptions, MetricsServer},
};
use xxfunc_store::ModuleStore;

use crate::{
    chain::{self, wasm},
    registry::{serve_pushed, wait_for},
};

/// Long enough that a test failing to be answered fails instead of hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// `GET path` on `addr`, returning the whole answer (status line, headers, body).
fn get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connecting to the metrics endpoint");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the metrics endpoint answers");
    answer
}

/// Waits until the server closes `stream` (EOF or reset), failing after
/// [`PATIENCE`]. Returns what it sent first, if anything.
fn closed_by_server(mut stream: TcpStream) -> String {
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&got).into_owned();
            }
            Err(e) => panic!("the silent connection was not closed by the server: {e}"),
        }
    }
}

fn server(status: StatusHandle, max_connections: usize) -> MetricsServer {
    MetricsServer::start(
        "127.0.0.1:0".parse().unwrap(),
        status,
        MetricsOptions {
            header_read_timeout: Duration::from_millis(300),
            max_connections,
            ..MetricsOptions::default()
        },
    )
    .expect("starting the metrics server")
}

#[test]
fn a_silent_client_does_not_block_a_scrape_and_is_dropped() {
    let server = server(StatusHandle::default(), 4);
    let addr = server.local_addr();
    let silent = TcpStream::connect(addr).unwrap();

    let answer = get(addr, "/metrics");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    assert!(
        answer.contains("content-type: text/plain; version=0.0.4"),
        "{answer}"
    );
    assert!(
        answer.contains("# TYPE xxfunc_runner_head gauge"),
        "{answer}"
    );

    // Dropped after the header-read timeout, having sent nothing.
    let first = closed_by_server(silent);
    assert!(
        first.is_empty() || first.starts_with("HTTP/1.1 408"),
        "{first}"
    );

    let missing = get(addr, "/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    server.stop();
}

#[test]
fn a_scrape_beyond_the_connection_bound_waits_for_a_free_slot() {
    // One connection at a time: the silent client holds the only slot until
    // its header-read timeout, then the scrape (queued behind it) is served.
    let server = server(StatusHandle::default(), 1);
    let addr = server.local_addr();
    let silent = TcpStream::connect(addr).unwrap();
    let answer = get(addr, "/metrics");
    assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
    closed_by_server(silent);
}

#[test]
fn invocations_show_as_counters_and_duration_histograms_per_function() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModuleStore::open("memory://").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let modules = Arc::new(StoreModules::new(store.clone()).unwrap());
    let mut runner = Runner::open(RunnerConfig::new(dir.path()), modules).unwrap();
    // Five calls to an unimplemented WASI function per invocation: counted, not logged
    // per call.
    let sockets = r#"(module
        (import "wasi_snapshot_preview1" "sock_accept"
            (func $accept (param i32 i32 i32) (result i32)))
        (memory (export "memory") 1)
        (func (export "_start")
            (drop (call $accept (i32.const 0) (i32.const 0) (i32.const 0)))
            (drop (call $accept (i32.const 1) (i32.const 0) (i32.const 0)))
            (drop (call $accept (i32.const 2) (i32.const 0) (i32.const 0)))
            (drop (call $accept (i32.const 3) (i32.const 0) (i32.const 0)))
            (drop (call $accept (i32.const 4) (i32.const 0) (i32.const 0)))))"#;
    for (name, wat) in [
        ("echo", chain::ECHO_MAGIC),
        ("exit3", chain::EXIT3),
        ("sockets", sockets),
    ] {
        let hash = rt.block_on(store.put(wasm(wat))).unwrap().hash;
        runner
            .apply(&FunctionSpec {
                id: name.parse().unwrap(),
                hash,
                desired: DesiredState::Started,
                start: StartFrom::Head,
                start_generation: 1,
                sinks: Vec::new(),
            })
            .unwrap();
    }
    let served = serve_pushed(runner, None, ServeOptions::default());
    for b in chain::blocks(None, 1, 3, 0) {
        served.tx.send(ChainEvent::commit(0, b)).unwrap();
    }
    wait_for(&served.status, "three blocks", |r| {
        r.head.map(|h| h.number) == Some(3)
    });

    // Scraped over HTTP, as Prometheus does.
    let server = server(served.status.clone(), 4);
    let text = get(server.local_addr(), "/metrics");
    eprintln!("{text}");
    for line in [
        "\r\n\r\n# HELP ",
        "xxfunc_runner_head 3\n",
        "xxfunc_runner_safe_height 3\n",
        "xxfunc_runner_node_errors_total 0\n",
        "# TYPE xxfunc_function_invocations_total counter\n",
        "xxfunc_function_invocations_total{id=\"echo\"} 3\n",
        "xxfunc_function_failures_total{id=\"echo\"} 0\n",
        "xxfunc_function_failures_total{id=\"exit3\"} 3\n",
        "# TYPE xxfunc_function_dropped_by_retention_total counter\n",
        "xxfunc_function_dropped_by_retention_total{id=\"echo\"} 0\n",
        "xxfunc_function_cursor{id=\"echo\"} 3\n",
        "xxfunc_function_state{id=\"echo\",state=\"running\"} 1\n",
        "# TYPE xxfunc_function_unsupported_wasi_calls_total counter\n",
        "xxfunc_function_unsupported_wasi_calls_total{id=\"sockets\"} 15\n",
        "xxfunc_function_unsupported_wasi_calls_total{id=\"echo\"} 0\n",
        "# TYPE xxfunc_state_reads_total counter\n",
        "xxfunc_state_reads_total{result=\"hit\"} ",
        "xxfunc_state_reads_total{result=\"unavailable\"} ",
        "# TYPE xxfunc_function_invocation_duration_seconds histogram\n",
        "xxfunc_function_invocation_duration_seconds_count{id=\"echo\"} 3\n",
        "xxfunc_function_invocation_duration_seconds_count{id=\"exit3\"} 3\n",
        "xxfunc_function_invocation_duration_seconds_bucket{id=\"echo\",le=\"1e-05\"} ",
        "xxfunc_function_invocation_duration_seconds_bucket{id=\"echo\",le=\"10\"} 3\n",
        "xxfunc_function_invocation_duration_seconds_bucket{id=\"echo\",le=\"+Inf\"} 3\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // Without a registry nothing is pushed: the gauge has no value.
    assert!(
        !text.contains("\nxxfunc_runner_outcomes_pending "),
        "{text}"
    );
    server.stop();
    served.stop.stop();
    drop(served.tx);
    served.thread.join().unwrap().unwrap();
}
