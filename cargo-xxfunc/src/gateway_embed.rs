//! The gateway served inside `cargo xxfunc dev`, on the same registry and
//! store as the embedded runner (one RocksDB opener per process).

use std::{net::SocketAddr, path::Path};

use xxfunc_gateway::{GatewayConfig, RunningGateway, serve_with};
use xxfunc_registry::Registry;
use xxfunc_store::ModuleStore;

use crate::{exit_codes, failure::fail};

/// Serves the gateway API on `listen` with `token` required on writes.
///
/// # Errors
/// [`exit_codes::CONFLICT`] when the address is taken; other start failures.
pub(crate) async fn start(
    data_dir: &Path,
    registry: Registry,
    store: ModuleStore,
    listen: SocketAddr,
    token: String,
) -> anyhow::Result<RunningGateway> {
    let config = GatewayConfig::new(data_dir).with_listen(listen).with_token(Some(token));
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
