//! `cargo xxfunc test`: run the function on recorded fixtures through the real
//! runner, offline, and compare its outputs with golden files.
//!
//! The module goes into a `memory://` store, a runner is opened on a temporary
//! directory, the function is started before the first event, and the
//! fixtures are replayed with the same [`FixtureSource`] and [`serve`] loop a
//! node uses. Golden files are `<fixtures>/golden/<name>/<event>.out`: the
//! exact stdout of the function on `<fixtures>/events/<event>.bin`.
//!
//! Chain state (`event.state()`) is answered offline from `<fixtures>/state/`, the
//! recorded state after every fixture block, with calls run on a local EVM
//! ([`FixtureState`]); a read at a block that directory lacks fails the invocation with
//! "state unavailable", and so does every read when there is no such directory.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use xxfunc_api::{
    BlockRef, DesiredState, EventKind, FunctionId, FunctionSpec, InvocationStatus, ModuleHash,
    StartFrom,
};
use xxfunc_runner::{
    FixtureLayout, FixtureSource, Runner, RunnerConfig, ServeOptions, StatusHandle, StopHandle,
    StoreModules, UntilDone, serve,
    state::{FixtureState, StateBackend, StateSource},
};
use xxfunc_store::ModuleStore;

use super::{Ctx, build::BuildFlags, new::REPO_ROOT};
use crate::{
    exit_codes,
    failure::fail,
    output::human_us,
    wasm_build::{self, Built},
};

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Fixture directory: `events/*.bin` (delivered in file-name order), `golden/`, and
    /// `state/` (the chain state reads answer) [default: ./fixtures in the crate if it has
    /// events, else the xxfunc checkout's fixtures].
    #[arg(long, value_name = "DIR")]
    pub(crate) fixtures: Option<PathBuf>,
    /// Write the outputs as the new golden files instead of comparing.
    #[arg(long)]
    pub(crate) bless: bool,
    /// Test this .wasm module instead of building the current crate.
    #[arg(long, value_name = "PATH")]
    pub(crate) module: Option<PathBuf>,
    /// Golden files are looked up under this name [default: the package or file name].
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    #[command(flatten)]
    pub(crate) build: BuildFlags,
}

/// Where the fixtures are.
#[derive(Debug, Clone)]
struct Fixtures {
    events: PathBuf,
    golden: PathBuf,
    /// Recorded chain state, when the fixtures have it.
    state: Option<PathBuf>,
    /// File stems of the events, in delivery order.
    stems: Vec<String>,
}

/// One event's result (`--json`: `{"type":"event",..}`).
#[derive(Debug, Serialize)]
struct EventResult {
    #[serde(rename = "type")]
    kind_tag: &'static str,
    /// Fixture file stem.
    event: String,
    kind: EventKind,
    block: BlockRef,
    #[serde(flatten)]
    status: InvocationStatus,
    duration_us: u64,
    /// `match`, `differs`, `no_golden`, `blessed`.
    golden: &'static str,
    stdout: String,
    stderr: String,
}

/// The run's summary (`--json`: `{"type":"summary",..}`).
#[derive(Debug, Serialize)]
struct Summary {
    #[serde(rename = "type")]
    kind_tag: &'static str,
    name: String,
    hash: ModuleHash,
    events: usize,
    failed: usize,
    differs: usize,
    no_golden: usize,
    blessed: usize,
    total_us: u64,
    passed: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: TestArgs) -> anyhow::Result<()> {
    let (built, name, crate_dir) = match &args.module {
        Some(path) => {
            let built = wasm_build::load_module(path)?;
            let name = built.output.package.clone();
            (built, name, None)
        }
        None => {
            let krate = ctx.function_crate(args.build.package.as_deref())?;
            let built = wasm_build::build(&krate, &args.build.options(), &ctx.out)?;
            (built, krate.package.clone(), Some(krate.dir))
        }
    };
    let name = args.name.clone().unwrap_or(name);
    let fixtures = locate_fixtures(args.fixtures.as_deref(), crate_dir.as_deref())?;
    let state = match &fixtures.state {
        Some(dir) => Some(Arc::new(FixtureState::open(dir).map_err(|e| {
            fail(
                exit_codes::NOT_FOUND,
                format!("{e}; re-record the fixtures (scripts/record-fixtures)"),
            )
        })?)),
        None => None,
    };
    ctx.out.status(
        "Testing",
        format!(
            "{name} ({}) on {} events from {}",
            built.output.hash,
            fixtures.stems.len(),
            fixtures.events.display()
        ),
    );
    match &state {
        Some(state) => ctx.out.status("State", state.describe()),
        None => ctx.out.status(
            "State",
            "none recorded with these fixtures: state reads answer \"state unavailable\"",
        ),
    }

    let store = ModuleStore::open("memory://").context("opening an in-memory module store")?;
    let hash = store
        .put(built.bytes.clone())
        .await
        .context("storing the module in memory")?
        .hash;
    let bar = ctx.out.progress(fixtures.stems.len() as u64, "replaying");
    let events_dir = fixtures.events.clone();
    let fn_name = name.clone();
    let bar_in = bar.clone();
    let records = tokio::task::spawn_blocking(move || {
        replay(store, hash, &fn_name, &events_dir, state, &bar_in)
    })
    .await
    .context("the replay thread panicked")??;
    bar.finish_and_clear();
    report(ctx, &args, &built, &name, &fixtures, records)
}

fn replay(
    store: ModuleStore,
    hash: ModuleHash,
    name: &str,
    events: &Path,
    state: Option<Arc<FixtureState>>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<xxfunc_api::InvocationRecord>> {
    let dir = tempfile::tempdir().context("creating a temporary runner directory")?;
    let modules = Arc::new(StoreModules::new(store).context("opening the module source")?);
    let mut runner =
        Runner::open(RunnerConfig::new(dir.path()), modules).context("opening the runner")?;
    if let Some(state) = state {
        runner.set_state(Some(StateSource::new(state)));
    }
    let id: FunctionId = name
        .to_ascii_lowercase()
        .parse()
        .unwrap_or(FunctionId::Hash(hash));
    runner
        .apply(&FunctionSpec {
            id: id.clone(),
            hash,
            desired: DesiredState::Started,
            start: StartFrom::Head,
            start_generation: 1,
            sinks: Vec::new(),
        })
        .context("starting the function in the runner")?;
    if let Some(reason) = runner.function_report(&id).and_then(|r| match r.observed {
        xxfunc_api::ObservedState::LoadFailed { reason } => Some(reason),
        _ => None,
    }) {
        return Err(fail(
            exit_codes::INVALID_MODULE,
            format!("the runner cannot load the module: {reason}"),
        ));
    }
    let source = FixtureSource::open(events).map_err(|e| {
        fail(
            exit_codes::NOT_FOUND,
            format!("{e}; pass --fixtures DIR with recorded events/*.bin"),
        )
    })?;
    let status = StatusHandle::default();
    let options = ServeOptions {
        until: UntilDone::SourceEnd,
        ..ServeOptions::default()
    };
    let runner = serve(
        runner,
        Box::new(source),
        None,
        StopHandle::new(),
        status,
        options,
    )
    .context("replaying the fixtures through the runner")?;
    let records = runner
        .outputs(&id)
        .context("reading the invocation records")?;
    bar.set_position(records.len() as u64);
    Ok(records)
}

fn report(
    ctx: &Ctx,
    args: &TestArgs,
    built: &Built,
    name: &str,
    fixtures: &Fixtures,
    records: Vec<xxfunc_api::InvocationRecord>,
) -> anyhow::Result<()> {
    if records.len() != fixtures.stems.len() && fixtures.state.is_none() {
        return Err(fail(
            exit_codes::TEST_FAILED,
            format!(
                "the runner recorded {} invocations for {} fixture events: the function's state \
                 reads answered \"state unavailable\" (no recorded state next to {}; record the \
                 fixtures with scripts/record-fixtures, which writes state/, or pass --fixtures \
                 DIR with one)",
                records.len(),
                fixtures.stems.len(),
                fixtures.events.display()
            ),
        ));
    }
    if records.len() != fixtures.stems.len() {
        anyhow::bail!(
            "the runner recorded {} invocations for {} fixture events; the fixture directory {} \
             may contain events the runner skipped (duplicates?)",
            records.len(),
            fixtures.stems.len(),
            fixtures.events.display()
        );
    }
    let golden_dir = fixtures.golden.join(name);
    let mut summary = Summary {
        kind_tag: "summary",
        name: name.to_string(),
        hash: built.output.hash,
        events: records.len(),
        failed: 0,
        differs: 0,
        no_golden: 0,
        blessed: 0,
        total_us: 0,
        passed: true,
    };
    let mut diffs = Vec::new();
    for (stem, rec) in fixtures.stems.iter().zip(records) {
        let path = golden_dir.join(format!("{stem}.out"));
        let ok = rec.status == InvocationStatus::Ok;
        let golden = if args.bless && ok {
            std::fs::create_dir_all(&golden_dir)
                .with_context(|| format!("creating {}", golden_dir.display()))?;
            std::fs::write(&path, rec.stdout.as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            summary.blessed += 1;
            "blessed"
        } else {
            match std::fs::read(&path) {
                Ok(expected) if expected == rec.stdout.as_bytes() => "match",
                Ok(expected) => {
                    summary.differs += 1;
                    diffs.push(diff(
                        &path,
                        &String::from_utf8_lossy(&expected),
                        &rec.stdout,
                    ));
                    "differs"
                }
                Err(_) => {
                    summary.no_golden += 1;
                    "no_golden"
                }
            }
        };
        if !ok {
            summary.failed += 1;
        }
        summary.total_us += rec.duration_us;
        let line = EventResult {
            kind_tag: "event",
            event: stem.clone(),
            kind: rec.kind,
            block: rec.block,
            status: rec.status.clone(),
            duration_us: rec.duration_us,
            golden,
            stdout: rec.stdout.clone(),
            stderr: rec.stderr.clone(),
        };
        if ctx.out.json() {
            ctx.out.json_line(&line)?;
        } else {
            let kind = match rec.kind {
                EventKind::Commit => "commit",
                EventKind::Revert => "revert",
            };
            let outcome = match &rec.status {
                InvocationStatus::Ok => "ok".to_string(),
                InvocationStatus::Failed { reason } => format!("FAILED ({reason})"),
            };
            let records = rec.stdout.lines().count();
            ctx.out.data(format!(
                "{stem:<24} {kind} #{:<6} {outcome:<6} {:>8}  {records} output line(s)  golden: {golden}",
                rec.block.number,
                human_us(rec.duration_us)
            ))?;
            if ctx.out.verbose() > 0 {
                for l in rec.stdout.lines() {
                    ctx.out.data(format!("    out | {l}"))?;
                }
                for l in rec.stderr.lines() {
                    ctx.out.data(format!("    log | {l}"))?;
                }
            }
        }
    }
    summary.passed = summary.failed == 0 && summary.differs == 0;
    if ctx.out.json() {
        ctx.out.json_line(&summary)?;
    } else {
        for d in &diffs {
            eprintln!("{d}");
        }
        let goldens = if summary.blessed > 0 {
            format!(
                "{} golden file(s) written to {}",
                summary.blessed,
                golden_dir.display()
            )
        } else if summary.no_golden == summary.events {
            format!(
                "no golden files in {} (write them with --bless)",
                golden_dir.display()
            )
        } else {
            format!(
                "{} match, {} differ, {} without golden",
                summary.events - summary.differs - summary.no_golden,
                summary.differs,
                summary.no_golden
            )
        };
        ctx.out.status(
            if summary.passed { "Passed" } else { "Failed" },
            format!(
                "{} events, {} failed; {goldens}; {} in the guest",
                summary.events,
                summary.failed,
                human_us(summary.total_us)
            ),
        );
    }
    if summary.passed {
        return Ok(());
    }
    Err(fail(
        exit_codes::TEST_FAILED,
        format!(
            "{name}: {} of {} invocations failed and {} outputs differ from {}; see the events above \
             (rerun with -v for outputs and logs; --bless accepts the new outputs)",
            summary.failed,
            summary.events,
            summary.differs,
            golden_dir.display()
        ),
    ))
}

fn diff(path: &Path, expected: &str, actual: &str) -> String {
    let mut out = format!("--- {} (golden)\n+++ actual\n", path.display());
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    out.push_str(&format!("-{x}\n"));
                }
                if let Some(y) = y {
                    out.push_str(&format!("+{y}\n"));
                }
            }
        }
    }
    out
}

fn locate_fixtures(explicit: Option<&Path>, crate_dir: Option<&Path>) -> anyhow::Result<Fixtures> {
    let root = match explicit {
        Some(dir) => dir.to_path_buf(),
        None => crate_dir
            .map(|d| d.join("fixtures"))
            .filter(|d| has_events(&d.join("events")))
            .unwrap_or_else(|| Path::new(REPO_ROOT).join("fixtures")),
    };
    let FixtureLayout {
        events,
        golden,
        state,
    } = FixtureLayout::of(&root);
    let mut stems: Vec<(PathBuf, String)> = std::fs::read_dir(&events)
        .map_err(|e| {
            fail(
                exit_codes::NOT_FOUND,
                format!(
                    "cannot read fixtures {}: {e}; pass --fixtures DIR with recorded events/*.bin",
                    events.display()
                ),
            )
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .filter_map(|p| Some((p.clone(), p.file_stem()?.to_string_lossy().into_owned())))
        .collect();
    stems.sort();
    if stems.is_empty() {
        return Err(fail(
            exit_codes::NOT_FOUND,
            format!(
                "no event envelopes (*.bin) in {}; pass --fixtures DIR with recorded events",
                events.display()
            ),
        ));
    }
    let events = events.canonicalize().unwrap_or(events);
    Ok(Fixtures {
        events,
        golden,
        state: state.is_dir().then_some(state),
        stems: stems.into_iter().map(|(_, s)| s).collect(),
    })
}

fn has_events(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "bin"))))
        .unwrap_or(false)
}
