//! [`RunnerArgs`]: the runner's command-line flags (module store, desired
//! state, limits, metrics), shared by every binary that embeds the runner:
//! `xxfunc-runner` flattens them next to its chain-source flags, and the reth
//! node binary adds them to reth's own, so both take the same configuration.
//! Feature `cli` (which also turns on `gateway` and `local-registry`).

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use xxfunc_api::{DesiredState, FunctionId, FunctionSpec, StartFrom, client::Client};
use xxfunc_store::{ModuleHash, ModuleStore};

use crate::{
    config::{Limits, RunnerConfig},
    error::RunnerError,
    gateway_registry::GatewayRegistry,
    local_registry::LocalRegistry,
    modules::{ModuleSource, StoreModules},
    registry::Registry,
    runner::{Runner, SinkPolicy},
    state::{FixtureState, RpcState, StateBackend, StateLimits, StateSource},
};

/// Runner configuration flags.
///
/// Desired state comes from exactly one of `--gateway URL` (follow a
/// gateway's change feed, report to it), `--registry-dir DIR` (an in-process
/// registry) or only `--function NAME=HASH` flags. Modules come from `--store`
/// when given, otherwise through the gateway.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Runner")]
pub struct RunnerArgs {
    /// Module store URL: file:///abs/path, s3://bucket/prefix or memory://
    /// [default with --gateway: fetch modules through the gateway].
    #[arg(long, env = "XXFUNC_STORE", value_name = "URL")]
    pub store: Option<String>,
    /// Follow this gateway's registry (e.g. http://127.0.0.1:8722): start and
    /// stop take effect within a second; status is reported back to it.
    #[arg(
        long,
        env = "XXFUNC_GATEWAY",
        value_name = "URL",
        conflicts_with = "registry_dir"
    )]
    pub gateway: Option<String>,
    /// Gateway write token (reports are authenticated writes).
    #[arg(
        long,
        env = "XXFUNC_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Local registry directory (RocksDB) to take desired state from.
    #[arg(long, env = "XXFUNC_REGISTRY_DIR", value_name = "DIR")]
    pub registry_dir: Option<std::path::PathBuf>,
    /// Name this runner reports under [default: `local` for xxfunc-runner,
    /// `reth` for xxfunc-reth].
    #[arg(long, value_name = "ID")]
    pub runner_id: Option<String>,
    /// Start a function without a registry: NAME=blake3:HASH (repeatable).
    #[arg(long = "function", value_name = "NAME=HASH")]
    pub functions: Vec<String>,
    /// Worker threads [default: number of cores].
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// Wall-time limit per invocation, milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub wall_time_ms: u64,
    /// Fuel per invocation (off by default).
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,
    /// Linear memory cap per instance, MiB.
    #[arg(long, default_value_t = 64, value_name = "MIB")]
    pub memory_mib: usize,
    /// stdout cap per invocation, KiB.
    #[arg(long, default_value_t = 1024, value_name = "KIB")]
    pub stdout_kib: usize,
    /// stderr cap per invocation, KiB.
    #[arg(long, default_value_t = 256, value_name = "KIB")]
    pub stderr_kib: usize,
    /// Read chain state for functions (`event.state()`, docs/abi.md section 8) from this
    /// node's JSON-RPC, at each event's block by hash [default with --rpc: the followed
    /// node; inside reth (xxfunc-reth): the node's own database; otherwise state reads
    /// answer "state unavailable"].
    #[arg(long, env = "XXFUNC_STATE_RPC", value_name = "URL")]
    pub state_rpc: Option<String>,
    /// Answer chain state reads offline from this recorded state directory
    /// (`fixtures/state/`, written by scripts/record-fixtures), with calls on a local EVM.
    #[arg(long, value_name = "DIR", conflicts_with = "state_rpc")]
    pub state_fixtures: Option<PathBuf>,
    /// Most state reads (host calls) per invocation.
    #[arg(long, default_value_t = StateLimits::default().calls, value_name = "N")]
    pub state_calls: u32,
    /// Gas cap of one state call (`eth_call`).
    #[arg(long, default_value_t = StateLimits::default().gas, value_name = "GAS")]
    pub state_gas: u64,
    /// Most bytes state reads may write into a function per invocation, KiB.
    #[arg(long, default_value_t = StateLimits::default().answer_bytes >> 10, value_name = "KIB")]
    pub state_answer_kib: usize,
    /// Consecutive failures before a function is quarantined.
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub quarantine_after: u64,
    /// Longest a batch waits for its slowest function before committing the others
    /// (what is still running is committed by a later batch), milliseconds.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    pub detach_after_ms: u64,
    /// An invocation at least this long (milliseconds) makes its function slow: its next
    /// jobs run on low-priority threads and never hold a batch back, until it is fast
    /// again for a while.
    #[arg(long, default_value_t = 200, value_name = "MS")]
    pub slow_invocation_ms: u64,
    /// Precompiled modules kept on disk under the data directory, MiB (least recently
    /// used evicted first).
    #[arg(long, default_value_t = 1024, value_name = "MIB")]
    pub artifact_cache_mib: u64,
    /// Serve Prometheus text on http://ADDR/metrics (loopback, e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics_addr: Option<SocketAddr>,
    /// Deliver a function's outputs to a sink (repeatable):
    /// FUNCTION=KIND:URL[,option=value...], KIND one of webhook (http(s)://...,
    /// secret-env=VAR required), postgres (postgres://..., table=NAME,
    /// password-env=VAR) or nats (nats://..., subject=PREFIX, stream=NAME); every
    /// kind takes name=NAME, confirmations=N, attempts=N and timeout-ms=MS. Sinks
    /// can also be configured in the registry (`cargo xxfunc sink add`).
    #[arg(long = "sink", value_name = "FUNCTION=KIND:URL[,OPT=V]")]
    pub sinks: Vec<String>,
    /// Hosts sinks may reach (HOST or HOST:PORT, repeatable), the --sink flags'
    /// and the registry's; without it any host is allowed.
    #[arg(long = "sink-allow-host", value_name = "HOST[:PORT]")]
    pub sink_allow_hosts: Vec<String>,
}

/// Why [`RunnerArgs::open`] failed: each variant names the flag or the
/// service at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArgsError {
    /// `--state-rpc`'s client could not be built.
    #[error("--state-rpc {url}: {source}")]
    StateRpc {
        /// What was given.
        url: String,
        /// Why.
        #[source]
        source: Box<RunnerError>,
    },
    /// `--state-fixtures` cannot be loaded.
    #[error("--state-fixtures {}: {source}", dir.display())]
    StateFixtures {
        /// What was given.
        dir: PathBuf,
        /// Why.
        #[source]
        source: Box<RunnerError>,
    },
    /// `--gateway` is not a usable URL.
    #[error("--gateway {url}: {source}")]
    GatewayUrl {
        /// What was given.
        url: String,
        /// Why the client rejected it.
        #[source]
        source: Box<xxfunc_api::client::ClientError>,
    },
    /// The gateway client's runtime could not start.
    #[error("--gateway {url}: {source}")]
    Gateway {
        /// The gateway URL.
        url: String,
        /// The runner's error.
        #[source]
        source: Box<RunnerError>,
    },
    /// `--store` cannot be opened.
    #[error("opening module store {url}: {source}")]
    Store {
        /// The store URL.
        url: String,
        /// The store's error.
        #[source]
        source: Box<xxfunc_store::StoreError>,
    },
    /// The module store's client could not start.
    #[error("--store {url}: {source}")]
    StoreClient {
        /// The store URL.
        url: String,
        /// The runner's error.
        #[source]
        source: Box<RunnerError>,
    },
    /// Neither `--store` nor `--gateway` was given.
    #[error(
        "no module source: give --store URL (or XXFUNC_STORE), or --gateway URL to fetch modules through a gateway"
    )]
    NoModuleSource,
    /// The runner's own state (its RocksDB, its engine) cannot be opened.
    #[error("opening runner state in {}: {source}", dir.display())]
    State {
        /// The runner's data directory.
        dir: PathBuf,
        /// The runner's error.
        #[source]
        source: Box<RunnerError>,
    },
    /// A `--function` flag is not `NAME=HASH`.
    #[error("--function {value:?}: expected NAME=blake3:HASH")]
    FunctionSyntax {
        /// The flag's value.
        value: String,
    },
    /// A `--function` flag's name is not a function name.
    #[error("--function {value:?}: {source}")]
    FunctionName {
        /// The flag's value.
        value: String,
        /// Why the name is invalid.
        #[source]
        source: <FunctionId as FromStr>::Err,
    },
    /// A `--function` flag's hash is not a module hash.
    #[error("--function {value:?}: {source}")]
    FunctionHash {
        /// The flag's value.
        value: String,
        /// Why the hash is invalid.
        #[source]
        source: Box<<ModuleHash as FromStr>::Err>,
    },
    /// A `--function` flag could not be applied (persisted).
    #[error("--function {value:?}: {source}")]
    Function {
        /// The flag's value.
        value: String,
        /// The runner's error.
        #[source]
        source: Box<RunnerError>,
    },
    /// `--registry-dir` cannot be opened.
    #[error("--registry-dir {}: {source}", dir.display())]
    Registry {
        /// The registry directory.
        dir: PathBuf,
        /// The runner's error.
        #[source]
        source: Box<RunnerError>,
    },
    /// A `--sink` flag is malformed, or its host is not allowed.
    #[error(transparent)]
    SinkSpec(#[from] xxfunc_sinks::SpecError),
    /// A `--sink` could not be built (its secret, its kind).
    #[error(transparent)]
    SinkBuild(#[from] xxfunc_sinks::BuildError),
    /// A `--sink` could not be added to the runner.
    #[error("--sink {name}: {source}")]
    Sink {
        /// The sink.
        name: String,
        /// The runner's error.
        #[source]
        source: Box<RunnerError>,
    },
    /// The registry's desired state could not be read or applied.
    #[error("reading the registry's desired state: {source}")]
    Snapshot {
        /// The runner's error.
        #[source]
        source: Box<RunnerError>,
    },
}

/// What [`RunnerArgs::open`] opened.
pub struct OpenedRunner {
    /// The runner, with `--function` flags and the registry's current
    /// desired state applied.
    pub runner: Runner,
    /// The registry to follow, if any.
    pub registry: Option<Arc<dyn Registry>>,
}

impl std::fmt::Debug for OpenedRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedRunner")
            .field("registry", &self.registry.is_some())
            .finish_non_exhaustive()
    }
}

impl RunnerArgs {
    /// The runner configuration these flags describe, with state in `data_dir`.
    pub fn config(&self, data_dir: &Path) -> RunnerConfig {
        let mut config = RunnerConfig::new(data_dir);
        config.limits = Limits {
            wall_time: Duration::from_millis(self.wall_time_ms),
            fuel: self.fuel,
            memory_bytes: self.memory_mib << 20,
            stdout_bytes: self.stdout_kib << 10,
            stderr_bytes: self.stderr_kib << 10,
            state: StateLimits {
                calls: self.state_calls,
                gas: self.state_gas.max(1),
                answer_bytes: self.state_answer_kib << 10,
            },
        };
        if let Some(w) = self.workers {
            config.workers = w.max(1);
        }
        config.quarantine_after = self.quarantine_after.max(1);
        config.detach_after = Duration::from_millis(self.detach_after_ms);
        config.slow_invocation = Duration::from_millis(self.slow_invocation_ms.max(1));
        config.artifact_budget_bytes = self.artifact_cache_mib.saturating_mul(1 << 20);
        config
    }

    /// Opens the module source, the runner state in `data_dir` and the
    /// registry, applies `--function` flags and the registry's current
    /// desired state (so functions started while the runner was down count
    /// for its resume point at once). `default_runner_id` is reported under
    /// unless `--runner-id` is given.
    ///
    /// # Errors
    /// An [`ArgsError`] naming the flag or service at fault: no module
    /// source, a store or registry that cannot be opened, a gateway that
    /// cannot be reached, a malformed `--function`.
    pub fn open(
        &self,
        data_dir: &Path,
        default_runner_id: &str,
    ) -> Result<OpenedRunner, ArgsError> {
        let runner_id = self
            .runner_id
            .clone()
            .unwrap_or_else(|| default_runner_id.to_string());
        let gateway = match &self.gateway {
            Some(url) => {
                let client = Client::new(url)
                    .map_err(|e| ArgsError::GatewayUrl {
                        url: url.clone(),
                        source: Box::new(e),
                    })?
                    .with_token(self.token.clone());
                let registry = GatewayRegistry::new(client, runner_id.clone()).map_err(|e| {
                    ArgsError::Gateway {
                        url: url.clone(),
                        source: Box::new(e),
                    }
                })?;
                Some(registry)
            }
            None => None,
        };

        let modules: Arc<dyn ModuleSource> = match (&self.store, &gateway) {
            (Some(url), _) => {
                let store = ModuleStore::open(url).map_err(|e| ArgsError::Store {
                    url: url.clone(),
                    source: Box::new(e),
                })?;
                Arc::new(
                    StoreModules::new(store).map_err(|e| ArgsError::StoreClient {
                        url: url.clone(),
                        source: Box::new(e),
                    })?,
                )
            }
            (None, Some(gateway)) => Arc::new(gateway.modules()),
            (None, None) => return Err(ArgsError::NoModuleSource),
        };
        let mut runner =
            Runner::open(self.config(data_dir), modules).map_err(|e| ArgsError::State {
                dir: data_dir.to_path_buf(),
                source: Box::new(e),
            })?;
        // clap keeps the two flags apart; recorded state wins if a caller sets both.
        let backend: Option<Arc<dyn StateBackend>> = match (&self.state_fixtures, &self.state_rpc) {
            (Some(dir), _) => Some(Arc::new(FixtureState::open(dir).map_err(|e| {
                ArgsError::StateFixtures {
                    dir: dir.clone(),
                    source: Box::new(e),
                }
            })?)),
            (None, Some(url)) => Some(Arc::new(RpcState::new(url).map_err(|e| {
                ArgsError::StateRpc {
                    url: url.clone(),
                    source: Box::new(e),
                }
            })?)),
            (None, None) => None,
        };
        runner.set_state(backend.map(StateSource::new));
        // Sinks the registry configures start under the same runner id and allow-list
        // as the --sink flags.
        runner.set_sink_policy(SinkPolicy {
            runner_id: runner_id.clone(),
            allow_hosts: self.sink_allow_hosts.clone(),
        });

        for f in &self.functions {
            let (name, hash) = f
                .split_once('=')
                .ok_or_else(|| ArgsError::FunctionSyntax { value: f.clone() })?;
            let spec = FunctionSpec {
                id: name.parse().map_err(|source| ArgsError::FunctionName {
                    value: f.clone(),
                    source,
                })?,
                hash: hash.parse().map_err(|e| ArgsError::FunctionHash {
                    value: f.clone(),
                    source: Box::new(e),
                })?,
                desired: DesiredState::Started,
                start: StartFrom::Head,
                start_generation: 1,
                sinks: Vec::new(),
            };
            runner.apply(&spec).map_err(|e| ArgsError::Function {
                value: f.clone(),
                source: Box::new(e),
            })?;
        }

        let specs = self
            .sinks
            .iter()
            .map(|s| s.parse::<xxfunc_sinks::SinkSpec>())
            .collect::<Result<Vec<_>, _>>()?;
        xxfunc_sinks::check_allowed(&specs, &self.sink_allow_hosts)?;
        for spec in specs {
            let sink = xxfunc_sinks::build(&spec)?;
            let name = spec.name.clone();
            runner
                .add_sink(spec, sink, runner_id.clone())
                .map_err(|e| ArgsError::Sink {
                    name,
                    source: Box::new(e),
                })?;
        }

        let registry: Option<Arc<dyn Registry>> = match (&self.registry_dir, gateway) {
            (Some(dir), _) => Some(Arc::new(LocalRegistry::open(dir, runner_id).map_err(
                |e| ArgsError::Registry {
                    dir: dir.clone(),
                    source: Box::new(e),
                },
            )?)),
            (None, Some(gateway)) => Some(Arc::new(gateway)),
            (None, None) => None,
        };
        if let Some(registry) = &registry {
            registry
                .snapshot()
                .and_then(|snapshot| runner.sync_snapshot(&snapshot))
                .map_err(|e| ArgsError::Snapshot {
                    source: Box::new(e),
                })?;
        }
        Ok(OpenedRunner { runner, registry })
    }
}
