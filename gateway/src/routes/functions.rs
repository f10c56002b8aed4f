//! `/v1/functions`: bind, list, show, start, stop, pin, unpin, logs.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use xxfunc_api::{BindRequest, FunctionName, HashPrefix, StartFrom, StartRequest};

use crate::{
    error::{ApiError, ApiResult},
    metrics::Metrics,
    state::{AppState, parse_json, parse_query, path_param, read_body},
};

/// Default and largest `limit` of `GET .../logs`.
const DEFAULT_LOGS: usize = 100;
const MAX_LOGS: usize = 1000;

pub(crate) async fn bind(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let name: FunctionName = path_param(&req, "name").parse()?;
    let body = read_body(&req, payload, state.json_limit as u64).await?;
    let request: BindRequest = parse_json(&body)?;
    let prefix: HashPrefix = request
        .hash
        .parse()
        .map_err(|e| ApiError::from(xxfunc_store::StoreError::from(e)))?;
    let _gc = state.gc_lock.read().await;
    let hash = match prefix.as_full() {
        Some(full) => {
            state.require_module(&full).await?;
            full
        }
        None => state.store.resolve(prefix.hex()).await?,
    };
    let registry = state.registry.clone();
    let before = registry.lookup_name(&name)?.map(|b| b.version);
    let response = web::block(move || registry.bind(&name, hash)).await??;
    if before != Some(response.version) {
        Metrics::inc(&state.metrics.deploys);
    }
    Ok(HttpResponse::Ok().json(response))
}

/// Any `/v1/functions/...` path no other route matched: a name with `/`, or empty.
pub(crate) async fn bad_function_path(req: HttpRequest) -> ApiResult<HttpResponse> {
    let rest = path_param(&req, "rest");
    let name = rest.strip_suffix('/').unwrap_or(rest);
    match name.parse::<FunctionName>() {
        Err(e) => Err(e.into()),
        Ok(_) => Err(ApiError::NoRoute {
            method: req.method().to_string(),
            path: req.path().to_string(),
        }),
    }
}

pub(crate) async fn list(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.registry.list()?))
}

pub(crate) async fn show(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let id = state.resolve_function(path_param(&req, "name")).await?;
    Ok(HttpResponse::Ok().json(state.registry.function(&id)?))
}

pub(crate) async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let request: StartRequest = state.optional_json(&req, payload).await?;
    let from = request.from_block.map_or(StartFrom::Head, StartFrom::Block);
    let id = state.resolve_function(path_param(&req, "name")).await?;
    let _gc = state.hold_module(&id).await?;
    let registry = state.registry.clone();
    let view = web::block(move || {
        registry.start(&id, from)?;
        registry.function(&id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn stop(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let id = state.resolve_function(path_param(&req, "name")).await?;
    let registry = state.registry.clone();
    let view = web::block(move || {
        registry.stop(&id)?;
        registry.function(&id)
    })
    .await??;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn pin(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let id = state.resolve_function(path_param(&req, "name")).await?;
    let _gc = state.hold_module(&id).await?;
    let registry = state.registry.clone();
    Ok(HttpResponse::Ok().json(web::block(move || registry.pin(&id)).await??))
}

pub(crate) async fn unpin(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let id = state.resolve_function(path_param(&req, "name")).await?;
    let registry = state.registry.clone();
    Ok(HttpResponse::Ok().json(web::block(move || registry.unpin(&id)).await??))
}

#[derive(Deserialize)]
struct LogsQuery {
    limit: Option<usize>,
}

pub(crate) async fn logs(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let query: LogsQuery = parse_query(&req)?;
    let limit = query.limit.unwrap_or(DEFAULT_LOGS).min(MAX_LOGS);
    let id = state.resolve_function(path_param(&req, "name")).await?;
    Ok(HttpResponse::Ok().json(state.registry.logs(&id, limit)?))
}
