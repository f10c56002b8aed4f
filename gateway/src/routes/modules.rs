//! `POST /v1/modules`, `GET /v1/modules/{hash}`, `POST /v1/gc`.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use xxfunc_api::GcRequest;
use xxfunc_service::ServiceError;

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
    let bytes = read_body(&req, payload, state.service.store().max_module_size()).await?;
    let body = match state.service.upload(bytes).await {
        Err(e @ ServiceError::InvalidModule(_)) => {
            Metrics::inc(&state.metrics.uploads_rejected);
            return Err(e.into());
        }
        result => result?,
    };
    if body.created {
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
    let (hash, bytes) = state.service.module(path_param(&req, "hash")).await?;
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
    let gc = state.service.gc(request.dry_run).await?;
    if !gc.dry_run {
        for _ in &gc.removed {
            Metrics::inc(&state.metrics.gc_removed);
        }
    }
    Ok(HttpResponse::Ok().json(gc))
}
