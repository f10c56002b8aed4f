//! Fixture replay through the examples equals the golden outputs in fixtures/golden;
//! `erc20-balances` reads its balances from the recorded state (fixtures/state) through
//! the offline state backend.

use std::path::{Path, PathBuf};

use xxfunc_abi::EventKind;
use xxfunc_runner::{ChainEvent, FixtureSource};

use crate::chain;

/// The recorded fixtures (`fixtures/events`), or, when none are recorded yet,
/// a linked test chain with a reorg written as envelopes under `scratch`.
pub fn events_dir(scratch: &Path) -> PathBuf {
    let recorded = xxfunc_guest_modules::fixtures_dir().join("events");
    if recorded.is_dir()
        && std::fs::read_dir(&recorded)
            .map(|mut d| d.next().is_some())
            .unwrap_or(false)
    {
        return recorded;
    }
    eprintln!("note: fixtures/events is empty; using a generated chain with a reorg");
    let dir = scratch.join("events");
    std::fs::create_dir_all(&dir).unwrap();
    let main = chain::blocks(None, 1, 60, 0);
    let fork = chain::blocks(Some(&main[56]), 58, 6, 1);
    let mut events: Vec<ChainEvent> = main
        .iter()
        .map(|b| ChainEvent::commit(0, b.clone()))
        .collect();
    events.extend(
        main[57..]
            .iter()
            .rev()
            .map(|b| ChainEvent::revert(0, b.clone())),
    );
    events.extend(fork.iter().map(|b| ChainEvent::commit(0, b.clone())));
    for (i, ev) in events.iter().enumerate() {
        let bytes = xxfunc_abi::encode(ev.kind, &ev.block).unwrap();
        std::fs::write(
            dir.join(format!("{:04}-{}-{}.bin", i + 1, ev.kind, ev.block.number)),
            bytes,
        )
        .unwrap();
    }
    dir
}

#[test]
fn fixture_source_reads_envelopes_in_order() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = events_dir(scratch.path());
    let source = FixtureSource::open(&dir).unwrap();
    let events = source.events();
    assert!(!events.is_empty());
    for (i, ev) in events.iter().enumerate() {
        assert_eq!(ev.seq, i as u64 + 1);
    }
    // Delivery order: a revert is always of the current tip.
    let mut tip: Option<(u64, alloy_primitives::B256)> = None;
    for ev in events {
        match ev.kind {
            EventKind::Commit => {
                if let Some((n, h)) = tip {
                    assert_eq!((ev.block.number, ev.block.parent_hash), (n + 1, h));
                }
                tip = Some((ev.block.number, ev.block.hash));
            }
            EventKind::Revert => {
                assert_eq!(tip, Some((ev.block.number, ev.block.hash)));
                tip = Some((ev.block.number - 1, ev.block.parent_hash));
            }
        }
    }

    let empty = tempfile::tempdir().unwrap();
    assert!(FixtureSource::open(empty.path()).is_err());
    std::fs::write(empty.path().join("0001-commit-1.bin"), b"not an envelope").unwrap();
    let err = FixtureSource::open(empty.path()).unwrap_err().to_string();
    assert!(err.contains("0001-commit-1.bin"), "{err}");
}

/// Every module with its golden directory: `hello-upstream` is the function exactly as
/// the original xxfunc documented it (`#![no_main]`), `hello-upstream-main` the same
/// without `#![no_main]`; both must print the same bytes.
const REPLAYED: [(&str, &str); 5] = [
    ("hello", "hello"),
    ("erc20-transfers", "erc20-transfers"),
    ("hello-upstream", "hello-upstream"),
    ("hello-upstream-main", "hello-upstream"),
    ("erc20-balances", "erc20-balances"),
];

#[test]
fn recorded_fixtures_through_the_examples_equal_the_goldens() {
    let fixtures = xxfunc_guest_modules::fixtures_dir();
    let golden = fixtures.join("golden");
    if !golden.is_dir() {
        eprintln!("skipping: no fixtures/golden recorded yet");
        return;
    }
    let source = FixtureSource::open(&fixtures).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(fixtures.join("events"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    // The goldens hold every event exactly: no function may lag, whatever the load.
    let mut h = xxfunc_runner::test_utils::Harness::with_config(|c| {
        c.workers = 2;
        crate::never_lag(c);
    })
    .unwrap();
    let state = xxfunc_runner::state::FixtureState::open(&fixtures.join("state")).unwrap();
    h.runner_mut()
        .set_state(Some(xxfunc_runner::state::StateSource::new(
            std::sync::Arc::new(state),
        )));
    let ids: Vec<_> = REPLAYED
        .iter()
        .map(|(m, _)| {
            h.start(
                m,
                &xxfunc_guest_modules::module_bytes(m),
                xxfunc_api::StartFrom::Head,
            )
            .unwrap()
        })
        .collect();
    for chunk in source.events().chunks(8) {
        h.runner_mut().process(chunk).unwrap();
    }
    h.runner_mut().settle().unwrap();
    for ((module, golden_dir), id) in REPLAYED.iter().zip(&ids) {
        let records = h.records(id);
        assert_eq!(
            records.len(),
            names.len(),
            "{module}: one invocation per event"
        );
        for (record, name) in records.iter().zip(&names) {
            assert_eq!(
                record.status,
                xxfunc_api::InvocationStatus::Ok,
                "{module} on {name}"
            );
            let want = std::fs::read(golden.join(golden_dir).join(format!("{name}.out"))).unwrap();
            assert_eq!(
                record.stdout,
                String::from_utf8_lossy(&want),
                "{module} on {name}"
            );
        }
    }
}
