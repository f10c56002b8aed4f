//! Test harnesses (feature `test-utils`), in the spirit of reth's
//! `test_exex_context()`:
//!
//! - [`Harness`]: a runner in a temporary directory, modules from a real
//!   in-memory `xxfunc-store`, and helpers to send events and assert outputs;
//! - [`NodeHarness`]: a [`Harness`] behind the node side of the runner
//!   ([`NodeLink`]) as the reth ExEx drives it, with a [`TestNode`] that
//!   answers (or fails to answer) block hashes, to send notifications and
//!   assert the resume head and the `FinishedHeight`s emitted;
//! - [`Anvil`]: a real anvil dev node on a loopback port, stopped on drop.

use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tempfile::TempDir;
use xxfunc_abi::ChainBlock;
use xxfunc_api::{
    BlockRef, DesiredState, FunctionId, FunctionReport, FunctionSpec, InvocationRecord,
    InvocationStatus, StartFrom, outputs::OutcomeEntry,
};
use xxfunc_store::{ModuleHash, ModuleStore};

use crate::{
    config::RunnerConfig,
    error::{BoxError, Result},
    modules::StoreModules,
    node::{BlockHashes, NodeLink, Resume},
    runner::{BatchSummary, Runner},
    service::StatusHandle,
    source::{BlockSource, ChainEvent, ChainSource, EventSink, block_ref},
    state_db::Checkpoint,
};

/// Where `scripts/test` installs anvil (`XXFUNC_ANVIL` overrides it).
const ANVIL: &str =
    "/root/.cache/xxfunc-tools/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil";
/// anvil's first dev account (unlocked, funded).
pub const DEV_ACCOUNT: &str = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
/// anvil's second dev account.
pub const OTHER_ACCOUNT: &str = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";

/// An anvil on a free loopback port, killed on drop.
pub struct Anvil {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Anvil {
    /// Starts anvil, or `None` (with a message) when it is not installed.
    ///
    /// # Panics
    /// When it is installed but does not start or answer within 30 s.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// [`Anvil::start`] with more command-line flags (`--no-mining`, `--timestamp`, ...).
    ///
    /// # Panics
    /// As [`Anvil::start`].
    pub fn start_with(flags: &[&str]) -> Option<Self> {
        let bin = std::env::var_os("XXFUNC_ANVIL")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(ANVIL));
        if !bin.is_file() {
            eprintln!("skipping: anvil not found at {}", bin.display());
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(bin)
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--silent",
            ])
            .args(flags)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning anvil");
        let anvil = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while anvil.try_call("eth_chainId", json!([])).is_err() {
            assert!(
                Instant::now() < deadline,
                "anvil did not come up on {}",
                anvil.url
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(anvil)
    }

    /// One JSON-RPC call: its result, or the node's error as text.
    ///
    /// # Errors
    /// The node's error, or why no reply came.
    pub fn try_call(&self, method: &str, params: Value) -> Result<Value, String> {
        let body =
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
        let addr = self.url.trim_start_matches("http://");
        let mut conn = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        write!(
            conn,
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        conn.read_to_end(&mut raw).map_err(|e| e.to_string())?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("no HTTP body")?;
        let reply: Value = serde_json::from_slice(&raw[split + 4..]).map_err(|e| e.to_string())?;
        if let Some(err) = reply.get("error") {
            return Err(err.to_string());
        }
        reply
            .get("result")
            .cloned()
            .ok_or_else(|| "no result".into())
    }

    /// One JSON-RPC call.
    ///
    /// # Panics
    /// When the node answers an error.
    pub fn call(&self, method: &str, params: Value) -> Value {
        self.try_call(method, params.clone())
            .unwrap_or_else(|e| panic!("{method} {params}: {e}"))
    }

    /// The canonical hash of block `n`.
    ///
    /// # Panics
    /// When the node does not have it.
    pub fn hash_at(&self, n: u64) -> B256 {
        self.call("eth_getBlockByNumber", json!([format!("{n:#x}"), false]))["hash"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap()
    }

    /// The node's head block number.
    ///
    /// # Panics
    /// When the node does not answer.
    pub fn head(&self) -> u64 {
        u64::from_str_radix(
            self.call("eth_blockNumber", json!([]))
                .as_str()
                .unwrap()
                .trim_start_matches("0x"),
            16,
        )
        .unwrap()
    }

    /// One block with a value transfer (automine).
    pub fn send_transfer(&self) {
        self.call(
            "eth_sendTransaction",
            json!([{"from": DEV_ACCOUNT, "to": OTHER_ACCOUNT, "value": "0x1"}]),
        );
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A runner on a temporary data directory with a `memory://` module store.
pub struct Harness {
    runner: Option<Runner>,
    store: Arc<StoreModules>,
    dir: TempDir,
    generation: u64,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness with default configuration.
    ///
    /// # Errors
    /// When the runner cannot be opened.
    pub fn new() -> Result<Self> {
        Self::with_config(|_| {})
    }

    /// A harness whose configuration `tweak` adjusts (the data directory is
    /// set by the harness).
    ///
    /// # Errors
    /// When the runner cannot be opened.
    pub fn with_config(tweak: impl FnOnce(&mut RunnerConfig)) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|source| crate::RunnerError::Artifact {
            path: std::env::temp_dir(),
            source,
        })?;
        let mut config = RunnerConfig::new(dir.path());
        tweak(&mut config);
        let store =
            ModuleStore::open("memory://").map_err(|e| crate::RunnerError::ModuleStore {
                what: "opening memory://".into(),
                source: Box::new(e),
            })?;
        let store = Arc::new(StoreModules::new(store)?);
        let runner = Runner::open(config, store.clone())?;
        Ok(Self {
            runner: Some(runner),
            store,
            dir,
            generation: 0,
        })
    }

    /// The runner under test.
    pub fn runner(&self) -> &Runner {
        self.runner
            .as_ref()
            .expect("the harness always holds a runner between calls")
    }

    /// The runner under test, mutably.
    pub fn runner_mut(&mut self) -> &mut Runner {
        self.runner
            .as_mut()
            .expect("the harness always holds a runner between calls")
    }

    /// Takes the runner out (to [`serve`](crate::serve) it); the harness keeps its
    /// store and directory, and holds no runner until [`Harness::restart`].
    pub fn take_runner(&mut self) -> Runner {
        self.runner
            .take()
            .expect("the harness always holds a runner between calls")
    }

    /// The module source the runner fetches from.
    pub fn modules(&self) -> Arc<StoreModules> {
        self.store.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Reopens the runner on the same directory (a restart).
    ///
    /// # Errors
    /// When the runner cannot be reopened.
    pub fn restart(&mut self) -> Result<()> {
        let config = match &self.runner {
            Some(r) => r.config().clone(),
            None => RunnerConfig::new(self.dir.path()),
        };
        // Drop the old runner first: RocksDB allows one opener per directory.
        self.runner = None;
        self.runner = Some(Runner::open(config, self.store.clone())?);
        Ok(())
    }

    /// Stores `bytes` in the module store and returns the hash.
    ///
    /// # Errors
    /// When the store rejects them.
    pub fn put_module(&self, bytes: &[u8]) -> Result<ModuleHash> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|source| crate::RunnerError::Runtime {
                what: "test harness".into(),
                source,
            })?;
        runtime
            .block_on(self.store.store().put(bytes.to_vec()))
            .map(|o| o.hash)
            .map_err(|e| crate::RunnerError::ModuleStore {
                what: "storing a module".into(),
                source: Box::new(e),
            })
    }

    /// Stores `bytes` and starts them as function `name` from `start`.
    ///
    /// # Errors
    /// When the module cannot be stored or the start persisted.
    ///
    /// # Panics
    /// When `name` is not a valid function name (a mistake in the test).
    pub fn start(&mut self, name: &str, bytes: &[u8], start: StartFrom) -> Result<FunctionId> {
        let hash = self.put_module(bytes)?;
        let id: FunctionId = match name.parse() {
            Ok(id) => id,
            Err(e) => panic!("the test names a function {name:?}: {e}"),
        };
        self.generation += 1;
        let spec = FunctionSpec {
            id: id.clone(),
            hash,
            desired: DesiredState::Started,
            start,
            start_generation: self.generation,
            sinks: Vec::new(),
        };
        self.runner_mut().apply(&spec)?;
        Ok(id)
    }

    /// Sends one commit of `block`.
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn send_commit(&mut self, block: &ChainBlock) -> Result<BatchSummary> {
        self.send(ChainEvent::commit(0, block.clone()))
    }

    /// Processes `ev`, then waits for what the batch left running
    /// ([`Runner::finish_running`]): every outcome of `ev` is committed when
    /// this returns, however slow a function is.
    fn send(&mut self, ev: ChainEvent) -> Result<BatchSummary> {
        let mut summary = self.runner_mut().process(&[ev])?;
        let settled = self.runner_mut().finish_running()?;
        summary.invocations += settled.invocations;
        summary.failures += settled.failures;
        summary.unavailable += settled.unavailable;
        Ok(summary)
    }

    /// Sends one revert of `block`.
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn send_revert(&mut self, block: &ChainBlock) -> Result<BatchSummary> {
        self.send(ChainEvent::revert(0, block.clone()))
    }

    /// Every kept invocation record of `id` (the outcome log as records:
    /// stdout decoded lossily; see [`Harness::outcomes`] for the bytes). A
    /// test's logs are small; this reads them in pages.
    ///
    /// # Panics
    /// When the function is unknown or the database fails.
    pub fn records(&self, id: &FunctionId) -> Vec<InvocationRecord> {
        self.runner()
            .outputs(id)
            .expect("reading invocation records")
    }

    /// Every kept outcome of `id`, read page by page.
    ///
    /// # Panics
    /// When the function is unknown or the database fails.
    pub fn outcomes(&self, id: &FunctionId) -> Vec<OutcomeEntry> {
        let mut out: Vec<OutcomeEntry> = Vec::new();
        loop {
            let after = out.last().map_or(0, |o| o.seq);
            let page = self
                .runner()
                .outcomes(id, after, 64, 1 << 20)
                .expect("reading the outcome log");
            if page.is_empty() {
                return out;
            }
            out.extend(page);
        }
    }

    /// The report of `id`.
    ///
    /// # Panics
    /// When the function is unknown.
    pub fn report(&self, id: &FunctionId) -> FunctionReport {
        self.runner()
            .function_report(id)
            .expect("function is known to the runner")
    }

    /// Asserts that the stdout of `id`'s records, in order, equals `expected`.
    ///
    /// # Panics
    /// When they differ (showing both).
    pub fn assert_output(&self, id: &FunctionId, expected: &[&str]) {
        let got: Vec<String> = self.records(id).into_iter().map(|r| r.stdout).collect();
        assert_eq!(got, expected, "outputs of {id}");
    }

    /// Asserts that every record of `id` failed with a reason containing
    /// `needle`, and that there is at least one.
    ///
    /// # Panics
    /// When one succeeded or has another reason.
    pub fn assert_failed_with(&self, id: &FunctionId, needle: &str) {
        let records = self.records(id);
        assert!(!records.is_empty(), "{id} has no invocation records");
        for r in records {
            match &r.status {
                InvocationStatus::Failed { reason } => {
                    assert!(
                        reason.contains(needle),
                        "{id}: reason {reason:?} does not mention {needle:?}"
                    )
                }
                InvocationStatus::Ok => {
                    panic!("{id}: invocation on block {} succeeded", r.block.number)
                }
            }
        }
    }
}

/// A node's canonical chain as [`BlockHashes`] sees it, which can be told to
/// fail (as a node whose database is unavailable).
#[derive(Debug, Default)]
pub struct TestNode {
    canonical: Mutex<BTreeMap<u64, B256>>,
    failing: AtomicBool,
}

impl TestNode {
    /// Makes `blocks` canonical (replacing what the node had at their
    /// heights, as a reorg does).
    pub fn extend(&self, blocks: &[ChainBlock]) {
        let mut canonical = self.canonical.lock();
        for b in blocks {
            canonical.insert(b.number, b.hash);
        }
    }

    /// Forgets every block above `number` (the node lost them).
    pub fn truncate_above(&self, number: u64) {
        self.canonical.lock().split_off(&(number + 1));
    }

    /// The node's head: its highest canonical block.
    ///
    /// # Panics
    /// When the node has no block.
    pub fn head(&self) -> BlockRef {
        let canonical = self.canonical.lock();
        let (&number, &hash) = canonical
            .last_key_value()
            .expect("the test node has blocks; call extend first");
        BlockRef { number, hash }
    }

    /// From now on every question fails (`true`) or is answered (`false`).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }
}

impl BlockHashes for TestNode {
    fn block_hash(&self, number: u64) -> std::result::Result<Option<B256>, BoxError> {
        if self.failing.load(Ordering::Relaxed) {
            return Err(std::io::Error::other("the test node's database is unavailable").into());
        }
        Ok(self.canonical.lock().get(&number).copied())
    }
}

/// A [`Harness`] behind [`NodeLink`], driven the way the reth ExEx drives
/// them: [`start_node`](Self::start_node) picks the resume head, each
/// notification's events are noted as delivered and processed, and after
/// each the link is polled for a `FinishedHeight`, which is recorded.
/// Processing is synchronous, so the safe height the link reads is the
/// runner's after every notification.
#[derive(Debug)]
pub struct NodeHarness {
    harness: Harness,
    node: TestNode,
    status: StatusHandle,
    link: Option<NodeLink>,
    finished: Vec<BlockRef>,
}

impl NodeHarness {
    /// A harness with a default runner and an empty node.
    ///
    /// # Errors
    /// When the runner cannot be opened.
    pub fn new() -> Result<Self> {
        Ok(Self {
            harness: Harness::new()?,
            node: TestNode::default(),
            status: StatusHandle::default(),
            link: None,
            finished: Vec::new(),
        })
    }

    /// The runner's harness (records, reports).
    pub fn harness(&self) -> &Harness {
        &self.harness
    }

    /// The runner's harness, mutably (start functions, restart).
    pub fn harness_mut(&mut self) -> &mut Harness {
        &mut self.harness
    }

    /// The node.
    pub fn node(&self) -> &TestNode {
        &self.node
    }

    /// The status handle node errors are recorded in.
    pub fn status(&self) -> &StatusHandle {
        &self.status
    }

    /// What the ExEx does when the node starts it: the resume point from the
    /// runner's functions, else the node's head ([`TestNode::head`]).
    ///
    /// # Panics
    /// When the node has no block.
    pub fn start_node(&mut self) -> Resume {
        self.status.set(self.harness.runner().report());
        let (link, resume) = NodeLink::start(
            self.harness.runner(),
            self.status.clone(),
            &self.node,
            self.node.head(),
        );
        self.link = Some(link);
        self.finished.clear();
        resume
    }

    /// Sends one notification: reverts of `reverted` (given oldest first,
    /// delivered newest first), then commits of `committed` (oldest first).
    /// The node makes `committed` canonical first, as a node does before it
    /// notifies. Returns what the runner did.
    ///
    /// # Errors
    /// As [`Runner::process`].
    ///
    /// # Panics
    /// Before [`start_node`](Self::start_node).
    pub fn send_notification(
        &mut self,
        reverted: &[ChainBlock],
        committed: &[ChainBlock],
    ) -> Result<BatchSummary> {
        self.node.extend(committed);
        let mut events: Vec<ChainEvent> = reverted
            .iter()
            .rev()
            .map(|b| ChainEvent::revert(0, b.clone()))
            .collect();
        events.extend(committed.iter().map(|b| ChainEvent::commit(0, b.clone())));
        let link = self
            .link
            .as_mut()
            .expect("start_node before sending notifications");
        for event in &events {
            link.delivered(event);
        }
        let summary = self.harness.runner_mut().process(&events)?;
        self.tick();
        Ok(summary)
    }

    /// Sends a notification committing `blocks`.
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn send_commit(&mut self, blocks: &[ChainBlock]) -> Result<BatchSummary> {
        self.send_notification(&[], blocks)
    }

    /// A backfill round (functions behind the tip catch up), then a poll.
    ///
    /// # Errors
    /// As [`Runner::catch_up`].
    pub fn catch_up(&mut self) -> Result<BatchSummary> {
        let summary = self.harness.runner_mut().catch_up()?;
        self.tick();
        Ok(summary)
    }

    /// Publishes the runner's report and polls the link once (the ExEx's
    /// timer tick), recording a `FinishedHeight` if one is sent.
    ///
    /// # Panics
    /// Before [`start_node`](Self::start_node).
    pub fn tick(&mut self) {
        self.status.set(self.harness.runner().report());
        let link = self.link.as_mut().expect("start_node before polling");
        if let Some(height) = link.poll(&self.node) {
            self.finished.push(height);
        }
    }

    /// Every `FinishedHeight` sent since [`start_node`](Self::start_node).
    pub fn finished_heights(&self) -> &[BlockRef] {
        &self.finished
    }

    /// Asserts the `FinishedHeight`s sent since the start, as blocks.
    ///
    /// # Panics
    /// When they differ (showing both).
    pub fn assert_finished(&self, expected: &[&ChainBlock]) {
        let expected: Vec<BlockRef> = expected.iter().map(|b| block_ref(b)).collect();
        assert_eq!(self.finished, expected, "FinishedHeights sent");
    }
}

/// A chain source that forwards whatever is sent on its channel, as a node's
/// notifications arrive (the reth adapter is such a source): for tests and
/// benchmarks that drive [`serve`](crate::serve) event by event.
#[derive(Debug)]
pub struct PushSource(pub crossbeam_channel::Receiver<ChainEvent>);

impl ChainSource for PushSource {
    fn describe(&self) -> String {
        "push".into()
    }

    fn blocks(&self) -> Option<Arc<dyn BlockSource>> {
        None
    }

    fn run(self: Box<Self>, _resume: Checkpoint, sink: EventSink) -> Result<()> {
        while let Ok(ev) = self.0.recv() {
            sink.send(ev)?;
        }
        Ok(())
    }
}
