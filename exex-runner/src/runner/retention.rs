//! Retention of the outcome logs, decided in the commit batch (so it never
//! costs a write of its own).
//!
//! A function's log is pruned from its oldest outcome on, and only as a
//! prefix (the log stays `pruned_to + 1 ..= last_seq`):
//!
//! - an outcome every consumer acknowledged whose block is final (at least
//!   `finality_depth` blocks below the tip) is pruned; without consumers,
//!   finality alone decides;
//! - while the log's encoded bytes exceed the budget, the oldest outcome is
//!   pruned whatever its state; each one pruned this way before every
//!   consumer acknowledged it is counted in `dropped_by_retention` and
//!   logged (with consumers; without any, nobody misses it).

use xxfunc_api::FunctionId;

use crate::{
    error::Result,
    state_db::{Batch, FunctionRecord, StateDb},
};

/// An outcome appended in the batch being built (not in the database yet).
#[derive(Clone, Copy, Debug)]
pub(super) struct Fresh {
    pub(super) seq: u64,
    pub(super) bytes: u64,
    /// Its block number.
    pub(super) number: u64,
}

/// What retention decides by, for one function.
#[derive(Clone, Copy, Debug)]
pub(super) struct Policy {
    /// The chain tip after the batch.
    pub(super) tip: Option<u64>,
    /// `RunnerConfig::finality_depth`.
    pub(super) depth: u64,
    /// `RunnerConfig::outcome_budget_bytes`.
    pub(super) budget: u64,
    /// The lowest acknowledgement over the consumers (`u64::MAX` without any).
    pub(super) acked: u64,
}

impl Policy {
    fn prunable(&self, seq: u64, number: u64) -> bool {
        seq <= self.acked
            && self
                .tip
                .is_some_and(|tip| number.saturating_add(self.depth) <= tip)
    }
}

/// Prunes what `policy` allows of `rec`'s log into `batch` (the outcomes in
/// the database, then `fresh`, oldest first), updating `rec`'s bounds, kept
/// bytes and `dropped_by_retention`. Returns whether it pruned anything.
///
/// # Errors
/// A database error while reading the oldest outcomes.
pub(super) fn retain(
    db: &StateDb,
    batch: &mut Batch<'_>,
    rec: &mut FunctionRecord,
    fresh: &[Fresh],
    policy: Policy,
) -> Result<bool> {
    let first = rec.pruned_to + 1;
    let over = rec.kept_bytes > policy.budget;
    if rec.last_seq < first || (!over && !policy.prunable(first, 0)) {
        // Nothing kept, or not even the oldest outcome could be pruned by the
        // rule (not acknowledged, or no block is final yet), and the budget
        // holds.
        return Ok(false);
    }
    let mut walk = Walk {
        policy,
        to: rec.pruned_to,
        kept: rec.kept_bytes,
        dropped: 0,
        first_dropped: None,
    };
    let mut more = true;
    db.walk_outcomes(&rec.id, rec.pruned_to, |seq, bytes, number| {
        more = walk.step(seq, bytes, number);
        more
    })?;
    if more {
        for f in fresh {
            if !walk.step(f.seq, f.bytes, f.number) {
                break;
            }
        }
    }
    if walk.to == rec.pruned_to {
        return Ok(false);
    }
    batch.prune_outcomes(&rec.id, walk.to);
    rec.pruned_to = walk.to;
    rec.kept_bytes = walk.kept;
    if walk.dropped > 0 {
        rec.counters.dropped_by_retention += walk.dropped;
        warn_dropped(
            &rec.id,
            &walk,
            policy.budget,
            rec.counters.dropped_by_retention,
        );
    }
    Ok(true)
}

struct Walk {
    policy: Policy,
    /// Prune up to this seq (inclusive).
    to: u64,
    kept: u64,
    dropped: u64,
    first_dropped: Option<u64>,
}

impl Walk {
    /// Considers the next oldest outcome; false when it stays (and so does
    /// everything after it).
    fn step(&mut self, seq: u64, bytes: u64, number: u64) -> bool {
        if !self.policy.prunable(seq, number) {
            if self.kept <= self.policy.budget {
                return false;
            }
            if seq > self.policy.acked {
                self.dropped += 1;
                self.first_dropped.get_or_insert(seq);
            }
        }
        self.kept = self.kept.saturating_sub(bytes);
        self.to = seq;
        true
    }
}

fn warn_dropped(id: &FunctionId, walk: &Walk, budget: u64, total: u64) {
    let from = walk.first_dropped.unwrap_or(walk.to);
    tracing::warn!(
        id = %id,
        dropped = walk.dropped,
        total,
        "outcome log over its budget of {budget} bytes: dropped {} outcome(s) (seqs {from}..={}) \
         before every consumer acknowledged them",
        walk.dropped,
        walk.to,
    );
}
