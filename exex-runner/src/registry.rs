//! Desired state: where the runner learns which functions to run, and where
//! it reports what it is doing. Implemented here for the in-process RocksDB
//! registry (`xxfunc-registry`, offline and `cargo xxfunc dev`); the gateway's
//! HTTP client implements the same trait.

use std::time::Duration;

use xxfunc_api::{FeedPage, FeedSnapshot, RunnerReport};

use crate::error::{Result, RunnerError};

/// The registry as a runner sees it.
pub trait Registry: Send + Sync {
    /// Every function's spec and the feed position the snapshot reflects.
    ///
    /// # Errors
    /// [`RunnerError::Registry`] when the registry cannot be read.
    fn snapshot(&self) -> Result<FeedSnapshot>;

    /// Feed entries after `after`, waiting up to `timeout` for the first.
    ///
    /// # Errors
    /// [`RunnerError::Registry`] when the registry cannot be read.
    fn wait_changes(&self, after: u64, timeout: Duration) -> Result<FeedPage>;

    /// Records the runner's view of its functions.
    ///
    /// # Errors
    /// [`RunnerError::Registry`] when the report cannot be stored.
    fn report(&self, report: &RunnerReport) -> Result<()>;
}

/// The in-process registry, reporting under a runner id.
pub struct LocalRegistry {
    registry: xxfunc_registry::Registry,
    runner_id: String,
}

impl std::fmt::Debug for LocalRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRegistry")
            .field("runner_id", &self.runner_id)
            .finish_non_exhaustive()
    }
}

impl LocalRegistry {
    /// Wraps an open registry; reports are recorded under `runner_id`.
    pub fn new(registry: xxfunc_registry::Registry, runner_id: impl Into<String>) -> Self {
        Self {
            registry,
            runner_id: runner_id.into(),
        }
    }

    /// Opens the registry at `dir`.
    ///
    /// # Errors
    /// [`RunnerError::Registry`] when it cannot be opened.
    pub fn open(dir: &std::path::Path, runner_id: impl Into<String>) -> Result<Self> {
        let registry = xxfunc_registry::Registry::open(dir)
            .map_err(|e| RunnerError::Registry(format!("opening {}: {e}", dir.display())))?;
        Ok(Self::new(registry, runner_id))
    }

    /// The wrapped registry.
    pub fn registry(&self) -> &xxfunc_registry::Registry {
        &self.registry
    }
}

impl Registry for LocalRegistry {
    fn snapshot(&self) -> Result<FeedSnapshot> {
        self.registry
            .snapshot()
            .map_err(|e| RunnerError::Registry(e.to_string()))
    }

    fn wait_changes(&self, after: u64, timeout: Duration) -> Result<FeedPage> {
        self.registry
            .wait_feed(after, timeout)
            .map_err(|e| RunnerError::Registry(e.to_string()))
    }

    fn report(&self, report: &RunnerReport) -> Result<()> {
        self.registry
            .record_report(&self.runner_id, report)
            .map_err(|e| RunnerError::Registry(e.to_string()))
    }
}
