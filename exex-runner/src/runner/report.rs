//! What the runner reports: the safe height, per-function reports, and the
//! outcome logs read by seq (and, for display, as invocation records).

use std::sync::Arc;

use xxfunc_api::{
    FunctionId, FunctionReport, InvocationRecord, RunnerReport, outputs::OutcomeEntry,
};

use super::Runner;
use crate::{
    error::{Result, RunnerError},
    outcome_log::OutcomeLog,
    state_db::{FunctionRecord, Position},
};

/// Outcomes read per page when a reader wants a whole range.
const READ_PAGE: usize = 256;

impl Runner {
    /// The lowest cursor over started, running functions: every such
    /// function has processed this height, so the node may be told it as
    /// `FinishedHeight`. With no running function it is the tip. Quarantined
    /// and stopped functions do not hold it back (they catch up from their
    /// cursor by number when they run again).
    pub fn safe_height(&self) -> Option<u64> {
        let tip = self.checkpoint.tip.map(|t| t.number);
        let mut lowest: Option<u64> = None;
        for f in self.functions.values().filter(|f| f.runnable()) {
            let h = match f.rec.position {
                Position::Block { block, .. } => Some(block.number),
                Position::From { number } => Some(number.saturating_sub(1)),
                Position::Head => tip,
            };
            if let Some(h) = h {
                lowest = Some(lowest.map_or(h, |l| l.min(h)));
            }
        }
        match (lowest, tip) {
            (Some(l), Some(t)) => Some(l.min(t)),
            (l, t) => l.or(t),
        }
    }

    fn record_of(&self, id: &FunctionId) -> Result<&FunctionRecord> {
        self.functions
            .get(id)
            .map(|f| &f.rec)
            .ok_or_else(|| RunnerError::UnknownFunction(id.clone()))
    }

    /// A page of `id`'s outcome log: the outcomes with seq > `after`, oldest
    /// first, at most `limit` of them and at most `max_bytes` of encoded
    /// outcomes (but at least one when there is one). Outcomes retention
    /// pruned are skipped: seqs are contiguous except where the log begins.
    /// stdout and stderr are the bytes the function wrote.
    ///
    /// # Errors
    /// [`RunnerError::UnknownFunction`], or a database error.
    pub fn outcomes(
        &self,
        id: &FunctionId,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutcomeEntry>> {
        self.record_of(id)?;
        self.db.outcomes(id, after, limit, max_bytes)
    }

    /// The seqs of `id`'s kept outcomes: `(pruned_to, last_seq)`, the log
    /// holding `pruned_to + 1 ..= last_seq`; and the last item seq.
    ///
    /// # Errors
    /// [`RunnerError::UnknownFunction`].
    pub fn outcome_bounds(&self, id: &FunctionId) -> Result<(u64, u64, u64)> {
        let rec = self.record_of(id)?;
        Ok((rec.pruned_to, rec.last_seq, rec.last_item))
    }

    /// Makes `consumer` (the registry's pusher, a sink) one whose
    /// acknowledgement retention waits for: from now on an outcome is pruned
    /// only once it acknowledged it (and its block is final), unless the
    /// budget forces it. Its stored acknowledgements are loaded. The
    /// registry's consumer is added by [`serve`](crate::serve).
    ///
    /// # Errors
    /// A database error.
    pub fn add_consumer(&self, consumer: &str) -> Result<()> {
        self.log.add_consumer(consumer)
    }

    /// Records (and stores) that `consumer` holds `id`'s outcomes up to
    /// `seq`; pruning takes it into account from the next commit on.
    ///
    /// # Errors
    /// A database error (the acknowledgement still holds in this process).
    pub fn acknowledge(&self, consumer: &str, id: &FunctionId, seq: u64) -> Result<()> {
        self.log.record_ack(consumer, id, seq)
    }

    /// The seq up to which `consumer` acknowledged `id`'s outcomes (0: none).
    pub fn acknowledged(&self, consumer: &str, id: &FunctionId) -> u64 {
        self.log.ack(consumer, id)
    }

    /// The last `limit` outcomes of `id` as invocation records, oldest first
    /// (stdout and stderr decoded lossily as UTF-8: for display; read
    /// [`Runner::outcomes`] for the bytes).
    ///
    /// # Errors
    /// [`RunnerError::UnknownFunction`], or a database error.
    pub fn records(&self, id: &FunctionId, limit: usize) -> Result<Vec<InvocationRecord>> {
        let rec = self.record_of(id)?;
        let after = rec.last_seq.saturating_sub(limit as u64).max(rec.pruned_to);
        let mut out = Vec::new();
        let mut next = after;
        while out.len() < limit && next < rec.last_seq {
            let page = self.db.outcomes(id, next, READ_PAGE, usize::MAX)?;
            let Some(last) = page.last() else { break };
            next = last.seq;
            out.extend(page.iter().map(|o| to_record(id, o)));
        }
        Ok(out)
    }

    /// Every outcome of `id` the log still keeps, in order, as invocation
    /// records (as [`Runner::records`]; the log is bounded by
    /// `RunnerConfig::outcome_budget_bytes`, so prefer [`Runner::outcomes`]
    /// to page through a large one).
    ///
    /// # Errors
    /// As [`Runner::records`].
    pub fn outputs(&self, id: &FunctionId) -> Result<Vec<InvocationRecord>> {
        self.records(id, usize::MAX)
    }

    /// The shared view of the outcome logs (bounds, acknowledgements), for
    /// the threads that consume them.
    pub(crate) fn outcome_log(&self) -> Arc<OutcomeLog> {
        self.log.clone()
    }

    /// One function's report.
    pub fn function_report(&self, id: &FunctionId) -> Option<FunctionReport> {
        self.functions.get(id).map(|f| FunctionReport {
            id: id.clone(),
            hash: f.rec.hash,
            observed: f.observed(),
            cursor: f.rec.position.cursor(),
            last_error: f.rec.last_error.clone(),
            counters: f.rec.counters,
            sinks: Vec::new(),
        })
    }

    /// The runner's view of every function. Outcomes travel in the outcome
    /// log, never in reports: `invocations` is always empty.
    pub fn report(&self) -> RunnerReport {
        RunnerReport {
            head: self.checkpoint.tip,
            safe_height: self.safe_height(),
            functions: self
                .functions
                .keys()
                .filter_map(|id| self.function_report(id))
                .collect(),
            invocations: Vec::new(),
        }
    }

    /// [`Runner::report`] (kept for callers of the report-carrying era:
    /// outcomes are pushed from the outcome log, never in reports).
    pub fn take_report(&mut self) -> RunnerReport {
        self.report()
    }

    /// The position of a function (cursor or pending start).
    pub fn position(&self, id: &FunctionId) -> Option<Position> {
        self.functions.get(id).map(|f| f.rec.position)
    }
}

/// An outcome as an invocation record, for display (`logs`, test output): the
/// only place its bytes are decoded, lossily.
pub(crate) fn to_record(id: &FunctionId, o: &OutcomeEntry) -> InvocationRecord {
    InvocationRecord {
        id: id.clone(),
        hash: o.hash,
        kind: o.kind,
        block: o.block,
        status: o.status.clone(),
        duration_us: o.duration_us,
        stdout: String::from_utf8_lossy(&o.stdout.0).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr.0).into_owned(),
        at_ms: o.at_ms,
    }
}
