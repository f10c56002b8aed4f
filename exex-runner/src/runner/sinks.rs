//! Sinks the registry configures: each function's spec lists them, and the runner
//! turns changes of that list into [`SinkChange`]s for the sink engine (started in
//! [`serve`](crate::serve)): a new or changed sink is built and started, a removed one
//! stopped (its cursor forgotten), a new `retry_generation` retries it. What this runner
//! cannot start (its name is a `--sink` flag's, its host is not allowed, its secret is
//! not in the environment, its kind not built in) is shown `failed` with the reason.

use std::collections::BTreeMap;

use xxfunc_api::{FunctionId, sinks::SinkEntry};
use xxfunc_sinks::{SinkCursor, SinkSpec};

use super::Runner;
use crate::{
    error::{Result, RunnerError},
    sinks::{PendingSink, SinkState, SinkStatus, consumer},
};

/// What the engine must do about one sink.
#[derive(Debug)]
pub(crate) enum SinkChange {
    /// Start delivering (after a sink of the same name, if one is stopping).
    Start(Box<PendingSink>),
    /// Show a sink this runner cannot start, with why.
    Refuse(Box<SinkStatus>),
    /// Stop a sink; `forget` also drops its cursor (a removed sink).
    Stop { name: String, forget: bool },
    /// Resume a `failed` sink.
    Retry(String),
}

/// How this runner starts the sinks the registry configures.
#[derive(Clone, Debug)]
pub struct SinkPolicy {
    /// The runner name the batches carry (`--runner-id`).
    pub runner_id: String,
    /// Hosts sinks may reach (`--sink-allow-host`; empty: any).
    pub allow_hosts: Vec<String>,
}

impl Default for SinkPolicy {
    fn default() -> Self {
        Self {
            runner_id: "local".into(),
            allow_hosts: Vec::new(),
        }
    }
}

/// A sink the registry configured, as this runner last applied it.
#[derive(Clone, Debug)]
pub(crate) struct AppliedSink {
    function: FunctionId,
    entry: SinkEntry,
    /// This runner could not start it (a retry tries again).
    refused: bool,
}

impl Runner {
    /// Sets how the sinks the registry configures are started (call before applying
    /// desired state).
    pub fn set_sink_policy(&mut self, policy: SinkPolicy) {
        self.sink_policy = policy;
    }

    /// Adds a sink of `spec.function`'s outputs, delivering batches of this
    /// runner's outcome log under `runner_id` (the runner name items carry).
    /// It becomes a consumer of that function's log at once (retention waits
    /// for its acknowledgement from now on, with its stored one loaded);
    /// [`serve`](crate::serve) starts its thread.
    ///
    /// # Errors
    /// [`RunnerError::DuplicateSink`] when a sink of that name was added, or
    /// a database error.
    pub fn add_sink(
        &mut self,
        spec: SinkSpec,
        sink: Box<dyn xxfunc_sinks::Sink>,
        runner_id: impl Into<String>,
    ) -> Result<()> {
        if self.flag_sinks.contains(&spec.name) || self.registry_sinks.contains_key(&spec.name) {
            return Err(RunnerError::DuplicateSink(spec.name));
        }
        self.log
            .add_consumer_of(&consumer(&spec.name), &spec.function)?;
        self.flag_sinks.insert(spec.name.clone());
        self.sink_changes
            .push(SinkChange::Start(Box::new(PendingSink {
                spec,
                sink,
                runner_id: runner_id.into(),
            })));
        Ok(())
    }

    /// The sink changes not yet given to the engine, for [`serve`](crate::serve).
    pub(crate) fn take_sink_changes(&mut self) -> Vec<SinkChange> {
        std::mem::take(&mut self.sink_changes)
    }

    /// The cursor stored for sink `name` (`None`: it delivered nothing yet).
    ///
    /// # Errors
    /// A database error.
    pub fn sink_cursor(&self, name: &str) -> Result<Option<SinkCursor>> {
        self.db.sink_cursor(name)
    }

    /// Brings the registry-configured sinks of `id` to `entries`.
    pub(super) fn sync_sinks(&mut self, id: &FunctionId, entries: &[SinkEntry]) -> Result<()> {
        let gone: Vec<String> = self
            .registry_sinks
            .iter()
            .filter(|(name, s)| &s.function == id && !entries.iter().any(|e| &e.name == *name))
            .map(|(name, _)| name.clone())
            .collect();
        for name in gone {
            tracing::info!(sink = %name, function = %id, "sink {name} removed by the registry");
            self.registry_sinks.remove(&name);
            self.log.remove_consumer(&consumer(&name));
            self.sink_changes
                .push(SinkChange::Stop { name, forget: true });
        }
        for entry in entries {
            let applied = self.registry_sinks.get(&entry.name);
            match applied {
                Some(a) if &a.function == id && a.entry.config == entry.config => {
                    if a.entry.retry_generation != entry.retry_generation {
                        tracing::info!(sink = %entry.name, "sink {} retried by the registry", entry.name);
                        if a.refused {
                            let started = self.start_registry_sink(id, entry)?;
                            self.remember(id, entry, !started);
                        } else {
                            self.sink_changes
                                .push(SinkChange::Retry(entry.name.clone()));
                            self.remember(id, entry, false);
                        }
                    }
                    continue;
                }
                Some(a) => {
                    // The same destination keeps its cursor; a sink moved to another
                    // function starts afresh on that function's log.
                    let forget = &a.function != id;
                    tracing::info!(sink = %entry.name, "sink {} reconfigured by the registry", entry.name);
                    self.sink_changes.push(SinkChange::Stop {
                        name: entry.name.clone(),
                        forget,
                    });
                }
                None => {}
            }
            let started = self.start_registry_sink(id, entry)?;
            self.remember(id, entry, !started);
        }
        Ok(())
    }

    fn remember(&mut self, id: &FunctionId, entry: &SinkEntry, refused: bool) {
        self.registry_sinks.insert(
            entry.name.clone(),
            AppliedSink {
                function: id.clone(),
                entry: entry.clone(),
                refused,
            },
        );
    }

    /// Starts `entry`, or shows why it cannot start; true when started.
    fn start_registry_sink(&mut self, id: &FunctionId, entry: &SinkEntry) -> Result<bool> {
        let name = &entry.name;
        let built = (|| -> std::result::Result<_, String> {
            if self.flag_sinks.contains(name) {
                return Err(format!(
                    "this runner already has a sink named {name} from its --sink flags"
                ));
            }
            let spec = SinkSpec::from_config(id.clone(), Some(name), &entry.config)
                .map_err(|e| e.to_string())?;
            xxfunc_sinks::check_allowed(std::slice::from_ref(&spec), &self.sink_policy.allow_hosts)
                .map_err(|e| e.to_string())?;
            let sink = xxfunc_sinks::build(&spec).map_err(|e| e.to_string())?;
            Ok((spec, sink))
        })();
        match built {
            Ok((spec, sink)) => {
                tracing::info!(sink = %name, function = %id, target = %spec.redacted(), "starting sink {name} configured by the registry");
                self.log.add_consumer_of(&consumer(name), id)?;
                self.sink_changes
                    .push(SinkChange::Start(Box::new(PendingSink {
                        spec,
                        sink,
                        runner_id: self.sink_policy.runner_id.clone(),
                    })));
                Ok(true)
            }
            Err(reason) => {
                tracing::warn!(sink = %name, function = %id, "sink {name} cannot start on this runner: {reason}");
                self.log.remove_consumer(&consumer(name));
                self.sink_changes
                    .push(SinkChange::Refuse(Box::new(SinkStatus::refused(
                        name, id, entry, reason,
                    ))));
                Ok(false)
            }
        }
    }
}

impl SinkStatus {
    /// A sink that could not be started: `failed`, with why.
    fn refused(name: &str, id: &FunctionId, entry: &SinkEntry, reason: String) -> Self {
        let target = url::Url::parse(&entry.config.url)
            .map_or_else(|_| entry.config.url.clone(), |u| xxfunc_sinks::redact(&u));
        Self {
            state: SinkState::Failed,
            last_error: Some(reason),
            ..Self::new(
                name,
                id,
                entry.config.kind,
                target,
                entry.config.confirmations,
            )
        }
    }
}

/// The registry-configured sinks by name.
pub(crate) type AppliedSinks = BTreeMap<String, AppliedSink>;
