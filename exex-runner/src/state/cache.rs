//! [`StateCache`]: answers per (block hash, request), shared by every function of a
//! runner, single-flight (callers asking for the same thing at once wait for one backend
//! read), kept for the recent blocks and bounded in bytes.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use alloy_primitives::B256;
use parking_lot::Mutex;

use super::{BlockAt, StateAnswer, StateRequest, Unavailable};

/// One cached request: empty until its first successful read.
type Slot = Arc<Mutex<Option<StateAnswer>>>;

/// Requests of one block (by hash: a reorg's blocks at one height are kept apart).
type Requests = HashMap<StateRequest, Slot>;

/// Bytes a cached entry costs besides its answer (key, map and slot overhead).
const ENTRY_OVERHEAD: usize = 128;

/// Answers by block, then request.
pub struct StateCache {
    inner: Mutex<Inner>,
    budget: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

#[derive(Default)]
struct Inner {
    blocks: BTreeMap<u64, HashMap<B256, Requests>>,
    bytes: usize,
}

impl Default for StateCache {
    fn default() -> Self {
        Self::with_budget(DEFAULT_BUDGET)
    }
}

/// Bytes of answers kept by default.
pub const DEFAULT_BUDGET: usize = 256 << 20;

impl std::fmt::Debug for StateCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock();
        f.debug_struct("StateCache")
            .field("blocks", &inner.blocks.len())
            .field("bytes", &inner.bytes)
            .finish_non_exhaustive()
    }
}

impl StateCache {
    /// A cache keeping at most about `budget` bytes of answers (the oldest blocks go
    /// first; the newest block is always kept).
    pub fn with_budget(budget: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            budget,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The cached answer to `request` at `at`, or `read`'s, which is then cached. Only
    /// one caller reads a given (block, request) at a time; the others wait for its
    /// answer, but not past `deadline`.
    ///
    /// # Errors
    /// `read`'s [`Unavailable`] (not cached: the next caller reads again), or the
    /// deadline.
    pub fn get_or_read(
        &self,
        at: &BlockAt,
        request: &StateRequest,
        deadline: Instant,
        read: impl FnOnce(&BlockAt, &StateRequest) -> Result<StateAnswer, Unavailable>,
    ) -> Result<StateAnswer, Unavailable> {
        let slot = {
            let mut inner = self.inner.lock();
            let requests = inner
                .blocks
                .entry(at.number)
                .or_default()
                .entry(at.hash)
                .or_default();
            match requests.get(request) {
                Some(slot) => slot.clone(),
                None => {
                    let slot = Slot::default();
                    requests.insert(request.clone(), slot.clone());
                    slot
                }
            }
        };
        let Some(mut answer) = slot.try_lock_until(deadline) else {
            return Err(Unavailable::deadline());
        };
        if let Some(cached) = answer.as_ref() {
            self.hits.fetch_add(1, Ordering::Relaxed);
            super::READS.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(cached.clone());
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        super::READS.misses.fetch_add(1, Ordering::Relaxed);
        let fresh = read(at, request)?;
        *answer = Some(fresh.clone());
        drop(answer);
        self.charge(fresh.len() + ENTRY_OVERHEAD);
        Ok(fresh)
    }

    /// Counts `bytes` more and evicts the oldest blocks while over budget.
    fn charge(&self, bytes: usize) {
        let mut inner = self.inner.lock();
        inner.bytes += bytes;
        while inner.bytes > self.budget && inner.blocks.len() > 1 {
            let Some((_, hashes)) = inner.blocks.pop_first() else {
                break;
            };
            inner.bytes = inner.bytes.saturating_sub(size_of_block(&hashes));
        }
    }

    /// Forgets every block below `number` (they are final, or past the reorg depth the
    /// runner keeps).
    pub fn forget_below(&self, number: u64) {
        let mut inner = self.inner.lock();
        let kept = inner.blocks.split_off(&number);
        let dropped = std::mem::replace(&mut inner.blocks, kept);
        let freed: usize = dropped.values().map(size_of_block).sum();
        inner.bytes = if inner.blocks.is_empty() {
            0
        } else {
            inner.bytes.saturating_sub(freed)
        };
    }

    /// (hits, misses) since the cache was made.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }

    /// Blocks with cached answers.
    pub fn blocks(&self) -> usize {
        self.inner.lock().blocks.len()
    }
}

fn size_of_block(hashes: &HashMap<B256, Requests>) -> usize {
    hashes
        .values()
        .flat_map(|requests| requests.values())
        .map(|slot| {
            // A slot being read is locked; it is not charged yet either.
            slot.try_lock()
                .and_then(|answer| answer.as_ref().map(StateAnswer::len))
                .map_or(0, |len| len + ENTRY_OVERHEAD)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use std::{
        sync::atomic::AtomicUsize,
        time::{Duration, Instant},
    };

    use alloy_primitives::{Address, B256, Bytes};

    use super::*;

    fn at(number: u64, tag: u8) -> BlockAt {
        BlockAt {
            number,
            hash: B256::repeat_byte(tag),
        }
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(30)
    }

    #[test]
    fn one_backend_read_per_block_and_request() {
        let cache = StateCache::default();
        let reads = AtomicUsize::new(0);
        let request = StateRequest::Storage(Address::repeat_byte(1), B256::ZERO);
        let read = |_: &BlockAt, _: &StateRequest| {
            reads.fetch_add(1, Ordering::Relaxed);
            Ok(StateAnswer::Word(B256::repeat_byte(7)))
        };
        for _ in 0..10 {
            let answer = cache.get_or_read(&at(5, 1), &request, far(), read).unwrap();
            assert_eq!(answer, StateAnswer::Word(B256::repeat_byte(7)));
        }
        assert_eq!(reads.load(Ordering::Relaxed), 1);
        // Another block at the same height (a reorg's) is another entry.
        cache.get_or_read(&at(5, 2), &request, far(), read).unwrap();
        assert_eq!(reads.load(Ordering::Relaxed), 2);
        assert_eq!(cache.hits_and_misses(), (9, 2));
    }

    #[test]
    fn unavailable_is_not_cached() {
        let cache = StateCache::default();
        let request = StateRequest::Code(Address::ZERO);
        let down = |_: &BlockAt, _: &StateRequest| Err(Unavailable("node down".into()));
        assert_eq!(
            cache.get_or_read(&at(1, 1), &request, far(), down),
            Err(Unavailable("node down".into()))
        );
        let up = |_: &BlockAt, _: &StateRequest| Ok(StateAnswer::Code(Bytes::from_static(b"c")));
        assert_eq!(
            cache.get_or_read(&at(1, 1), &request, far(), up),
            Ok(StateAnswer::Code(Bytes::from_static(b"c")))
        );
    }

    #[test]
    fn concurrent_callers_share_one_read_and_respect_their_deadline() {
        let cache = Arc::new(StateCache::default());
        let reads = Arc::new(AtomicUsize::new(0));
        let request = StateRequest::Account(Address::repeat_byte(9));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (cache, reads, request) = (cache.clone(), reads.clone(), request.clone());
                std::thread::spawn(move || {
                    cache.get_or_read(&at(3, 3), &request, far(), |_, _| {
                        reads.fetch_add(1, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(50));
                        Ok(StateAnswer::Word(B256::ZERO))
                    })
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap(), Ok(StateAnswer::Word(B256::ZERO)));
        }
        assert_eq!(reads.load(Ordering::Relaxed), 1);

        // A caller whose deadline passes while another reads gets "deadline".
        let slow_request = StateRequest::Account(Address::repeat_byte(10));
        let reader = {
            let (cache, request) = (cache.clone(), slow_request.clone());
            std::thread::spawn(move || {
                cache.get_or_read(&at(3, 3), &request, far(), |_, _| {
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(StateAnswer::Word(B256::ZERO))
                })
            })
        };
        std::thread::sleep(Duration::from_millis(50));
        let soon = Instant::now() + Duration::from_millis(20);
        let waited = cache.get_or_read(&at(3, 3), &slow_request, soon, |_, _| {
            unreachable!("the first caller reads")
        });
        assert_eq!(waited, Err(Unavailable::deadline()));
        assert!(reader.join().unwrap().is_ok());
    }

    #[test]
    fn forgets_old_blocks_and_stays_in_budget() {
        let cache = StateCache::with_budget(10 * (1024 + ENTRY_OVERHEAD));
        let code = |_: &BlockAt, _: &StateRequest| Ok(StateAnswer::Code(vec![0; 1024].into()));
        for n in 0..100u64 {
            cache
                .get_or_read(&at(n, 1), &StateRequest::Code(Address::ZERO), far(), code)
                .unwrap();
        }
        assert!(cache.blocks() <= 10, "{} blocks kept", cache.blocks());
        cache.forget_below(95);
        assert_eq!(cache.blocks(), 5);
        cache.forget_below(1_000);
        assert_eq!(cache.blocks(), 0);
        assert_eq!(cache.inner.lock().bytes, 0);
    }
}
