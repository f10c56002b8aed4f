//! `/v1/functions`: bind, list, show, start, stop, pin, unpin, logs.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use xxfunc_api::{BindRequest, FunctionName, StartFrom, StartRequest};

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
    let outcome = state.service.bind(&name, &request.hash).await?;
    if outcome.new_version {
        Metrics::inc(&state.metrics.deploys);
    }
    Ok(HttpResponse::Ok().json(outcome.bind))
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
    Ok(HttpResponse::Ok().json(state.service.list().await?))
}

pub(crate) async fn show(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let view = state.service.function(path_param(&req, "name")).await?;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let request: StartRequest = state.optional_json(&req, payload).await?;
    let from = request.from_block.map_or(StartFrom::Head, StartFrom::Block);
    let view = state.service.start(path_param(&req, "name"), from).await?;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn stop(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let view = state.service.stop(path_param(&req, "name")).await?;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn pin(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    Ok(HttpResponse::Ok().json(state.service.pin(path_param(&req, "name")).await?))
}

pub(crate) async fn unpin(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    Ok(HttpResponse::Ok().json(state.service.unpin(path_param(&req, "name")).await?))
}

#[derive(Deserialize)]
struct LogsQuery {
    limit: Option<usize>,
}

pub(crate) async fn logs(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let query: LogsQuery = parse_query(&req)?;
    let limit = query.limit.unwrap_or(DEFAULT_LOGS).min(MAX_LOGS);
    let page = state.service.logs(path_param(&req, "name"), limit).await?;
    Ok(HttpResponse::Ok().json(page))
}
