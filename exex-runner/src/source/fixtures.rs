//! Replay of recorded envelopes (`fixtures/events/*.bin`, in file-name order).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use xxfunc_abi::{ChainBlock, EventKind};

use super::{BlockSource, ChainEvent, ChainSource, EventSink};
use crate::{
    error::{Result, RunnerError},
    state_db::Checkpoint,
};

/// Replays recorded event envelopes. Event `seq` is the 1-based position in
/// file-name order, so a restarted runner skips exactly what it processed.
#[derive(Clone, Debug)]
pub struct FixtureSource {
    dir: PathBuf,
    events: Vec<ChainEvent>,
    delay: Duration,
}

impl FixtureSource {
    /// Loads every `*.bin` under `dir/events` (or `dir` itself when it has no
    /// `events/` subdirectory), decoding each envelope.
    ///
    /// # Errors
    /// [`RunnerError::Fixture`] or [`RunnerError::FixtureDecode`] naming the
    /// file that cannot be read or decoded, [`RunnerError::NoFixtures`] for a
    /// directory without envelopes.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let events_dir = if dir.join("events").is_dir() {
            dir.join("events")
        } else {
            dir.to_path_buf()
        };
        let read_err = |path: &Path, source| RunnerError::Fixture {
            path: path.to_path_buf(),
            source,
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&events_dir)
            .map_err(|e| read_err(&events_dir, e))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "bin"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(RunnerError::NoFixtures { path: events_dir });
        }
        let mut events = Vec::with_capacity(files.len());
        for (i, path) in files.iter().enumerate() {
            let bytes = std::fs::read(path).map_err(|e| read_err(path, e))?;
            let envelope =
                xxfunc_abi::decode_owned(&bytes).map_err(|source| RunnerError::FixtureDecode {
                    path: path.clone(),
                    source,
                })?;
            events.push(ChainEvent {
                seq: i as u64 + 1,
                kind: envelope.kind,
                block: Arc::new(envelope.block),
            });
        }
        Ok(Self {
            dir: events_dir,
            events,
            delay: Duration::ZERO,
        })
    }

    /// Sleeps `delay` before each event (a test knob that makes a replay slow
    /// enough to interrupt).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The decoded events in delivery order.
    pub fn events(&self) -> &[ChainEvent] {
        &self.events
    }

    /// The canonical chain after the whole replay, by number.
    fn canonical(&self) -> BTreeMap<u64, Arc<ChainBlock>> {
        let mut chain = BTreeMap::new();
        for ev in &self.events {
            match ev.kind {
                EventKind::Commit => {
                    chain.insert(ev.block.number, ev.block.clone());
                }
                EventKind::Revert => {
                    chain.remove(&ev.block.number);
                }
            }
        }
        chain
    }
}

struct FixtureBlocks(BTreeMap<u64, Arc<ChainBlock>>);

impl BlockSource for FixtureBlocks {
    fn block(&self, number: u64) -> Result<Option<Arc<ChainBlock>>> {
        Ok(self.0.get(&number).cloned())
    }
}

impl ChainSource for FixtureSource {
    fn describe(&self) -> String {
        format!(
            "fixtures {} ({} events)",
            self.dir.display(),
            self.events.len()
        )
    }

    fn blocks(&self) -> Option<Arc<dyn BlockSource>> {
        Some(Arc::new(FixtureBlocks(self.canonical())))
    }

    fn run(self: Box<Self>, resume: Checkpoint, sink: EventSink) -> Result<()> {
        for ev in self.events {
            // Events the runner already processed are re-sent without delay:
            // it skips them but rebuilds its window of recent blocks from them.
            if ev.seq > resume.seq && !self.delay.is_zero() {
                std::thread::sleep(self.delay);
            }
            sink.send(ev)?;
        }
        sink.end();
        Ok(())
    }
}
