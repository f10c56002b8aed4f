//! What a node adapter tells the node, decided and tested here so the
//! adapter only translates: the head the node's notification stream resumes
//! after ([`resume_head`]), and the `FinishedHeight` to report next
//! ([`FinishedHeights`]). [`NodeLink`] puts both together the way the reth
//! ExEx uses them.
//!
//! The node is asked one thing, the canonical hash of a block by number
//! ([`BlockHashes`]). When it cannot answer, the error is returned as
//! [`RunnerError::Provider`]; [`NodeLink`] counts it, keeps it in the
//! runner's [`StatusHandle`] (so `/metrics` shows it as
//! `xxfunc_runner_node_errors_total`) and logs it, and asks again on the next
//! poll. It is never taken for "no such block".

use std::collections::BTreeMap;

use alloy_primitives::B256;
use xxfunc_abi::EventKind;
use xxfunc_api::{BlockRef, ObservedState};

use crate::{
    error::{BoxError, Result, RunnerError},
    runner::Runner,
    service::StatusHandle,
    source::ChainEvent,
    state_db::Position,
};

/// How many block hashes below the last reported height [`FinishedHeights`]
/// keeps, for a safe height that goes down after a reorg.
const KEEP_BELOW: u64 = 256;

/// The one question the runner asks its node: the canonical hash of a block.
/// The reth adapter answers it from the node's provider; tests answer it from
/// a [`TestNode`](crate::test_utils::TestNode).
pub trait BlockHashes {
    /// The canonical hash of block `number`, or `None` when the node has no
    /// such block (it is above the node's head).
    ///
    /// # Errors
    /// When the node cannot answer (its database failed); the error is kept as
    /// the source of [`RunnerError::Provider`].
    fn block_hash(&self, number: u64) -> std::result::Result<Option<B256>, BoxError>;
}

fn hash_at(node: &dyn BlockHashes, number: u64) -> Result<Option<B256>> {
    node.block_hash(number)
        .map_err(|source| RunnerError::Provider { number, source })
}

/// The last block every running function has processed, as the head the
/// node's notification stream should resume after: the lowest cursor, or the
/// block before a pending backfill start (its hash read from `node`). A start
/// above the node's head is skipped: live blocks reach it. `None` when no
/// running function has a position yet (the stream then starts at the node's
/// head).
///
/// # Errors
/// [`RunnerError::Provider`] when the node cannot say the hash of the block
/// before a pending start.
pub fn resume_head(runner: &Runner, node: &dyn BlockHashes) -> Result<Option<BlockRef>> {
    let mut lowest: Option<BlockRef> = None;
    for f in runner.report().functions {
        if f.observed != ObservedState::Running {
            continue;
        }
        let candidate = match runner.position(&f.id) {
            Some(Position::Block { block, .. }) => block,
            Some(Position::From { number }) => {
                let Some(before) = number.checked_sub(1) else {
                    continue;
                };
                let Some(hash) = hash_at(node, before)? else {
                    continue;
                };
                BlockRef {
                    number: before,
                    hash,
                }
            }
            Some(Position::Head) | None => continue,
        };
        if lowest.is_none_or(|l| candidate.number < l.number) {
            lowest = Some(candidate);
        }
    }
    Ok(lowest)
}

/// Which `FinishedHeight` may be reported: the core's safe height, never
/// above the last block handed to the runner, with the hash of the block
/// delivered at that number (or, below what was delivered, the node's
/// canonical hash). Each height is reported once.
#[derive(Clone, Debug)]
pub struct FinishedHeights {
    canonical: BTreeMap<u64, B256>,
    delivered: u64,
    sent: Option<BlockRef>,
}

impl FinishedHeights {
    /// A tracker for a stream that starts after `head`.
    pub fn new(head: BlockRef) -> Self {
        Self {
            canonical: BTreeMap::from([(head.number, head.hash)]),
            delivered: head.number,
            sent: None,
        }
    }

    /// Notes an event handed to the runner.
    pub fn delivered(&mut self, event: &ChainEvent) {
        let b = &event.block;
        match event.kind {
            EventKind::Commit => {
                self.canonical.insert(b.number, b.hash);
                self.delivered = b.number;
            }
            EventKind::Revert => {
                self.canonical.remove(&b.number);
                self.delivered = b.number.saturating_sub(1);
            }
        }
    }

    /// The height to report now, given the core's `safe` height, or `None`
    /// when there is nothing new to report (no safe height yet, the same
    /// height as last time, or a height the node has no block at).
    ///
    /// # Errors
    /// [`RunnerError::Provider`] when the hash had to be asked from `node`
    /// and it could not answer; nothing is marked as reported, so the next
    /// call asks again.
    pub fn next(&mut self, safe: Option<u64>, node: &dyn BlockHashes) -> Result<Option<BlockRef>> {
        let Some(safe) = safe else {
            return Ok(None);
        };
        let number = safe.min(self.delivered);
        let hash = match self.canonical.get(&number) {
            Some(hash) => *hash,
            None => match hash_at(node, number)? {
                Some(hash) => hash,
                None => return Ok(None),
            },
        };
        let head = BlockRef { number, hash };
        if self.sent == Some(head) {
            return Ok(None);
        }
        self.sent = Some(head);
        self.canonical = self.canonical.split_off(&number.saturating_sub(KEEP_BELOW));
        Ok(Some(head))
    }

    /// The last height reported.
    pub fn sent(&self) -> Option<BlockRef> {
        self.sent
    }
}

/// Where the node's notification stream resumes, as [`NodeLink::start`]
/// decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// After this block (the ExEx calls `set_notifications_with_head`).
    After(BlockRef),
    /// At the node's head (no running function has a position, or the node
    /// could not say where; the error is in the status).
    NodeHead,
}

/// A node adapter's side of the runner: the resume point at start, then the
/// `FinishedHeight` to send as events are delivered and the runner's safe
/// height (read from its [`StatusHandle`]) moves. Errors of the node are
/// recorded in the status handle and logged, never dropped.
#[derive(Debug)]
pub struct NodeLink {
    status: StatusHandle,
    finished: FinishedHeights,
}

impl NodeLink {
    /// Decides where the stream resumes ([`resume_head`], or the node's
    /// `node_head` when no running function has a position) and starts
    /// tracking finished heights from there. When the node cannot answer,
    /// the stream starts at `node_head` and the error is recorded in
    /// `status`.
    pub fn start(
        runner: &Runner,
        status: StatusHandle,
        node: &dyn BlockHashes,
        node_head: BlockRef,
    ) -> (Self, Resume) {
        let resume = match resume_head(runner, node) {
            Ok(Some(head)) => Resume::After(head),
            Ok(None) => Resume::NodeHead,
            Err(e) => {
                status.record_node_error(
                    &e,
                    "reading the functions' resume point, starting at the node head",
                );
                Resume::NodeHead
            }
        };
        let head = match resume {
            Resume::After(head) => head,
            Resume::NodeHead => node_head,
        };
        let link = Self {
            status,
            finished: FinishedHeights::new(head),
        };
        (link, resume)
    }

    /// Notes an event handed to the runner.
    pub fn delivered(&mut self, event: &ChainEvent) {
        self.finished.delivered(event);
    }

    /// The `FinishedHeight` to send now, if any (see
    /// [`FinishedHeights::next`]); a node error is recorded and yields
    /// `None`, and the next poll asks again.
    pub fn poll(&mut self, node: &dyn BlockHashes) -> Option<BlockRef> {
        match self.finished.next(self.status.safe_height(), node) {
            Ok(next) => next,
            Err(e) => {
                self.status
                    .record_node_error(&e, "holding FinishedHeight until the node answers");
                None
            }
        }
    }

    /// The last height reported.
    pub fn sent(&self) -> Option<BlockRef> {
        self.finished.sent()
    }

    /// The status handle errors are recorded in.
    pub fn status(&self) -> &StatusHandle {
        &self.status
    }
}
