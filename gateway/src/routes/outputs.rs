//! `GET /v1/functions/{name}/outputs`: a function's output items by cursor, as JSON
//! pages (a long poll) or as Server-Sent Events.
//!
//! Both read [`xxfunc_registry::Registry::outputs`] and wait on the outcome-arrival
//! notification (a `watch` the registry's outcome listener bumps), never on a thread.
//!
//! The event stream sticks to one runner's log (the first page's), so a consumer never
//! sees two runners' logs interleaved. Each item is one event: `id:` its seq, `event:`
//! `insert` or `retract`, `data:` the item's JSON; `Last-Event-ID` resumes exactly after
//! that seq. Events are encoded with `russe` (the SSE codec of actix-web-lab's responder)
//! many to a body chunk of about 64 KiB, so a page costs a few writes and reads, not one
//! per event. A producer task per connection feeds a bounded channel (64 chunks and 4 MiB
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

use actix_web::{
    HttpRequest, HttpResponse,
    dev::Extensions,
    http::header::{self, CacheControl, CacheDirective, ContentEncoding},
    web,
};
use bytes::{Bytes, BytesMut};
use futures::Stream;
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch},
    time::{Interval, MissedTickBehavior},
};
use tokio_util::codec::Encoder as _;
use xxfunc_api::{
    BlockRef, FunctionId, ModuleHash,
    outputs::{ItemKind, OutputItem, OutputsPage, OutputsQuery},
};
use xxfunc_service::ServiceError;

use crate::{
    config::MAX_FEED_WAIT_MS,
    error::{ApiError, ApiResult},
    metrics::SseClient,
    routes::feed::valid_runner_id,
    state::{AppState, parse_query, path_param},
};

/// Body chunks buffered per connection before the producer waits for the client.
pub(crate) const SSE_BUFFER: usize = 64;

/// Encoded events per body chunk: a chunk is sent once it holds this many bytes (and at
/// the end of every page).
const SSE_CHUNK_BYTES: usize = 64 << 10;

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
    let mut keep_alive =
        tokio::time::interval_at(tokio::time::Instant::now() + SSE_KEEP_ALIVE, SSE_KEEP_ALIVE);
    keep_alive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // As actix-web-lab's SSE responder answers: never compressed (a compressing proxy
    // or middleware would hold events back), never cached.
    Ok(HttpResponse::Ok()
        .content_type(russe::MEDIA_TYPE_STR)
        .insert_header(ContentEncoding::Identity)
        .insert_header(CacheControl(vec![CacheDirective::NoCache]))
        .streaming(Events { rx, keep_alive }))
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
    let mut sender = Sender {
        tx,
        rx,
        cut,
        budget: Arc::new(Semaphore::new(SSE_BUFFER_BYTES)),
        timeout: state.sse_send_timeout,
        chunk: BytesMut::with_capacity(SSE_CHUNK_BYTES + 1024),
        envelope: Envelope::default(),
    };
    let mut page = first;
    loop {
        // The stream sticks to the first runner that has a log.
        if query.runner.is_none() && !page.runner.is_empty() {
            query.runner = Some(page.runner.clone());
        }
        let progressed = page.next > query.after;
        query.after = page.next;
        // A page that advanced may have more behind it: the next one is read while
        // this one is encoded and sent (the read runs on the blocking pool, the
        // encoding here), so a client catching up is not held by the two in turn.
        let ahead = progressed.then(|| {
            let (state, id, query) = (state.clone(), id.clone(), query.clone());
            Ahead(tokio::spawn(async move {
                state.service.outputs(id, query).await
            }))
        });
        if ahead.is_some() {
            // Lets the read start (it hands the work to the blocking pool at once).
            tokio::task::yield_now().await;
        }
        for item in &page.items {
            if let Err(e) = sender.encode(item) {
                tracing::warn!(error = %e, "an output item does not encode as an event");
                return;
            }
            if sender.chunk.len() >= SSE_CHUNK_BYTES && !sender.flush(&state).await {
                return;
            }
        }
        if !sender.flush(&state).await {
            return;
        }
        let next = match ahead {
            Some(mut ahead) => match (&mut ahead.0).await {
                Ok(read) => read,
                Err(e) => Err(ServiceError::Worker(e)),
            },
            None => {
                // Nothing new: wait for an arrival, or for the client to go.
                tokio::select! {
                    changed = arrivals.changed() => if changed.is_err() { return },
                    () = sender.tx.closed() => return,
                }
                arrivals.borrow_and_update();
                state.service.outputs(id.clone(), query.clone()).await
            }
        };
        page = match next {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(error = %e, "reading outputs for an event stream failed");
                return;
            }
        };
    }
}

/// A page being read ahead; aborted if the producer ends first.
struct Ahead(tokio::task::JoinHandle<Result<OutputsPage, ServiceError>>);

impl Drop for Ahead {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A producer's end of its connection: events encoded into the next chunk, and the
/// channel and byte budget chunks go through.
struct Sender {
    tx: mpsc::Sender<Buffered>,
    rx: Weak<Mutex<Option<mpsc::Receiver<Buffered>>>>,
    cut: Cut,
    budget: Arc<Semaphore>,
    timeout: Duration,
    chunk: BytesMut,
    envelope: Envelope,
}

impl Sender {
    /// Appends `item`'s event to the chunk.
    fn encode(&mut self, item: &OutputItem) -> Result<(), EncodeError> {
        encode_event(item, &mut self.envelope, &mut self.chunk)
    }

    /// Sends the chunk, if it holds anything. False when the producer must end: the
    /// client went, or it did not read and was disconnected.
    async fn flush(&mut self, state: &AppState) -> bool {
        if self.chunk.is_empty() {
            return true;
        }
        let chunk = self.chunk.split().freeze();
        let size = u32::try_from(chunk.len().clamp(1, SSE_BUFFER_BYTES)).unwrap_or(u32::MAX);
        // Room in the connection's byte budget, then in its channel: a client that
        // leaves either full for the send timeout does not read.
        let timeout = self.timeout;
        let read = match tokio::time::timeout(timeout, self.budget.clone().acquire_many_owned(size))
            .await
        {
            Ok(Ok(permit)) => match self.tx.send_timeout((chunk, permit), timeout).await {
                Ok(()) => true,
                Err(mpsc::error::SendTimeoutError::Timeout(_)) => false,
                Err(mpsc::error::SendTimeoutError::Closed(_)) => return false,
            },
            Ok(Err(_closed)) => return false,
            Err(_elapsed) => false,
        };
        if !read {
            // Drop what it has buffered now, end its response with an error and
            // shut its socket down.
            if let Some(rx) = self.rx.upgrade() {
                rx.lock().take();
            }
            self.cut.disconnect();
            state.metrics.sse_slow_clients.inc();
        }
        read
    }
}

/// The JSON of the fields an outcome's items share (`kind`, `block`, `hash`, `runner`),
/// rendered by serde once per outcome rather than once per item.
#[derive(Default)]
struct Envelope {
    of: Option<(ItemKind, BlockRef, ModuleHash, String)>,
    json: String,
}

impl Envelope {
    /// The shared fields of `item` as JSON members (`"kind":…,"runner":…`).
    fn of(&mut self, item: &OutputItem) -> Result<&str, serde_json::Error> {
        let same = self.of.as_ref().is_some_and(|(kind, block, hash, runner)| {
            *kind == item.kind
                && *block == item.block
                && *hash == item.hash
                && *runner == item.runner
        });
        if !same {
            self.json = format!(
                r#""kind":{},"block":{},"hash":{},"runner":{}"#,
                serde_json::to_string(&item.kind)?,
                serde_json::to_string(&item.block)?,
                serde_json::to_string(&item.hash)?,
                serde_json::to_string(&item.runner)?,
            );
            self.of = Some((item.kind, item.block, item.hash, item.runner.clone()));
        }
        Ok(&self.json)
    }
}

/// `item` as JSON, byte for byte what `serde_json::to_string(item)` writes (the
/// fields in declaration order, each value rendered by serde), with the shared fields
/// from `envelope`.
fn item_json(item: &OutputItem, envelope: &mut Envelope) -> Result<String, serde_json::Error> {
    use std::fmt::Write as _;
    let shared = envelope.of(item)?;
    let record = item.record.as_ref().map_or(0, |r| r.get().len());
    let b64 = item.record_b64.as_ref().map_or(0, String::len);
    let mut out = String::with_capacity(shared.len() + record + b64 + 64);
    let _ = write!(out, r#"{{"seq":{},{shared}"#, item.seq);
    if let Some(raw) = &item.record {
        out.push_str(r#","record":"#);
        out.push_str(raw.get());
    }
    if let Some(b64) = &item.record_b64 {
        out.push_str(r#","record_b64":"#);
        out.push_str(&serde_json::to_string(b64)?);
    }
    if item.binary {
        out.push_str(r#","binary":true"#);
    }
    out.push('}');
    Ok(out)
}

/// Appends `item` as an event to `dst`: `id:` its seq, `event:` its kind, `data:` its
/// JSON.
fn encode_event(
    item: &OutputItem,
    envelope: &mut Envelope,
    dst: &mut BytesMut,
) -> Result<(), EncodeError> {
    let data = item_json(item, envelope)?;
    let kind = match item.kind {
        ItemKind::Insert => "insert",
        ItemKind::Retract => "retract",
    };
    let message = russe::Message {
        data: data.into(),
        event: Some(kind.into()),
        id: Some(item.seq.to_string().into()),
        retry: None,
    };
    russe::Encoder::default().encode(russe::Event::Message(message), dst)?;
    Ok(())
}

/// Why an item could not be encoded as an event.
#[derive(Debug, thiserror::Error)]
enum EncodeError {
    #[error("the item does not serialise: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the event does not encode: {0}")]
    Sse(#[from] russe::Error),
}

/// The receiving end of a connection's events. The response body owns it; its producer
/// holds it weakly (so a client that goes drops it, and the producer sees the channel
/// closed) and takes it away from a client that does not read.
type Shared = Arc<Mutex<Option<mpsc::Receiver<Buffered>>>>;

/// A chunk of encoded events in a connection's buffer, holding its share of the byte
/// budget until the response body takes it.
type Buffered = (Bytes, OwnedSemaphorePermit);

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

/// A connection's response body: its chunks of events, until the producer ends (the
/// response ends) or gives up on the client (the response ends with an error, which
/// drops the connection); a keep-alive comment after a quiet period.
struct Events {
    rx: Shared,
    keep_alive: Interval,
}

/// Why an event stream was cut.
#[derive(Debug, thiserror::Error)]
#[error("the client did not read its event stream; disconnected")]
struct SlowClient;

/// The comment sent when a stream has been quiet for [`SSE_KEEP_ALIVE`].
const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

impl Stream for Events {
    type Item = Result<Bytes, SlowClient>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.rx.lock().as_mut() {
            Some(rx) => match rx.poll_recv(cx) {
                Poll::Ready(Some((chunk, _permit))) => {
                    this.keep_alive.reset();
                    return Poll::Ready(Some(Ok(chunk)));
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {}
            },
            None => return Poll::Ready(Some(Err(SlowClient))),
        }
        match this.keep_alive.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(Ok(Bytes::from_static(KEEP_ALIVE_COMMENT)))),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_util::codec::Decoder as _;

    use super::*;

    #[test]
    fn keep_alive_is_the_codecs_comment() {
        let encoded = russe::Event::Comment("keep-alive".into())
            .into_bytestring()
            .unwrap();
        assert_eq!(encoded.as_bytes(), KEEP_ALIVE_COMMENT);
    }

    #[test]
    fn a_chunk_of_events_decodes_to_its_items() {
        let block = BlockRef {
            number: 7,
            hash: [7u8; 32].into(),
        };
        let hash = ModuleHash::of(b"m");
        let items = [
            OutputItem::new(1, ItemKind::Insert, block, hash, "r", br#"{"a":1}"#),
            OutputItem::new(2, ItemKind::Insert, block, hash, "r", b"not json\n"),
            OutputItem::new(3, ItemKind::Retract, block, hash, "r", br#"[1, 2]"#),
        ];
        let mut chunk = BytesMut::new();
        let mut envelope = Envelope::default();
        for item in &items {
            encode_event(item, &mut envelope, &mut chunk).unwrap();
        }
        let mut decoder = russe::Decoder::default();
        let mut got = Vec::new();
        while let Some(event) = decoder.decode(&mut chunk).unwrap() {
            let russe::Event::Message(message) = event else {
                panic!("only messages: {event:?}");
            };
            let item: OutputItem = serde_json::from_str(&message.data).unwrap();
            assert_eq!(message.id.as_deref(), Some(item.seq.to_string().as_str()));
            let kind = if item.kind == ItemKind::Insert {
                "insert"
            } else {
                "retract"
            };
            assert_eq!(message.event.as_deref(), Some(kind));
            got.push(item);
        }
        assert!(chunk.is_empty(), "every byte belongs to an event");
        assert_eq!(got, items);
    }

    #[test]
    fn item_json_is_what_serde_writes() {
        let hash = ModuleHash::of(b"m");
        let other = ModuleHash::of(b"n");
        let block = |n: u8| BlockRef {
            number: u64::from(n),
            hash: [n; 32].into(),
        };
        let items = [
            OutputItem::new(1, ItemKind::Insert, block(7), hash, "r", br#"{"a":1}"#),
            OutputItem::new(2, ItemKind::Insert, block(7), hash, "r", b" [1,\r 2] "),
            OutputItem::new(
                3,
                ItemKind::Insert,
                block(7),
                hash,
                "r",
                b"\xff\x00 not json",
            ),
            OutputItem::new(4, ItemKind::Retract, block(7), hash, "r", b"\"s\""),
            OutputItem::new(5, ItemKind::Retract, block(8), hash, "r", b"null"),
            OutputItem::new(6, ItemKind::Retract, block(8), other, "r", b"1"),
            OutputItem::new(7, ItemKind::Retract, block(8), other, "r-\"2\"", b"{}"),
        ];
        let mut envelope = Envelope::default();
        for item in &items {
            assert_eq!(
                item_json(item, &mut envelope).unwrap(),
                serde_json::to_string(item).unwrap()
            );
        }
    }
}
