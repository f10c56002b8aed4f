//! What the sink tests share: the fixture replay through `erc20-transfers`
//! with a reorg, a runner served on it with sinks, and the canonical records
//! a sink must end up with (commits minus retractions of the canonical
//! chain, in order).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use alloy_primitives::B256;
use xxfunc_api::{
    DesiredState, EventKind, FunctionId, FunctionSpec, StartFrom,
    outputs::{ItemKind, OutcomeEntry},
};
use xxfunc_runner::{
    FixtureSource, Runner, RunnerConfig, ServeOptions, SinkStatus, StatusHandle, StopHandle,
    StoreModules, UntilDone, serve, xxfunc_sinks::ReceivedBatch,
};
use xxfunc_store::{ModuleHash, ModuleStore};

use crate::replay;

/// A module store holding `erc20-transfers` and the fixture events.
pub struct Replay {
    pub dir: tempfile::TempDir,
    pub store_url: String,
    pub hash: ModuleHash,
    pub events: PathBuf,
    pub id: FunctionId,
}

impl Replay {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store_dir = dir.path().join("store");
        std::fs::create_dir_all(&store_dir).unwrap();
        let store_url = format!("file://{}", store_dir.display());
        let store = ModuleStore::open(&store_url).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let hash = rt
            .block_on(store.put(xxfunc_guest_modules::module_bytes("erc20-transfers")))
            .unwrap()
            .hash;
        let events = replay::events_dir(dir.path());
        Self {
            dir,
            store_url,
            hash,
            events,
            id: "erc20".parse().unwrap(),
        }
    }

    /// A runner in `data` with `erc20` started (from the first block).
    pub fn runner(&self, data: &Path) -> Runner {
        let store = ModuleStore::open(&self.store_url).unwrap();
        let mut runner = Runner::open(
            RunnerConfig::new(data),
            Arc::new(StoreModules::new(store).unwrap()),
        )
        .unwrap();
        runner
            .apply(&FunctionSpec {
                id: self.id.clone(),
                hash: self.hash,
                desired: DesiredState::Started,
                start: StartFrom::Head,
                start_generation: 1,
                sinks: Vec::new(),
            })
            .unwrap();
        runner
    }

    /// [`runner`](Self::runner) with the sink `spec` (built by `xxfunc_sinks::build`,
    /// delivering as runner `local`).
    pub fn runner_with_sink(
        &self,
        data: &Path,
        spec: &xxfunc_runner::xxfunc_sinks::SinkSpec,
    ) -> Runner {
        let mut runner = self.runner(data);
        runner
            .add_sink(
                spec.clone(),
                xxfunc_runner::xxfunc_sinks::build(spec).unwrap(),
                "local",
            )
            .unwrap();
        runner
    }

    /// Serves `runner` on the fixture replay in a thread: until the source
    /// ends and the sinks caught up (`until_end`), or until stopped.
    pub fn serve(&self, runner: Runner, until_end: bool) -> Served {
        self.serve_with_delay(runner, until_end, Duration::ZERO)
    }

    /// [`Replay::serve`], sleeping `delay` before each event.
    pub fn serve_with_delay(&self, runner: Runner, until_end: bool, delay: Duration) -> Served {
        let stop = StopHandle::new();
        let status = StatusHandle::default();
        let source = FixtureSource::open(&self.events).unwrap().with_delay(delay);
        let options = ServeOptions {
            until: if until_end {
                UntilDone::SourceEnd
            } else {
                UntilDone::Stopped
            },
            sink_drain: Duration::from_secs(120),
            ..ServeOptions::default()
        };
        let thread = {
            let (stop, status) = (stop.clone(), status.clone());
            std::thread::spawn(move || {
                serve(runner, Box::new(source), None, stop, status, options).unwrap()
            })
        };
        Served {
            stop,
            status,
            thread,
        }
    }
}

pub struct Served {
    pub stop: StopHandle,
    pub status: StatusHandle,
    pub thread: JoinHandle<Runner>,
}

impl Served {
    pub fn sink(&self, name: &str) -> Option<SinkStatus> {
        self.status.sinks().into_iter().find(|s| s.name == name)
    }

    /// Waits (at most 120 s) for sink `name`'s status to satisfy `cond`.
    pub fn wait_sink(
        &self,
        name: &str,
        what: &str,
        cond: impl Fn(&SinkStatus) -> bool,
    ) -> SinkStatus {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(s) = self.sink(name)
                && cond(&s)
            {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for sink {name}: {what}; status {:#?}",
                self.sink(name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the function has run on every event of `replay`'s fixtures (its
    /// outcome log is complete).
    pub fn wait_every_event(&self, replay: &Replay) {
        let events = xxfunc_runner::FixtureSource::open(&replay.events)
            .unwrap()
            .events()
            .len() as u64;
        crate::pusher::wait_until("every event run", || {
            self.status
                .get()
                .functions
                .iter()
                .any(|f| f.counters.invocations == events)
        });
    }

    pub fn finish(self) -> Runner {
        self.stop.stop();
        self.thread.join().unwrap()
    }
}

/// Every outcome of `id` in `runner`'s log.
pub fn outcomes(runner: &Runner, id: &FunctionId) -> Vec<OutcomeEntry> {
    runner.outcomes(id, 0, usize::MAX, usize::MAX).unwrap()
}

/// A block's records, as a sink shows them.
pub type BlockRecords = (B256, Vec<Vec<u8>>);

/// The records of the canonical chain the log ends on, block by block in
/// order (commits minus retractions), of the blocks at least `depth` deep.
pub fn canonical(log: &[OutcomeEntry], depth: u64) -> Vec<BlockRecords> {
    let mut chain: Vec<(u64, BlockRecords)> = Vec::new();
    for o in log {
        match o.kind {
            EventKind::Commit => chain.push((
                o.block.number,
                (o.block.hash, o.record_lines().map(<[u8]>::to_vec).collect()),
            )),
            EventKind::Revert => {
                let (_, (hash, _)) = chain.pop().expect("a revert of the tip");
                assert_eq!(hash, o.block.hash, "reverts are of the tip");
            }
        }
    }
    let tip = chain.last().map_or(0, |(n, _)| *n);
    chain
        .into_iter()
        .filter(|(n, _)| n + depth <= tip)
        .map(|(_, b)| b)
        .filter(|(_, records)| !records.is_empty())
        .collect()
}

/// What a receiver holds after applying `batches` (de-duplicated by key,
/// in arrival order): inserts add the block's records, retracts remove the
/// block's; asserts the batches come in outcome order.
pub fn apply(batches: &[ReceivedBatch]) -> Vec<BlockRecords> {
    let mut seen = std::collections::HashSet::new();
    let mut held: Vec<BlockRecords> = Vec::new();
    let mut last_outcome = 0;
    for b in batches {
        if !seen.insert(b.key.clone()) {
            continue;
        }
        assert!(
            b.outcome > last_outcome,
            "batches strictly in order: {} after {last_outcome}",
            b.outcome
        );
        last_outcome = b.outcome;
        assert_eq!(b.count, b.records.len());
        match b.kind {
            ItemKind::Insert => held.push((
                b.block.hash,
                b.records.iter().map(|r| r.record_bytes()).collect(),
            )),
            ItemKind::Retract => {
                let before = held.len();
                let removed: usize = held
                    .iter()
                    .filter(|(h, _)| *h == b.block.hash)
                    .map(|(_, r)| r.len())
                    .sum();
                held.retain(|(h, _)| *h != b.block.hash);
                assert!(
                    held.len() < before,
                    "a retraction of a block delivered before"
                );
                assert_eq!(
                    removed,
                    b.records.len(),
                    "one retraction per record inserted"
                );
            }
        }
    }
    held
}

/// How [`kill_while_delivering`] went.
#[derive(Debug)]
pub struct Kills {
    /// SIGKILLs sent.
    pub kills: u32,
    /// Of those, the ones sent after the destination changed in that run.
    pub mid_delivery: u32,
    /// Runs started.
    pub runs: u32,
    /// `progress()` after each run.
    pub progress: Vec<u64>,
}

/// Starts runner processes with `spawn` (each replaying from its checkpoint with
/// `delay_ms` per event) and kills each (SIGKILL) at a random moment within three
/// events after `progress()` (what the destination holds) changed, until twelve
/// were killed while delivering or a run delivered nothing (the replay is done).
/// Asserts at least ten kills landed mid-delivery.
pub fn kill_while_delivering(
    mut spawn: impl FnMut() -> std::process::Child,
    progress: impl Fn() -> u64,
    delay_ms: u64,
) -> Kills {
    use rand::Rng as _;
    let mut rng = rand::rng();
    let mut k = Kills {
        kills: 0,
        mid_delivery: 0,
        runs: 0,
        progress: Vec::new(),
    };
    while k.mid_delivery < 12 {
        k.runs += 1;
        assert!(
            k.runs < 60,
            "could not kill the runner mid-delivery 10 times: {k:?}"
        );
        let before = progress();
        let mut child = spawn();
        // (The first run compiles the module first.)
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut delivering = false;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            if progress() != before {
                delivering = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..3 * delay_ms)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            k.kills += 1;
            k.mid_delivery += u32::from(delivering);
        }
        let _ = child.wait();
        k.progress.push(progress());
        if !delivering {
            break;
        }
    }
    assert!(
        k.mid_delivery >= 10,
        "only {} kills while delivering: {k:?}",
        k.mid_delivery
    );
    k
}
