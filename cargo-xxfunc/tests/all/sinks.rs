//! `cargo xxfunc sink` with no server: a sink added to the local registry is delivered
//! by `cargo xxfunc dev --once` to a real HTTP receiver on loopback (signed POSTs, one
//! per block), its state is shown by `sink status`, and bad input is refused with the
//! field at fault and the usage exit code.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    sync::{Arc, Mutex},
};

use serde_json::Value;

use crate::util::{cli, code, fixture_events, new_function, run, xx};

const SECRET_VAR: &str = "XXFUNC_TEST_CLI_HOOK_SECRET";
const SECRET: &str = "whsec_Y2xpLXNpbmstdGVzdC1zZWNyZXQ=";

/// A request the receiver accepted: its headers (lowercased names) and JSON body.
struct Delivery {
    headers: Vec<(String, String)>,
    body: Value,
}

/// An HTTP/1.1 receiver answering 200 to every POST, on a thread.
fn receiver() -> (String, Arc<Mutex<Vec<Delivery>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut headers = Vec::new();
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.push((k.to_ascii_lowercase(), v.trim().to_string()));
                }
            }
            let len: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .map_or(0, |(_, v)| v.parse().unwrap());
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            let body = serde_json::from_slice(&body).unwrap();
            seen.lock().unwrap().push(Delivery { headers, body });
            let mut stream = reader.into_inner();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

#[test]
fn a_sink_added_offline_is_delivered_by_dev_and_shown_by_status() {
    if fixture_events().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let krate = new_function(tmp.path(), "transfers");
    xx(&krate, &["deploy", "--offline"], code::OK);
    xx(&krate, &["start", "transfers", "--offline"], code::OK);
    let (url, got) = receiver();

    // Bad input: named field, usage exit code, nothing stored.
    let out = xx(
        &krate,
        &["sink", "add", "transfers", "webhook", &url, "--offline"],
        code::USAGE,
    );
    assert!(out.stderr.contains("secret_env"), "{}", out.stderr);
    let out = xx(
        &krate,
        &[
            "sink",
            "add",
            "transfers",
            "kafka",
            "kafka://x",
            "--offline",
        ],
        code::USAGE,
    );
    assert!(out.stderr.contains("unknown sink kind"), "{}", out.stderr);
    let out = xx(
        &krate,
        &[
            "sink",
            "add",
            "transfers",
            "postgres",
            "postgres://u:pw@127.0.0.1/db",
            "--offline",
        ],
        code::USAGE,
    );
    assert!(out.stderr.contains("password_env"), "{}", out.stderr);
    let out = xx(
        &krate,
        &["sink", "list", "transfers", "--offline"],
        code::OK,
    );
    assert!(out.stderr.contains("has no sinks"), "{}", out.stderr);
    let out = xx(
        &krate,
        &["sink", "list", "nope", "--offline"],
        code::NOT_FOUND,
    );
    assert!(out.stderr.contains("nope"), "{}", out.stderr);

    let out = xx(
        &krate,
        &[
            "sink",
            "add",
            "transfers",
            "webhook",
            &url,
            "--secret-env",
            SECRET_VAR,
            "--offline",
        ],
        code::OK,
    );
    assert!(
        out.stderr.contains("Added sink transfers-webhook"),
        "{}",
        out.stderr
    );
    let out = xx(
        &krate,
        &["sink", "list", "transfers", "--offline"],
        code::OK,
    );
    let row = out.stdout.lines().nth(1).unwrap_or_default().to_string();
    assert!(
        row.starts_with("transfers-webhook")
            && row.contains("webhook")
            && row.contains("not reported yet"),
        "{}",
        out.stdout
    );

    // The embedded runner delivers it while it replays the fixtures.
    let out = run(cli(&krate).args(["dev", "--once"]).env(SECRET_VAR, SECRET));
    assert_eq!(out.code, code::OK, "{out:?}");
    let deliveries = got.lock().unwrap();
    assert!(!deliveries.is_empty(), "the receiver got batches");
    let mut inserted = 0;
    let mut retracted = 0;
    for d in deliveries.iter() {
        let header = |name: &str| {
            d.headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert!(header("webhook-signature").is_some_and(|s| s.starts_with("v1,")));
        assert_eq!(header("webhook-id"), d.body["key"].as_str());
        assert_eq!(d.body["type"], "xxfunc.batch");
        assert_eq!(d.body["runner"], "dev");
        let count = d.body["count"].as_u64().unwrap();
        assert_eq!(d.body["records"].as_array().unwrap().len() as u64, count);
        match d.body["kind"].as_str().unwrap() {
            "insert" => inserted += count,
            "retract" => retracted += count,
            other => panic!("kind {other}"),
        }
    }
    // Every output item was delivered once: as many as the outputs stream shows.
    let items = xx(
        &krate,
        &["outputs", "transfers", "--offline", "--json"],
        code::OK,
    )
    .json_lines();
    let kind = |k: &str| items.iter().filter(|i| i["kind"] == k).count() as u64;
    assert_eq!((inserted, retracted), (kind("insert"), kind("retract")));

    // Its state as the runner last reported it.
    let status = xx(
        &krate,
        &["sink", "status", "transfers", "--offline", "--json"],
        code::OK,
    )
    .json();
    let report = &status["runners"][0];
    assert_eq!(report["runner"], "dev", "{status}");
    assert_eq!(
        report["report"]["delivered_records"].as_u64(),
        Some(inserted + retracted)
    );
    assert_eq!(
        report["report"]["lag_records"].as_u64(),
        Some(0),
        "{status}"
    );
    let out = xx(
        &krate,
        &["sink", "status", "transfers", "--offline"],
        code::OK,
    );
    assert!(
        out.stdout.contains("runner dev:") && out.stdout.contains(", 0 records"),
        "{}",
        out.stdout
    );
    xx(
        &krate,
        &["sink", "status", "transfers", "nope", "--offline"],
        code::NOT_FOUND,
    );

    // Retry and remove.
    xx(
        &krate,
        &[
            "sink",
            "retry",
            "transfers",
            "transfers-webhook",
            "--offline",
        ],
        code::OK,
    );
    let out = xx(
        &krate,
        &[
            "sink",
            "remove",
            "transfers",
            "transfers-webhook",
            "--offline",
        ],
        code::OK,
    );
    assert!(
        out.stderr.contains("Removed sink transfers-webhook"),
        "{}",
        out.stderr
    );
    xx(
        &krate,
        &[
            "sink",
            "remove",
            "transfers",
            "transfers-webhook",
            "--offline",
        ],
        code::NOT_FOUND,
    );
}
