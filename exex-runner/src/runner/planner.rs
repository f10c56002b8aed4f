//! Planning: which function gets which event, simulating each function's
//! position through a batch (positions do not depend on outcomes: a failed
//! invocation still consumes its event).

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use alloy_primitives::B256;
use bytes::Bytes;
use xxfunc_abi::{ChainBlock, EventKind};
use xxfunc_api::{BlockRef, FunctionId};

use super::Runner;
use crate::{
    dispatch::Delivery,
    error::{Result, RunnerError},
    source::{ChainEvent, block_ref},
    state_db::Position,
};

/// Decides, event by event, which functions get what, simulating their
/// positions (which do not depend on outcomes: a failed invocation still
/// consumes its event).
pub(super) struct Planner {
    pub(super) positions: BTreeMap<FunctionId, Position>,
    pub(super) plans: BTreeMap<FunctionId, Vec<Delivery>>,
    pub(super) budget: HashMap<FunctionId, u64>,
    pub(super) envelopes: HashMap<(EventKind, B256), Bytes>,
    /// The chain events of this batch, in order (to store recent blocks).
    pub(super) chain: Vec<(EventKind, Arc<ChainBlock>)>,
}

impl Planner {
    pub(super) fn new(runner: &Runner) -> Self {
        // A function whose job is still running is not planned: it catches
        // up once that job is committed.
        let busy: Vec<&FunctionId> = runner.running.iter().flat_map(|r| r.busy()).collect();
        // Nor is one waiting to retry after "state unavailable": it catches up then.
        let now = std::time::Instant::now();
        let waiting = |id: &FunctionId| runner.retry.get(id).is_some_and(|r| r.at > now);
        let positions: BTreeMap<FunctionId, Position> = runner
            .functions
            .iter()
            .filter(|(id, f)| f.runnable() && !busy.contains(id) && !waiting(id))
            .map(|(id, f)| (id.clone(), f.rec.position))
            .collect();
        let budget = positions
            .keys()
            .map(|id| (id.clone(), runner.config.catch_up_per_round))
            .collect();
        Self {
            positions,
            plans: BTreeMap::new(),
            budget,
            envelopes: HashMap::new(),
            chain: Vec::new(),
        }
    }

    pub(super) fn envelope(&mut self, kind: EventKind, block: &ChainBlock) -> Result<Bytes> {
        if let Some(b) = self.envelopes.get(&(kind, block.hash)) {
            return Ok(b.clone());
        }
        let bytes: Bytes = xxfunc_abi::encode(kind, block)
            .map_err(|source| RunnerError::Envelope {
                number: block.number,
                source,
            })?
            .into();
        self.envelopes.insert((kind, block.hash), bytes.clone());
        Ok(bytes)
    }

    fn push(
        &mut self,
        id: &FunctionId,
        kind: EventKind,
        block: Arc<ChainBlock>,
        after: Position,
    ) -> Result<()> {
        let envelope = self.envelope(kind, &block)?;
        self.positions.insert(id.clone(), after);
        self.plans.entry(id.clone()).or_default().push(Delivery {
            kind,
            block,
            envelope,
            after,
        });
        Ok(())
    }

    /// While `id`'s planned position is on a block the chain no longer has,
    /// plans that block's revert (from the reverted blocks the runner keeps).
    /// A cursor on an orphaned block the runner no longer has is left where
    /// it is, with a warning.
    fn revert_orphaned(&mut self, runner: &Runner, id: &FunctionId) -> Result<()> {
        while let Position::Block { block, first } = self.positions[id] {
            if !runner.orphaned(block.number, &block.hash) {
                return Ok(());
            }
            let Some(orphan) = runner.orphans.get(&block.hash) else {
                tracing::warn!(id = %id, number = block.number, hash = %block.hash, "the function's cursor is on a block the chain no longer has, and the runner no longer holds it to revert");
                return Ok(());
            };
            let after = reverted(&orphan, first);
            self.push(id, EventKind::Revert, orphan, after)?;
        }
        Ok(())
    }

    pub(super) fn plan_event(&mut self, runner: &Runner, ev: &ChainEvent) -> Result<()> {
        let ids: Vec<FunctionId> = self.positions.keys().cloned().collect();
        let b = &ev.block;
        for id in ids {
            let pos = self.positions[&id];
            match ev.kind {
                EventKind::Revert => {
                    if let Position::Block { block, first } = pos
                        && block == ev.block_ref()
                    {
                        self.push(&id, EventKind::Revert, b.clone(), reverted(b, first))?;
                    }
                }
                EventKind::Commit => {
                    // A cursor left on an orphaned block (its function was
                    // running when the revert came) is reverted first.
                    self.revert_orphaned(runner, &id)?;
                    let pos = self.positions[&id];
                    let next = match pos {
                        Position::Head => b.number,
                        Position::From { number } => number,
                        Position::Block { block, .. } => block.number + 1,
                    };
                    if next < b.number {
                        self.catch_up(runner, &id, b.number - 1)?;
                    }
                    let first = match self.positions[&id] {
                        Position::Head => Some(b.number),
                        Position::From { number } => (number == b.number).then_some(number),
                        Position::Block { block, first } => (block.number + 1 == b.number
                            && block.hash == b.parent_hash)
                            .then_some(first),
                    };
                    if let Some(first) = first {
                        self.push(
                            &id,
                            EventKind::Commit,
                            b.clone(),
                            Position::Block {
                                block: ev.block_ref(),
                                first,
                            },
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Plans past blocks for `id` up to `target` (inclusive), within budget,
    /// stopping at a block that is unavailable or does not link to its cursor.
    pub(super) fn catch_up(&mut self, runner: &Runner, id: &FunctionId, target: u64) -> Result<()> {
        self.revert_orphaned(runner, id)?;
        loop {
            let pos = self.positions[id];
            let (next, parent, first) = match pos {
                Position::Head => return Ok(()),
                Position::From { number } => (number, None, number),
                Position::Block { block, first } => (block.number + 1, Some(block.hash), first),
            };
            let budget = self
                .budget
                .get_mut(id)
                .expect("budget per planned function");
            if next > target || *budget == 0 {
                return Ok(());
            }
            *budget -= 1;
            let Some(block) = runner.lookup(next) else {
                tracing::debug!(id = %id, number = next, "backfill: block not available yet");
                return Ok(());
            };
            if parent.is_some_and(|p| p != block.parent_hash) {
                tracing::warn!(id = %id, number = next, "backfill: block does not extend the function's cursor");
                return Ok(());
            }
            let after = Position::Block {
                block: block_ref(&block),
                first,
            };
            self.push(id, EventKind::Commit, block, after)?;
        }
    }
}

/// Where a function stands after the revert of `b` (it started at `first`).
fn reverted(b: &ChainBlock, first: u64) -> Position {
    if b.number <= first {
        Position::From { number: first }
    } else {
        Position::Block {
            block: BlockRef {
                number: b.number - 1,
                hash: b.parent_hash,
            },
            first,
        }
    }
}
