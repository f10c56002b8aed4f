//! The outcome log: raw bytes, seq and item numbering across commits, reverts
//! and restarts, and retention by acknowledgement, finality and budget.

use xxfunc_api::{EventKind, FunctionId, StartFrom, outputs::OutcomeEntry};
use xxfunc_runner::test_utils::Harness;

use crate::chain::{self, wasm};

/// Writes bytes that are not UTF-8 (and a JSON line between them) to stdout.
pub const BINARY: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "\ff\fe\00raw\0a{\"a\":1}\0a\80")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// The bytes [`BINARY`] writes.
pub const BINARY_STDOUT: &[u8] = b"\xff\xfe\x00raw\n{\"a\":1}\n\x80";

/// Writes a JSON line, then traps: a failed outcome with stdout.
const WRITE_THEN_TRAP: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "{\"x\":1}\0a")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 8))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))"#;

/// Asserts the log numbers outcomes `from_seq..` without gaps and items
/// contiguously from `from_item`, each outcome's count being its records.
/// Returns the next item seq.
fn assert_contiguous(log: &[OutcomeEntry], from_seq: u64, from_item: u64) -> u64 {
    let mut item = from_item;
    for (o, seq) in log.iter().zip(from_seq..) {
        assert_eq!(o.seq, seq, "seqs without gaps: {log:#?}");
        assert_eq!(o.first_item, item, "items contiguous at seq {seq}");
        assert_eq!(o.item_count, o.count_records(), "item count at seq {seq}");
        item += u64::from(o.item_count);
    }
    item
}

#[test]
fn binary_stdout_is_kept_byte_exact() {
    let mut h = Harness::new().unwrap();
    let id = h.start("bin", &wasm(BINARY), StartFrom::Head).unwrap();
    for b in &chain::blocks(None, 1, 2, 0) {
        h.send_commit(b).unwrap();
    }
    let check = |h: &Harness| {
        let log = h.outcomes(&id);
        assert_eq!(log.len(), 2);
        for o in &log {
            assert_eq!(o.stdout.0, BINARY_STDOUT, "stdout exactly as written");
            assert_eq!(o.item_count, 3);
        }
        let items: Vec<_> = log[1].items("r").collect();
        assert_eq!(items[0].record_bytes(), b"\xff\xfe\x00raw");
        assert!(items[0].binary);
        assert_eq!(items[1].record.as_ref().unwrap().get(), "{\"a\":1}");
        assert_eq!(items[2].record_bytes(), b"\x80");
        assert_eq!(items.iter().map(|i| i.seq).collect::<Vec<_>>(), [4, 5, 6]);
    };
    check(&h);
    h.restart().unwrap();
    check(&h);
    // The display boundary (records, logs) is the only lossy place.
    assert_eq!(
        h.records(&id)[0].stdout,
        String::from_utf8_lossy(BINARY_STDOUT)
    );
}

#[test]
fn seqs_and_items_stay_contiguous_across_reverts_failures_and_restarts() {
    let mut h = Harness::with_config(|c| c.quarantine_after = 1000).unwrap();
    let hello = xxfunc_guest_modules::module_bytes("hello");
    let ids: Vec<FunctionId> = vec![
        h.start("hello", &hello, StartFrom::Head).unwrap(),
        h.start("echo", &wasm(chain::ECHO_MAGIC), StartFrom::Head)
            .unwrap(),
        h.start("trap", &wasm(WRITE_THEN_TRAP), StartFrom::Head)
            .unwrap(),
        h.start("bin", &wasm(BINARY), StartFrom::Head).unwrap(),
    ];
    let main = chain::blocks(None, 1, 12, 0);
    for b in &main[..6] {
        h.send_commit(b).unwrap();
    }
    // Reorg of depth 2, then a restart in the middle of the new branch.
    h.send_revert(&main[5]).unwrap();
    h.send_revert(&main[4]).unwrap();
    let fork = chain::blocks(Some(&main[3]), 5, 8, 1);
    h.send_commit(&fork[0]).unwrap();
    h.restart().unwrap();
    for b in &fork[1..] {
        h.send_commit(b).unwrap();
    }
    for id in &ids {
        let log = h.outcomes(id);
        assert_eq!(log.len(), 6 + 2 + 8, "{id}");
        let next_item = assert_contiguous(&log, 1, 1);
        let (pruned_to, last_seq, last_item) = h.runner().outcome_bounds(id).unwrap();
        assert_eq!((pruned_to, last_seq, last_item), (0, 16, next_item - 1));
        let kinds: Vec<(EventKind, u64)> = log.iter().map(|o| (o.kind, o.block.number)).collect();
        assert_eq!(
            kinds[6..8],
            [(EventKind::Revert, 6), (EventKind::Revert, 5)]
        );
        assert_eq!(kinds[8], (EventKind::Commit, 5));
    }
    // A failed outcome has no items, though it wrote a line.
    let trap = h.outcomes(&ids[2]);
    assert!(
        trap.iter()
            .all(|o| o.item_count == 0 && !o.stdout.0.is_empty())
    );
    // Every hello outcome has one record, so its items are numbered as its seqs.
    let hello_log = h.outcomes(&ids[0]);
    assert!(
        hello_log
            .iter()
            .all(|o| o.item_count == 1 && o.first_item == o.seq)
    );
    // Paging by seq and by bytes gives the same log.
    let mut paged = Vec::new();
    loop {
        let after = paged.last().map_or(0, |o: &OutcomeEntry| o.seq);
        let page = h.runner().outcomes(&ids[0], after, 5, 1).unwrap();
        assert!(
            page.len() <= 1,
            "one outcome when even one exceeds max_bytes"
        );
        if page.is_empty() {
            break;
        }
        paged.extend(page);
    }
    assert_eq!(paged, hello_log);
}

#[test]
fn acknowledged_final_outcomes_are_pruned_and_unacknowledged_ones_kept() {
    let mut h = Harness::with_config(|c| c.finality_depth = 2).unwrap();
    let id = h
        .start("echo", &wasm(chain::ECHO_MAGIC), StartFrom::Head)
        .unwrap();
    h.runner().add_consumer("app").unwrap();
    let blocks = chain::blocks(None, 1, 10, 0);
    for b in &blocks[..6] {
        h.send_commit(b).unwrap();
    }
    assert_eq!(
        h.runner().outcome_bounds(&id).unwrap().0,
        0,
        "nothing acknowledged"
    );

    h.runner().acknowledge("app", &id, 3).unwrap();
    h.send_commit(&blocks[6]).unwrap();
    // Acknowledged: 1..=3; final at tip 7: blocks up to 5. Pruned: 1..=3.
    let log = h.outcomes(&id);
    assert_eq!(log.first().map(|o| o.seq), Some(4));
    assert_contiguous(&log, 4, log[0].first_item);

    // Everything acknowledged: only what is final goes.
    h.runner().acknowledge("app", &id, 7).unwrap();
    h.send_commit(&blocks[7]).unwrap();
    assert_eq!(h.runner().outcome_bounds(&id).unwrap().0, 6);
    assert_eq!(h.outcomes(&id).len(), 2);
    assert_eq!(h.report(&id).counters.dropped_by_retention, 0);

    // A second consumer holds pruning back to what it acknowledged, and
    // acknowledgements survive a restart.
    h.restart().unwrap();
    h.runner().add_consumer("app").unwrap();
    h.runner().add_consumer("sink").unwrap();
    assert_eq!(h.runner().acknowledged("app", &id), 7);
    h.send_commit(&blocks[8]).unwrap();
    h.send_commit(&blocks[9]).unwrap();
    assert_eq!(h.runner().outcome_bounds(&id).unwrap().0, 6);
    h.runner().acknowledge("sink", &id, 10).unwrap();
    let next = chain::blocks(Some(&blocks[9]), 11, 1, 0);
    h.send_commit(&next[0]).unwrap();
    // Final at tip 11: blocks up to 9; "app" acknowledged 7.
    assert_eq!(h.runner().outcome_bounds(&id).unwrap().0, 7);
}

#[test]
fn without_consumers_finality_alone_prunes() {
    let mut h = Harness::with_config(|c| c.finality_depth = 3).unwrap();
    let id = h
        .start("echo", &wasm(chain::ECHO_MAGIC), StartFrom::Head)
        .unwrap();
    let blocks = chain::blocks(None, 1, 8, 0);
    for b in &blocks {
        h.send_commit(b).unwrap();
    }
    // Tip 8: blocks 1..=5 are final.
    let log = h.outcomes(&id);
    assert_eq!(
        log.iter().map(|o| o.block.number).collect::<Vec<_>>(),
        [6, 7, 8]
    );
    assert_eq!(h.report(&id).counters.dropped_by_retention, 0);
}

#[test]
fn the_budget_forces_drops_which_are_counted() {
    // Measure one outcome, then allow about three.
    let size = {
        let mut h = Harness::new().unwrap();
        let id = h.start("bin", &wasm(BINARY), StartFrom::Head).unwrap();
        h.send_commit(&chain::blocks(None, 1, 1, 0)[0]).unwrap();
        serde_json::to_vec(&h.outcomes(&id)[0]).unwrap().len() as u64
    };
    let mut h = Harness::with_config(|c| c.outcome_budget_bytes = size * 3 + size / 2).unwrap();
    let id = h.start("bin", &wasm(BINARY), StartFrom::Head).unwrap();
    h.runner().add_consumer("app").unwrap();
    let blocks = chain::blocks(None, 1, 10, 0);
    for b in &blocks[..2] {
        h.send_commit(b).unwrap();
    }
    h.runner().acknowledge("app", &id, 2).unwrap();
    for b in &blocks[2..] {
        h.send_commit(b).unwrap();
    }
    let (pruned_to, last_seq, _) = h.runner().outcome_bounds(&id).unwrap();
    assert_eq!((pruned_to, last_seq), (7, 10), "three outcomes fit");
    let log = h.outcomes(&id);
    assert_contiguous(&log, 8, log[0].first_item);
    // 1 and 2 were acknowledged: not counted; 3..=7 were not.
    let counters = h.report(&id).counters;
    assert_eq!(counters.dropped_by_retention, 5);
    h.restart().unwrap();
    assert_eq!(h.report(&id).counters.dropped_by_retention, 5, "persisted");
}
