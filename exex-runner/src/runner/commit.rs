//! Execution and group commit: a plan's deliveries run on the workers, then
//! every cursor, counter, outcome (appended to its function's outcome log),
//! the pruning retention decided, recent block and the source checkpoint go
//! to disk in one synced batch.

use std::{
    collections::HashMap,
    time::{SystemTime, UNIX_EPOCH},
};

use xxfunc_abi::EventKind;
use xxfunc_api::{
    FunctionId, InvocationStatus,
    outputs::{Bytes64, OutcomeEntry},
};

use super::{
    BatchSummary, Runner, api_kind, bounds,
    planner::Planner,
    retention::{Fresh, Policy, retain},
};
use crate::{
    dispatch::{self, Job},
    error::Result,
    source::block_ref,
    state_db::Checkpoint,
};

impl Runner {
    pub(super) fn execute(
        &mut self,
        mut planner: Planner,
        checkpoint: Option<Checkpoint>,
    ) -> Result<BatchSummary> {
        let mut blocks = Vec::with_capacity(planner.chain.len());
        if self.config.reorg_blocks > 0 {
            for (kind, block) in std::mem::take(&mut planner.chain) {
                let envelope = match kind {
                    EventKind::Commit => Some(planner.envelope(EventKind::Commit, &block)?),
                    EventKind::Revert => None,
                };
                blocks.push((block.number, envelope));
            }
        }
        let mut ids = Vec::new();
        let mut jobs = Vec::new();
        for (id, deliveries) in planner.plans {
            if deliveries.is_empty() {
                continue;
            }
            let f = &self.functions[&id];
            let module = f
                .module
                .clone()
                .expect("only runnable functions are planned");
            jobs.push(Job {
                module,
                deliveries,
                consecutive_failures: f.rec.counters.consecutive_failures,
            });
            ids.push(id);
        }
        if jobs.is_empty() && checkpoint.is_none() {
            return Ok(BatchSummary::default());
        }
        let results = dispatch::run_jobs(
            self.cache.engine(),
            &jobs,
            self.config.workers,
            self.config.quarantine_after,
        );
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut summary = BatchSummary::default();
        let mut batch = self.db.batch();
        let mut fresh: HashMap<FunctionId, Vec<Fresh>> = HashMap::new();
        for ((id, job), outcomes) in ids.iter().zip(&jobs).zip(results) {
            let f = self.functions.get_mut(id).expect("planned functions exist");
            let added = fresh.entry(id.clone()).or_default();
            for (d, o) in job.deliveries.iter().zip(outcomes) {
                self.metrics.observe(id, o.duration);
                summary.invocations += 1;
                f.rec.counters.invocations += 1;
                if let InvocationStatus::Failed { reason } = &o.status {
                    summary.failures += 1;
                    f.rec.counters.failures += 1;
                    f.rec.counters.consecutive_failures += 1;
                    f.rec.last_error = Some(reason.clone());
                } else {
                    f.rec.counters.consecutive_failures = 0;
                }
                let mut entry = OutcomeEntry {
                    seq: f.rec.last_seq + 1,
                    kind: api_kind(d.kind),
                    block: block_ref(&d.block),
                    hash: f.rec.hash,
                    status: o.status,
                    duration_us: o.duration.as_micros() as u64,
                    at_ms: now_ms,
                    stdout: Bytes64(o.stdout),
                    stderr: Bytes64(o.stderr),
                    first_item: f.rec.last_item + 1,
                    item_count: 0,
                };
                entry.item_count = entry.count_records();
                let bytes = batch.put_outcome(id, &entry) as u64;
                f.rec.last_seq = entry.seq;
                f.rec.last_item += u64::from(entry.item_count);
                f.rec.kept_bytes += bytes;
                added.push(Fresh {
                    seq: entry.seq,
                    bytes,
                    number: entry.block.number,
                });
                f.rec.position = d.after;
            }
            if f.rec.counters.consecutive_failures >= self.config.quarantine_after {
                let reason = format!(
                    "{} consecutive failures; last: {}",
                    f.rec.counters.consecutive_failures,
                    f.rec.last_error.as_deref().unwrap_or("unknown")
                );
                tracing::warn!(id = %id, "quarantined: {reason}");
                f.rec.quarantined = Some(reason);
            }
        }
        // Retention, for every function (the tip moved for all of them).
        let tip = checkpoint
            .map_or(self.checkpoint.tip, |cp| cp.tip)
            .map(|t| t.number);
        let mut changed = Vec::new();
        for (id, f) in &mut self.functions {
            let added = fresh.remove(id);
            let policy = Policy {
                tip,
                depth: self.config.finality_depth,
                budget: self.config.outcome_budget_bytes,
                acked: self.log.acked_by_all(id),
            };
            let pruned = retain(
                &self.db,
                &mut batch,
                &mut f.rec,
                added.as_deref().unwrap_or_default(),
                policy,
            )?;
            if added.is_some() || pruned {
                batch.put_function(&f.rec);
                changed.push(id.clone());
            }
        }
        for (number, envelope) in &blocks {
            match envelope {
                Some(envelope) => batch.put_block(*number, envelope),
                None => batch.delete_blocks_from(*number),
            }
        }
        if let Some(cp) = checkpoint {
            if let Some(tip) = cp.tip
                && !blocks.is_empty()
            {
                batch.prune_blocks(tip.number.saturating_sub(self.config.reorg_blocks - 1));
            }
            batch.put_checkpoint(&cp);
        }
        batch.commit()?;
        if let Some(cp) = checkpoint {
            self.checkpoint = cp;
        }
        for id in &changed {
            self.log.publish(id, bounds(&self.functions[id].rec));
        }
        if !changed.is_empty() {
            self.log.notify();
        }
        self.totals.invocations += summary.invocations;
        self.totals.failures += summary.failures;
        Ok(summary)
    }
}
