//! `xxfunc-runner`: runs started functions on chain events from recorded
//! fixtures or a node's JSON-RPC, with desired state from a gateway
//! (`--gateway`), a local registry (`--registry-dir`) or fixed `--function`
//! flags.

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::{Context, bail};
use clap::Parser;
use xxfunc_runner::{
    ChainSource, DEFAULT_STALL_AFTER, FixtureLayout, FixtureSource, OpenedRunner, RpcFollower,
    RpcStart, RunnerArgs, ServeOptions, SinkState, StatusHandle, StopHandle, UntilDone, metrics,
    serve,
};

/// Run xxfunc functions on chain events.
#[derive(Debug, Parser)]
#[command(name = "xxfunc-runner", version)]
struct Args {
    /// Directory of the runner's state (cursors, records, compiled modules).
    #[arg(long, env = "XXFUNC_RUNNER_DATA", value_name = "DIR")]
    data_dir: PathBuf,
    /// Replay recorded envelopes from this directory (its events/*.bin).
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with = "rpc",
        required_unless_present = "rpc"
    )]
    fixtures: Option<PathBuf>,
    /// Follow a node over JSON-RPC.
    #[arg(long, value_name = "URL")]
    rpc: Option<String>,
    /// JSON-RPC poll interval in milliseconds.
    #[arg(long, default_value_t = 250, value_name = "MS")]
    poll_ms: u64,
    /// With --rpc and no stored checkpoint: the first block to run on. `head` (the node's
    /// current head block, at once), `next` (the next block the node adds), a block number,
    /// or a block hash (0x…). A restarted runner resumes after its checkpoint instead.
    #[arg(
        long,
        default_value = "head",
        value_name = "head|next|N|HASH",
        requires = "rpc"
    )]
    start: RpcStart,
    /// With --rpc: warn when the node's head has not moved for this many seconds (0: never).
    #[arg(long, default_value_t = DEFAULT_STALL_AFTER.as_secs(), value_name = "SECS", requires = "rpc")]
    stall_warn_secs: u64,
    /// With --fixtures: exit once the replay is done and every function has caught up.
    #[arg(long)]
    exit_at_end: bool,
    /// With --fixtures: sleep this long before each event (testing aid).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    replay_delay_ms: u64,
    #[command(flatten)]
    runner: RunnerArgs,
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

fn run(mut args: Args) -> anyhow::Result<()> {
    // Following a node: functions read state from it too, unless told otherwise;
    // replaying fixtures: from the state recorded with them, if it was.
    if args.runner.state_rpc.is_none() && args.runner.state_fixtures.is_none() {
        args.runner.state_rpc.clone_from(&args.rpc);
        if let Some(dir) = &args.fixtures {
            let layout = FixtureLayout::of(dir);
            args.runner.state_fixtures = layout.recorded_state().map(Path::to_path_buf);
        }
    }
    let OpenedRunner { runner, registry } = args.runner.open(&args.data_dir, "local")?;

    let source: Box<dyn ChainSource> = match (&args.fixtures, &args.rpc) {
        (Some(dir), None) => Box::new(
            FixtureSource::open(dir)
                .with_context(|| format!("loading fixtures from {}", dir.display()))?
                .with_delay(Duration::from_millis(args.replay_delay_ms)),
        ),
        (None, Some(url)) => Box::new(
            RpcFollower::connect(url)
                .with_context(|| format!("connecting to {url}"))?
                .poll_interval(Duration::from_millis(args.poll_ms))
                .stall_after(Some(Duration::from_secs(args.stall_warn_secs)))
                .start(args.start)
                .with_context(|| format!("finding the start block on {url}"))?,
        ),
        _ => bail!("give exactly one of --fixtures DIR or --rpc URL"),
    };

    let status = StatusHandle::default();
    let _metrics = match args.runner.metrics_addr {
        Some(addr) => {
            let server = metrics::serve_metrics(addr, status.clone())?;
            tracing::info!("metrics on http://{}/metrics", server.local_addr());
            Some(server)
        }
        None => None,
    };
    let stop = StopHandle::new();
    stop_on_signals(stop.clone(), status.clone())?;
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

/// Ctrl-C or SIGTERM stops the loop after its current batch (the cursors of a
/// finished batch are on disk either way; this only makes the exit prompt and
/// sends the last report). SIGHUP retries every `failed` sink.
fn stop_on_signals(stop: StopHandle, status: StatusHandle) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    std::thread::Builder::new()
        .name("xxfunc-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let mut term = signal(SignalKind::terminate()).ok();
                let mut hup = signal(SignalKind::hangup()).ok();
                loop {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => break,
                        Some(()) = async { term.as_mut()?.recv().await } => break,
                        Some(()) = async { hup.as_mut()?.recv().await } => {
                            for sink in status.sinks() {
                                if sink.state == SinkState::Failed {
                                    tracing::info!("retrying sink {} (SIGHUP)", sink.name);
                                    status.retry_sink(&sink.name);
                                }
                            }
                        }
                    }
                }
            });
            tracing::info!("stopping (signal)");
            stop.stop();
        })
        .context("starting the signal handler")?;
    Ok(())
}
