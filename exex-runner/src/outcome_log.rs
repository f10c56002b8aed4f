//! The outcome logs as the threads that share them see them: the control
//! thread publishes each function's log bounds after every commit and reads
//! consumers' acknowledgements to prune; a consumer's thread (the pusher)
//! reads the bounds, records acknowledgements and waits to be woken.
//!
//! Nothing here touches the database except [`OutcomeLog::record_ack`]
//! (one unsynced write); the control thread never waits on a consumer, only
//! on these short locks.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Instant,
};

use parking_lot::{Condvar, Mutex};
use xxfunc_api::FunctionId;

use crate::{error::Result, state_db::StateDb};

/// A function's log as committed: outcomes `pruned_to + 1 ..= last_seq` are kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LogBounds {
    pub(crate) pruned_to: u64,
    pub(crate) last_seq: u64,
    /// The last item seq (0: none yet).
    pub(crate) last_item: u64,
}

/// Shared between the control thread and the consumers' threads.
#[derive(Debug)]
pub(crate) struct OutcomeLog {
    db: Arc<StateDb>,
    bounds: Mutex<HashMap<FunctionId, LogBounds>>,
    /// Per consumer, per function: the highest seq it acknowledged.
    acks: Mutex<BTreeMap<String, HashMap<FunctionId, u64>>>,
    /// Consumers of one function only (a sink): pruning of other functions
    /// does not wait for them.
    scopes: Mutex<HashMap<String, FunctionId>>,
    wake: Mutex<Wake>,
    woken: Condvar,
}

/// What a waiting consumer is told.
#[derive(Debug, Default)]
struct Wake {
    /// Bumped after every commit.
    generation: u64,
    /// Set when the consumers should finish: push what they can until then.
    finish_by: Option<Instant>,
}

impl OutcomeLog {
    pub(crate) fn new(db: Arc<StateDb>) -> Self {
        Self {
            db,
            bounds: Mutex::new(HashMap::new()),
            acks: Mutex::new(BTreeMap::new()),
            scopes: Mutex::new(HashMap::new()),
            wake: Mutex::new(Wake::default()),
            woken: Condvar::new(),
        }
    }

    pub(crate) fn db(&self) -> &Arc<StateDb> {
        &self.db
    }

    /// Publishes the bounds of `id`'s log (control thread, after a commit).
    pub(crate) fn publish(&self, id: &FunctionId, bounds: LogBounds) {
        self.bounds.lock().insert(id.clone(), bounds);
    }

    /// Every function's bounds.
    pub(crate) fn bounds(&self) -> Vec<(FunctionId, LogBounds)> {
        let mut out: Vec<_> = self
            .bounds
            .lock()
            .iter()
            .map(|(id, b)| (id.clone(), *b))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Makes `consumer` one whose acknowledgement pruning waits for, with
    /// the acknowledgements it stored before.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn add_consumer(&self, consumer: &str) -> Result<()> {
        let stored = self.db.acks(consumer)?;
        self.acks.lock().insert(consumer.to_string(), stored);
        Ok(())
    }

    /// Like [`OutcomeLog::add_consumer`], for a consumer of `id`'s log only
    /// (a sink): pruning of other functions' logs does not wait for it.
    ///
    /// # Errors
    /// A database error.
    pub(crate) fn add_consumer_of(&self, consumer: &str, id: &FunctionId) -> Result<()> {
        self.scopes.lock().insert(consumer.to_string(), id.clone());
        self.add_consumer(consumer)
    }

    /// Stops waiting for `consumer` (a removed sink): pruning no longer takes its
    /// acknowledgements into account, and later ones it records are not published.
    pub(crate) fn remove_consumer(&self, consumer: &str) {
        self.acks.lock().remove(consumer);
        self.scopes.lock().remove(consumer);
    }

    /// What every consumer of `id` acknowledged of it: the lowest
    /// acknowledgement, 0 when one has none, `u64::MAX` without consumers.
    pub(crate) fn acked_by_all(&self, id: &FunctionId) -> u64 {
        let scopes = self.scopes.lock();
        self.acks
            .lock()
            .iter()
            .filter(|(consumer, _)| scopes.get(*consumer).is_none_or(|f| f == id))
            .map(|(_, acks)| acks.get(id).copied().unwrap_or(0))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// The bounds of `id`'s log, once it has some.
    pub(crate) fn bounds_of(&self, id: &FunctionId) -> Option<LogBounds> {
        self.bounds.lock().get(id).copied()
    }

    /// What `consumer` acknowledged of `id` (0: nothing).
    pub(crate) fn ack(&self, consumer: &str, id: &FunctionId) -> u64 {
        self.acks
            .lock()
            .get(consumer)
            .and_then(|acks| acks.get(id).copied())
            .unwrap_or(0)
    }

    /// Stores and publishes that `consumer` acknowledged `id` up to `seq`
    /// (published only while it is a consumer: a removed sink's last
    /// acknowledgements never hold retention back again).
    ///
    /// # Errors
    /// A database error (the acknowledgement is then published anyway: it
    /// holds for this process, and is only resent after a restart).
    pub(crate) fn record_ack(&self, consumer: &str, id: &FunctionId, seq: u64) -> Result<()> {
        if let Some(acks) = self.acks.lock().get_mut(consumer) {
            acks.insert(id.clone(), seq);
        }
        self.db.put_ack(consumer, id, seq)
    }

    /// Outcomes kept but not yet acknowledged by `consumer`, over all functions.
    pub(crate) fn pending(&self, consumer: &str) -> u64 {
        let acks = self.acks.lock();
        let acks = acks.get(consumer);
        self.bounds
            .lock()
            .iter()
            .map(|(id, b)| {
                let acked = acks.and_then(|a| a.get(id).copied()).unwrap_or(0);
                b.last_seq.saturating_sub(acked.max(b.pruned_to))
            })
            .sum()
    }

    /// Wakes the consumers (control thread, after a commit).
    pub(crate) fn notify(&self) {
        self.wake.lock().generation += 1;
        self.woken.notify_all();
    }

    /// Tells the consumers to push what they can until `deadline`, then return.
    pub(crate) fn finish_by(&self, deadline: Instant) {
        self.wake.lock().finish_by = Some(deadline);
        self.woken.notify_all();
    }

    /// The current wake generation and finish deadline.
    pub(crate) fn wake_state(&self) -> (u64, Option<Instant>) {
        let w = self.wake.lock();
        (w.generation, w.finish_by)
    }

    /// Waits until a finish is asked, `until`, or (with `seen`) the
    /// generation differs from `seen`.
    pub(crate) fn wait(&self, seen: Option<u64>, until: Instant) {
        let mut w = self.wake.lock();
        while seen.is_none_or(|g| w.generation == g) && w.finish_by.is_none() {
            if self.woken.wait_until(&mut w, until).timed_out() {
                return;
            }
        }
    }
}
