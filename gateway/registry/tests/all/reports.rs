use alloy_primitives::B256;
use xxfunc_api::{
    BlockRef, Counters, EventKind, FunctionId, FunctionReport, InvocationRecord, InvocationStatus,
    ObservedState, RunnerReport,
};
use xxfunc_registry::{Registry, RegistryOptions};

use crate::{hash, name, named};

fn record(id: &FunctionId, n: u64) -> InvocationRecord {
    InvocationRecord {
        id: id.clone(),
        hash: hash("r"),
        kind: EventKind::Commit,
        block: BlockRef {
            number: n,
            hash: B256::with_last_byte(n as u8),
        },
        status: if n.is_multiple_of(2) {
            InvocationStatus::Ok
        } else {
            InvocationStatus::Failed {
                reason: format!("trap {n}"),
            }
        },
        duration_us: n,
        stdout: format!("out {n}"),
        stderr: String::new(),
        at_ms: n,
    }
}

#[test]
fn reports_show_in_the_view_and_their_invocations_are_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open_with(
        dir.path(),
        RegistryOptions {
            logs_per_function: 5,
            ..Default::default()
        },
    )
    .unwrap();
    reg.bind(&name("r"), hash("r")).unwrap();
    let id = named("r");
    let cursor = BlockRef {
        number: 9,
        hash: B256::with_last_byte(9),
    };
    let mut report = RunnerReport {
        head: Some(cursor),
        safe_height: Some(9),
        functions: vec![FunctionReport {
            sinks: Vec::new(),
            id: id.clone(),
            hash: hash("r"),
            observed: ObservedState::Running,
            cursor: Some(cursor),
            last_error: Some("trap 9".into()),
            counters: Counters {
                invocations: 9,
                failures: 5,
                consecutive_failures: 1,
                ..Counters::default()
            },
        }],
        invocations: (1..=3).map(|n| record(&id, n)).collect(),
    };
    assert_eq!(reg.function(&id).unwrap().reported, None, "no report yet");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    reg.record_report("runner-1", &report).unwrap();
    let view = reg.function(&id).unwrap();
    let reported = view.reported.as_ref().expect("who reported, and when");
    assert_eq!(reported.runner, "runner-1");
    assert!(reported.at_ms >= before, "{reported:?}");
    assert_eq!(view.observed, Some(ObservedState::Running));
    assert_eq!(view.cursor, Some(cursor));
    assert_eq!(view.last_error.as_deref(), Some("trap 9"));
    assert_eq!(view.counters.invocations, 9);
    // Invocations in a report are ignored now (they arrive as outcomes).
    assert!(reg.logs(&id, 100).unwrap().invocations.is_empty());
    report.invocations = (4..=9).map(|n| record(&id, n)).collect();
    report.functions[0].counters.failures = 6;
    reg.record_report("runner-1", &report).unwrap();
    assert!(reg.logs(&id, 100).unwrap().invocations.is_empty());
    // Reports are not registry changes.
    assert_eq!(reg.feed_head(), 1);
    drop(reg);
    let reg = Registry::open(dir.path()).unwrap();
    let view = reg.function(&id).unwrap();
    assert_eq!(view.counters.failures, 6);
    assert_eq!(view.runners.len(), 1, "one runner, one report kept");
}
