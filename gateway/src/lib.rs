//! The xxfunc gateway: the HTTP API in front of the registry and the module store.
//!
//! It owns the `/v1` routes, authentication (a bearer token compared in
//! constant time), request limits, the mapping of every failure to a status
//! and a stable error code, metrics and the OpenAPI document. Its handlers are
//! thin adapters: they parse the request, authorise it, call
//! [`xxfunc_service::Service`] (which owns every business rule: validation,
//! bind, selector resolution, start/stop/pin, gc) and map its error. It never
//! runs wasm, and keeps no state of its own: names, versions, pins, desired
//! states and the change feed live in [`xxfunc_registry::Registry`], module
//! bytes in [`xxfunc_store::ModuleStore`]. Request and response types are
//! [`xxfunc_api`]'s, and `xxfunc_api::client::Client` speaks to it.
//!
//! - **Metrics** (`GET /metrics`, Prometheus text 0.0.4) are kept by
//!   `prometheus-client`: requests and a latency histogram (100 µs to 10 s)
//!   per method, route pattern and status, recorded by one middleware;
//!   upload, deploy, garbage-collection, report and outcome counters, event-stream
//!   clients (connected, cut for not reading); and gauges read
//!   from the registry at scrape time (feed head, functions, started).
//! - **The OpenAPI 3.1 document** (`GET /v1/openapi.json`, also
//!   [`openapi_json`]) is derived by `utoipa` from the API types (their
//!   `openapi` feature) and one declaration per route; a test holds it to the
//!   route table both ways.
//!
//! # Key types
//!
//! - [`GatewayConfig`]: listen address, data directory, store URL, token, limits.
//! - [`serve`] / [`serve_with`]: start a server (inside a tokio runtime) and get
//!   a [`RunningGateway`] with its bound address; `cargo xxfunc dev` embeds it.
//! - [`ApiError`]: every request failure; its `ResponseError` impl is the one
//!   place that maps errors to `{"error":{"code","message"}}` responses.
//!
//! # Guarantees
//!
//! The service's rules, plus the transport's:
//!
//! - A module is validated before it is stored; an upload that fails stores nothing.
//! - A bind, start or pin that names a module the store does not hold changes nothing.
//! - Garbage collection never removes a module between a request's check and
//!   its registry write, nor one uploaded within the grace period (default ten minutes).
//! - Feed and outputs long polls, and outputs event streams, wait on a notification, not
//!   on a thread.
//! - An outputs event stream (`Accept: text/event-stream`, events encoded by `russe`)
//!   reads one runner's log, resumes exactly after `Last-Event-ID`, and holds a bounded
//!   buffer per connection: a client that does not read for `sse_send_timeout` with its
//!   buffer full is disconnected.
//!
//! # Example
//!
//! ```no_run
//! use xxfunc_gateway::{GatewayConfig, serve};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GatewayConfig::new("/var/lib/xxfunc").with_listen("127.0.0.1:0".parse()?);
//! let gateway = serve(config).await?;
//! println!("listening on {}", gateway.url());
//! gateway.stop().await;
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod metrics;
mod openapi;
mod routes;
mod server;
mod state;

pub use config::{
    DEFAULT_JSON_LIMIT, DEFAULT_LISTEN, DEFAULT_REPORT_LIMIT, DEFAULT_SSE_SEND_TIMEOUT,
    DEFAULT_UPLOAD_GRACE, GatewayConfig, MAX_FEED_WAIT_MS,
};
pub use error::{ApiError, ApiResult};
pub use server::{GatewayError, RunningGateway, serve, serve_with};

/// The OpenAPI 3 document served at `GET /v1/openapi.json`.
pub fn openapi_json() -> &'static str {
    openapi::json()
}
