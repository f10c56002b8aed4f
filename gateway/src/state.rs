//! Shared server state and the request helpers every handler uses:
//! authentication, bounded body reading, JSON and query parsing.

use actix_web::{HttpRequest, http::header, web};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use tokio::sync::watch;
use xxfunc_registry::Registry;
use xxfunc_service::Service;

use crate::{
    error::{ApiError, ApiResult},
    metrics::Metrics,
};

pub(crate) struct AppState {
    /// Every business rule: handlers parse, authorise, call it and map its error.
    pub(crate) service: Service,
    /// The service's registry, for what is no business rule: the feed's long poll,
    /// `/healthz` and `/metrics` readings.
    pub(crate) registry: Registry,
    token: Option<Vec<u8>>,
    read_token: Option<Vec<u8>>,
    pub(crate) metrics: Metrics,
    pub(crate) feed: watch::Sender<u64>,
    /// Bumped after every push that stored outcomes (outputs long polls and streams wait on it).
    pub(crate) outcomes: watch::Sender<u64>,
    pub(crate) json_limit: usize,
    pub(crate) report_limit: usize,
    /// How long an event stream waits for a client that does not read before cutting it.
    pub(crate) sse_send_timeout: std::time::Duration,
}

impl AppState {
    pub(crate) fn new(
        service: Service,
        token: Option<String>,
        read_token: Option<String>,
        json_limit: usize,
        report_limit: usize,
        sse_send_timeout: std::time::Duration,
    ) -> Self {
        let registry = service.registry().clone();
        let (feed, _) = watch::channel(registry.feed_head());
        let (outcomes, _) = watch::channel(0);
        Self {
            service,
            registry,
            token: token.map(String::into_bytes),
            read_token: read_token.map(String::into_bytes),
            metrics: Metrics::default(),
            feed,
            outcomes,
            json_limit,
            report_limit,
            sse_send_timeout,
        }
    }

    /// Checks the bearer token of a mutating request in constant time.
    pub(crate) fn authorize(&self, req: &HttpRequest) -> ApiResult<()> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        check_bearer(req, &[token])
    }

    /// With a read token configured, checks the bearer token of a read (`GET` or
    /// `HEAD` under `/v1/` but the OpenAPI document, and `/metrics`): the read token
    /// or the write token. Other requests pass (mutating handlers call
    /// [`authorize`](Self::authorize)).
    pub(crate) fn authorize_read(&self, req: &HttpRequest) -> ApiResult<()> {
        let Some(read) = &self.read_token else {
            return Ok(());
        };
        let path = req.path();
        let is_read = matches!(
            *req.method(),
            actix_web::http::Method::GET | actix_web::http::Method::HEAD
        );
        let guarded =
            (path.starts_with("/v1/") && path != "/v1/openapi.json") || path == "/metrics";
        if !is_read || !guarded {
            return Ok(());
        }
        let tokens: Vec<&Vec<u8>> = [Some(read), self.token.as_ref()]
            .into_iter()
            .flatten()
            .collect();
        check_bearer(req, &tokens)
    }

    /// An optional JSON body of at most `json_limit` bytes (empty: `T::default()`).
    pub(crate) async fn optional_json<T: DeserializeOwned + Default>(
        &self,
        req: &HttpRequest,
        payload: web::Payload,
    ) -> ApiResult<T> {
        let body = read_body(req, payload, self.json_limit as u64).await?;
        parse_optional_json(&body)
    }
}

/// Reads a request body of at most `limit` bytes.
pub(crate) async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: u64,
) -> ApiResult<Bytes> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > limit
    {
        return Err(ApiError::TooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|e| ApiError::BadRequest(format!("reading the request body failed: {e}")))?;
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Parses a required JSON body.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("the request needs a JSON body".into()));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("malformed JSON body: {e}")))
}

/// Parses an optional JSON body; an empty body is `T::default()`.
pub(crate) fn parse_optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_json(body)
}

/// Parses the query string.
pub(crate) fn parse_query<T: DeserializeOwned>(req: &HttpRequest) -> ApiResult<T> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| {
            ApiError::BadRequest(format!("bad query string {:?}: {e}", req.query_string()))
        })
}

/// The raw `{name}`-style path parameter.
pub(crate) fn path_param<'a>(req: &'a HttpRequest, key: &str) -> &'a str {
    req.match_info().get(key).unwrap_or_default()
}

/// `Authorization: Bearer T` with `T` one of `tokens` (compared in constant time):
/// none given is 401, a wrong one 403.
fn check_bearer(req: &HttpRequest, tokens: &[&Vec<u8>]) -> ApiResult<()> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized);
    };
    let Some(given) = value.as_bytes().strip_prefix(b"Bearer ") else {
        return Err(ApiError::Unauthorized);
    };
    let mut ok = subtle::Choice::from(0);
    for token in tokens {
        ok |= given.ct_eq(token.as_slice());
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(ApiError::Forbidden)
    }
}
