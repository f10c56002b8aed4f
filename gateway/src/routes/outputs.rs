//! `GET /v1/functions/{name}/outputs`: a function's output items by cursor, as JSON
//! pages (a long poll) or as Server-Sent Events.
//!
//! Both read [`xxfunc_registry::Registry::outputs`] and wait on the outcome-arrival
//! notification (a `watch` the registry's outcome listener bumps), never on a thread.
//!
//! The event stream sticks to one runner's log (the first page's), so a consumer never
//! sees two runners' logs interleaved. Each item is one event: `id:` its seq, `event:`
//! `insert` or `retract`, `data:` the item's JSON; `Last-Event-ID` resumes exactly after
//! that seq. A producer task per connection feeds a bounded channel (64 events and 4 MiB
//! of event data); a client that does not read for the send timeout while the channel is
//! full is disconnected: its buffered events are dropped at once, its socket is shut down
//! (the server stops polling a body whose socket is full, so ending the body alone would
//! never reach it), and its response ends with an error. A connection never holds more
//! than the channel, one page and the socket's buffers. The producer ends as soon as its
//! client goes: it holds the channel's receiving end only weakly.

use std::{
    any::Any,
    net::Shutdown,
    os::fd::AsFd,
    pin::Pin,
    sync::{Arc, Weak},
    task::{Context, Poll},
    time::Duration,
};

use actix_web::{HttpRequest, HttpResponse, Responder, dev::Extensions, http::header, web};
use actix_web_lab::sse;
use futures::Stream;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use xxfunc_api::{
    FunctionId,
    outputs::{ItemKind, OutputsPage, OutputsQuery},
};

use crate::{
    config::MAX_FEED_WAIT_MS,
    error::{ApiError, ApiResult},
    metrics::SseClient,
    routes::feed::valid_runner_id,
    state::{AppState, parse_query, path_param},
};

/// Events buffered per connection before the producer waits for the client.
pub(crate) const SSE_BUFFER: usize = 64;

/// Bytes of event data buffered per connection before the producer waits for the
/// client (an event larger than this is buffered alone).
pub(crate) const SSE_BUFFER_BYTES: usize = 4 << 20;

/// Items per page the event stream reads.
const SSE_PAGE: usize = 1000;

/// A comment is sent after this long without events, so proxies keep the connection.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

#[derive(Deserialize)]
struct Query {
    #[serde(default)]
    after: u64,
    #[serde(default)]
    confirmations: u64,
    limit: Option<usize>,
    #[serde(default)]
    wait_ms: u64,
    runner: Option<String>,
}

pub(crate) async fn outputs(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> ApiResult<HttpResponse> {
    let query: Query = parse_query(&req)?;
    if let Some(runner) = &query.runner
        && !valid_runner_id(runner)
    {
        return Err(ApiError::BadRequest(format!(
            "invalid runner {runner:?}: use 1 to 128 letters, digits, '.', '_' or '-'"
        )));
    }
    let id = state.service.resolve(path_param(&req, "name")).await?;
    let mut outputs = OutputsQuery {
        after: query.after,
        limit: query.limit,
        confirmations: query.confirmations,
        runner: query.runner,
    };
    if wants_event_stream(&req) {
        if let Some(last) = req.headers().get("last-event-id") {
            outputs.after = last
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(format!(
                        "Last-Event-ID {last:?} is not an item seq (a non-negative integer)"
                    ))
                })?;
        }
        return stream(state, req, id, outputs).await;
    }
    let wait = Duration::from_millis(query.wait_ms.min(MAX_FEED_WAIT_MS));
    let page = long_poll(&state, id, outputs, wait).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// Whether the client asked for `text/event-stream`.
fn wants_event_stream(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|v| {
            v.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// A page, waiting up to `wait` for one with items.
async fn long_poll(
    state: &AppState,
    id: FunctionId,
    query: OutputsQuery,
    wait: Duration,
) -> ApiResult<OutputsPage> {
    // Subscribed before the first read, so a push between the read and the wait wakes it.
    let mut arrivals = state.outcomes.subscribe();
    let page = state.service.outputs(id.clone(), query.clone()).await?;
    if !page.items.is_empty() || wait.is_zero() {
        return Ok(page);
    }
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    let mut page = page;
    loop {
        tokio::select! {
            changed = arrivals.changed() => if changed.is_err() { return Ok(page) },
            () = &mut deadline => return Ok(page),
        }
        arrivals.borrow_and_update();
        page = state.service.outputs(id.clone(), query.clone()).await?;
        if !page.items.is_empty() {
            return Ok(page);
        }
    }
}

/// The Server-Sent Events answer. Errors of the first page (unknown function, `after`
/// beyond the head) are JSON answers, like the rest of the API.
async fn stream(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: FunctionId,
    mut query: OutputsQuery,
) -> ApiResult<HttpResponse> {
    query.limit = Some(query.limit.unwrap_or(SSE_PAGE).min(SSE_PAGE));
    let arrivals = state.outcomes.subscribe();
    let first = state.service.outputs(id.clone(), query.clone()).await?;
    let (tx, rx) = mpsc::channel::<Buffered>(SSE_BUFFER);
    let rx = Arc::new(Mutex::new(Some(rx)));
    let client = state.metrics.sse_client();
    let conn = req.conn_data::<Connection>().cloned();
    tokio::spawn(produce(
        state.clone(),
        id,
        query,
        first,
        arrivals,
        tx,
        Arc::downgrade(&rx),
        Cut {
            conn,
            _client: client,
        },
    ));
    let events = Events { rx };
    Ok(sse::Sse::from_stream(events)
        .with_keep_alive(SSE_KEEP_ALIVE)
        .respond_to(&req)
        .map_into_boxed_body())
}

/// Feeds one connection: pages of items as events, then waits for arrivals.
#[allow(clippy::too_many_arguments)]
async fn produce(
    state: web::Data<AppState>,
    id: FunctionId,
    mut query: OutputsQuery,
    first: OutputsPage,
    mut arrivals: watch::Receiver<u64>,
    tx: mpsc::Sender<Buffered>,
    rx: Weak<Mutex<Option<mpsc::Receiver<Buffered>>>>,
    cut: Cut,
) {
    let timeout = state.sse_send_timeout;
    let bytes = Arc::new(Semaphore::new(SSE_BUFFER_BYTES));
    let mut page = first;
    loop {
        // The stream sticks to the first runner that has a log.
        if query.runner.is_none() && !page.runner.is_empty() {
            query.runner = Some(page.runner.clone());
        }
        let progressed = page.next > query.after;
        for item in page.items {
            let data = match serde_json::to_string(&item) {
                Ok(data) => data,
                Err(e) => {
                    tracing::warn!(error = %e, "an output item does not serialise");
                    return;
                }
            };
            let kind = match item.kind {
                ItemKind::Insert => "insert",
                ItemKind::Retract => "retract",
            };
            let size = u32::try_from(data.len().clamp(1, SSE_BUFFER_BYTES)).unwrap_or(u32::MAX);
            let event = sse::Data::new(data).id(item.seq.to_string()).event(kind);
            // Room in the connection's byte budget, then in its channel: a client that
            // leaves either full for the send timeout does not read.
            let read = match tokio::time::timeout(timeout, bytes.clone().acquire_many_owned(size))
                .await
            {
                Ok(Ok(permit)) => match tx.send_timeout((event.into(), permit), timeout).await {
                    Ok(()) => true,
                    Err(mpsc::error::SendTimeoutError::Timeout(_)) => false,
                    Err(mpsc::error::SendTimeoutError::Closed(_)) => return,
                },
                Ok(Err(_closed)) => return,
                Err(_elapsed) => false,
            };
            if !read {
                // Drop what it has buffered now, end its response with an error and
                // shut its socket down.
                if let Some(rx) = rx.upgrade() {
                    rx.lock().take();
                }
                cut.disconnect();
                state.metrics.sse_slow_clients.inc();
                return;
            }
        }
        query.after = page.next;
        if !progressed {
            // Nothing new: wait for an arrival, or for the client to go.
            tokio::select! {
                changed = arrivals.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
            arrivals.borrow_and_update();
        }
        page = match state.service.outputs(id.clone(), query.clone()).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "reading outputs for an event stream failed");
                return;
            }
        };
    }
}

/// The receiving end of a connection's events. The response body owns it; its producer
/// holds it weakly (so a client that goes drops it, and the producer sees the channel
/// closed) and takes it away from a client that does not read.
type Shared = Arc<Mutex<Option<mpsc::Receiver<Buffered>>>>;

/// An event in a connection's buffer, holding its share of the byte budget until the
/// response body takes it.
type Buffered = (sse::Event, OwnedSemaphorePermit);

/// A handle on a connection's socket (a duplicate of its descriptor, closed with the
/// connection's data), taken when the connection opens.
#[derive(Clone)]
pub(crate) struct Connection(Arc<std::net::TcpStream>);

/// Stores a [`Connection`] for each TCP connection (`HttpServer::on_connect`).
pub(crate) fn on_connect(conn: &dyn Any, data: &mut Extensions) {
    let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() else {
        return;
    };
    match tcp.as_fd().try_clone_to_owned() {
        Ok(fd) => {
            data.insert(Connection(Arc::new(std::net::TcpStream::from(fd))));
        }
        Err(e) => tracing::debug!(error = %e, "no handle on a connection's socket"),
    }
}

/// What a producer holds of its client: the socket to cut and the client's place in
/// the `xxfunc_sse_clients` gauge (released when the producer ends).
struct Cut {
    conn: Option<Connection>,
    _client: SseClient,
}

impl Cut {
    /// Shuts the client's socket down, so the server's pending writes fail and the
    /// connection closes although its send buffer is full.
    fn disconnect(&self) {
        if let Some(Connection(socket)) = &self.conn
            && let Err(e) = socket.shutdown(Shutdown::Both)
        {
            tracing::debug!(error = %e, "shutting a slow client's socket down failed");
        }
    }
}

/// A connection's response body: its events, until the producer ends (the response
/// ends) or gives up on the client (the response ends with an error, which drops the
/// connection).
struct Events {
    rx: Shared,
}

/// Why an event stream was cut.
#[derive(Debug, thiserror::Error)]
#[error("the client did not read its event stream; disconnected")]
struct SlowClient;

impl Stream for Events {
    type Item = Result<sse::Event, SlowClient>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        match self.rx.lock().as_mut() {
            Some(rx) => rx
                .poll_recv(cx)
                .map(|buffered| buffered.map(|(event, _permit)| Ok(event))),
            None => Poll::Ready(Some(Err(SlowClient))),
        }
    }
}
