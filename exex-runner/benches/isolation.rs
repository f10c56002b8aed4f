//! Isolation benchmark: the commit latency of a healthy function (`hello`) with 20
//! hostile functions beside it, against the same alone in the same run. Prints one
//! markdown row: `| id | value | unit | baseline | ratio | notes |` (here the ratio is
//! with / alone: lower is better, the target is at most 2).
//!
//! Each run feeds `BLOCKS` generated blocks to a real runner one at a time, a block
//! every `INTERVAL`, as a chain source would. A block's commit latency is the time from
//! handing it to the runner until `hello`'s outcome for it is durable (committed with its
//! cursor). The hostile functions loop until the wall-time limit, exhaust their memory,
//! flood stdout, panic or trap on every block; they are never quarantined here, so they
//! stay as hostile for the whole run.
//!
//! Run with `cargo bench -p xxfunc-runner --bench isolation`.

use std::time::{Duration, Instant};

use xxfunc_api::{FunctionId, StartFrom};
use xxfunc_runner::{ChainEvent, test_utils::Harness};

#[path = "support/chain.rs"]
mod chain;
use chain::blocks;

const BLOCKS: u64 = 120;
const INTERVAL: Duration = Duration::from_millis(25);

/// The hostile modules, with how many functions run each.
const HOSTILE: &[(&str, usize)] = &[
    ("misbehave-loop", 8),
    ("misbehave-memory", 4),
    ("misbehave-stdout", 4),
    ("misbehave-panic", 2),
    ("misbehave-trap", 2),
];

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

/// Commit latencies of `hello`, one per block, with `hostile` beside it.
fn run(hostile: bool) -> Vec<Duration> {
    let mut h = Harness::with_config(|c| {
        c.workers = 2;
        c.quarantine_after = u64::MAX;
    })
    .expect("a runner");
    let hello: FunctionId = h
        .start(
            "hello",
            &xxfunc_guest_modules::module_bytes("hello"),
            StartFrom::Head,
        )
        .expect("hello starts");
    if hostile {
        for (module, count) in HOSTILE {
            let bytes = xxfunc_guest_modules::module_bytes(module);
            for i in 0..*count {
                h.start(&format!("{module}-{i}"), &bytes, StartFrom::Head)
                    .expect("a hostile function starts");
            }
        }
    }
    let mut latencies = Vec::with_capacity(BLOCKS as usize);
    let mut next = Instant::now();
    for (i, block) in blocks(BLOCKS).into_iter().enumerate() {
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
        next += INTERVAL;
        let t = Instant::now();
        h.runner_mut()
            .process(&[ChainEvent::commit(0, block)])
            .expect("a batch");
        // Durable once its outcome is in the log: normally when `process` returns;
        // otherwise at a later commit (the runner's idle rounds, as `serve` runs them).
        loop {
            let (_, last_seq, _) = h.runner().outcome_bounds(&hello).expect("hello's log");
            if last_seq > i as u64 {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
            h.runner_mut().catch_up().expect("an idle round");
        }
        latencies.push(t.elapsed());
    }
    latencies
}

fn main() {
    let mut alone = run(false);
    let mut with = run(true);
    let (alone_p99, with_p99) = (percentile(&mut alone, 0.99), percentile(&mut with, 0.99));
    let (alone_p50, with_p50) = (percentile(&mut alone, 0.5), percentile(&mut with, 0.5));
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| runner.isolation.p99 | {:.2} | ms | {:.2} | {:.2} | hello's commit latency p99 over {BLOCKS} blocks (one every {} ms, 2 workers) with 20 hostile functions beside it (8 loop to the 1 s wall-time limit, 4 exhaust memory, 4 flood stdout, 2 panic, 2 trap; never quarantined); baseline hello alone; ratio = with / alone, target <= 2 (lower is better); p50 {:.2} vs {:.2} ms |",
        ms(with_p99),
        ms(alone_p99),
        ms(with_p99) / ms(alone_p99),
        INTERVAL.as_millis(),
        ms(with_p50),
        ms(alone_p50),
    );
}
