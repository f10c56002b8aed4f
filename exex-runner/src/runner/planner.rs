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
        let positions: BTreeMap<FunctionId, Position> = runner
            .functions
            .iter()
            .filter(|(_, f)| f.runnable())
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
                        let after = if b.number <= first {
                            Position::From { number: first }
                        } else {
                            Position::Block {
                                block: BlockRef {
                                    number: b.number - 1,
                                    hash: b.parent_hash,
                                },
                                first,
                            }
                        };
                        self.push(&id, EventKind::Revert, b.clone(), after)?;
                    }
                }
                EventKind::Commit => {
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
