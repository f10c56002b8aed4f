//! The change feed: its head, commit listeners, snapshots and pages (waiting or not).

use std::time::{Duration, Instant};

use rocksdb::{Direction, IteratorMode};
use xxfunc_api::{FeedEntry, FeedPage, FeedSnapshot};

use super::{MAX_FEED_PAGE, Registry, spec_of};
use crate::{
    error::{RegistryError, Result},
    schema::*,
};

impl Registry {
    /// Calls `listener` with the new feed head after every commit that adds
    /// feed entries (from the committing thread, once the entries are durable).
    /// Async servers use it to wake long polls without blocking a thread.
    /// Keep it short, and do not write to the registry from it: publishers wait for it.
    pub fn on_commit(&self, listener: impl Fn(u64) + Send + Sync + 'static) {
        self.inner.listeners.lock().push(Box::new(listener));
    }

    /// The highest change feed seq whose entries are durable (0 when the feed is
    /// empty): entries are published only after the WAL sync that covers them.
    pub fn feed_head(&self) -> u64 {
        *self.inner.head.lock()
    }

    /// Every function's spec and the feed seq they reflect, read consistently, and the
    /// registry's [`epoch`](Self::epoch). Answered once what it shows is durable.
    ///
    /// # Errors
    /// Read failures; a failed WAL sync.
    pub fn snapshot(&self) -> Result<FeedSnapshot> {
        let w = self.inner.write.lock();
        let seq = self.inner.written.load(std::sync::atomic::Ordering::SeqCst);
        let mut functions = Vec::new();
        for id in self.ids()? {
            if let Some(spec) = spec_of(&id, &self.load(&id)?) {
                functions.push(spec);
            }
        }
        drop(w);
        self.sync_wal()?;
        Ok(FeedSnapshot {
            seq,
            functions,
            epoch: self.epoch().to_string(),
        })
    }

    /// Feed entries with `seq > after`, at most `limit` (capped at [`MAX_FEED_PAGE`]).
    ///
    /// # Errors
    /// Read failures.
    pub fn feed_after(&self, after: u64, limit: usize) -> Result<FeedPage> {
        let head = self.feed_head();
        let limit = limit.clamp(1, MAX_FEED_PAGE);
        let mut entries = Vec::new();
        if after < head {
            let start = (after + 1).to_be_bytes();
            let iter = self.inner.db.iterator_cf(
                self.cf(CF_FEED),
                IteratorMode::From(&start, Direction::Forward),
            );
            for item in iter.take(limit) {
                let (key, value) = item.map_err(|source| RegistryError::Db {
                    op: "read feed",
                    source,
                })?;
                let entry: FeedEntry = decode(CF_FEED, &key, &value)?;
                if entry.seq > head {
                    break;
                }
                entries.push(entry);
            }
        }
        Ok(FeedPage {
            entries,
            head,
            epoch: self.epoch().to_string(),
        })
    }

    /// Like [`feed_after`](Self::feed_after), but blocks the calling thread
    /// until an entry after `after` exists or `timeout` passes (then the page
    /// is empty). Run it off async executors (`spawn_blocking`).
    ///
    /// # Errors
    /// Read failures.
    pub fn wait_feed(&self, after: u64, timeout: Duration) -> Result<FeedPage> {
        let deadline = Instant::now() + timeout;
        {
            let mut head = self.inner.head.lock();
            while *head <= after {
                if self
                    .inner
                    .changed
                    .wait_until(&mut head, deadline)
                    .timed_out()
                {
                    break;
                }
            }
        }
        self.feed_after(after, MAX_FEED_PAGE)
    }
}
