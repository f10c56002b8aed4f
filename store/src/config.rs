//! [`StoreConfig`] and turning a store URL into an `object_store` backend.

use std::{net::IpAddr, sync::Arc, time::Duration};

use object_store::{
    ObjectStore, RetryConfig,
    aws::{AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists},
    local::LocalFileSystem,
    memory::InMemory,
    path::Path,
};
use url::Url;

use crate::error::{Result, StoreError};

/// Default maximum module size: 64 MiB.
pub const DEFAULT_MAX_MODULE_SIZE: u64 = 64 * 1024 * 1024;

/// How a [`ModuleStore`](crate::ModuleStore) talks to its backend.
///
/// The defaults suit a module store: 64 MiB modules, `AWS_*` variables honoured, and network
/// settings that make an unreachable S3 endpoint fail within a few seconds instead of retrying
/// for minutes (3 s connect timeout, 2 retries within 10 s). A slow link uploading large
/// modules may need a longer [`request_timeout`](Self::with_request_timeout).
///
/// ```
/// use std::time::Duration;
/// use xxfunc_store::StoreConfig;
///
/// let config = StoreConfig::default()
///     .with_max_module_size(8 << 20)
///     .with_option("aws_endpoint", "http://127.0.0.1:9000")
///     .with_option("aws_region", "us-east-1")
///     .with_request_timeout(Duration::from_secs(120));
/// assert_eq!(config.max_module_size(), 8 << 20);
/// ```
#[derive(Debug, Clone)]
pub struct StoreConfig {
    max_module_size: u64,
    options: Vec<(String, String)>,
    env: EnvSource,
    connect_timeout: Duration,
    request_timeout: Duration,
    max_retries: usize,
    retry_timeout: Duration,
    fsync: bool,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_module_size: DEFAULT_MAX_MODULE_SIZE,
            options: Vec::new(),
            env: EnvSource::Process,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(60),
            max_retries: 2,
            retry_timeout: Duration::from_secs(10),
            fsync: false,
        }
    }
}

impl StoreConfig {
    /// The largest module `put` accepts, in bytes. Enforced before anything is stored.
    pub fn with_max_module_size(mut self, bytes: u64) -> Self {
        self.max_module_size = bytes;
        self
    }

    /// The configured maximum module size in bytes.
    pub fn max_module_size(&self) -> u64 {
        self.max_module_size
    }

    /// Adds an S3 backend option, using `object_store`'s configuration keys
    /// (`aws_endpoint`, `aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`,
    /// `aws_region`, `aws_allow_http`, `aws_virtual_hosted_style_request`,
    /// `aws_copy_if_not_exists`, `timeout`, ...). Options win over `AWS_*` variables.
    /// `file://` and `memory://` stores ignore them.
    pub fn with_option(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.options.push((key.into(), value.into()));
        self
    }

    /// Whether S3 settings are read from `AWS_*` environment variables (default `true`):
    /// `AWS_ENDPOINT_URL` / `AWS_ENDPOINT`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`, `AWS_ALLOW_HTTP`, and every
    /// other variable `object_store`'s `AmazonS3Builder::from_env` knows.
    pub fn with_env(mut self, from_env: bool) -> Self {
        self.env = match from_env {
            true => EnvSource::Process,
            false => EnvSource::Disabled,
        };
        self
    }

    /// Reads the `AWS_*` settings from `vars` instead of the process environment (for
    /// embedding, and for tests that must not touch the process environment).
    pub fn with_env_vars<K, V>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: Into<String>,
        V: Into<String>,
    {
        self.env = EnvSource::Vars(
            vars.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    /// Time allowed to open a connection (default 3 s).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one request, body included (default 60 s).
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Retries of a failed request (default 2) and the total time they may take (default 10 s).
    /// Lower means "server down" is reported sooner; higher rides out flaky networks.
    pub fn with_retries(mut self, max_retries: usize, retry_timeout: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_timeout = retry_timeout;
        self
    }

    /// For `file://` stores: `fsync` each module and its directory before `put` returns
    /// (default `false`). Costs a disk flush per new module; without it a crash of the machine
    /// (not the process) may lose recently written modules, never leave a partial one.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }
}

/// Where `AWS_*` settings come from.
#[derive(Debug, Clone)]
enum EnvSource {
    Process,
    Disabled,
    Vars(Vec<(String, String)>),
}

/// A backend built from a URL.
pub(crate) struct Backend {
    pub(crate) store: Arc<dyn ObjectStore>,
    /// Key prefix inside the backend (the URL path for `s3://` and `memory://`).
    pub(crate) prefix: Path,
    /// Human-readable description for error messages; never contains credentials.
    pub(crate) description: String,
}

pub(crate) fn open_backend(url_str: &str, config: &StoreConfig) -> Result<Backend> {
    let invalid = |reason: String| StoreError::InvalidUrl {
        url: url_str.to_owned(),
        reason,
    };
    let url = Url::parse(url_str).map_err(|e| invalid(e.to_string()))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid(
            "credentials do not belong in the URL; use AWS_* variables or options".into(),
        ));
    }
    match url.scheme() {
        "memory" => {
            let prefix = url_prefix(&url).map_err(invalid)?;
            Ok(Backend {
                store: Arc::new(InMemory::new()),
                prefix,
                description: url.to_string(),
            })
        }
        "file" => open_file(&url, config).map_err(invalid),
        "s3" | "s3a" => open_s3(&url, config).map_err(invalid),
        other => Err(invalid(format!(
            "unsupported scheme {other:?}; use file:///abs/path, s3://bucket/prefix or memory://"
        ))),
    }
}

fn url_prefix(url: &Url) -> std::result::Result<Path, String> {
    let raw = url.path().trim_matches('/');
    Path::from_url_path(raw).map_err(|e| format!("invalid key prefix {raw:?}: {e}"))
}

fn open_file(url: &Url, config: &StoreConfig) -> std::result::Result<Backend, String> {
    if url
        .host_str()
        .is_some_and(|h| !h.is_empty() && h != "localhost")
    {
        return Err("file URLs must be local: file:///abs/path".into());
    }
    let dir = url
        .to_file_path()
        .map_err(|()| "not an absolute local path".to_string())?;
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
    let fs = LocalFileSystem::new_with_prefix(&dir)
        .map_err(|e| format!("cannot open directory {}: {e}", dir.display()))?
        .with_fsync(config.fsync);
    Ok(Backend {
        store: Arc::new(fs),
        prefix: Path::default(),
        description: url.to_string(),
    })
}

fn open_s3(url: &Url, config: &StoreConfig) -> std::result::Result<Backend, String> {
    let bucket = url
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or("missing bucket name")?;
    let prefix = url_prefix(url)?;

    let secs = |d: Duration| format!("{}ms", d.as_millis());
    let mut builder = AmazonS3Builder::new()
        .with_config(
            "connect_timeout".parse().map_err(err_str)?,
            secs(config.connect_timeout),
        )
        .with_config(
            "timeout".parse().map_err(err_str)?,
            secs(config.request_timeout),
        );
    let apply = |builder: AmazonS3Builder, key: &str, value: &str, strict: bool| match key
        .to_ascii_lowercase()
        .parse::<AmazonS3ConfigKey>()
    {
        Ok(k) => Ok(builder.with_config(k, value)),
        Err(_) if !strict => Ok(builder),
        Err(_) => Err(format!("unknown S3 option {key:?}")),
    };
    let env: Vec<(String, String)> = match &config.env {
        EnvSource::Process => std::env::vars().collect(),
        EnvSource::Disabled => Vec::new(),
        EnvSource::Vars(vars) => vars.clone(),
    };
    for (key, value) in env.iter().filter(|(k, _)| k.starts_with("AWS_")) {
        builder = apply(builder, key, value, false)?;
    }
    for (key, value) in &config.options {
        builder = apply(builder, key, value, true)?;
    }
    builder = builder.with_bucket_name(bucket).with_retry(RetryConfig {
        backoff: object_store::BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            base: 2.0,
        },
        max_retries: config.max_retries,
        retry_timeout: config.retry_timeout,
    });

    // Publishing a streamed upload needs an atomic "copy unless the target exists"; a multipart
    // copy completed with `If-None-Match: *` is what S3 and compatible servers support.
    if builder
        .get_config_value(&AmazonS3ConfigKey::CopyIfNotExists)
        .is_none()
    {
        builder = builder.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    }

    let endpoint = builder
        .get_config_value(&AmazonS3ConfigKey::S3Endpoint)
        .or_else(|| builder.get_config_value(&AmazonS3ConfigKey::Endpoint));
    if let Some(endpoint) = &endpoint {
        let parsed =
            Url::parse(endpoint).map_err(|e| format!("invalid S3 endpoint {endpoint:?}: {e}"))?;
        if parsed.scheme() == "http" && is_loopback(&parsed) {
            builder = builder.with_allow_http(true);
        }
    }
    let store = builder.build().map_err(|e| e.to_string())?;
    let description = match &endpoint {
        Some(endpoint) => format!("{url} (endpoint {endpoint})"),
        None => url.to_string(),
    };
    Ok(Backend {
        store: Arc::new(store),
        prefix,
        description,
    })
}

fn err_str(e: object_store::Error) -> String {
    e.to_string()
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    }
}
