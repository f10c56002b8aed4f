//! [`Client`]: the typed HTTP client of the gateway's `/v1` API.
//!
//! Every route has one method taking and returning the types of
//! [`crate::types`]; nothing else in the project builds gateway JSON by hand.
//! Failures are a [`ClientError`] that tells an unreachable gateway (with its
//! URL) from an answer with an error, and keeps the server's stable code,
//! message and, for ambiguous prefixes, the candidates.
//!
//! ```no_run
//! use xxfunc_api::client::Client;
//!
//! # async fn run() -> Result<(), xxfunc_api::client::ClientError> {
//! let client = Client::new("http://127.0.0.1:8722")?.with_token(Some("secret".into()));
//! let wasm = std::fs::read("hello.wasm").expect("module file");
//! let deployed = client.deploy(&"hello".parse().expect("valid name"), wasm).await?;
//! println!("{} is version {}", deployed.bind.hash, deployed.bind.version);
//! client.start("hello", None).await?;
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use reqwest::{Method, RequestBuilder, StatusCode, header};
use serde::de::DeserializeOwned;
use url::Url;
use xxfunc_primitives::ModuleHash;

pub use crate::types::DeployResponse;
use crate::{
    selector::{InvalidSelector, Selector},
    types::*,
};
use xxfunc_primitives::FunctionName;

/// Result alias for client calls.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// Time allowed to connect to the gateway.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Time allowed for one ordinary request (uploads of large modules included).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The gateway URL cannot be used.
    #[error("invalid gateway URL {url:?}: {reason}")]
    InvalidUrl {
        /// What was given.
        url: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A selector argument is neither a name nor a hash; nothing was sent.
    #[error(transparent)]
    InvalidSelector(#[from] InvalidSelector),
    /// No answer: connection refused, DNS failure, timeout.
    #[error(
        "cannot reach the gateway at {url}: {source}; is it running? Start it with `xxfunc-gateway` or \
         `cargo xxfunc dev`, or point --gateway / XXFUNC_GATEWAY at it"
    )]
    Unreachable {
        /// The base URL of the gateway.
        url: String,
        /// The transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The gateway answered with an error.
    #[error("{method} {url}: {message} ({status}, {code})")]
    Api {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// HTTP status.
        status: StatusCode,
        /// Stable code, one of [`codes`].
        code: String,
        /// The server's message (says what to do next).
        message: String,
        /// For `ambiguous_hash`: the candidate hashes.
        candidates: Vec<ModuleHash>,
    },
    /// The answer was not what the API promises (not JSON, wrong shape, cut off).
    #[error(
        "unexpected answer to {method} {url} ({status}): {reason}; is {url} an xxfunc gateway of a compatible version?"
    )]
    Protocol {
        /// Request method.
        method: Method,
        /// Request URL.
        url: String,
        /// HTTP status.
        status: StatusCode,
        /// What was wrong.
        reason: String,
    },
}

impl ClientError {
    /// The server's stable error code, for [`ClientError::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the gateway answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } | Self::Protocol { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Candidates of an ambiguous prefix (empty otherwise).
    pub fn candidates(&self) -> &[ModuleHash] {
        match self {
            Self::Api { candidates, .. } => candidates,
            _ => &[],
        }
    }

    /// Whether the gateway said "not found".
    pub fn is_not_found(&self) -> bool {
        self.code() == Some(codes::NOT_FOUND)
    }

    /// Whether the gateway could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// A typed client of one gateway. Cheap to clone (shares its connection pool).
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// A client of the gateway at `base_url` (e.g. `http://127.0.0.1:8722`).
    ///
    /// # Errors
    /// [`ClientError::InvalidUrl`] unless it is an `http(s)://` URL.
    pub fn new(base_url: &str) -> Result<Self> {
        let invalid = |reason: String| ClientError::InvalidUrl {
            url: base_url.to_string(),
            reason,
        };
        let mut base = Url::parse(base_url).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("use an http:// or https:// URL".into()));
        }
        if base.cannot_be_a_base() {
            return Err(invalid("not a base URL".into()));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(64)
            // Shorter than the gateway's keep-alive (75 s), so the server
            // never closes a connection the client is about to reuse.
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| invalid(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: None,
        })
    }

    /// Sends `Authorization: Bearer <token>` on every request (mutating ones need the
    /// gateway's token; reads need it, or its read token, where one is configured).
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token.filter(|t| !t.is_empty());
        self
    }

    /// The gateway's base URL.
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    // --------------------------------------------------------------- system

    /// `GET /healthz`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn health(&self) -> Result<Health> {
        self.json(self.request(Method::GET, &["healthz"])?).await
    }

    /// `GET /metrics` (Prometheus text).
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn metrics(&self) -> Result<String> {
        let (_, bytes) = self.send(self.request(Method::GET, &["metrics"])?).await?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// `GET /v1/openapi.json`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        self.json(self.request(Method::GET, &["v1", "openapi.json"])?)
            .await
    }

    // -------------------------------------------------------------- modules

    /// `POST /v1/modules`: uploads (and the server validates) a module.
    ///
    /// # Errors
    /// `invalid_module` (422) with the reason, `too_large` (413), ...
    pub async fn upload(&self, module: impl Into<Vec<u8>>) -> Result<UploadResponse> {
        let req = self
            .request(Method::POST, &["v1", "modules"])?
            .header(header::CONTENT_TYPE, "application/wasm")
            .body(module.into());
        self.json(req).await
    }

    /// `GET /v1/modules/{hash}`: the bytes of a module by hash or unique prefix.
    ///
    /// # Errors
    /// `not_found`, `ambiguous_hash` (with candidates), `invalid_hash`.
    pub async fn download(&self, hash: &str) -> Result<(ModuleHash, Vec<u8>)> {
        let req = self.request(Method::GET, &["v1", "modules", hash])?;
        let answer = self.send_raw(req).await?;
        let (url, status) = (answer.url.clone(), answer.status);
        let declared = answer
            .resp
            .headers()
            .get("x-xxfunc-hash")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = answer.bytes().await?;
        let hash = ModuleHash::of(&bytes);
        if let Some(declared) = declared
            && declared != hash.to_string()
        {
            return Err(ClientError::Protocol {
                method: Method::GET,
                url,
                status,
                reason: format!("the module bytes hash to {hash}, not the declared {declared}"),
            });
        }
        Ok((hash, bytes))
    }

    /// `POST /v1/gc`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn gc(&self, dry_run: bool) -> Result<GcResponse> {
        self.json(
            self.request(Method::POST, &["v1", "gc"])?
                .json(&GcRequest { dry_run }),
        )
        .await
    }

    // ------------------------------------------------------------ functions

    /// `PUT /v1/functions/{name}`: binds `name` to a stored module (full hash or unique prefix).
    ///
    /// # Errors
    /// `not_found` for an unknown hash, `ambiguous_hash`, ...
    pub async fn bind(&self, name: &FunctionName, hash: &str) -> Result<BindResponse> {
        let req = self
            .request(Method::PUT, &["v1", "functions", name.as_str()])?
            .json(&BindRequest {
                hash: hash.to_string(),
            });
        self.json(req).await
    }

    /// Upload, then bind: what `cargo xxfunc deploy` does.
    ///
    /// # Errors
    /// As [`upload`](Self::upload) and [`bind`](Self::bind).
    pub async fn deploy(
        &self,
        name: &FunctionName,
        module: impl Into<Vec<u8>>,
    ) -> Result<DeployResponse> {
        let upload = self.upload(module).await?;
        let bind = self.bind(name, &upload.hash.to_string()).await?;
        Ok(DeployResponse { upload, bind })
    }

    /// `GET /v1/functions`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn list(&self) -> Result<Vec<FunctionView>> {
        self.json(self.request(Method::GET, &["v1", "functions"])?)
            .await
    }

    /// `GET /v1/functions/{selector}`: one function by name, hash or prefix.
    ///
    /// # Errors
    /// [`ClientError::InvalidSelector`] before sending; `not_found`, `ambiguous_hash`.
    pub async fn function(&self, selector: &str) -> Result<FunctionView> {
        let sel = checked(selector)?;
        self.json(self.request(Method::GET, &["v1", "functions", &sel])?)
            .await
    }

    /// `POST /v1/functions/{selector}/start`, from the head or backfilling from a block.
    ///
    /// # Errors
    /// As [`function`](Self::function).
    pub async fn start(&self, selector: &str, from_block: Option<u64>) -> Result<FunctionView> {
        let sel = checked(selector)?;
        let req = self
            .request(Method::POST, &["v1", "functions", &sel, "start"])?
            .json(&StartRequest { from_block });
        self.json(req).await
    }

    /// `POST /v1/functions/{selector}/stop`.
    ///
    /// # Errors
    /// As [`function`](Self::function).
    pub async fn stop(&self, selector: &str) -> Result<FunctionView> {
        let sel = checked(selector)?;
        self.json(self.request(Method::POST, &["v1", "functions", &sel, "stop"])?)
            .await
    }

    /// `POST /v1/functions/{selector}/pin`.
    ///
    /// # Errors
    /// As [`function`](Self::function).
    pub async fn pin(&self, selector: &str) -> Result<PinResponse> {
        let sel = checked(selector)?;
        self.json(self.request(Method::POST, &["v1", "functions", &sel, "pin"])?)
            .await
    }

    /// `POST /v1/functions/{selector}/unpin`.
    ///
    /// # Errors
    /// As [`function`](Self::function).
    pub async fn unpin(&self, selector: &str) -> Result<PinResponse> {
        let sel = checked(selector)?;
        self.json(self.request(Method::POST, &["v1", "functions", &sel, "unpin"])?)
            .await
    }

    /// `GET /v1/functions/{selector}/logs?limit=`.
    ///
    /// # Errors
    /// As [`function`](Self::function).
    pub async fn logs(&self, selector: &str, limit: Option<usize>) -> Result<LogsPage> {
        let sel = checked(selector)?;
        let mut req = self.url(&["v1", "functions", &sel, "logs"])?;
        if let Some(limit) = limit {
            req.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.json(self.authed(Method::GET, req, REQUEST_TIMEOUT))
            .await
    }

    /// `GET /v1/functions/{selector}/outputs?after=&confirmations=&limit=&runner=&wait_ms=`:
    /// output items after `query.after`, waiting up to `wait` (at most 60 s server-side)
    /// for one when none is ready (a long poll). Continue with `after = page.next`, and
    /// pass `runner = Some(page.runner)` to stay on one runner's log.
    ///
    /// # Errors
    /// As [`function`](Self::function); `after_beyond_head` (400) when `query.after`
    /// exceeds the head, `bad_request` for a malformed query.
    pub async fn outputs(
        &self,
        selector: &str,
        query: &crate::outputs::OutputsQuery,
        wait: Duration,
    ) -> Result<crate::outputs::OutputsPage> {
        let sel = checked(selector)?;
        let mut url = self.url(&["v1", "functions", &sel, "outputs"])?;
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        {
            let mut pairs = url.query_pairs_mut();
            pairs
                .append_pair("after", &query.after.to_string())
                .append_pair("confirmations", &query.confirmations.to_string())
                .append_pair("wait_ms", &wait_ms.to_string());
            if let Some(limit) = query.limit {
                pairs.append_pair("limit", &limit.to_string());
            }
            if let Some(runner) = &query.runner {
                pairs.append_pair("runner", runner);
            }
        }
        let timeout = REQUEST_TIMEOUT + wait.min(Duration::from_secs(60));
        self.json(self.authed(Method::GET, url, timeout)).await
    }

    // ---------------------------------------------------------------- sinks

    /// `PUT /v1/functions/{selector}/sinks/{sink}`: adds sink `sink` of the function, or
    /// replaces its configuration. Answers the function's sinks.
    ///
    /// # Errors
    /// As [`function`](Self::function); `bad_request` naming what is wrong with `config`;
    /// `conflict` when another function has a sink of that name.
    pub async fn put_sink(
        &self,
        selector: &str,
        sink: &str,
        config: &crate::sinks::SinkConfig,
    ) -> Result<crate::sinks::SinksView> {
        let sel = checked(selector)?;
        let req = self
            .request(Method::PUT, &["v1", "functions", &sel, "sinks", sink])?
            .json(config);
        self.json(req).await
    }

    /// `GET /v1/functions/{selector}/sinks`: the function's sinks, each with every
    /// runner's report of it.
    ///
    /// # Errors
    /// As [`function`](Self::function).
    pub async fn sinks(&self, selector: &str) -> Result<crate::sinks::SinksView> {
        let sel = checked(selector)?;
        self.json(self.request(Method::GET, &["v1", "functions", &sel, "sinks"])?)
            .await
    }

    /// `DELETE /v1/functions/{selector}/sinks/{sink}`. Answers the sinks left.
    ///
    /// # Errors
    /// As [`function`](Self::function); `not_found` for an unknown sink.
    pub async fn remove_sink(&self, selector: &str, sink: &str) -> Result<crate::sinks::SinksView> {
        let sel = checked(selector)?;
        self.json(self.request(Method::DELETE, &["v1", "functions", &sel, "sinks", sink])?)
            .await
    }

    /// `POST /v1/functions/{selector}/sinks/{sink}/retry`: runners resume the sink if it
    /// is `failed` (it delivers from its cursor again; nothing is skipped).
    ///
    /// # Errors
    /// As [`remove_sink`](Self::remove_sink).
    pub async fn retry_sink(&self, selector: &str, sink: &str) -> Result<crate::sinks::SinksView> {
        let sel = checked(selector)?;
        self.json(self.request(
            Method::POST,
            &["v1", "functions", &sel, "sinks", sink, "retry"],
        )?)
        .await
    }

    // ----------------------------------------------------------------- feed

    /// `GET /v1/feed/snapshot`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn feed_snapshot(&self) -> Result<FeedSnapshot> {
        self.json(self.request(Method::GET, &["v1", "feed", "snapshot"])?)
            .await
    }

    /// `GET /v1/feed?after=&wait_ms=`: entries after `after`, waiting up to
    /// `wait` (at most 60 s server-side) for the first one.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn feed(&self, after: u64, wait: Duration) -> Result<FeedPage> {
        let mut url = self.url(&["v1", "feed"])?;
        let wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        url.query_pairs_mut()
            .append_pair("after", &after.to_string())
            .append_pair("wait_ms", &wait_ms.to_string());
        let timeout = REQUEST_TIMEOUT + wait.min(Duration::from_secs(60));
        self.json(self.authed(Method::GET, url, timeout)).await
    }

    /// `POST /v1/runners/{runner_id}/report`.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn report(&self, runner_id: &str, report: &RunnerReport) -> Result<()> {
        let req = self
            .request(Method::POST, &["v1", "runners", runner_id, "report"])?
            .json(report);
        self.send(req).await.map(drop)
    }

    /// `POST /v1/runners/{runner_id}/outcomes`: a page of one function's outcome log.
    /// Idempotent by seq; the answer says what the gateway now holds.
    ///
    /// # Errors
    /// [`ClientError`].
    pub async fn push_outcomes(
        &self,
        runner_id: &str,
        page: &crate::outputs::OutcomesPage,
    ) -> Result<crate::outputs::OutcomesAck> {
        let req = self
            .request(Method::POST, &["v1", "runners", runner_id, "outcomes"])?
            .json(page);
        self.json(req).await
    }

    // -------------------------------------------------------------- plumbing

    fn url(&self, segments: &[&str]) -> Result<Url> {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .map_err(|()| ClientError::InvalidUrl {
                    url: self.base.to_string(),
                    reason: "not a base URL".into(),
                })?;
            path.pop_if_empty();
            path.extend(segments);
        }
        Ok(url)
    }

    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder> {
        Ok(self.authed(method, self.url(segments)?, REQUEST_TIMEOUT))
    }

    /// A request to `url` with the token, if any.
    fn authed(&self, method: Method, url: Url, timeout: Duration) -> RequestBuilder {
        let req = self.http.request(method, url).timeout(timeout);
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Sends a request; a non-2xx answer becomes [`ClientError::Api`].
    async fn send_raw(&self, req: RequestBuilder) -> Result<Answer> {
        let built = req.build().map_err(|e| ClientError::InvalidUrl {
            url: self.base.to_string(),
            reason: e.to_string(),
        })?;
        let method = built.method().clone();
        let url = built.url().to_string();
        let resp = self
            .http
            .execute(built)
            .await
            .map_err(|source| ClientError::Unreachable {
                url: self.base.to_string(),
                source,
            })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(Answer {
                method,
                url,
                status,
                resp,
            });
        }
        let body = resp.bytes().await.unwrap_or_default();
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { error }) => ClientError::Api {
                method,
                url,
                status,
                code: error.code,
                message: error.message,
                candidates: error.candidates,
            },
            Err(_) => ClientError::Protocol {
                method,
                url,
                status,
                reason: format!(
                    "error body is not JSON: {:?}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                ),
            },
        })
    }

    async fn send(&self, req: RequestBuilder) -> Result<(StatusCode, Vec<u8>)> {
        let answer = self.send_raw(req).await?;
        let status = answer.status;
        Ok((status, answer.bytes().await?))
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let answer = self.send_raw(req).await?;
        let (method, url, status) = (answer.method.clone(), answer.url.clone(), answer.status);
        let bytes = answer.bytes().await?;
        serde_json::from_slice(&bytes).map_err(|e| ClientError::Protocol {
            method,
            url,
            status,
            reason: format!("cannot decode the answer: {e}"),
        })
    }
}

/// A successful answer whose body is not read yet.
struct Answer {
    method: Method,
    url: String,
    status: StatusCode,
    resp: reqwest::Response,
}

impl Answer {
    async fn bytes(self) -> Result<Vec<u8>> {
        let Self {
            method,
            url,
            status,
            resp,
        } = self;
        resp.bytes()
            .await
            .map(|b| b.to_vec())
            .map_err(|e| ClientError::Protocol {
                method,
                url,
                status,
                reason: format!("reading the body failed: {e}"),
            })
    }
}

/// Validates a selector before it goes into a URL path.
fn checked(selector: &str) -> Result<String> {
    selector.parse::<Selector>()?;
    Ok(selector.to_string())
}
