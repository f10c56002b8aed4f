//! Desired state: where the runner learns which functions to run, and where
//! it reports what it is doing. Implemented for the in-process RocksDB
//! registry (`LocalRegistry`, feature `local-registry`) and the gateway's
//! change feed (`GatewayRegistry`, feature `gateway`).

use std::time::Duration;

use xxfunc_api::{
    FeedPage, FeedSnapshot, RunnerReport,
    outputs::{OutcomesAck, OutcomesPage},
};

use crate::error::Result;

/// The registry as a runner sees it.
pub trait Registry: Send + Sync {
    /// Every function's spec and the feed position the snapshot reflects.
    ///
    /// # Errors
    /// A [`RunnerError`](crate::RunnerError) naming the registry when the registry cannot be read.
    fn snapshot(&self) -> Result<FeedSnapshot>;

    /// Feed entries after `after`, waiting up to `timeout` for the first.
    ///
    /// # Errors
    /// A [`RunnerError`](crate::RunnerError) naming the registry when the registry cannot be read.
    fn wait_changes(&self, after: u64, timeout: Duration) -> Result<FeedPage>;

    /// Records the runner's view of its functions.
    ///
    /// # Errors
    /// A [`RunnerError`](crate::RunnerError) naming the registry when the report cannot be stored.
    fn report(&self, report: &RunnerReport) -> Result<()>;

    /// Stores a page of one function's outcome log (consecutive outcomes of
    /// this runner, by seq; storing is idempotent by seq) and answers what
    /// the registry now holds of it. Called from the runner's pusher thread,
    /// never its control thread; a page is at most a few MiB.
    ///
    /// # Errors
    /// A [`RunnerError`](crate::RunnerError) naming the registry when the page cannot be stored;
    /// the runner keeps the outcomes and sends them again.
    fn push_outcomes(&self, page: &OutcomesPage) -> Result<OutcomesAck>;
}
