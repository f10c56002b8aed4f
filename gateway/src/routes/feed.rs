//! The change feed for runners, their reports and their outcome pushes.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use xxfunc_api::{RunnerReport, outputs::OutcomesPage};

use crate::{
    config::MAX_FEED_WAIT_MS,
    error::{ApiError, ApiResult},
    metrics::Metrics,
    state::{AppState, parse_json, parse_query, path_param, read_body},
};

/// Default page size of `GET /v1/feed`.
const DEFAULT_PAGE: usize = 1000;

pub(crate) async fn snapshot(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    Ok(HttpResponse::Ok().json(state.service.snapshot().await?))
}

#[derive(Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    wait_ms: u64,
    limit: Option<usize>,
}

/// `GET /v1/feed?after=&wait_ms=&limit=`: a long poll that waits on the
/// registry's commit notification without holding a thread.
pub(crate) async fn feed(state: web::Data<AppState>, req: HttpRequest) -> ApiResult<HttpResponse> {
    let query: FeedQuery = parse_query(&req)?;
    let wait = Duration::from_millis(query.wait_ms.min(MAX_FEED_WAIT_MS));
    let mut rx = state.feed.subscribe();
    if state.registry.feed_head() <= query.after && !wait.is_zero() {
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            if *rx.borrow_and_update() > query.after {
                break;
            }
            tokio::select! {
                changed = rx.changed() => if changed.is_err() { break },
                () = &mut deadline => break,
            }
        }
    }
    let page = state
        .service
        .feed_after(query.after, query.limit.unwrap_or(DEFAULT_PAGE))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Runner ids: 1 to 128 of `[A-Za-z0-9._-]`.
pub(crate) fn valid_runner_id(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// `POST /v1/runners/{runner}/outcomes`: a page of one function's outcome log,
/// stored idempotently by seq; answers what the gateway now holds.
pub(crate) async fn outcomes(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let runner = runner_param(&req)?;
    let body = read_body(&req, payload, state.report_limit as u64).await?;
    let page: OutcomesPage = parse_json(&body)?;
    let ack = state.service.record_outcomes(runner, page).await?;
    Ok(HttpResponse::Ok().json(ack))
}

/// The `{runner}` path parameter, checked.
fn runner_param(req: &HttpRequest) -> ApiResult<String> {
    let runner = path_param(req, "runner").to_string();
    if !valid_runner_id(&runner) {
        return Err(ApiError::BadRequest(format!(
            "invalid runner id {runner:?}: use 1 to 128 letters, digits, '.', '_' or '-'"
        )));
    }
    Ok(runner)
}

pub(crate) async fn report(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    state.authorize(&req)?;
    let runner = runner_param(&req)?;
    let body = read_body(&req, payload, state.report_limit as u64).await?;
    let report: RunnerReport = parse_json(&body)?;
    state.service.record_report(runner, report).await?;
    Metrics::inc(&state.metrics.reports);
    Ok(HttpResponse::NoContent().finish())
}
