//! Cursors, reverts, backfill, redeploy, restart and the safe height.

use xxfunc_abi::ChainBlock;
use xxfunc_api::{DesiredState, EventKind, FunctionId, FunctionSpec, StartFrom};
use xxfunc_runner::{ChainEvent, Position, test_utils::Harness};

use crate::chain::{self, wasm};

/// (kind, number, hash) of every record of `id`.
fn seen(h: &Harness, id: &FunctionId) -> Vec<(EventKind, u64, alloy_primitives::B256)> {
    h.records(id)
        .into_iter()
        .map(|r| (r.kind, r.block.number, r.block.hash))
        .collect()
}

fn c(b: &ChainBlock) -> (EventKind, u64, alloy_primitives::B256) {
    (EventKind::Commit, b.number, b.hash)
}

fn r(b: &ChainBlock) -> (EventKind, u64, alloy_primitives::B256) {
    (EventKind::Revert, b.number, b.hash)
}

#[test]
fn reverts_reach_only_functions_that_saw_the_block() {
    let mut h = Harness::new().unwrap();
    let module = wasm(chain::ECHO_MAGIC);
    let a = h.start("a", &module, StartFrom::Head).unwrap();
    let main = chain::blocks(None, 1, 4, 0);
    for b in &main[..3] {
        h.send_commit(b).unwrap();
    }
    // `b` starts at the head (after block 3): its first block is 4.
    let b_id = h.start("b", &module, StartFrom::Head).unwrap();
    assert_eq!(
        h.runner().position(&b_id),
        Some(Position::From { number: 4 })
    );
    h.send_commit(&main[3]).unwrap();
    // Reorg of depth 2: revert 4, revert 3, commit 3', 4'.
    let fork = chain::blocks(Some(&main[1]), 3, 2, 1);
    h.send_revert(&main[3]).unwrap();
    h.send_revert(&main[2]).unwrap();
    h.send_commit(&fork[0]).unwrap();
    h.send_commit(&fork[1]).unwrap();

    assert_eq!(
        seen(&h, &a),
        vec![
            c(&main[0]),
            c(&main[1]),
            c(&main[2]),
            c(&main[3]),
            r(&main[3]),
            r(&main[2]),
            c(&fork[0]),
            c(&fork[1])
        ]
    );
    assert_eq!(seen(&h, &b_id), vec![c(&main[3]), r(&main[3]), c(&fork[1])]);
    assert_eq!(h.report(&a).cursor.unwrap().hash, fork[1].hash);
    assert_eq!(h.report(&b_id).cursor.unwrap().hash, fork[1].hash);
    assert!(h.records(&a).iter().all(|r| r.stdout.starts_with("XXFN")));
}

#[test]
fn restart_resumes_after_the_checkpoint_without_duplicates() {
    let mut h = Harness::new().unwrap();
    let a = h
        .start("a", &wasm(chain::ECHO_MAGIC), StartFrom::Head)
        .unwrap();
    let blocks = chain::blocks(None, 1, 6, 0);
    let events: Vec<ChainEvent> = blocks
        .iter()
        .enumerate()
        .map(|(i, b)| ChainEvent::commit(i as u64 + 1, b.clone()))
        .collect();
    h.runner_mut().process(&events[..4]).unwrap();
    h.restart().unwrap();
    assert_eq!(h.runner().checkpoint().seq, 4);
    // The source re-sends everything from the start after a restart.
    let summary = h.runner_mut().process(&events).unwrap();
    assert_eq!(summary.events, 2);
    assert_eq!(summary.invocations, 2);
    assert_eq!(seen(&h, &a), blocks.iter().map(c).collect::<Vec<_>>());
}

#[test]
fn backfill_catches_up_and_holds_the_safe_height() {
    let mut h = Harness::with_config(|c| c.catch_up_per_round = 3).unwrap();
    let module = wasm(chain::ECHO_MAGIC);
    let a = h.start("a", &module, StartFrom::Head).unwrap();
    let blocks = chain::blocks(None, 1, 10, 0);
    for b in &blocks {
        h.send_commit(b).unwrap();
    }
    assert_eq!(h.runner().safe_height(), Some(10));
    let late = h.start("late", &module, StartFrom::Block(4)).unwrap();
    assert_eq!(h.runner().safe_height(), Some(3));
    // Rounds of at most 3 past blocks until it reaches the tip.
    assert_eq!(h.runner_mut().catch_up().unwrap().invocations, 3);
    assert_eq!(h.runner().safe_height(), Some(6));
    while h.runner_mut().catch_up().unwrap().invocations > 0 {}
    assert_eq!(h.runner().safe_height(), Some(10));
    assert_eq!(
        seen(&h, &late),
        blocks[3..].iter().map(c).collect::<Vec<_>>()
    );
    assert_eq!(seen(&h, &a).len(), 10);

    // A new event reaches both; a lagging function is caught up first.
    let next = chain::blocks(Some(&blocks[9]), 11, 1, 0);
    let late2 = h.start("late2", &module, StartFrom::Block(9)).unwrap();
    h.send_commit(&next[0]).unwrap();
    assert_eq!(
        seen(&h, &late2),
        vec![c(&blocks[8]), c(&blocks[9]), c(&next[0])]
    );
}

#[test]
fn redeploy_keeps_the_cursor_and_a_new_start_resets_it() {
    let mut h = Harness::new().unwrap();
    let v1 = wasm(chain::ECHO_MAGIC);
    let v2 = wasm(&chain::ECHO_MAGIC.replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 2)",
    ));
    let id = h.start("f", &v1, StartFrom::Head).unwrap();
    let blocks = chain::blocks(None, 1, 4, 0);
    h.send_commit(&blocks[0]).unwrap();
    h.send_commit(&blocks[1]).unwrap();
    let generation = 1;
    let hash2 = h.put_module(&v2).unwrap();
    h.runner_mut()
        .apply(&FunctionSpec {
            id: id.clone(),
            hash: hash2,
            desired: DesiredState::Started,
            start: StartFrom::Head,
            start_generation: generation,
            sinks: Vec::new(),
        })
        .unwrap();
    h.send_commit(&blocks[2]).unwrap();
    let recs = h.records(&id);
    assert_eq!(
        recs.iter().map(|r| r.block.number).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(recs[2].hash, hash2);
    assert_ne!(recs[1].hash, hash2);

    // Stop: events pass it by. Start again with a new generation from block 2.
    let stopped = FunctionSpec {
        id: id.clone(),
        hash: hash2,
        desired: DesiredState::Stopped,
        start: StartFrom::Head,
        start_generation: generation,
        sinks: Vec::new(),
    };
    h.runner_mut().apply(&stopped).unwrap();
    h.send_commit(&blocks[3]).unwrap();
    assert_eq!(h.records(&id).len(), 3);
    h.runner_mut()
        .apply(&FunctionSpec {
            desired: DesiredState::Started,
            start: StartFrom::Block(2),
            start_generation: 2,
            ..stopped
        })
        .unwrap();
    while h.runner_mut().catch_up().unwrap().invocations > 0 {}
    let numbers: Vec<u64> = h.records(&id).iter().map(|r| r.block.number).collect();
    assert_eq!(numbers, vec![1, 2, 3, 2, 3, 4]);
}
