//! The webhook sink against a real HTTP receiver on loopback (hyper) that
//! verifies Standard Webhooks signatures, answers 500 to a third of the
//! requests, stalls past the sink's timeout on some, and records what it
//! accepted: after de-duplication by `webhook-id` the receiver holds the
//! canonical chain's records, in order (also after SIGKILLs of the runner at
//! random moments of delivery); a 410 stops the sink as `failed`
//! until a retry; a wrong secret is caught by the receiver's check. The
//! receiver verifies with the Standard Webhooks reference library
//! (`standardwebhooks`), not with the sink's own code.

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use xxfunc_api::outputs::ItemKind;
use xxfunc_runner::{
    SinkState,
    xxfunc_sinks::{
        ReceivedBatch, SinkSpec,
        webhook::{SigningKey, WebhookSink},
    },
};

use crate::sink_common::{Replay, apply, canonical, outcomes};

pub(crate) const SECRET: &str = "whsec_c2lua3MtdGVzdC1zZWNyZXQtMTIzNDU2Nzg5MA==";
const OTHER_SECRET: &str = "whsec_YW5vdGhlci1zZWNyZXQ=";

/// How the receiver answers.
#[derive(Clone, Copy, Default)]
pub(crate) struct Behaviour {
    /// Answer 500 to every request whose number is 1 modulo 3.
    pub(crate) flaky: bool,
    /// Accept, then stall this long before answering, on every 7th request.
    pub(crate) stall: Option<Duration>,
    /// Answer 410 once this many batches were accepted, while `gone` is set.
    pub(crate) gone_after: Option<usize>,
}

#[derive(Default)]
pub(crate) struct Seen {
    accepted: Vec<ReceivedBatch>,
    requests: u64,
    pub(crate) bad_signatures: u64,
    statuses: Vec<u16>,
}

pub(crate) struct Receiver {
    addr: SocketAddr,
    pub(crate) seen: Arc<Mutex<Seen>>,
    pub(crate) gone: Arc<AtomicBool>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    pub(crate) fn start(secret: &str, behaviour: Behaviour) -> Self {
        let key = Arc::new(standardwebhooks::Webhook::new(secret).unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let gone = Arc::new(AtomicBool::new(behaviour.gone_after.is_some()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = {
            let (seen, gone) = (seen.clone(), gone.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    loop {
                        let stream = tokio::select! {
                            _ = &mut stop_rx => return,
                            accepted = listener.accept() => accepted.unwrap().0,
                        };
                        let (seen, gone, key) = (seen.clone(), gone.clone(), key.clone());
                        tokio::spawn(async move {
                            let service = service_fn(move |req| {
                                let (seen, gone, key) = (seen.clone(), gone.clone(), key.clone());
                                async move {
                                    Ok::<_, Infallible>(
                                        answer(req, &key, behaviour, &seen, &gone).await,
                                    )
                                }
                            });
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                });
            })
        };
        Self {
            addr,
            seen,
            gone,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub(crate) fn accepted(&self) -> Vec<ReceivedBatch> {
        self.seen.lock().accepted.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn answer(
    req: Request<Incoming>,
    key: &standardwebhooks::Webhook,
    behaviour: Behaviour,
    seen: &Mutex<Seen>,
    gone: &AtomicBool,
) -> Response<Full<Bytes>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let id = header("webhook-id");
    let headers = req.headers().clone();
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let status = 'status: {
        let n = {
            let mut s = seen.lock();
            s.requests += 1;
            s.requests
        };
        if key.verify(&body, &headers).is_err() {
            seen.lock().bad_signatures += 1;
            break 'status StatusCode::UNAUTHORIZED;
        }
        let batch: ReceivedBatch = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(_) => break 'status StatusCode::BAD_REQUEST,
        };
        assert_eq!(batch.key, id, "webhook-id is the batch's key");
        if let Some(after) = behaviour.gone_after
            && gone.load(Ordering::SeqCst)
            && seen.lock().accepted.len() >= after
        {
            break 'status StatusCode::GONE;
        }
        if behaviour.flaky && n % 3 == 1 {
            break 'status StatusCode::INTERNAL_SERVER_ERROR;
        }
        seen.lock().accepted.push(batch);
        if let Some(stall) = behaviour.stall
            && n % 7 == 5
        {
            // Accepted, but the answer comes after the sink's timeout: it
            // sends the batch again under the same webhook-id.
            tokio::time::sleep(stall).await;
        }
        StatusCode::OK
    };
    seen.lock().statuses.push(status.as_u16());
    let mut response = Response::new(Full::new(Bytes::from_static(b"")));
    *response.status_mut() = status;
    response
}

fn spec(url: &str, extra: &str) -> SinkSpec {
    format!("erc20=webhook:{url},secret-env=XXFUNC_TEST_UNUSED,name=hook{extra}")
        .parse()
        .unwrap()
}

fn sink(spec: &SinkSpec, secret: &str) -> Box<WebhookSink> {
    Box::new(WebhookSink::new(spec, SigningKey::from_secret(secret).unwrap()).unwrap())
}

fn delivers_the_canonical_chain(confirmations: u64) {
    let replay = Replay::new();
    let receiver = Receiver::start(
        SECRET,
        Behaviour {
            flaky: true,
            stall: Some(Duration::from_millis(900)),
            gone_after: None,
        },
    );
    let data = replay.dir.path().join("runner");
    let mut runner = replay.runner(&data);
    let spec = spec(
        &receiver.url(),
        &format!(",timeout-ms=300,confirmations={confirmations}"),
    );
    runner
        .add_sink(spec.clone(), sink(&spec, SECRET), "local")
        .unwrap();
    let served = replay.serve(runner, true);
    let runner = served.thread.join().unwrap();
    let status = served.status.sinks().remove(0);

    let log = outcomes(&runner, &replay.id);
    let want = canonical(&log, confirmations);
    let accepted = receiver.accepted();
    let got = apply(&accepted);
    assert!(!want.is_empty());
    assert_eq!(
        got, want,
        "the receiver holds the canonical records, in order"
    );
    let seen = receiver.seen.lock();
    let retracts = accepted
        .iter()
        .filter(|b| b.kind == ItemKind::Retract)
        .count();
    if confirmations == 0 {
        assert!(retracts > 0, "the fixture's reorg is undone by retractions");
    } else {
        // The fixture's reorgs are at most 3 deep.
        assert_eq!(
            retracts, 0,
            "no retraction with {confirmations} confirmations"
        );
    }
    let unique: std::collections::HashSet<_> = accepted.iter().map(|b| &b.key).collect();
    assert!(
        unique.len() < accepted.len(),
        "stalled answers made the sink send some batches twice"
    );
    eprintln!(
        "webhook confirmations={confirmations}: {} requests, statuses 500: {}, accepted {} \
         ({} unique), sink status {status:?}",
        seen.requests,
        seen.statuses.iter().filter(|s| **s == 500).count(),
        accepted.len(),
        unique.len()
    );
    assert_eq!(seen.bad_signatures, 0);
    assert!(seen.statuses.contains(&500), "some requests failed");
    assert!(status.failed_attempts > 0);
    let unique_records: usize = {
        let mut seen = std::collections::HashSet::new();
        accepted
            .iter()
            .filter(|b| seen.insert(b.key.clone()))
            .map(|b| b.records.len())
            .sum()
    };
    assert_eq!(status.delivered_records as usize, unique_records);
    if confirmations == 0 {
        assert_eq!(status.lag_records, 0, "{status:?}");
    } else {
        // The last blocks are held back until deeper blocks come.
        assert!(status.lag_blocks >= confirmations, "{status:?}");
    }
}

#[test]
fn webhook_receiver_holds_the_canonical_chain_despite_500s_and_stalls() {
    delivers_the_canonical_chain(0);
}

#[test]
fn webhook_with_three_confirmations_never_retracts() {
    delivers_the_canonical_chain(3);
}

#[test]
fn webhook_410_fails_the_sink_until_a_retry_delivers_the_rest() {
    let replay = Replay::new();
    let receiver = Receiver::start(
        SECRET,
        Behaviour {
            gone_after: Some(3),
            ..Behaviour::default()
        },
    );
    let data = replay.dir.path().join("runner");
    let mut runner = replay.runner(&data);
    let spec = spec(&receiver.url(), ",attempts=2");
    runner
        .add_sink(spec.clone(), sink(&spec, SECRET), "local")
        .unwrap();
    let served = replay.serve(runner, false);
    let failed = served.wait_sink("hook", "failed on 410", |s| s.state == SinkState::Failed);
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("410"),
        "{failed:?}"
    );
    assert_eq!(failed.attempts, 2, "two attempts of the refused batch");
    let metrics = xxfunc_runner::metrics::render(&served.status);
    assert!(
        metrics.contains(r#"xxfunc_sink_state{sink="hook",id="erc20",state="failed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"xxfunc_sink_attempts{sink="hook",id="erc20"} 2"#),
        "{metrics}"
    );
    // Nothing after the refused batch was delivered (strictly in order).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.accepted().len(), 3);
    assert_eq!(served.sink("hook").unwrap().state, SinkState::Failed);

    // Every event was run (the function's log is complete).
    served.wait_every_event(&replay);
    receiver.gone.store(false, Ordering::SeqCst);
    assert!(served.status.retry_sink("hook"));
    assert!(!served.status.retry_sink("no-such-sink"));
    let total = {
        // The function's log is complete once the source ended; wait for the
        // sink to reach its end.
        served.wait_sink("hook", "caught up after the retry", |s| {
            s.state == SinkState::Idle && s.lag_records == 0 && s.cursor.item > 0
        })
    };
    let runner = served.finish();
    let want = canonical(&outcomes(&runner, &replay.id), 0);
    assert_eq!(apply(&receiver.accepted()), want);
    assert!(total.delivered_batches > 3);
}

#[test]
fn webhook_with_a_wrong_secret_is_refused_by_the_receivers_check() {
    let replay = Replay::new();
    let receiver = Receiver::start(SECRET, Behaviour::default());
    let data = replay.dir.path().join("runner");
    let mut runner = replay.runner(&data);
    let spec = spec(&receiver.url(), ",attempts=2");
    runner
        .add_sink(spec.clone(), sink(&spec, OTHER_SECRET), "local")
        .unwrap();
    let served = replay.serve(runner, false);
    let failed = served.wait_sink("hook", "failed on 401", |s| s.state == SinkState::Failed);
    let _ = served.finish();
    let seen = receiver.seen.lock();
    assert_eq!(
        seen.bad_signatures, 2,
        "both attempts failed the signature check"
    );
    assert!(seen.accepted.is_empty());
    assert!(failed.last_error.unwrap().contains("401"));
    assert_eq!(failed.cursor.item, 0, "nothing acknowledged");
    // Behind by the events the function saw, not by the chain's height.
    let events = xxfunc_runner::FixtureSource::open(&replay.events)
        .unwrap()
        .events()
        .len() as u64;
    assert!(
        (1..=events).contains(&failed.lag_blocks),
        "lag {} blocks with {events} events",
        failed.lag_blocks
    );
}

const BIN: &str = env!("CARGO_BIN_EXE_xxfunc-runner");

/// `GET /metrics` of a runner, as text (empty while it does not answer).
fn scrape(addr: &str) -> String {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut out = String::new();
    let _ = stream.read_to_string(&mut out);
    out
}

fn runner_binary(
    replay: &Replay,
    data: &std::path::Path,
    sink: &str,
    allow: &str,
) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--store", &replay.store_url])
        .arg("--fixtures")
        .arg(&replay.events)
        .arg("--function")
        .arg(format!("{}={}", replay.id, replay.hash))
        .args(["--sink", sink, "--sink-allow-host", allow])
        .env("XXFUNC_TEST_HOOK_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null());
    cmd
}

#[test]
fn runner_binary_takes_sink_flags_and_sighup_retries_a_failed_sink() {
    let replay = Replay::new();
    let receiver = Receiver::start(
        SECRET,
        Behaviour {
            gone_after: Some(2),
            ..Behaviour::default()
        },
    );
    let data = replay.dir.path().join("runner");
    let sink = format!(
        "erc20=webhook:{},secret-env=XXFUNC_TEST_HOOK_SECRET,attempts=2,name=hook",
        receiver.url()
    );

    // Refused at start: a host off the allow-list, a secret not set.
    let out = runner_binary(&replay, &data, &sink, "hooks.example.invalid")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("is not allowed by the runner's --sink-allow-host list"),
        "{stderr}"
    );
    let out = runner_binary(&replay, &data, &sink, "127.0.0.1")
        .env_remove("XXFUNC_TEST_HOOK_SECRET")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("secret-env XXFUNC_TEST_HOOK_SECRET is not set"),
        "{stderr}"
    );

    let metrics_addr = format!(
        "127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let mut child = runner_binary(&replay, &data, &sink, "127.0.0.1")
        .args(["--metrics-addr", &metrics_addr])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let wait_metrics = |what: &str, cond: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let m = scrape(&metrics_addr);
            if cond(&m) {
                return m;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}: {m}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_metrics("the sink failed", &|m| {
        m.contains(r#"xxfunc_sink_state{sink="hook",id="erc20",state="failed"} 1"#)
    });
    assert_eq!(receiver.accepted().len(), 2);

    receiver.gone.store(false, Ordering::SeqCst);
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let events = xxfunc_runner::FixtureSource::open(&replay.events)
        .unwrap()
        .events()
        .len();
    let all_run = format!(r#"xxfunc_function_invocations_total{{id="erc20"}} {events}"#);
    let m = wait_metrics("the sink caught up", &|m| {
        m.contains(r#"xxfunc_sink_state{sink="hook",id="erc20",state="idle"} 1"#)
            && m.contains(r#"xxfunc_sink_lag_records{sink="hook",id="erc20"} 0"#)
            && m.contains(&all_run)
    });
    assert!(
        m.contains(r#"xxfunc_sink_failed_attempts_total{sink="hook",id="erc20"} 2"#),
        "{m}"
    );
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    assert!(child.wait().unwrap().success());

    let runner = replay.runner(&data);
    let want = canonical(&outcomes(&runner, &replay.id), 0);
    assert_eq!(apply(&receiver.accepted()), want);
}

/// Reorgs of depth 1 to 5 while the sink delivers (a receiver failing a third of the
/// requests), pushed as a node's notifications are: after de-duplication the receiver
/// holds the canonical chain's records of the blocks `confirmations` deep, in order;
/// with 3 confirmations only the reorgs deeper than 3 are ever retracted.
fn delivers_through_deep_reorgs(confirmations: u64) {
    use xxfunc_api::{EventKind, StartFrom};
    use xxfunc_runner::{
        ChainEvent, ServeOptions, StatusHandle, StopHandle, UntilDone, serve,
        test_utils::{Harness, PushSource},
    };

    use crate::chain;

    let receiver = Receiver::start(
        SECRET,
        Behaviour {
            flaky: true,
            ..Behaviour::default()
        },
    );
    let mut harness = Harness::new().unwrap();
    let id = harness
        .start(
            "erc20",
            &xxfunc_guest_modules::module_bytes("hello"),
            StartFrom::Block(1),
        )
        .unwrap();
    let mut runner = harness.take_runner();
    let spec = spec(
        &receiver.url(),
        &format!(",timeout-ms=2000,confirmations={confirmations}"),
    );
    runner
        .add_sink(spec.clone(), sink(&spec, SECRET), "local")
        .unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let status = StatusHandle::default();
    let thread = {
        let status = status.clone();
        std::thread::spawn(move || {
            let options = ServeOptions {
                until: UntilDone::SourceEnd,
                sink_drain: Duration::from_secs(120),
                ..ServeOptions::default()
            };
            serve(
                runner,
                Box::new(PushSource(rx)),
                None,
                StopHandle::new(),
                status,
                options,
            )
            .unwrap()
        })
    };

    // A base of 8 blocks, then for depth 1..=5: revert the top `depth` blocks and commit
    // `depth + 2` on a new branch; each step lets the sink deliver meanwhile.
    let mut chain = chain::blocks(None, 1, 8, 0);
    let send = |ev: ChainEvent| tx.send(ev).unwrap();
    for b in &chain {
        send(ChainEvent::commit(0, b.clone()));
    }
    for depth in 1..=5u8 {
        std::thread::sleep(Duration::from_millis(150));
        for _ in 0..depth {
            let top = chain.pop().unwrap();
            send(ChainEvent::revert(0, top));
        }
        let parent = chain.last().cloned();
        let next = parent.as_ref().map_or(1, |p| p.number + 1);
        let fork = chain::blocks(parent.as_ref(), next, u64::from(depth) + 2, depth);
        for b in &fork {
            send(ChainEvent::commit(0, b.clone()));
        }
        chain.extend(fork);
    }
    drop(tx);
    let runner = thread.join().unwrap();

    let log = outcomes(&runner, &id);
    assert!(log.iter().any(|o| o.kind == EventKind::Revert));
    let want = canonical(&log, confirmations);
    let tip = chain.last().unwrap().number;
    assert_eq!(
        want.len() as u64,
        tip - confirmations,
        "every canonical block has records"
    );
    let accepted = receiver.accepted();
    assert_eq!(
        apply(&accepted),
        want,
        "the receiver holds the canonical records"
    );
    let retracted: std::collections::BTreeSet<u64> = accepted
        .iter()
        .filter(|b| b.kind == ItemKind::Retract)
        .map(|b| b.block.number)
        .collect();
    if confirmations == 0 {
        assert!(!retracted.is_empty(), "reorgs are undone by retractions");
    } else {
        // Reorgs of depth 1 to 3 happen above the delivered blocks; 4 and 5 reach below.
        assert!(
            !retracted.is_empty(),
            "the reorgs deeper than {confirmations}"
        );
        let deepest: u64 = (1..=5).sum::<u64>();
        assert!(retracted.len() as u64 <= deepest, "{retracted:?}");
    }
    assert_eq!(receiver.seen.lock().bad_signatures, 0);
    assert!(
        status.sinks()[0].failed_attempts > 0,
        "the receiver's 500s were retried"
    );
}

#[test]
fn webhook_holds_the_canonical_chain_through_reorgs_of_depth_1_to_5() {
    delivers_through_deep_reorgs(0);
}

#[test]
fn webhook_with_three_confirmations_through_reorgs_of_depth_1_to_5() {
    delivers_through_deep_reorgs(3);
}

#[test]
fn webhook_receiver_holds_the_canonical_chain_after_kill_dash_nine_at_random_moments() {
    let replay = Replay::new();
    // Every third request answered 500: kills land between attempts too.
    let receiver = Receiver::start(
        SECRET,
        Behaviour {
            flaky: true,
            ..Behaviour::default()
        },
    );
    let data = replay.dir.path().join("runner");
    let sink = format!(
        "erc20=webhook:{},secret-env=XXFUNC_TEST_HOOK_SECRET,name=hook",
        receiver.url()
    );
    const DELAY_MS: u64 = 50;
    let run = |delay: u64, to_end: bool| {
        let mut cmd = runner_binary(&replay, &data, &sink, "127.0.0.1");
        cmd.args(["--replay-delay-ms", &delay.to_string()]);
        if to_end {
            cmd.arg("--exit-at-end");
        }
        cmd
    };
    let k = crate::sink_common::kill_while_delivering(
        || run(DELAY_MS, false).spawn().unwrap(),
        || receiver.accepted().len() as u64,
        DELAY_MS,
    );
    assert!(run(0, true).status().unwrap().success());

    // After de-duplication by webhook-id, in order: the canonical chain's records.
    let runner = replay.runner(&data);
    let want = canonical(&outcomes(&runner, &replay.id), 0);
    assert!(!want.is_empty());
    let accepted = receiver.accepted();
    assert_eq!(apply(&accepted), want, "after {k:?}");
    assert_eq!(receiver.seen.lock().bad_signatures, 0);
    let unique: std::collections::HashSet<_> = accepted.iter().map(|b| &b.key).collect();
    eprintln!(
        "webhook: {k:?}; {} batches accepted, {} unique",
        accepted.len(),
        unique.len()
    );
}
