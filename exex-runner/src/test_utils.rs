//! Test harness (feature `test-utils`): a runner in a temporary directory,
//! modules from a real in-memory `xxfunc-store`, and helpers to send events and
//! assert outputs, in the spirit of reth's `test_exex_context()`.

use std::{path::Path, sync::Arc};

use tempfile::TempDir;
use xxfunc_abi::ChainBlock;
use xxfunc_api::{
    DesiredState, FunctionId, FunctionReport, FunctionSpec, InvocationRecord, InvocationStatus,
    StartFrom,
};
use xxfunc_store::{ModuleHash, ModuleStore};

use crate::{
    config::RunnerConfig,
    error::Result,
    modules::StoreModules,
    runner::{BatchSummary, Runner},
    source::ChainEvent,
};

/// A runner on a temporary data directory with a `memory://` module store.
pub struct Harness {
    runner: Option<Runner>,
    store: Arc<StoreModules>,
    dir: TempDir,
    generation: u64,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// A harness with default configuration.
    ///
    /// # Errors
    /// When the runner cannot be opened.
    pub fn new() -> Result<Self> {
        Self::with_config(|_| {})
    }

    /// A harness whose configuration `tweak` adjusts (the data directory is
    /// set by the harness).
    ///
    /// # Errors
    /// When the runner cannot be opened.
    pub fn with_config(tweak: impl FnOnce(&mut RunnerConfig)) -> Result<Self> {
        let dir = tempfile::tempdir().map_err(|source| crate::RunnerError::Artifact {
            path: std::env::temp_dir(),
            source,
        })?;
        let mut config = RunnerConfig::new(dir.path());
        tweak(&mut config);
        let store =
            ModuleStore::open("memory://").map_err(|e| crate::RunnerError::ModuleStore {
                what: "opening memory://".into(),
                source: Box::new(e),
            })?;
        let store = Arc::new(StoreModules::new(store)?);
        let runner = Runner::open(config, store.clone())?;
        Ok(Self {
            runner: Some(runner),
            store,
            dir,
            generation: 0,
        })
    }

    /// The runner under test.
    pub fn runner(&self) -> &Runner {
        self.runner
            .as_ref()
            .expect("the harness always holds a runner between calls")
    }

    /// The runner under test, mutably.
    pub fn runner_mut(&mut self) -> &mut Runner {
        self.runner
            .as_mut()
            .expect("the harness always holds a runner between calls")
    }

    /// The module source the runner fetches from.
    pub fn modules(&self) -> Arc<StoreModules> {
        self.store.clone()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Reopens the runner on the same directory (a restart).
    ///
    /// # Errors
    /// When the runner cannot be reopened.
    pub fn restart(&mut self) -> Result<()> {
        let config = self.runner().config().clone();
        // Drop the old runner first: RocksDB allows one opener per directory.
        self.runner = None;
        self.runner = Some(Runner::open(config, self.store.clone())?);
        Ok(())
    }

    /// Stores `bytes` in the module store and returns the hash.
    ///
    /// # Errors
    /// When the store rejects them.
    pub fn put_module(&self, bytes: &[u8]) -> Result<ModuleHash> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|source| crate::RunnerError::Runtime {
                what: "test harness".into(),
                source,
            })?;
        runtime
            .block_on(self.store.store().put(bytes.to_vec()))
            .map(|o| o.hash)
            .map_err(|e| crate::RunnerError::ModuleStore {
                what: "storing a module".into(),
                source: Box::new(e),
            })
    }

    /// Stores `bytes` and starts them as function `name` from `start`.
    ///
    /// # Errors
    /// When the module cannot be stored or the start persisted.
    ///
    /// # Panics
    /// When `name` is not a valid function name (a mistake in the test).
    pub fn start(&mut self, name: &str, bytes: &[u8], start: StartFrom) -> Result<FunctionId> {
        let hash = self.put_module(bytes)?;
        let id: FunctionId = match name.parse() {
            Ok(id) => id,
            Err(e) => panic!("the test names a function {name:?}: {e}"),
        };
        self.generation += 1;
        let spec = FunctionSpec {
            id: id.clone(),
            hash,
            desired: DesiredState::Started,
            start,
            start_generation: self.generation,
        };
        self.runner_mut().apply(&spec)?;
        Ok(id)
    }

    /// Sends one commit of `block`.
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn send_commit(&mut self, block: &ChainBlock) -> Result<BatchSummary> {
        self.runner_mut()
            .process(&[ChainEvent::commit(0, block.clone())])
    }

    /// Sends one revert of `block`.
    ///
    /// # Errors
    /// As [`Runner::process`].
    pub fn send_revert(&mut self, block: &ChainBlock) -> Result<BatchSummary> {
        self.runner_mut()
            .process(&[ChainEvent::revert(0, block.clone())])
    }

    /// Every kept invocation record of `id`.
    ///
    /// # Panics
    /// When the function is unknown or the database fails.
    pub fn records(&self, id: &FunctionId) -> Vec<InvocationRecord> {
        self.runner()
            .outputs(id)
            .expect("reading invocation records")
    }

    /// The report of `id`.
    ///
    /// # Panics
    /// When the function is unknown.
    pub fn report(&self, id: &FunctionId) -> FunctionReport {
        self.runner()
            .function_report(id)
            .expect("function is known to the runner")
    }

    /// Asserts that the stdout of `id`'s records, in order, equals `expected`.
    ///
    /// # Panics
    /// When they differ (showing both).
    pub fn assert_output(&self, id: &FunctionId, expected: &[&str]) {
        let got: Vec<String> = self.records(id).into_iter().map(|r| r.stdout).collect();
        assert_eq!(got, expected, "outputs of {id}");
    }

    /// Asserts that every record of `id` failed with a reason containing
    /// `needle`, and that there is at least one.
    ///
    /// # Panics
    /// When one succeeded or has another reason.
    pub fn assert_failed_with(&self, id: &FunctionId, needle: &str) {
        let records = self.records(id);
        assert!(!records.is_empty(), "{id} has no invocation records");
        for r in records {
            match &r.status {
                InvocationStatus::Failed { reason } => {
                    assert!(
                        reason.contains(needle),
                        "{id}: reason {reason:?} does not mention {needle:?}"
                    )
                }
                InvocationStatus::Ok => {
                    panic!("{id}: invocation on block {} succeeded", r.block.number)
                }
            }
        }
    }
}
