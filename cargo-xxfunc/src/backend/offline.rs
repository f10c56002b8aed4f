//! The offline backend: the module store and RocksDB registry under the local
//! data directory, used in-process.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xxfunc_api::{
    FunctionId, FunctionName, FunctionView, GcResponse, LogsPage, ModuleHash, PinResponse,
    Selector, StartFrom,
};
use xxfunc_registry::{Registry, RegistryError};
use xxfunc_store::{ModuleStore, StoreError};

use super::DeployOutput;
use crate::{exit_codes, failure::fail, wasm_build::Built};

/// Directory of the registry inside the data directory.
pub(crate) const REGISTRY_DIR: &str = "registry";
/// Directory of the default file store inside the data directory.
pub(crate) const MODULES_DIR: &str = "modules";
/// File `cargo xxfunc dev` writes with its gateway URL and token while it runs.
pub(crate) const DEV_FILE: &str = "dev.json";

/// The local store and registry.
pub(crate) struct Offline {
    pub(crate) data_dir: PathBuf,
    pub(crate) store: ModuleStore,
    pub(crate) registry: Registry,
}

/// What `cargo xxfunc dev` records in `<data-dir>/dev.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct DevInfo {
    /// Where the embedded gateway listens.
    pub(crate) gateway: String,
    /// Its bearer token.
    pub(crate) token: String,
    /// Process id of `cargo xxfunc dev`.
    pub(crate) pid: u32,
}

/// The default store URL for a data directory: `file://<dir>/modules`.
pub(crate) fn default_store_url(data_dir: &Path) -> anyhow::Result<String> {
    let dir = std::path::absolute(data_dir.join(MODULES_DIR))
        .with_context(|| format!("resolving {}", data_dir.display()))?;
    let url = url::Url::from_directory_path(&dir)
        .map_err(|()| anyhow::anyhow!("{} is not an absolute path", dir.display()))?;
    Ok(url.to_string())
}

/// Opens the registry under `data_dir`, explaining a lock held by `cargo xxfunc dev`.
pub(crate) fn open_registry(data_dir: &Path) -> anyhow::Result<Registry> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data directory {}", data_dir.display()))?;
    let path = data_dir.join(REGISTRY_DIR);
    Registry::open(&path).map_err(|e| match &e {
        RegistryError::Locked { .. } => {
            let hint = match read_dev_info(data_dir) {
                Some(dev) => format!(
                    "`cargo xxfunc dev` (pid {}) is using it; talk to its gateway instead: \
                     --gateway {} --token {} (without --offline)",
                    dev.pid, dev.gateway, dev.token
                ),
                None => "another process (e.g. `cargo xxfunc dev`) is using it; stop it or use \
                         its gateway without --offline"
                    .to_string(),
            };
            fail(
                exit_codes::CONFLICT,
                format!("the local registry at {} is locked: {hint}", path.display()),
            )
        }
        _ => anyhow::Error::new(e),
    })
}

/// Reads `<data-dir>/dev.json` if a `cargo xxfunc dev` wrote one.
pub(crate) fn read_dev_info(data_dir: &Path) -> Option<DevInfo> {
    let text = std::fs::read_to_string(data_dir.join(DEV_FILE)).ok()?;
    serde_json::from_str(&text).ok()
}

impl Offline {
    pub(crate) fn open(data_dir: &Path, store_url: &str) -> anyhow::Result<Self> {
        let registry = open_registry(data_dir)?;
        let store = ModuleStore::open(store_url).map_err(|e| store_error(e, store_url))?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
            store,
            registry,
        })
    }

    pub(crate) fn describe(&self) -> String {
        format!("the local registry in {}", self.data_dir.display())
    }

    pub(crate) async fn deploy(
        &self,
        name: &FunctionName,
        built: &Built,
    ) -> anyhow::Result<DeployOutput> {
        let put = self
            .store
            .put(built.bytes.clone())
            .await
            .map_err(|e| store_error(e, self.store.description()))?;
        let bind = self
            .registry
            .bind(name, put.hash)
            .map_err(|e| self.registry_error(e))?;
        Ok(DeployOutput {
            bind,
            size: put.size,
            created: put.created,
            path: Some(built.output.path.clone()),
        })
    }

    /// Resolves what the user typed to a function identity; hash prefixes are
    /// matched against the registry and the store.
    pub(crate) async fn resolve(&self, selector: &str) -> anyhow::Result<FunctionId> {
        let selector: Selector = selector
            .parse()
            .map_err(|e: xxfunc_api::InvalidSelector| fail(exit_codes::USAGE, e.to_string()))?;
        let needs_store = self
            .registry
            .needs_store_modules(&selector)
            .map_err(|e| self.registry_error(e))?;
        let store_modules = if needs_store {
            self.store
                .list()
                .await
                .map_err(|e| store_error(e, self.store.description()))?
        } else {
            Vec::new()
        };
        self.registry
            .resolve(&selector, &store_modules)
            .map_err(|e| self.registry_error(e))
    }

    pub(crate) async fn start(
        &self,
        selector: &str,
        from: StartFrom,
    ) -> anyhow::Result<FunctionView> {
        let id = self.resolve(selector).await?;
        if let FunctionId::Hash(hash) = &id
            && !self
                .store
                .contains(hash)
                .await
                .map_err(|e| store_error(e, self.store.description()))?
        {
            return Err(fail(
                exit_codes::NOT_FOUND,
                format!(
                    "module {hash} is not in the store {}; deploy it first with \
                     `cargo xxfunc deploy --offline`",
                    self.store.description()
                ),
            ));
        }
        self.registry
            .start(&id, from)
            .map_err(|e| self.registry_error(e))?;
        self.function_id(&id)
    }

    pub(crate) async fn stop(&self, selector: &str) -> anyhow::Result<FunctionView> {
        let id = self.resolve(selector).await?;
        self.registry
            .stop(&id)
            .map_err(|e| self.registry_error(e))?;
        self.function_id(&id)
    }

    pub(crate) async fn pin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        let id = self.resolve(selector).await?;
        self.registry.pin(&id).map_err(|e| self.registry_error(e))
    }

    pub(crate) async fn unpin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        let id = self.resolve(selector).await?;
        self.registry.unpin(&id).map_err(|e| self.registry_error(e))
    }

    pub(crate) fn list(&self) -> anyhow::Result<Vec<FunctionView>> {
        self.registry.list().map_err(|e| self.registry_error(e))
    }

    pub(crate) async fn function(&self, selector: &str) -> anyhow::Result<FunctionView> {
        let id = self.resolve(selector).await?;
        self.function_id(&id)
    }

    fn function_id(&self, id: &FunctionId) -> anyhow::Result<FunctionView> {
        self.registry
            .function(id)
            .map_err(|e| self.registry_error(e))
    }

    pub(crate) async fn logs(&self, selector: &str, limit: usize) -> anyhow::Result<LogsPage> {
        let id = self.resolve(selector).await?;
        self.registry
            .logs(&id, limit)
            .map_err(|e| self.registry_error(e))
    }

    pub(crate) async fn gc(&self, dry_run: bool) -> anyhow::Result<GcResponse> {
        let referenced = self
            .registry
            .referenced_hashes()
            .map_err(|e| self.registry_error(e))?;
        let stored = self
            .store
            .list()
            .await
            .map_err(|e| store_error(e, self.store.description()))?;
        let (keep, remove): (Vec<ModuleHash>, Vec<ModuleHash>) =
            stored.into_iter().partition(|h| referenced.contains(h));
        if !dry_run {
            for hash in &remove {
                self.store
                    .delete(hash)
                    .await
                    .map_err(|e| store_error(e, self.store.description()))?;
            }
        }
        Ok(GcResponse {
            removed: remove,
            kept: keep.len() as u64,
            dry_run,
        })
    }

    fn registry_error(&self, e: RegistryError) -> anyhow::Error {
        registry_error(e, &self.describe())
    }
}

/// Maps a registry error to a [`Failure`](crate::failure::Failure) with the right exit code.
pub(crate) fn registry_error(e: RegistryError, on: &str) -> anyhow::Error {
    let code = match &e {
        e if e.is_not_found() => exit_codes::NOT_FOUND,
        RegistryError::Ambiguous { .. } => exit_codes::AMBIGUOUS,
        _ => return anyhow::Error::new(e).context(format!("on {on}")),
    };
    fail(code, format!("{e} (on {on})"))
}

/// Maps a store error to a [`Failure`](crate::failure::Failure) with the right exit code.
pub(crate) fn store_error(e: StoreError, store: &str) -> anyhow::Error {
    let code = match &e {
        StoreError::NotFound { .. } | StoreError::PrefixNotFound { .. } => exit_codes::NOT_FOUND,
        StoreError::Ambiguous { .. } => exit_codes::AMBIGUOUS,
        StoreError::InvalidHash { .. } | StoreError::InvalidUrl { .. } => exit_codes::USAGE,
        StoreError::TooLarge { .. } => exit_codes::INVALID_MODULE,
        _ => return anyhow::Error::new(e).context(format!("module store {store}")),
    };
    fail(code, format!("{e} (module store {store})"))
}
