//! Misbehaving guest modules (built from guest/examples) are contained with
//! the right reason while `hello` keeps its outputs; quarantine.

use std::time::Duration;

use xxfunc_api::{FunctionId, InvocationStatus, ObservedState, StartFrom};
use xxfunc_runner::{ChainEvent, test_utils::Harness};

use crate::chain::{self, wasm};

/// Each misbehave module and the reasons its failures may carry.
const MISBEHAVE: &[(&str, &[&str])] = &[
    ("misbehave-loop", &["wall-time limit of 1s exceeded"]),
    ("misbehave-memory", &["memory limit of 64 MiB exceeded"]),
    ("misbehave-stdout", &["stdout exceeded 1 MiB cap"]),
    ("misbehave-panic", &["trapped: ", "exited with code 101"]),
    ("misbehave-exit", &["exited with code "]),
    ("misbehave-trap", &["trapped: "]),
];

fn events(n: u64) -> Vec<ChainEvent> {
    chain::blocks(None, 1, n, 0)
        .into_iter()
        .enumerate()
        .map(|(i, b)| ChainEvent::commit(i as u64 + 1, b))
        .collect()
}

fn hello_outputs(h: &Harness, id: &FunctionId) -> Vec<String> {
    h.records(id)
        .into_iter()
        .map(|r| {
            assert_eq!(
                r.status,
                InvocationStatus::Ok,
                "hello failed on block {}",
                r.block.number
            );
            r.stdout
        })
        .collect()
}

#[test]
fn every_misbehave_module_is_contained_and_hello_is_unaffected() {
    let hello = xxfunc_guest_modules::module_bytes("hello");
    let events = events(3);

    let mut alone = Harness::new().unwrap();
    let id = alone.start("hello", &hello, StartFrom::Head).unwrap();
    alone.runner_mut().process(&events).unwrap();
    let expected = hello_outputs(&alone, &id);
    assert_eq!(expected.len(), 3);

    let mut h = Harness::new().unwrap();
    let hello_id = h.start("hello", &hello, StartFrom::Head).unwrap();
    let mut bad = Vec::new();
    for (name, reasons) in MISBEHAVE {
        bad.push((
            h.start(
                name,
                &xxfunc_guest_modules::module_bytes(name),
                StartFrom::Head,
            )
            .unwrap(),
            *reasons,
        ));
    }
    let sleep = h
        .start(
            "misbehave-sleep",
            &xxfunc_guest_modules::module_bytes("misbehave-sleep"),
            StartFrom::Head,
        )
        .unwrap();
    h.runner_mut().process(&events).unwrap();
    // The looping module is slow: the batch did not wait for it.
    h.runner_mut().settle().unwrap();

    assert_eq!(hello_outputs(&h, &hello_id), expected);
    for (id, reasons) in bad {
        let records = h.records(&id);
        assert_eq!(records.len(), 3, "{id}");
        for r in records {
            let InvocationStatus::Failed { reason } = &r.status else {
                panic!("{id} succeeded on block {}", r.block.number);
            };
            assert!(
                reasons.iter().any(|want| reason.contains(want)),
                "{id}: unexpected reason {reason:?}"
            );
        }
    }
    // The sleeping module asks for real time; on the virtual clock it succeeds
    // well inside the 1 s wall-time limit.
    for r in h.records(&sleep) {
        assert_eq!(
            r.status,
            InvocationStatus::Ok,
            "misbehave-sleep on block {}",
            r.block.number
        );
        assert!(Duration::from_micros(r.duration_us) < Duration::from_secs(1));
    }
}

#[test]
fn a_function_that_keeps_failing_is_quarantined_until_restarted() {
    let mut h = Harness::with_config(|c| c.quarantine_after = 3).unwrap();
    let good = h
        .start("good", &wasm(chain::ECHO_MAGIC), StartFrom::Head)
        .unwrap();
    let bad = h
        .start("bad", &wasm(chain::EXIT3), StartFrom::Head)
        .unwrap();
    let blocks = chain::blocks(None, 1, 8, 0);
    // All in one batch: the quarantine stops the bad function mid-batch.
    let evs: Vec<ChainEvent> = blocks[..5]
        .iter()
        .map(|b| ChainEvent::commit(0, b.clone()))
        .collect();
    for ev in evs {
        h.runner_mut().process(&[ev]).unwrap();
    }
    h.runner_mut().settle().unwrap();
    assert_eq!(h.records(&bad).len(), 3);
    assert_eq!(h.records(&good).len(), 5);
    let report = h.report(&bad);
    assert_eq!(
        report.observed,
        ObservedState::Quarantined {
            reason: "3 consecutive failures; last: exited with code 3".into()
        }
    );
    assert_eq!(report.counters.consecutive_failures, 3);
    assert_eq!(report.cursor.unwrap().number, 3);
    // Quarantined functions do not hold back the safe height.
    assert_eq!(h.runner().safe_height(), Some(5));

    // Survives a restart.
    h.restart().unwrap();
    assert!(matches!(
        h.report(&bad).observed,
        ObservedState::Quarantined { .. }
    ));

    // A new start clears it (and the function runs again).
    let bad2 = h
        .start("bad", &wasm(chain::ECHO_MAGIC), StartFrom::Head)
        .unwrap();
    assert_eq!(h.report(&bad2).observed, ObservedState::Running);
    h.send_commit(&blocks[5]).unwrap();
    assert_eq!(
        h.records(&bad2).last().unwrap().status,
        InvocationStatus::Ok
    );
}

/// Isolation: once functions are known to be slow, a batch never waits for them. From
/// the second block on, `hello`'s record is committed when `process` returns although
/// two functions that loop until the 1 s wall-time limit are still running; nothing of
/// theirs is lost (settling commits every outcome).
#[test]
fn a_healthy_function_commits_without_waiting_for_looping_ones() {
    let hello = xxfunc_guest_modules::module_bytes("hello");
    let looping = xxfunc_guest_modules::module_bytes("misbehave-loop");
    let mut h = Harness::new().unwrap();
    let hello_id = h.start("hello", &hello, StartFrom::Head).unwrap();
    let loops = [
        h.start("loop-a", &looping, StartFrom::Head).unwrap(),
        h.start("loop-b", &looping, StartFrom::Head).unwrap(),
    ];
    let events = events(4);
    h.runner_mut().process(&events[..1]).unwrap();
    h.runner_mut().finish_running().unwrap();
    for (i, ev) in events.iter().enumerate().skip(1) {
        h.runner_mut().process(std::slice::from_ref(ev)).unwrap();
        assert_eq!(
            h.records(&hello_id).len(),
            i + 1,
            "hello's record of block {} is committed at once",
            ev.block.number
        );
        assert!(
            h.runner().running() >= 1,
            "the looping functions are still running at block {}",
            ev.block.number
        );
    }
    h.runner_mut().settle().unwrap();
    assert_eq!(h.runner().running(), 0);
    for id in &loops {
        let records = h.records(id);
        let blocks: Vec<u64> = records.iter().map(|r| r.block.number).collect();
        assert_eq!(
            blocks,
            vec![1, 2, 3, 4],
            "{id} ran on every block, in order"
        );
        assert!(records.iter().all(|r| matches!(
            &r.status,
            InvocationStatus::Failed { reason } if reason.contains("wall-time limit")
        )));
    }
}

/// A WASI command that spins for a while, then returns: slow, but it succeeds.
const SPIN: &str = r#"
(module
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (local.set $i (i32.const 3000000))
    (block $done
      (loop $again
        (br_if $done (i32.eqz (local.get $i)))
        (local.set $i (i32.sub (local.get $i) (i32.const 1)))
        (br $again)))))
"#;

/// What a function's outcomes leave standing: commits minus reverts, checked to be a
/// valid sequence (a revert always takes back the newest block standing).
fn standing(h: &Harness, id: &FunctionId) -> Vec<(u64, alloy_primitives::B256)> {
    let mut stack: Vec<(u64, alloy_primitives::B256)> = Vec::new();
    for r in h.records(id) {
        match r.kind {
            xxfunc_api::EventKind::Commit => stack.push((r.block.number, r.block.hash)),
            xxfunc_api::EventKind::Revert => assert_eq!(
                stack.pop(),
                Some((r.block.number, r.block.hash)),
                "{id}: a revert takes back the newest block"
            ),
        }
    }
    stack
}

/// Slow functions run on past the batches that started them, so a reorg can come while
/// one of them still runs on the blocks it replaces: the function's cursor is then on an
/// orphaned block, and it is reverted from the blocks the runner keeps before it goes on.
/// Whatever the timing, every function ends on exactly the canonical chain.
#[test]
fn a_function_still_running_during_a_reorg_is_reverted_afterwards() {
    let mut h = Harness::with_config(|c| {
        c.slow_invocation = Duration::from_micros(200);
        c.detach_after = Duration::from_micros(200);
    })
    .unwrap();
    let fast = h
        .start("echo", &wasm(chain::ECHO_MAGIC), StartFrom::Head)
        .unwrap();
    let slow = h.start("spin", &wasm(SPIN), StartFrom::Head).unwrap();
    let main = chain::blocks(None, 1, 6, 0);
    let fork = chain::blocks(Some(&main[2]), 4, 4, 1);
    let mut events: Vec<ChainEvent> = main
        .iter()
        .map(|b| ChainEvent::commit(0, b.clone()))
        .collect();
    events.extend(
        main[3..]
            .iter()
            .rev()
            .map(|b| ChainEvent::revert(0, b.clone())),
    );
    events.extend(fork.iter().map(|b| ChainEvent::commit(0, b.clone())));
    for ev in &events {
        h.runner_mut().process(std::slice::from_ref(ev)).unwrap();
    }
    h.runner_mut().settle().unwrap();
    let canonical: Vec<(u64, alloy_primitives::B256)> = main[..3]
        .iter()
        .chain(&fork)
        .map(|b| (b.number, b.hash))
        .collect();
    assert_eq!(standing(&h, &fast), canonical, "echo");
    assert_eq!(standing(&h, &slow), canonical, "spin");
    assert!(
        h.records(&slow)
            .iter()
            .all(|r| r.status == InvocationStatus::Ok)
    );
}
