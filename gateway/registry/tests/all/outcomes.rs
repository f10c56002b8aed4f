//! Outcome logs: storing pushed pages (idempotent, gaps, retention, reopen), the outputs
//! read from them (paging, confirmations, runner choice) and logs built from them.

use alloy_primitives::B256;
use xxfunc_api::{
    BlockRef, Counters, EventKind, FunctionId, FunctionReport, InvocationStatus, ObservedState,
    RunnerReport,
    outputs::{Bytes64, ItemKind, OutcomeEntry, OutcomesAck, OutcomesPage, OutputsQuery},
};
use xxfunc_registry::{Registry, RegistryError, RegistryOptions};

use crate::{hash, name, named};

/// Builds a runner's outcome log the way the runner numbers it.
pub(crate) struct Log {
    pub(crate) outcomes: Vec<OutcomeEntry>,
    next_item: u64,
}

impl Log {
    pub(crate) fn new() -> Self {
        Self {
            outcomes: Vec::new(),
            next_item: 1,
        }
    }

    /// Appends an outcome of `kind` on block `n` of `branch` whose stdout is `stdout`.
    pub(crate) fn push(
        &mut self,
        kind: EventKind,
        n: u64,
        branch: u8,
        stdout: &[u8],
    ) -> &OutcomeEntry {
        let mut o = OutcomeEntry {
            seq: self.outcomes.len() as u64 + 1,
            kind,
            block: block(n, branch),
            hash: hash("m"),
            status: InvocationStatus::Ok,
            duration_us: 7,
            at_ms: 1000 + n,
            stdout: Bytes64(stdout.to_vec()),
            stderr: Bytes64(format!("log of {n}").into_bytes()),
            first_item: self.next_item,
            item_count: 0,
        };
        o.item_count = o.count_records();
        self.next_item += u64::from(o.item_count);
        self.outcomes.push(o);
        self.outcomes.last().unwrap()
    }

    /// A commit of block `n` emitting `records` JSON lines `{"n":n,"i":i}`.
    pub(crate) fn commit(&mut self, n: u64, branch: u8, records: usize) {
        let out = lines(n, records);
        self.push(EventKind::Commit, n, branch, out.as_bytes());
    }

    pub(crate) fn revert(&mut self, n: u64, branch: u8, records: usize) {
        let out = lines(n, records);
        self.push(EventKind::Revert, n, branch, out.as_bytes());
    }

    pub(crate) fn page(
        &self,
        id: &FunctionId,
        seqs: std::ops::RangeInclusive<u64>,
    ) -> OutcomesPage {
        OutcomesPage {
            id: id.clone(),
            outcomes: self
                .outcomes
                .iter()
                .filter(|o| seqs.contains(&o.seq))
                .cloned()
                .collect(),
        }
    }

    pub(crate) fn all(&self, id: &FunctionId) -> OutcomesPage {
        self.page(id, 1..=u64::MAX)
    }
}

fn lines(n: u64, records: usize) -> String {
    (0..records)
        .map(|i| format!("{{\"n\":{n},\"i\":{i}}}\n"))
        .collect()
}

pub(crate) fn block(n: u64, branch: u8) -> BlockRef {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h[8] = branch;
    BlockRef {
        number: n,
        hash: B256::from(h),
    }
}

fn setup() -> (tempfile::TempDir, Registry, FunctionId) {
    let (dir, reg) = crate::open();
    reg.bind(&name("f"), hash("m")).unwrap();
    (dir, reg, named("f"))
}

fn query(after: u64) -> OutputsQuery {
    OutputsQuery {
        after,
        ..OutputsQuery::default()
    }
}

fn report(reg: &Registry, runner: &str, id: &FunctionId, observed: ObservedState, cursor: u64) {
    let report = RunnerReport {
        head: None,
        safe_height: None,
        functions: vec![FunctionReport {
            sinks: Vec::new(),
            id: id.clone(),
            hash: hash("m"),
            observed,
            cursor: Some(block(cursor, 0)),
            last_error: None,
            counters: Counters {
                invocations: cursor,
                ..Counters::default()
            },
        }],
        invocations: Vec::new(),
    };
    reg.record_report(runner, &report).unwrap();
}

fn seqs(reg: &Registry, id: &FunctionId, q: &OutputsQuery) -> Vec<u64> {
    reg.outputs(id, q)
        .unwrap()
        .items
        .iter()
        .map(|i| i.seq)
        .collect()
}

#[test]
fn pages_are_idempotent_by_seq_and_survive_reopen() {
    let (dir, reg, id) = setup();
    let mut log = Log::new();
    for n in 1..=6 {
        log.commit(n, 0, 2);
    }
    let ack = reg.record_outcomes("r1", &log.page(&id, 1..=3)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 0,
            head: 3
        }
    );
    // A resend overlapping what is held stores only what is new.
    let ack = reg.record_outcomes("r1", &log.page(&id, 2..=5)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 3,
            head: 5
        }
    );
    let ack = reg.record_outcomes("r1", &log.page(&id, 1..=5)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 5,
            head: 5
        }
    );
    // An empty page is a probe.
    #[allow(clippy::reversed_empty_ranges)] // an empty page: a probe
    let ack = reg.record_outcomes("r1", &log.page(&id, 9..=8)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 5,
            head: 5
        }
    );
    let q = OutputsQuery {
        runner: Some("r1".into()),
        ..query(0)
    };
    assert_eq!(seqs(&reg, &id, &q), (1..=10).collect::<Vec<_>>());
    drop(reg);
    let reg = Registry::open(dir.path().join("registry")).unwrap();
    let ack = reg.record_outcomes("r1", &log.page(&id, 5..=6)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 5,
            head: 6
        }
    );
    let page = reg.outputs(&id, &q).unwrap();
    assert_eq!((page.next, page.head, page.items.len()), (12, 12, 12));
    assert_eq!(
        page.items[11].record.as_ref().unwrap().get(),
        "{\"n\":6,\"i\":1}"
    );
    assert!(
        page.items
            .iter()
            .all(|i| i.runner == "r1" && i.kind == ItemKind::Insert)
    );
}

#[test]
fn gaps_are_allowed_and_filled_by_a_resend() {
    let (_dir, reg, id) = setup();
    let mut log = Log::new();
    for n in 1..=8 {
        log.commit(n, 0, 1);
    }
    reg.record_outcomes("r1", &log.page(&id, 1..=2)).unwrap();
    // The gateway lost 3..=5 (or the runner dropped them): 6.. lands past a gap.
    let ack = reg.record_outcomes("r1", &log.page(&id, 6..=8)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 2,
            head: 8
        }
    );
    assert_eq!(seqs(&reg, &id, &query(0)), [1, 2, 6, 7, 8]);
    assert_eq!(seqs(&reg, &id, &query(2)), [6, 7, 8]);
    // Resending from head_before fills the gap; what is held is not stored twice.
    let ack = reg.record_outcomes("r1", &log.page(&id, 3..=8)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 8,
            head: 8
        }
    );
    assert_eq!(seqs(&reg, &id, &query(0)), (1..=8).collect::<Vec<_>>());
    assert_eq!(seqs(&reg, &id, &query(4)), [5, 6, 7, 8]);
}

#[test]
fn invalid_pages_store_nothing() {
    let (_dir, reg, id) = setup();
    let mut log = Log::new();
    log.commit(1, 0, 2);
    log.commit(2, 0, 1);
    let mut wrong_count = log.all(&id);
    wrong_count.outcomes[1].item_count = 5;
    let mut backwards = log.all(&id);
    backwards.outcomes.swap(0, 1);
    let mut overlapping = log.all(&id);
    overlapping.outcomes[1].first_item = 2;
    for page in [wrong_count, backwards, overlapping] {
        let err = reg.record_outcomes("r1", &page).unwrap_err();
        assert!(
            matches!(err, RegistryError::InvalidOutcomes { .. }),
            "{err}"
        );
    }
    for runner in ["", "a\0b"] {
        let err = reg.record_outcomes(runner, &log.all(&id)).unwrap_err();
        assert!(matches!(err, RegistryError::InvalidRunner { .. }), "{err}");
    }
    assert_eq!(reg.outputs_head(&id, "r1").unwrap(), 0);
}

#[test]
fn retention_bounds_each_log_by_count_and_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let options = RegistryOptions {
        outcomes_per_function: 5,
        outcome_bytes_per_function: 64 * 1024,
        ..Default::default()
    };
    let reg = Registry::open_with(dir.path(), options.clone()).unwrap();
    reg.bind(&name("f"), hash("m")).unwrap();
    let id = named("f");
    let mut log = Log::new();
    for n in 1..=12 {
        log.commit(n, 0, 1);
    }
    reg.record_outcomes("r1", &log.page(&id, 1..=4)).unwrap();
    reg.record_outcomes("r1", &log.page(&id, 5..=12)).unwrap();
    // The newest five are kept.
    assert_eq!(seqs(&reg, &id, &query(0)), [8, 9, 10, 11, 12]);
    assert_eq!(reg.outcomes_pruned(&id, "r1").unwrap(), 7);
    // What retention pruned is not stored again by a resend.
    let ack = reg.record_outcomes("r1", &log.page(&id, 1..=12)).unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 12,
            head: 12
        }
    );
    assert_eq!(seqs(&reg, &id, &query(0)), [8, 9, 10, 11, 12]);
    // Another runner's log of the same function has its own budget.
    reg.record_outcomes("r2", &log.page(&id, 1..=3)).unwrap();
    let q = OutputsQuery {
        runner: Some("r2".into()),
        ..query(0)
    };
    assert_eq!(seqs(&reg, &id, &q), [1, 2, 3]);

    // Bytes: 20 KiB outcomes under a 64 KiB budget keep three (never fewer than the head).
    let mut big = Log::new();
    let record = format!("\"{}\"\n", "x".repeat(15 * 1024));
    for n in 1..=6 {
        big.push(EventKind::Commit, n, 0, record.as_bytes());
    }
    let g = named("g");
    reg.bind(&name("g"), hash("m")).unwrap();
    reg.record_outcomes("r1", &big.all(&g)).unwrap();
    assert_eq!(seqs(&reg, &g, &query(0)), [4, 5, 6]);
    drop(reg);
    let reg = Registry::open_with(dir.path(), options).unwrap();
    assert_eq!(seqs(&reg, &g, &query(0)), [4, 5, 6]);
    assert_eq!(reg.outcomes_pruned(&g, "r1").unwrap(), 3);
    let mut huge = Log::new();
    huge.push(EventKind::Commit, 1, 0, "y".repeat(100 * 1024).as_bytes());
    reg.record_outcomes("r9", &huge.all(&g)).unwrap();
    let q = OutputsQuery {
        runner: Some("r9".into()),
        ..query(0)
    };
    assert_eq!(
        seqs(&reg, &g, &q),
        [1],
        "the head is kept even over the budget"
    );
}

#[test]
fn outputs_page_by_limit_and_bound_errors() {
    let (_dir, reg, id) = setup();
    let err = reg.outputs(&named("nope"), &query(0)).unwrap_err();
    assert!(
        matches!(err, RegistryError::FunctionNotFound { .. }),
        "{err}"
    );
    // Nothing pushed yet: an empty log, and any after > 0 is beyond its head.
    let page = reg.outputs(&id, &query(0)).unwrap();
    assert_eq!((page.items.len(), page.next, page.head), (0, 0, 0));
    let err = reg.outputs(&id, &query(1)).unwrap_err();
    assert!(
        matches!(err, RegistryError::AfterBeyondHead { after: 1, head: 0 }),
        "{err}"
    );

    let mut log = Log::new();
    for n in 1..=30 {
        // Some blocks emit nothing, some fail.
        log.commit(n, 0, (n % 4) as usize);
    }
    log.outcomes[9].status = InvocationStatus::Failed {
        reason: "trap".into(),
    };
    log.outcomes[9].item_count = 0;
    // Renumber the items after the failure (a failed invocation has none).
    let mut next = 1;
    for o in &mut log.outcomes {
        o.first_item = next;
        next += u64::from(o.item_count);
    }
    reg.record_outcomes("r1", &log.all(&id)).unwrap();
    let head = next - 1;
    let mut after = 0;
    let mut got = Vec::new();
    loop {
        let page = reg
            .outputs(
                &id,
                &OutputsQuery {
                    limit: Some(7),
                    ..query(after)
                },
            )
            .unwrap();
        assert_eq!(page.head, head);
        assert!(page.items.len() <= 7);
        if page.items.is_empty() {
            assert_eq!(page.next, after);
            break;
        }
        assert_eq!(page.next, page.items.last().unwrap().seq);
        got.extend(page.items.iter().map(|i| i.seq));
        after = page.next;
    }
    assert_eq!(got, (1..=head).collect::<Vec<_>>());
    let err = reg.outputs(&id, &query(head + 1)).unwrap_err();
    assert!(
        matches!(err, RegistryError::AfterBeyondHead { after, head: h } if after == head + 1 && h == head),
        "{err}"
    );
    let err = reg
        .outputs(
            &id,
            &OutputsQuery {
                confirmations: 1_000_000,
                ..query(0)
            },
        )
        .unwrap_err();
    assert!(matches!(err, RegistryError::InvalidQuery { .. }), "{err}");
}

#[test]
fn confirmations_hide_shallow_reorgs_and_show_deep_ones() {
    let (_dir, reg, id) = setup();
    let mut log = Log::new();
    // 1..=10, then a reorg of depth 2 (9, 10 replaced), then 9'..=20'.
    for n in 1..=10 {
        log.commit(n, 0, 1);
    }
    log.revert(10, 0, 1);
    log.revert(9, 0, 1);
    for n in 9..=20 {
        log.commit(n, 1, 1);
    }
    reg.record_outcomes("r1", &log.all(&id)).unwrap();
    let kinds = |confirmations, after| -> Vec<(u64, ItemKind, u8)> {
        reg.outputs(
            &id,
            &OutputsQuery {
                confirmations,
                ..query(after)
            },
        )
        .unwrap()
        .items
        .iter()
        .map(|i| (i.block.number, i.kind, i.block.hash[8]))
        .collect()
    };
    // N = 0: everything, retractions included.
    let all = kinds(0, 0);
    assert_eq!(all.len(), 24);
    assert_eq!(all[10], (10, ItemKind::Retract, 0));
    assert_eq!(all[11], (9, ItemKind::Retract, 0));
    // N = 3: the orphaned 9 and 10 never show, nor their retractions; the tip's last
    // 3 blocks are held back.
    let deep = kinds(3, 0);
    assert!(
        deep.iter().all(|(_, k, _)| *k == ItemKind::Insert),
        "{deep:?}"
    );
    let blocks: Vec<(u64, u8)> = deep.iter().map(|(n, _, b)| (*n, *b)).collect();
    let expected: Vec<(u64, u8)> = (1..=8)
        .map(|n| (n, 0))
        .chain((9..=17).map(|n| (n, 1)))
        .collect();
    assert_eq!(blocks, expected);
    let page = reg
        .outputs(
            &id,
            &OutputsQuery {
                confirmations: 3,
                ..query(0)
            },
        )
        .unwrap();
    // Item 22 (block 18') is the first held back.
    assert_eq!((page.next, page.head), (21, 24));
    // Resuming anywhere gives the same items as reading from the start.
    let full: Vec<u64> = page.items.iter().map(|i| i.seq).collect();
    for after in 0..=page.next {
        let q = OutputsQuery {
            confirmations: 3,
            limit: Some(2),
            ..query(after)
        };
        let mut got = Vec::new();
        let mut at = after;
        loop {
            let p = reg
                .outputs(
                    &id,
                    &OutputsQuery {
                        after: at,
                        ..q.clone()
                    },
                )
                .unwrap();
            if p.items.is_empty() {
                break;
            }
            got.extend(p.items.iter().map(|i| i.seq));
            at = p.next;
        }
        let want: Vec<u64> = full.iter().copied().filter(|s| *s > after).collect();
        assert_eq!(got, want, "after {after}");
    }
    // A reorg deeper than N: what was shown is retracted.
    let mut log2 = Log::new();
    for n in 1..=6 {
        log2.commit(n, 0, 1);
    }
    for n in (3..=6).rev() {
        log2.revert(n, 0, 1);
    }
    log2.commit(3, 1, 1);
    let g = named("g");
    reg.bind(&name("g"), hash("m")).unwrap();
    reg.record_outcomes("r1", &log2.all(&g)).unwrap();
    let page = reg
        .outputs(
            &g,
            &OutputsQuery {
                confirmations: 2,
                ..query(0)
            },
        )
        .unwrap();
    let shown: Vec<(u64, ItemKind)> = page
        .items
        .iter()
        .map(|i| (i.block.number, i.kind))
        .collect();
    // Blocks 1..=4 were 2 deep (6 on top); 4 and 3 are retracted, 5 and 6 never shown.
    assert_eq!(
        shown,
        [
            (1, ItemKind::Insert),
            (2, ItemKind::Insert),
            (3, ItemKind::Insert),
            (4, ItemKind::Insert),
            (4, ItemKind::Retract),
            (3, ItemKind::Retract),
        ]
    );
}

#[test]
fn runners_have_their_own_logs_and_reports() {
    let (_dir, reg, id) = setup();
    let (mut a, mut b) = (Log::new(), Log::new());
    for n in 1..=5 {
        a.commit(n, 0, 1);
        b.commit(n, 0, 2);
    }
    reg.record_outcomes("ra", &a.all(&id)).unwrap();
    reg.record_outcomes("rb", &b.all(&id)).unwrap();
    // No report yet: the log with the most outputs.
    assert_eq!(reg.default_runner(&id).unwrap().as_deref(), Some("rb"));
    report(&reg, "ra", &id, ObservedState::Running, 5);
    std::thread::sleep(std::time::Duration::from_millis(5));
    report(&reg, "rb", &id, ObservedState::Stopped, 3);
    // Two runners' reports are both kept; the top-level fields show the latest.
    let view = reg.function(&id).unwrap();
    let runners: Vec<(&str, u64)> = view
        .runners
        .iter()
        .map(|r| (r.runner.as_str(), r.counters.invocations))
        .collect();
    assert_eq!(runners, [("ra", 5), ("rb", 3)]);
    assert_eq!(view.reported.as_ref().unwrap().runner, "rb");
    assert_eq!(view.observed, Some(ObservedState::Stopped));
    assert_eq!(view.cursor, Some(block(3, 0)));
    // The stream reads the runner that observes the function running, never a mix.
    let page = reg.outputs(&id, &query(0)).unwrap();
    assert_eq!(page.runner, "ra");
    assert_eq!(page.head, 5);
    assert!(page.items.iter().all(|i| i.runner == "ra"));
    let page = reg
        .outputs(
            &id,
            &OutputsQuery {
                runner: Some("rb".into()),
                ..query(0)
            },
        )
        .unwrap();
    assert_eq!(
        (page.runner.as_str(), page.head, page.items.len()),
        ("rb", 10, 10)
    );
    // Logs come from the chosen runner's outcomes, stdout decoded for display only.
    let logs = reg.logs(&id, 3).unwrap();
    let blocks: Vec<u64> = logs.invocations.iter().map(|r| r.block.number).collect();
    assert_eq!(blocks, [3, 4, 5]);
    assert_eq!(logs.invocations[2].stdout, "{\"n\":5,\"i\":0}\n");
    assert_eq!(logs.invocations[2].stderr, "log of 5");
    report(&reg, "rb", &id, ObservedState::Running, 5);
    assert_eq!(reg.outputs(&id, &query(0)).unwrap().runner, "rb");
}

#[test]
fn binary_output_is_kept_exactly() {
    let (_dir, reg, id) = setup();
    let mut log = Log::new();
    log.push(EventKind::Commit, 1, 0, b"\xff\x00binary\n{\"ok\": true}\n");
    reg.record_outcomes("r1", &log.all(&id)).unwrap();
    let page = reg.outputs(&id, &query(0)).unwrap();
    assert_eq!(page.items.len(), 2);
    assert!(page.items[0].binary);
    assert_eq!(page.items[0].record_bytes(), b"\xff\x00binary");
    assert_eq!(
        page.items[1].record.as_ref().unwrap().get(),
        "{\"ok\": true}"
    );
    let logs = reg.logs(&id, 10).unwrap();
    assert!(
        logs.invocations[0].stdout.contains('\u{fffd}'),
        "lossy only for display"
    );
}

#[test]
fn pages_of_a_function_writing_one_mib_per_block_stay_bounded() {
    let (_dir, reg, id) = setup();
    let mut log = Log::new();
    let record = format!("\"{}\"\n", "z".repeat(1024 * 1024 - 4));
    for n in 1..=12 {
        log.push(EventKind::Commit, n, 0, record.as_bytes());
    }
    for seqs in [1..=4, 5..=8, 9..=12] {
        reg.record_outcomes("r1", &log.page(&id, seqs)).unwrap();
    }
    let mut after = 0;
    let mut pages = 0;
    while after < 12 {
        let page = reg.outputs(&id, &query(after)).unwrap();
        let bytes: usize = page.items.iter().map(|i| i.record_bytes().len()).sum();
        assert!(!page.items.is_empty());
        assert!(bytes <= xxfunc_registry::MAX_OUTPUTS_PAGE_BYTES, "{bytes}");
        after = page.next;
        pages += 1;
    }
    assert!(pages >= 2, "{pages}");
}
