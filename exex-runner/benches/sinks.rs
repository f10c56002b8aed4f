//! Sink benchmarks through the real runner and its sink engine: a function emitting
//! `RECORDS` JSON records per block runs on generated blocks pushed to `serve` (as a
//! node's notifications are), and a sink delivers them to a real destination on loopback.
//! Prints one markdown row per figure: `| id | value | unit | baseline | ratio | notes |`.
//!
//! - `sink.webhook.blocks_per_s`: blocks acknowledged by a local HTTP receiver (hyper)
//!   per second, from the first block pushed to the last batch received; baseline: the
//!   same request bodies POSTed one after another by a plain `reqwest` client in the same
//!   run (no runner, no signature, no cursor).
//! - `sink.nats.records_per_s`: records delivered to a local `nats-server -js` through
//!   JetStream (each batch acknowledged by its `PublishAck`), seen by a subscriber;
//!   baseline: the same payloads published one after another with `async-nats` and their
//!   acks awaited, in the same run.
//!
//! The notes give the p99 delivery lag: blocks pushed one every `PACE`, from the push to
//! the destination holding the block's batch (invocation, commit and delivery included).
//!
//! Run with `cargo bench -p xxfunc-runner --bench sinks` (NATS rows need `nats-server`
//! on PATH or in /usr/sbin; skipped with a message otherwise).

use std::{
    collections::HashMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use crossbeam_channel::{Sender, unbounded};
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use xxfunc_api::StartFrom;
use xxfunc_runner::{
    ChainEvent, ServeOptions, StatusHandle, StopHandle, UntilDone, serve,
    test_utils::{Harness, PushSource},
    xxfunc_sinks::{
        Sink, SinkSpec,
        nats::NatsSink,
        webhook::{SigningKey, WebhookSink},
    },
};

#[path = "support/chain.rs"]
mod chain;
#[path = "support/records.rs"]
mod records;

const BLOCKS: u64 = 300;
const RECORDS: usize = 100;
const PACED_BLOCKS: u64 = 100;
const PACE: Duration = Duration::from_millis(20);
const SECRET: &str = "whsec_YmVuY2gtc2luay1zZWNyZXQtMDEyMzQ1Njc4OQ==";

/// Arrival time of each block's batch at the destination, by block number.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

/// The block number of a batch body (`{"block":{"number":N,...},...}`).
fn block_of(body: &[u8]) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(body).expect("a JSON batch");
    v["block"]["number"].as_u64().expect("a block number")
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// A runner with the records function started, serving pushed events with `sink`.
struct Served {
    tx: Sender<ChainEvent>,
    stop: StopHandle,
    thread: std::thread::JoinHandle<()>,
    pushed: HashMap<u64, Instant>,
    blocks: Vec<xxfunc_abi::ChainBlock>,
    next: usize,
}

impl Served {
    fn start(spec: SinkSpec, sink: Box<dyn Sink>) -> Self {
        let mut harness = Harness::new().expect("a runner");
        harness
            .start(
                "records",
                &records::records_module(RECORDS),
                StartFrom::Block(1),
            )
            .expect("the function starts");
        let mut runner = harness.take_runner();
        runner.add_sink(spec, sink, "bench").expect("the sink");
        let (tx, rx) = unbounded();
        let stop = StopHandle::new();
        let thread = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let _harness = harness;
                let options = ServeOptions {
                    until: UntilDone::Stopped,
                    idle: Duration::from_millis(1),
                    ..ServeOptions::default()
                };
                serve(
                    runner,
                    Box::new(PushSource(rx)),
                    None,
                    stop,
                    StatusHandle::default(),
                    options,
                )
                .expect("the runner serves");
            })
        };
        Self {
            tx,
            stop,
            thread,
            pushed: HashMap::new(),
            blocks: chain::blocks(BLOCKS + PACED_BLOCKS),
            next: 0,
        }
    }

    fn push(&mut self, n: u64) {
        for _ in 0..n {
            let block = self.blocks[self.next].clone();
            self.next += 1;
            self.pushed.insert(block.number, Instant::now());
            self.tx
                .send(ChainEvent::commit(0, block))
                .expect("the runner takes events");
        }
    }

    fn stop(self) {
        self.stop.stop();
        drop(self.tx);
        self.thread.join().expect("the runner thread");
    }
}

/// Waits until `arrivals` holds block `n` (60 s at most).
fn wait_for(arrivals: &Arrivals, n: u64) -> Instant {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(at) = arrivals.lock().get(&n) {
            return *at;
        }
        assert!(Instant::now() < deadline, "block {n} never arrived");
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Throughput from the first push of `BLOCKS` blocks to the last arrival, then the p99
/// lag of `PACED_BLOCKS` paced blocks, in ms.
fn measure(served: &mut Served, arrivals: &Arrivals) -> (f64, f64) {
    let t = Instant::now();
    served.push(BLOCKS);
    let end = wait_for(arrivals, BLOCKS);
    let rate = BLOCKS as f64 / end.duration_since(t).as_secs_f64();
    for _ in 0..PACED_BLOCKS {
        served.push(1);
        std::thread::sleep(PACE);
    }
    wait_for(arrivals, BLOCKS + PACED_BLOCKS);
    let arrivals = arrivals.lock();
    let lags: Vec<f64> = (BLOCKS + 1..=BLOCKS + PACED_BLOCKS)
        .map(|n| arrivals[&n].duration_since(served.pushed[&n]).as_secs_f64() * 1e3)
        .collect();
    (rate, percentile(lags, 0.99))
}

// ------------------------------------------------------------------ webhook

/// An HTTP receiver on loopback answering 200, noting each batch's arrival and body.
struct HttpReceiver {
    url: String,
    arrivals: Arrivals,
    bodies: Arc<Mutex<Vec<Bytes>>>,
    _runtime: tokio::runtime::Runtime,
}

impl HttpReceiver {
    fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let arrivals: Arrivals = Arc::default();
        let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        {
            let (arrivals, bodies) = (arrivals.clone(), bodies.clone());
            runtime.spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        return;
                    };
                    let (arrivals, bodies) = (arrivals.clone(), bodies.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |req: Request<Incoming>| {
                            let (arrivals, bodies) = (arrivals.clone(), bodies.clone());
                            async move {
                                let body = req.into_body().collect().await?.to_bytes();
                                let n = block_of(&body);
                                arrivals.lock().insert(n, Instant::now());
                                bodies.lock().push(body);
                                Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::new())))
                            }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        }
        Self {
            url,
            arrivals,
            bodies,
            _runtime: runtime,
        }
    }
}

fn webhook() {
    let receiver = HttpReceiver::start();
    let spec: SinkSpec = format!(
        "records=webhook:{},secret-env=XXFUNC_BENCH_UNUSED,name=hook",
        receiver.url
    )
    .parse()
    .unwrap();
    let sink = WebhookSink::new(&spec, SigningKey::from_secret(SECRET).unwrap()).unwrap();
    let mut served = Served::start(spec, Box::new(sink));
    let (rate, p99) = measure(&mut served, &receiver.arrivals);
    served.stop();

    // Baseline: the same bodies, POSTed one after another by a plain client.
    let bodies: Vec<Bytes> = receiver.bodies.lock().clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let base = runtime.block_on(async {
        let t = Instant::now();
        for body in bodies.iter().take(BLOCKS as usize) {
            let resp = client
                .post(&receiver.url)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .expect("the receiver answers");
            assert!(resp.status().is_success());
        }
        BLOCKS as f64 / t.elapsed().as_secs_f64()
    });
    let size = bodies.first().map_or(0, Bytes::len);
    println!(
        "| sink.webhook.blocks_per_s | {rate:.0} | blocks/s | {base:.0} | {:.2} | {BLOCKS} blocks x {RECORDS} records (one signed POST of ~{} KiB per block) from the runner's sink engine to a local hyper receiver, from the first block pushed to the last batch acknowledged; baseline: the same bodies POSTed one after another by reqwest; p99 delivery lag {p99:.1} ms from push to receipt ({PACED_BLOCKS} blocks, one every {} ms) |",
        rate / base,
        size / 1024,
        PACE.as_millis(),
    );
}

// --------------------------------------------------------------------- NATS

fn nats_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("nats-server")));
    }
    candidates.into_iter().find(|p| p.is_file())
}

struct NatsServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl NatsServer {
    fn start() -> Option<Self> {
        let bin = nats_bin()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self {
            child,
            url: format!("nats://127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn nats() {
    let Some(server) = NatsServer::start() else {
        eprintln!("sink.nats.records_per_s: skipped, nats-server not found");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    // A subscriber notes each batch's arrival (a JetStream stream's messages reach core
    // subscribers of its subjects too).
    let arrivals: Arrivals = Arc::default();
    let payloads: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let client = runtime
        .block_on(async_nats::connect(&server.url))
        .expect("connecting to nats-server");
    let mut subscriber = runtime
        .block_on(client.subscribe("bench.>"))
        .expect("subscribing");
    {
        let (arrivals, payloads) = (arrivals.clone(), payloads.clone());
        runtime.spawn(async move {
            use futures::StreamExt as _;
            while let Some(msg) = subscriber.next().await {
                let n = block_of(&msg.payload);
                arrivals.lock().insert(n, Instant::now());
                payloads.lock().push(msg.payload);
            }
        });
    }
    let spec: SinkSpec = format!(
        "records=nats:{},subject=bench,stream=BENCH,name=bus",
        server.url
    )
    .parse()
    .unwrap();
    let sink = NatsSink::from_spec(&spec).unwrap();
    let mut served = Served::start(spec.clone(), Box::new(sink));
    let (rate, p99) = measure(&mut served, &arrivals);
    served.stop();
    let records = rate * RECORDS as f64;

    // Baseline: the same payloads published to a fresh stream with their acks awaited.
    let payloads: Vec<Bytes> = payloads.lock().clone();
    let base = runtime.block_on(async {
        let js = async_nats::jetstream::new(client.clone());
        js.create_stream(async_nats::jetstream::stream::Config {
            name: "BASELINE".into(),
            subjects: vec!["baseline.>".into()],
            ..Default::default()
        })
        .await
        .expect("a stream");
        let t = Instant::now();
        for (i, payload) in payloads.iter().take(BLOCKS as usize).enumerate() {
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("baseline-{i}").as_str());
            js.publish_with_headers("baseline.records", headers, payload.clone())
                .await
                .expect("publish")
                .await
                .expect("acknowledged");
        }
        BLOCKS as f64 * RECORDS as f64 / t.elapsed().as_secs_f64()
    });
    println!(
        "| sink.nats.records_per_s | {records:.0} | records/s | {base:.0} | {:.2} | {BLOCKS} blocks x {RECORDS} records, one JetStream message per block (Nats-Msg-Id, PublishAck awaited) from the runner's sink engine to a local nats-server -js, from the first block pushed to the last message seen by a subscriber; baseline: the same payloads published one after another by async-nats with acks awaited (the sink too awaits each ack before the next batch, keeping batches strictly ordered; the figure includes invoking the function and committing its outcomes); p99 delivery lag {p99:.1} ms from push to receipt ({PACED_BLOCKS} blocks, one every {} ms) |",
        records / base,
        PACE.as_millis(),
    );
}

fn main() {
    webhook();
    nats();
}
