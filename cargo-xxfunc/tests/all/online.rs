//! The journey against a real `xxfunc-gateway` process backed by s3s-fs, with
//! a real `xxfunc-runner` process following the gateway and replaying fixtures.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use xxfunc_store::{ModuleHash, ModuleStore, test_utils::S3sFs};

use crate::util::{
    block_on, code, colliding_modules, fixture_events, free_port, new_function, tiny_module, xx,
};

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A binary of another workspace package, built next to ours by `cargo test`
/// (`cargo build -p <package>` builds it when testing only this crate).
fn sibling_binary(name: &str) -> Option<PathBuf> {
    let ours = Path::new(env!("CARGO_BIN_EXE_cargo-xxfunc"));
    let path = ours.parent()?.join(name);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "skipping: {} is not built; run `cargo build -p {name}` first",
            path.display()
        );
        None
    }
}

/// Starts the gateway and waits for its "listening on" line.
fn start_gateway(bin: &Path, data: &Path, s3: &S3sFs, token: &str) -> (Proc, String) {
    let port = free_port();
    let mut child = Command::new(bin)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--token",
            token,
            "--store",
            &s3.url("modules"),
        ])
        .arg("--data-dir")
        .arg(data)
        .envs(s3.env())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting xxfunc-gateway");
    let stdout = child.stdout.take().expect("piped stdout");
    let proc = Proc(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("reading the gateway's first line");
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    (proc, url.to_string())
}

#[test]
fn online_journey() {
    let Some(events) = fixture_events() else {
        return;
    };
    let Some(gateway_bin) = sibling_binary("xxfunc-gateway") else {
        return;
    };
    let Some(s3) = S3sFs::start() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let token = "journey-token";
    let (_gateway, gw) = start_gateway(&gateway_bin, &tmp.path().join("gateway"), &s3, token);
    let krate = new_function(tmp.path(), "transfers");
    let on = |args: &[&str], expect: i32| {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--gateway", &gw, "--token", token]);
        xx(&krate, &full, expect)
    };

    // Writes need the right token.
    let out = xx(
        &krate,
        &["deploy", "--gateway", &gw, "--token", "wrong"],
        code::AUTH,
    );
    assert!(
        out.stderr.contains("rejected the token") && out.stderr.contains("XXFUNC_TOKEN"),
        "{}",
        out.stderr
    );
    let out = xx(&krate, &["deploy", "--gateway", &gw], code::AUTH);
    assert!(out.stderr.contains("needs a token"), "{}", out.stderr);

    // build, test, deploy: only the hash on stdout.
    let built = on(&["build", "--json"], code::OK).json();
    on(&["test"], code::OK);
    let out = on(&["deploy"], code::OK);
    let h1 = out.stdout.trim().to_string();
    assert_eq!(out.stdout, format!("{h1}\n"));
    assert_eq!(built["hash"], h1, "the deployed hash is the built one");
    let h1_hash: ModuleHash = h1.parse().unwrap();
    let store = ModuleStore::open_with(&s3.url("modules"), s3.config()).unwrap();
    assert!(
        block_on(store.contains(&h1_hash)).unwrap(),
        "the module is in the S3 store"
    );

    // start by hash prefix.
    let started = on(&["start", &h1_hash.short(10), "--json"], code::OK).json();
    assert_eq!(
        (started["id"].as_str(), started["desired"].as_str()),
        (Some(h1.as_str()), Some("started"))
    );

    // Outputs appear once a runner follows the gateway.
    let Some(runner_bin) = sibling_binary("xxfunc-runner") else {
        return;
    };
    let _runner = Proc(
        Command::new(&runner_bin)
            .args([
                "--gateway",
                &gw,
                "--token",
                token,
                "--store",
                &s3.url("modules"),
            ])
            .arg("--data-dir")
            .arg(tmp.path().join("runner"))
            .arg("--fixtures")
            .arg(xxfunc_guest_modules::fixtures_dir())
            .envs(s3.env())
            .stdout(Stdio::null())
            .spawn()
            .expect("starting xxfunc-runner"),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let logs = on(&["logs", &h1, "--json", "-n", "1000"], code::OK).json_lines();
        if logs.len() == events.len() {
            assert!(logs.iter().all(|r| r["status"] == "ok"));
            assert!(
                logs.iter()
                    .any(|r| r["stdout"].as_str().unwrap().contains("\"op\":\"insert\""))
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "outputs did not appear: {} of {} records",
            logs.len(),
            events.len()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // Outcomes and reports travel on separate threads: the report may land just after
    // the last outcome.
    let status = loop {
        let status = on(&["status", &h1, "--json"], code::OK).json();
        if status["observed"]["state"] == "running"
            && status["counters"]["invocations"].as_u64() == Some(events.len() as u64)
        {
            break status;
        }
        assert!(Instant::now() < deadline, "no running report: {status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(status["observed"]["state"], "running");
    assert_eq!(status["reported"]["runner"], "local", "{status}");
    let human = on(&["status", &h1], code::OK).stdout;
    assert!(human.contains("(runner local, reported "), "{human}");
    assert_eq!(
        status["counters"]["invocations"].as_u64().unwrap() as usize,
        events.len()
    );

    // stop: the runner following the gateway stops the function and reports it.
    let stopped = on(&["stop", &h1, "--json"], code::OK).json();
    assert_eq!(stopped["desired"], "stopped");
    let deadline = Instant::now() + Duration::from_secs(30);
    while on(&["status", &h1, "--json"], code::OK).json()["observed"]["state"] != "stopped" {
        assert!(
            Instant::now() < deadline,
            "the runner never reported the stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // pin keeps the old hash across a redeploy.
    on(&["pin", "transfers"], code::OK);
    let v2_path = tmp.path().join("hello.wasm");
    std::fs::write(&v2_path, xxfunc_guest_modules::module_bytes("hello")).unwrap();
    let v2 = on(
        &[
            "deploy",
            "--json",
            "--name",
            "transfers",
            v2_path.to_str().unwrap(),
        ],
        code::OK,
    )
    .json();
    crate::util::pinned_redeploy(&v2, &h1);
    let named = on(&["status", "transfers", "--json"], code::OK).json();
    assert_eq!(named["hash"], h1);
    assert_eq!(named["versions"].as_array().unwrap().len(), 2);

    // gc removes only the unreferenced module; the pinned one stays.
    let orphan = block_on(store.put(tiny_module(11))).unwrap().hash;
    let dry = on(&["gc", "--dry-run", "--json"], code::OK).json();
    assert_eq!(dry["removed"], serde_json::json!([orphan.to_string()]));
    let gc = on(&["gc", "--json"], code::OK).json();
    assert_eq!(gc["removed"], serde_json::json!([orphan.to_string()]));
    let left = block_on(store.list()).unwrap();
    assert!(
        left.contains(&h1_hash) && !left.contains(&orphan),
        "{left:?}"
    );

    // Unknown name and ambiguous prefix, as the gateway reports them.
    let out = on(&["status", "erc20"], code::NOT_FOUND);
    assert!(
        out.stderr
            .contains(&format!("function \"erc20\" not found on {gw}")),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("run cargo xxfunc list"),
        "{}",
        out.stderr
    );
    let (a, b, prefix) = colliding_modules();
    for (name, bytes) in [("amb-a", a), ("amb-b", b)] {
        let path = tmp.path().join(format!("{name}.wasm"));
        std::fs::write(&path, bytes).unwrap();
        on(
            &["deploy", "--name", name, path.to_str().unwrap()],
            code::OK,
        );
    }
    let out = on(&["start", &format!("blake3:{prefix}")], code::AMBIGUOUS);
    assert!(out.stderr.contains("more hex digits"), "{}", out.stderr);
    for bytes in [a, b] {
        assert!(
            out.stderr.contains(&ModuleHash::of(bytes).to_string()),
            "candidates listed: {}",
            out.stderr
        );
    }
}

/// `dev` embeds a gateway and a runner: a deploy through its API, started with
/// a backfill from the first fixture block, produces outputs; Ctrl-C stops it cleanly.
#[test]
fn dev_serves_gateway_and_runner() {
    let Some(events) = fixture_events() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let port = free_port();
    let mut child = spawn_dev(tmp.path(), &data, port, &[]);
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let dev = Proc(child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let listening: serde_json::Value =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    assert_eq!(listening["type"], "listening");
    let gw = listening["gateway"].as_str().unwrap().to_string();
    let token = listening["token"].as_str().unwrap().to_string();
    assert_eq!(gw, format!("http://127.0.0.1:{port}"));
    assert_eq!(token.len(), 32, "a generated token");
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("dev.json")).unwrap()).unwrap();
    assert_eq!(
        (info["gateway"].as_str(), info["token"].as_str()),
        (Some(gw.as_str()), Some(token.as_str()))
    );

    // While dev runs, --offline explains how to reach it instead.
    let out = xx(
        tmp.path(),
        &["list", "--offline", "--data-dir", data.to_str().unwrap()],
        12,
    );
    assert!(
        out.stderr
            .contains(&format!("--gateway {gw} --token {token}")),
        "{}",
        out.stderr
    );

    let erc20 = tmp.path().join("erc20.wasm");
    std::fs::write(
        &erc20,
        xxfunc_guest_modules::module_bytes("erc20-transfers"),
    )
    .unwrap();
    let on = |args: &[&str], expect: i32| {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--gateway", &gw, "--token", &token]);
        xx(tmp.path(), &full, expect)
    };
    on(
        &["deploy", "--name", "erc20", erc20.to_str().unwrap()],
        code::OK,
    );
    let first = first_fixture_block(&events);
    on(
        &["start", "erc20", "--from-block", &first.to_string()],
        code::OK,
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let logs = on(&["logs", "erc20", "--json", "-n", "1000"], code::OK).json_lines();
        if !logs.is_empty()
            && logs
                .iter()
                .any(|r| r["stdout"].as_str().unwrap().contains("\"op\":\"insert\""))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no outputs from the embedded runner: {logs:?}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    // The same records stream on dev's stdout.
    let mut streamed = false;
    for _ in 0..1000 {
        line.clear();
        if stdout.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if line.contains("\"type\":\"invocation\"") && line.contains("\\\"op\\\":\\\"insert\\\"") {
            streamed = true;
            break;
        }
    }
    assert!(streamed, "dev streams invocation records on stdout");
    // Keep reading what dev prints, as a terminal would, so a full pipe never
    // blocks it while it shuts down.
    let drain = std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));

    let status = interrupt(dev);
    assert!(status.success(), "dev exits 0 on Ctrl-C: {status:?}");
    drain
        .join()
        .expect("stdout drain thread")
        .expect("reading dev's stdout");
    assert!(
        !data.join("dev.json").exists(),
        "dev.json is removed on exit"
    );
}

/// The block number of the first fixture event (from its envelope header, see docs/abi.md).
fn first_fixture_block(events: &[PathBuf]) -> u64 {
    let bytes = std::fs::read(&events[0]).unwrap();
    xxfunc_abi::decode(&bytes)
        .expect("a valid fixture envelope")
        .number()
}

/// `cargo xxfunc dev --json` in `dir` on `data`, its API on `port`, stdout and stderr piped.
fn spawn_dev(dir: &Path, data: &Path, port: u16, extra: &[&str]) -> Child {
    crate::util::cli(dir)
        .args(["dev", "--json", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .arg("--data-dir")
        .arg(data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting cargo xxfunc dev")
}

/// Ctrl-C to `dev`, as a terminal sends it; waits for it to exit.
fn interrupt(mut dev: Proc) -> std::process::ExitStatus {
    let pid = dev.0.id().to_string();
    let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(status) = dev.0.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "dev did not stop on Ctrl-C");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Lines of a child's stdout, read on a thread so the test can wait with a deadline.
fn line_channel(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for the first `--json` line of `dev` that `pick` accepts.
fn next_event(
    lines: &std::sync::mpsc::Receiver<String>,
    what: &str,
    pick: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("dev printed no {what}: {e}"));
        let event: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        if pick(&event) {
            return event;
        }
    }
}

/// `dev --watch` in a function crate deploys it at once, and again on every
/// save, restarting it from the first replayed block so the new version's
/// records stream; a save that does not compile is reported and the old
/// version keeps running.
#[test]
fn dev_watch_redeploys_on_save() {
    if fixture_events().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let krate = new_function(tmp.path(), "watched");
    let data = tmp.path().join("data");
    let mut child = spawn_dev(&krate, &data, free_port(), &["--watch"]);
    let lines = line_channel(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let (error_lines, error_rx) = std::sync::mpsc::channel::<String>();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            text.push_str(&line);
            text.push('\n');
            let _ = error_lines.send(line);
        }
        text
    });
    let dev = Proc(child);

    let is = |kind: &'static str| move |e: &serde_json::Value| e["type"] == kind;
    next_event(&lines, "listening line", is("listening"));
    let v1 = next_event(&lines, "first deploy", is("deployed"));
    assert_eq!(
        (v1["name"].as_str(), v1["version"].as_u64()),
        (Some("watched"), Some(1))
    );
    let insert = next_event(&lines, "v1 records", |e| {
        e["type"] == "invocation"
            && e["record"]["stdout"]
                .as_str()
                .is_some_and(|s| s.contains("\"op\":\"insert\""))
    });
    assert_eq!(insert["record"]["hash"], v1["hash"]);

    // A save that does not compile: reported, nothing redeployed.
    let main_rs = krate.join("src/main.rs");
    let source = std::fs::read_to_string(&main_rs).unwrap();
    std::fs::write(&main_rs, format!("{source}\nfn broken( {{\n")).unwrap();
    // Only once dev has reported it (on a loaded machine its build may start late, and
    // must not read the next save instead): a working save, version 2, whose records
    // carry the new field.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = error_rx
            .recv_timeout(left)
            .unwrap_or_else(|e| panic!("dev reported no error for the broken save: {e}"));
        if line.starts_with("error") {
            break;
        }
    }
    let edited = source.replacen("\"op\": op,", "\"op\": op, \"v\": 2,", 1);
    assert_ne!(edited, source, "the template emits an `op` field");
    std::fs::write(&main_rs, edited).unwrap();
    let v2 = next_event(&lines, "second deploy", is("deployed"));
    assert_eq!(v2["version"], 2, "the broken save deployed nothing: {v2}");
    assert_ne!(v2["hash"], v1["hash"]);
    let record = next_event(&lines, "v2 records", |e| {
        e["type"] == "invocation" && e["record"]["hash"] == v2["hash"]
    });
    assert!(
        record["record"]["stdout"]
            .as_str()
            .unwrap()
            .contains("\"v\":2")
            || record["record"]["stdout"] == "",
        "{record}"
    );
    next_event(&lines, "v2 transfer records", |e| {
        e["type"] == "invocation"
            && e["record"]["stdout"]
                .as_str()
                .is_some_and(|s| s.contains("\"v\":2"))
    });

    let status = interrupt(dev);
    let errors = errors.join().unwrap();
    assert!(
        status.success(),
        "dev exits 0 on Ctrl-C: {status:?}\n{errors}"
    );
    assert!(
        errors.contains("error") && errors.contains("broken"),
        "the broken save was reported: {errors}"
    );
}

/// A JSON-RPC call to `url` over a plain loopback HTTP/1.1 connection.
fn rpc(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        .to_string();
    let addr = url.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).expect("connecting to the node");
    write!(
        conn,
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    conn.read_to_string(&mut raw).unwrap();
    let (_, json) = raw.split_once("\r\n\r\n").expect("an HTTP body");
    serde_json::from_str::<serde_json::Value>(json).unwrap()["result"].clone()
}

/// `dev --rpc URL` follows a real dev chain (anvil on loopback): a function
/// deployed and started through dev's API runs on every block the node mines,
/// with the node's block hashes.
#[test]
fn dev_follows_a_node_over_rpc() {
    let anvil_bin = std::env::var_os("XXFUNC_ANVIL")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let tools = std::env::var_os("XXFUNC_TOOLS")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/xxfunc-tools")
                });
            tools.join("node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil")
        });
    if !anvil_bin.is_file() {
        eprintln!(
            "skipping: anvil not found at {} (scripts/test installs it)",
            anvil_bin.display()
        );
        return;
    }
    let node_port = free_port();
    let _anvil = Proc(
        Command::new(&anvil_bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &node_port.to_string(),
                "--silent",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting anvil"),
    );
    let node = format!("http://127.0.0.1:{node_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", node_port)).is_err() {
        assert!(Instant::now() < deadline, "anvil did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut child = spawn_dev(tmp.path(), &data, free_port(), &["--rpc", &node]);
    let lines = line_channel(child.stdout.take().unwrap());
    let dev = Proc(child);
    let listening = next_event(&lines, "listening line", |e| e["type"] == "listening");
    assert!(
        listening["source"].as_str().unwrap().contains(&node),
        "{listening}"
    );
    let gw = listening["gateway"].as_str().unwrap().to_string();
    let token = listening["token"].as_str().unwrap().to_string();
    let on = |args: &[&str], expect: i32| {
        let mut full: Vec<&str> = args.to_vec();
        full.extend(["--gateway", &gw, "--token", &token]);
        xx(tmp.path(), &full, expect)
    };
    let hello = tmp.path().join("hello.wasm");
    std::fs::write(&hello, xxfunc_guest_modules::module_bytes("hello")).unwrap();
    on(
        &["deploy", "--name", "hello", hello.to_str().unwrap()],
        code::OK,
    );
    on(&["start", "hello"], code::OK);
    // Let the runner take the start before the node moves, then mine three blocks.
    let deadline = Instant::now() + Duration::from_secs(30);
    while on(&["status", "hello", "--json"], code::OK).json()["observed"]["state"] != "running" {
        assert!(Instant::now() < deadline, "the runner never started hello");
        std::thread::sleep(Duration::from_millis(100));
    }
    rpc(&node, "anvil_mine", serde_json::json!([3]));
    let head = u64::from_str_radix(
        rpc(&node, "eth_blockNumber", serde_json::json!([]))
            .as_str()
            .unwrap()
            .trim_start_matches("0x"),
        16,
    )
    .unwrap();
    let record = next_event(&lines, "an invocation at the node's head", |e| {
        e["type"] == "invocation" && e["record"]["block"]["number"] == head
    });
    let hash = rpc(
        &node,
        "eth_getBlockByNumber",
        serde_json::json!([format!("{head:#x}"), false]),
    )["hash"]
        .clone();
    assert_eq!(record["record"]["block"]["hash"], hash, "{record}");
    assert_eq!(record["record"]["status"], "ok", "{record}");
    assert!(
        record["record"]["stdout"]
            .as_str()
            .unwrap()
            .contains(&format!("\"number\":{head}")),
        "{record}"
    );
    let status = interrupt(dev);
    assert!(status.success(), "dev exits 0 on Ctrl-C: {status:?}");
}
