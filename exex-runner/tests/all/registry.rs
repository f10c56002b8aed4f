//! Desired state from the real RocksDB registry: start, redeploy, stop and a
//! fresh start take effect while the runner runs, fed by a push-style source.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use crossbeam_channel::{Sender, unbounded};
use xxfunc_api::{FunctionId, ObservedState, RunnerReport, StartFrom};
use xxfunc_runner::{
    ChainEvent, LocalRegistry, Registry, Runner, RunnerConfig, ServeOptions, StatusHandle,
    StopHandle, StoreModules, serve,
};
use xxfunc_store::ModuleStore;

use crate::chain::{self, wasm};

pub(crate) use xxfunc_runner::test_utils::PushSource;

/// A runner serving on its own thread, fed by a [`PushSource`].
pub(crate) struct Served {
    pub(crate) tx: Sender<ChainEvent>,
    pub(crate) stop: StopHandle,
    pub(crate) status: StatusHandle,
    pub(crate) thread: std::thread::JoinHandle<xxfunc_runner::Result<Runner>>,
}

/// Runs `serve` for `runner` on a thread, with events pushed through `tx`.
pub(crate) fn serve_pushed(
    runner: Runner,
    registry: Option<Arc<dyn Registry>>,
    options: ServeOptions,
) -> Served {
    let (tx, rx) = unbounded();
    let stop = StopHandle::new();
    let status = StatusHandle::default();
    let thread = {
        let (stop, status) = (stop.clone(), status.clone());
        std::thread::spawn(move || {
            serve(
                runner,
                Box::new(PushSource(rx)),
                registry,
                stop,
                status,
                options,
            )
        })
    };
    Served {
        tx,
        stop,
        status,
        thread,
    }
}

pub(crate) fn wait_for(status: &StatusHandle, what: &str, cond: impl Fn(&RunnerReport) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond(&status.get()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {:#?}",
            status.get()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) fn cursor(r: &RunnerReport, id: &FunctionId) -> Option<u64> {
    r.functions
        .iter()
        .find(|f| &f.id == id)
        .and_then(|f| f.cursor)
        .map(|c| c.number)
}

#[test]
fn start_redeploy_stop_and_restart_take_effect_without_a_runner_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = ModuleStore::open("memory://").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let v1 = wasm(chain::ECHO_MAGIC);
    let v2 = wasm(&chain::ECHO_MAGIC.replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 2)",
    ));
    let h1 = rt.block_on(store.put(v1)).unwrap().hash;
    let h2 = rt.block_on(store.put(v2)).unwrap().hash;

    let registry = xxfunc_registry::Registry::open(dir.path().join("registry")).unwrap();
    let name = "hello".parse().unwrap();
    let id = FunctionId::Name("hello".parse().unwrap());
    registry.bind(&name, h1).unwrap();
    registry.start(&id, StartFrom::Head).unwrap();

    let modules = Arc::new(StoreModules::new(store).unwrap());
    let runner = Runner::open(RunnerConfig::new(dir.path().join("runner")), modules).unwrap();
    let local: Arc<dyn Registry> = Arc::new(LocalRegistry::new(registry.clone(), "test-runner"));
    let options = ServeOptions {
        report_every: Duration::from_millis(50),
        ..ServeOptions::default()
    };
    let Served {
        tx,
        stop,
        status,
        thread,
    } = serve_pushed(runner, Some(local), options);
    let blocks = chain::blocks(None, 1, 5, 0);
    let send = |i: usize| tx.send(ChainEvent::commit(0, blocks[i].clone())).unwrap();

    wait_for(&status, "hello running", |r| {
        r.functions.iter().any(|f| f.id == id)
    });
    send(0);
    send(1);
    wait_for(&status, "cursor 2", |r| cursor(r, &id) == Some(2));

    registry.bind(&name, h2).unwrap();
    wait_for(&status, "redeploy", |r| {
        r.functions.iter().any(|f| f.id == id && f.hash == h2)
    });
    send(2);
    wait_for(&status, "cursor 3", |r| cursor(r, &id) == Some(3));

    registry.stop(&id).unwrap();
    wait_for(&status, "stopped", |r| {
        r.functions
            .iter()
            .any(|f| f.id == id && f.observed == ObservedState::Stopped)
    });
    send(3);
    wait_for(&status, "head 4", |r| r.head.map(|h| h.number) == Some(4));
    assert_eq!(cursor(&status.get(), &id), Some(3));

    registry.start(&id, StartFrom::Block(2)).unwrap();
    wait_for(&status, "backfilled to 4", |r| {
        r.functions
            .iter()
            .any(|f| f.id == id && f.observed == ObservedState::Running)
            && cursor(r, &id) == Some(4)
    });
    // The registry received reports.
    let deadline = Instant::now() + Duration::from_secs(30);
    while registry.function(&id).unwrap().cursor.map(|c| c.number) != Some(4) {
        assert!(Instant::now() < deadline, "registry never saw cursor 4");
        std::thread::sleep(Duration::from_millis(20));
    }

    stop.stop();
    drop(tx);
    let runner = thread.join().unwrap().unwrap();
    let records = runner.outputs(&id).unwrap();
    let seen: Vec<(u64, _)> = records.iter().map(|r| (r.block.number, r.hash)).collect();
    assert_eq!(
        seen,
        vec![(1, h1), (2, h1), (3, h2), (2, h2), (3, h2), (4, h2)]
    );
}
