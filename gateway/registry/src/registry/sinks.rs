//! Sinks: each function's delivery targets, carried to runners in its spec through the
//! change feed, and what each runner reports of them.

use xxfunc_api::{
    ChangeKind, FunctionId, FunctionSpec,
    sinks::{RunnerSinkView, SinkConfig, SinkEntry, SinkView, SinksView, valid_sink_name},
};

use super::{Registry, State, now_ms, spec_of};
use crate::{
    error::{RegistryError, Result},
    schema::*,
};

impl Registry {
    /// Adds sink `name` of `id` with `config`, or replaces its configuration (a
    /// `sink_set` feed entry; setting the configuration it has changes nothing). The
    /// caller vouches that `config` is a valid sink (the gateway checks it with the
    /// runner's own rules); the registry checks the name and that no other function has
    /// a sink of that name (names key cursors at destinations).
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`]; [`RegistryError::InvalidSink`] for a name that
    /// is not a sink name; [`RegistryError::SinkNameTaken`]; write failures.
    pub fn set_sink(
        &self,
        id: &FunctionId,
        name: &str,
        config: SinkConfig,
    ) -> Result<FunctionSpec> {
        if !valid_sink_name(name) {
            return Err(RegistryError::InvalidSink {
                name: name.to_string(),
                reason: "a sink name matches [a-z0-9][a-z0-9._-]{0,62}".into(),
            });
        }
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        self.require_exists(id, &state, true)?;
        if let Some(owner) = self.sink_owner(name)?
            && &owner != id
        {
            return Err(RegistryError::SinkNameTaken {
                name: name.to_string(),
                owner,
            });
        }
        let current = state.sinks.iter().find(|s| s.name == name);
        if current.is_some_and(|s| s.config == config) {
            return Ok(spec_of(id, &state).expect("an existing function has a spec"));
        }
        let entry = SinkEntry {
            name: name.to_string(),
            config,
            retry_generation: current.map_or(0, |s| s.retry_generation),
        };
        let spec = self.write_sinks(id, state, entry, ChangeKind::SinkSet)?;
        drop(w);
        self.sync_wal()?;
        Ok(spec)
    }

    /// Removes sink `name` of `id` (a `sink_removed` feed entry). Runners stop it and
    /// forget its cursor; its destination keeps what it was given.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`], [`RegistryError::SinkNotFound`], write
    /// failures.
    pub fn remove_sink(&self, id: &FunctionId, name: &str) -> Result<FunctionSpec> {
        let w = self.inner.write.lock();
        let mut state = self.load(id)?;
        self.require_exists(id, &state, true)?;
        let Some(at) = state.sinks.iter().position(|s| s.name == name) else {
            return Err(sink_not_found(id, name));
        };
        state.sinks.remove(at);
        let mut tx = self.tx();
        tx.batch.delete_cf(self.cf(CF_SINKS), sink_key(id, name));
        let spec = spec_of(id, &state).expect("an existing function has a spec");
        tx.feed(id, ChangeKind::SinkRemoved, Some(spec.clone()), now_ms());
        tx.commit()?;
        drop(w);
        self.sync_wal()?;
        Ok(spec)
    }

    /// Asks runners to resume sink `name` of `id` if it is `failed` (bumps its
    /// `retry_generation`; a `sink_retried` feed entry).
    ///
    /// # Errors
    /// As [`remove_sink`](Self::remove_sink).
    pub fn retry_sink(&self, id: &FunctionId, name: &str) -> Result<FunctionSpec> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        self.require_exists(id, &state, true)?;
        let Some(current) = state.sinks.iter().find(|s| s.name == name) else {
            return Err(sink_not_found(id, name));
        };
        let entry = SinkEntry {
            retry_generation: current.retry_generation + 1,
            ..current.clone()
        };
        let spec = self.write_sinks(id, state, entry, ChangeKind::SinkRetried)?;
        drop(w);
        self.sync_wal()?;
        Ok(spec)
    }

    /// `id`'s sinks, each with every runner's latest report of it.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`]; read failures.
    pub fn sinks(&self, id: &FunctionId) -> Result<SinksView> {
        let state = self.load(id)?;
        self.require_exists(id, &state, true)?;
        let reports = self.reports(id)?;
        let sinks = state
            .sinks
            .into_iter()
            .map(|entry| SinkView {
                runners: reports
                    .iter()
                    .filter_map(|r| {
                        let report = r.report.sinks.iter().find(|s| s.name == entry.name)?;
                        Some(RunnerSinkView {
                            runner: r.runner.clone(),
                            at_ms: r.at_ms,
                            report: report.clone(),
                        })
                    })
                    .collect(),
                name: entry.name,
                config: entry.config,
                retry_generation: entry.retry_generation,
            })
            .collect();
        Ok(SinksView {
            function: id.clone(),
            sinks,
        })
    }

    /// The function that has a sink named `name`, if any.
    fn sink_owner(&self, name: &str) -> Result<Option<FunctionId>> {
        for (key, value) in self.scan(CF_SINKS)? {
            let entry: SinkEntry = decode(CF_SINKS, &key, &value)?;
            if entry.name == name {
                let at = key.len() - name.len() - 1;
                return decode_id(CF_SINKS, &key[..at]).map(Some);
            }
        }
        Ok(None)
    }

    /// Stores `entry` as one of `id`'s sinks, with a feed entry carrying the new spec.
    fn write_sinks(
        &self,
        id: &FunctionId,
        mut state: State,
        entry: SinkEntry,
        change: ChangeKind,
    ) -> Result<FunctionSpec> {
        let mut tx = self.tx();
        tx.batch
            .put_cf(self.cf(CF_SINKS), sink_key(id, &entry.name), encode(&entry));
        match state.sinks.iter_mut().find(|s| s.name == entry.name) {
            Some(s) => *s = entry,
            None => {
                state.sinks.push(entry);
                state.sinks.sort_by(|a, b| a.name.cmp(&b.name));
            }
        }
        let spec = spec_of(id, &state).expect("an existing function has a spec");
        tx.feed(id, change, Some(spec.clone()), now_ms());
        tx.commit()?;
        Ok(spec)
    }
}

fn sink_not_found(id: &FunctionId, name: &str) -> RegistryError {
    RegistryError::SinkNotFound {
        id: id.clone(),
        name: name.to_string(),
    }
}
