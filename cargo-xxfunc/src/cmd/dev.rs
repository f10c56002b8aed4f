//! `cargo xxfunc dev`: gateway and runner embedded in one process on the local
//! data directory, replaying the fixtures (default) or following a node.
//!
//! Layout of the data directory (`.xxfunc/` by default):
//! `registry/` (RocksDB registry, shared with `--offline` commands when dev is
//! not running), `modules/` (file store unless `--store`), `runner/` (cursors,
//! invocation records, compiled-module cache), `dev.json` (URL and token of
//! the running dev gateway, removed on exit).
//!
//! With `--watch`, the function crate in the current directory is rebuilt and
//! redeployed whenever a file under `src/` or its `Cargo.toml` changes, and
//! restarted from the first replayed block so the new version's outputs
//! stream at once.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use xxfunc_api::{DesiredState, FunctionId, FunctionName, InvocationRecord, StartFrom};
use xxfunc_registry::Registry;
use xxfunc_runner::{
    ChainSource, FixtureSource, LocalRegistry, RpcFollower, Runner, RunnerConfig, ServeOptions,
    SinkPolicy, StatusHandle, StopHandle, StoreModules, UntilDone, serve,
    state::{RpcState, StateSource},
};
use xxfunc_service::{Service, ServiceError, ServiceOptions};
use xxfunc_store::ModuleStore;

use super::{Ctx, build::BuildFlags, logs, new::REPO_ROOT};
use crate::{
    backend::offline::{self, DEV_FILE, DevInfo, service_error, store_error},
    exit_codes,
    failure::fail,
    output::human_size,
    project::FunctionCrate,
    wasm_build,
};

/// Directory of the runner's state inside the data directory.
const RUNNER_DIR: &str = "runner";

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    /// Follow this JSON-RPC node instead of replaying the fixtures.
    #[arg(long, value_name = "URL", conflicts_with = "fixtures")]
    pub(crate) rpc: Option<String>,
    /// Fixture directory to replay [default: the crate's fixtures, else the xxfunc checkout's].
    #[arg(long, value_name = "DIR")]
    pub(crate) fixtures: Option<PathBuf>,
    /// Address the embedded gateway listens on (loopback by default).
    #[arg(long, default_value = "127.0.0.1:8722", value_name = "ADDR")]
    pub(crate) listen: SocketAddr,
    /// Rebuild and redeploy the function crate in the current directory on every save.
    #[arg(long)]
    pub(crate) watch: bool,
    /// Replay the fixtures once, print the outputs and exit (no gateway).
    #[arg(long, conflicts_with_all = ["rpc", "watch"])]
    pub(crate) once: bool,
    /// Start `--watch`ed function from this block after each redeploy [default: the first replayed block].
    #[arg(long, value_name = "N")]
    pub(crate) from_block: Option<u64>,
    #[command(flatten)]
    pub(crate) build: BuildFlags,
}

/// `--json` lines of `dev`.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DevEvent<'a> {
    /// The gateway is up.
    Listening {
        gateway: String,
        token: &'a str,
        data_dir: &'a Path,
        source: String,
    },
    /// `--watch` deployed a new version.
    Deployed {
        name: &'a FunctionName,
        hash: String,
        version: u64,
    },
    /// A function ran.
    Invocation { record: &'a InvocationRecord },
    /// The replay finished (`--once`).
    Finished { invocations: usize, failures: usize },
}

pub(crate) async fn run(ctx: &Ctx, args: DevArgs) -> anyhow::Result<()> {
    let data_dir = ctx.data_dir()?;
    let store_url = ctx.store_url()?;
    let registry = offline::open_registry(&data_dir)?;
    let store = ModuleStore::open(&store_url).map_err(|e| store_error(e, &store_url))?;
    let krate = if args.watch {
        Some(ctx.function_crate(args.build.package.as_deref())?)
    } else {
        None
    };

    let (source, first_block): (Box<dyn ChainSource>, Option<u64>) = match &args.rpc {
        Some(url) => {
            // Connecting blocks on the follower's own runtime: not on this executor.
            let target = url.clone();
            let connected = tokio::task::spawn_blocking(move || RpcFollower::connect(&target))
                .await
                .context("the JSON-RPC connect thread panicked")?;
            let follower = connected.map_err(|e| {
                fail(
                    exit_codes::GATEWAY_UNREACHABLE,
                    format!("cannot follow the node at {url}: {e}; check that it is running and serves JSON-RPC"),
                )
            })?;
            (Box::new(follower), None)
        }
        None => {
            let dir = fixtures_dir(args.fixtures.as_deref(), krate.as_ref());
            let source = FixtureSource::open(&dir).map_err(|e| {
                fail(
                    exit_codes::NOT_FOUND,
                    format!("{e}; pass --fixtures DIR with recorded events/*.bin"),
                )
            })?;
            let first = source.events().first().map(|e| e.block.number);
            (Box::new(source), first)
        }
    };
    let source_desc = source.describe();

    // The runner, on its own thread.
    // The runner (and the module source's private runtime) is created, run and
    // dropped on blocking threads, never on the async executor.
    let store_for_runner = store.clone();
    let runner_dir = data_dir.join(RUNNER_DIR);
    let state_rpc = args.rpc.clone();
    let runner = tokio::task::spawn_blocking(move || {
        let modules =
            Arc::new(StoreModules::new(store_for_runner).context("opening the module source")?);
        let mut runner =
            Runner::open(RunnerConfig::new(runner_dir), modules).context("opening the runner")?;
        // Sinks added with `cargo xxfunc sink add` deliver from here, as this runner.
        runner.set_sink_policy(SinkPolicy {
            runner_id: "dev".into(),
            allow_hosts: Vec::new(),
        });
        // Following a node: functions read chain state from it, by block hash.
        if let Some(url) = state_rpc {
            let backend = RpcState::new(&url).context("the state backend's client")?;
            runner.set_state(Some(StateSource::new(Arc::new(backend))));
        }
        anyhow::Ok(runner)
    })
    .await
    .context("the runner thread panicked")??;
    let stop = StopHandle::new();
    let status = StatusHandle::default();
    let feed: Arc<dyn xxfunc_runner::Registry> =
        Arc::new(LocalRegistry::new(registry.clone(), "dev"));
    let options = ServeOptions {
        until: if args.once {
            UntilDone::SourceEnd
        } else {
            UntilDone::Stopped
        },
        report_every: Duration::from_millis(250),
        ..ServeOptions::default()
    };
    let runner_task = {
        let stop = stop.clone();
        let status = status.clone();
        tokio::task::spawn_blocking(move || {
            serve(runner, source, Some(feed), stop, status, options).map(|r| r.totals())
        })
    };

    if args.once {
        ctx.out.status(
            "Replaying",
            format!("{source_desc} into {}", data_dir.display()),
        );
        let totals = runner_task
            .await
            .context("the runner thread panicked")?
            .context("replaying")?;
        let printed = print_new(ctx, &registry, &mut HashMap::new())?;
        if ctx.out.json() {
            ctx.out.json_line(&DevEvent::Finished {
                invocations: totals.invocations,
                failures: totals.failures,
            })?;
        }
        ctx.out.status(
            "Replayed",
            format!(
                "{} invocations ({} failed, {printed} new records shown); see `cargo xxfunc status --offline`",
                totals.invocations, totals.failures
            ),
        );
        return Ok(());
    }

    // The gateway, in this process.
    let token = ctx.global.token.clone().unwrap_or_else(random_token);
    let gateway = crate::gateway_embed::start(
        &data_dir,
        registry.clone(),
        store.clone(),
        args.listen,
        token.clone(),
    )
    .await?;
    let url = gateway.url();
    let info = DevInfo {
        gateway: url.clone(),
        token: token.clone(),
        pid: std::process::id(),
    };
    let dev_file = data_dir.join(DEV_FILE);
    std::fs::write(&dev_file, serde_json::to_vec_pretty(&info)?)
        .with_context(|| format!("writing {}", dev_file.display()))?;
    if ctx.out.json() {
        ctx.out.json_line(&DevEvent::Listening {
            gateway: url.clone(),
            token: &token,
            data_dir: &data_dir,
            source: source_desc.clone(),
        })?;
    }
    ctx.out
        .status("Listening", format!("gateway on {url} (token {token})"));
    ctx.out.status("Following", source_desc);
    ctx.out.note(format!(
        "in another shell:\n  export XXFUNC_GATEWAY={url} XXFUNC_TOKEN={token}\n  cargo xxfunc list\npress Ctrl-C to stop"
    ));

    let service = Service::new(registry.clone(), store.clone(), ServiceOptions::default());
    let result = watch_loop(ctx, &args, &service, krate.as_ref(), first_block).await;
    stop.stop();
    gateway.stop().await;
    let _ = std::fs::remove_file(&dev_file);
    let served = runner_task.await.context("the runner thread panicked")?;
    result?;
    served.context("running the functions")?;
    Ok(())
}

/// Streams new invocation records, redeploys on save, until Ctrl-C.
async fn watch_loop(
    ctx: &Ctx,
    args: &DevArgs,
    service: &Service,
    krate: Option<&FunctionCrate>,
    first_block: Option<u64>,
) -> anyhow::Result<()> {
    let mut seen: HashMap<FunctionId, HashSet<logs::Key>> = HashMap::new();
    let mut stamp = None;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        if let Some(krate) = krate {
            let now = newest_mtime(&krate.dir);
            if stamp != Some(now) {
                stamp = Some(now);
                if let Err(e) = redeploy(ctx, args, service, krate, first_block).await {
                    // A broken save is reported, not fatal: the next save retries.
                    eprintln!("error: {e:#}");
                }
            }
        }
        print_new(ctx, service.registry(), &mut seen)?;
        tokio::select! {
            _ = &mut ctrl_c => {
                ctx.out.status("Stopping", "dev (Ctrl-C)");
                return Ok(());
            }
            () = tokio::time::sleep(Duration::from_millis(400)) => {}
        }
    }
}

async fn redeploy(
    ctx: &Ctx,
    args: &DevArgs,
    service: &Service,
    krate: &FunctionCrate,
    first_block: Option<u64>,
) -> anyhow::Result<()> {
    let k = krate.clone();
    let opts = args.build.options();
    let out = ctx.out;
    let built = tokio::task::spawn_blocking(move || wasm_build::build(&k, &opts, &out))
        .await
        .context("the build thread panicked")??;
    let name: FunctionName = krate.package.to_ascii_lowercase().parse().map_err(|e| {
        fail(
            exit_codes::USAGE,
            format!("the crate name is not a valid function name ({e}); rename the package"),
        )
    })?;
    let on = offline::describe(&ctx.data_dir()?);
    let error = |e: ServiceError| service_error(e, &on, service.store().description());
    let deployed = service
        .deploy(&name, built.bytes.clone())
        .await
        .map_err(error)?;
    let (bind, put) = (deployed.bind, deployed.upload);
    let from = args
        .from_block
        .or(first_block)
        .map_or(StartFrom::Head, StartFrom::Block);
    let view = service.function(name.as_str()).await.map_err(error)?;
    if view.desired != DesiredState::Started || from != StartFrom::Head {
        service.start(name.as_str(), from).await.map_err(error)?;
    }
    if ctx.out.json() {
        ctx.out.json_line(&DevEvent::Deployed {
            name: &name,
            hash: bind.hash.to_string(),
            version: bind.version,
        })?;
    }
    ctx.out.status(
        "Deployed",
        format!(
            "{name} v{} {} ({}), running {}",
            bind.version,
            bind.hash,
            human_size(put.size),
            match from {
                StartFrom::Head => "from the chain head".to_string(),
                StartFrom::Block(n) => format!("from block {n}"),
            }
        ),
    );
    Ok(())
}

/// Prints invocation records not printed before; returns how many.
fn print_new(
    ctx: &Ctx,
    registry: &Registry,
    seen: &mut HashMap<FunctionId, HashSet<logs::Key>>,
) -> anyhow::Result<usize> {
    let mut printed = 0;
    for view in registry.list()? {
        let page = registry.logs(&view.id, 200)?;
        let set = seen.entry(view.id.clone()).or_default();
        for rec in &page.invocations {
            let key = logs::key(rec);
            if set.insert(key) {
                printed += 1;
                if ctx.out.json() {
                    ctx.out.json_line(&DevEvent::Invocation { record: rec })?;
                } else {
                    logs::print_record(&ctx.out, rec, false)?;
                }
            }
        }
    }
    Ok(printed)
}

/// The newest modification time under the crate's `src/`, its manifest and build script.
fn newest_mtime(dir: &Path) -> SystemTime {
    fn walk(path: &Path, newest: &mut SystemTime) {
        let Ok(meta) = std::fs::metadata(path) else {
            return;
        };
        if let Ok(m) = meta.modified() {
            *newest = (*newest).max(m);
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(path)
        {
            for e in entries.flatten() {
                walk(&e.path(), newest);
            }
        }
    }
    let mut newest = SystemTime::UNIX_EPOCH;
    for p in ["src", "Cargo.toml", "build.rs"] {
        walk(&dir.join(p), &mut newest);
    }
    newest
}

fn fixtures_dir(explicit: Option<&Path>, krate: Option<&FunctionCrate>) -> PathBuf {
    if let Some(dir) = explicit {
        return dir.to_path_buf();
    }
    if let Some(k) = krate
        && k.dir.join("fixtures").join("events").is_dir()
    {
        return k.dir.join("fixtures");
    }
    Path::new(REPO_ROOT).join("fixtures")
}

/// 32 random hex digits.
fn random_token() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}
