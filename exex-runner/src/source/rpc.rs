//! A JSON-RPC follower: polls a node (`eth_blockNumber`,
//! `eth_getBlockByNumber(n, true)`, `eth_getBlockReceipts`), detects reorgs by
//! walking back from the head until its own recent chain agrees with the
//! node's, and emits reverts (newest first) then commits (oldest first).
//!
//! Without a checkpoint it starts where [`RpcStart`] says: by default at the node's
//! current head block, which it delivers at once (so functions that backfill from an
//! earlier block start without waiting for the node's next block). A reorg deeper than
//! the blocks it remembers, or a node on another chain, ends the follower with that
//! error instead of retrying forever. A head that stops moving is warned about.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use serde_json::{Value, json};
use xxfunc_abi::ChainBlock;
use xxfunc_api::BlockRef;

use super::{BlockSource, ChainEvent, ChainSource, EventSink};
use crate::{
    blocking::BlockingRuntime,
    error::{Result, RpcError, RunnerError},
    state_db::Checkpoint,
};

/// How many emitted blocks the follower remembers (the deepest reorg it can
/// follow without asking the node for orphaned blocks by hash).
const REMEMBERED: usize = 256;

/// A minimal JSON-RPC client with its own runtime, shared by the follower
/// thread and the backfill [`RpcBlocks`] (the state backend has its own).
pub(crate) struct RpcClient {
    url: String,
    http: reqwest::Client,
    runtime: BlockingRuntime,
    next_id: AtomicU64,
}

impl RpcClient {
    pub(crate) fn new(url: &str) -> Result<Self> {
        Self::with_runtime(url, BlockingRuntime::with_worker("json-rpc")?)
    }

    /// A client whose connections are driven by the one thread that calls it (no
    /// cross-thread wake-up per request): for a thread that makes many calls in a row.
    pub(crate) fn on_this_thread(url: &str) -> Result<Self> {
        Self::with_runtime(url, BlockingRuntime::current_thread("json-rpc")?)
    }

    fn with_runtime(url: &str, runtime: BlockingRuntime) -> Result<Self> {
        let bad = |reason: String| RunnerError::Rpc {
            url: url.to_string(),
            source: Box::new(RpcError::Url { reason }),
        };
        match reqwest::Url::parse(url) {
            Ok(parsed) if matches!(parsed.scheme(), "http" | "https") => {}
            Ok(parsed) => return Err(bad(format!("scheme {}", parsed.scheme()))),
            Err(e) => return Err(bad(e.to_string())),
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| RunnerError::Rpc {
                url: url.to_string(),
                source: Box::new(RpcError::Client(e)),
            })?;
        Ok(Self {
            url: url.to_string(),
            http,
            runtime,
            next_id: AtomicU64::new(1),
        })
    }

    fn err(&self, source: RpcError) -> RunnerError {
        RunnerError::Rpc {
            url: self.url.clone(),
            source: Box::new(source),
        }
    }

    /// The node's URL.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    async fn post(&self, method: &str, params: Value) -> reqwest::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let resp = self.http.post(&self.url).json(&body).send().await?;
        resp.error_for_status()?.json::<Value>().await
    }

    /// Runs `future` on the client's runtime, giving up at `deadline`.
    pub(crate) fn until<T>(
        &self,
        deadline: Instant,
        future: impl std::future::Future<Output = T>,
    ) -> std::result::Result<T, Deadline> {
        let wait = deadline.saturating_duration_since(Instant::now());
        self.runtime
            .block_on(async { tokio::time::timeout(wait, future).await })
            .map_err(|_| Deadline)
    }

    /// One call: `Ok(Ok(result))`, `Ok(Err(error))` with the node's error object, or
    /// `Err` saying why no reply came.
    pub(crate) async fn request(
        &self,
        method: &str,
        params: Value,
    ) -> std::result::Result<std::result::Result<Value, Value>, String> {
        let reply = self
            .post(method, params)
            .await
            .map_err(|e| format!("{method}: {e}"))?;
        if let Some(error) = reply.get("error") {
            return Ok(Err(error.clone()));
        }
        reply
            .get("result")
            .cloned()
            .map(Ok)
            .ok_or_else(|| format!("{method}: the reply has neither result nor error"))
    }

    fn call(&self, method: &'static str, params: Value) -> Result<Value> {
        let reply: Value = self
            .runtime
            .block_on(self.post(method, params))
            .map_err(|source| self.err(RpcError::Transport { method, source }))?;
        if let Some(error) = reply.get("error") {
            return Err(self.err(RpcError::Node {
                method,
                error: error.clone(),
            }));
        }
        reply
            .get("result")
            .cloned()
            .ok_or_else(|| self.err(RpcError::NoResult { method }))
    }

    fn quantity(&self, method: &'static str, value: &Value) -> Result<u64> {
        value
            .as_str()
            .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
            .ok_or_else(|| {
                self.err(RpcError::Quantity {
                    method,
                    value: value.clone(),
                })
            })
    }

    fn chain_id(&self) -> Result<u64> {
        let v = self.call("eth_chainId", json!([]))?;
        self.quantity("eth_chainId", &v)
    }

    fn head(&self) -> Result<u64> {
        let v = self.call("eth_blockNumber", json!([]))?;
        self.quantity("eth_blockNumber", &v)
    }

    /// The canonical hash at `number`, or `None` past the head.
    fn hash_at(&self, number: u64) -> Result<Option<B256>> {
        let v = self.call(
            "eth_getBlockByNumber",
            json!([format!("{number:#x}"), false]),
        )?;
        if v.is_null() {
            return Ok(None);
        }
        v.get("hash")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok())
            .map(Some)
            .ok_or_else(|| self.err(RpcError::NoHash { number }))
    }

    /// The full block at `id` (a number, or a hash with `by_hash`).
    fn block(&self, chain_id: u64, id: Value, by_hash: bool) -> Result<Option<ChainBlock>> {
        let method = if by_hash {
            "eth_getBlockByHash"
        } else {
            "eth_getBlockByNumber"
        };
        let block = self.call(method, json!([id.clone(), true]))?;
        if block.is_null() {
            return Ok(None);
        }
        let receipts = self.call("eth_getBlockReceipts", json!([id.clone()]))?;
        ChainBlock::from_rpc_json(chain_id, block, receipts)
            .map(Some)
            .map_err(|source| self.err(RpcError::Convert { block: id, source }))
    }

    fn block_by_number(&self, chain_id: u64, number: u64) -> Result<Option<ChainBlock>> {
        self.block(chain_id, json!(format!("{number:#x}")), false)
    }
}

/// [`RpcClient::until`]'s deadline passed.
#[derive(Debug)]
pub(crate) struct Deadline;

/// Where a follower without a checkpoint starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RpcStart {
    /// At the node's current head block (delivered at once).
    #[default]
    Head,
    /// After the node's current head: the first event is the next block it adds.
    Next,
    /// At this block number.
    Block(u64),
    /// At the block with this hash (on the node's canonical chain).
    Hash(B256),
}

impl std::str::FromStr for RpcStart {
    type Err = String;

    /// `head`, `next`, a block number, or a `0x`-prefixed 32-byte block hash.
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        let s = s.trim();
        match s {
            "head" => return Ok(Self::Head),
            "next" => return Ok(Self::Next),
            _ => {}
        }
        if let Some(hex) = s.strip_prefix("0x") {
            return match hex.len() {
                64 => s
                    .parse()
                    .map(Self::Hash)
                    .map_err(|e| format!("{s:?} is not a block hash: {e}")),
                _ => Err(format!(
                    "{s:?} is not a block hash (0x and 64 hex digits); give head, next, a block number or a block hash"
                )),
            };
        }
        s.parse().map(Self::Block).map_err(|_| {
            format!("{s:?}: give head, next, a block number or a 0x-prefixed block hash")
        })
    }
}

/// Follows a node over JSON-RPC.
pub struct RpcFollower {
    client: Arc<RpcClient>,
    chain_id: u64,
    poll: Duration,
    from: RpcStart,
    stall_after: Option<Duration>,
    recent: Vec<Arc<ChainBlock>>,
}

/// How long the node's head may stay put before the follower warns (by default).
pub const DEFAULT_STALL_AFTER: Duration = Duration::from_secs(60);

impl std::fmt::Debug for RpcFollower {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcFollower")
            .field("url", &self.client.url)
            .finish_non_exhaustive()
    }
}

impl RpcFollower {
    /// Connects to `url` (asks the chain id once).
    ///
    /// # Errors
    /// [`RunnerError::Rpc`] when the node does not answer.
    pub fn connect(url: &str) -> Result<Self> {
        let client = Arc::new(RpcClient::new(url)?);
        let chain_id = client.chain_id()?;
        Ok(Self {
            client,
            chain_id,
            poll: Duration::from_millis(250),
            from: RpcStart::Head,
            stall_after: Some(DEFAULT_STALL_AFTER),
            recent: Vec::new(),
        })
    }

    /// Poll interval (default 250 ms).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Without a checkpoint, start at block `number` instead of at the
    /// node's current head.
    pub fn start_at(mut self, number: u64) -> Self {
        self.from = RpcStart::Block(number);
        self
    }

    /// Without a checkpoint, start where `start` says. A hash is looked up
    /// on the node at once.
    ///
    /// # Errors
    /// [`RunnerError::Rpc`] when the node does not answer, or does not know
    /// the hash as a canonical block.
    pub fn start(mut self, start: RpcStart) -> Result<Self> {
        if let RpcStart::Hash(hash) = start {
            let block = self
                .client
                .call("eth_getBlockByHash", json!([hash, false]))?;
            let number = block
                .get("number")
                .filter(|v| !v.is_null())
                .ok_or_else(|| self.client.err(RpcError::UnknownStart { hash }))
                .and_then(|v| self.client.quantity("eth_getBlockByHash", v))?;
            if self.client.hash_at(number)? != Some(hash) {
                return Err(self.client.err(RpcError::UnknownStart { hash }));
            }
            self.from = RpcStart::Block(number);
        } else {
            self.from = start;
        }
        Ok(self)
    }

    /// Warn when the node's head has not moved for `after` (`None`: never).
    /// Default [`DEFAULT_STALL_AFTER`].
    pub fn stall_after(mut self, after: Option<Duration>) -> Self {
        self.stall_after = after.filter(|d| !d.is_zero());
        self
    }

    /// The node's chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// Canonical blocks by number from the node.
    pub fn block_source(&self) -> RpcBlocks {
        RpcBlocks {
            client: self.client.clone(),
            chain_id: self.chain_id,
        }
    }
}

/// Canonical blocks by number from a node (backfill).
pub struct RpcBlocks {
    client: Arc<RpcClient>,
    chain_id: u64,
}

impl BlockSource for RpcBlocks {
    fn block(&self, number: u64) -> Result<Option<Arc<ChainBlock>>> {
        Ok(self
            .client
            .block_by_number(self.chain_id, number)?
            .map(Arc::new))
    }
}

/// The follower's memory of what it emitted: the canonical chain as the
/// runner last saw it, newest blocks only.
struct Follower {
    client: Arc<RpcClient>,
    chain_id: u64,
    chain: BTreeMap<u64, Arc<ChainBlock>>,
    seq: u64,
    stall: Stall,
}

/// Watches the node's head for a standstill.
struct Stall {
    after: Option<Duration>,
    head: Option<u64>,
    moved_at: Instant,
    warned_at: Option<Instant>,
}

impl Stall {
    /// Notes the head of a poll; warns (at most once per `after`) when it
    /// has not moved for `after`.
    fn observe(&mut self, head: u64, url: &str) {
        let now = Instant::now();
        if self.head != Some(head) {
            if self.warned_at.take().is_some() {
                tracing::info!(head, "the node's head moves again");
            }
            self.head = Some(head);
            self.moved_at = now;
            return;
        }
        let Some(after) = self.after else { return };
        let still = now.duration_since(self.moved_at);
        if still >= after
            && self
                .warned_at
                .is_none_or(|w| now.duration_since(w) >= after)
        {
            self.warned_at = Some(now);
            tracing::warn!(
                head,
                still_s = still.as_secs(),
                "the node at {url} has not added a block for {}s (head {head}); is it syncing, mining or connected to peers?",
                still.as_secs()
            );
        }
    }
}

impl Follower {
    fn emit(&mut self, sink: &EventSink, ev: ChainEvent) -> Result<()> {
        self.seq += 1;
        sink.send(ChainEvent {
            seq: self.seq,
            ..ev
        })
    }

    fn remember(&mut self, block: Arc<ChainBlock>) {
        self.chain.split_off(&block.number);
        self.chain.insert(block.number, block);
        while self.chain.len() > REMEMBERED {
            self.chain.pop_first();
        }
    }

    /// Rebuilds memory of the chain up to the checkpoint tip after a restart:
    /// from the blocks the runner stored (`recent`, ending at the tip), else
    /// the tip block by hash from the node (which may still serve it even if
    /// it was orphaned meanwhile). The next poll then reverts whatever of it
    /// the node no longer has on its canonical chain.
    fn restore(&mut self, tip: BlockRef, recent: Vec<Arc<ChainBlock>>) -> Result<()> {
        if recent.last().is_some_and(|b| b.hash == tip.hash) {
            for block in recent {
                self.remember(block);
            }
            return Ok(());
        }
        let block = self
            .client
            .block(self.chain_id, json!(tip.hash), true)?
            .ok_or_else(|| self.client.err(RpcError::UnknownTip { tip }))?;
        self.remember(Arc::new(block));
        Ok(())
    }

    /// Walks back from `min(head, last)` to the newest remembered block the
    /// node still has at the same height; emits reverts above it (newest
    /// first); returns the ancestor number.
    fn unwind(&mut self, head: u64, sink: &EventSink) -> Result<Option<u64>> {
        let Some((&last, _)) = self.chain.last_key_value() else {
            return Ok(None);
        };
        let mut n = head.min(last);
        let ancestor = loop {
            let Some(ours) = self.chain.get(&n) else {
                return Err(self.client.err(RpcError::ReorgTooDeep {
                    remembered: REMEMBERED,
                    below: n,
                }));
            };
            if self.client.hash_at(n)? == Some(ours.hash) {
                break n;
            }
            if n == 0 {
                return Err(self.client.err(RpcError::Genesis));
            }
            n -= 1;
        };
        while let Some((&number, _)) = self.chain.last_key_value() {
            if number <= ancestor {
                break;
            }
            let (_, block) = self.chain.pop_last().expect("non-empty");
            tracing::info!(number, hash = %block.hash, "reorg: reverting");
            self.emit(sink, ChainEvent::revert(0, block))?;
        }
        Ok(Some(ancestor))
    }

    /// One poll: reverts for orphaned blocks, then commits up to the head.
    fn poll(
        &mut self,
        start: RpcStart,
        next_if_empty: &mut Option<u64>,
        sink: &EventSink,
    ) -> Result<()> {
        let head = self.client.head()?;
        self.stall.observe(head, &self.client.url);
        let first = match self.unwind(head, sink)? {
            Some(ancestor) => ancestor + 1,
            None => *next_if_empty.get_or_insert(match start {
                RpcStart::Head => head,
                RpcStart::Next => head + 1,
                RpcStart::Block(n) => n,
                // Resolved to a number by `RpcFollower::start`.
                RpcStart::Hash(_) => head,
            }),
        };
        for n in first..=head {
            let Some(block) = self.client.block_by_number(self.chain_id, n)? else {
                return Ok(()); // the head moved back under us; next poll unwinds
            };
            if let Some(parent) = self.chain.get(&(n.wrapping_sub(1)))
                && parent.hash != block.parent_hash
            {
                return Ok(()); // a reorg raced this poll; next poll unwinds
            }
            let block = Arc::new(block);
            tracing::debug!(number = n, hash = %block.hash, "commit");
            self.remember(block.clone());
            self.emit(sink, ChainEvent::commit(0, block))?;
        }
        Ok(())
    }
}

impl ChainSource for RpcFollower {
    fn describe(&self) -> String {
        format!("rpc {} (chain {})", self.client.url, self.chain_id)
    }

    fn blocks(&self) -> Option<Arc<dyn BlockSource>> {
        Some(Arc::new(self.block_source()))
    }

    fn remember(&mut self, recent: Vec<Arc<ChainBlock>>) {
        self.recent = recent;
    }

    fn run(self: Box<Self>, resume: Checkpoint, sink: EventSink) -> Result<()> {
        let mut follower = Follower {
            client: self.client.clone(),
            chain_id: self.chain_id,
            chain: BTreeMap::new(),
            seq: resume.seq,
            stall: Stall {
                after: self.stall_after,
                head: None,
                moved_at: Instant::now(),
                warned_at: None,
            },
        };
        let mut next = None;
        if let Some(tip) = resume.tip {
            follower.restore(tip, self.recent)?;
        }
        while !sink.is_closed() {
            match follower.poll(self.from, &mut next, &sink) {
                Ok(()) => {}
                Err(RunnerError::Stopped) => return Ok(()),
                // Retrying cannot mend these: the runner stops with the error.
                Err(e @ RunnerError::Rpc { .. }) if e.is_terminal_rpc() => {
                    tracing::error!("{e}; the follower stops");
                    return Err(e);
                }
                Err(e) => tracing::warn!("{e}; retrying"),
            }
            std::thread::sleep(self.poll);
        }
        Ok(())
    }
}
