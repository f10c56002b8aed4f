//! Starting and stopping a gateway server.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use actix_web::{
    App, HttpServer,
    dev::{ServerHandle, Service},
    web,
};
use xxfunc_registry::Registry;
use xxfunc_service::ServiceOptions;
use xxfunc_store::ModuleStore;

use crate::{config::GatewayConfig, routes, state::AppState};

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// Listening beyond loopback without a token would let anyone deploy code.
    #[error(
        "refusing to listen on {addr} without a token: anyone who can reach it could deploy and start \
         functions; set --token / XXFUNC_TOKEN, or listen on 127.0.0.1"
    )]
    InsecureListen {
        /// The requested address.
        addr: SocketAddr,
    },
    /// The registry could not be opened.
    #[error(transparent)]
    Registry(#[from] xxfunc_registry::RegistryError),
    /// The module store could not be opened.
    #[error("opening the module store: {0}")]
    Store(Box<xxfunc_store::StoreError>),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

/// A running gateway. Dropping it does not stop the server; call [`stop`](Self::stop).
pub struct RunningGateway {
    addr: SocketAddr,
    handle: ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    registry: Registry,
    store: ModuleStore,
}

impl std::fmt::Debug for RunningGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningGateway")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl RunningGateway {
    /// The address the server is bound to (the real port when configured with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<addr>`, the base URL for clients.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The registry the server serves (for an embedded runner in the same process).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The module store the server uses.
    pub fn store(&self) -> &ModuleStore {
        &self.store
    }

    /// Stops accepting connections, finishes in-flight requests (up to 5 s) and waits.
    pub async fn stop(self) {
        self.handle.stop(true).await;
        let _ = self.task.await;
    }

    /// Waits until the server exits (e.g. on Ctrl-C).
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn wait(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Opens the registry and store named by `config` and starts serving.
/// Must be called inside a tokio runtime.
///
/// # Errors
/// [`GatewayError`] naming what could not be opened or bound.
pub async fn serve(config: GatewayConfig) -> Result<RunningGateway, GatewayError> {
    check_listen(&config)?;
    let registry = Registry::open(config.registry_dir())?;
    let store = ModuleStore::open_with(&config.store_url, config.store_config.clone())
        .map_err(|e| GatewayError::Store(Box::new(e)))?;
    serve_with(config, registry, store).await
}

/// Like [`serve`], with an already opened registry and store (to share them
/// with an embedded runner).
///
/// # Errors
/// [`GatewayError`].
pub async fn serve_with(
    config: GatewayConfig,
    registry: Registry,
    store: ModuleStore,
) -> Result<RunningGateway, GatewayError> {
    check_listen(&config)?;
    let options = ServiceOptions::default().with_upload_grace(config.upload_grace);
    let service = xxfunc_service::Service::new(registry.clone(), store.clone(), options);
    let state = web::Data::new(AppState::new(
        service,
        config.token.clone(),
        config.read_token.clone(),
        config.json_limit,
        config.report_limit,
        config.sse_send_timeout,
    ));
    {
        let feed = state.feed.clone();
        registry.on_commit(move |head| {
            feed.send_replace(head);
        });
        let arrivals = state.outcomes.clone();
        let stored = state.metrics.outcomes_stored.clone();
        registry.on_outcomes(move |_runner, _id, count| {
            stored.inc_by(count);
            arrivals.send_modify(|n| *n += 1);
        });
    }
    let app_state = state.clone();
    let mut server = HttpServer::new(move || {
        let state = app_state.clone();
        App::new()
            .app_data(app_state.clone())
            .wrap_fn(move |req, srv| {
                let started = Instant::now();
                let method = req.method().to_string();
                let route = req
                    .match_pattern()
                    .unwrap_or_else(|| "(unmatched)".to_string());
                let state = state.clone();
                // Reads behind a read token are refused before any handler runs.
                let (fut, denied) = match state.authorize_read(req.request()) {
                    Ok(()) => (Some(srv.call(req)), None),
                    Err(e) => (None, Some(req.error_response(e))),
                };
                async move {
                    let res = match (fut, denied) {
                        (Some(fut), _) => fut.await?.map_into_boxed_body(),
                        (None, denied) => denied.expect("a request is served or denied"),
                    };
                    state
                        .metrics
                        .record(&method, &route, res.status().as_u16(), started.elapsed());
                    Ok(res)
                }
            })
            .configure(routes::configure)
            .default_service(web::to(routes::no_route))
    })
    // Both timers outlast the client's pool idle timeout (30 s in
    // `xxfunc_api::client`), so a client never sends a request on a
    // connection the server is closing: an idle keep-alive connection lives
    // 75 s, and a connection that has not sent its first request head (which
    // pools open ahead of use) 60 s.
    .keep_alive(Duration::from_secs(75))
    .client_request_timeout(Duration::from_secs(60))
    .shutdown_timeout(5)
    // Each connection keeps a handle on its socket, so an event stream whose client does
    // not read can be cut (see `routes::outputs`).
    .on_connect(routes::outputs::on_connect)
    .disable_signals();
    if config.workers > 0 {
        server = server.workers(config.workers);
    }
    let server = server
        .bind(config.listen)
        .map_err(|source| GatewayError::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = server.addrs().first().copied().unwrap_or(config.listen);
    let server = server.run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    tracing::info!(%addr, store = store.description(), "gateway listening");
    Ok(RunningGateway {
        addr,
        handle,
        task,
        registry,
        store,
    })
}

fn check_listen(config: &GatewayConfig) -> Result<(), GatewayError> {
    if config.token.is_none() && !config.listen.ip().is_loopback() {
        return Err(GatewayError::InsecureListen {
            addr: config.listen,
        });
    }
    Ok(())
}
