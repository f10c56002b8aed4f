//! Where commands act: a gateway over HTTP ([`online`]) or the local store and
//! registry in-process ([`offline`]). Both answer with the same API types.

pub(crate) mod offline;
pub(crate) mod online;

use std::path::PathBuf;

use serde::Serialize;
use xxfunc_api::{
    BindResponse, FunctionName, FunctionView, GcResponse, LogsPage, PinResponse, StartFrom,
};

use xxfunc_api::{
    outputs::{OutputsPage, OutputsQuery},
    sinks::{SinkConfig, SinksView},
};

use crate::wasm_build::Built;

/// What `deploy` did (`--json`: this object).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DeployOutput {
    /// The binding: name, hash, version, pinned.
    #[serde(flatten)]
    pub(crate) bind: BindResponse,
    /// Module size in bytes.
    pub(crate) size: u64,
    /// Whether the upload stored new bytes (false: the store had them).
    pub(crate) created: bool,
    /// The `.wasm` file deployed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) path: Option<PathBuf>,
}

/// A gateway or the local data directory.
pub(crate) enum Backend {
    Online(online::Online),
    Offline(offline::Offline),
}

impl Backend {
    /// Where this backend is, for messages: a URL or a directory.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Online(b) => b.describe(),
            Self::Offline(b) => b.describe(),
        }
    }

    pub(crate) async fn deploy(
        &self,
        name: &FunctionName,
        built: &Built,
    ) -> anyhow::Result<DeployOutput> {
        let deployed = match self {
            Self::Online(b) => b.deploy(name, built.bytes.clone()).await?,
            Self::Offline(b) => b.deploy(name, built.bytes.clone()).await?,
        };
        Ok(DeployOutput {
            bind: deployed.bind,
            size: deployed.upload.size,
            created: deployed.upload.created,
            path: Some(built.output.path.clone()),
        })
    }

    pub(crate) async fn start(
        &self,
        selector: &str,
        from: StartFrom,
    ) -> anyhow::Result<FunctionView> {
        match self {
            Self::Online(b) => b.start(selector, from).await,
            Self::Offline(b) => b.start(selector, from).await,
        }
    }

    pub(crate) async fn stop(&self, selector: &str) -> anyhow::Result<FunctionView> {
        match self {
            Self::Online(b) => b.stop(selector).await,
            Self::Offline(b) => b.stop(selector).await,
        }
    }

    pub(crate) async fn pin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        match self {
            Self::Online(b) => b.pin(selector).await,
            Self::Offline(b) => b.pin(selector).await,
        }
    }

    pub(crate) async fn unpin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        match self {
            Self::Online(b) => b.unpin(selector).await,
            Self::Offline(b) => b.unpin(selector).await,
        }
    }

    pub(crate) async fn list(&self) -> anyhow::Result<Vec<FunctionView>> {
        match self {
            Self::Online(b) => b.list().await,
            Self::Offline(b) => b.list().await,
        }
    }

    pub(crate) async fn function(&self, selector: &str) -> anyhow::Result<FunctionView> {
        match self {
            Self::Online(b) => b.function(selector).await,
            Self::Offline(b) => b.function(selector).await,
        }
    }

    pub(crate) async fn logs(&self, selector: &str, limit: usize) -> anyhow::Result<LogsPage> {
        match self {
            Self::Online(b) => b.logs(selector, limit).await,
            Self::Offline(b) => b.logs(selector, limit).await,
        }
    }

    pub(crate) async fn outputs(
        &self,
        selector: &str,
        query: &OutputsQuery,
        wait: std::time::Duration,
    ) -> anyhow::Result<OutputsPage> {
        match self {
            Self::Online(b) => b.outputs(selector, query, wait).await,
            Self::Offline(b) => b.outputs(selector, query).await,
        }
    }

    pub(crate) async fn set_sink(
        &self,
        selector: &str,
        sink: &str,
        config: SinkConfig,
    ) -> anyhow::Result<SinksView> {
        match self {
            Self::Online(b) => b.set_sink(selector, sink, &config).await,
            Self::Offline(b) => b.set_sink(selector, sink, config).await,
        }
    }

    pub(crate) async fn sinks(&self, selector: &str) -> anyhow::Result<SinksView> {
        match self {
            Self::Online(b) => b.sinks(selector).await,
            Self::Offline(b) => b.sinks(selector).await,
        }
    }

    pub(crate) async fn remove_sink(
        &self,
        selector: &str,
        sink: &str,
    ) -> anyhow::Result<SinksView> {
        match self {
            Self::Online(b) => b.remove_sink(selector, sink).await,
            Self::Offline(b) => b.remove_sink(selector, sink).await,
        }
    }

    pub(crate) async fn retry_sink(&self, selector: &str, sink: &str) -> anyhow::Result<SinksView> {
        match self {
            Self::Online(b) => b.retry_sink(selector, sink).await,
            Self::Offline(b) => b.retry_sink(selector, sink).await,
        }
    }

    pub(crate) async fn gc(&self, dry_run: bool) -> anyhow::Result<GcResponse> {
        match self {
            Self::Online(b) => b.gc(dry_run).await,
            Self::Offline(b) => b.gc(dry_run).await,
        }
    }
}
