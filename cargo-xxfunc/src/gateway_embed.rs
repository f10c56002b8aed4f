//! The gateway served inside `cargo xxfunc dev`, on the same registry and
//! store as the embedded runner (one RocksDB opener per process).

use std::{net::SocketAddr, path::Path};

#[cfg(feature = "gateway")]
use std::io::ErrorKind;
#[cfg(feature = "gateway")]
pub(crate) use xxfunc_gateway::RunningGateway;

#[cfg(feature = "gateway")]
use xxfunc_gateway::{GatewayConfig, GatewayError, serve_with};
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
    serve_with(config, registry, store)
        .await
        .map_err(|e| match &e {
            GatewayError::Listen { source, .. } if source.kind() == ErrorKind::AddrInUse => fail(
                exit_codes::CONFLICT,
                format!(
                    "cannot serve the gateway on {listen}: {e}; is another gateway or \
                     `cargo xxfunc dev` running? pick another address with --listen 127.0.0.1:PORT"
                ),
            ),
            _ => {
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

#[cfg(all(test, feature = "gateway"))]
mod tests {
    use super::*;
    use crate::failure::exit_code;

    #[tokio::test]
    async fn an_address_in_use_is_a_conflict() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        let listen = taken.local_addr().expect("the bound address");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let registry = Registry::open(dir.path().join("registry")).expect("opening the registry");
        let store = ModuleStore::open("memory://").expect("a memory store");
        let err = match start(dir.path(), registry, store, listen, "token".into()).await {
            Ok(_) => panic!("served the gateway on {listen}, which is taken"),
            Err(err) => err,
        };
        assert_eq!(exit_code(&err), exit_codes::CONFLICT, "{err:#}");
        assert!(err.to_string().contains("pick another address"), "{err:#}");
    }
}
