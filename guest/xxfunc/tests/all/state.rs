//! The SDK's state host calls from inside real wasm modules: the example modules import
//! exactly the documented `xxfunc` functions with their documented signatures (and those
//! that read no state import none, so they still run under stock WASI runtimes), and
//! `erc20-balances` passes its requests through wasm memory in the documented layout.
//!
//! The `state_call` linked here answers `balanceOf` from a ledger replayed from the fixture
//! chain's own `Transfer` logs: the fixture token (`fixtures/contracts/Token.sol`) changes
//! balances only in `_move` and its constructor's mint, each logging a `Transfer`, so the
//! ledger after block N is exactly `balanceOf` at N. The module's outputs over it must
//! equal the goldens, which the real runner wrote from the recorded state
//! (`fixtures/state/`) with calls on its local EVM: two independent derivations of the
//! same balances. exex-runner's `state_offline` test compares the goldens with anvil's
//! own `eth_call`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use wasmtime::{Caller, Config, Engine, ExternType, Linker, Module, Store, ValType};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use xxfunc::erc20::{IERC20, Transfer};
use xxfunc::sol_types::{SolCall, SolValue};
use xxfunc::state::status;
use xxfunc::{Address, B256, Event, U256};
use xxfunc_guest_modules::{example_packages, fixture_events, fixtures_dir, module_bytes};

/// The documented imports of module `xxfunc`: name → (i32 parameters, i32 results).
const DOCUMENTED: &[(&str, usize)] = &[
    ("state_account", 2),
    ("state_storage", 3),
    ("state_code", 4),
    ("state_call", 5),
];

/// The `xxfunc` imports of the built example `module`, as `name(params) -> results`,
/// after checking each against the documented set.
pub fn xxfunc_imports(module: &str) -> Vec<String> {
    let engine = Engine::default();
    let module = Module::new(&engine, module_bytes(module)).expect("module compiles");
    let mut found = Vec::new();
    for import in module.imports().filter(|i| i.module() == "xxfunc") {
        let ExternType::Func(ty) = import.ty() else {
            panic!("xxfunc::{} is not a function", import.name());
        };
        let params: Vec<ValType> = ty.params().collect();
        let results: Vec<ValType> = ty.results().collect();
        let (_, arity) = DOCUMENTED
            .iter()
            .find(|(name, _)| *name == import.name())
            .unwrap_or_else(|| panic!("undocumented import xxfunc::{}", import.name()));
        assert!(
            params.len() == *arity
                && params.iter().all(|p| matches!(p, ValType::I32))
                && matches!(results.as_slice(), [ValType::I32]),
            "xxfunc::{} has signature {params:?} -> {results:?}, docs/abi.md says {arity} i32 -> i32",
            import.name()
        );
        found.push(format!("{}/{arity}", import.name()));
    }
    found.sort();
    found
}

#[test]
fn modules_import_only_the_documented_state_calls() {
    for package in example_packages() {
        if package == "misbehave" {
            continue;
        }
        let imports = xxfunc_imports(&package);
        if package == "erc20-balances" {
            assert_eq!(imports, ["state_call/5"], "{package}");
        } else {
            assert!(
                imports.is_empty(),
                "{package} reads no state but imports {imports:?}: the SDK's unused host \
                 imports must not reach the module (stock WASI runtimes cannot link them)"
            );
        }
    }
}

type Ledger = BTreeMap<(Address, Address), U256>;

/// `balanceOf` after each block of the fixture chain, by block hash (reverted branches
/// included), replayed from the Transfer logs in delivery order.
fn ledgers(events: &[(Vec<u8>, Event)]) -> HashMap<B256, Ledger> {
    let mut ledgers: HashMap<B256, Ledger> = HashMap::new();
    for (_, event) in events {
        if event.is_revert() {
            assert!(
                ledgers.contains_key(&event.hash()),
                "revert of a block never committed"
            );
            continue;
        }
        let mut ledger = ledgers
            .get(&event.parent_hash())
            .cloned()
            .unwrap_or_default();
        for t in Transfer::all(event).expect("fixture receipts decode") {
            if t.from != Address::ZERO {
                let from = ledger.entry((t.token, t.from)).or_default();
                *from = from.checked_sub(t.value).expect("no overdraft on chain");
            }
            *ledger.entry((t.token, t.to)).or_default() += t.value;
        }
        ledgers.insert(event.hash(), ledger);
    }
    ledgers
}

struct Ctx {
    wasi: WasiP1Ctx,
    ledger: Arc<Ledger>,
    calls: usize,
    unexpected: Vec<String>,
}

/// `state_call` over the ledger, with the documented memory and length protocol.
fn state_call(
    mut caller: Caller<'_, Ctx>,
    req_ptr: i32,
    req_len: i32,
    out_ptr: i32,
    out_cap: i32,
    len_ptr: i32,
) -> i32 {
    caller.data_mut().calls += 1;
    let Some(memory) = caller.get_export("memory").and_then(|e| e.into_memory()) else {
        return status::BAD_ARGUMENT;
    };
    let (data, ctx) = memory.data_and_store_mut(&mut caller);
    let span = |ptr: i32, len: i32| {
        let start = usize::try_from(ptr as u32).ok()?;
        let end = start.checked_add(len as u32 as usize)?;
        (end <= data.len()).then_some(start..end)
    };
    let (Some(req), Some(out), Some(len_at)) = (
        span(req_ptr, req_len),
        span(out_ptr, out_cap),
        span(len_ptr, 4),
    ) else {
        ctx.unexpected.push("a span outside memory".into());
        return status::BAD_ARGUMENT;
    };
    let request = data[req].to_vec();
    if request.len() < 80 || request[20..80].iter().any(|&b| b != 0) {
        ctx.unexpected.push(format!(
            "request of {} bytes with from/value/gas set",
            request.len()
        ));
        return status::BAD_ARGUMENT;
    }
    let token = Address::from_slice(&request[..20]);
    let Ok(call) = IERC20::balanceOfCall::abi_decode(&request[80..]) else {
        ctx.unexpected
            .push(format!("calldata {:?}", &request[80..]));
        return status::HALTED;
    };
    let balance = ctx
        .ledger
        .get(&(token, call.owner))
        .copied()
        .unwrap_or_default();
    let answer = balance.abi_encode();
    data[len_at].copy_from_slice(&(answer.len() as u32).to_le_bytes());
    if answer.len() > out.len() {
        return status::BUFFER_TOO_SMALL;
    }
    data[out.start..out.start + answer.len()].copy_from_slice(&answer);
    status::OK
}

struct Run {
    stdout: String,
    calls: usize,
    unexpected: Vec<String>,
}

fn run(engine: &Engine, module: &Module, envelope: &[u8], ledger: Arc<Ledger>) -> Run {
    let stdout = MemoryOutputPipe::new(1 << 20);
    let stderr = MemoryOutputPipe::new(64 << 10);
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(envelope.to_vec()))
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .build_p1();
    let mut store = Store::new(
        engine,
        Ctx {
            wasi,
            ledger,
            calls: 0,
            unexpected: Vec::new(),
        },
    );
    let mut linker: Linker<Ctx> = Linker::new(engine);
    p1::add_to_linker_sync(&mut linker, |c: &mut Ctx| &mut c.wasi).expect("WASI p1 links");
    linker
        .func_wrap("xxfunc", "state_call", state_call)
        .expect("state_call links");
    let result = linker
        .instantiate(&mut store, module)
        .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
        .and_then(|start| start.call(&mut store, ()));
    let code = match result {
        Ok(()) => 0,
        Err(err) => match err.downcast_ref::<I32Exit>() {
            Some(I32Exit(code)) => *code,
            None => panic!("trap: {err:?}"),
        },
    };
    assert_eq!(
        code,
        0,
        "stderr: {}",
        String::from_utf8_lossy(&stderr.contents())
    );
    let ctx = store.into_data();
    Run {
        stdout: String::from_utf8(stdout.contents().to_vec()).expect("JSON lines are UTF-8"),
        calls: ctx.calls,
        unexpected: ctx.unexpected,
    }
}

#[test]
fn erc20_balances_reads_balance_of_through_wasm_memory() {
    let paths = fixture_events();
    let events: Vec<(Vec<u8>, Event)> = paths
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).expect("fixture readable");
            let event = Event::from_bytes(bytes.clone()).expect("fixture decodes");
            (bytes, event)
        })
        .collect();
    assert!(
        !events.is_empty(),
        "no fixture events; run scripts/record-fixtures"
    );
    let ledgers = ledgers(&events);
    let engine = Engine::new(&Config::new()).expect("engine");
    let module = Module::new(&engine, module_bytes("erc20-balances")).expect("module compiles");
    let mut committed: HashMap<B256, Vec<xxfunc::serde_json::Value>> = HashMap::new();
    let mut records_seen = 0;
    for ((envelope, event), path) in events.iter().zip(&paths) {
        let ledger = Arc::new(ledgers[&event.hash()].clone());
        let out = run(&engine, &module, envelope, ledger.clone());
        assert!(out.unexpected.is_empty(), "{:?}", out.unexpected);
        let golden = fixtures_dir()
            .join("golden/erc20-balances")
            .join(path.with_extension("out").file_name().expect("a file name"));
        let golden = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/record-fixtures", golden.display()));
        assert_eq!(out.stdout, golden, "{}", path.display());
        let transfers = Transfer::all(event).expect("fixture receipts decode");
        let records: Vec<xxfunc::serde_json::Value> = out
            .stdout
            .lines()
            .map(|line| xxfunc::serde_json::from_str(line).expect("a JSON record"))
            .collect();
        assert_eq!(records.len(), transfers.len(), "block {}", event.number());
        let mut holders = std::collections::BTreeSet::new();
        for t in &transfers {
            holders.insert((t.token, t.from));
            holders.insert((t.token, t.to));
        }
        assert_eq!(
            out.calls,
            holders.len(),
            "block {}: one host call per distinct (token, owner)",
            event.number()
        );
        let op = if event.is_commit() {
            "insert"
        } else {
            "retract"
        };
        for record in &records {
            let token: Address = record["token"]
                .as_str()
                .expect("token")
                .parse()
                .expect("address");
            for (owner, balance) in [("from", "from_balance"), ("to", "to_balance")] {
                let owner: Address = record[owner]
                    .as_str()
                    .expect("owner")
                    .parse()
                    .expect("address");
                let expected = ledger.get(&(token, owner)).copied().unwrap_or_default();
                assert_eq!(
                    record[balance],
                    expected.to_string(),
                    "block {} {record}",
                    event.number()
                );
            }
            assert_eq!(record["op"], op);
            assert_eq!(record["block"], event.number());
        }
        records_seen += records.len();
        if event.is_commit() {
            committed.insert(event.hash(), records);
        } else {
            // A revert repeats the commit's records, newest first, op aside.
            let mut expected = committed[&event.hash()].clone();
            expected.reverse();
            for record in &mut expected {
                record["op"] = "retract".into();
            }
            assert_eq!(records, expected, "revert of block {}", event.number());
        }
    }
    assert!(records_seen >= 200, "records: {records_seen}");
}
