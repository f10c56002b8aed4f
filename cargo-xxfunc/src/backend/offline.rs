//! The offline backend: the module store and RocksDB registry under the local
//! data directory, used in-process through the same [`Service`] the gateway
//! serves. This file only opens them and maps [`ServiceError`]s to exit codes.

use std::path::{Path, PathBuf};

use anyhow::Context;
use xxfunc_api::{
    DeployResponse, FunctionName, FunctionView, GcResponse, LogsPage, PinResponse, StartFrom,
};
use xxfunc_registry::{Registry, RegistryError};
use xxfunc_service::{Service, ServiceError, ServiceOptions};
use xxfunc_store::{ModuleStore, StoreError};

use xxfunc_api::{
    outputs::{OutputsPage, OutputsQuery},
    sinks::{SinkConfig, SinksView},
};

use crate::{exit_codes, failure::fail};

/// Directory of the registry inside the data directory.
pub(crate) const REGISTRY_DIR: &str = "registry";
/// Directory of the default file store inside the data directory.
pub(crate) const MODULES_DIR: &str = "modules";
/// File `cargo xxfunc dev` writes with its gateway URL and token while it runs.
pub(crate) const DEV_FILE: &str = "dev.json";

/// The local store and registry.
pub(crate) struct Offline {
    pub(crate) data_dir: PathBuf,
    pub(crate) service: Service,
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

/// The local registry in `data_dir`, for messages.
pub(crate) fn describe(data_dir: &Path) -> String {
    format!("the local registry in {}", data_dir.display())
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
            service: Service::new(registry, store, ServiceOptions::default()),
        })
    }

    pub(crate) fn describe(&self) -> String {
        describe(&self.data_dir)
    }

    pub(crate) async fn deploy(
        &self,
        name: &FunctionName,
        module: Vec<u8>,
    ) -> anyhow::Result<DeployResponse> {
        self.service
            .deploy(name, module)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn start(
        &self,
        selector: &str,
        from: StartFrom,
    ) -> anyhow::Result<FunctionView> {
        self.service
            .start(selector, from)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn stop(&self, selector: &str) -> anyhow::Result<FunctionView> {
        self.service.stop(selector).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn pin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        self.service.pin(selector).await.map_err(|e| self.error(e))
    }

    pub(crate) async fn unpin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        self.service
            .unpin(selector)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn list(&self) -> anyhow::Result<Vec<FunctionView>> {
        self.service.list().await.map_err(|e| self.error(e))
    }

    pub(crate) async fn function(&self, selector: &str) -> anyhow::Result<FunctionView> {
        self.service
            .function(selector)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn logs(&self, selector: &str, limit: usize) -> anyhow::Result<LogsPage> {
        self.service
            .logs(selector, limit)
            .await
            .map_err(|e| self.error(e))
    }

    /// The local registry's outputs. Nothing writes to it while this command holds it, so
    /// there is nothing to wait for: `wait` is not used.
    pub(crate) async fn outputs(
        &self,
        selector: &str,
        query: &OutputsQuery,
    ) -> anyhow::Result<OutputsPage> {
        let id = self
            .service
            .resolve(selector)
            .await
            .map_err(|e| self.error(e))?;
        self.service
            .outputs(id, query.clone())
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn set_sink(
        &self,
        selector: &str,
        sink: &str,
        config: SinkConfig,
    ) -> anyhow::Result<SinksView> {
        self.service
            .set_sink(selector, sink, config)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn sinks(&self, selector: &str) -> anyhow::Result<SinksView> {
        self.service
            .sinks(selector)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn remove_sink(
        &self,
        selector: &str,
        sink: &str,
    ) -> anyhow::Result<SinksView> {
        self.service
            .remove_sink(selector, sink)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn retry_sink(&self, selector: &str, sink: &str) -> anyhow::Result<SinksView> {
        self.service
            .retry_sink(selector, sink)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn gc(&self, dry_run: bool) -> anyhow::Result<GcResponse> {
        self.service.gc(dry_run).await.map_err(|e| self.error(e))
    }

    fn error(&self, e: ServiceError) -> anyhow::Error {
        service_error(e, &self.describe(), self.service.store().description())
    }
}

/// Maps a service error to a [`Failure`](crate::failure::Failure) with the right exit
/// code; `on` names the local registry, `store` the module store.
pub(crate) fn service_error(e: ServiceError, on: &str, store: &str) -> anyhow::Error {
    match e {
        ServiceError::InvalidSelector(e) => fail(exit_codes::USAGE, e.to_string()),
        ServiceError::InvalidHash(e) => store_error(e.into(), store),
        e @ ServiceError::InvalidModule(_) => fail(exit_codes::INVALID_MODULE, e.to_string()),
        ServiceError::ModuleNotStored(hash) => fail(
            exit_codes::NOT_FOUND,
            format!(
                "module {hash} is not in the store {store}; deploy it first with \
                 `cargo xxfunc deploy --offline`"
            ),
        ),
        e @ ServiceError::ModuleNotFound { .. } => {
            fail(exit_codes::NOT_FOUND, format!("{e} (on {on})"))
        }
        e @ ServiceError::Ambiguous { .. } => fail(
            exit_codes::AMBIGUOUS,
            format!("{e}; type more hex digits (on {on})"),
        ),
        ServiceError::Registry(e) => registry_error(e, on),
        ServiceError::Store(e) => store_error(e, store),
        other => anyhow::Error::new(other).context(format!("on {on}")),
    }
}

/// Maps a registry error to a [`Failure`](crate::failure::Failure) with the right exit code.
fn registry_error(e: RegistryError, on: &str) -> anyhow::Error {
    let code = match &e {
        e if e.is_not_found() => exit_codes::NOT_FOUND,
        RegistryError::Ambiguous { .. } => exit_codes::AMBIGUOUS,
        RegistryError::SinkNameTaken { .. } => exit_codes::CONFLICT,
        RegistryError::InvalidSink { .. } => exit_codes::USAGE,
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
