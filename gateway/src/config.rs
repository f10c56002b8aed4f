//! [`GatewayConfig`]: what the server listens on, where it keeps its data and who may write.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use xxfunc_store::StoreConfig;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8722";

/// Default limit of JSON request bodies (bind, start, gc, ...).
pub const DEFAULT_JSON_LIMIT: usize = 64 * 1024;

/// Default limit of runner reports and outcome pages (pages carry outputs of up to
/// 1.25 MiB per outcome).
pub const DEFAULT_REPORT_LIMIT: usize = 16 * 1024 * 1024;

pub use xxfunc_service::DEFAULT_UPLOAD_GRACE;

/// Default time an outputs event stream waits for a client that does not read, with
/// its buffer full, before disconnecting it.
pub const DEFAULT_SSE_SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest accepted `wait_ms` of a feed or outputs long poll.
pub const MAX_FEED_WAIT_MS: u64 = 60_000;

/// Configuration of a gateway server.
///
/// ```
/// use xxfunc_gateway::GatewayConfig;
///
/// let config = GatewayConfig::new("/tmp/xxfunc-data")
///     .with_listen("127.0.0.1:0".parse().unwrap())
///     .with_token(Some("secret".into()));
/// assert_eq!(config.store_url, "file:///tmp/xxfunc-data/modules");
/// ```
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Address to listen on; port 0 picks a free port (see `RunningGateway::addr`).
    pub listen: SocketAddr,
    /// Directory of the registry (RocksDB under `registry/`).
    pub data_dir: PathBuf,
    /// Module store URL (`file:///abs/path`, `s3://bucket/prefix`, `memory://`).
    pub store_url: String,
    /// Module store settings (maximum module size, S3 options).
    pub store_config: StoreConfig,
    /// Bearer token required on mutating routes; `None` only on loopback addresses.
    pub token: Option<String>,
    /// Bearer token required on reads too (`GET /v1/...` but the OpenAPI document, and
    /// `/metrics`), for a gateway reachable by more than its users: either token is
    /// accepted for a read. `None`: reads are open.
    pub read_token: Option<String>,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
    /// Largest JSON body accepted, in bytes.
    pub json_limit: usize,
    /// Largest runner report accepted, in bytes.
    pub report_limit: usize,
    /// How long a freshly uploaded module is safe from garbage collection
    /// (so a deploy's bind can follow its upload).
    pub upload_grace: Duration,
    /// How long an outputs event stream waits for a client that does not read (its
    /// buffer full) before disconnecting it.
    pub sse_send_timeout: Duration,
}

impl GatewayConfig {
    /// A configuration with defaults: loopback port 8722, no token, modules in
    /// `file://<data_dir>/modules`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = data_dir.into();
        let store_url = format!("file://{}", data_dir.join("modules").display());
        Self {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address parses"),
            data_dir,
            store_url,
            store_config: StoreConfig::default(),
            token: None,
            read_token: None,
            workers: 0,
            json_limit: DEFAULT_JSON_LIMIT,
            report_limit: DEFAULT_REPORT_LIMIT,
            upload_grace: DEFAULT_UPLOAD_GRACE,
            sse_send_timeout: DEFAULT_SSE_SEND_TIMEOUT,
        }
    }

    /// Sets the listen address.
    pub fn with_listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// Sets the module store URL.
    pub fn with_store(mut self, url: impl Into<String>) -> Self {
        self.store_url = url.into();
        self
    }

    /// Sets the module store settings.
    pub fn with_store_config(mut self, config: StoreConfig) -> Self {
        self.store_config = config;
        self
    }

    /// Sets the bearer token (an empty string counts as none).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// Sets the read token (an empty string counts as none).
    pub fn with_read_token(mut self, token: Option<String>) -> Self {
        self.read_token = token.filter(|t| !t.is_empty());
        self
    }

    /// Sets the number of HTTP worker threads (0: one per core).
    pub fn with_workers(mut self, workers: usize) -> Self {
        self.workers = workers;
        self
    }

    /// Sets how long fresh uploads are safe from garbage collection.
    pub fn with_upload_grace(mut self, grace: Duration) -> Self {
        self.upload_grace = grace;
        self
    }

    /// Sets how long an event stream waits for a client that does not read.
    pub fn with_sse_send_timeout(mut self, timeout: Duration) -> Self {
        self.sse_send_timeout = timeout;
        self
    }

    /// The directory RocksDB lives in.
    pub fn registry_dir(&self) -> PathBuf {
        self.data_dir.join("registry")
    }
}
