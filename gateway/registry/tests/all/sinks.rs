//! Sinks in the registry: each change is one feed entry carrying the function's spec
//! with its sinks; names are unique across functions; retries bump a generation;
//! runners' reports of a sink are joined to its configuration.

use alloy_primitives::B256;
use xxfunc_api::{
    BlockRef, ChangeKind, Counters, FunctionReport, ObservedState, RunnerReport, StartFrom,
    sinks::{SinkConfig, SinkKind, SinkReport},
};
use xxfunc_registry::RegistryError;

use crate::{hash, name, named, open};

fn hook(url: &str) -> SinkConfig {
    SinkConfig {
        secret_env: Some("HOOK".into()),
        ..SinkConfig::new(SinkKind::Webhook, url)
    }
}

#[test]
fn sink_changes_are_feed_entries_with_the_functions_sinks() {
    let (_dir, reg) = open();
    reg.bind(&name("f"), hash("1")).unwrap();
    reg.start(&named("f"), StartFrom::Head).unwrap();
    let head = reg.feed_head();

    let spec = reg
        .set_sink(&named("f"), "f-hook", hook("http://127.0.0.1:1/a"))
        .unwrap();
    assert_eq!(spec.sinks.len(), 1);
    // The same configuration again changes nothing.
    reg.set_sink(&named("f"), "f-hook", hook("http://127.0.0.1:1/a"))
        .unwrap();
    assert_eq!(reg.feed_head(), head + 1);
    // A second sink, then a changed first one: both listed, by name.
    reg.set_sink(
        &named("f"),
        "a-nats",
        SinkConfig::new(SinkKind::Nats, "nats://127.0.0.1:4222"),
    )
    .unwrap();
    let spec = reg
        .set_sink(&named("f"), "f-hook", hook("http://127.0.0.1:1/b"))
        .unwrap();
    let names: Vec<_> = spec.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["a-nats", "f-hook"]);
    assert_eq!(spec.sinks[1].config.url, "http://127.0.0.1:1/b");

    let spec = reg.retry_sink(&named("f"), "f-hook").unwrap();
    assert_eq!(spec.sinks[1].retry_generation, 1);
    // A reconfiguration keeps the retry generation.
    let spec = reg
        .set_sink(&named("f"), "f-hook", hook("http://127.0.0.1:1/c"))
        .unwrap();
    assert_eq!(spec.sinks[1].retry_generation, 1);
    let spec = reg.remove_sink(&named("f"), "a-nats").unwrap();
    assert_eq!(spec.sinks.len(), 1);

    let entries = reg.feed_after(head, 100).unwrap().entries;
    let kinds: Vec<_> = entries.iter().map(|e| e.change.clone()).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::SinkSet,
            ChangeKind::SinkSet,
            ChangeKind::SinkSet,
            ChangeKind::SinkRetried,
            ChangeKind::SinkSet,
            ChangeKind::SinkRemoved,
        ]
    );
    assert_eq!(
        entries.last().unwrap().spec.as_ref().unwrap().sinks,
        spec.sinks
    );
    // Snapshots and later changes carry them too: a redeploy keeps the sinks.
    let snapshot = reg.snapshot().unwrap();
    assert_eq!(snapshot.functions[0].sinks, spec.sinks);
    let after = reg.feed_head();
    reg.bind(&name("f"), hash("2")).unwrap();
    let redeploy = reg.feed_after(after, 10).unwrap().entries;
    assert_eq!(redeploy[0].spec.as_ref().unwrap().sinks, spec.sinks);
    // And they survive a reopen.
    drop(reg);
    let reg = xxfunc_registry::Registry::open(_dir.path().join("registry")).unwrap();
    assert_eq!(
        reg.sinks(&named("f")).unwrap().sinks[0].config.url,
        "http://127.0.0.1:1/c"
    );
}

#[test]
fn sink_names_are_unique_valid_and_errors_name_the_problem() {
    let (_dir, reg) = open();
    reg.bind(&name("f"), hash("1")).unwrap();
    reg.bind(&name("g"), hash("2")).unwrap();
    reg.set_sink(&named("f"), "hook", hook("http://127.0.0.1:1/"))
        .unwrap();
    let err = reg
        .set_sink(&named("g"), "hook", hook("http://127.0.0.1:1/"))
        .unwrap_err();
    assert!(matches!(err, RegistryError::SinkNameTaken { .. }), "{err}");
    assert!(err.to_string().contains("taken by function f"), "{err}");
    let err = reg
        .set_sink(&named("f"), "Hook!", hook("http://127.0.0.1:1/"))
        .unwrap_err();
    assert!(matches!(err, RegistryError::InvalidSink { .. }), "{err}");
    let err = reg.remove_sink(&named("f"), "nope").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    assert!(err.to_string().contains("no sink named nope"), "{err}");
    let err = reg.retry_sink(&named("f"), "nope").unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = reg
        .set_sink(&named("missing"), "x", hook("http://127.0.0.1:1/"))
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::FunctionNotFound { .. }),
        "{err}"
    );
    // Once removed from f, the name is free for g.
    reg.remove_sink(&named("f"), "hook").unwrap();
    reg.set_sink(&named("g"), "hook", hook("http://127.0.0.1:1/"))
        .unwrap();
    assert!(reg.sinks(&named("f")).unwrap().sinks.is_empty());
}

#[test]
fn runners_reports_of_a_sink_are_joined_to_it() {
    let (_dir, reg) = open();
    reg.bind(&name("f"), hash("1")).unwrap();
    reg.set_sink(&named("f"), "hook", hook("http://127.0.0.1:1/"))
        .unwrap();
    let block = BlockRef {
        number: 7,
        hash: B256::with_last_byte(7),
    };
    let report = |state: &str| RunnerReport {
        head: Some(block),
        safe_height: Some(7),
        functions: vec![FunctionReport {
            id: named("f"),
            hash: hash("1"),
            observed: ObservedState::Running,
            cursor: Some(block),
            last_error: None,
            counters: Counters::default(),
            sinks: vec![SinkReport {
                name: "hook".into(),
                kind: SinkKind::Webhook,
                target: "http://127.0.0.1:1/".into(),
                confirmations: 0,
                state: state.into(),
                cursor_outcome: 3,
                cursor_item: 30,
                block: Some(block),
                attempts: 0,
                last_error: None,
                lag_blocks: 0,
                lag_records: 0,
                delivered_batches: 3,
                delivered_records: 30,
            }],
        }],
        invocations: Vec::new(),
    };
    reg.record_report("node-a", &report("idle")).unwrap();
    reg.record_report("node-b", &report("failed")).unwrap();
    let view = reg.sinks(&named("f")).unwrap();
    let states: Vec<_> = view.sinks[0]
        .runners
        .iter()
        .map(|r| (r.runner.as_str(), r.report.state.as_str()))
        .collect();
    assert_eq!(states, [("node-a", "idle"), ("node-b", "failed")]);
    // The function's view shows each runner's sinks as well.
    let function = reg.function(&named("f")).unwrap();
    assert_eq!(function.runners.len(), 2);
    assert_eq!(function.runners[0].sinks[0].cursor_item, 30);
}
