//! What the runner reports: the safe height, per-function reports and
//! invocation records.

use xxfunc_api::{FunctionId, FunctionReport, InvocationRecord, RunnerReport};

use super::Runner;
use crate::{
    error::{Result, RunnerError},
    state_db::Position,
};

/// Invocation records kept in memory for the next registry report.
pub(super) const RECENT_RECORDS: usize = 1024;

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

    /// The last `limit` invocation records of `id`, oldest first.
    ///
    /// # Errors
    /// [`RunnerError::UnknownFunction`], or a database error.
    pub fn records(&self, id: &FunctionId, limit: usize) -> Result<Vec<InvocationRecord>> {
        let f = self
            .functions
            .get(id)
            .ok_or_else(|| RunnerError::UnknownFunction(id.clone()))?;
        let from = f.rec.next_record.saturating_sub(limit as u64);
        self.db.records(id, from, limit)
    }

    /// The stdout of every successful invocation of `id` still kept, in order,
    /// tagged with the event kind and block number: `(kind, number, stdout)`.
    ///
    /// # Errors
    /// As [`Runner::records`].
    pub fn outputs(&self, id: &FunctionId) -> Result<Vec<InvocationRecord>> {
        self.records(id, usize::MAX)
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
        })
    }

    /// The runner's view of every function, without invocation records.
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

    /// [`Runner::report`] plus the invocation records since the previous call
    /// (at most the last 1024).
    pub fn take_report(&mut self) -> RunnerReport {
        let mut report = self.report();
        report.invocations = self.recent.drain(..).collect();
        report
    }

    /// The position of a function (cursor or pending start).
    pub fn position(&self, id: &FunctionId) -> Option<Position> {
        self.functions.get(id).map(|f| f.rec.position)
    }
}
