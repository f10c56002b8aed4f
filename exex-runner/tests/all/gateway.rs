//! The runner following a real `xxfunc-gateway` (served in-process on
//! loopback): configured by the same flags as `xxfunc-runner --gateway`,
//! modules fetched through the gateway, start and stop through the HTTP API
//! reach the running runner, and its reports show up in the gateway's view.

use std::time::{Duration, Instant};

use clap::Parser;
use xxfunc_api::{FunctionId, FunctionView, ObservedState, client::Client};
use xxfunc_gateway::{GatewayConfig, RunningGateway, serve as serve_gateway};
use xxfunc_runner::{ChainEvent, OpenedRunner, RunnerArgs, ServeOptions};

use crate::{
    chain,
    registry::{Served, serve_pushed},
};

pub(crate) const TOKEN: &str = "runner-test-token";

/// The runner flags as a command line parses them.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    runner: RunnerArgs,
}

pub(crate) fn args(extra: &[&str]) -> RunnerArgs {
    let mut argv = vec!["xxfunc-runner"];
    argv.extend_from_slice(extra);
    Cli::try_parse_from(argv).expect("valid flags").runner
}

/// A real gateway served in-process on loopback, which a test can stop and
/// start again (on the same port, with the same or a fresh data directory).
pub(crate) struct Gateway {
    pub(crate) runtime: tokio::runtime::Runtime,
    running: Option<RunningGateway>,
    pub(crate) client: Client,
    dir: tempfile::TempDir,
    addr: std::net::SocketAddr,
}

impl Gateway {
    pub(crate) fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let running = runtime
            .block_on(serve_gateway(Self::config(
                dir.path(),
                "127.0.0.1:0".parse().unwrap(),
            )))
            .expect("gateway");
        let client = Client::new(&running.url())
            .unwrap()
            .with_token(Some(TOKEN.into()));
        Self {
            runtime,
            addr: running.addr(),
            running: Some(running),
            client,
            dir,
        }
    }

    fn config(dir: &std::path::Path, listen: std::net::SocketAddr) -> GatewayConfig {
        GatewayConfig::new(dir)
            .with_listen(listen)
            .with_token(Some(TOKEN.into()))
            .with_workers(2)
    }

    /// Stops serving (the port is then closed: requests fail).
    pub(crate) fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.stop());
        }
    }

    /// Serves again on the same port; `fresh` starts from an empty data
    /// directory (a gateway reset), else from the one it had.
    pub(crate) fn restart(&mut self, fresh: bool) {
        self.stop();
        if fresh {
            self.dir = tempfile::tempdir().unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let running = loop {
            match self
                .runtime
                .block_on(serve_gateway(Self::config(self.dir.path(), self.addr)))
            {
                Ok(running) => break running,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("gateway restart on {}: {e}; retrying", self.addr);
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("gateway restart on {}: {e}", self.addr),
            }
        };
        self.running = Some(running);
    }

    pub(crate) fn url(&self) -> String {
        self.client.base_url().to_string()
    }

    /// A copy of the gateway's data directory, taken while it is stopped (a backup).
    fn backup(&mut self) -> tempfile::TempDir {
        self.stop();
        let copy = tempfile::tempdir().unwrap();
        copy_dir(self.dir.path(), copy.path());
        copy
    }

    /// Serves again on the same port from a copy of `backup` (a restored backup).
    fn restore(&mut self, backup: &tempfile::TempDir) {
        self.stop();
        self.dir = tempfile::tempdir().unwrap();
        copy_dir(backup.path(), self.dir.path());
        self.restart(false);
    }

    /// The runner flags that follow this gateway as `runner-a` (no `--store`: modules
    /// come through the gateway).
    pub(crate) fn runner_args(&self) -> RunnerArgs {
        args(&[
            "--gateway",
            &self.url(),
            "--token",
            TOKEN,
            "--runner-id",
            "runner-a",
        ])
    }

    /// A runner following this gateway ([`runner_args`](Self::runner_args)), served
    /// on pushed events in a thread of its own.
    fn serve_runner(&self, dir: &std::path::Path) -> Served {
        let OpenedRunner { runner, registry } = self
            .runner_args()
            .open(dir, "local")
            .expect("runner opens against the gateway");
        assert!(registry.is_some());
        serve_pushed(runner, registry, ServeOptions::default())
    }

    /// Deploys and starts a guest module as `name`.
    pub(crate) fn deploy_and_start(&self, name: &str, module: &str) {
        let bytes = xxfunc_guest_modules::module_bytes(module);
        self.runtime
            .block_on(self.client.deploy(&name.parse().unwrap(), bytes))
            .unwrap();
        self.runtime
            .block_on(self.client.start(name, None))
            .unwrap();
    }

    fn view(&self, selector: &str) -> FunctionView {
        self.runtime
            .block_on(self.client.function(selector))
            .unwrap()
    }

    /// Polls the gateway's view of `selector` until `cond`, returning how long it took.
    fn wait_view(
        &self,
        selector: &str,
        what: &str,
        cond: impl Fn(&FunctionView) -> bool,
    ) -> Duration {
        let t = Instant::now();
        loop {
            let view = self.view(selector);
            if cond(&view) {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}: {view:#?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Gateway {
    /// `start` (from `from`) or `stop` of `hello` through the API; asserts the
    /// runner's report shows `want` within a second.
    fn toggle(&self, action: &str, from: Option<u64>, want: ObservedState) {
        let request = async {
            match action {
                "start" => self.client.start("hello", from).await,
                _ => self.client.stop("hello").await,
            }
        };
        self.runtime.block_on(request).unwrap();
        let took = self.wait_view("hello", action, |v| v.observed.as_ref() == Some(&want));
        eprintln!("{action} observed through the gateway after {took:?}");
        assert!(
            took < Duration::from_secs(1),
            "{action} reached the runner after {took:?}"
        );
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            self.runtime.block_on(running.stop());
        }
    }
}

#[test]
fn start_and_stop_through_the_gateway_reach_a_running_runner() {
    let gateway = Gateway::start();
    let hello = xxfunc_guest_modules::module_bytes("hello");
    let deployed = gateway
        .runtime
        .block_on(gateway.client.deploy(&"hello".parse().unwrap(), hello))
        .unwrap();
    let hash = deployed.upload.hash;
    gateway
        .runtime
        .block_on(gateway.client.start("hello", None))
        .unwrap();

    // No --store: modules come through the gateway, verified by hash.
    let dir = tempfile::tempdir().unwrap();
    let Served {
        tx,
        stop,
        status,
        thread,
    } = gateway.serve_runner(dir.path());
    let blocks = chain::blocks(None, 1, 6, 0);
    let send = |i: usize| tx.send(ChainEvent::commit(0, blocks[i].clone())).unwrap();
    let id = FunctionId::Name("hello".parse().unwrap());
    let cursor = |v: &FunctionView| v.cursor.map(|c| c.number);

    send(0);
    send(1);
    gateway.wait_view("hello", "cursor 2 reported", |v| {
        cursor(v) == Some(2) && v.observed == Some(ObservedState::Running)
    });
    assert_eq!(gateway.view("hello").hash, hash);
    assert_eq!(gateway.view("hello").counters.invocations, 2);

    // Stop through the API: the runner stops within a second and says so.
    gateway.toggle("stop", None, ObservedState::Stopped);
    send(2);
    crate::registry::wait_for(&status, "head 3", |r| r.head.map(|h| h.number) == Some(3));
    assert_eq!(
        cursor(&gateway.view("hello")),
        Some(2),
        "a stopped function sees nothing"
    );

    // Start again from block 2 through the API: it backfills 2 and 3.
    gateway.toggle("start", Some(2), ObservedState::Running);
    gateway.wait_view("hello", "backfilled to 3", |v| cursor(v) == Some(3));
    send(3);
    gateway.wait_view("hello", "cursor 4", |v| cursor(v) == Some(4));

    // The gateway keeps the outcomes the runner pushed (from its pusher
    // thread, so they may arrive just after the cursor).
    let deadline = Instant::now() + Duration::from_secs(30);
    let numbers = loop {
        let logs = gateway
            .runtime
            .block_on(gateway.client.logs("hello", Some(100)))
            .unwrap();
        let mut numbers: Vec<u64> = logs.invocations.iter().map(|r| r.block.number).collect();
        numbers.sort_unstable();
        if numbers.len() >= 5 || Instant::now() > deadline {
            break numbers;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(numbers, vec![1, 2, 2, 3, 4]);

    stop.stop();
    drop(tx);
    let runner = thread.join().unwrap().unwrap();
    let seen: Vec<u64> = runner
        .outputs(&id)
        .unwrap()
        .iter()
        .map(|r| r.block.number)
        .collect();
    assert_eq!(seen, vec![1, 2, 2, 3, 4], "in the runner's own records");
}

#[test]
fn gateway_flags_fail_clearly() {
    // Nothing listens on the port: the runner says which gateway it could not reach.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let err = args(&["--gateway", &url])
        .open(dir.path(), "local")
        .unwrap_err();
    let message = format!("{err:#}");
    assert!(
        message.contains("registry") && message.contains(&format!("127.0.0.1:{port}")),
        "{message}"
    );

    // Neither a store nor a gateway: nowhere to take modules from.
    let err = args(&[]).open(dir.path(), "local").unwrap_err();
    assert!(format!("{err:#}").contains("--store"), "{err:#}");

    // Not an http URL.
    let err = args(&["--gateway", "ftp://example"])
        .open(dir.path(), "local")
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("--gateway ftp://example"),
        "{err:#}"
    );

    // --gateway and --registry-dir exclude each other.
    let mut argv = vec![
        "xxfunc-runner",
        "--gateway",
        &url,
        "--registry-dir",
        "/tmp/r",
    ];
    assert!(Cli::try_parse_from(argv.drain(..)).is_err());

    // A wrong token is refused on reports, and the runner keeps running and says why.
    let gateway = Gateway::start();
    let OpenedRunner { runner, registry } = args(&[
        "--gateway",
        &gateway.url(),
        "--token",
        "wrong",
        "--store",
        "memory://",
    ])
    .open(dir.path(), "local")
    .expect("reads need no token");
    let registry = registry.unwrap();
    let err = registry.report(&runner.report()).unwrap_err();
    assert!(
        err.to_string().contains("403") || err.to_string().contains("token"),
        "{err}"
    );
}

/// The `xxfunc-runner` binary with `--gateway` and no `--store`: it runs what
/// the gateway says, and on SIGTERM exits 0 promptly, its last report saying
/// the function no longer runs.
#[test]
fn runner_binary_follows_the_gateway_and_stops_on_sigterm() {
    let gateway = Gateway::start();
    let hello = xxfunc_guest_modules::module_bytes("hello");
    gateway
        .runtime
        .block_on(gateway.client.deploy(&"hello".parse().unwrap(), hello))
        .unwrap();
    gateway
        .runtime
        .block_on(gateway.client.start("hello", None))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_xxfunc-runner"))
        .args(["--gateway", &gateway.url(), "--token", TOKEN])
        .arg("--data-dir")
        .arg(dir.path())
        .arg("--fixtures")
        .arg(xxfunc_guest_modules::fixtures_dir())
        .args(["--replay-delay-ms", "50"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting xxfunc-runner");
    gateway.wait_view("hello", "outputs from the runner binary", |v| {
        v.observed == Some(ObservedState::Running) && v.counters.invocations >= 3
    });
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the runner did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let view = gateway.view("hello");
    assert_eq!(view.observed, Some(ObservedState::Stopped), "{view:#?}");
    assert_eq!(view.reported.map(|r| r.runner), Some("local".to_string()));
}

/// Whether the runner's report shows `name` as `want`.
fn observed(r: &xxfunc_api::RunnerReport, name: &str, want: ObservedState) -> bool {
    r.functions
        .iter()
        .any(|f| f.id.to_string() == name && f.observed == want)
}

#[test]
fn a_runner_takes_a_new_snapshot_when_its_gateway_is_reset_or_restored() {
    let mut gateway = Gateway::start();
    gateway.deploy_and_start("hello", "hello");
    let dir = tempfile::tempdir().unwrap();
    let Served {
        tx,
        stop,
        status,
        thread,
    } = gateway.serve_runner(dir.path());
    let wait = |what: &str, cond: &dyn Fn(&xxfunc_api::RunnerReport) -> bool| {
        crate::registry::wait_for(&status, what, cond);
    };
    wait("hello running", &|r| {
        observed(r, "hello", ObservedState::Running)
    });

    // Reset: an empty gateway on the same port, where `other` is deployed and started.
    // Its feed (seq 1 and 2) is no longer than what the runner had seen of the old one,
    // so only its new epoch tells the runner to take a new snapshot.
    gateway.restart(true);
    gateway.deploy_and_start("other", "hello");
    wait("the reset gateway's desired state", &|r| {
        observed(r, "other", ObservedState::Running)
            && !observed(r, "hello", ObservedState::Running)
    });

    // A backup of this gateway, then more changes the runner follows.
    let backup = gateway.backup();
    gateway.restart(false);
    gateway.deploy_and_start("third", "hello");
    // `hello` was the old gateway's: this one has never heard of it.
    gateway
        .runtime
        .block_on(gateway.client.start("hello", None))
        .unwrap_err();
    wait("third running", &|r| {
        observed(r, "third", ObservedState::Running)
    });

    // Restored from the backup: same epoch, a head below the runner's position. A
    // change made after the restore reaches the runner (through the new snapshot).
    gateway.restore(&backup);
    gateway
        .runtime
        .block_on(gateway.client.stop("other"))
        .unwrap();
    wait("the restored gateway's desired state", &|r| {
        observed(r, "other", ObservedState::Stopped)
            && !observed(r, "third", ObservedState::Running)
    });

    // It still runs what the restored gateway starts, on the next block.
    gateway
        .runtime
        .block_on(gateway.client.start("other", None))
        .unwrap();
    wait("other running again", &|r| {
        observed(r, "other", ObservedState::Running)
    });
    let blocks = chain::blocks(None, 1, 2, 0);
    tx.send(ChainEvent::commit(0, blocks[0].clone())).unwrap();
    let other = FunctionId::Name("other".parse().unwrap());
    wait("other ran block 1", &|r| {
        crate::registry::cursor(r, &other) == Some(1)
    });
    stop.stop();
    drop(tx);
    thread.join().unwrap().unwrap();
}
