//! Execution and group commit: a plan's deliveries run on the workers, then
//! every cursor, counter, invocation record, recent block and the source
//! checkpoint go to disk in one synced batch.

use std::time::{SystemTime, UNIX_EPOCH};

use xxfunc_abi::EventKind;
use xxfunc_api::{InvocationRecord, InvocationStatus};

use super::{BatchSummary, Runner, api_kind, planner::Planner, report::RECENT_RECORDS};
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
        for ((id, job), outcomes) in ids.iter().zip(&jobs).zip(results) {
            let f = self.functions.get_mut(id).expect("planned functions exist");
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
                let record = InvocationRecord {
                    id: id.clone(),
                    hash: f.rec.hash,
                    kind: api_kind(d.kind),
                    block: block_ref(&d.block),
                    status: o.status,
                    duration_us: o.duration.as_micros() as u64,
                    stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
                    at_ms: now_ms,
                };
                batch.put_record(id, f.rec.next_record, &record);
                f.rec.next_record += 1;
                f.rec.position = d.after;
                if self.recent.len() >= RECENT_RECORDS {
                    self.recent.pop_front();
                }
                self.recent.push_back(record);
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
            if f.rec.next_record > self.config.keep_records {
                batch.prune_records(id, f.rec.next_record - self.config.keep_records);
            }
            batch.put_function(&f.rec);
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
        self.totals.invocations += summary.invocations;
        self.totals.failures += summary.failures;
        Ok(summary)
    }
}
