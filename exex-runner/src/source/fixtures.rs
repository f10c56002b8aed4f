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

/// Where a recorded chain's parts live, given the directory a user names: either the
/// fixtures root (with `events/`, `golden/`, `state/` under it) or its `events/` directory
/// itself (the others are then its siblings).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FixtureLayout {
    /// The event envelopes (`*.bin`).
    pub events: PathBuf,
    /// Expected outputs per example (`golden/<example>/`).
    pub golden: PathBuf,
    /// The chain's state per block (`state/`, optional).
    pub state: PathBuf,
}

impl FixtureLayout {
    /// The layout around `dir`.
    pub fn of(dir: &Path) -> Self {
        let (root, events) = if dir.join("events").is_dir() {
            (dir.to_path_buf(), dir.join("events"))
        } else {
            let root = dir.parent().map(Path::to_path_buf).unwrap_or_default();
            (root, dir.to_path_buf())
        };
        Self {
            events,
            golden: root.join("golden"),
            state: root.join("state"),
        }
    }

    /// [`Self::state`], when it was recorded.
    pub fn recorded_state(&self) -> Option<&Path> {
        Some(self.state.as_path()).filter(|d| d.is_dir())
    }
}

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
        let events_dir = FixtureLayout::of(dir.as_ref()).events;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_from_the_root_or_from_its_events_directory() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("fixtures");
        std::fs::create_dir_all(root.join("events")).unwrap();
        let want = FixtureLayout {
            events: root.join("events"),
            golden: root.join("golden"),
            state: root.join("state"),
        };
        assert_eq!(FixtureLayout::of(&root), want);
        assert_eq!(FixtureLayout::of(&root.join("events")), want);
        assert_eq!(want.recorded_state(), None);
        std::fs::create_dir(root.join("state")).unwrap();
        assert_eq!(
            FixtureLayout::of(&root).recorded_state(),
            Some(root.join("state").as_path())
        );
    }
}
