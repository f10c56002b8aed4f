//! The runner flags `xxfunc-reth node` adds to reth's own: the same store, registry and
//! limit flags as `xxfunc-runner` (without its chain-source flags: the node is the source).

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use eyre::WrapErr;
use xxfunc_api::{DesiredState, FunctionSpec, StartFrom};
use xxfunc_runner::{Limits, LocalRegistry, Registry, Runner, RunnerConfig, StoreModules};
use xxfunc_store::ModuleStore;

/// Runner configuration, as `xxfunc-runner` takes it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "xxfunc runner")]
pub(crate) struct RunnerArgs {
    /// Directory of the runner's state (cursors, records, compiled modules)
    /// [default: <datadir>/xxfunc].
    #[arg(long, env = "XXFUNC_RUNNER_DATA", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Module store URL: file:///abs/path, s3://bucket/prefix or memory://.
    #[arg(long, env = "XXFUNC_STORE", value_name = "URL")]
    pub(crate) store: String,
    /// Local registry directory (RocksDB) to take desired state from.
    #[arg(long, env = "XXFUNC_REGISTRY_DIR", value_name = "DIR")]
    pub(crate) registry_dir: Option<PathBuf>,
    /// Name this runner reports under.
    #[arg(long, default_value = "reth")]
    pub(crate) runner_id: String,
    /// Start a function without a registry: NAME=blake3:HASH (repeatable).
    #[arg(long = "function", value_name = "NAME=HASH")]
    pub(crate) functions: Vec<String>,
    /// Worker threads (default: number of cores).
    #[arg(long)]
    pub(crate) workers: Option<usize>,
    /// Wall-time limit per invocation, milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub(crate) wall_time_ms: u64,
    /// Fuel per invocation (off by default).
    #[arg(long)]
    pub(crate) fuel: Option<u64>,
    /// Linear memory cap per instance, MiB.
    #[arg(long, default_value_t = 64)]
    pub(crate) memory_mib: usize,
    /// stdout cap per invocation, KiB.
    #[arg(long, default_value_t = 1024)]
    pub(crate) stdout_kib: usize,
    /// stderr cap per invocation, KiB.
    #[arg(long, default_value_t = 256)]
    pub(crate) stderr_kib: usize,
    /// Consecutive failures before a function is quarantined.
    #[arg(long, default_value_t = 5)]
    pub(crate) quarantine_after: u64,
    /// Serve the runner's Prometheus text on http://ADDR/metrics (loopback, e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub(crate) metrics_addr: Option<SocketAddr>,
}

impl RunnerArgs {
    /// Opens the runner state (under `default_data_dir` unless `--data-dir` is given), the
    /// module store and the registry, and applies `--function` flags.
    pub(crate) fn open(
        &self,
        default_data_dir: PathBuf,
    ) -> eyre::Result<(Runner, Option<Arc<dyn Registry>>)> {
        let data_dir = self.data_dir.clone().unwrap_or(default_data_dir);
        let mut config = RunnerConfig::new(&data_dir);
        config.limits = Limits {
            wall_time: Duration::from_millis(self.wall_time_ms),
            fuel: self.fuel,
            memory_bytes: self.memory_mib << 20,
            stdout_bytes: self.stdout_kib << 10,
            stderr_bytes: self.stderr_kib << 10,
        };
        if let Some(w) = self.workers {
            config.workers = w.max(1);
        }
        config.quarantine_after = self.quarantine_after.max(1);

        let store = ModuleStore::open(&self.store)
            .wrap_err_with(|| format!("opening module store {}", self.store))?;
        let modules = Arc::new(StoreModules::new(store).wrap_err("opening the module store")?);
        let mut runner = Runner::open(config, modules)
            .wrap_err_with(|| format!("opening runner state in {}", data_dir.display()))?;

        for f in &self.functions {
            let (name, hash) = f
                .split_once('=')
                .ok_or_else(|| eyre::eyre!("--function {f:?}: expected NAME=blake3:HASH"))?;
            runner.apply(&FunctionSpec {
                id: name.parse().wrap_err_with(|| format!("--function {f:?}"))?,
                hash: hash.parse().wrap_err_with(|| format!("--function {f:?}"))?,
                desired: DesiredState::Started,
                start: StartFrom::Head,
                start_generation: 1,
            })?;
        }

        let registry: Option<Arc<dyn Registry>> = match &self.registry_dir {
            Some(dir) => {
                let registry = LocalRegistry::open(dir, self.runner_id.clone())
                    .wrap_err_with(|| format!("opening registry {}", dir.display()))?;
                // Apply desired state now, so functions started while the node was down
                // count for the resume point (`serve` applies the snapshot again, a no-op).
                let snapshot = registry
                    .snapshot()
                    .wrap_err("reading the registry snapshot")?;
                runner.sync_snapshot(&snapshot)?;
                Some(Arc::new(registry))
            }
            None => None,
        };
        Ok((runner, registry))
    }
}
