//! Outputs benchmark: records per second delivered over the gateway's Server-Sent Events
//! stream to one client, against reading the same records straight from the runner's
//! RocksDB in the same run. Prints one markdown row:
//! `| id | value | unit | baseline | ratio | notes |`.
//!
//! A function emitting 100 JSON records per block runs on `BLOCKS` generated blocks in
//! the real runner; its outcome log is pushed to a real gateway served in-process on
//! loopback (as the runner's pusher does, in pages under the body limit); then one SSE
//! client reads the function's outputs from the start to the head, decoding the stream
//! with `russe` (the codec the gateway encodes it with) and parsing every item. The baseline pages through the runner's outcome log and splits and
//! parses the same records.
//!
//! Run with `cargo bench -p xxfunc-runner --bench outputs`.

use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tokio_util::codec::Decoder as _;
use xxfunc_api::{
    FunctionId, FunctionName, StartFrom,
    client::Client,
    outputs::{OutcomeEntry, OutcomesPage, OutputItem},
};
use xxfunc_gateway::{GatewayConfig, serve as serve_gateway};
use xxfunc_runner::{ChainEvent, test_utils::Harness};

#[path = "support/chain.rs"]
mod chain;
#[path = "support/records.rs"]
mod records;
use chain::blocks;

const BLOCKS: u64 = 400;
const RECORDS_PER_BLOCK: usize = 100;
const RUNS: usize = 3;
const TOKEN: &str = "bench-token";
/// Outcomes per pushed page (each about 20 KiB encoded, well under the body limit).
const PUSH_PAGE: usize = 64;
/// Bytes per page the baseline reads from the runner's database.
const READ_PAGE_BYTES: usize = 4 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Every outcome of `id` in the runner's log, read in pages.
fn read_log(harness: &Harness, id: &FunctionId) -> Vec<OutcomeEntry> {
    let mut all: Vec<OutcomeEntry> = Vec::new();
    loop {
        let after = all.last().map_or(0, |o| o.seq);
        let page = harness
            .runner()
            .outcomes(id, after, 1024, READ_PAGE_BYTES)
            .expect("reading the outcome log");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Baseline: page through the runner's outcome log, split and parse every record.
fn baseline(harness: &Harness, id: &FunctionId, want: usize) -> f64 {
    let t = Instant::now();
    let mut count = 0usize;
    let mut after = 0;
    loop {
        let page = harness
            .runner()
            .outcomes(id, after, 1024, READ_PAGE_BYTES)
            .expect("reading the outcome log");
        let Some(last) = page.last() else { break };
        after = last.seq;
        for outcome in &page {
            for line in outcome.record_lines() {
                let record: &RawValue = serde_json::from_slice(line).expect("a JSON record");
                std::hint::black_box(record);
                count += 1;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(count, want, "the baseline read every record");
    count as f64 / secs
}

/// One SSE client from the start to `want` items; every event's id and item parsed.
async fn stream(url: &str, want: usize) -> f64 {
    let client = reqwest::Client::new();
    let t = Instant::now();
    let mut resp = client
        .get(format!("{url}/v1/functions/records/outputs"))
        .header("Accept", "text/event-stream")
        .send()
        .await
        .expect("the stream opens");
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut buf = bytes::BytesMut::new();
    let mut decoder = russe::Decoder::default();
    let mut count = 0usize;
    let mut last_seq = 0;
    while count < want {
        let chunk = tokio::time::timeout(Duration::from_secs(30), resp.chunk())
            .await
            .expect("the stream stalled")
            .expect("the stream reads")
            .expect("the stream ended early");
        buf.extend_from_slice(&chunk);
        while let Some(event) = decoder.decode(&mut buf).expect("a well-formed stream") {
            let russe::Event::Message(message) = event else {
                continue;
            };
            let id: u64 = message
                .id
                .as_deref()
                .and_then(|id| id.parse().ok())
                .expect("a numeric id");
            let item: OutputItem = serde_json::from_str(&message.data).expect("an output item");
            assert_eq!(item.seq, id);
            assert_eq!(item.seq, last_seq + 1, "no gap, no duplicate");
            last_seq = item.seq;
            count += 1;
        }
    }
    count as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let module = records::records_module(RECORDS_PER_BLOCK);
    let mut harness = Harness::new().expect("a runner");
    let id = harness
        .start("records", &module, StartFrom::Block(1))
        .expect("the function starts");
    // A consumer that never acknowledges: the log keeps every outcome (without one,
    // retention prunes what is past the finality depth).
    harness.runner().add_consumer("bench").expect("a consumer");
    let chain = blocks(BLOCKS);
    for batch in chain.chunks(64) {
        let events: Vec<ChainEvent> = batch
            .iter()
            .map(|b| ChainEvent::commit(0, b.clone()))
            .collect();
        harness.runner_mut().process(&events).expect("a batch");
    }
    let log = read_log(&harness, &id);
    let want: usize = log.iter().map(|o| o.item_count as usize).sum();
    assert_eq!(
        want,
        BLOCKS as usize * RECORDS_PER_BLOCK,
        "every block emitted"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = runtime
        .block_on(serve_gateway(
            GatewayConfig::new(dir.path())
                .with_listen("127.0.0.1:0".parse().unwrap())
                .with_token(Some(TOKEN.into()))
                .with_workers(2),
        ))
        .expect("a gateway");
    let url = gateway.url();
    let client = Client::new(&url).unwrap().with_token(Some(TOKEN.into()));
    let name: FunctionName = "records".parse().unwrap();
    let push_secs = runtime.block_on(async {
        client.deploy(&name, module.clone()).await.expect("deploy");
        let t = Instant::now();
        for outcomes in log.chunks(PUSH_PAGE) {
            let page = OutcomesPage {
                id: id.clone(),
                outcomes: outcomes.to_vec(),
            };
            client
                .push_outcomes("bench", &page)
                .await
                .expect("the gateway takes the page");
        }
        t.elapsed().as_secs_f64()
    });

    let base = median((0..RUNS).map(|_| baseline(&harness, &id, want)).collect());
    let sse = median(
        (0..RUNS)
            .map(|_| runtime.block_on(stream(&url, want)))
            .collect(),
    );
    runtime.block_on(gateway.stop());
    println!(
        "| outputs.stream.records_per_s | {sse:.0} | records/s | {base:.0} | {:.2} | median of {RUNS}: one SSE client reads {want} records ({BLOCKS} blocks x {RECORDS_PER_BLOCK}, ~150 B each) from a gateway on loopback, parsing every event; baseline pages through the runner's RocksDB outcome log and parses the same records; pushing them to the gateway took {:.0} records/s |",
        sse / base,
        want as f64 / push_secs,
    );
}
