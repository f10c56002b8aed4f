//! The JSON-RPC follower against a real anvil node: commits as blocks are
//! mined, and for `anvil_reorg` at depths 1 to 5 while following, exactly the
//! reverts (newest first) then the commits (oldest first).

use std::time::{Duration, Instant};

use alloy_primitives::B256;
use serde_json::json;
use xxfunc_abi::EventKind;
use xxfunc_runner::{
    ChainEvent, ChainSource, Checkpoint, EventSink, RpcFollower, RpcStart, SinkReceiver,
    SourceMessage,
};

pub use xxfunc_runner::test_utils::Anvil;
use xxfunc_runner::test_utils::{DEV_ACCOUNT, OTHER_ACCOUNT};

/// The next `n` events of a source, failing after 30 s.
pub fn next_events(rx: &SinkReceiver, n: usize) -> Vec<ChainEvent> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out: Vec<ChainEvent> = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} events arrived: {:?}",
            out.len(),
            out.iter()
                .map(|e| (e.kind, e.block.number))
                .collect::<Vec<_>>()
        );
        if let Some(SourceMessage::Event(ev)) = rx.recv_timeout(Duration::from_millis(100)) {
            out.push(ev);
        }
    }
    out
}

/// (kind, number, hash) of the next `n` events, failing after 30 s.
fn take(rx: &SinkReceiver, n: usize) -> Vec<(EventKind, u64, B256)> {
    next_events(rx, n)
        .into_iter()
        .map(|ev| (ev.kind, ev.block.number, ev.block.hash))
        .collect()
}

#[test]
fn follows_anvil_through_reorgs_of_depth_1_to_5() {
    let Some(anvil) = Anvil::start() else { return };
    let follower = RpcFollower::connect(&anvil.url)
        .unwrap()
        .poll_interval(Duration::from_millis(20));
    assert_eq!(follower.chain_id(), 31337);
    let (sink, rx) = EventSink::channel(1024);
    // Follow from genesis explicitly: with no checkpoint the follower starts at
    // whatever head it first sees, which races with the first transfer below.
    let genesis = Checkpoint {
        seq: 0,
        tip: Some(xxfunc_api::BlockRef {
            number: 0,
            hash: anvil.hash_at(0),
        }),
    };
    let thread = std::thread::spawn(move || Box::new(follower).run(genesis, sink));

    // The follower starts after genesis (block 0).
    for _ in 0..3 {
        anvil.send_transfer();
    }
    anvil.call("anvil_mine", json!([7]));
    let commits = take(&rx, 10);
    let expected: Vec<_> = (1..=10)
        .map(|n| (EventKind::Commit, n, anvil.hash_at(n)))
        .collect();
    assert_eq!(commits, expected);

    let mut last_seq_check = 10;
    for depth in 1..=5u64 {
        let head = anvil.head();
        let old: Vec<B256> = (head - depth + 1..=head)
            .map(|n| anvil.hash_at(n))
            .collect();
        anvil.call(
            "anvil_reorg",
            json!([depth, [[{"from": DEV_ACCOUNT, "to": OTHER_ACCOUNT, "value": format!("{:#x}", depth + 100)}, 0]]]),
        );
        assert_eq!(anvil.head(), head, "anvil_reorg keeps the height");
        let got = take(&rx, 2 * depth as usize);
        let mut want: Vec<_> = (head - depth + 1..=head)
            .rev()
            .zip(old.iter().rev())
            .map(|(n, h)| (EventKind::Revert, n, *h))
            .collect();
        want.extend((head - depth + 1..=head).map(|n| (EventKind::Commit, n, anvil.hash_at(n))));
        assert_eq!(got, want, "reorg of depth {depth} at head {head}");
        for (n, h) in (head - depth + 1..=head).zip(&old) {
            assert_ne!(anvil.hash_at(n), *h, "block {n} was replaced");
        }
        // Then the chain goes on: exactly one commit, nothing repeated.
        anvil.send_transfer();
        let next = take(&rx, 1);
        assert_eq!(
            next,
            vec![(EventKind::Commit, head + 1, anvil.hash_at(head + 1))]
        );
        last_seq_check += 2 * depth + 1;
    }
    assert_eq!(last_seq_check, 10 + 30 + 5);
    assert!(
        rx.recv_timeout(Duration::from_millis(200)).is_none(),
        "no stray events"
    );
    drop(rx);
    thread.join().unwrap().unwrap();
}

#[test]
fn resumes_from_a_checkpoint_and_serves_blocks_for_backfill() {
    let Some(anvil) = Anvil::start() else { return };
    anvil.send_transfer();
    anvil.call("anvil_mine", json!([4]));
    let follower = RpcFollower::connect(&anvil.url)
        .unwrap()
        .poll_interval(Duration::from_millis(20));
    let blocks = follower.block_source();
    let b3 = xxfunc_runner::BlockSource::block(&blocks, 3)
        .unwrap()
        .unwrap();
    assert_eq!(b3.hash, anvil.hash_at(3));
    let b1 = xxfunc_runner::BlockSource::block(&blocks, 1)
        .unwrap()
        .unwrap();
    assert_eq!(b1.transactions.len(), 1);
    assert_eq!(b1.receipts.len(), 1);
    assert!(
        xxfunc_runner::BlockSource::block(&blocks, 99)
            .unwrap()
            .is_none()
    );

    // Resume after block 3 (seq 7): the next event is block 4 with seq 8.
    let (sink, rx) = EventSink::channel(64);
    let resume = Checkpoint {
        seq: 7,
        tip: Some(xxfunc_runner::block_ref(&b3)),
    };
    let thread = std::thread::spawn(move || Box::new(follower).run(resume, sink));
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = loop {
        assert!(Instant::now() < deadline);
        if let Some(SourceMessage::Event(ev)) = rx.recv_timeout(Duration::from_millis(100)) {
            break ev;
        }
    };
    assert_eq!((first.seq, first.block.number), (8, 4));
    drop(rx);
    thread.join().unwrap().unwrap();
}

/// Runs a runner with one started function on `anvil` until `until` holds for
/// its report, then stops it and returns it (its state stays in `dir`).
fn follow_until(
    anvil: &Anvil,
    dir: &std::path::Path,
    modules: &std::sync::Arc<xxfunc_runner::StoreModules>,
    start: Option<(&xxfunc_api::FunctionId, xxfunc_store::ModuleHash)>,
    until: impl Fn(&xxfunc_api::RunnerReport) -> bool,
) -> xxfunc_runner::Runner {
    let mut runner =
        xxfunc_runner::Runner::open(xxfunc_runner::RunnerConfig::new(dir), modules.clone())
            .unwrap();
    if let Some((id, hash)) = start {
        runner
            .apply(&xxfunc_api::FunctionSpec {
                id: id.clone(),
                hash,
                desired: xxfunc_api::DesiredState::Started,
                start: xxfunc_api::StartFrom::Block(1),
                start_generation: 1,
                sinks: Vec::new(),
            })
            .unwrap();
    }
    let follower = RpcFollower::connect(&anvil.url)
        .unwrap()
        .poll_interval(Duration::from_millis(20))
        .start_at(1);
    let stop = xxfunc_runner::StopHandle::new();
    let status = xxfunc_runner::StatusHandle::default();
    let thread = {
        let (stop, status) = (stop.clone(), status.clone());
        std::thread::spawn(move || {
            xxfunc_runner::serve(
                runner,
                Box::new(follower),
                None,
                stop,
                status,
                xxfunc_runner::ServeOptions::default(),
            )
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !until(&status.get()) {
        if thread.is_finished() {
            match thread.join().unwrap() {
                Ok(_) => panic!("serve returned before catching up"),
                Err(e) => panic!("serve failed: {e}"),
            }
        }
        assert!(Instant::now() < deadline, "timed out: {:#?}", status.get());
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.stop();
    thread.join().unwrap().unwrap()
}

/// A reorg that happens while the runner is down: on restart the function
/// gets reverts of the blocks it had processed that the node replaced (the
/// node no longer serves them; the runner stored them), then the new blocks.
#[test]
fn reverts_blocks_reorged_away_while_the_runner_was_down() {
    let Some(anvil) = Anvil::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let store = xxfunc_store::ModuleStore::open("memory://").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let hash = rt
        .block_on(store.put(crate::chain::wasm(crate::chain::ECHO_MAGIC)))
        .unwrap()
        .hash;
    let modules = std::sync::Arc::new(xxfunc_runner::StoreModules::new(store).unwrap());
    let id: xxfunc_api::FunctionId = "echo".parse().unwrap();
    let cursor = |r: &xxfunc_api::RunnerReport| {
        r.functions
            .iter()
            .find(|f| f.id == id)
            .and_then(|f| f.cursor)
    };

    anvil.send_transfer();
    anvil.call("anvil_mine", json!([5]));
    let tip = anvil.hash_at(6);
    let runner = follow_until(&anvil, dir.path(), &modules, Some((&id, hash)), |r| {
        cursor(r).is_some_and(|c| c.number == 6 && c.hash == tip)
    });
    assert_eq!(runner.recent_blocks().len(), 6, "blocks 1-6 are stored");
    drop(runner);

    // While the runner is down: blocks 4-6 are replaced, and the node forgets them.
    let old: Vec<B256> = (4..=6).map(|n| anvil.hash_at(n)).collect();
    anvil.call(
        "anvil_reorg",
        json!([3, [[{"from": DEV_ACCOUNT, "to": OTHER_ACCOUNT, "value": "0x77"}, 1]]]),
    );
    anvil.call("anvil_mine", json!([1]));
    assert!(
        anvil
            .try_call("eth_getBlockByHash", json!([old[2], false]))
            .is_ok_and(|v| v.is_null()),
        "anvil no longer serves the orphaned tip"
    );
    let new_tip = anvil.hash_at(7);
    let runner = follow_until(&anvil, dir.path(), &modules, None, |r| {
        cursor(r).is_some_and(|c| c.number == 7 && c.hash == new_tip)
    });

    let seen: Vec<(xxfunc_api::EventKind, u64, B256)> = runner
        .outputs(&id)
        .unwrap()
        .iter()
        .map(|r| (r.kind, r.block.number, r.block.hash))
        .collect();
    use xxfunc_api::EventKind::{Commit, Revert};
    let mut want: Vec<_> = (1..=3).map(|n| (Commit, n, anvil.hash_at(n))).collect();
    want.extend((4..=6).zip(&old).map(|(n, h)| (Commit, n, *h)));
    want.extend(
        (4..=6)
            .rev()
            .zip(old.iter().rev())
            .map(|(n, h)| (Revert, n, *h)),
    );
    want.extend((4..=7).map(|n| (Commit, n, anvil.hash_at(n))));
    assert_eq!(seen, want);
}

/// Runs a fresh follower (no checkpoint) started as `start` on its own thread.
fn follow_from(
    anvil: &Anvil,
    start: RpcStart,
) -> (
    SinkReceiver,
    std::thread::JoinHandle<xxfunc_runner::Result<()>>,
) {
    let follower = RpcFollower::connect(&anvil.url)
        .unwrap()
        .poll_interval(Duration::from_millis(20))
        .start(start)
        .unwrap();
    let (sink, rx) = EventSink::channel(1024);
    let thread = std::thread::spawn(move || Box::new(follower).run(Checkpoint::default(), sink));
    (rx, thread)
}

/// Without a checkpoint the follower starts where `--start` says: the node's current
/// head block at once (so backfill has a tip without waiting for a new block), the next
/// block, a number, or a hash; and an unknown hash is refused up front.
#[test]
fn a_fresh_follower_starts_at_head_next_a_number_or_a_hash() {
    let Some(anvil) = Anvil::start() else { return };
    anvil.call("anvil_mine", json!([6]));
    let commit = |n: u64| (EventKind::Commit, n, anvil.hash_at(n));

    let (rx, _head) = follow_from(&anvil, RpcStart::Head);
    assert_eq!(take(&rx, 1), vec![commit(6)], "the head block, at once");

    let (rx, _number) = follow_from(&anvil, RpcStart::Block(3));
    assert_eq!(take(&rx, 4), (3..=6).map(commit).collect::<Vec<_>>());

    let (rx, _hash) = follow_from(&anvil, RpcStart::Hash(anvil.hash_at(5)));
    assert_eq!(take(&rx, 2), vec![commit(5), commit(6)]);

    let (rx, _next) = follow_from(&anvil, RpcStart::Next);
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_none(),
        "next waits for a new block"
    );
    anvil.send_transfer();
    assert_eq!(take(&rx, 1), vec![commit(7)]);

    let unknown = RpcFollower::connect(&anvil.url)
        .unwrap()
        .start(RpcStart::Hash(B256::repeat_byte(0xab)))
        .unwrap_err();
    assert!(
        unknown.to_string().contains("no canonical block"),
        "{unknown}"
    );
    for (text, ok) in [
        ("head", true),
        ("next", true),
        ("12", true),
        ("0xzz", false),
        ("-1", false),
        ("latest", false),
    ] {
        assert_eq!(text.parse::<RpcStart>().is_ok(), ok, "{text}");
    }
}

/// A reorg deeper than the follower remembers ends it with that error (the runner then
/// stops with it) instead of being retried forever.
#[test]
fn a_reorg_deeper_than_the_follower_remembers_is_a_terminal_error() {
    let Some(anvil) = Anvil::start() else { return };
    let (rx, thread) = follow_from(&anvil, RpcStart::Block(1));
    anvil.call("anvil_mine", json!([300]));
    assert_eq!(take(&rx, 300).len(), 300);
    anvil.call("anvil_reorg", json!([290, []]));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !thread.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the follower kept retrying a reorg it cannot follow"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = thread.join().unwrap().unwrap_err();
    assert!(err.is_terminal_rpc(), "{err}");
    assert!(err.to_string().contains("reorg deeper than"), "{err}");
}
