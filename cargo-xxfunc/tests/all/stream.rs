//! The outputs stream under faults, on real processes: an `xxfunc-gateway`, an
//! `xxfunc-runner` replaying the recorded chain (with its reorg) through the gateway, and a
//! Server-Sent Events client that reconnects with `Last-Event-ID`. Both the runner and the
//! gateway are killed with SIGKILL while the client reads. What the client read must be
//! exactly the items of an uninterrupted run (no gap, no duplicate), and its inserts minus
//! its retractions exactly the records of the chain's canonical blocks.

use std::{
    collections::{BTreeMap, HashSet},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::StreamExt;
use parking_lot::Mutex;
use serde_json::Value;
use xxfunc_api::{
    EventKind, InvocationStatus,
    outputs::{ItemKind, OutputItem, records},
};

use crate::util::{code, fixture_events, free_port, xx};

/// Runner flags that make every batch wait for every function: the items are compared
/// one by one with an uninterrupted run's, which holds for functions that never lag (a
/// lagging function catches up on the canonical chain and skips blocks orphaned
/// meanwhile: the same records net, another sequence).
const NEVER_LAG: [&str; 4] = [
    "--detach-after-ms",
    "3600000",
    "--slow-invocation-ms",
    "3600000",
];

/// A child process, SIGKILLed on drop.
struct Proc(Child);

impl Proc {
    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn sibling_binary(name: &str) -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_BIN_EXE_cargo-xxfunc"))
        .parent()?
        .join(name);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipping: {} is not built", path.display());
        None
    }
}

struct Setup {
    gateway_bin: PathBuf,
    runner_bin: PathBuf,
    dir: PathBuf,
    port: u16,
    token: &'static str,
}

impl Setup {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn store_url(&self) -> String {
        format!("file://{}", self.dir.join("modules").display())
    }

    /// Starts the gateway on its fixed port and waits until it answers.
    fn gateway(&self) -> Proc {
        let proc = Proc(
            Command::new(&self.gateway_bin)
                .args(["--listen", &format!("127.0.0.1:{}", self.port)])
                .args(["--token", self.token, "--store", &self.store_url()])
                .arg("--data-dir")
                .arg(self.dir.join("gateway"))
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("starting xxfunc-gateway"),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "the gateway did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        proc
    }

    /// A runner following the gateway and replaying the fixtures slowly.
    fn runner(&self, delay_ms: u64) -> Command {
        let mut cmd = Command::new(&self.runner_bin);
        cmd.args(["--gateway", &self.url(), "--token", self.token])
            .args(["--runner-id", "node-a", "--workers", "2"])
            .arg("--data-dir")
            .arg(self.dir.join("runner"))
            .arg("--fixtures")
            .arg(xxfunc_guest_modules::fixtures_dir())
            .args(["--replay-delay-ms", &delay_ms.to_string()])
            .args(NEVER_LAG)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        cmd
    }
}

/// What an uninterrupted run yields, from the runner alone (no gateway): the items of
/// every successful invocation's stdout, numbered from 1, inserts for commits and
/// retracts for reverts.
fn reference_items(setup: &Setup, hash: &str) -> Vec<(u64, ItemKind, u64, String)> {
    let data = setup.dir.join("reference");
    let status = Command::new(&setup.runner_bin)
        .arg("--data-dir")
        .arg(&data)
        .args(["--store", &setup.store_url(), "--exit-at-end"])
        .args(["--function", &format!("erc20-transfers={hash}")])
        .args(NEVER_LAG)
        .arg("--fixtures")
        .arg(xxfunc_guest_modules::fixtures_dir())
        .env("RUST_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success());
    let store = xxfunc_store::ModuleStore::open(&setup.store_url()).unwrap();
    let runner = xxfunc_runner::Runner::open(
        xxfunc_runner::RunnerConfig::new(&data),
        Arc::new(xxfunc_runner::StoreModules::new(store).unwrap()),
    )
    .unwrap();
    let mut seq = 0;
    let mut items = Vec::new();
    for rec in runner.outputs(&"erc20-transfers".parse().unwrap()).unwrap() {
        assert_eq!(rec.status, InvocationStatus::Ok);
        let kind = match rec.kind {
            EventKind::Commit => ItemKind::Insert,
            EventKind::Revert => ItemKind::Retract,
        };
        for line in records(rec.stdout.as_bytes()) {
            seq += 1;
            items.push((
                seq,
                kind,
                rec.block.number,
                String::from_utf8(line.to_vec()).unwrap(),
            ));
        }
    }
    items
}

/// Reads the SSE stream of `function` until `done`, reconnecting with `Last-Event-ID`
/// after every error or end of stream; returns every item read, in order.
fn consume(
    url: String,
    function: &'static str,
    done: Arc<AtomicBool>,
    read: Arc<Mutex<Vec<OutputItem>>>,
    reconnects: Arc<Mutex<u32>>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = reqwest::Client::new();
        while !done.load(Ordering::Relaxed) {
            let last = read.lock().last().map_or(0, |i| i.seq);
            let req = client
                .get(format!("{url}/v1/functions/{function}/outputs"))
                .header("Accept", "text/event-stream")
                .header("Last-Event-ID", last.to_string());
            let resp = match req.send().await {
                Ok(resp) if resp.status().is_success() => resp,
                _ => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    *reconnects.lock() += 1;
                    continue;
                }
            };
            let mut body = resp.bytes_stream();
            let mut buf: Vec<u8> = Vec::new();
            loop {
                let chunk = tokio::select! {
                    c = body.next() => c,
                    () = tokio::time::sleep(Duration::from_millis(200)) => {
                        if done.load(Ordering::Relaxed) { return; }
                        continue;
                    }
                };
                let Some(Ok(chunk)) = chunk else { break };
                buf.extend_from_slice(&chunk);
                // One event ends at a blank line.
                while let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
                    let event: Vec<u8> = buf.drain(..end + 2).collect();
                    let text = String::from_utf8(event).unwrap();
                    let mut id = None;
                    let mut data = String::new();
                    for line in text.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim().parse::<u64>().unwrap());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        }
                    }
                    if let Some(id) = id {
                        let item: OutputItem = serde_json::from_str(&data).unwrap();
                        assert_eq!(item.seq, id, "the event id is the item's seq");
                        read.lock().push(item);
                    }
                }
            }
            *reconnects.lock() += 1;
        }
    });
}

/// `record` with its `op` field removed: the row a retraction takes back.
fn row(record: &str) -> String {
    let mut v: Value = serde_json::from_str(record).unwrap();
    v.as_object_mut().unwrap().remove("op");
    v.to_string()
}

#[test]
fn stream_resumes_exactly_across_kill_dash_nine_of_runner_and_gateway() {
    let Some(events) = fixture_events() else {
        return;
    };
    let (Some(gateway_bin), Some(runner_bin)) = (
        sibling_binary("xxfunc-gateway"),
        sibling_binary("xxfunc-runner"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let setup = Setup {
        gateway_bin,
        runner_bin,
        dir: tmp.path().to_path_buf(),
        port: free_port(),
        token: "stream-token",
    };
    let mut gateway = setup.gateway();
    let module = tmp.path().join("erc20-transfers.wasm");
    std::fs::write(
        &module,
        xxfunc_guest_modules::module_bytes("erc20-transfers"),
    )
    .unwrap();
    let url = setup.url();
    let on = |args: &[&str], expect: i32| {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--gateway", &url, "--token", setup.token]);
        xx(tmp.path(), &full, expect)
    };
    let hash = on(
        &[
            "deploy",
            "--name",
            "erc20-transfers",
            module.to_str().unwrap(),
        ],
        code::OK,
    )
    .stdout
    .trim()
    .to_string();
    on(&["start", "erc20-transfers"], code::OK);
    let expected = reference_items(&setup, &hash);
    assert!(
        expected.iter().any(|i| i.1 == ItemKind::Retract),
        "the fixture chain's reorg retracts records"
    );

    let done = Arc::new(AtomicBool::new(false));
    let read = Arc::new(Mutex::new(Vec::new()));
    let reconnects = Arc::new(Mutex::new(0));
    let consumer = std::thread::spawn({
        let (url, done, read, reconnects) =
            (setup.url(), done.clone(), read.clone(), reconnects.clone());
        move || consume(url, "erc20-transfers", done, read, reconnects)
    });

    // Kill the runner three times and the gateway twice while the chain replays
    // (38 events at 60 ms each), each at a moment the stream has moved on.
    let mut runner = Proc(setup.runner(60).spawn().unwrap());
    let mut kills = 0;
    for round in 0..5 {
        let seen = read.lock().len();
        let deadline = Instant::now() + Duration::from_secs(60);
        while read.lock().len() == seen && read.lock().len() < expected.len() {
            assert!(Instant::now() < deadline, "the stream stopped at {seen}");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(150));
        if round % 2 == 0 {
            runner.kill9();
            runner = Proc(setup.runner(60).spawn().unwrap());
        } else {
            gateway.kill9();
            std::thread::sleep(Duration::from_millis(200));
            gateway = setup.gateway();
        }
        kills += 1;
    }
    // The last runner replays to the end and stays; wait for every item.
    let deadline = Instant::now() + Duration::from_secs(120);
    while read.lock().len() < expected.len() {
        assert!(
            Instant::now() < deadline,
            "the stream delivered {} of {} items",
            read.lock().len(),
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Nothing more arrives (no duplicate after the end).
    std::thread::sleep(Duration::from_millis(500));
    done.store(true, Ordering::Relaxed);
    consumer.join().unwrap();
    drop(runner);
    drop(gateway);

    let read = read.lock().clone();
    assert_eq!(kills, 5);
    assert!(
        *reconnects.lock() >= 2,
        "the gateway kills broke the stream"
    );
    let got: Vec<(u64, ItemKind, u64, String)> = read
        .iter()
        .map(|i| {
            (
                i.seq,
                i.kind,
                i.block.number,
                String::from_utf8(i.record_bytes()).unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got, expected,
        "exactly the uninterrupted run's items, in order"
    );
    assert!(read.iter().all(|i| i.runner == "node-a" && !i.binary));

    // Inserts minus retractions are exactly the records of the canonical blocks.
    let mut reverted = HashSet::new();
    for path in &events {
        let bytes = std::fs::read(path).unwrap();
        let env = xxfunc_abi::decode_owned(&bytes).unwrap();
        if env.kind == xxfunc_abi::EventKind::Revert {
            reverted.insert(env.block.hash);
        }
    }
    let mut net: BTreeMap<String, i64> = BTreeMap::new();
    let mut canonical: BTreeMap<String, i64> = BTreeMap::new();
    for item in &read {
        let r = row(&String::from_utf8(item.record_bytes()).unwrap());
        match item.kind {
            ItemKind::Insert => {
                *net.entry(r.clone()).or_default() += 1;
                if !reverted.contains(&item.block.hash) {
                    *canonical.entry(r).or_default() += 1;
                }
            }
            ItemKind::Retract => *net.entry(r).or_default() -= 1,
        }
    }
    net.retain(|_, n| *n != 0);
    assert_eq!(net, canonical);
}
