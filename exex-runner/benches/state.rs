//! State-read benchmark: what a guest's `xxfunc.state_storage` costs while the runner
//! follows a node (anvil) over JSON-RPC, against the same `eth_getStorageAt` made
//! directly from Rust in the same run, and what a repeated read in one block costs
//! (answered by the runner's cache). Prints markdown rows:
//! `| id | value | unit | baseline | ratio | notes |`.
//!
//! - `state.storage.rpc`: a module reads `READS` distinct storage slots at one block
//!   through the host call, each a cache miss (a fresh cache per invocation), so each is
//!   one `eth_getStorageAt` with an EIP-1898 block hash; µs per read over the whole
//!   invocation (instantiation included). Baseline: the same requests, one after
//!   another, from a plain `reqwest` client on one keep-alive connection. Ratio
//!   baseline / value: at least 0.91 means the host call adds at most 10 %.
//! - `state.cache.hit`: a module reads one slot `HITS` times in one invocation; every
//!   read after the first is answered from the cache. Baseline: one read over JSON-RPC
//!   (the figure above); ratio: how many times faster a cached read is.
//!
//! - `state.call.offline`: `balanceOf` of `CALLS` distinct holders of the fixture token
//!   through the offline backend (`FixtureState` on fixtures/state, a local revm per
//!   call) at the head block; µs per call. Baseline: one read over JSON-RPC (the first
//!   figure); ratio: how many times faster the offline call is.
//!
//! Needs anvil (scripts/test and scripts/bench install it); skips with a message
//! without. Run with `cargo bench -p xxfunc-runner --bench state`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::Address;
use bytes::Bytes;
use serde_json::{Value, json};
use xxfunc_runner::{
    EventInput, Limits, ModuleCache, WasmEngine,
    state::{
        BlockAt, CallRequest, FixtureState, RpcState, StateBackend, StateLimits, StateRequest,
        StateScope, StateSource,
    },
    test_utils::Anvil,
};
use xxfunc_store::ModuleHash;

const READS: u32 = 400;
const HITS: u32 = 20_000;
const RUNS: usize = 5;
const CALLS: u32 = 2_000;
const DEV: &str = xxfunc_runner::test_utils::DEV_ACCOUNT;

/// A module that reads `n` storage slots of the address at 0: slot `i` when `distinct`,
/// else slot 0 every time. Traps if a read does not answer OK.
fn reader(n: u32, distinct: bool) -> Vec<u8> {
    let dev: Address = DEV.parse().unwrap();
    let address: String = dev
        .as_slice()
        .iter()
        .map(|b| format!("\\{b:02x}"))
        .collect();
    let slot = if distinct {
        "(i32.store8 (i32.const 63) (local.get $i)) (i32.store8 (i32.const 62) (i32.shr_u (local.get $i) (i32.const 8)))"
    } else {
        ""
    };
    wat::parse_str(format!(
        r#"(module
  (import "xxfunc" "state_storage" (func $storage (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (data (i32.const 0) "{address}")
  (func (export "_start") (local $i i32)
    (loop $again
      {slot}
      (if (call $storage (i32.const 0) (i32.const 32) (i32.const 100)) (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {n}))))))"#
    ))
    .expect("the benchmark's WAT parses")
}

fn rpc(
    runtime: &tokio::runtime::Runtime,
    http: &reqwest::Client,
    url: &str,
    method: &str,
    params: Value,
) -> Value {
    runtime.block_on(async {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let reply: Value = http
            .post(url)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        reply["result"].clone()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let Some(anvil) = Anvil::start() else {
        eprintln!("skipping the state benchmark (needs anvil)");
        return;
    };
    let url = anvil.url.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let http = reqwest::Client::new();
    anvil.call("anvil_mine", json!([3]));
    let number = anvil.head();
    let at = BlockAt {
        number,
        hash: anvil.hash_at(number),
    };

    let limits = Limits {
        wall_time: Duration::from_secs(30),
        state: StateLimits {
            calls: HITS + 1,
            ..StateLimits::default()
        },
        ..Limits::default()
    };
    let engine = Arc::new(WasmEngine::new(limits, 2).unwrap());
    let cache = ModuleCache::new(engine.clone(), None);
    let backend = Arc::new(RpcState::new(&url).unwrap());
    let invoke = |bytes: &[u8], source: &StateSource| {
        let (module, _) = cache
            .load(&ModuleHash::of(bytes), || Ok(bytes.to_vec()))
            .unwrap();
        let scope = StateScope {
            source: source.clone(),
            at,
            revert: false,
        };
        let envelope = Bytes::new();
        let outcome = engine.invoke(
            &module,
            EventInput {
                envelope: &envelope,
                timestamp: 0,
                block_hash: &at.hash.0,
                state: Some(&scope),
            },
        );
        assert!(
            outcome.is_ok() && outcome.unavailable.is_none(),
            "{outcome:?}"
        );
        outcome.duration
    };

    let distinct = reader(READS, true);
    let repeated = reader(HITS, false);
    // Warm up: compile both modules, open the connections.
    invoke(&distinct, &StateSource::new(backend.clone()));
    invoke(&repeated, &StateSource::new(backend.clone()));

    let mut host = Vec::new();
    let mut direct = Vec::new();
    let mut hit = Vec::new();
    for _ in 0..RUNS {
        let took = invoke(&distinct, &StateSource::new(backend.clone()));
        host.push(took.as_secs_f64() * 1e6 / f64::from(READS));

        let t = Instant::now();
        for i in 0..READS {
            let slot = format!("{i:#x}");
            let v = rpc(
                &runtime,
                &http,
                &url,
                "eth_getStorageAt",
                json!([DEV, slot, {"blockHash": at.hash, "requireCanonical": false}]),
            );
            assert!(v.is_string(), "{v}");
        }
        direct.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(READS));

        let took = invoke(&repeated, &StateSource::new(backend.clone()));
        hit.push(took.as_secs_f64() * 1e6 / f64::from(HITS));
    }
    let (host, direct, hit) = (median(host), median(direct), median(hit));
    let offline = offline_calls();
    println!("| id | value | unit | baseline | ratio | notes |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| state.storage.rpc | {host:.1} | µs/read | {direct:.1} | {:.2} | {READS} distinct slots read by a guest through xxfunc.state_storage (each a cache miss: one eth_getStorageAt by block hash to anvil on loopback) vs the same requests from a plain reqwest client; median of {RUNS}; target ratio >= 0.91 (<= 10 % overhead) |",
        direct / host
    );
    println!(
        "| state.cache.hit | {hit:.2} | µs/read | {host:.1} | {:.0} | one slot read {HITS} times in one invocation (all but the first from the runner's cache) vs one read over JSON-RPC; median of {RUNS} |",
        host / hit
    );
    if let Some(offline) = offline {
        println!(
            "| state.call.offline | {offline:.1} | µs/call | {host:.1} | {:.1} | balanceOf of {CALLS} distinct holders of the fixture token on fixtures/state (FixtureState: revm per call, no cache) vs one read over JSON-RPC; median of {RUNS} |",
            host / offline
        );
    }
}

/// Median µs per `balanceOf` call on the recorded fixture state, or `None` (with a
/// message) when fixtures/state is not recorded.
fn offline_calls() -> Option<f64> {
    let dir = xxfunc_guest_modules::fixtures_dir().join("state");
    let Ok(state) = FixtureState::open(&dir) else {
        eprintln!(
            "skipping state.call.offline: {} is not recorded",
            dir.display()
        );
        return None;
    };
    let head = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_name()?.to_string_lossy().into_owned();
            let (number, _) = name.split_once('-')?;
            Some((number.parse::<u64>().ok()?, path))
        })
        .max()
        .unwrap();
    let file: Value = serde_json::from_slice(&std::fs::read(&head.1).unwrap()).unwrap();
    let at = BlockAt {
        number: head.0,
        hash: file["block"]["hash"].as_str().unwrap().parse().unwrap(),
    };
    let token: Address = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
        .parse()
        .unwrap();
    let calls: Vec<StateRequest> = (0..CALLS)
        .map(|i| {
            let mut data = vec![0x70, 0xa0, 0x82, 0x31];
            data.extend_from_slice(&[0; 12]);
            data.extend_from_slice(Address::with_last_byte((i % 251) as u8).as_slice());
            data[20..24].copy_from_slice(&i.to_be_bytes());
            StateRequest::Call(CallRequest {
                to: token,
                from: None,
                value: alloy_primitives::U256::ZERO,
                gas: StateLimits::default().gas,
                data: data.into(),
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let t = Instant::now();
        for call in &calls {
            let answer = state.read(&at, call, deadline).unwrap();
            assert!(
                matches!(answer, xxfunc_runner::state::StateAnswer::Returned(ref b) if b.len() == 32),
                "{answer:?}"
            );
        }
        runs.push(t.elapsed().as_secs_f64() * 1e6 / f64::from(CALLS));
    }
    Some(median(runs))
}
