//! `xxfunc-runner`: runs started functions on chain events from recorded
//! fixtures or a node's JSON-RPC, with desired state from a local registry
//! (or fixed `--function` flags).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use clap::Parser;
use xxfunc_api::{DesiredState, FunctionSpec, StartFrom};
use xxfunc_runner::{
    ChainSource, FixtureSource, Limits, LocalRegistry, Registry, RpcFollower, Runner, RunnerConfig,
    ServeOptions, StatusHandle, StopHandle, StoreModules, UntilDone, metrics, serve,
};
use xxfunc_store::ModuleStore;

/// Run xxfunc functions on chain events.
#[derive(Debug, Parser)]
#[command(name = "xxfunc-runner", version)]
struct Args {
    /// Directory of the runner's state (cursors, records, compiled modules).
    #[arg(long, env = "XXFUNC_RUNNER_DATA")]
    data_dir: PathBuf,
    /// Module store URL: file:///abs/path, s3://bucket/prefix or memory://.
    #[arg(long, env = "XXFUNC_STORE")]
    store: String,
    /// Replay recorded envelopes from this directory (its events/*.bin).
    #[arg(long, conflicts_with = "rpc", required_unless_present = "rpc")]
    fixtures: Option<PathBuf>,
    /// Follow a node over JSON-RPC.
    #[arg(long)]
    rpc: Option<String>,
    /// JSON-RPC poll interval in milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// Local registry directory (RocksDB) to take desired state from.
    #[arg(long, env = "XXFUNC_REGISTRY_DIR")]
    registry_dir: Option<PathBuf>,
    /// Name this runner reports under.
    #[arg(long, default_value = "local")]
    runner_id: String,
    /// Start a function without a registry: NAME=blake3:HASH (repeatable).
    #[arg(long = "function", value_name = "NAME=HASH")]
    functions: Vec<String>,
    /// With --fixtures: exit once the replay is done and every function has caught up.
    #[arg(long)]
    exit_at_end: bool,
    /// With --fixtures: sleep this long before each event (testing aid).
    #[arg(long, default_value_t = 0)]
    replay_delay_ms: u64,
    /// Worker threads (default: number of cores).
    #[arg(long)]
    workers: Option<usize>,
    /// Wall-time limit per invocation, milliseconds.
    #[arg(long, default_value_t = 1000)]
    wall_time_ms: u64,
    /// Fuel per invocation (off by default).
    #[arg(long)]
    fuel: Option<u64>,
    /// Linear memory cap per instance, MiB.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,
    /// stdout cap per invocation, KiB.
    #[arg(long, default_value_t = 1024)]
    stdout_kib: usize,
    /// stderr cap per invocation, KiB.
    #[arg(long, default_value_t = 256)]
    stderr_kib: usize,
    /// Consecutive failures before a function is quarantined.
    #[arg(long, default_value_t = 5)]
    quarantine_after: u64,
    /// Serve Prometheus text on http://ADDR/metrics (loopback, e.g. 127.0.0.1:9464).
    #[arg(long)]
    metrics_addr: Option<SocketAddr>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xxfunc-runner: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    let mut config = RunnerConfig::new(&args.data_dir);
    config.limits = Limits {
        wall_time: Duration::from_millis(args.wall_time_ms),
        fuel: args.fuel,
        memory_bytes: args.memory_mib << 20,
        stdout_bytes: args.stdout_kib << 10,
        stderr_bytes: args.stderr_kib << 10,
    };
    if let Some(w) = args.workers {
        config.workers = w.max(1);
    }
    config.quarantine_after = args.quarantine_after.max(1);

    let store = ModuleStore::open(&args.store)
        .with_context(|| format!("opening module store {}", args.store))?;
    let modules = Arc::new(StoreModules::new(store)?);
    let mut runner = Runner::open(config, modules)
        .with_context(|| format!("opening runner state in {}", args.data_dir.display()))?;

    for f in &args.functions {
        let (name, hash) = f
            .split_once('=')
            .with_context(|| format!("--function {f:?}: expected NAME=blake3:HASH"))?;
        runner.apply(&FunctionSpec {
            id: name.parse().with_context(|| format!("--function {f:?}"))?,
            hash: hash.parse().with_context(|| format!("--function {f:?}"))?,
            desired: DesiredState::Started,
            start: StartFrom::Head,
            start_generation: 1,
        })?;
    }

    let registry: Option<Arc<dyn Registry>> = match &args.registry_dir {
        Some(dir) => Some(Arc::new(
            LocalRegistry::open(dir, args.runner_id.clone())
                .with_context(|| format!("opening registry {}", dir.display()))?,
        )),
        None => None,
    };

    let source: Box<dyn ChainSource> = match (&args.fixtures, &args.rpc) {
        (Some(dir), None) => Box::new(
            FixtureSource::open(dir)
                .with_context(|| format!("loading fixtures from {}", dir.display()))?
                .with_delay(Duration::from_millis(args.replay_delay_ms)),
        ),
        (None, Some(url)) => Box::new(
            RpcFollower::connect(url)
                .with_context(|| format!("connecting to {url}"))?
                .poll_interval(Duration::from_millis(args.poll_ms)),
        ),
        _ => bail!("give exactly one of --fixtures DIR or --rpc URL"),
    };

    let status = StatusHandle::default();
    if let Some(addr) = args.metrics_addr {
        let (bound, _thread) = metrics::serve_metrics(addr, status.clone())?;
        tracing::info!("metrics on http://{bound}/metrics");
    }
    let stop = StopHandle::new();
    let options = ServeOptions {
        until: if args.exit_at_end {
            UntilDone::SourceEnd
        } else {
            UntilDone::Stopped
        },
        ..ServeOptions::default()
    };
    let runner = serve(runner, source, registry, stop, status, options)?;
    let totals = runner.totals();
    tracing::info!(
        events = totals.events,
        invocations = totals.invocations,
        failures = totals.failures,
        safe_height = ?runner.safe_height(),
        "runner finished"
    );
    Ok(())
}
