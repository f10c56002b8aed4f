//! The gateway served inside `cargo xxfunc dev`, on the same registry and
//! store as the embedded runner (one RocksDB opener per process).

use std::{net::SocketAddr, path::Path};

#[cfg(feature = "gateway")]
pub(crate) use xxfunc_gateway::RunningGateway;
#[cfg(feature = "gateway")]
use xxfunc_gateway::{GatewayConfig, serve_with};
use xxfunc_registry::Registry;
use xxfunc_store::ModuleStore;

#[cfg(feature = "gateway")]
use crate::{exit_codes, failure::fail};

/// Serves the gateway API on `listen` with `token` required on writes.
///
/// # Errors
/// [`exit_codes::CONFLICT`] when the address is taken; other start failures.
#[cfg(feature = "gateway")]
pub(crate) async fn start(
    data_dir: &Path,
    registry: Registry,
    store: ModuleStore,
    listen: SocketAddr,
    token: String,
) -> anyhow::Result<RunningGateway> {
    let config = GatewayConfig::new(data_dir)
        .with_listen(listen)
        .with_token(Some(token));
    serve_with(config, registry, store).await.map_err(|e| {
        let text = e.to_string();
        if text.contains("in use") || text.contains("bind") {
            fail(
                exit_codes::CONFLICT,
                format!(
                    "cannot serve the gateway on {listen}: {text}; is another gateway or \
                     `cargo xxfunc dev` running? pick another address with --listen 127.0.0.1:PORT"
                ),
            )
        } else {
            anyhow::Error::new(e).context(format!("starting the embedded gateway on {listen}"))
        }
    })
}

/// Stand-in when built without the `gateway` feature.
#[cfg(not(feature = "gateway"))]
pub(crate) struct RunningGateway;

#[cfg(not(feature = "gateway"))]
impl RunningGateway {
    pub(crate) fn url(&self) -> String {
        String::new()
    }

    pub(crate) async fn stop(self) {}
}

/// Without the `gateway` feature `dev` cannot serve the API.
#[cfg(not(feature = "gateway"))]
pub(crate) async fn start(
    _data_dir: &Path,
    _registry: Registry,
    _store: ModuleStore,
    listen: SocketAddr,
    _token: String,
) -> anyhow::Result<RunningGateway> {
    anyhow::bail!(
        "this cargo-xxfunc was built without the `gateway` feature, so `dev` cannot serve the API \
         on {listen}; use `cargo xxfunc dev --once`, or rebuild with default features"
    )
}
