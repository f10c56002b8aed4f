//! The offline state backend ([`FixtureState`]) on the recorded fixture state: every host
//! call with good and hostile arguments answers as it does against anvil, calls that loop,
//! run out of gas or read `BLOCKHASH` answer as a node would, a block it lacks and a
//! deadline are "state unavailable", broken files are errors naming the file, and the
//! `erc20-balances` goldens equal anvil's own `eth_call` at every block hash (re-recording
//! the fixtures from a fresh anvil, which must reproduce every file byte for byte).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use serde_json::Value;
use xxfunc_runner::{
    StatusHandle,
    state::{
        BlockAt, CallRequest, FixtureState, StateAnswer, StateBackend, StateRequest, StateSource,
    },
    test_utils::{Anvil, DEV_ACCOUNT},
};

use crate::state::{assert_hostile, run_hostile};

/// The fixture token (`fixtures/contracts/Token.sol`), the chain's first deployment.
const TOKEN: &str = "0x5fbdb2315678afecb367f032d93f642f64180aa3";
/// Its constructor's mint (`TOKEN_SUPPLY` in scripts/record_fixtures.py).
const SUPPLY: u128 = 1_000_000 * 10u128.pow(18);

fn state_dir() -> Option<PathBuf> {
    let dir = xxfunc_guest_modules::fixtures_dir().join("state");
    if dir.is_dir() {
        return Some(dir);
    }
    eprintln!(
        "skipping: {} is not recorded (scripts/record-fixtures)",
        dir.display()
    );
    None
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The recorded files of `dir` with their blocks, highest number first.
fn block_files(dir: &Path) -> Vec<(PathBuf, Value)> {
    let mut files: Vec<(PathBuf, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().is_some_and(|n| n != "codes.json"))
        .map(|p| {
            let json = read_json(&p);
            (p, json)
        })
        .collect();
    files.sort_by_key(|(_, f)| std::cmp::Reverse(f["block"]["number"].as_u64().unwrap()));
    files
}

fn block_at(file: &Value) -> BlockAt {
    BlockAt {
        number: file["block"]["number"].as_u64().unwrap(),
        hash: file["block"]["hash"].as_str().unwrap().parse().unwrap(),
    }
}

/// The recorded storage word `slot` of `address` in `file` (zero when absent).
fn recorded_word(file: &Value, address: &str, slot: B256) -> U256 {
    file["accounts"][address]["storage"][format!("{slot:#x}")]
        .as_str()
        .map_or(U256::ZERO, |v| v.parse().unwrap())
}

/// The slot of `balances[owner]` in the fixture token (its mapping is slot 1).
fn balance_slot(owner: Address) -> B256 {
    let mut key = [0u8; 64];
    key[12..32].copy_from_slice(owner.as_slice());
    key[63] = 1;
    keccak256(key)
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(60)
}

fn call(to: Address, gas: u64, data: &[u8]) -> StateRequest {
    StateRequest::Call(CallRequest {
        to,
        from: None,
        value: U256::ZERO,
        gas,
        data: Bytes::copy_from_slice(data),
    })
}

#[test]
fn every_host_call_answers_good_and_hostile_arguments_offline() {
    let Some(dir) = state_dir() else { return };
    let files = block_files(&dir);
    let (_, head) = &files[0];
    let token: Address = TOKEN.parse().unwrap();
    let dev: Address = DEV_ACCOUNT.parse().unwrap();
    let code_hash = head["accounts"][TOKEN]["codeHash"].as_str().unwrap();
    let codes = read_json(&dir.join("codes.json"));
    let code: Bytes = codes[code_hash].as_str().unwrap().parse().unwrap();
    let dev_balance = recorded_word(head, TOKEN, balance_slot(dev));
    assert!(dev_balance > U256::ZERO);

    let backend = FixtureState::open(&dir).unwrap();
    assert_eq!(backend.blocks(), files.len());
    // An address that never had an account stands for the self-destructed one: a
    // contract destroyed in its constructor leaves none.
    let gone: Address = "0x00000000000000000000000000000000000dead1"
        .parse()
        .unwrap();
    let got = run_hostile(
        StateSource::new(Arc::new(backend)),
        block_at(head),
        token,
        gone,
    );
    assert_hostile(&got, &code, U256::from(SUPPLY), dev_balance);
}

/// The `_count` of the backend-read histogram for `kind` in rendered metrics (0 before
/// the first such read of the process).
fn backend_reads(kind: &str) -> u64 {
    let text = xxfunc_runner::metrics::render(&StatusHandle::default());
    let line = format!("xxfunc_state_backend_read_duration_seconds_count{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map_or(0, |n| n.parse().unwrap())
}

#[test]
fn backend_reads_are_timed_by_kind_and_cache_hits_are_not_backend_reads() {
    let Some(dir) = state_dir() else { return };
    let files = block_files(&dir);
    let at = block_at(&files[0].1);
    let token: Address = TOKEN.parse().unwrap();
    let dev: Address = DEV_ACCOUNT.parse().unwrap();
    let source = StateSource::new(Arc::new(FixtureState::open(&dir).unwrap()));
    let mut balance_of = vec![0x70, 0xa0, 0x82, 0x31];
    balance_of.extend_from_slice(B256::left_padding_from(dev.as_slice()).as_slice());
    let requests = [
        ("account", StateRequest::Account(dev)),
        ("storage", StateRequest::Storage(token, balance_slot(dev))),
        ("code", StateRequest::Code(token)),
        ("call", call(token, 100_000, &balance_of)),
    ];
    let text = xxfunc_runner::metrics::render(&StatusHandle::default());
    assert!(
        text.contains("# TYPE xxfunc_state_backend_read_duration_seconds histogram\n"),
        "{text}"
    );
    let before: Vec<u64> = requests.iter().map(|(k, _)| backend_reads(k)).collect();
    for (_, request) in &requests {
        source.read(&at, request, far()).unwrap();
        // A second read of the same block and request is the cache's.
        source.read(&at, request, far()).unwrap();
    }
    for ((kind, _), before) in requests.iter().zip(before) {
        // Other tests of this process may read too, so at least one more.
        let after = backend_reads(kind);
        assert!(after > before, "{kind}: {before} -> {after}");
    }
    assert_eq!(source.cache().hits_and_misses(), (4, 4));
}

/// Copies the recorded state files of `dir` into `into`.
fn copy_state(dir: &Path, into: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, into.join(path.file_name().unwrap())).unwrap();
    }
}

/// A copy of the recorded state with contracts added to the head block: one that loops
/// forever and one that returns `BLOCKHASH(n)` for the `n` in its calldata's last byte.
fn state_with_contracts(dir: &Path, into: &Path) -> (BlockAt, Address, Address) {
    copy_state(dir, into);
    let files = block_files(into);
    let (path, mut head) = files[0].clone();
    // JUMPDEST PUSH0 JUMP
    let looping = Bytes::from_static(&[0x5b, 0x5f, 0x56]);
    // PUSH0 CALLDATALOAD BLOCKHASH PUSH0 MSTORE PUSH1 32 PUSH0 RETURN
    let block_hash = Bytes::from_static(&[0x5f, 0x35, 0x40, 0x5f, 0x52, 0x60, 0x20, 0x5f, 0xf3]);
    let mut codes = read_json(&into.join("codes.json"));
    let loop_at: Address = "0x0000000000000000000000000000000000010000"
        .parse()
        .unwrap();
    let hash_at: Address = "0x0000000000000000000000000000000000010001"
        .parse()
        .unwrap();
    for (address, code) in [(loop_at, &looping), (hash_at, &block_hash)] {
        let hash = format!("{:#x}", keccak256(code));
        codes[&hash] = Value::String(format!("{code}"));
        head["accounts"][format!("{address:#x}")] =
            serde_json::json!({"balance": "0x0", "nonce": 1, "codeHash": hash});
    }
    std::fs::write(into.join("codes.json"), codes.to_string()).unwrap();
    std::fs::write(&path, head.to_string()).unwrap();
    (block_at(&head), loop_at, hash_at)
}

#[test]
fn offline_calls_loop_run_out_of_gas_read_blockhash_and_stop_at_the_deadline() {
    let Some(dir) = state_dir() else { return };
    let scratch = tempfile::tempdir().unwrap();
    let (at, looping, block_hash) = state_with_contracts(&dir, scratch.path());
    let backend = FixtureState::open(scratch.path()).unwrap();

    // A loop with the runner's default gas cap runs out of gas: a deterministic answer.
    let answer = backend
        .read(&at, &call(looping, 50_000_000, &[]), far())
        .unwrap();
    assert!(
        matches!(&answer, StateAnswer::Halted(reason) if reason.contains("OutOfGas")),
        "{answer:?}"
    );
    // The same loop with a deadline that passes while it runs: unavailable, not an answer.
    let answer = backend.read(
        &at,
        &call(looping, u64::MAX / 2, &[]),
        Instant::now() + Duration::from_millis(20),
    );
    assert!(
        matches!(&answer, Err(e) if e.0.contains("deadline")),
        "{answer:?}"
    );
    // A deadline already past: no call is started.
    let answer = backend.read(&at, &call(looping, 100_000, &[]), Instant::now());
    assert!(matches!(answer, Err(e) if e.0.contains("deadline")));
    // Gas below the intrinsic cost of a transaction: halted, as eth_call answers it.
    let answer = backend.read(&at, &call(looping, 20_000, &[]), far());
    assert!(matches!(answer, Ok(StateAnswer::Halted(_))), "{answer:?}");

    // BLOCKHASH: the recorded ancestors by number on this block's branch; zero for the
    // block itself and later.
    let files = block_files(&dir);
    let canonical: BTreeMap<u64, B256> = {
        let mut chain = BTreeMap::new();
        let by_hash: BTreeMap<B256, &Value> =
            files.iter().map(|(_, f)| (block_at(f).hash, f)).collect();
        let mut cursor = Some(at.hash);
        while let Some(file) = cursor.and_then(|h| by_hash.get(&h)) {
            let block = block_at(file);
            chain.insert(block.number, block.hash);
            cursor = file["block"]["parentHash"].as_str().unwrap().parse().ok();
        }
        chain
    };
    let genesis_child = &files
        .iter()
        .find(|(_, f)| block_at(f).number == 1)
        .unwrap()
        .1;
    let genesis: B256 = genesis_child["block"]["parentHash"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    for n in [0, 1, at.number / 2, at.number - 1, at.number, at.number + 1] {
        let want = match n {
            0 => genesis,
            n => canonical
                .get(&n)
                .copied()
                .filter(|_| n < at.number)
                .unwrap_or(B256::ZERO),
        };
        let arg = U256::from(n).to_be_bytes::<32>();
        let answer = backend
            .read(&at, &call(block_hash, 100_000, &arg), far())
            .unwrap();
        assert_eq!(
            answer,
            StateAnswer::Returned(Bytes::copy_from_slice(want.as_slice())),
            "BLOCKHASH({n}) at {}",
            at.number
        );
    }

    // A block the recorded state does not have: unavailable, like a pruned one.
    let missing = BlockAt {
        number: at.number + 1,
        hash: B256::repeat_byte(0xab),
    };
    let answer = backend.read(&missing, &StateRequest::Account(looping), far());
    assert!(
        matches!(&answer, Err(e) if e.0.contains("no block")),
        "{answer:?}"
    );
    // An account and a slot nobody wrote: Ethereum's own zero answers.
    let nobody = Address::repeat_byte(0x77);
    assert_eq!(
        backend.read(&at, &StateRequest::Code(nobody), far()),
        Ok(StateAnswer::Code(Bytes::new()))
    );
    assert_eq!(
        backend.read(&at, &StateRequest::Storage(nobody, B256::ZERO), far()),
        Ok(StateAnswer::Word(B256::ZERO))
    );
}

#[test]
fn broken_state_files_are_errors_naming_the_file() {
    let Some(dir) = state_dir() else { return };
    let copy = |name: &str| {
        let scratch = tempfile::tempdir().unwrap();
        copy_state(&dir, scratch.path());
        let target = scratch.path().join(name);
        (scratch, target)
    };
    let err = |dir: &Path| FixtureState::open(dir).unwrap_err().to_string();

    let missing = tempfile::tempdir().unwrap();
    let gone = missing.path().join("nothing-here");
    assert!(err(&gone).contains("nothing-here"), "{}", err(&gone));

    let (scratch, codes) = copy("codes.json");
    std::fs::remove_file(&codes).unwrap();
    assert!(err(scratch.path()).contains("codes.json"));

    let (scratch, codes) = copy("codes.json");
    let mut json = read_json(&codes);
    let (hash, _) = json.as_object().unwrap().iter().next().unwrap();
    let hash = hash.clone();
    json[&hash] = Value::String("0x00".into());
    std::fs::write(&codes, json.to_string()).unwrap();
    let e = err(scratch.path());
    assert!(e.contains("does not hash to it"), "{e}");

    let name = block_files(&dir)[0]
        .0
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let (scratch, block) = copy(&name);
    std::fs::write(&block, b"{\"block\": ").unwrap();
    let e = err(scratch.path());
    assert!(e.contains(&name), "{e}");

    let (scratch, block) = copy(&name);
    let mut json = read_json(&block);
    json["block"]["hardFork"] = Value::String("Tomorrow".into());
    std::fs::write(&block, json.to_string()).unwrap();
    let e = err(scratch.path());
    assert!(e.contains(&name) && e.contains("Tomorrow"), "{e}");

    let (scratch, block) = copy(&name);
    let mut json = read_json(&block);
    json["accounts"][TOKEN]["codeHash"] = Value::String(format!("{:#x}", B256::repeat_byte(1)));
    std::fs::write(&block, json.to_string()).unwrap();
    let e = err(scratch.path());
    assert!(e.contains(&name) && e.contains("codes.json"), "{e}");
}

/// Every file of `got` equals the one of the same name under `want`, and no file is
/// missing on either side.
fn assert_same_files(want: &Path, got: &Path) {
    let names = |dir: &Path| -> Vec<PathBuf> {
        let mut names = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    names.push(path.strip_prefix(dir).unwrap().to_path_buf());
                }
            }
        }
        names.sort();
        names
    };
    assert_eq!(
        names(want),
        names(got),
        "{} vs {}",
        want.display(),
        got.display()
    );
    for name in names(want) {
        assert!(
            std::fs::read(want.join(&name)).unwrap() == std::fs::read(got.join(&name)).unwrap(),
            "re-recording changed {}",
            want.join(&name).display()
        );
    }
}

/// Records the fixture chain again on a fresh anvil, with anvil's own `eth_call`
/// `balanceOf` at every block hash (reverted branches included, asked while anvil had
/// them); every file comes out byte for byte as committed, and every balance in the
/// `erc20-balances` goldens (which the offline backend produced) equals anvil's answer.
#[test]
fn erc20_balances_goldens_equal_anvils_eth_call_and_rerecording_reproduces_the_fixtures() {
    let Some(dir) = state_dir() else { return };
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("skipping: python3 is needed to drive the recorder");
        return;
    }
    // The flags scripts/record-fixtures starts anvil with.
    let Some(anvil) = Anvil::start_with(&[
        "--chain-id",
        "31337",
        "--no-mining",
        "--order",
        "fifo",
        "--timestamp",
        "1700000000",
    ]) else {
        return;
    };
    let fixtures = xxfunc_guest_modules::fixtures_dir();
    let scratch = tempfile::tempdir().unwrap();
    let (rpc, state, checks) = (
        scratch.path().join("rpc"),
        scratch.path().join("state"),
        scratch.path().join("checks"),
    );
    let script = fixtures.join("../scripts/record_fixtures.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([&rpc, &state, &checks])
        .env("ANVIL_URL", &anvil.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_files(&fixtures.join("rpc"), &rpc);
    assert_same_files(&dir, &state);

    let balances = read_json(&checks.join("balances.json"));
    let golden = fixtures.join("golden/erc20-balances");
    let mut compared = 0;
    for entry in std::fs::read_dir(&golden).unwrap() {
        let path = entry.unwrap().path();
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            let record: Value = serde_json::from_str(line).unwrap();
            let at = &balances[record["block_hash"].as_str().unwrap()]
                [record["token"].as_str().unwrap()];
            for (owner, balance) in [("from", "from_balance"), ("to", "to_balance")] {
                let owner = record[owner].as_str().unwrap();
                assert_eq!(
                    record[balance],
                    at[owner],
                    "{}: {owner} in {record}",
                    path.display()
                );
                compared += 1;
            }
        }
    }
    assert!(compared >= 400, "{compared} balances compared");
}
