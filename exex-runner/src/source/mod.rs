//! Chain sources: anything that produces commit and revert events in delivery
//! order. Three implementations: fixture replay ([`FixtureSource`]), a JSON-RPC
//! follower ([`RpcFollower`]), and the reth ExEx adapter (its own crate).
//!
//! The contract every source keeps:
//!
//! - events arrive in delivery order with strictly increasing `seq`; a reorg
//!   is `Revert` events for the orphaned blocks, newest first, then `Commit`
//!   events for the new branch, oldest first; no block twice in the same
//!   direction;
//! - on restart the runner passes its [`Checkpoint`]; a source may re-send
//!   events up to `checkpoint.seq` (the runner skips them, using them only to
//!   rebuild its window of recent blocks) and must continue after it;
//! - [`ChainSource::blocks`] serves canonical blocks by number for backfill.
//!
//! Pull sources implement [`ChainSource::run`] as a loop; a push source (the
//! reth adapter) forwards what it is handed into the [`EventSink`].

use std::sync::{
    Arc,
    atomic::{AtomicBool, Ordering},
};

use crossbeam_channel::Sender;
use xxfunc_abi::{ChainBlock, EventKind};
use xxfunc_api::BlockRef;

use crate::{
    error::{Result, RunnerError},
    state_db::Checkpoint,
};

mod fixtures;
mod rpc;

pub use fixtures::{FixtureLayout, FixtureSource};
pub use rpc::{DEFAULT_STALL_AFTER, RpcBlocks, RpcFollower, RpcStart};
pub(crate) use rpc::{Deadline, RpcClient};

/// One chain event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainEvent {
    /// Position in the source's event stream, strictly increasing from 1
    /// (0: let the runner number it).
    pub seq: u64,
    /// Commit or revert.
    pub kind: EventKind,
    /// The block.
    pub block: Arc<ChainBlock>,
}

impl ChainEvent {
    /// A commit of `block`.
    pub fn commit(seq: u64, block: impl Into<Arc<ChainBlock>>) -> Self {
        Self {
            seq,
            kind: EventKind::Commit,
            block: block.into(),
        }
    }

    /// A revert of `block`.
    pub fn revert(seq: u64, block: impl Into<Arc<ChainBlock>>) -> Self {
        Self {
            seq,
            kind: EventKind::Revert,
            block: block.into(),
        }
    }

    /// Number and hash of the block.
    pub fn block_ref(&self) -> BlockRef {
        block_ref(&self.block)
    }
}

/// Number and hash of `block`.
pub fn block_ref(block: &ChainBlock) -> BlockRef {
    BlockRef {
        number: block.number,
        hash: block.hash,
    }
}

/// What a source sends the runner.
#[derive(Debug)]
pub enum SourceMessage {
    /// An event.
    Event(ChainEvent),
    /// The source has nothing more to send (fixture replay finished).
    End,
}

/// Where a source puts its events. Cloneable; sending fails once the runner
/// has gone away, which tells the source to stop.
#[derive(Clone, Debug)]
pub struct EventSink {
    tx: Sender<SourceMessage>,
    closed: Arc<AtomicBool>,
}

impl EventSink {
    pub(crate) fn new(tx: Sender<SourceMessage>, closed: Arc<AtomicBool>) -> Self {
        Self { tx, closed }
    }

    /// A sink and the receiving end, for driving a source outside [`serve`](crate::serve)
    /// (tests, adapters). Dropping the receiver closes the sink.
    pub fn channel(capacity: usize) -> (Self, SinkReceiver) {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let closed = Arc::new(AtomicBool::new(false));
        (
            Self {
                tx,
                closed: closed.clone(),
            },
            SinkReceiver { rx, closed },
        )
    }

    /// Whether the runner has stopped listening (a polling source should return).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// Hands one event to the runner (blocks while the runner's queue is full).
    ///
    /// # Errors
    /// [`RunnerError::Stopped`] when the runner is gone.
    pub fn send(&self, event: ChainEvent) -> Result<()> {
        self.tx
            .send(SourceMessage::Event(event))
            .map_err(|_| RunnerError::Stopped)
    }

    /// Says the source is exhausted.
    pub fn end(&self) {
        let _ = self.tx.send(SourceMessage::End);
    }
}

/// The receiving end of [`EventSink::channel`].
#[derive(Debug)]
pub struct SinkReceiver {
    rx: crossbeam_channel::Receiver<SourceMessage>,
    closed: Arc<AtomicBool>,
}

impl SinkReceiver {
    /// The next message, waiting up to `timeout`.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Option<SourceMessage> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for SinkReceiver {
    fn drop(&mut self) {
        self.closed.store(true, Ordering::Relaxed);
    }
}

/// Canonical blocks by number, for backfill.
pub trait BlockSource: Send + Sync {
    /// The canonical block `number`, or `None` when the source does not have it.
    ///
    /// # Errors
    /// When the source failed to answer.
    fn block(&self, number: u64) -> Result<Option<Arc<ChainBlock>>>;
}

/// A producer of chain events.
pub trait ChainSource: Send {
    /// A short description for logs, e.g. `fixtures /path` or `rpc http://…`.
    fn describe(&self) -> String;

    /// Past blocks by number, for functions that backfill.
    fn blocks(&self) -> Option<Arc<dyn BlockSource>>;

    /// Before [`run`](Self::run): the blocks the runner committed last,
    /// oldest first, ending at the checkpoint's tip. A source that detects
    /// reorgs by asking the node (the JSON-RPC follower) reverts from these
    /// the blocks a reorg replaced while the runner was down, which the node
    /// may no longer serve. Sources that replay their own history ignore them.
    fn remember(&mut self, recent: Vec<Arc<ChainBlock>>) {
        let _ = recent;
    }

    /// Produces events after `resume` into `sink` until the source is
    /// exhausted (then calls [`EventSink::end`]) or the sink is closed.
    ///
    /// # Errors
    /// When the source fails for good (the runner stops with that error).
    fn run(self: Box<Self>, resume: Checkpoint, sink: EventSink) -> Result<()>;
}
