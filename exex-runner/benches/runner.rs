//! Runner benchmarks. Prints one markdown row per figure:
//! `| id | value | unit | baseline | ratio | notes |` (ratio: times better than
//! the baseline measured in the same run; higher is better).
//!
//! Run with `cargo bench -p xxfunc-runner --bench runner`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::{
    WasiCtxBuilder,
    p1::WasiP1Ctx,
    p2::pipe::{MemoryInputPipe, MemoryOutputPipe},
};
use xxfunc_abi::{ChainBlock, EventKind};
use xxfunc_api::{DesiredState, FunctionId, FunctionSpec, StartFrom};
use xxfunc_runner::{
    ChainEvent, EventInput, FixtureSource, Limits, LoadedModule, ModuleCache, Outcome, Runner,
    RunnerConfig, StoreModules, WasmEngine,
};
use xxfunc_store::{ModuleHash, ModuleStore};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn row(id: &str, value: f64, unit: &str, baseline: f64, ratio: f64, notes: &str) {
    println!("| {id} | {value:.2} | {unit} | {baseline:.2} | {ratio:.1} | {notes} |");
}

fn fixture_events() -> Option<Vec<ChainEvent>> {
    let dir = xxfunc_guest_modules::fixtures_dir();
    FixtureSource::open(&dir).ok().map(|s| s.events().to_vec())
}

fn small_block(events: &[ChainEvent]) -> Arc<ChainBlock> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Commit)
        .min_by_key(|e| e.block.transactions.len())
        .map(|e| e.block.clone())
        .unwrap_or_default()
}

/// Upstream's way: compile the module for the event, pass a JSON header.
/// Returns (whole invocation, time inside `_start`).
fn upstream_invoke(engine: &Engine, bytes: &[u8], block: &ChainBlock) -> (Duration, Duration) {
    let t = Instant::now();
    let module = Module::from_binary(engine, bytes).expect("module compiles");
    let json = serde_json::json!({
        "number": block.number, "hash": block.hash, "parentHash": block.parent_hash,
        "timestamp": block.timestamp, "chainId": block.chain_id,
    })
    .to_string();
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |c| c).expect("wasi links");
    let stdout = MemoryOutputPipe::new(1 << 20);
    let wasi = WasiCtxBuilder::new()
        .stdin(MemoryInputPipe::new(Bytes::from(json)))
        .stdout(stdout.clone())
        .build_p1();
    let mut store = Store::new(engine, wasi);
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiates");
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .expect("_start");
    let g = Instant::now();
    let _ = start.call(&mut store, ());
    let guest = g.elapsed();
    let _ = stdout.contents();
    (t.elapsed(), guest)
}

/// An engine with `bytes` compiled and linked (the warm path).
fn warm(bytes: &[u8]) -> (Arc<WasmEngine>, Arc<LoadedModule>) {
    let engine = Arc::new(WasmEngine::new(Limits::default(), 8).unwrap());
    let cache = ModuleCache::new(engine.clone(), None);
    let (module, _) = cache
        .load(&ModuleHash::of(bytes), || Ok(bytes.to_vec()))
        .unwrap();
    (engine, module)
}

/// One warm invocation on a commit of `block`, envelope encoding included.
fn invoke_commit(engine: &WasmEngine, module: &LoadedModule, block: &ChainBlock) -> Outcome {
    let envelope = Bytes::from(xxfunc_abi::encode(EventKind::Commit, block).unwrap());
    engine.invoke(
        module,
        EventInput {
            envelope: &envelope,
            timestamp: block.timestamp,
            block_hash: &block.hash.0,
            state: None,
        },
    )
}

fn dispatch_warm(hello: &[u8], block: &ChainBlock) -> f64 {
    let (engine, module) = warm(hello);
    let mut samples = Vec::new();
    for i in 0..3000 {
        let t = Instant::now();
        let out = invoke_commit(&engine, &module, block);
        let dt = t.elapsed();
        assert!(out.is_ok(), "hello failed: {:?}", out.status);
        if i >= 300 {
            samples.push(dt.as_secs_f64() * 1e6);
        }
    }
    let value = median(samples);
    let plain = Engine::default();
    let base: Vec<f64> = (0..7)
        .map(|_| upstream_invoke(&plain, hello, block).0.as_secs_f64() * 1e6)
        .collect();
    let baseline = median(base);
    row(
        "runner.dispatch.warm",
        value,
        "µs",
        baseline,
        baseline / value,
        &format!(
            "hello, block {} ({} tx), envelope encode + pooled instantiate + run + capture; baseline compiles per event + JSON header",
            block.number,
            block.transactions.len()
        ),
    );
    value
}

fn restart_cached(hello: &[u8], block: &ChainBlock) {
    let dir = tempfile::tempdir().unwrap();
    let hash = ModuleHash::of(hello);
    let envelope = Bytes::from(xxfunc_abi::encode(EventKind::Commit, block).unwrap());
    let first = |artifacts: Option<&std::path::Path>| {
        let t = Instant::now();
        let engine = Arc::new(WasmEngine::new(Limits::default(), 8).unwrap());
        let cache = ModuleCache::new(engine.clone(), artifacts);
        let (module, _) = cache.load(&hash, || Ok(hello.to_vec())).unwrap();
        let out = engine.invoke(
            &module,
            EventInput {
                envelope: &envelope,
                timestamp: block.timestamp,
                block_hash: &block.hash.0,
                state: None,
            },
        );
        assert!(out.is_ok());
        t.elapsed().as_secs_f64() * 1e3
    };
    first(Some(dir.path())); // writes the artifact
    let cached = median((0..7).map(|_| first(Some(dir.path()))).collect());
    let compile = median((0..7).map(|_| first(None)).collect());
    row(
        "runner.restart.cached",
        cached,
        "ms",
        compile,
        compile / cached,
        "engine + module from the disk artifact cache + first invocation of hello; baseline compiles then invokes",
    );
}

fn open_runner(modules: Arc<StoreModules>, workers: usize) -> (tempfile::TempDir, Runner) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = RunnerConfig::new(dir.path());
    config.workers = workers;
    config.max_batch_events = 64;
    (dir, Runner::open(config, modules).unwrap())
}

fn put(store: &ModuleStore, bytes: Vec<u8>) -> ModuleHash {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(store.put(bytes)).unwrap().hash
}

fn start_all(runner: &mut Runner, ids: &[(FunctionId, ModuleHash)]) {
    for (id, hash) in ids {
        runner
            .apply(&FunctionSpec {
                id: id.clone(),
                hash: *hash,
                desired: DesiredState::Started,
                start: StartFrom::Head,
                start_generation: 1,
                sinks: Vec::new(),
            })
            .unwrap();
    }
}

fn replay_10fns(erc20: &[u8], events: &[ChainEvent], note: &str) {
    let store = ModuleStore::open("memory://").unwrap();
    let hash = put(&store, erc20.to_vec());
    let modules = Arc::new(StoreModules::new(store).unwrap());
    let ids: Vec<(FunctionId, ModuleHash)> = (0..10)
        .map(|i| (format!("erc20-{i}").parse().unwrap(), hash))
        .collect();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rate = |workers: usize| {
        let mut best: f64 = 0.0;
        for _ in 0..3 {
            let (_dir, mut runner) = open_runner(modules.clone(), workers);
            start_all(&mut runner, &ids);
            let t = Instant::now();
            let mut invocations = 0;
            for chunk in events.chunks(64) {
                invocations += runner.process(chunk).unwrap().invocations;
            }
            best = best.max(invocations as f64 / t.elapsed().as_secs_f64());
        }
        best
    };
    let parallel = rate(cores);
    let single = rate(1);
    row(
        "runner.replay.10fns",
        parallel,
        "invocations/s",
        single,
        parallel / single,
        &format!(
            "{} events x 10 erc20-transfers, {cores} workers, synced batch per 64 events; baseline 1 worker; {note}",
            events.len()
        ),
    );
}

fn overhead_100tx(erc20: &[u8], events: &[ChainEvent]) {
    let Some(block) = events
        .iter()
        .map(|e| e.block.clone())
        .max_by_key(|b| b.transactions.len())
    else {
        return;
    };
    let (engine, module) = warm(erc20);
    let mut fractions = Vec::new();
    for i in 0..400 {
        let t = Instant::now();
        let out = invoke_commit(&engine, &module, &block);
        let total = t.elapsed().as_secs_f64();
        assert!(out.is_ok(), "erc20-transfers failed: {:?}", out.status);
        if i >= 40 {
            fractions.push((total - out.guest.as_secs_f64()) / total * 100.0);
        }
    }
    let value = median(fractions);
    let plain = Engine::default();
    let base: Vec<f64> = (0..5)
        .map(|_| {
            let (total, guest) = upstream_invoke(&plain, erc20, &block);
            (total - guest).as_secs_f64() / total.as_secs_f64() * 100.0
        })
        .collect();
    let baseline = median(base);
    row(
        "runner.overhead.100tx",
        value,
        "%",
        baseline,
        baseline / value,
        &format!(
            "erc20-transfers on block {} ({} tx): time outside _start / invocation time; baseline compile-per-event",
            block.number,
            block.transactions.len()
        ),
    );
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Appends a custom section named `xxfunc-bench` holding `i`.
fn distinct(bytes: &[u8], i: u32) -> Vec<u8> {
    let name = b"xxfunc-bench";
    let payload = i.to_le_bytes();
    let mut out = bytes.to_vec();
    out.push(0);
    let size = 1 + name.len() + payload.len();
    out.push(size as u8);
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn rss_child(hello: &[u8], block: Arc<ChainBlock>) {
    let before = rss_mib();
    let store = ModuleStore::open("memory://").unwrap();
    let ids: Vec<(FunctionId, ModuleHash)> = (0..100)
        .map(|i| {
            (
                format!("hello-{i}").parse().unwrap(),
                put(&store, distinct(hello, i)),
            )
        })
        .collect();
    let modules = Arc::new(StoreModules::new(store).unwrap());
    let (_dir, mut runner) = open_runner(modules, 2);
    start_all(&mut runner, &ids);
    runner.process(&[ChainEvent::commit(0, block)]).unwrap();
    assert_eq!(runner.cache().len(), 100);
    println!("RSS {before:.1} {:.1}", rss_mib());
}

fn rss_100modules() {
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env("XXFUNC_BENCH_RSS_CHILD", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(line) = text.lines().find(|l| l.starts_with("RSS ")) else {
        eprintln!("rss child failed: {}", String::from_utf8_lossy(&out.stderr));
        return;
    };
    let mut parts = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    let (before, after) = (parts.next().unwrap_or(0.0), parts.next().unwrap_or(0.0));
    row(
        "runner.rss.100modules",
        after,
        "MiB",
        300.0,
        300.0 / after,
        &format!(
            "100 distinct hello modules started and invoked once (RSS {before:.0} MiB before loading); baseline = the 300 MiB budget"
        ),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let hello = xxfunc_guest_modules::module_bytes("hello");
    let recorded = fixture_events();
    let note = if recorded.is_some() {
        "recorded fixtures"
    } else {
        "no fixtures recorded; generated empty blocks"
    };
    let events = recorded.unwrap_or_else(|| {
        let mut parent = ChainBlock::default();
        (1..=200)
            .map(|n| {
                let header = alloy_consensus::Header {
                    number: n,
                    parent_hash: parent.hash,
                    timestamp: 1_700_000_000 + n,
                    ..Default::default()
                };
                parent = ChainBlock::from_consensus::<
                    alloy_consensus::TxEnvelope,
                    alloy_consensus::ReceiptEnvelope,
                >(1, &header, [], []);
                ChainEvent::commit(n, parent.clone())
            })
            .collect()
    });
    let block = small_block(&events);
    if std::env::var_os("XXFUNC_BENCH_RSS_CHILD").is_some() {
        rss_child(&hello, block);
        return;
    }
    let erc20 = xxfunc_guest_modules::module_bytes("erc20-transfers");
    println!("| id | value | unit | baseline | ratio | notes |");
    println!("|---|---|---|---|---|---|");
    dispatch_warm(&hello, &block);
    restart_cached(&hello, &block);
    replay_10fns(&erc20, &events, note);
    overhead_100tx(&erc20, &events);
    rss_100modules();
}
