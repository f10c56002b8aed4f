//! Gateway benchmarks (release, `harness = false`; not run by `cargo test`).
//!
//! - `gateway.resolve`: requests/s of `GET /v1/functions/{name}` from a load
//!   generator in the same process (keep-alive HTTP/1.1 connections over raw
//!   sockets, so the generator costs little of the 2 cores); notes give p99.
//!   Baseline: the same generator against `GET /healthz` of the same server.
//! - `gateway.deploy.1MiB.p99`: ms for upload + validate + store + bind of a
//!   1 MiB module on the file backend (typed client, sequential). Baseline:
//!   `std::fs::write` + `blake3::hash` of the same bytes, p99.
//!
//! Rows: `| id | value | unit | baseline | ratio | notes |`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use xxfunc_api::client::Client;
use xxfunc_gateway::{GatewayConfig, serve};

const CONNECTIONS: usize = 64;
const RUN: Duration = Duration::from_secs(5);

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = GatewayConfig::new(dir.path())
        .with_listen("127.0.0.1:0".parse().expect("addr"))
        .with_workers(2);
    let gateway = serve(config).await.expect("gateway");
    let client = Client::new(&gateway.url()).expect("client");
    let hello = xxfunc_guest_modules::module_bytes("hello");
    client
        .deploy(&"bench".parse().expect("name"), hello)
        .await
        .expect("deploy");
    let addr = gateway.addr().to_string();

    let (health_rps, health_p99) = load(&addr, "/healthz").await;
    let (rps, p99) = load(&addr, "/v1/functions/bench").await;
    println!(
        "| gateway.resolve | {rps:.0} | req/s | {health_rps:.0} | {:.2} | p99 {:.2} ms ({CONNECTIONS} keep-alive connections, {}s, 2 server workers, generator in-process); baseline GET /healthz p99 {:.2} ms |",
        rps / health_rps,
        p99.as_secs_f64() * 1e3,
        RUN.as_secs(),
        health_p99.as_secs_f64() * 1e3,
    );

    // Deploy of 1 MiB modules.
    let mut deploy = Vec::new();
    let mut baseline = Vec::new();
    let raw_dir = dir.path().join("raw");
    std::fs::create_dir_all(&raw_dir).expect("raw dir");
    let name = "big".parse().expect("name");
    for i in 0..120u64 {
        let module = one_mib_module(i);
        let t = Instant::now();
        client
            .deploy(&name, module.clone())
            .await
            .expect("deploy 1 MiB");
        deploy.push(t.elapsed());
        let t = Instant::now();
        let hash = blake3::hash(&module);
        std::fs::write(raw_dir.join(hash.to_hex().as_str()), &module).expect("raw write");
        baseline.push(t.elapsed());
    }
    // The first few warm caches and connections.
    let (deploy, baseline) = (&mut deploy[20..], &mut baseline[20..]);
    let (d99, b99) = (percentile(deploy, 0.99), percentile(baseline, 0.99));
    let d50 = percentile(deploy, 0.50);
    println!(
        "| gateway.deploy.1MiB.p99 | {:.2} | ms | {:.2} | {:.3} | p50 {:.2} ms over {} sequential deploys (upload + validate + store + bind, synced registry WAL), file backend; baseline std::fs::write + blake3 |",
        d99.as_secs_f64() * 1e3,
        b99.as_secs_f64() * 1e3,
        b99.as_secs_f64() / d99.as_secs_f64(),
        d50.as_secs_f64() * 1e3,
        deploy.len(),
    );
    gateway.stop().await;
}

/// Runs the generator against `path` for [`RUN`]: requests/s and p99 latency.
async fn load(addr: &str, path: &str) -> (f64, Duration) {
    // Warm up.
    let stop = Arc::new(AtomicBool::new(false));
    let _ = drive(addr, path, Duration::from_millis(500), Arc::clone(&stop)).await;
    let started = Instant::now();
    let mut latencies = drive(addr, path, RUN, stop).await;
    let elapsed = started.elapsed();
    let rps = latencies.len() as f64 / elapsed.as_secs_f64();
    (rps, percentile(&mut latencies, 0.99))
}

async fn drive(addr: &str, path: &str, run: Duration, stop: Arc<AtomicBool>) -> Vec<Duration> {
    stop.store(false, Ordering::Relaxed);
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let (addr, request, stop) = (addr.to_string(), request.clone(), Arc::clone(&stop));
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.expect("connect");
            stream.set_nodelay(true).expect("nodelay");
            let mut buf = vec![0u8; 16 * 1024];
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                stream.write_all(&request).await.expect("write");
                read_response(&mut stream, &mut buf).await;
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    tokio::time::sleep(run).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("generator task"));
    }
    all
}

/// Reads one `Content-Length` response (the gateway's answers all have one).
async fn read_response(stream: &mut TcpStream, buf: &mut [u8]) {
    let mut have = 0;
    loop {
        let n = stream.read(&mut buf[have..]).await.expect("read");
        assert!(n > 0, "connection closed");
        have += n;
        if let Some(end) = find(&buf[..have], b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("ascii head");
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length: ")
                        .or_else(|| l.strip_prefix("Content-Length: "))
                })
                .and_then(|v| v.trim().parse().ok())
                .expect("content-length");
            while have < end + 4 + len {
                let n = stream.read(&mut buf[have..]).await.expect("read body");
                assert!(n > 0, "connection closed");
                have += n;
            }
            return;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let idx = ((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1;
    samples[idx]
}

/// A valid function module of exactly 1 MiB, unique per `seed`.
fn one_mib_module(seed: u64) -> Vec<u8> {
    let mut bytes =
        wat::parse_str(r#"(module (memory (export "memory") 1) (func (export "_start")))"#)
            .expect("wat");
    let total = 1 << 20;
    // Custom section: id 0, size as a 3-byte LEB, name "pad", payload.
    let payload = total - bytes.len() - 1 - 3 - 4;
    let size = payload + 4;
    bytes.push(0);
    bytes.extend_from_slice(&[
        (size & 0x7f) as u8 | 0x80,
        ((size >> 7) & 0x7f) as u8 | 0x80,
        (size >> 14) as u8,
    ]);
    bytes.extend_from_slice(&[3, b'p', b'a', b'd']);
    bytes.extend((0..payload).map(|i| (i as u64).wrapping_mul(seed + 1) as u8));
    assert_eq!(bytes.len(), total);
    bytes
}
