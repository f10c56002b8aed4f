//! `/healthz`, `/metrics`, `/v1/openapi.json` and the JSON 404/405 fallbacks.

use actix_web::{HttpRequest, HttpResponse, http::StatusCode, web};
use xxfunc_api::{DesiredState, ErrorBody, ErrorDetail, Health, codes};

use crate::{
    error::{ApiError, ApiResult},
    metrics::Gauges,
    openapi,
    state::AppState,
};

pub(crate) async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        feed_head: state.registry.feed_head(),
    })
}

pub(crate) async fn metrics(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    let registry = state.registry.clone();
    let (functions, started) = web::block(move || {
        registry.snapshot().map(|s| {
            let started = s
                .functions
                .iter()
                .filter(|f| f.desired == DesiredState::Started)
                .count();
            (s.functions.len() as u64, started as u64)
        })
    })
    .await??;
    let gauges = Gauges {
        feed_head: state.registry.feed_head(),
        functions,
        started,
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(&gauges)))
}

pub(crate) async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(openapi::json())
}

pub(crate) async fn no_route(req: HttpRequest) -> ApiResult<HttpResponse> {
    Err(ApiError::NoRoute {
        method: req.method().to_string(),
        path: req.path().to_string(),
    })
}

pub(crate) async fn method_not_allowed(req: HttpRequest) -> HttpResponse {
    HttpResponse::build(StatusCode::METHOD_NOT_ALLOWED).json(ErrorBody {
        error: ErrorDetail {
            code: codes::BAD_REQUEST.into(),
            message: format!(
                "{} is not allowed on {}; see GET /v1/openapi.json",
                req.method(),
                req.path()
            ),
            candidates: Vec::new(),
        },
    })
}
