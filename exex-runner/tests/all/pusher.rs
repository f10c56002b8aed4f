//! The outcome pusher against a real gateway (served in-process on loopback):
//! it never holds up block processing, keeps what the gateway has not
//! acknowledged, and resends from the stored acknowledgement.

use std::time::{Duration, Instant};

use xxfunc_api::{FunctionId, RunnerReport};
use xxfunc_runner::{ChainEvent, OpenedRunner, ServeOptions, StatusHandle};

use crate::{
    chain,
    gateway::{Gateway, TOKEN, args},
    registry::{serve_pushed, wait_for},
};

fn cursor(r: &RunnerReport, id: &FunctionId) -> Option<u64> {
    r.functions
        .iter()
        .find(|f| &f.id == id)
        .and_then(|f| f.cursor)
        .map(|c| c.number)
}

fn wait_pending(status: &StatusHandle, what: &str, cond: impl Fn(Option<u64>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond(status.outcomes_pending()) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: pending {:?}",
            status.outcomes_pending()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_dead_gateway_does_not_stall_block_processing() {
    let mut gateway = Gateway::start();
    gateway.deploy_and_start("hello", "hello");
    let dir = tempfile::tempdir().unwrap();
    let OpenedRunner { runner, registry } = args(&[
        "--gateway",
        &gateway.url(),
        "--token",
        TOKEN,
        "--runner-id",
        "runner-a",
    ])
    .open(dir.path(), "local")
    .unwrap();
    let served = serve_pushed(runner, registry, ServeOptions::default());
    let id = FunctionId::Name("hello".parse().unwrap());
    wait_for(&served.status, "the runner following the gateway", |r| {
        r.functions.iter().any(|f| f.id == id)
    });
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
