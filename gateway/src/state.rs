//! Shared server state and the request helpers every handler uses:
//! authentication, bounded body reading, JSON and query parsing, selector resolution.

use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

use actix_web::{HttpRequest, http::header, web};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;
use tokio::sync::{RwLock, RwLockReadGuard, watch};
use xxfunc_api::{FunctionId, ModuleHash, Selector};
use xxfunc_registry::Registry;
use xxfunc_store::ModuleStore;

use crate::{
    error::{ApiError, ApiResult},
    metrics::Metrics,
};

pub(crate) struct AppState {
    pub(crate) registry: Registry,
    pub(crate) store: ModuleStore,
    token: Option<Vec<u8>>,
    pub(crate) metrics: Metrics,
    pub(crate) feed: watch::Sender<u64>,
    /// Garbage collection takes it exclusively; every write that makes a
    /// module referenced (upload, bind, start, pin) holds it shared, so a
    /// collection never deletes a module between its check and its reference.
    pub(crate) gc_lock: RwLock<()>,
    recent_uploads: Mutex<HashMap<ModuleHash, Instant>>,
    pub(crate) json_limit: usize,
    pub(crate) report_limit: usize,
    upload_grace: Duration,
}

impl AppState {
    pub(crate) fn new(
        registry: Registry,
        store: ModuleStore,
        token: Option<String>,
        json_limit: usize,
        report_limit: usize,
        upload_grace: Duration,
    ) -> Self {
        let (feed, _) = watch::channel(registry.feed_head());
        Self {
            registry,
            store,
            token: token.map(String::into_bytes),
            metrics: Metrics::default(),
            feed,
            gc_lock: RwLock::new(()),
            recent_uploads: Mutex::new(HashMap::new()),
            json_limit,
            report_limit,
            upload_grace,
        }
    }

    /// Checks the bearer token of a mutating request in constant time.
    pub(crate) fn authorize(&self, req: &HttpRequest) -> ApiResult<()> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized);
        };
        let Some(given) = value.as_bytes().strip_prefix(b"Bearer ") else {
            return Err(ApiError::Unauthorized);
        };
        if bool::from(given.ct_eq(token)) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }

    pub(crate) fn note_upload(&self, hash: ModuleHash) {
        let grace = self.upload_grace;
        let mut recent = self.recent_uploads.lock();
        let now = Instant::now();
        if recent.len() > 10_000 {
            recent.retain(|_, at| now.duration_since(*at) < grace);
        }
        recent.insert(hash, now);
    }

    pub(crate) fn recently_uploaded(&self, hash: &ModuleHash) -> bool {
        self.recent_uploads
            .lock()
            .get(hash)
            .is_some_and(|at| at.elapsed() < self.upload_grace)
    }

    /// Resolves a path selector to a function identity (listing the store
    /// only for abbreviated hash prefixes).
    pub(crate) async fn resolve_function(&self, raw: &str) -> ApiResult<FunctionId> {
        let selector: Selector = raw.parse()?;
        let registry = self.registry.clone();
        let needs = registry.needs_store_modules(&selector)?;
        let modules = if needs {
            self.store.list().await?
        } else {
            Vec::new()
        };
        Ok(registry.resolve(&selector, &modules)?)
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

    /// Holds off garbage collection while a handler refers to `id`'s module,
    /// failing with 404 when `id` is a module hash that is not stored.
    pub(crate) async fn hold_module(&self, id: &FunctionId) -> ApiResult<RwLockReadGuard<'_, ()>> {
        let guard = self.gc_lock.read().await;
        if let FunctionId::Hash(hash) = id {
            self.require_module(hash).await?;
        }
        Ok(guard)
    }

    /// Fails with 404 unless the module is stored.
    pub(crate) async fn require_module(&self, hash: &ModuleHash) -> ApiResult<()> {
        if self.store.contains(hash).await? {
            Ok(())
        } else {
            Err(ApiError::ModuleNotFound(*hash))
        }
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
