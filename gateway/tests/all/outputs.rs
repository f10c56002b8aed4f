//! The outcome push (`POST /v1/runners/{runner}/outcomes`) and the outputs stream
//! (`GET /v1/functions/{name}/outputs`, JSON long poll and Server-Sent Events).

use std::{
    io::{Read, Write},
    net::TcpStream,
    time::Duration,
};

use alloy_primitives::B256;
use xxfunc_api::{
    BlockRef, Counters, EventKind, FunctionId, FunctionReport, InvocationStatus, ModuleHash,
    ObservedState, RunnerReport, codes,
    outputs::{
        Bytes64, ItemKind, OutcomeEntry, OutcomesAck, OutcomesPage, OutputsPage, OutputsQuery,
    },
};

use crate::support::{Backend, Gateway, TOKEN, error_code, module, raw};

/// A runner's outcome log of one function, numbered as the runner numbers it.
pub struct Log {
    pub id: FunctionId,
    pub hash: ModuleHash,
    pub outcomes: Vec<OutcomeEntry>,
    next_item: u64,
}

impl Log {
    pub fn new(id: FunctionId, hash: ModuleHash) -> Self {
        Self {
            id,
            hash,
            outcomes: Vec::new(),
            next_item: 1,
        }
    }

    pub fn push(&mut self, kind: EventKind, n: u64, branch: u8, stdout: &[u8]) {
        let mut o = OutcomeEntry {
            seq: self.outcomes.len() as u64 + 1,
            kind,
            block: block(n, branch),
            hash: self.hash,
            status: InvocationStatus::Ok,
            duration_us: 3,
            at_ms: n,
            stdout: Bytes64(stdout.to_vec()),
            stderr: Bytes64::default(),
            first_item: self.next_item,
            item_count: 0,
        };
        o.item_count = o.count_records();
        self.next_item += u64::from(o.item_count);
        self.outcomes.push(o);
    }

    /// A commit of block `n` with `records` JSON lines.
    pub fn commit(&mut self, n: u64, branch: u8, records: usize) {
        let out: String = (0..records)
            .map(|i| format!("{{\"n\":{n},\"b\":{branch},\"i\":{i}}}\n"))
            .collect();
        self.push(EventKind::Commit, n, branch, out.as_bytes());
    }

    pub fn revert(&mut self, n: u64, branch: u8, records: usize) {
        let out: String = (0..records)
            .map(|i| format!("{{\"undo\":{n},\"b\":{branch},\"i\":{i}}}\n"))
            .collect();
        self.push(EventKind::Revert, n, branch, out.as_bytes());
    }

    pub fn page(&self, seqs: std::ops::RangeInclusive<u64>) -> OutcomesPage {
        OutcomesPage {
            id: self.id.clone(),
            outcomes: self
                .outcomes
                .iter()
                .filter(|o| seqs.contains(&o.seq))
                .cloned()
                .collect(),
        }
    }
}

pub fn block(n: u64, branch: u8) -> BlockRef {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h[8] = branch;
    BlockRef {
        number: n,
        hash: B256::from(h),
    }
}

/// A gateway with function `f` deployed, and an empty log of it.
pub async fn deployed() -> (Gateway, Log) {
    deployed_with(&[]).await
}

pub async fn deployed_with(args: &[&str]) -> (Gateway, Log) {
    let gw = Gateway::start_with(Backend::File, args).expect("file gateway");
    let deployed = gw
        .client()
        .deploy(&"f".parse().unwrap(), module(1))
        .await
        .unwrap();
    let log = Log::new(FunctionId::Name("f".parse().unwrap()), deployed.bind.hash);
    (gw, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_pushes_are_idempotent_and_checked() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    for n in 1..=5 {
        log.commit(n, 0, 2);
    }
    let ack = client.push_outcomes("r1", &log.page(1..=3)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 0,
            head: 3
        }
    );
    let ack = client.push_outcomes("r1", &log.page(2..=5)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 3,
            head: 5
        }
    );
    #[allow(clippy::reversed_empty_ranges)] // an empty page: a probe
    let ack = client.push_outcomes("r1", &log.page(9..=8)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 5,
            head: 5
        }
    );

    // The write token is needed.
    let err = gw
        .anonymous()
        .push_outcomes("r1", &log.page(1..=1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::UNAUTHORIZED), "{err}");
    // A page that breaks the log's rules, a bad runner id, a bad body: 400 JSON.
    let mut bad = log.page(1..=2);
    bad.outcomes[0].item_count = 9;
    let err = client.push_outcomes("r1", &bad).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::BAD_REQUEST), "{err}");
    assert!(err.to_string().contains("item_count"), "{err}");
    let err = client
        .push_outcomes("bad runner", &log.page(1..=1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::BAD_REQUEST), "{err}");
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, body) = raw(
        gw.addr(),
        "POST",
        "/v1/runners/r1/outcomes",
        &headers,
        b"{\"id\":",
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, codes::BAD_REQUEST)
    );
    // Larger than the report limit: 413 before anything is parsed.
    let big = vec![b' '; 17 * 1024 * 1024];
    let (status, body) = raw(gw.addr(), "POST", "/v1/runners/r1/outcomes", &headers, &big);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (413, codes::TOO_LARGE)
    );
    // Still exactly what was pushed.
    let ack = client.push_outcomes("r1", &log.page(1..=5)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 5,
            head: 5
        }
    );
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

/// A minimal `text/event-stream` reader over a reqwest response: events by blank
/// lines, `id:`, `event:`, `data:` fields, comments skipped.
pub struct EventReader {
    resp: reqwest::Response,
    buf: Vec<u8>,
    pub comments: usize,
}

impl EventReader {
    pub async fn open(url: &str, last_event_id: Option<u64>) -> Self {
        let mut req = reqwest::Client::new()
            .get(url)
            .header("Accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.expect("event stream request");
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self {
            resp,
            buf: Vec::new(),
            comments: 0,
        }
    }

    /// The next event (not comment); `None` when the stream ends.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buf.drain(..at + 2).collect();
                let text = String::from_utf8(block).expect("UTF-8 events");
                let mut event = Event {
                    id: None,
                    event: None,
                    data: String::new(),
                };
                let mut any = false;
                for line in text.lines() {
                    if line.starts_with(':') {
                        self.comments += 1;
                        continue;
                    }
                    let (field, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    any = true;
                    match field {
                        "id" => event.id = Some(value.to_string()),
                        "event" => event.event = Some(value.to_string()),
                        "data" => {
                            if !event.data.is_empty() {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                        }
                        _ => {}
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            match self.resp.chunk().await {
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk),
                _ => return None,
            }
        }
    }

    /// The next event's item.
    pub async fn item(&mut self) -> xxfunc_api::outputs::OutputItem {
        // Events without data (a `retry:` hint) carry no item.
        let mut event = self.next().await.expect("an event");
        while event.data.is_empty() {
            event = self.next().await.expect("an event");
        }
        let item: xxfunc_api::outputs::OutputItem =
            serde_json::from_str(&event.data).expect("an item");
        assert_eq!(event.id, Some(item.seq.to_string()));
        let kind = serde_json::to_value(item.kind).unwrap();
        assert_eq!(event.event.as_deref(), kind.as_str());
        item
    }
}

/// Reads a metric's value from `/metrics`.
pub async fn metric(gw: &Gateway, name: &str) -> u64 {
    let text = gw.client().metrics().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

/// Polls until `check` holds (bounded: a failure, not a hang, if it never does).
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what} never happened");
}

fn query(after: u64) -> OutputsQuery {
    OutputsQuery {
        after,
        ..OutputsQuery::default()
    }
}

fn outputs_url(gw: &Gateway, rest: &str) -> String {
    format!("{}/v1/functions/f/outputs{rest}", gw.url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_pages_and_their_errors() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    // Before any outcome: an empty page, and nothing after 0.
    let page = client
        .outputs("f", &query(0), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.next, page.head), (0, 0, 0));
    for n in 1..=20 {
        log.commit(n, 0, (n % 3) as usize);
    }
    log.push(EventKind::Commit, 21, 0, b"\xff\xfe raw bytes\n");
    client.push_outcomes("r1", &log.page(1..=21)).await.unwrap();
    let head = log.outcomes.last().unwrap().first_item;
    let mut after = 0;
    let mut seen = Vec::new();
    loop {
        let q = OutputsQuery {
            limit: Some(4),
            ..query(after)
        };
        let page = client.outputs("f", &q, Duration::ZERO).await.unwrap();
        assert_eq!((page.runner.as_str(), page.head), ("r1", head));
        if page.items.is_empty() {
            break;
        }
        assert!(page.items.len() <= 4);
        seen.extend(page.items.iter().map(|i| i.seq));
        after = page.next;
        if let Some(last) = page.items.iter().find(|i| i.seq == head) {
            assert!(last.binary);
            assert_eq!(last.record_bytes(), b"\xff\xfe raw bytes");
        }
    }
    assert_eq!(seen, (1..=head).collect::<Vec<_>>());

    // Errors are JSON with stable codes.
    let err = client
        .outputs("f", &query(head + 1), Duration::ZERO)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::AFTER_BEYOND_HEAD), "{err}");
    assert_eq!(err.status().map(|s| s.as_u16()), Some(400));
    assert!(err.to_string().contains(&format!("({head})")), "{err}");
    let err = client
        .outputs("nope", &query(0), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    for bad in [
        "?after=x",
        "?after=-1",
        "?confirmations=deep",
        "?limit=many",
        "?confirmations=1000000",
        "?runner=a%20b",
        "?wait_ms=soon",
    ] {
        let path = format!("/v1/functions/f/outputs{bad}");
        let (status, body) = raw(gw.addr(), "GET", &path, &[], b"");
        assert_eq!(
            (status, error_code(&body).as_str()),
            (400, codes::BAD_REQUEST),
            "{bad}"
        );
    }
    let path = "/v1/functions/f/outputs";
    let sse = [("Accept", "text/event-stream"), ("Last-Event-ID", "later")];
    let (status, body) = raw(gw.addr(), "GET", path, &sse, b"");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, codes::BAD_REQUEST)
    );
    let sse = [("Accept", "text/event-stream"), ("Last-Event-ID", "99999")];
    let (status, body) = raw(gw.addr(), "GET", path, &sse, b"");
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, codes::AFTER_BEYOND_HEAD)
    );
    let (status, body) = raw(
        gw.addr(),
        "GET",
        "/v1/functions/nope/outputs",
        &[("Accept", "text/event-stream")],
        b"",
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (404, codes::NOT_FOUND)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_wakes_on_a_push() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    log.commit(1, 0, 1);
    log.commit(2, 0, 1);
    client.push_outcomes("r1", &log.page(1..=1)).await.unwrap();
    let poll = {
        let client = client.clone();
        tokio::spawn(async move {
            let q = OutputsQuery {
                runner: Some("r1".into()),
                ..query(1)
            };
            client.outputs("f", &q, Duration::from_secs(50)).await
        })
    };
    // Whether the poll is already waiting or not, it answers with the pushed item.
    tokio::time::sleep(Duration::from_millis(300)).await;
    client.push_outcomes("r1", &log.page(2..=2)).await.unwrap();
    let page = poll.await.unwrap().unwrap();
    let seqs: Vec<u64> = page.items.iter().map(|i| i.seq).collect();
    assert_eq!((seqs, page.next, page.head), (vec![2], 2, 2));
    assert!(metric(&gw, "xxfunc_outcomes_stored_total").await >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmations_over_http() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    for n in 1..=5 {
        log.commit(n, 0, 1);
    }
    log.revert(5, 0, 1);
    log.revert(4, 0, 1);
    for n in 4..=10 {
        log.commit(n, 1, 1);
    }
    client
        .push_outcomes("r1", &log.page(1..=100))
        .await
        .unwrap();
    let kinds = |page: &OutputsPage| -> Vec<(u64, ItemKind)> {
        page.items
            .iter()
            .map(|i| (i.block.number, i.kind))
            .collect()
    };
    let all = client
        .outputs("f", &query(0), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(all.items.len(), 14);
    assert_eq!(
        kinds(&all)[5..7],
        [(5, ItemKind::Retract), (4, ItemKind::Retract)]
    );
    let q = OutputsQuery {
        confirmations: 3,
        ..query(0)
    };
    let deep = client.outputs("f", &q, Duration::ZERO).await.unwrap();
    // The shallow reorg's records never show, nor their retractions.
    assert_eq!(
        kinds(&deep),
        (1..=7).map(|n| (n, ItemKind::Insert)).collect::<Vec<_>>()
    );
    assert!(deep.items[3..].iter().all(|i| i.block.hash[8] == 1));
    assert!(deep.next < deep.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runners_keep_their_own_reports_and_logs() {
    let (gw, mut a) = deployed().await;
    let client = gw.client();
    let mut b = Log::new(a.id.clone(), a.hash);
    for n in 1..=4 {
        a.commit(n, 0, 1);
        b.commit(n, 0, 3);
    }
    client
        .push_outcomes("node-a", &a.page(1..=4))
        .await
        .unwrap();
    client
        .push_outcomes("node-b", &b.page(1..=4))
        .await
        .unwrap();
    let report = |observed: ObservedState, cursor: u64| RunnerReport {
        head: None,
        safe_height: None,
        functions: vec![FunctionReport {
            sinks: Vec::new(),
            id: a.id.clone(),
            hash: a.hash,
            observed,
            cursor: Some(block(cursor, 0)),
            last_error: None,
            counters: Counters {
                invocations: cursor,
                ..Counters::default()
            },
        }],
        invocations: Vec::new(),
    };
    client
        .report("node-a", &report(ObservedState::Running, 4))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    client
        .report("node-b", &report(ObservedState::Stopped, 2))
        .await
        .unwrap();
    let view = client.function("f").await.unwrap();
    let runners: Vec<(&str, u64)> = view
        .runners
        .iter()
        .map(|r| (r.runner.as_str(), r.counters.invocations))
        .collect();
    assert_eq!(
        runners,
        [("node-a", 4), ("node-b", 2)],
        "neither overwrote the other"
    );
    assert_eq!(view.reported.unwrap().runner, "node-b");
    assert_eq!(view.counters.invocations, 2);
    // The stream reads the running runner's log, or the named one, never a mix.
    let page = client
        .outputs("f", &query(0), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((page.runner.as_str(), page.head), ("node-a", 4));
    assert!(page.items.iter().all(|i| i.runner == "node-a"));
    let q = OutputsQuery {
        runner: Some("node-b".into()),
        ..query(0)
    };
    let page = client.outputs("f", &q, Duration::ZERO).await.unwrap();
    assert_eq!(
        (page.runner.as_str(), page.head, page.items.len()),
        ("node-b", 12, 12)
    );
    let mut events = EventReader::open(&outputs_url(&gw, ""), None).await;
    for seq in 1..=4 {
        let item = events.item().await;
        assert_eq!((item.seq, item.runner.as_str()), (seq, "node-a"));
    }
    // Logs come from the chosen runner's outcomes.
    let logs = client.logs("f", Some(10)).await.unwrap();
    assert_eq!(logs.invocations.len(), 4);
    assert_eq!(logs.invocations[0].stdout, "{\"n\":1,\"b\":0,\"i\":0}\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_resume_after_last_event_id_without_gap_or_duplicate() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    for n in 1..=30 {
        log.commit(n, 0, 2);
    }
    client.push_outcomes("r1", &log.page(1..=20)).await.unwrap();
    let mut first = EventReader::open(&outputs_url(&gw, ""), None).await;
    let mut got = Vec::new();
    for _ in 0..15 {
        got.push(first.item().await.seq);
    }
    drop(first);
    // Reconnect as a browser would: Last-Event-ID wins over the query's `after`.
    let last = *got.last().unwrap();
    let mut second = EventReader::open(&outputs_url(&gw, "?after=3"), Some(last)).await;
    for _ in 0..25 {
        got.push(second.item().await.seq);
    }
    // Live: pushed after the stream reached the head.
    client
        .push_outcomes("r1", &log.page(21..=30))
        .await
        .unwrap();
    for _ in 0..20 {
        got.push(second.item().await.seq);
    }
    assert_eq!(got, (1..=60).collect::<Vec<_>>());
    assert!(metric(&gw, "xxfunc_sse_clients").await >= 1);
    drop(second);
    eventually("the stream's producer ends with its client", || async {
        metric(&gw, "xxfunc_sse_clients").await == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_of_deep_confirmations_shows_no_retraction() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    for n in 1..=6 {
        log.commit(n, 0, 1);
    }
    log.revert(6, 0, 1);
    for n in 6..=12 {
        log.commit(n, 1, 1);
    }
    client
        .push_outcomes("r1", &log.page(1..=100))
        .await
        .unwrap();
    let mut events = EventReader::open(&outputs_url(&gw, "?confirmations=4"), None).await;
    let mut blocks = Vec::new();
    for _ in 0..8 {
        let item = events.item().await;
        assert_eq!(item.kind, ItemKind::Insert);
        blocks.push((item.block.number, item.block.hash[8]));
    }
    let want: Vec<(u64, u8)> = (1..=5)
        .map(|n| (n, 0))
        .chain((6..=8).map(|n| (n, 1)))
        .collect();
    assert_eq!(blocks, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_one_mib_outcomes() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    let record = format!("{{\"blob\":\"{}\"}}\n", "q".repeat(1024 * 1024 - 16));
    for n in 1..=12 {
        log.push(EventKind::Commit, n, 0, record.as_bytes());
    }
    for seqs in [1..=4, 5..=8, 9..=12] {
        client.push_outcomes("r1", &log.page(seqs)).await.unwrap();
    }
    let mut after = 0;
    let mut pages = 0;
    while after < 12 {
        let page = client
            .outputs("f", &query(after), Duration::ZERO)
            .await
            .unwrap();
        let bytes: usize = page.items.iter().map(|i| i.record_bytes().len()).sum();
        assert!(!page.items.is_empty());
        assert!(bytes <= xxfunc_registry::MAX_OUTPUTS_PAGE_BYTES, "{bytes}");
        assert!(
            page.items
                .iter()
                .all(|i| i.record_bytes() == record.trim_end().as_bytes())
        );
        after = page.next;
        pages += 1;
    }
    assert!(pages >= 2, "{pages}");
    let mut events = EventReader::open(&outputs_url(&gw, "?after=9"), None).await;
    for seq in 10..=12 {
        assert_eq!(events.item().await.seq, seq);
    }
}

/// Opens an event stream on a raw socket and reads its response head.
fn raw_stream(gw: &Gateway, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(gw.addr()).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        gw.addr()
    );
    stream.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "response head cut");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("text/event-stream"),
        "{head}"
    );
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_disconnected() {
    let (gw, mut log) = deployed_with(&["--sse-send-timeout-ms", "300"]).await;
    let client = gw.client();
    // 48 MiB of records: more than any socket buffers plus the connection's channel.
    let record = format!("\"{}\"\n", "s".repeat(1024 * 1024));
    for n in 1..=48 {
        log.push(EventKind::Commit, n, 0, record.as_bytes());
    }
    for first in (1..=48).step_by(6) {
        client
            .push_outcomes("r1", &log.page(first..=first + 5))
            .await
            .unwrap();
    }
    let total = 48 * record.len();
    let mut stream = tokio::task::block_in_place(|| raw_stream(&gw, "/v1/functions/f/outputs"));
    // It reads nothing; the gateway cuts it once its buffer stays full.
    eventually("the gateway cuts the client that does not read", || async {
        metric(&gw, "xxfunc_sse_slow_clients_total").await == 1
    })
    .await;
    // Only what was already in flight arrives, then the connection ends.
    let received = tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; 1 << 20];
        let mut received = 0usize;
        loop {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return received,
                Ok(n) => received += n,
            }
        }
    })
    .await
    .unwrap();
    assert!(
        received < total,
        "{received} of {total} bytes: the stream was not cut"
    );
    eventually("the cut client is no longer counted", || async {
        metric(&gw, "xxfunc_sse_clients").await == 0
    })
    .await;
    // The gateway serves on.
    let page = client
        .outputs("f", &query(47), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_event_streams_and_then_a_push() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    log.commit(1, 0, 1);
    log.commit(2, 0, 1);
    client.push_outcomes("r1", &log.page(1..=1)).await.unwrap();
    let idle: Vec<TcpStream> = tokio::task::block_in_place(|| {
        (0..1000)
            .map(|_| raw_stream(&gw, "/v1/functions/f/outputs?after=1"))
            .collect()
    });
    eventually("a thousand streams are connected", || async {
        metric(&gw, "xxfunc_sse_clients").await == 1000
    })
    .await;
    client.push_outcomes("r1", &log.page(2..=2)).await.unwrap();
    // A fresh client gets the new item, and so do the idle ones.
    let mut fresh = EventReader::open(&outputs_url(&gw, "?after=1"), None).await;
    assert_eq!(fresh.item().await.seq, 2);
    for mut stream in idle.into_iter().step_by(100) {
        let got = tokio::task::spawn_blocking(move || {
            let mut text = Vec::new();
            let mut buf = [0u8; 4096];
            while !String::from_utf8_lossy(&text).contains("id: 2\n") {
                let n = stream.read(&mut buf).expect("reading an idle stream");
                assert!(n > 0, "an idle stream ended");
                text.extend_from_slice(&buf[..n]);
            }
            text
        })
        .await
        .unwrap();
        assert!(String::from_utf8_lossy(&got).contains("event: insert"));
    }
}
