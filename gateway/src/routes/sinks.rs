//! `/v1/functions/{name}/sinks`: a function's sinks (list, add or change, remove, retry).

use actix_web::{HttpRequest, HttpResponse, web};
use xxfunc_api::sinks::SinkConfig;

use crate::{
    error::ApiResult,
    state::{AppState, parse_json, path_param, read_body},
};

pub(crate) async fn list(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let view = state.service.sinks(path_param(&req, "name")).await?;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn set(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let body = read_body(&req, payload, state.json_limit as u64).await?;
    let config: SinkConfig = parse_json(&body)?;
    let view = state
        .service
        .set_sink(path_param(&req, "name"), path_param(&req, "sink"), config)
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn remove(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let view = state
        .service
        .remove_sink(path_param(&req, "name"), path_param(&req, "sink"))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}

pub(crate) async fn retry(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let view = state
        .service
        .retry_sink(path_param(&req, "name"), path_param(&req, "sink"))
        .await?;
    Ok(HttpResponse::Ok().json(view))
}
