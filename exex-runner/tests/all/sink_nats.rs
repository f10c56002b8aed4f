//! The NATS JetStream sink against a real `nats-server -js` on loopback:
//! the stream holds one message per block with `Nats-Msg-Id` = the batch's
//! key, and its messages, applied in order, are the canonical chain's
//! records, also when the server is down for a while during delivery and when the
//! runner is killed (SIGKILL) at random moments while it delivers.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use futures::StreamExt;
use xxfunc_runner::{
    SinkState,
    xxfunc_sinks::{self, ReceivedBatch},
};

use crate::sink_common::{Replay, apply, canonical, outcomes};

struct NatsServer {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
    bin: PathBuf,
}

fn nats_bin() -> Option<PathBuf> {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

impl NatsServer {
    fn start() -> Option<Self> {
        let Some(bin) = nats_bin() else {
            eprintln!("skipping: nats-server not found (apt-get install nats-server)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut s = Self {
            child: None,
            port,
            store: tempfile::tempdir().unwrap(),
            bin,
        };
        s.up();
        Some(s)
    }

    fn up(&mut self) {
        let child = Command::new(&self.bin)
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn down(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Every message of `stream`, in order, with its `Nats-Msg-Id`.
    fn messages(&self, stream: &str) -> Vec<(String, String, ReceivedBatch)> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = async_nats::connect(self.url()).await.unwrap();
            let js = async_nats::jetstream::new(client);
            let mut stream = js.get_stream(stream).await.unwrap();
            let count = stream.info().await.unwrap().state.messages;
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
                .await
                .unwrap();
            let mut messages = consumer.messages().await.unwrap();
            let mut out = Vec::new();
            while (out.len() as u64) < count {
                let m = messages.next().await.unwrap().unwrap();
                let headers = m.headers.clone().unwrap_or_default();
                let id = headers
                    .get("Nats-Msg-Id")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                let kind = headers
                    .get("Xxfunc-Kind")
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                out.push((id, kind, serde_json::from_slice(&m.payload).unwrap()));
            }
            out
        })
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.down();
    }
}

#[test]
fn nats_stream_holds_the_canonical_chain_across_a_server_outage() {
    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    let replay = Replay::new();
    let data = replay.dir.path().join("runner");
    let spec: xxfunc_sinks::SinkSpec = format!("erc20=nats:{},name=bus,timeout-ms=500", nats.url())
        .parse()
        .unwrap();
    let runner = replay.runner_with_sink(&data, &spec);
    // Down before the replay: the sink retries opening.
    nats.down();
    let served = replay.serve_with_delay(runner, false, Duration::from_millis(30));
    let retrying = served.wait_sink("bus", "retrying while the server is down", |s| {
        s.state == SinkState::Retrying && s.attempts >= 2
    });
    assert!(retrying.last_error.is_some());
    nats.up();
    // Down again in the middle of the delivery, then back.
    served.wait_sink("bus", "a few batches delivered", |s| {
        s.delivered_batches >= 3
    });
    nats.down();
    let during = served.wait_sink("bus", "retrying during the outage", |s| {
        s.state == SinkState::Retrying && s.attempts >= 2
    });
    nats.up();
    served.wait_every_event(&replay);
    let done = served.wait_sink("bus", "caught up", |s| {
        s.state == SinkState::Idle && s.lag_records == 0 && s.cursor.item > 0
    });
    let runner = served.finish();

    let messages = nats.messages("XXFUNC");
    for (id, kind, batch) in &messages {
        assert_eq!(id, &batch.key, "Nats-Msg-Id is the batch's key");
        assert_eq!(kind, &format!("{:?}", batch.kind).to_lowercase());
    }
    let keys: std::collections::HashSet<&String> = messages.iter().map(|(id, _, _)| id).collect();
    assert_eq!(keys.len(), messages.len(), "JetStream kept each batch once");
    let batches: Vec<ReceivedBatch> = messages.into_iter().map(|(_, _, b)| b).collect();
    let want = canonical(&outcomes(&runner, &replay.id), 0);
    assert_eq!(apply(&batches), want);
    eprintln!(
        "nats: {} messages; during the outage {during:?}; at the end {done:?}",
        batches.len()
    );
    assert!(
        done.failed_attempts >= 4,
        "both outages were seen: {done:?}"
    );
}

#[test]
fn nats_stream_holds_the_canonical_chain_after_kill_dash_nine_at_random_moments() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let replay = Replay::new();
    let data = replay.dir.path().join("runner");
    let sink = format!("erc20=nats:{},name=bus", nats.url());
    const DELAY_MS: u64 = 50;
    let run = |delay: u64, to_end: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xxfunc-runner"));
        cmd.arg("--data-dir")
            .arg(&data)
            .args(["--store", &replay.store_url])
            .arg("--fixtures")
            .arg(&replay.events)
            .args(["--replay-delay-ms", &delay.to_string()])
            .arg("--function")
            .arg(format!("{}={}", replay.id, replay.hash))
            .args(["--sink", &sink, "--sink-allow-host", "127.0.0.1"])
            .env("RUST_LOG", "error")
            .stdout(Stdio::null());
        if to_end {
            cmd.arg("--exit-at-end");
        }
        cmd
    };
    // Messages in the stream (0 before the sink created it).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let js = rt.block_on(async {
        async_nats::jetstream::new(async_nats::connect(nats.url()).await.unwrap())
    });
    let count = || -> u64 {
        rt.block_on(async {
            match js.get_stream("XXFUNC").await {
                Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
                Err(_) => 0,
            }
        })
    };
    let k = crate::sink_common::kill_while_delivering(
        || run(DELAY_MS, false).spawn().unwrap(),
        count,
        DELAY_MS,
    );
    assert!(run(0, true).status().unwrap().success());

    // JetStream dropped what a killed runner published twice (Nats-Msg-Id): the stream,
    // applied in order, is the canonical chain's records.
    let messages = nats.messages("XXFUNC");
    let keys: std::collections::HashSet<&String> = messages.iter().map(|(id, _, _)| id).collect();
    assert_eq!(keys.len(), messages.len(), "each batch once in the stream");
    let batches: Vec<ReceivedBatch> = messages.into_iter().map(|(_, _, b)| b).collect();
    let runner = replay.runner(&data);
    let want = canonical(&outcomes(&runner, &replay.id), 0);
    assert!(!want.is_empty());
    assert_eq!(apply(&batches), want, "after {k:?}");
    eprintln!("nats: {k:?}; {} messages", batches.len());
}
