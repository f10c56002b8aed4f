//! The node side of the runner (what the reth ExEx tells the node), through
//! the `NodeHarness`: the resume head after a restart, the `FinishedHeight`s
//! sent as notifications arrive, and node errors returned, counted and shown.

use xxfunc_abi::ChainBlock;
use xxfunc_api::{BlockRef, EventKind, StartFrom};
use xxfunc_runner::{
    ChainEvent, FinishedHeights, Resume, RunnerError, block_ref, metrics, resume_head,
    test_utils::{NodeHarness, TestNode},
};

use crate::chain::{self, wasm};

/// Genesis (block 0) and `len` blocks on top of it.
fn chain_from_genesis(len: u64) -> (ChainBlock, Vec<ChainBlock>) {
    let genesis = chain::blocks(None, 0, 1, 0).remove(0);
    let blocks = chain::blocks(Some(&genesis), 1, len, 0);
    (genesis, blocks)
}

#[test]
fn finished_height_follows_the_safe_height_and_a_reorg() {
    let (genesis, main) = chain_from_genesis(3);
    let mut h = NodeHarness::new().unwrap();
    h.node().extend(std::slice::from_ref(&genesis));
    let module = wasm(chain::ECHO_MAGIC);
    h.harness_mut()
        .start("a", &module, StartFrom::Head)
        .unwrap();
    // `a` starts at the head: it has no position to resume from yet.
    assert_eq!(h.start_node(), Resume::NodeHead);

    for b in &main {
        h.send_commit(std::slice::from_ref(b)).unwrap();
    }
    h.assert_finished(&[&main[0], &main[1], &main[2]]);
    // Nothing new: nothing sent again.
    h.tick();
    assert_eq!(h.finished_heights().len(), 3);

    // A reorg of block 3: the height is sent again with the new branch's hash.
    let fork = chain::blocks(Some(&main[1]), 3, 1, 1);
    h.send_notification(&main[2..], &fork).unwrap();
    h.assert_finished(&[&main[0], &main[1], &main[2], &fork[0]]);
}

#[test]
fn a_restart_resumes_before_a_pending_backfill_and_repeats_nothing() {
    let (genesis, main) = chain_from_genesis(4);
    let mut h = NodeHarness::new().unwrap();
    h.node().extend(std::slice::from_ref(&genesis));
    let module = wasm(chain::ECHO_MAGIC);
    let a = h
        .harness_mut()
        .start("a", &module, StartFrom::Head)
        .unwrap();
    assert_eq!(h.start_node(), Resume::NodeHead);
    h.send_commit(&main[..3]).unwrap();
    h.assert_finished(&[&main[2]]);

    // While the node is down, `b` is started with a backfill from block 2.
    let b = h
        .harness_mut()
        .start("b", &module, StartFrom::Block(2))
        .unwrap();
    h.harness_mut().restart().unwrap();
    // The lowest position is b's pending start: resume after block 1, whose
    // hash the node answers.
    assert_eq!(h.start_node(), Resume::After(block_ref(&main[0])));

    // The node re-sends 2..=3 from its database, then the new block 4.
    h.send_commit(&main[1..]).unwrap();
    h.assert_finished(&[&main[3]]);
    let seen = |id: &xxfunc_api::FunctionId| -> Vec<u64> {
        h.harness()
            .records(id)
            .iter()
            .map(|r| {
                assert_eq!(r.kind, EventKind::Commit);
                r.block.number
            })
            .collect()
    };
    assert_eq!(seen(&a), vec![1, 2, 3, 4], "a saw each block once");
    assert_eq!(seen(&b), vec![2, 3, 4], "b backfilled from 2");
}

#[test]
fn node_errors_are_returned_counted_and_shown() {
    let (genesis, main) = chain_from_genesis(3);
    let mut h = NodeHarness::new().unwrap();
    h.node().extend(std::slice::from_ref(&genesis));
    h.node().extend(&main);
    let module = wasm(chain::ECHO_MAGIC);
    h.harness_mut()
        .start("late", &module, StartFrom::Block(2))
        .unwrap();

    // Returned to the caller: the hash of block 1 was needed and not given.
    h.node().set_failing(true);
    let err = resume_head(h.harness().runner(), h.node()).unwrap_err();
    assert!(
        matches!(err, RunnerError::Provider { number: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("unavailable"), "{err}");

    // Through the link: the stream starts at the node's head, the error is
    // counted and kept in the status, and /metrics shows it.
    assert_eq!(h.start_node(), Resume::NodeHead);
    let errors = h.status().node_errors();
    assert_eq!(errors.count, 1);
    assert!(
        errors
            .last
            .as_deref()
            .is_some_and(|e| e.contains("reading the hash of block 1 from the node")),
        "{errors:?}"
    );
    assert!(
        metrics::render(h.status()).contains("xxfunc_runner_node_errors_total 1\n"),
        "{}",
        metrics::render(h.status())
    );
    h.node().set_failing(false);
    assert_eq!(h.start_node(), Resume::After(block_ref(&main[0])));
    assert_eq!(
        h.status().node_errors().count,
        1,
        "a good answer is not an error"
    );
}

#[test]
fn a_finished_height_below_what_was_delivered_is_asked_of_the_node() {
    let (genesis, main) = chain_from_genesis(7);
    let node = TestNode::default();
    node.extend(&[genesis]);
    node.extend(&main);
    let at = |i: usize| block_ref(&main[i]);
    let mut finished = FinishedHeights::new(at(4));
    for b in &main[5..] {
        finished.delivered(&ChainEvent::commit(0, b.clone()));
    }
    assert_eq!(
        finished.next(None, &node).unwrap(),
        None,
        "no safe height yet"
    );

    // Block 3 was never delivered: its hash comes from the node. While the
    // node fails, the error is returned and nothing counts as sent.
    node.set_failing(true);
    let err = finished.next(Some(3), &node).unwrap_err();
    assert!(
        matches!(err, RunnerError::Provider { number: 3, .. }),
        "{err}"
    );
    assert_eq!(finished.sent(), None);
    node.set_failing(false);
    assert_eq!(finished.next(Some(3), &node).unwrap(), Some(at(2)));
    assert_eq!(finished.next(Some(3), &node).unwrap(), None, "sent once");

    // Never above the last delivered block; after a revert, below it.
    assert_eq!(finished.next(Some(100), &node).unwrap(), Some(at(6)));
    finished.delivered(&ChainEvent::revert(0, main[6].clone()));
    assert_eq!(finished.next(Some(100), &node).unwrap(), Some(at(5)));
    // A height the node has no block at is not reported.
    let mut ahead = FinishedHeights::new(BlockRef {
        number: 50,
        hash: main[0].hash,
    });
    assert_eq!(ahead.next(Some(49), &node).unwrap(), None);
}
