//! Writes: bind, start/stop, pin/unpin and runner reports, each one synced
//! `WriteBatch` whose feed entries describe it.

use std::sync::atomic::Ordering;

use rocksdb::WriteBatch;
use xxfunc_api::{
    BindResponse, ChangeKind, DesiredState, FeedEntry, FunctionId, FunctionName, FunctionSpec,
    ModuleHash, PinResponse, RunnerReport, StartFrom, VersionEntry,
};

use super::{Registry, State, not_found, now_ms, spec_of};
use crate::{
    error::{RegistryError, Result},
    schema::*,
};

impl Registry {
    /// Binds `name` to `hash`, recording a new version (and a `deployed` feed
    /// entry). Binding a name to the hash it already points at changes nothing
    /// and answers the current version, so a repeated deploy is idempotent.
    ///
    /// The caller vouches that `hash` is stored (the gateway checks its module
    /// store first); the registry never sees module bytes.
    ///
    /// # Errors
    /// [`RegistryError::Db`] if the write fails; nothing is changed then.
    pub fn bind(&self, name: &FunctionName, hash: ModuleHash) -> Result<BindResponse> {
        let w = self.inner.write.lock();
        let id = FunctionId::Name(name.clone());
        let state = self.load(&id)?;
        if let Some(rec) = state.name
            && rec.hash == hash
        {
            return Ok(BindResponse {
                name: name.clone(),
                hash,
                version: rec.version,
                pinned: state.pin.is_some(),
            });
        }
        let version = state.name.map_or(1, |r| r.version + 1);
        let rec = NameRecord { hash, version };
        let at_ms = now_ms();
        let mut tx = self.tx();
        tx.batch
            .put_cf(self.cf(CF_NAMES), name.as_str(), encode(&rec));
        tx.batch.put_cf(
            self.cf(CF_VERSIONS),
            sub_key(name.as_str(), version),
            encode(&VersionEntry {
                version,
                hash,
                at_ms,
            }),
        );
        let after = State {
            name: Some(rec),
            ..state
        };
        tx.feed(&id, ChangeKind::Deployed, spec_of(&id, &after), at_ms);
        tx.commit()?;
        drop(w);
        self.sync_wal()?;
        Ok(BindResponse {
            name: name.clone(),
            hash,
            version,
            pinned: after.pin.is_some(),
        })
    }

    /// Sets a function's desired state to started, beginning at `from`.
    ///
    /// A start bumps `start_generation` (runners reset the cursor to `from`),
    /// except that starting an already started function from the head
    /// changes nothing: repeating `start` never skips blocks.
    ///
    /// A [`FunctionId::Hash`] identity is created by its first start; the
    /// caller vouches that the module is stored.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name that was never bound.
    pub fn start(&self, id: &FunctionId, from: StartFrom) -> Result<FunctionSpec> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        self.require_exists(id, &state, false)?;
        let cur = state.desired.unwrap_or_default();
        if cur.desired == DesiredState::Started && from == StartFrom::Head {
            return Ok(spec_of(id, &state).expect("an existing function has a spec"));
        }
        let rec = DesiredRecord {
            desired: DesiredState::Started,
            start: from,
            start_generation: cur.start_generation + 1,
        };
        let spec = self.set_desired(id, state, rec, ChangeKind::Started)?;
        drop(w);
        self.sync_wal()?;
        Ok(spec)
    }

    /// Sets a function's desired state to stopped. Stopping a stopped function changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for an unknown name, or a hash that was never started.
    pub fn stop(&self, id: &FunctionId) -> Result<FunctionSpec> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        self.require_exists(id, &state, true)?;
        let cur = state.desired.unwrap_or_default();
        if cur.desired == DesiredState::Stopped {
            return Ok(spec_of(id, &state).expect("an existing function has a spec"));
        }
        let rec = DesiredRecord {
            desired: DesiredState::Stopped,
            ..cur
        };
        let spec = self.set_desired(id, state, rec, ChangeKind::Stopped)?;
        drop(w);
        self.sync_wal()?;
        Ok(spec)
    }

    fn set_desired(
        &self,
        id: &FunctionId,
        state: State,
        rec: DesiredRecord,
        change: ChangeKind,
    ) -> Result<FunctionSpec> {
        let mut tx = self.tx();
        tx.batch
            .put_cf(self.cf(CF_DESIRED), id_key(id), encode(&rec));
        let after = State {
            desired: Some(rec),
            ..state
        };
        let spec = spec_of(id, &after).expect("a function with a desired state has a spec");
        tx.feed(id, change, Some(spec.clone()), now_ms());
        tx.commit()?;
        Ok(spec)
    }

    /// Pins a name to its current hash (new deploys record versions but the
    /// function keeps running the pinned hash), or pins a hash (garbage
    /// collection never removes it). Pinning something pinned changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name that was never bound.
    pub fn pin(&self, id: &FunctionId) -> Result<PinResponse> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        let hash = match id {
            FunctionId::Name(_) => state.name.ok_or_else(|| not_found(id))?.hash,
            FunctionId::Hash(h) => *h,
        };
        if let Some(pinned) = state.pin {
            return Ok(PinResponse {
                id: id.clone(),
                hash: pinned,
                pinned: true,
            });
        }
        let mut tx = self.tx();
        tx.batch.put_cf(self.cf(CF_PINS), id_key(id), encode(&hash));
        let after = State {
            pin: Some(hash),
            ..state
        };
        tx.feed(id, ChangeKind::Pinned, spec_of(id, &after), now_ms());
        tx.commit()?;
        drop(w);
        self.sync_wal()?;
        Ok(PinResponse {
            id: id.clone(),
            hash,
            pinned: true,
        })
    }

    /// Removes a pin; a name then runs its current hash again. Unpinning
    /// something not pinned changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name that was never bound.
    pub fn unpin(&self, id: &FunctionId) -> Result<PinResponse> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        let current = match id {
            FunctionId::Name(_) => state.name.ok_or_else(|| not_found(id))?.hash,
            FunctionId::Hash(h) => *h,
        };
        let Some(pinned) = state.pin else {
            return Ok(PinResponse {
                id: id.clone(),
                hash: current,
                pinned: false,
            });
        };
        let mut tx = self.tx();
        tx.batch.delete_cf(self.cf(CF_PINS), id_key(id));
        let after = State { pin: None, ..state };
        tx.feed(id, ChangeKind::Unpinned, spec_of(id, &after), now_ms());
        tx.commit()?;
        drop(w);
        self.sync_wal()?;
        Ok(PinResponse {
            id: id.clone(),
            hash: pinned,
            pinned: false,
        })
    }

    /// Records what runner `runner_id` observes: per-function state, cursor,
    /// last error and counters, kept per (function, runner) so that runners following
    /// the same gateway do not overwrite each other (shown by
    /// [`function`](Self::function)). Reports are not registry changes and add no feed
    /// entry. `report.invocations` is ignored: invocations arrive as outcomes
    /// ([`record_outcomes`](Self::record_outcomes)).
    ///
    /// # Errors
    /// [`RegistryError::Db`] if the write fails.
    pub fn record_report(&self, runner_id: &str, report: &RunnerReport) -> Result<()> {
        if runner_id.is_empty() || runner_id.contains('\0') {
            return Err(RegistryError::InvalidRunner {
                runner: runner_id.to_string(),
            });
        }
        let w = self.inner.write.lock();
        let at_ms = now_ms();
        let mut batch = WriteBatch::default();
        for f in &report.functions {
            let stored = StoredReport {
                runner: runner_id.to_string(),
                at_ms,
                report: f.clone(),
            };
            batch.put_cf(
                self.cf(CF_REPORTS),
                report_key(&f.id, runner_id),
                encode(&stored),
            );
            // The key older gateways kept the one report of a function under.
            batch.delete_cf(self.cf(CF_REPORTS), id_key(&f.id));
        }
        self.write_batch(batch)?;
        drop(w);
        self.sync_wal()
    }

    /// Writes a batch to the WAL and memtable, in feed order (callers hold
    /// the write lock). Not yet synced: see [`sync_wal`](Self::sync_wal).
    pub(super) fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        self.inner
            .db
            .write(batch)
            .map_err(|source| RegistryError::Db {
                op: "write batch",
                source,
            })
    }

    /// Syncs the WAL; called after the write lock is released, so writers
    /// that commit while one sync runs share the next one (group commit).
    /// Batches reach the WAL in feed order, so a crash keeps a gapless prefix,
    /// and no write is acknowledged before the sync covering it returns.
    ///
    /// Feed entries are published (readers see them, waiters and listeners are
    /// woken) only here, after the sync: a follower never acts on an entry a crash
    /// could take back.
    pub(super) fn sync_wal(&self) -> Result<()> {
        let written = self.inner.written.load(Ordering::SeqCst);
        if self.inner.options.sync {
            self.inner
                .db
                .flush_wal(true)
                .map_err(|source| RegistryError::Db {
                    op: "sync WAL",
                    source,
                })?;
        }
        self.publish(written);
        Ok(())
    }

    /// Makes feed entries up to `written` (durable) visible and wakes whoever waits.
    /// Publishers take turns, so listeners see the head only grow; a listener may
    /// read the registry but must not write to it.
    fn publish(&self, written: u64) {
        let _turn = self.inner.publishing.lock();
        {
            let mut head = self.inner.head.lock();
            if written <= *head {
                return;
            }
            *head = written;
        }
        self.inner.changed.notify_all();
        for listener in self.inner.listeners.lock().iter() {
            listener(written);
        }
    }

    /// A transaction; call only while holding the write lock.
    pub(super) fn tx(&self) -> Tx<'_> {
        Tx {
            reg: self,
            batch: WriteBatch::default(),
            head: self.inner.written.load(Ordering::SeqCst),
        }
    }
}

/// One batch of changes plus the feed entries describing them.
pub(super) struct Tx<'a> {
    reg: &'a Registry,
    pub(super) batch: WriteBatch,
    head: u64,
}

impl Tx<'_> {
    pub(super) fn feed(
        &mut self,
        id: &FunctionId,
        change: ChangeKind,
        spec: Option<FunctionSpec>,
        at_ms: u64,
    ) {
        self.head += 1;
        let entry = FeedEntry {
            seq: self.head,
            at_ms,
            id: id.clone(),
            change,
            spec,
        };
        self.batch.put_cf(
            self.reg.cf(CF_FEED),
            self.head.to_be_bytes(),
            encode(&entry),
        );
    }

    pub(super) fn commit(mut self) -> Result<()> {
        self.batch.put_cf(
            self.reg.cf(CF_META),
            META_FEED_HEAD,
            self.head.to_be_bytes(),
        );
        self.reg.write_batch(self.batch)?;
        // Published by the caller's `sync_wal`, once durable.
        self.reg.inner.written.store(self.head, Ordering::SeqCst);
        Ok(())
    }
}
