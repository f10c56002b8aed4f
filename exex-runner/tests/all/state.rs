//! Chain state from guests (docs/abi.md §8) against a real anvil node through the
//! JSON-RPC backend: every host call with good and hostile arguments, `erc20-balances`
//! equal to anvil's own `eth_call` at each block hash through a reorg, replays
//! byte-identical, one backend read per (block, request) across functions, and a backend
//! that goes down: retried, visible in status, never quarantined, recorded once it is
//! back.

use std::{
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use std::collections::HashMap;

use alloy_primitives::{Address, U256};
use bytes::Bytes;
use serde_json::{Value, json};
use xxfunc_abi::EventKind;
use xxfunc_api::{FunctionId, ObservedState, StartFrom};
use xxfunc_runner::{
    ChainEvent, ChainSource, EventInput, Limits, ModuleCache, RpcFollower, WasmEngine,
    state::{BlockAt, RpcState, StateScope, StateSource},
    test_utils::Harness,
};
use xxfunc_store::ModuleHash;

use crate::{
    chain::wasm,
    never_lag,
    rpc_follower::{Anvil, next_events as follow},
};

const DEV: &str = xxfunc_runner::test_utils::DEV_ACCOUNT;
const OTHER: &str = xxfunc_runner::test_utils::OTHER_ACCOUNT;
const THIRD: &str = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn word(value: U256) -> String {
    hex(&value.to_be_bytes::<32>())
}

fn address_word(a: &str) -> String {
    format!("{:0>64}", a.trim_start_matches("0x").to_lowercase())
}

/// The receipt of `tx`, once anvil has mined it (automine answers before the block is in).
fn receipt(anvil: &Anvil, tx: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let receipt = anvil.call("eth_getTransactionReceipt", json!([tx]));
        if !receipt.is_null() {
            return receipt;
        }
        assert!(Instant::now() < deadline, "{tx} was never mined");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Deploys `fixtures/contracts/Token.bin` with `supply` for DEV and returns its address.
fn deploy_token(anvil: &Anvil, supply: u64) -> Address {
    let bin =
        std::fs::read_to_string(xxfunc_guest_modules::fixtures_dir().join("contracts/Token.bin"))
            .expect("reading Token.bin");
    let data = format!("0x{}{}", bin.trim(), word(U256::from(supply)));
    let tx = anvil.call(
        "eth_sendTransaction",
        json!([{"from": DEV, "data": data, "gas": "0x300000"}]),
    );
    let receipt = receipt(anvil, &tx);
    receipt["contractAddress"]
        .as_str()
        .unwrap_or_else(|| panic!("the deployment created no contract: {receipt}"))
        .parse()
        .unwrap()
}

/// Deploys init code that destroys itself in its constructor: afterwards the address has
/// no code and no account.
fn deploy_self_destructed(anvil: &Anvil) -> Address {
    // PUSH0 SELFDESTRUCT
    let tx = anvil.call(
        "eth_sendTransaction",
        json!([{"from": DEV, "data": "0x5fff", "gas": "0x100000"}]),
    );
    receipt(anvil, &tx)["contractAddress"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Sends a token transfer; returns its transaction hash.
fn send_transfer(anvil: &Anvil, token: Address, from: &str, to: &str, value: u64) -> Value {
    let data = format!("0xa9059cbb{}{}", address_word(to), word(U256::from(value)));
    anvil.call(
        "eth_sendTransaction",
        json!([{"from": from, "to": token, "data": data, "gas": "0x100000"}]),
    )
}

/// A token transfer, mined (automine).
fn transfer(anvil: &Anvil, token: Address, from: &str, to: &str, value: u64) {
    let tx = send_transfer(anvil, token, from, to, value);
    receipt(anvil, &tx);
}

/// `balanceOf(owner)` of `token` as anvil's own `eth_call` answers it at `hash`.
fn balance_at(anvil: &Anvil, token: &str, owner: &str, hash: &str) -> U256 {
    let data = format!("0x70a08231{}", address_word(owner));
    let out = anvil.call(
        "eth_call",
        json!([{"to": token, "input": data}, {"blockHash": hash}]),
    );
    out.as_str().unwrap().parse().unwrap()
}

fn head_block(anvil: &Anvil) -> BlockAt {
    let number = anvil.head();
    BlockAt {
        number,
        hash: anvil.hash_at(number),
    }
}

/// WAT bytes as a data string.
fn data_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

/// A `state_call` request: to ‖ from ‖ value ‖ gas ‖ calldata.
fn call_request(to: Address, from: Option<Address>, gas: u64, calldata: &[u8]) -> Vec<u8> {
    let mut req = Vec::new();
    req.extend_from_slice(to.as_slice());
    req.extend_from_slice(from.unwrap_or_default().as_slice());
    req.extend_from_slice(&[0; 32]);
    req.extend_from_slice(&gas.to_be_bytes());
    req.extend_from_slice(calldata);
    req
}

/// A module that makes every host call with good and hostile arguments and writes, in
/// order: the 26 recorded statuses and lengths (i32 LE each), the account answer (72),
/// the storage word (32), the balance (32), the revert data (100) and the code.
fn hostile_wat(token: Address, destroyed: Address) -> String {
    let dev: Address = DEV.parse().unwrap();
    let other: Address = OTHER.parse().unwrap();
    let mut balance_of = vec![0x70, 0xa0, 0x82, 0x31];
    balance_of.extend_from_slice(&[0; 12]);
    balance_of.extend_from_slice(dev.as_slice());
    let mut too_much = vec![0xa9, 0x05, 0x9c, 0xbb];
    too_much.extend_from_slice(&[0; 12]);
    too_much.extend_from_slice(dev.as_slice());
    too_much.extend_from_slice(&U256::MAX.to_be_bytes::<32>());
    let empty: Address = "0x000000000000000000000000000000000000dEaD"
        .parse()
        .unwrap();
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "xxfunc" "state_account" (func $account (param i32 i32) (result i32)))
  (import "xxfunc" "state_storage" (func $storage (param i32 i32 i32) (result i32)))
  (import "xxfunc" "state_code" (func $code (param i32 i32 i32 i32) (result i32)))
  (import "xxfunc" "state_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  (global $n (mut i32) (i32.const 0))
  (data (i32.const 0) "{token}")
  (data (i32.const 400) "{balance_of}")
  (data (i32.const 600) "{starved}")
  (data (i32.const 800) "{revert}")
  (data (i32.const 1000) "{empty}")
  (data (i32.const 1100) "{destroyed}")
  (func $rec (param i32)
    (i32.store (i32.add (i32.const 2048) (i32.mul (global.get $n) (i32.const 4))) (local.get 0))
    (global.set $n (i32.add (global.get $n) (i32.const 1))))
  (func $iov (param $at i32) (param $ptr i32) (param $len i32)
    (i32.store (local.get $at) (local.get $ptr))
    (i32.store (i32.add (local.get $at) (i32.const 4)) (local.get $len)))
  (func (export "_start") (local $i i32) (local $ok i32) (local $last i32)
    (call $rec (call $account (i32.const 0) (i32.const 100)))                  ;; 0 ok
    (call $rec (call $account (i32.const 65530) (i32.const 100)))              ;; 1 address past memory
    (call $rec (call $account (i32.const 0) (i32.const 65500)))                ;; 2 answer past memory
    (call $rec (call $account (i32.const -1) (i32.const 100)))                 ;; 3 negative pointer
    (call $rec (call $storage (i32.const 0) (i32.const 32) (i32.const 200)))   ;; 4 slot 0: totalSupply
    (call $rec (call $code (i32.const 0) (i32.const 5000) (i32.const 0) (i32.const 296)))     ;; 5 0-byte buffer
    (call $rec (i32.load (i32.const 296)))                                     ;; 6 the length needed
    (call $rec (call $code (i32.const 0) (i32.const 5000) (i32.const 65536) (i32.const 296))) ;; 7 buffer past memory
    (call $rec (call $code (i32.const 0) (i32.const 5000) (i32.const 8000) (i32.const 65534))) ;; 8 length word past memory
    (call $rec (call $code (i32.const 0) (i32.const 5000) (i32.const 8000) (i32.const 296)))  ;; 9 ok
    (call $rec (call $call (i32.const 400) (i32.const 79) (i32.const 4096) (i32.const 64) (i32.const 1200)))     ;; 10 short request
    (call $rec (call $call (i32.const 400) (i32.const 100000) (i32.const 4096) (i32.const 64) (i32.const 1200))) ;; 11 request past memory
    (call $rec (call $call (i32.const 400) (i32.const {balance_len}) (i32.const 4096) (i32.const 64) (i32.const 1200))) ;; 12 balanceOf
    (call $rec (i32.load (i32.const 1200)))                                    ;; 13 its length
    (call $rec (call $call (i32.const 600) (i32.const {balance_len}) (i32.const 4300) (i32.const 64) (i32.const 1200))) ;; 14 out of gas
    (call $rec (call $call (i32.const 800) (i32.const {revert_len}) (i32.const 4200) (i32.const 100) (i32.const 1204))) ;; 15 reverts
    (call $rec (i32.load (i32.const 1204)))                                    ;; 16 revert data length
    (call $rec (call $call (i32.const 1000) (i32.const 80) (i32.const 4400) (i32.const 64) (i32.const 1208)))    ;; 17 empty account
    (call $rec (i32.load (i32.const 1208)))                                    ;; 18 its length
    (call $rec (call $call (i32.const 1100) (i32.const 80) (i32.const 4400) (i32.const 64) (i32.const 1212)))    ;; 19 self-destructed
    (call $rec (i32.load (i32.const 1212)))                                    ;; 20 its length
    (call $rec (call $call (i32.const 400) (i32.const {balance_len}) (i32.const 4400) (i32.const 0) (i32.const 1216))) ;; 21 0-byte buffer
    (call $rec (i32.load (i32.const 1216)))                                    ;; 22 the length needed
    (loop $again                                                               ;; 10,000 reads in a loop
      (local.set $last (call $storage (i32.const 0) (i32.const 32) (i32.const 200)))
      (if (i32.eqz (local.get $last)) (then (local.set $ok (i32.add (local.get $ok) (i32.const 1)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 10000))))
    (call $rec (local.get $ok))                                                ;; 23 reads answered
    (call $rec (local.get $last))                                              ;; 24 the last status
    (call $rec (call $account (i32.const 0) (i32.const 100)))                  ;; 25 still limited
    (call $iov (i32.const 8192) (i32.const 2048) (i32.mul (global.get $n) (i32.const 4)))
    (call $iov (i32.const 8200) (i32.const 100) (i32.const 72))
    (call $iov (i32.const 8208) (i32.const 200) (i32.const 32))
    (call $iov (i32.const 8216) (i32.const 4096) (i32.const 32))
    (call $iov (i32.const 8224) (i32.const 4200) (i32.const 100))
    (call $iov (i32.const 8232) (i32.const 5000) (i32.load (i32.const 296)))
    (local.set $i (i32.const 0))
    (loop $write                                                               ;; one iovec per call
      (drop (call $fd_write (i32.const 1) (i32.add (i32.const 8192) (i32.mul (local.get $i) (i32.const 8))) (i32.const 1) (i32.const 8300)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $write (i32.lt_u (local.get $i) (i32.const 6))))))"#,
        token = data_string(token.as_slice()),
        balance_of = data_string(&call_request(token, None, 0, &balance_of)),
        starved = data_string(&call_request(token, None, 22_500, &balance_of)),
        revert = data_string(&call_request(token, Some(other), 0, &too_much)),
        empty = data_string(&call_request(empty, None, 0, &[])),
        destroyed = data_string(&call_request(destroyed, None, 0, &[])),
        balance_len = 80 + balance_of.len(),
        revert_len = 80 + too_much.len(),
    )
}

/// What [`hostile_wat`]'s module wrote: the statuses, then the answers.
pub(crate) struct Hostile {
    statuses: Vec<i32>,
    account: Vec<u8>,
    supply: U256,
    balance: U256,
    revert: Vec<u8>,
    code: Vec<u8>,
}

/// Runs [`hostile_wat`]'s module once at `at`, reading from `source`.
pub(crate) fn run_hostile(
    source: StateSource,
    at: BlockAt,
    token: Address,
    destroyed: Address,
) -> Hostile {
    let bytes = wasm(&hostile_wat(token, destroyed));
    // Admission accepts it: every import is a documented host call.
    xxfunc_service::validate_module(&bytes).expect("the module is admitted");
    let engine = Arc::new(WasmEngine::new(Limits::default(), 2).unwrap());
    let cache = ModuleCache::new(engine.clone(), None);
    let (module, _) = cache
        .load(&ModuleHash::of(&bytes), || Ok(bytes.clone()))
        .unwrap();
    let scope = StateScope {
        source,
        at,
        revert: false,
    };
    let envelope = Bytes::from_static(b"");
    let outcome = engine.invoke(
        &module,
        EventInput {
            envelope: &envelope,
            timestamp: 0,
            block_hash: &at.hash.0,
            state: Some(&scope),
        },
    );
    assert!(outcome.is_ok(), "{:?}", outcome.status);
    assert_eq!(outcome.unavailable, None);
    let out = &outcome.stdout;
    assert!(out.len() > 26 * 4 + 236, "{outcome:?}");
    let statuses: Vec<i32> = out[..26 * 4]
        .chunks(4)
        .map(|c| i32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let rest = &out[26 * 4..];
    let (account, rest) = rest.split_at(72);
    let (supply, rest) = rest.split_at(32);
    let (balance, rest) = rest.split_at(32);
    let (revert, code) = rest.split_at(100);
    Hostile {
        statuses,
        account: account.to_vec(),
        supply: U256::from_be_slice(supply),
        balance: U256::from_be_slice(balance),
        revert: revert.to_vec(),
        code: code.to_vec(),
    }
}

/// Checks what [`run_hostile`] got for the token with `code`, `supply` and DEV's
/// `dev_balance`.
pub(crate) fn assert_hostile(got: &Hostile, code: &[u8], supply: U256, dev_balance: U256) {
    // Host calls before the loop: 4 account, 1 storage, 4 code, 8 call.
    let answered_in_loop = Limits::default().state.calls as i32 - 17;
    let (ok, reverted, too_small, unlimited, bad, halted) = (0, 1, 2, -2, -3, -4);
    let expected = vec![
        ok,
        bad,
        bad,
        bad,
        ok,
        too_small,
        code.len() as i32,
        bad,
        bad,
        ok,
        bad,
        bad,
        ok,
        32,
        halted,
        reverted,
        100,
        ok,
        0,
        ok,
        0,
        too_small,
        32,
        answered_in_loop,
        unlimited,
        unlimited,
    ];
    assert_eq!(got.statuses, expected);
    // Account: no balance, nonce 1 (a contract), keccak of its code.
    assert_eq!(&got.account[..32], &[0; 32]);
    assert_eq!(
        u64::from_be_bytes(got.account[32..40].try_into().unwrap()),
        1
    );
    assert_eq!(
        &got.account[40..],
        alloy_primitives::keccak256(code).as_slice()
    );
    assert_eq!(got.supply, supply);
    assert_eq!(got.balance, dev_balance);
    // Error("balance"): selector, offset, length 7, the string.
    assert_eq!(&got.revert[..4], &[0x08, 0xc3, 0x79, 0xa0]);
    assert_eq!(&got.revert[68..75], b"balance");
    assert_eq!(got.code, code);
}

#[test]
fn every_host_call_answers_good_and_hostile_arguments_with_typed_statuses() {
    let Some(anvil) = Anvil::start() else { return };
    let token = deploy_token(&anvil, 1_000_000);
    let destroyed = deploy_self_destructed(&anvil);
    transfer(&anvil, token, DEV, OTHER, 250);
    let at = head_block(&anvil);
    let source = StateSource::new(Arc::new(RpcState::new(&anvil.url).unwrap()));
    let got = run_hostile(source, at, token, destroyed);

    let code_hex = anvil.call("eth_getCode", json!([token, {"blockHash": at.hash}]));
    let code: alloy_primitives::Bytes = code_hex.as_str().unwrap().parse().unwrap();
    let hash = format!("{:#x}", at.hash);
    let dev_balance = balance_at(&anvil, &format!("{token:#x}"), DEV, &hash);
    assert_eq!(dev_balance, U256::from(1_000_000 - 250));
    assert_hostile(&got, &code, U256::from(1_000_000), dev_balance);
}

/// anvil with the fixture Token deployed (`supply` for DEV), the next block's number, and
/// a follower from that block; `None` (the test skips) without anvil.
fn token_chain(supply: u64) -> Option<(Anvil, Address, u64, xxfunc_runner::SinkReceiver)> {
    let anvil = Anvil::start()?;
    let token = deploy_token(&anvil, supply);
    let start = anvil.head() + 1;
    let rx = follow_from(&anvil, start);
    Some((anvil, token, start, rx))
}

/// A follower of `anvil` from block `start`, on a thread of its own.
fn follow_from(anvil: &Anvil, start: u64) -> xxfunc_runner::SinkReceiver {
    let follower = RpcFollower::connect(&anvil.url)
        .unwrap()
        .poll_interval(Duration::from_millis(20))
        .start_at(start);
    let (sink, rx) = xxfunc_runner::EventSink::channel(1024);
    std::thread::spawn(move || Box::new(follower).run(xxfunc_runner::Checkpoint::default(), sink));
    rx
}

fn records_of(harness: &Harness, id: &FunctionId) -> Vec<(xxfunc_api::EventKind, Value)> {
    harness
        .records(id)
        .into_iter()
        .flat_map(|r| {
            let kind = r.kind;
            r.stdout
                .lines()
                .map(|l| (kind, serde_json::from_str::<Value>(l).unwrap()))
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn erc20_balances_equal_anvils_eth_call_at_every_block_through_a_reorg() {
    let Some((anvil, token, start, rx)) = token_chain(1_000_000) else {
        return;
    };

    // Blocks `start..start+4`: transfers among three holders, two in one block.
    transfer(&anvil, token, DEV, OTHER, 100);
    transfer(&anvil, token, OTHER, THIRD, 40);
    anvil.call("evm_setAutomine", json!([false]));
    send_transfer(&anvil, token, DEV, THIRD, 7);
    let second = send_transfer(&anvil, token, THIRD, OTHER, 3);
    anvil.call("anvil_mine", json!([1]));
    receipt(&anvil, &second);
    anvil.call("evm_setAutomine", json!([true]));
    transfer(&anvil, token, DEV, OTHER, 11);
    let token_hex = format!("{token:#x}");
    // Every holder's balance at each block, as anvil answers (it may not answer for
    // orphaned blocks after the reorg; the runner must).
    let mut expected: HashMap<(String, String), U256> = HashMap::new();
    let remember = |numbers: std::ops::Range<u64>, expected: &mut HashMap<_, _>| {
        for n in numbers {
            let hash = format!("{:#x}", anvil.hash_at(n));
            for owner in [DEV, OTHER, THIRD] {
                let balance = balance_at(&anvil, &token_hex, owner, &hash);
                expected.insert((hash.clone(), owner.to_lowercase()), balance);
            }
        }
    };

    // Two runners, each with its own cache, follow the node live: their outputs must be
    // byte-identical (determinism), and equal to anvil's answers.
    let module = xxfunc_guest_modules::module_bytes("erc20-balances");
    let mut runners: Vec<(Harness, FunctionId, StateSource)> = (0..2)
        .map(|_| {
            let mut harness = Harness::with_config(never_lag).unwrap();
            let source = StateSource::new(Arc::new(RpcState::new(&anvil.url).unwrap()));
            harness.runner_mut().set_state(Some(source.clone()));
            let id = harness
                .start("balances", &module, StartFrom::Block(start))
                .unwrap();
            (harness, id, source)
        })
        .collect();
    let mut feed = |events: &[ChainEvent]| {
        for (harness, _, _) in &mut runners {
            for ev in events {
                harness
                    .runner_mut()
                    .process(std::slice::from_ref(ev))
                    .unwrap();
                harness.runner_mut().settle().unwrap();
            }
        }
    };
    let commits = follow(&rx, 4);
    feed(&commits);
    remember(start..start + 4, &mut expected);
    // A reorg of the last two blocks with another transfer.
    let data = format!("0xa9059cbb{}{}", address_word(THIRD), word(U256::from(5)));
    anvil.call(
        "anvil_reorg",
        json!([2, [[{"from": DEV, "to": token, "data": data, "gas": "0x100000"}, 0]]]),
    );
    let reorg = follow(&rx, 4);
    let kinds: Vec<_> = reorg.iter().map(|e| (e.kind, e.block.number)).collect();
    assert_eq!(
        kinds,
        [
            (EventKind::Revert, start + 3),
            (EventKind::Revert, start + 2),
            (EventKind::Commit, start + 2),
            (EventKind::Commit, start + 3),
        ]
    );
    feed(&reorg);
    for (harness, id, _) in &runners {
        let report = harness.report(id);
        assert_eq!(report.observed, ObservedState::Running, "{report:?}");
        assert_eq!(report.counters.failures, 0, "{report:?}");
        assert_eq!(report.counters.invocations, 8, "{report:?}");
    }
    let (harness, id, source) = &runners[0];
    let records = records_of(harness, id);

    remember(start + 2..start + 4, &mut expected);
    let mut inserts = 0;
    let mut retracts = Vec::new();
    for (kind, r) in &records {
        let hash = r["block_hash"].as_str().unwrap().to_string();
        for (who, balance) in [("from", "from_balance"), ("to", "to_balance")] {
            let owner = r[who].as_str().unwrap().to_lowercase();
            let want = expected[&(hash.clone(), owner)];
            assert_eq!(r[balance].as_str().unwrap(), want.to_string(), "{r}");
        }
        match kind {
            xxfunc_api::EventKind::Commit => {
                assert_eq!(r["op"], "insert");
                inserts += 1;
            }
            xxfunc_api::EventKind::Revert => {
                assert_eq!(r["op"], "retract");
                retracts.push(r.clone());
            }
        }
    }
    // Five transfers in four blocks, then the reorg's one.
    assert_eq!(inserts, 6, "{:?}: {records:?}", harness.report(id));
    // Each retraction repeats an insert exactly, `op` aside (same reads, same answers).
    assert_eq!(retracts.len(), 3, "{records:?}");
    for r in &retracts {
        let mut insert = r.clone();
        insert["op"] = json!("insert");
        assert!(
            records.iter().any(|(_, i)| *i == insert),
            "no insert matches the retraction {r}"
        );
    }
    let (hits, misses) = source.cache().hits_and_misses();
    assert!(hits >= 3 && misses > 0, "hits {hits}, misses {misses}");

    let outputs = |(harness, id, _): &(Harness, FunctionId, StateSource)| -> Vec<String> {
        harness.records(id).into_iter().map(|r| r.stdout).collect()
    };
    assert_eq!(outputs(&runners[0]), outputs(&runners[1]));
}

/// A loopback TCP relay to `target` that can refuse connections (a node that went down).
struct Relay {
    url: String,
    up: Arc<AtomicBool>,
}

impl Relay {
    fn start(target: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let up = Arc::new(AtomicBool::new(true));
        let (flag, target) = (up.clone(), target.trim_start_matches("http://").to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if !flag.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                pipe(client.try_clone().unwrap(), server.try_clone().unwrap());
                pipe(server, client);
            }
        });
        Self { url, up }
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 << 10];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 || to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}

#[test]
fn unavailable_state_is_retried_shown_in_status_and_never_quarantines() {
    let Some((anvil, token, start, rx)) = token_chain(1_000) else {
        return;
    };
    transfer(&anvil, token, DEV, OTHER, 10);
    let events = follow(&rx, 1);

    let relay = Relay::start(&anvil.url);
    relay.up.store(false, Ordering::SeqCst);
    let mut harness = Harness::with_config(|c| {
        never_lag(c);
        c.quarantine_after = 2;
    })
    .unwrap();
    let source = StateSource::new(Arc::new(RpcState::new(&relay.url).unwrap()));
    harness.runner_mut().set_state(Some(source));
    let module = xxfunc_guest_modules::module_bytes("erc20-balances");
    let id = harness
        .start("balances", &module, StartFrom::Block(start))
        .unwrap();
    let mut unavailable = harness.runner_mut().process(&events).unwrap().unavailable;
    // Many rounds while the node is down: more than the quarantine threshold.
    let until = Instant::now() + Duration::from_millis(800);
    while Instant::now() < until {
        unavailable += harness.runner_mut().catch_up().unwrap().unavailable;
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = harness.report(&id);
    assert_eq!(report.observed, ObservedState::Running, "{report:?}");
    assert_eq!(report.counters.invocations, 0, "{report:?}");
    assert_eq!(report.counters.failures, 0, "{report:?}");
    assert!(report.cursor.is_none(), "{report:?}");
    let error = report.last_error.unwrap_or_default();
    assert!(
        error.starts_with(&format!("retrying: state unavailable at block {start}: ")),
        "{error}"
    );
    // Backoff (0.1 s, doubling): a handful of attempts in 0.8 s, not one per round.
    assert!((2..=6).contains(&unavailable), "{unavailable} attempts");

    // The node is back: the event runs again once the backoff passes, and is recorded.
    relay.up.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(40);
    while harness.report(&id).counters.invocations == 0 {
        assert!(Instant::now() < deadline, "never retried");
        harness.runner_mut().catch_up().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let report = harness.report(&id);
    assert_eq!(report.counters.failures, 0, "{report:?}");
    assert_eq!(report.last_error, None, "{report:?}");
    let records = records_of(&harness, &id);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].1["to_balance"], "10");
}

#[test]
fn ten_functions_reading_one_block_cost_one_backend_read_per_request() {
    let Some((anvil, token, start, rx)) = token_chain(1_000) else {
        return;
    };
    transfer(&anvil, token, DEV, OTHER, 10);
    let events = follow(&rx, 1);
    let mut harness = Harness::with_config(never_lag).unwrap();
    let source = StateSource::new(Arc::new(RpcState::new(&anvil.url).unwrap()));
    harness.runner_mut().set_state(Some(source.clone()));
    let module = xxfunc_guest_modules::module_bytes("erc20-balances");
    // The same module under ten names (one module, ten functions).
    let ids: Vec<FunctionId> = (0..10)
        .map(|i| {
            harness
                .start(&format!("balances-{i}"), &module, StartFrom::Block(start))
                .unwrap()
        })
        .collect();
    harness.runner_mut().process(&events).unwrap();
    harness.runner_mut().settle().unwrap();
    for id in &ids {
        assert_eq!(records_of(&harness, id).len(), 1);
    }
    // Two reads per function (from and to), two distinct requests in all.
    assert_eq!(source.cache().hits_and_misses(), (18, 2));
}

#[test]
fn a_revert_after_a_restart_answers_the_commits_reads_with_the_node_down() {
    let Some((anvil, token, start, rx)) = token_chain(1_000) else {
        return;
    };
    transfer(&anvil, token, DEV, OTHER, 10);
    transfer(&anvil, token, OTHER, THIRD, 4);
    let commits = follow(&rx, 2);

    let relay = Relay::start(&anvil.url);
    let mut harness = Harness::with_config(never_lag).unwrap();
    let state = || StateSource::new(Arc::new(RpcState::new(&relay.url).unwrap()));
    harness.runner_mut().set_state(Some(state()));
    let module = xxfunc_guest_modules::module_bytes("erc20-balances");
    let id = harness
        .start("balances", &module, StartFrom::Block(start))
        .unwrap();
    harness.runner_mut().process(&commits).unwrap();
    harness.runner_mut().settle().unwrap();
    assert_eq!(harness.report(&id).counters.invocations, 2);

    // Restarted (an empty cache), with the node unreachable: the reverts read only what
    // the commits read, which the runner stored with their outcomes.
    harness.restart().unwrap();
    relay.up.store(false, Ordering::SeqCst);
    harness.runner_mut().set_state(Some(state()));
    let reverts: Vec<ChainEvent> = commits
        .iter()
        .rev()
        .map(|c| ChainEvent::revert(0, c.block.clone()))
        .collect();
    let summary = harness.runner_mut().process(&reverts).unwrap();
    harness.runner_mut().settle().unwrap();
    assert_eq!(summary.unavailable, 0, "{summary:?}");
    let report = harness.report(&id);
    assert_eq!(report.counters.invocations, 4, "{report:?}");
    assert_eq!(report.counters.failures, 0, "{report:?}");
    let records = records_of(&harness, &id);
    assert_eq!(records.len(), 4, "{records:?}");
    for (insert, retract) in records[..2].iter().zip(records[2..].iter().rev()) {
        let mut undo = retract.1.clone();
        undo["op"] = json!("insert");
        assert_eq!(insert.1, undo);
    }
}
