//! Reads: names, function views, lists, logs and the hashes garbage collection keeps.

/// Bytes of outcomes [`Registry::logs`] reads at most (32 MiB).
pub const MAX_LOGS_BYTES: usize = 32 * 1024 * 1024;

use std::collections::BTreeSet;

use rocksdb::{Direction, IteratorMode};
use xxfunc_api::{
    FunctionId, FunctionName, FunctionView, InvocationRecord, LogsPage, ModuleHash, ReportedBy,
    RunnerView, VersionEntry,
};

use super::{NameBinding, Registry, State, not_found, spec_of};
use crate::{
    error::{RegistryError, Result},
    schema::*,
};

impl Registry {
    /// A name's binding, or `None` if the name was never bound.
    ///
    /// # Errors
    /// [`RegistryError::Db`] / [`RegistryError::Corrupt`] on read failures.
    pub fn lookup_name(&self, name: &FunctionName) -> Result<Option<NameBinding>> {
        let Some(rec) = self.get_json::<NameRecord>(CF_NAMES, name.as_str().as_bytes())? else {
            return Ok(None);
        };
        let pinned =
            self.get_json::<ModuleHash>(CF_PINS, &id_key(&FunctionId::Name(name.clone())))?;
        Ok(Some(NameBinding {
            name: name.clone(),
            current: rec.hash,
            version: rec.version,
            pinned,
        }))
    }

    /// Everything known about one function.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name never bound or a hash never started.
    pub fn function(&self, id: &FunctionId) -> Result<FunctionView> {
        let state = self.load(id)?;
        self.view(id, &state)
    }

    /// Every function: named ones by name, then hash identities.
    ///
    /// # Errors
    /// Read failures.
    pub fn list(&self) -> Result<Vec<FunctionView>> {
        self.ids()?.iter().map(|id| self.function(id)).collect()
    }

    /// Recent invocations of a function, most recent last, at most `limit`: the last
    /// outcomes of the runner [`outputs`](Self::outputs) would read
    /// ([`default_runner`](Self::default_runner)), their stdout and stderr decoded
    /// lossily as UTF-8 for display (outputs keep the exact bytes). At most
    /// [`MAX_LOGS_BYTES`] of outcomes are read; older invocations are left out first.
    /// A function with no outcomes shows what older gateways stored from reports.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] if the function does not exist and has no records.
    pub fn logs(&self, id: &FunctionId, limit: usize) -> Result<LogsPage> {
        let outcomes = match self.default_runner(id)? {
            Some(runner) => self.last_outcomes(id, &runner, limit, MAX_LOGS_BYTES)?,
            None => Vec::new(),
        };
        if outcomes.is_empty() {
            return self.legacy_logs(id, limit);
        }
        let invocations = outcomes
            .into_iter()
            .map(|o| InvocationRecord {
                id: id.clone(),
                hash: o.hash,
                kind: o.kind,
                block: o.block,
                status: o.status,
                duration_us: o.duration_us,
                stdout: String::from_utf8_lossy(&o.stdout.0).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr.0).into_owned(),
                at_ms: o.at_ms,
            })
            .collect();
        Ok(LogsPage { invocations })
    }

    /// Invocations older gateways stored from reports.
    fn legacy_logs(&self, id: &FunctionId, limit: usize) -> Result<LogsPage> {
        let id_str = id.to_string();
        let prefix = sub_key_prefix(&id_str);
        let end = sub_key(&id_str, u64::MAX);
        let iter = self.inner.db.iterator_cf(
            self.cf(CF_LOGS),
            IteratorMode::From(&end, Direction::Reverse),
        );
        let mut invocations = Vec::new();
        for item in iter {
            if invocations.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(|source| RegistryError::Db {
                op: "read logs",
                source,
            })?;
            if !key.starts_with(&prefix) {
                break;
            }
            invocations.push(decode::<InvocationRecord>(CF_LOGS, &key, &value)?);
        }
        if invocations.is_empty() {
            let state = self.load(id)?;
            self.require_exists(id, &state, true)?;
        }
        invocations.reverse();
        Ok(LogsPage { invocations })
    }

    /// Every runner's latest report about `id`, by runner id.
    pub(crate) fn reports(&self, id: &FunctionId) -> Result<Vec<StoredReport>> {
        self.scan_prefix(CF_REPORTS, &report_prefix(id))?
            .iter()
            .map(|(key, value)| decode(CF_REPORTS, key, value))
            .collect()
    }

    /// Every module hash something refers to: names' current hashes, every
    /// version in every history, hash identities and pins. Garbage collection
    /// must keep all of them.
    ///
    /// # Errors
    /// Read failures.
    pub fn referenced_hashes(&self) -> Result<BTreeSet<ModuleHash>> {
        let mut out = BTreeSet::new();
        for (key, value) in self.scan(CF_VERSIONS)? {
            out.insert(decode::<VersionEntry>(CF_VERSIONS, &key, &value)?.hash);
        }
        for (key, value) in self.scan(CF_NAMES)? {
            out.insert(decode::<NameRecord>(CF_NAMES, &key, &value)?.hash);
        }
        for (key, value) in self.scan(CF_PINS)? {
            out.insert(decode::<ModuleHash>(CF_PINS, &key, &value)?);
        }
        for (key, _) in self.scan(CF_DESIRED)? {
            if let FunctionId::Hash(h) = decode_id(CF_DESIRED, &key)? {
                out.insert(h);
            }
        }
        Ok(out)
    }

    fn view(&self, id: &FunctionId, state: &State) -> Result<FunctionView> {
        let spec = spec_of(id, state).ok_or_else(|| not_found(id))?;
        let mut versions = Vec::new();
        if let FunctionId::Name(name) = id {
            let prefix = sub_key_prefix(name.as_str());
            let iter = self.inner.db.iterator_cf(
                self.cf(CF_VERSIONS),
                IteratorMode::From(&prefix, Direction::Forward),
            );
            for item in iter {
                let (key, value) = item.map_err(|source| RegistryError::Db {
                    op: "read versions",
                    source,
                })?;
                if !key.starts_with(&prefix) {
                    break;
                }
                versions.push(decode::<VersionEntry>(CF_VERSIONS, &key, &value)?);
            }
        }
        let reports = self.reports(id)?;
        let latest = reports.iter().max_by_key(|r| r.at_ms);
        let reported = latest.map(|r| ReportedBy {
            runner: r.runner.clone(),
            at_ms: r.at_ms,
        });
        let report = latest.map(|r| r.report.clone());
        let runners = reports
            .into_iter()
            .map(|r| RunnerView {
                runner: r.runner,
                at_ms: r.at_ms,
                observed: r.report.observed,
                cursor: r.report.cursor,
                last_error: r.report.last_error,
                counters: r.report.counters,
                sinks: r.report.sinks,
            })
            .collect();
        Ok(FunctionView {
            id: id.clone(),
            name: match id {
                FunctionId::Name(n) => Some(n.clone()),
                FunctionId::Hash(_) => None,
            },
            hash: spec.hash,
            version: state.name.map(|r| r.version),
            versions,
            pinned: state.pin.is_some(),
            desired: spec.desired,
            start: spec.start,
            observed: report.as_ref().map(|r| r.observed.clone()),
            reported,
            cursor: report.as_ref().and_then(|r| r.cursor),
            last_error: report.as_ref().and_then(|r| r.last_error.clone()),
            counters: report.map(|r| r.counters).unwrap_or_default(),
            runners,
        })
    }
}
