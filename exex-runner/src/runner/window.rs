//! The runner's view of the chain: a window of recent canonical blocks
//! (refilled from disk after a restart), and past blocks by number for
//! functions that backfill beyond it.

use std::sync::Arc;

use xxfunc_abi::{ChainBlock, EventKind};

use super::Runner;
use crate::source::ChainEvent;

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
                self.window.split_off(&ev.block.number);
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
            }
        }
        while self.window.len() > self.config.block_window {
            self.window.pop_first();
        }
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
