//! Feature `gateway`. [`GatewayRegistry`]: the runner's [`Registry`] seam over the gateway's
//! HTTP API (snapshot, long-polled change feed, reports), and
//! [`GatewayModules`]: module bytes fetched through the gateway.
//!
//! Both use the typed client `xxfunc_api::client::Client` and block the
//! calling thread on a private tokio runtime, so call them from plain
//! threads (the runner's control and feed threads), never from inside an
//! async task. The runtime has a worker thread of its own: the client's
//! pooled connections are driven there, whichever thread (or which of the
//! two) made the request, so a connection opened for one call never stalls
//! another.

use std::{sync::Arc, time::Duration};

use xxfunc_api::{
    FeedPage, FeedSnapshot, ModuleHash, RunnerReport,
    client::Client,
    outputs::{OutcomesAck, OutcomesPage},
};

use crate::{
    blocking::BlockingRuntime,
    error::{Result, RunnerError},
    modules::ModuleSource,
    registry::Registry,
};

/// The gateway as the runner's registry: follows `GET /v1/feed` with long
/// polls (so a start or stop reaches the runner as soon as it is committed),
/// posts reports to `POST /v1/runners/{runner_id}/report` and outcome pages
/// to `POST /v1/runners/{runner_id}/outcomes`.
pub struct GatewayRegistry {
    client: Client,
    runner_id: String,
    runtime: Arc<BlockingRuntime>,
}

/// The private runtime the blocking calls run on (see the module docs).
fn client_runtime() -> Result<Arc<BlockingRuntime>> {
    BlockingRuntime::with_worker("gateway-client").map(Arc::new)
}

impl std::fmt::Debug for GatewayRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayRegistry")
            .field("gateway", &self.client.base_url().as_str())
            .field("runner_id", &self.runner_id)
            .finish_non_exhaustive()
    }
}

impl GatewayRegistry {
    /// A registry backed by the gateway `client` talks to (give the client
    /// the write token: reports are mutating requests).
    ///
    /// # Errors
    /// [`RunnerError::Runtime`] when the private runtime cannot start.
    pub fn new(client: Client, runner_id: impl Into<String>) -> Result<Self> {
        Ok(Self {
            client,
            runner_id: runner_id.into(),
            runtime: client_runtime()?,
        })
    }

    /// Module downloads through the same client and runtime.
    pub fn modules(&self) -> GatewayModules {
        GatewayModules {
            client: self.client.clone(),
            runtime: self.runtime.clone(),
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn registry_error(e: xxfunc_api::client::ClientError) -> RunnerError {
    RunnerError::Gateway {
        source: Box::new(e),
    }
}

impl Registry for GatewayRegistry {
    fn snapshot(&self) -> Result<FeedSnapshot> {
        self.runtime
            .block_on(self.client.feed_snapshot())
            .map_err(registry_error)
    }

    fn wait_changes(&self, after: u64, timeout: Duration) -> Result<FeedPage> {
        self.runtime
            .block_on(self.client.feed(after, timeout))
            .map_err(registry_error)
    }

    fn report(&self, report: &RunnerReport) -> Result<()> {
        self.runtime
            .block_on(self.client.report(&self.runner_id, report))
            .map_err(registry_error)
    }

    fn push_outcomes(&self, page: &OutcomesPage) -> Result<OutcomesAck> {
        self.runtime
            .block_on(self.client.push_outcomes(&self.runner_id, page))
            .map_err(registry_error)
    }
}

/// Module bytes through `GET /v1/modules/{hash}` (for runners without direct
/// access to the module store). The client checks the bytes against their hash.
pub struct GatewayModules {
    client: Client,
    runtime: Arc<BlockingRuntime>,
}

impl std::fmt::Debug for GatewayModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayModules")
            .field("gateway", &self.client.base_url().as_str())
            .finish_non_exhaustive()
    }
}

impl GatewayModules {
    /// Fetches modules through the gateway `client` talks to.
    ///
    /// # Errors
    /// [`RunnerError::Runtime`] when the private runtime cannot start.
    pub fn new(client: Client) -> Result<Self> {
        Ok(Self {
            client,
            runtime: client_runtime()?,
        })
    }
}

impl ModuleSource for GatewayModules {
    fn fetch(&self, hash: &ModuleHash) -> Result<Vec<u8>> {
        let (got, bytes) = self
            .runtime
            .block_on(self.client.download(&hash.to_string()))
            .map_err(|e| RunnerError::ModuleDownload {
                hash: *hash,
                source: Box::new(e),
            })?;
        if got != *hash {
            return Err(RunnerError::ModuleHashMismatch {
                hash: *hash,
                actual: got,
            });
        }
        Ok(bytes)
    }
}
