//! The runner's view of the chain: a window of recent canonical blocks
//! (refilled from disk after a restart), past blocks by number for
//! functions that backfill beyond it, and recently reverted blocks by hash
//! for functions whose cursor sits on one.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
};

use alloy_primitives::B256;
use xxfunc_abi::{ChainBlock, EventKind};

use super::Runner;
use crate::source::ChainEvent;

/// How many reverted blocks [`Orphans`] keeps.
const ORPHANS_KEPT: usize = 256;

/// Recently reverted blocks by hash (the newest [`ORPHANS_KEPT`]).
#[derive(Default)]
pub(super) struct Orphans {
    by_hash: HashMap<B256, Arc<ChainBlock>>,
    order: VecDeque<B256>,
}

impl Orphans {
    fn insert(&mut self, block: Arc<ChainBlock>) {
        if self.by_hash.insert(block.hash, block.clone()).is_none() {
            self.order.push_back(block.hash);
        }
        while self.order.len() > ORPHANS_KEPT {
            if let Some(old) = self.order.pop_front() {
                self.by_hash.remove(&old);
            }
        }
    }

    pub(super) fn get(&self, hash: &B256) -> Option<Arc<ChainBlock>> {
        self.by_hash.get(hash).cloned()
    }
}

impl Runner {
    /// The last blocks the runner committed, oldest first, ending at the
    /// checkpoint's tip (at most [`RunnerConfig::reorg_blocks`]; after a
    /// restart, those stored on disk). [`serve`](crate::serve) hands them to
    /// the chain source, so it can revert blocks the node no longer has.
    pub fn recent_blocks(&self) -> Vec<Arc<ChainBlock>> {
        let Some(tip) = self.checkpoint.tip else {
            return Vec::new();
        };
        if self
            .window
            .get(&tip.number)
            .is_none_or(|b| b.hash != tip.hash)
        {
            return Vec::new();
        }
        let keep = usize::try_from(self.config.reorg_blocks).unwrap_or(usize::MAX);
        let mut out: Vec<_> = self
            .window
            .range(..=tip.number)
            .rev()
            .take(keep)
            .map(|(_, b)| b.clone())
            .collect();
        out.reverse();
        out
    }

    pub(super) fn window_apply(&mut self, ev: &ChainEvent) {
        match ev.kind {
            EventKind::Commit => {
                // A different block at this height: it and all above are orphaned
                // (a source that re-sends the same blocks orphans nothing).
                let forked = self
                    .window
                    .get(&ev.block.number)
                    .is_some_and(|b| b.hash != ev.block.hash);
                let replaced = self.window.split_off(&ev.block.number);
                if forked {
                    for (_, block) in replaced {
                        self.orphans.insert(block);
                    }
                }
                self.window.insert(ev.block.number, ev.block.clone());
            }
            EventKind::Revert => {
                if self
                    .window
                    .get(&ev.block.number)
                    .is_some_and(|b| b.hash == ev.block.hash)
                {
                    self.window.remove(&ev.block.number);
                }
                self.orphans.insert(ev.block.clone());
            }
        }
        while self.window.len() > self.config.block_window {
            self.window.pop_first();
        }
    }

    /// Whether the window holds a different block than `hash` at `number`: a
    /// cursor there is on an orphaned branch. (A cursor above the window's tip
    /// is left alone until the chain reaches its height again, when this tells.)
    pub(super) fn orphaned(&self, number: u64, hash: &B256) -> bool {
        self.window.get(&number).is_some_and(|b| b.hash != *hash)
    }

    pub(super) fn lookup(&self, number: u64) -> Option<Arc<ChainBlock>> {
        if let Some(b) = self.window.get(&number) {
            return Some(b.clone());
        }
        match self.history.as_ref()?.block(number) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(number, "backfill: fetching the block failed: {e}");
                None
            }
        }
    }
}
