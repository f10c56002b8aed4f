//! The outcome pusher against a real gateway (served in-process on loopback):
//! it never holds up block processing, keeps what the gateway has not
//! acknowledged, and resends from the stored acknowledgement.

use std::{
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use parking_lot::{Mutex, RwLock};
use xxfunc_api::{
    EventKind, FeedPage, FeedSnapshot, FunctionId, RunnerReport, StartFrom,
    outputs::{OutcomesAck, OutcomesPage},
};
use xxfunc_runner::{
    ChainEvent, LocalRegistry, OpenedRunner, Registry, Runner, RunnerConfig, ServeOptions,
    StatusHandle, StoreModules,
};
use xxfunc_store::{ModuleHash, ModuleStore};

use crate::{
    chain,
    gateway::Gateway,
    registry::{Served, cursor, serve_pushed, wait_for},
};

/// A runner in `dir` following `gateway`, served with the pusher, once it has
/// seen `hello` (deployed and started by the caller).
fn follow(gateway: &Gateway, dir: &Path) -> (Served, FunctionId) {
    let OpenedRunner { runner, registry } = gateway.runner_args().open(dir, "local").unwrap();
    let served = serve_pushed(runner, registry, ServeOptions::default());
    let id = FunctionId::Name("hello".parse().unwrap());
    wait_for(&served.status, "the runner following the gateway", |r| {
        r.functions.iter().any(|f| f.id == id)
    });
    (served, id)
}

/// Waits for the pusher's count of outcomes kept but unacknowledged. (It is
/// counted after each push round, so a count of 0 may predate the latest
/// commit: tests wait for the registry's side to see outcomes arrive.)
fn wait_pending(status: &StatusHandle, what: &str, cond: impl Fn(Option<u64>) -> bool) {
    wait_until(what, || cond(status.outcomes_pending()));
}

pub(crate) fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_dead_gateway_does_not_stall_block_processing() {
    let mut gateway = Gateway::start();
    gateway.deploy_and_start("hello", "hello");
    let dir = tempfile::tempdir().unwrap();
    let (served, id) = follow(&gateway, dir.path());
    gateway.stop();

    // Every block is processed while every push fails.
    let blocks = chain::blocks(None, 1, 20, 0);
    for b in &blocks {
        served.tx.send(ChainEvent::commit(0, b.clone())).unwrap();
    }
    wait_for(&served.status, "20 blocks processed", |r| {
        cursor(r, &id) == Some(20)
    });
    wait_pending(&served.status, "20 outcomes kept unacknowledged", |p| {
        p == Some(20)
    });

    served.stop.stop();
    drop(served.tx);
    let runner = served.thread.join().unwrap().unwrap();
    assert_eq!(runner.acknowledged("registry", &id), 0);
    assert_eq!(runner.outcomes(&id, 0, 100, usize::MAX).unwrap().len(), 20);
}

/// The block numbers of the gateway's log of `hello`.
fn gateway_log(gateway: &Gateway) -> Vec<u64> {
    let logs = gateway
        .runtime
        .block_on(gateway.client.logs("hello", Some(1000)))
        .unwrap();
    logs.invocations.iter().map(|r| r.block.number).collect()
}

/// Exactly once: every block's outcome once in the gateway's log.
fn assert_logged_once(numbers: &[u64], blocks: u64) {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    assert_eq!(sorted, (1..=blocks).collect::<Vec<_>>(), "{numbers:?}");
}

#[test]
fn outcomes_arrive_exactly_once_after_the_gateway_comes_back() {
    let mut gateway = Gateway::start();
    gateway.deploy_and_start("hello", "hello");
    let dir = tempfile::tempdir().unwrap();
    let (served, id) = follow(&gateway, dir.path());
    let blocks = chain::blocks(None, 1, 30, 0);
    let send = |range: std::ops::Range<usize>| {
        for b in &blocks[range] {
            served.tx.send(ChainEvent::commit(0, b.clone())).unwrap();
        }
    };
    send(0..5);
    wait_until("5 outcomes in the gateway", || {
        gateway_log(&gateway).len() == 5
    });

    // Down while blocks flow: everything is processed and kept.
    gateway.stop();
    send(5..25);
    wait_for(&served.status, "25 blocks processed", |r| {
        cursor(r, &id) == Some(25)
    });
    wait_pending(&served.status, "20 kept", |p| p == Some(20));

    // Back on the same data: each outcome arrives once.
    gateway.restart(false);
    send(25..30);
    wait_until("30 outcomes in the gateway", || {
        gateway_log(&gateway).len() >= 30
    });
    assert_logged_once(&gateway_log(&gateway), 30);

    served.stop.stop();
    drop(served.tx);
    let runner = served.thread.join().unwrap().unwrap();
    assert_eq!(runner.acknowledged("registry", &id), 30);
}

/// The in-process registry, which the test can make fail, replace by an
/// empty one (a reset), and whose pushed pages it records.
struct Switchboard {
    inner: RwLock<Arc<LocalRegistry>>,
    failing: AtomicBool,
    pushed: Mutex<Vec<Vec<u64>>>,
}

impl Switchboard {
    fn new(inner: LocalRegistry) -> Arc<Self> {
        Arc::new(Self {
            inner: RwLock::new(Arc::new(inner)),
            failing: AtomicBool::new(false),
            pushed: Mutex::new(Vec::new()),
        })
    }

    fn registry(&self) -> Arc<LocalRegistry> {
        self.inner.read().clone()
    }
}

impl Registry for Switchboard {
    fn snapshot(&self) -> xxfunc_runner::Result<FeedSnapshot> {
        self.registry().snapshot()
    }

    fn wait_changes(&self, after: u64, timeout: Duration) -> xxfunc_runner::Result<FeedPage> {
        self.registry().wait_changes(after, timeout)
    }

    fn report(&self, report: &RunnerReport) -> xxfunc_runner::Result<()> {
        self.registry().report(report)
    }

    fn push_outcomes(&self, page: &OutcomesPage) -> xxfunc_runner::Result<OutcomesAck> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(xxfunc_runner::RunnerError::Runtime {
                what: "test registry".into(),
                source: std::io::Error::other("the registry is unavailable"),
            });
        }
        self.pushed
            .lock()
            .push(page.outcomes.iter().map(|o| o.seq).collect());
        self.registry().push_outcomes(page)
    }
}

/// A registry in `dir` running `hello` (a fixed module) from the head.
pub(crate) fn hello_registry(dir: &Path, store: &ModuleStore) -> (LocalRegistry, ModuleHash) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hash = rt
        .block_on(store.put(xxfunc_guest_modules::module_bytes("hello")))
        .unwrap()
        .hash;
    let registry = xxfunc_registry::Registry::open(dir).unwrap();
    let name = "hello".parse().unwrap();
    registry.bind(&name, hash).unwrap();
    registry
        .start(&FunctionId::Name(name), StartFrom::Head)
        .unwrap();
    (LocalRegistry::new(registry, "runner-a"), hash)
}

fn local_logs(registry: &LocalRegistry, id: &FunctionId) -> Vec<(EventKind, u64)> {
    let mut logs: Vec<(EventKind, u64)> = registry
        .registry()
        .logs(id, 1000)
        .unwrap()
        .invocations
        .iter()
        .map(|r| (r.kind, r.block.number))
        .collect();
    logs.sort_unstable_by_key(|(_, n)| *n);
    logs
}

#[test]
fn a_restart_resumes_from_the_stored_acknowledgement_and_a_reset_gets_a_resend() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModuleStore::open("memory://").unwrap();
    let (local, _) = hello_registry(&dir.path().join("registry"), &store);
    let board = Switchboard::new(local);
    let modules = Arc::new(StoreModules::new(store.clone()).unwrap());
    let config = RunnerConfig::new(dir.path().join("runner"));
    let id = FunctionId::Name("hello".parse().unwrap());
    let blocks = chain::blocks(None, 1, 12, 0);
    let run = |range: std::ops::Range<usize>, then: &dyn Fn(&StatusHandle)| {
        let runner = Runner::open(config.clone(), modules.clone()).unwrap();
        let served = serve_pushed(
            runner,
            Some(board.clone() as Arc<dyn Registry>),
            ServeOptions::default(),
        );
        wait_for(&served.status, "hello running", |r| {
            r.functions.iter().any(|f| f.id == id)
        });
        let last = range.end as u64;
        for b in &blocks[range] {
            served.tx.send(ChainEvent::commit(0, b.clone())).unwrap();
        }
        wait_for(&served.status, "blocks processed", |r| {
            cursor(r, &id) == Some(last)
        });
        then(&served.status);
        served.stop.stop();
        drop(served.tx);
        served.thread.join().unwrap().unwrap()
    };

    // Pushes fail while 4 blocks are processed; once they work, a clean stop
    // flushes them.
    board.failing.store(true, Ordering::Relaxed);
    let runner = run(0..4, &|status| {
        wait_pending(status, "4 kept", |p| p == Some(4));
        board.failing.store(false, Ordering::Relaxed);
    });
    assert_eq!(runner.acknowledged("registry", &id), 4);
    drop(runner);
    assert_eq!(local_logs(&board.registry(), &id).len(), 4);

    // A restart resumes after the stored acknowledgement: nothing is resent.
    board.pushed.lock().clear();
    let runner = run(4..8, &|_| {
        wait_until("8 outcomes in the registry", || {
            local_logs(&board.registry(), &id).len() >= 8
        });
    });
    drop(runner);
    let pushed: Vec<u64> = board.pushed.lock().concat();
    assert_eq!(
        pushed,
        [5, 6, 7, 8],
        "sent once each, from the acknowledgement"
    );
    let logs = local_logs(&board.registry(), &id);
    assert_eq!(
        logs,
        (1..=8).map(|n| (EventKind::Commit, n)).collect::<Vec<_>>()
    );

    // A reset registry (empty, as a restored or replaced one): the next push
    // shows it lost what it had acknowledged, and everything kept is resent.
    let fresh = tempfile::tempdir().unwrap();
    let (reset, _) = hello_registry(fresh.path(), &store);
    *board.inner.write() = Arc::new(reset);
    let runner = run(8..12, &|_| {
        wait_until("12 outcomes in the reset registry", || {
            local_logs(&board.registry(), &id).len() >= 12
        });
    });
    assert_eq!(runner.acknowledged("registry", &id), 12);
    let logs = local_logs(&board.registry(), &id);
    assert_eq!(
        logs,
        (1..=12).map(|n| (EventKind::Commit, n)).collect::<Vec<_>>()
    );
}
