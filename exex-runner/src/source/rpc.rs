//! A JSON-RPC follower: polls a node (`eth_blockNumber`,
//! `eth_getBlockByNumber(n, true)`, `eth_getBlockReceipts`), detects reorgs by
//! walking back from the head until its own recent chain agrees with the
//! node's, and emits reverts (newest first) then commits (oldest first).

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
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
/// thread and the backfill [`RpcBlocks`].
struct RpcClient {
    url: String,
    http: reqwest::Client,
    runtime: BlockingRuntime,
    next_id: AtomicU64,
}

impl RpcClient {
    fn new(url: &str) -> Result<Self> {
        let runtime = BlockingRuntime::with_worker("json-rpc")?;
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

    fn call(&self, method: &'static str, params: Value) -> Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let reply: Value = self
            .runtime
            .block_on(async {
                let resp = self.http.post(&self.url).json(&body).send().await?;
                resp.error_for_status()?.json::<Value>().await
            })
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

/// Follows a node over JSON-RPC.
pub struct RpcFollower {
    client: Arc<RpcClient>,
    chain_id: u64,
    poll: Duration,
    from: Option<u64>,
    recent: Vec<Arc<ChainBlock>>,
}

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
            from: None,
            recent: Vec::new(),
        })
    }

    /// Poll interval (default 250 ms).
    pub fn poll_interval(mut self, poll: Duration) -> Self {
        self.poll = poll;
        self
    }

    /// Without a checkpoint, start at block `number` instead of after the
    /// node's current head.
    pub fn start_at(mut self, number: u64) -> Self {
        self.from = Some(number);
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
    fn poll(&mut self, next_if_empty: &mut Option<u64>, sink: &EventSink) -> Result<()> {
        let head = self.client.head()?;
        let first = match self.unwind(head, sink)? {
            Some(ancestor) => ancestor + 1,
            None => *next_if_empty.get_or_insert(head + 1),
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
        };
        let mut next = self.from;
        if let Some(tip) = resume.tip {
            follower.restore(tip, self.recent)?;
        }
        while !sink.is_closed() {
            match follower.poll(&mut next, &sink) {
                Ok(()) => {}
                Err(RunnerError::Stopped) => return Ok(()),
                Err(e) => tracing::warn!("{e}; retrying"),
            }
            std::thread::sleep(self.poll);
        }
        Ok(())
    }
}
