//! [`LocalRegistry`] (feature `local-registry`): the runner's [`Registry`]
//! seam over the in-process RocksDB registry (`xxfunc-registry`), for offline
//! runs and `cargo xxfunc dev`.

use std::time::Duration;

use xxfunc_api::{
    FeedPage, FeedSnapshot, RunnerReport,
    outputs::{OutcomesAck, OutcomesPage},
};

use crate::{
    error::{Result, RunnerError},
    registry::Registry,
};

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
    /// [`RunnerError::RegistryOpen`] when it cannot be opened.
    pub fn open(dir: &std::path::Path, runner_id: impl Into<String>) -> Result<Self> {
        let registry =
            xxfunc_registry::Registry::open(dir).map_err(|e| RunnerError::RegistryOpen {
                dir: dir.to_path_buf(),
                source: Box::new(e),
            })?;
        Ok(Self::new(registry, runner_id))
    }

    /// The wrapped registry.
    pub fn registry(&self) -> &xxfunc_registry::Registry {
        &self.registry
    }
}

impl Registry for LocalRegistry {
    fn snapshot(&self) -> Result<FeedSnapshot> {
        self.registry.snapshot().map_err(registry_error)
    }

    fn wait_changes(&self, after: u64, timeout: Duration) -> Result<FeedPage> {
        self.registry
            .wait_feed(after, timeout)
            .map_err(registry_error)
    }

    fn report(&self, report: &RunnerReport) -> Result<()> {
        self.registry
            .record_report(&self.runner_id, report)
            .map_err(registry_error)
    }

    fn push_outcomes(&self, page: &OutcomesPage) -> Result<OutcomesAck> {
        self.registry
            .record_outcomes(&self.runner_id, page)
            .map_err(registry_error)
    }
}

fn registry_error(e: xxfunc_registry::RegistryError) -> RunnerError {
    RunnerError::Registry {
        source: Box::new(e),
    }
}
