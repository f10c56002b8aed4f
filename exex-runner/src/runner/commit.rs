//! Execution and group commit: a plan's deliveries run on the workers, then
//! every cursor, counter, outcome (appended to its function's outcome log),
//! the pruning retention decided, recent block and the source checkpoint go
//! to disk in one synced batch.
//!
//! Isolation: the batch waits for its jobs at most
//! [`RunnerConfig::detach_after`](crate::RunnerConfig::detach_after), and not
//! at all for functions whose last invocation was slow (they run on threads of
//! their own at once). What is still running then is committed by a later
//! batch, with the outcomes of every job that finished meanwhile; until then
//! its function is busy and is not planned (it catches up afterwards).

use std::{
    collections::{HashMap, HashSet},
    time::{Instant, SystemTime, UNIX_EPOCH},
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
    dispatch::{Cutoffs, Done, Job, Lane, Running},
    error::Result,
    source::block_ref,
    state::BlockAt,
    state_db::Checkpoint,
};

/// Fast jobs in a row that bring a slow function back to the normal lane.
const FAST_JOBS_TO_LEAVE_SLOW_LANE: u32 = 8;

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
        let mut jobs = Vec::new();
        let mut slow_jobs = Vec::new();
        for (id, deliveries) in planner.plans {
            if deliveries.is_empty() {
                continue;
            }
            let f = &self.functions[&id];
            let module = f
                .module
                .clone()
                .expect("only runnable functions are planned");
            let job = Job {
                id: id.clone(),
                generation: f.rec.start_generation,
                hash: f.rec.hash,
                module,
                deliveries,
                consecutive_failures: f.rec.counters.consecutive_failures,
                state: self.state.clone(),
            };
            if self.slow.contains_key(&id) {
                slow_jobs.push(job);
            } else {
                jobs.push(job);
            }
        }
        let cutoffs = Cutoffs {
            quarantine_after: self.config.quarantine_after,
            slow: self.config.slow_invocation,
        };
        let engine = self.cache.engine().clone();
        let workers = self.config.workers;
        if !slow_jobs.is_empty() {
            self.running.push(Running::start(
                &engine,
                slow_jobs,
                Lane::Slow,
                workers,
                cutoffs,
            ));
        }
        let mut finished: Vec<Done> = std::mem::take(&mut self.ready);
        if !jobs.is_empty() {
            let mut now = Running::start(&engine, jobs, Lane::Normal, workers, cutoffs);
            // Threads left running by earlier batches are bounded: with as many
            // sets as workers still out, this batch waits for all of its jobs.
            let left_running = self
                .running
                .iter()
                .filter(|r| r.lane() == Lane::Normal)
                .count();
            if left_running >= workers.max(1) {
                now.take_all(&mut finished);
            } else {
                now.take(
                    Some(Instant::now() + self.config.detach_after),
                    &mut finished,
                );
            }
            if !now.is_empty() {
                tracing::debug!(busy = ?now.busy(), "committing without functions still running");
                now.detach();
            }
            self.running.push(now);
        }
        for running in &mut self.running {
            running.take(None, &mut finished);
        }
        self.running.retain(|r| !r.is_empty());
        if finished.is_empty() && checkpoint.is_none() {
            return Ok(BatchSummary::default());
        }
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut summary = BatchSummary::default();
        let mut batch = self.db.batch();
        let mut fresh: HashMap<FunctionId, Vec<Fresh>> = HashMap::new();
        // State answers stored in this batch (ten functions reading one slot store it once).
        let mut answers = HashSet::new();
        for Done {
            job,
            outcomes,
            unavailable,
        } in finished
        {
            let id = &job.id;
            let Some(f) = self.functions.get_mut(id) else {
                continue;
            };
            if !f.rec.started || f.rec.start_generation != job.generation || f.rec.hash != job.hash
            {
                tracing::debug!(id = %id, "not committing a job its function outlived (restart, redeploy or stop)");
                continue;
            }
            let slow = outcomes
                .iter()
                .any(|o| o.duration >= self.config.slow_invocation);
            if slow {
                self.slow.insert(id.clone(), 0);
            } else if let Some(fast) = self.slow.get_mut(id) {
                // Back to the normal lane only after a run of fast jobs, so a
                // function that is slow every other time cannot hold batches back.
                *fast += 1;
                if *fast >= FAST_JOBS_TO_LEAVE_SLOW_LANE {
                    self.slow.remove(id);
                }
            }
            let added = fresh.entry(id.clone()).or_default();
            for (d, o) in job.deliveries.iter().zip(outcomes) {
                self.metrics.observe(id, o.duration);
                if d.kind == EventKind::Commit {
                    let at = BlockAt {
                        number: d.block.number,
                        hash: d.block.hash,
                    };
                    for (request, answer) in &o.reads {
                        if answers.insert((at, request.clone())) {
                            batch.put_state_answer(&at, request, answer);
                        }
                    }
                }
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
            match unavailable {
                Some((number, reason)) => {
                    // Not the function's outcome: it stays at its cursor, runs the
                    // event again after a backoff, and says why in its status.
                    summary.unavailable += 1;
                    let attempts = self.retry.get(id).map_or(1, |r| r.attempts + 1);
                    self.retry.insert(id.clone(), super::Retry::after(attempts));
                    let error = format!("retrying: state unavailable at block {number}: {reason}");
                    if f.rec.last_error.as_ref() != Some(&error) {
                        if attempts == 1 {
                            tracing::warn!(id = %id, "{error}");
                        }
                        f.rec.last_error = Some(error);
                        fresh.entry(id.clone()).or_default();
                    }
                }
                None => {
                    if self.retry.remove(id).is_some()
                        && f.rec
                            .last_error
                            .as_deref()
                            .is_some_and(|e| e.starts_with("retrying: state unavailable"))
                    {
                        f.rec.last_error = None;
                        fresh.entry(id.clone()).or_default();
                    }
                }
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
        // State answers (stored and cached) are kept while their block may still be
        // reverted; without a state source none are written, so none are pruned.
        let keep = self.config.finality_depth.max(self.config.reorg_blocks);
        let state_below = self
            .state
            .as_ref()
            .and(tip)
            .map(|tip| tip.saturating_sub(keep));
        if let Some(cp) = checkpoint {
            if let Some(tip) = cp.tip
                && !blocks.is_empty()
            {
                batch.prune_blocks(tip.number.saturating_sub(self.config.reorg_blocks - 1));
            }
            batch.put_checkpoint(&cp);
            if let Some(below) = state_below {
                batch.prune_state_answers(below);
            }
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
        self.totals.unavailable += summary.unavailable;
        if let (Some(state), Some(below)) = (&self.state, state_below) {
            state.cache().forget_below(below);
        }
        Ok(summary)
    }
}
