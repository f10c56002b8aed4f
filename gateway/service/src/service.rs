//! [`Service`]: the registry and the module store behind one set of operations, plus the
//! lock and the options those operations share.

use std::{sync::Arc, time::Duration};

use tokio::sync::{RwLock, RwLockReadGuard};
use xxfunc_primitives::{FunctionId, ModuleHash};
use xxfunc_registry::Registry;
use xxfunc_store::ModuleStore;

use crate::error::{Result, ServiceError};

/// Default time a freshly uploaded module is safe from garbage collection.
pub const DEFAULT_UPLOAD_GRACE: Duration = Duration::from_secs(600);

/// Knobs of a [`Service`].
///
/// ```
/// use std::time::Duration;
/// use xxfunc_service::{DEFAULT_UPLOAD_GRACE, ServiceOptions};
///
/// assert_eq!(ServiceOptions::default().upload_grace, DEFAULT_UPLOAD_GRACE);
/// let none = ServiceOptions::default().with_upload_grace(Duration::ZERO);
/// assert_eq!(none.upload_grace, Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceOptions {
    /// How long a module uploaded through the service is safe from garbage collection
    /// although nothing refers to it yet, so that the bind following an upload (a
    /// second request, or a second step in another process) finds it. Measured from the
    /// upload record the store keeps ([`ModuleStore::put_recorded`]), so it holds across
    /// processes and restarts.
    pub upload_grace: Duration,
}

impl Default for ServiceOptions {
    fn default() -> Self {
        Self {
            upload_grace: DEFAULT_UPLOAD_GRACE,
        }
    }
}

impl ServiceOptions {
    /// Sets [`upload_grace`](Self::upload_grace).
    pub fn with_upload_grace(mut self, grace: Duration) -> Self {
        self.upload_grace = grace;
        self
    }
}

/// The operations of xxfunc on a registry and a module store, independent of any
/// transport. Cheap to clone (one `Arc`); clones share the garbage-collection lock, so
/// give every request handler of a process a clone of the same `Service`.
///
/// See the [crate docs](crate) for the rules it enforces.
#[derive(Clone)]
pub struct Service {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    store: ModuleStore,
    options: ServiceOptions,
    /// Garbage collection takes it exclusively; every operation that makes a module
    /// referenced (upload, deploy, bind, start, pin) holds it shared from its check to its
    /// registry write, so a collection never deletes a module in between.
    gc_lock: RwLock<()>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("registry", &self.inner.registry)
            .field("store", &self.inner.store)
            .field("options", &self.inner.options)
            .finish_non_exhaustive()
    }
}

impl Service {
    /// A service over `registry` and `store`.
    pub fn new(registry: Registry, store: ModuleStore, options: ServiceOptions) -> Self {
        Self {
            inner: Arc::new(Inner {
                registry,
                store,
                options,
                gc_lock: RwLock::new(()),
            }),
        }
    }

    /// The registry (for what is not a business rule: the change feed's long poll,
    /// health and metrics readings, an embedded runner).
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The module store.
    pub fn store(&self) -> &ModuleStore {
        &self.inner.store
    }

    /// The options it was created with.
    pub fn options(&self) -> &ServiceOptions {
        &self.inner.options
    }

    /// Runs a registry call on a blocking thread: RocksDB reads and synced writes must not
    /// stall an async worker.
    pub(crate) async fn registry_call<T, F>(&self, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Registry) -> xxfunc_registry::Result<T> + Send + 'static,
    {
        let registry = self.inner.registry.clone();
        tokio::task::spawn_blocking(move || call(&registry))
            .await
            .map_err(ServiceError::Worker)?
            .map_err(ServiceError::Registry)
    }

    /// Holds off garbage collection (shared) for an operation that is about to refer to
    /// modules.
    pub(crate) async fn hold(&self) -> RwLockReadGuard<'_, ()> {
        self.inner.gc_lock.read().await
    }

    /// Holds off garbage collection while an operation refers to `id`'s module, failing
    /// with [`ServiceError::ModuleNotStored`] when `id` is a hash the store does not hold.
    pub(crate) async fn hold_function(&self, id: &FunctionId) -> Result<RwLockReadGuard<'_, ()>> {
        let guard = self.hold().await;
        if let FunctionId::Hash(hash) = id {
            self.require_stored(hash).await?;
        }
        Ok(guard)
    }

    /// Fails with [`ServiceError::ModuleNotStored`] unless `hash` is stored.
    pub(crate) async fn require_stored(&self, hash: &ModuleHash) -> Result<()> {
        if self.inner.store.contains(hash).await? {
            Ok(())
        } else {
            Err(ServiceError::ModuleNotStored(*hash))
        }
    }

    /// Takes the garbage-collection lock exclusively.
    pub(crate) async fn exclusive(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.inner.gc_lock.write().await
    }
}
