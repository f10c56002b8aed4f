//! Functions run in parallel; each one sees its events strictly in order.

use xxfunc_api::{EventKind, StartFrom};
use xxfunc_runner::{ChainEvent, test_utils::Harness};

use crate::chain::{self, wasm};

#[test]
fn each_function_sees_every_event_in_order_under_parallelism() {
    let mut h = Harness::with_config(|c| {
        c.workers = 4;
        c.max_batch_events = 16;
        // Every event, exactly: no function may lag (a lagging one catches up on the
        // canonical chain and skips blocks orphaned meanwhile), whatever the machine's load.
        crate::never_lag(c);
    })
    .unwrap();
    let ids: Vec<_> = (0..8)
        .map(|i| {
            // Distinct modules: the same code with a different memory size.
            let wat = chain::ECHO_MAGIC.replace(
                "(memory (export \"memory\") 1)",
                &format!("(memory (export \"memory\") {})", i + 1),
            );
            h.start(&format!("f{i}"), &wasm(&wat), StartFrom::Head)
                .unwrap()
        })
        .collect();
    let main = chain::blocks(None, 1, 40, 0);
    let fork = chain::blocks(Some(&main[36]), 38, 5, 1);
    let mut events: Vec<ChainEvent> = main
        .iter()
        .map(|b| ChainEvent::commit(0, b.clone()))
        .collect();
    events.extend(
        main[37..]
            .iter()
            .rev()
            .map(|b| ChainEvent::revert(0, b.clone())),
    );
    events.extend(fork.iter().map(|b| ChainEvent::commit(0, b.clone())));
    let mut seq = 0;
    for chunk in events.chunks_mut(16) {
        for ev in chunk.iter_mut() {
            seq += 1;
            ev.seq = seq;
        }
        h.runner_mut().process(chunk).unwrap();
    }
    h.runner_mut().settle().unwrap();
    let expected: Vec<(EventKind, u64)> = events
        .iter()
        .map(|e| {
            let kind = match e.kind {
                xxfunc_abi::EventKind::Commit => EventKind::Commit,
                xxfunc_abi::EventKind::Revert => EventKind::Revert,
            };
            (kind, e.block.number)
        })
        .collect();
    for id in &ids {
        let got: Vec<(EventKind, u64)> = h
            .records(id)
            .iter()
            .map(|r| (r.kind, r.block.number))
            .collect();
        assert_eq!(got, expected, "{id}");
        // Output bytes 4..12 are the block number the guest read from stdin.
        for r in h.records(id) {
            let bytes = r.stdout.as_bytes();
            assert_eq!(&bytes[..4], b"XXFN");
        }
    }
}
