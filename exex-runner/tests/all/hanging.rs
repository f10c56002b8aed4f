//! A registry that never answers reports and pushes: a real socket on
//! loopback that accepts the runner's connections, reads its requests and
//! stays silent, behind a real `GatewayRegistry` (desired state comes from a
//! real in-process registry). Blocks and desired-state changes are still
//! processed, outcomes kept, and a clean stop returns.

use std::{
    io::Read,
    net::{TcpListener, TcpStream},
    sync::Arc,
    time::{Duration, Instant},
};

use parking_lot::Mutex;
use xxfunc_api::{
    FeedPage, FeedSnapshot, FunctionId, ObservedState, RunnerReport,
    client::Client,
    outputs::{OutcomesAck, OutcomesPage},
};
use xxfunc_runner::{
    ChainEvent, GatewayRegistry, LocalRegistry, Registry, Runner, RunnerConfig, ServeOptions,
    StoreModules,
};
use xxfunc_store::ModuleStore;

use crate::{
    chain,
    gateway::TOKEN,
    pusher::{hello_registry, wait_until},
    registry::{serve_pushed, wait_for},
};

/// Accepts connections on 127.0.0.1, reads every byte sent and never writes
/// one. Keeps the request lines it saw.
struct Silent {
    addr: std::net::SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Silent {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = seen.clone();
                std::thread::spawn(move || read_silently(stream, &seen));
            }
        });
        Self { addr, requests }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn saw(&self, line: &str) -> bool {
        self.requests.lock().iter().any(|l| l.starts_with(line))
    }
}

/// Reads until the peer closes, recording lines that start a request.
fn read_silently(mut stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut buf = vec![0u8; 64 << 10];
    let mut carry = Vec::new();
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                carry.extend_from_slice(&buf[..n]);
                while let Some(end) = carry.windows(2).position(|w| w == b"\r\n") {
                    let line = String::from_utf8_lossy(&carry[..end]).into_owned();
                    if line.starts_with("POST ") || line.starts_with("GET ") {
                        seen.lock().push(line);
                    }
                    carry.drain(..end + 2);
                }
            }
        }
    }
}

/// Desired state from `feed`; reports and outcome pages to `gateway`.
struct Hanging {
    feed: LocalRegistry,
    gateway: GatewayRegistry,
}

impl Registry for Hanging {
    fn snapshot(&self) -> xxfunc_runner::Result<FeedSnapshot> {
        self.feed.snapshot()
    }

    fn wait_changes(&self, after: u64, timeout: Duration) -> xxfunc_runner::Result<FeedPage> {
        self.feed.wait_changes(after, timeout)
    }

    fn report(&self, report: &RunnerReport) -> xxfunc_runner::Result<()> {
        self.gateway.report(report)
    }

    fn report_by(&self, report: &RunnerReport, deadline: Instant) -> xxfunc_runner::Result<()> {
        self.gateway.report_by(report, deadline)
    }

    fn push_outcomes(&self, page: &OutcomesPage) -> xxfunc_runner::Result<OutcomesAck> {
        self.gateway.push_outcomes(page)
    }

    fn push_outcomes_by(
        &self,
        page: &OutcomesPage,
        deadline: Instant,
    ) -> xxfunc_runner::Result<OutcomesAck> {
        self.gateway.push_outcomes_by(page, deadline)
    }
}

fn observed(r: &RunnerReport, id: &FunctionId) -> Option<(ObservedState, Option<u64>)> {
    r.functions
        .iter()
        .find(|f| &f.id == id)
        .map(|f| (f.observed.clone(), f.cursor.map(|c| c.number)))
}

#[test]
fn a_silent_gateway_holds_up_neither_blocks_nor_desired_state_nor_the_stop() {
    let silent = Silent::start();
    let dir = tempfile::tempdir().unwrap();
    let store = ModuleStore::open("memory://").unwrap();
    let (feed, _) = hello_registry(&dir.path().join("registry"), &store);
    let client = Client::new(&silent.url())
        .unwrap()
        .with_token(Some(TOKEN.into()));
    let registry = Arc::new(Hanging {
        feed,
        gateway: GatewayRegistry::new(client, "runner-a").unwrap(),
    });
    let modules = Arc::new(StoreModules::new(store).unwrap());
    let runner = Runner::open(RunnerConfig::new(dir.path().join("runner")), modules).unwrap();
    let served = serve_pushed(
        runner,
        Some(registry.clone() as Arc<dyn Registry>),
        ServeOptions::default(),
    );
    let id = FunctionId::Name("hello".parse().unwrap());
    wait_for(&served.status, "hello running", |r| {
        observed(r, &id).is_some_and(|(o, _)| o == ObservedState::Running)
    });

    // A first block: its outcome's push and the next report go to the silent
    // gateway and hang there (for the client's timeout, 10 to 120 s).
    let blocks = chain::blocks(None, 1, 40, 0);
    served
        .tx
        .send(ChainEvent::commit(0, blocks[0].clone()))
        .unwrap();
    wait_until("a report and a push hanging at the silent gateway", || {
        silent.saw("POST /v1/runners/runner-a/report")
            && silent.saw("POST /v1/runners/runner-a/outcomes")
    });

    // Meanwhile every block is processed, one event at a time (each batch
    // ends with a published report, none waits for it)...
    for b in &blocks[1..] {
        served.tx.send(ChainEvent::commit(0, b.clone())).unwrap();
    }
    wait_for(&served.status, "40 blocks processed", |r| {
        observed(r, &id).is_some_and(|(_, c)| c == Some(40))
    });
    // ...and a stop in the registry is applied (its report hangs as well).
    registry.feed.registry().stop(&id).unwrap();
    wait_for(&served.status, "hello stopped", |r| {
        observed(r, &id).is_some_and(|(o, _)| o == ObservedState::Stopped)
    });

    // A clean stop returns although the last report and the last pushes
    // get no answer (it gives them a deadline of a few seconds).
    served.stop.stop();
    drop(served.tx);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !served.thread.is_finished() {
        assert!(
            Instant::now() < deadline,
            "serve did not return while the gateway was silent"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let runner = served.thread.join().unwrap().unwrap();
    let outcomes = runner.outcomes(&id, 0, 100, usize::MAX).unwrap();
    assert_eq!(
        outcomes.iter().map(|o| o.block.number).collect::<Vec<_>>(),
        (1..=40).collect::<Vec<_>>(),
        "every block's outcome kept"
    );
    assert_eq!(runner.acknowledged("registry", &id), 0, "nothing answered");
}
