//! Where module bytes come from: the content-addressed module store.

use xxfunc_store::{ModuleHash, ModuleStore};

use crate::{
    blocking::BlockingRuntime,
    error::{Result, RunnerError},
};

/// A source of module bytes by hash. The runner verifies the bytes against
/// the hash before compiling, whatever the source promises.
pub trait ModuleSource: Send + Sync {
    /// The bytes of module `hash`.
    ///
    /// # Errors
    /// A [`RunnerError`] naming the module: [`RunnerError::ModuleFetch`]
    /// when the store does not have it or cannot be read.
    fn fetch(&self, hash: &ModuleHash) -> Result<Vec<u8>>;
}

/// [`ModuleSource`] over an `xxfunc-store` [`ModuleStore`] (file, S3 or
/// memory backend). Fetches block the calling thread on a private tokio
/// runtime, so call them from a plain thread (the runner's control thread),
/// not from inside an async task.
pub struct StoreModules {
    store: ModuleStore,
    runtime: BlockingRuntime,
}

impl std::fmt::Debug for StoreModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreModules")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl StoreModules {
    /// Wraps `store`.
    ///
    /// # Errors
    /// [`RunnerError::Runtime`] when its tokio runtime cannot be created.
    pub fn new(store: ModuleStore) -> Result<Self> {
        Ok(Self {
            store,
            runtime: BlockingRuntime::current_thread("module-store")?,
        })
    }

    /// The wrapped store.
    pub fn store(&self) -> &ModuleStore {
        &self.store
    }
}

impl ModuleSource for StoreModules {
    fn fetch(&self, hash: &ModuleHash) -> Result<Vec<u8>> {
        self.runtime
            .block_on(self.store.get(hash))
            .map(|bytes| bytes.to_vec())
            .map_err(|e| RunnerError::ModuleFetch {
                hash: *hash,
                source: Box::new(e),
            })
    }
}
