//! Desired state: starting, stopping and redeploying functions as the
//! registry says, loading their modules, and evicting a module's compiled
//! code from memory once no function runs it (its artifact stays on disk, so
//! a later start loads it without compiling).

use xxfunc_api::{
    BlockRef, DesiredState, FeedEntry, FeedSnapshot, FunctionId, FunctionSpec, StartFrom,
};

use super::{Function, Runner};
use crate::{
    error::Result,
    state_db::{FunctionRecord, Position},
};

impl Runner {
    pub(super) fn load(&self, f: &mut Function) {
        let hash = f.rec.hash;
        match self.cache.load(&hash, || self.modules.fetch(&hash)) {
            Ok((module, from)) => {
                tracing::info!(id = %f.rec.id, %hash, ?from, "module loaded");
                f.module = Some(module);
                f.load_error = None;
            }
            Err(e) => {
                tracing::warn!(id = %f.rec.id, %hash, "module failed to load: {e}");
                f.module = None;
                f.load_error = Some(e.to_string());
            }
        }
    }

    /// Drops `hash`'s compiled code from the in-memory cache unless a
    /// function still holds it.
    fn release(&self, hash: Option<xxfunc_store::ModuleHash>) {
        let Some(hash) = hash else { return };
        let in_use = self
            .functions
            .values()
            .any(|f| f.module.as_ref().is_some_and(|m| *m.hash() == hash));
        if !in_use {
            tracing::debug!(%hash, "module evicted from memory");
            self.cache.forget(&hash);
        }
    }

    pub(super) fn persist(&self, rec: &FunctionRecord) -> Result<()> {
        let mut batch = self.db.batch();
        batch.put_function(rec);
        batch.commit()
    }

    /// Applies the registry's desired state for one function: start (fresh,
    /// per `spec.start`, when `start_generation` changed), stop, or redeploy
    /// (a new hash keeps the cursor and runs from the next event). A new
    /// start or a redeploy clears quarantine. Takes effect for the next event.
    /// Its sinks are brought to `spec.sinks` (whether it runs or not: a
    /// stopped function's log is still delivered).
    ///
    /// # Errors
    /// [`RunnerError::Db`] when the change cannot be persisted. A module that
    /// fails to load is reported as `LoadFailed`, not returned.
    pub fn apply(&mut self, spec: &FunctionSpec) -> Result<()> {
        self.sync_sinks(&spec.id, &spec.sinks)?;
        let started = spec.desired == DesiredState::Started;
        let fresh_position = |tip: Option<BlockRef>| match spec.start {
            StartFrom::Block(number) => Position::From { number },
            StartFrom::Head => tip.map_or(Position::Head, |t| Position::From {
                number: t.number + 1,
            }),
        };
        let tip = self.checkpoint.tip;
        let (mut f, new) = match self.functions.remove(&spec.id) {
            Some(f) => (f, false),
            None if !started => return Ok(()),
            None => (
                Function {
                    rec: FunctionRecord::new(
                        spec.id.clone(),
                        spec.hash,
                        spec.start_generation,
                        fresh_position(tip),
                    ),
                    module: None,
                    load_error: None,
                },
                true,
            ),
        };
        let before = f.rec.clone();
        let held = f.module.as_ref().map(|m| *m.hash());
        if started {
            if spec.start_generation != f.rec.start_generation {
                f.rec.start_generation = spec.start_generation;
                f.rec.position = fresh_position(tip);
                f.rec.quarantined = None;
                f.rec.counters.consecutive_failures = 0;
            }
            if spec.hash != f.rec.hash {
                f.rec.hash = spec.hash;
                f.rec.quarantined = None;
                f.rec.counters.consecutive_failures = 0;
            }
            f.rec.started = true;
            if f.module.as_ref().is_none_or(|m| *m.hash() != f.rec.hash) {
                self.load(&mut f);
            }
        } else {
            f.rec.started = false;
            if spec.hash != f.rec.hash {
                f.rec.hash = spec.hash;
            }
            f.module = None;
        }
        if f.rec.hash != before.hash || f.rec.start_generation != before.start_generation {
            // A new module or a fresh start is judged anew.
            self.slow.remove(&spec.id);
        }
        if f.rec != before || new {
            tracing::info!(id = %spec.id, hash = %spec.hash, started, position = ?f.rec.position, "function updated");
            self.persist(&f.rec)?;
        }
        let now = f.module.as_ref().map(|m| *m.hash());
        self.functions.insert(spec.id.clone(), f);
        if held != now {
            self.release(held);
        }
        Ok(())
    }

    /// Stops a function the registry no longer lists (its state is kept).
    ///
    /// # Errors
    /// [`RunnerError::Db`] when the change cannot be persisted.
    pub fn remove(&mut self, id: &FunctionId) -> Result<()> {
        self.sync_sinks(id, &[])?;
        if let Some(f) = self.functions.get_mut(id)
            && f.rec.started
        {
            f.rec.started = false;
            let held = f.module.take().map(|m| *m.hash());
            let rec = f.rec.clone();
            self.persist(&rec)?;
            self.release(held);
        }
        Ok(())
    }

    /// Applies a whole snapshot: every listed spec, and stops functions it
    /// does not list.
    ///
    /// # Errors
    /// As [`Runner::apply`].
    pub fn sync_snapshot(&mut self, snapshot: &FeedSnapshot) -> Result<()> {
        for spec in &snapshot.functions {
            self.apply(spec)?;
        }
        let listed: Vec<&FunctionId> = snapshot.functions.iter().map(|s| &s.id).collect();
        let gone: Vec<FunctionId> = self
            .functions
            .keys()
            .filter(|id| !listed.contains(id))
            .cloned()
            .collect();
        for id in gone {
            self.remove(&id)?;
        }
        Ok(())
    }

    /// Applies one change-feed entry.
    ///
    /// # Errors
    /// As [`Runner::apply`].
    pub fn apply_feed_entry(&mut self, entry: &FeedEntry) -> Result<()> {
        match &entry.spec {
            Some(spec) => self.apply(spec),
            None => self.remove(&entry.id),
        }
    }
}
