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
