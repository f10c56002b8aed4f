//! `POST /v1/modules`, `GET /v1/modules/{hash}`, `POST /v1/gc`.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use xxfunc_api::{GcRequest, GcResponse, UploadResponse, validate_module};

use crate::{
    error::{ApiError, ApiResult},
    metrics::Metrics,
    state::{AppState, path_param, read_body},
};

/// Content types accepted for module uploads.
const WASM_TYPES: [&str; 2] = ["application/wasm", "application/octet-stream"];

pub(crate) async fn upload(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if !WASM_TYPES.contains(&mime.as_str()) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "upload module bytes with Content-Type: application/wasm (got {content_type:?})"
        )));
    }
    let bytes = read_body(&req, payload, state.store.max_module_size()).await?;
    let checked = bytes.clone();
    let validation = web::block(move || validate_module(&checked)).await?;
    if let Err(e) = validation {
        Metrics::inc(&state.metrics.uploads_rejected);
        return Err(e.into());
    }
    let _gc = state.gc_lock.read().await;
    let outcome = state.store.put(bytes).await?;
    state.note_upload(outcome.hash);
    let body = UploadResponse {
        hash: outcome.hash,
        size: outcome.size,
        created: outcome.created,
    };
    if outcome.created {
        Metrics::inc(&state.metrics.uploads_created);
        Ok(HttpResponse::Created().json(body))
    } else {
        Metrics::inc(&state.metrics.uploads_existing);
        Ok(HttpResponse::Ok().json(body))
    }
}

pub(crate) async fn download(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let raw = path_param(&req, "hash");
    let hash = state.store.resolve(raw).await?;
    let bytes = state.store.get(&hash).await?;
    Ok(HttpResponse::Ok()
        .content_type("application/wasm")
        .insert_header((header::ETAG, format!("\"{hash}\"")))
        .insert_header(("x-xxfunc-hash", hash.to_string()))
        .body(bytes))
}

pub(crate) async fn gc(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let request: GcRequest = state.optional_json(&req, payload).await?;
    let _gc = state.gc_lock.write().await;
    let stored = state.store.list().await?;
    let registry = state.registry.clone();
    let referenced = web::block(move || registry.referenced_hashes()).await??;
    let (mut removed, mut kept) = (Vec::new(), 0u64);
    for hash in stored {
        if referenced.contains(&hash) || state.recently_uploaded(&hash) {
            kept += 1;
        } else {
            removed.push(hash);
        }
    }
    if !request.dry_run {
        for hash in &removed {
            state.store.delete(hash).await?;
            Metrics::inc(&state.metrics.gc_removed);
        }
    }
    Ok(HttpResponse::Ok().json(GcResponse {
        removed,
        kept,
        dry_run: request.dry_run,
    }))
}
