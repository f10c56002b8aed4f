//! What a guest sees and what it cannot do: envelope on stdin, virtual time,
//! seeded random, and each limit with its reason.

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use xxfunc_abi::{ChainBlock, EventKind};
use xxfunc_runner::{EventInput, Limits, ModuleCache, Outcome, WasmEngine};
use xxfunc_store::ModuleHash;

use crate::chain::{self, wasm};

fn run(limits: Limits, bytes: &[u8], block: &ChainBlock) -> Outcome {
    let engine = Arc::new(WasmEngine::new(limits, 4).expect("engine"));
    let cache = ModuleCache::new(engine.clone(), None);
    let hash = ModuleHash::of(bytes);
    let (module, _) = cache
        .load(&hash, || Ok(bytes.to_vec()))
        .expect("module loads");
    let envelope = Bytes::from(xxfunc_abi::encode(EventKind::Commit, block).expect("encode"));
    engine.invoke(
        &module,
        EventInput {
            envelope: &envelope,
            timestamp: block.timestamp,
            block_hash: &block.hash.0,
            state: None,
        },
    )
}

fn block(n: u64) -> ChainBlock {
    chain::blocks(None, n, 1, 0).remove(0)
}

#[test]
fn stdin_carries_the_envelope() {
    let b = block(42);
    let out = run(Limits::default(), &wasm(chain::ECHO_MAGIC), &b);
    assert!(out.is_ok(), "{:?}", out.status);
    assert_eq!(&out.stdout[..4], b"XXFN");
    assert_eq!(
        u64::from_le_bytes(out.stdout[4..12].try_into().unwrap()),
        42
    );
}

#[test]
fn sleep_is_virtual_and_clocks_read_the_block() {
    // A real 10 s sleep would breach the 1 s wall-time limit; on the virtual
    // clock it returns at once and the monotonic clock moves by exactly 10 s.
    let b = block(5);
    let limits = Limits {
        wall_time: Duration::from_secs(1),
        ..Limits::default()
    };
    let bytes = wasm(chain::SLEEP_THEN_CLOCKS);
    let out = run(limits.clone(), &bytes, &b);
    assert!(out.is_ok(), "{:?}", out.status);
    let monotonic = u64::from_le_bytes(out.stdout[0..8].try_into().unwrap());
    let realtime = u64::from_le_bytes(out.stdout[8..16].try_into().unwrap());
    assert_eq!(monotonic, 10_000_000_000);
    assert_eq!(realtime, (b.timestamp + 10) * 1_000_000_000);
    // Random is seeded from block hash and module hash: same inputs, same bytes.
    let again = run(limits.clone(), &bytes, &b);
    assert_eq!(out.stdout, again.stdout);
    let other = run(limits, &bytes, &block(6));
    assert_ne!(out.stdout[16..32], other.stdout[16..32]);
}

#[test]
fn limits_fail_with_their_reason() {
    let b = block(1);
    let limits = Limits {
        wall_time: Duration::from_millis(100),
        ..Limits::default()
    };
    let reason = |wat: &str, limits: &Limits| {
        run(limits.clone(), &wasm(wat), &b)
            .reason()
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert_eq!(
        reason(chain::LOOP, &limits),
        "wall-time limit of 100ms exceeded"
    );
    assert_eq!(
        reason(chain::GROW, &limits),
        "memory limit of 64 MiB exceeded"
    );
    assert_eq!(reason(chain::EXIT3, &limits), "exited with code 3");
    assert_eq!(reason(chain::FLOOD, &limits), "stdout exceeded 1 MiB cap");
    let fueled = Limits {
        fuel: Some(100_000),
        ..limits
    };
    assert_eq!(
        reason(chain::LOOP, &fueled),
        "fuel limit of 100000 exhausted"
    );
}

#[test]
fn output_is_capped_at_the_limit() {
    let limits = Limits {
        stdout_bytes: 100 << 10,
        ..Limits::default()
    };
    let out = run(limits, &wasm(chain::FLOOD), &block(1));
    assert_eq!(out.reason(), Some("stdout exceeded 100 KiB cap"));
    assert_eq!(out.stdout.len(), 100 << 10);
}
