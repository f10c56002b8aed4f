//! `cargo xxfunc new NAME`: a ready function crate.
//!
//! The crate depends on the `xxfunc` SDK by path (the SDK is not on
//! crates.io): `--sdk-path`, else `XXFUNC_SDK_PATH`, else the `guest/xxfunc`
//! directory of the xxfunc checkout this CLI was built from. It is its own
//! workspace, builds for wasm32-wasip1 with `cargo xxfunc build` (or the
//! `cargo wasm` alias), and carries a copy of the recorded fixture events so
//! `cargo test` and `cargo xxfunc test` run against real chain data.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use xxfunc_api::FunctionName;
use xxfunc_runner::FixtureLayout;

use super::Ctx;
use crate::{exit_codes, failure::fail};

/// The xxfunc checkout this binary was built from.
pub(crate) const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

const CARGO_TOML: &str = include_str!("../../templates/new/Cargo.toml.tmpl");
const CARGO_CONFIG: &str = include_str!("../../templates/new/config.toml.tmpl");
const MAIN_RS: &str = include_str!("../../templates/new/main.rs.tmpl");
const GITIGNORE: &str = include_str!("../../templates/new/gitignore.tmpl");
const README: &str = include_str!("../../templates/new/README.md.tmpl");

#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// Name of the function (and of its crate): lowercase letters, digits, '.', '_', '-'.
    #[arg(value_name = "NAME")]
    pub(crate) name: String,
    /// Directory to create [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    pub(crate) path: Option<PathBuf>,
    /// The xxfunc SDK crate (guest/xxfunc of an xxfunc checkout)
    /// [default: $XXFUNC_SDK_PATH, else the checkout this CLI was built from].
    #[arg(long, env = "XXFUNC_SDK_PATH", value_name = "DIR")]
    pub(crate) sdk_path: Option<PathBuf>,
    /// Recorded fixture events (*.bin) to copy into the crate, with the chain state recorded
    /// beside them (../state/) when there is one [default: the xxfunc checkout's
    /// fixtures/events].
    #[arg(long, value_name = "DIR")]
    pub(crate) fixtures: Option<PathBuf>,
}

#[derive(Debug, Serialize)]
struct NewOutput {
    name: String,
    path: PathBuf,
    sdk: PathBuf,
    fixtures: usize,
    /// Blocks of recorded chain state copied (`fixtures/state/`), 0 without.
    state_blocks: usize,
}

pub(crate) fn run(ctx: &Ctx, args: NewArgs) -> anyhow::Result<()> {
    let name: FunctionName = args.name.parse().map_err(|e| {
        fail(
            exit_codes::USAGE,
            format!("{e}; pick a name like `my-transfers`"),
        )
    })?;
    if !name.as_str().starts_with(|c: char| c.is_ascii_lowercase()) || name.as_str().contains('.') {
        return Err(fail(
            exit_codes::USAGE,
            format!(
                "{name:?} is a valid function name but not a valid crate name; a crate name starts \
                 with a letter and has no '.'"
            ),
        ));
    }
    let dir = std::path::absolute(
        args.path
            .clone()
            .unwrap_or_else(|| PathBuf::from(name.as_str())),
    )?;
    if dir.exists()
        && dir
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(fail(
            exit_codes::USAGE,
            format!(
                "{} already exists and is not empty; pick another NAME or --path",
                dir.display()
            ),
        ));
    }
    let sdk = sdk_path(args.sdk_path.as_deref())?;
    let fixtures_src = args
        .fixtures
        .clone()
        .unwrap_or_else(|| Path::new(REPO_ROOT).join("fixtures").join("events"));

    let vars = [
        ("{{name}}", name.as_str().to_string()),
        ("{{sdk_path}}", toml_string(&sdk)),
    ];
    let render = |t: &str| {
        vars.iter()
            .fold(t.to_string(), |acc, (k, v)| acc.replace(k, v))
    };
    write(&dir.join("Cargo.toml"), &render(CARGO_TOML))?;
    write(
        &dir.join(".cargo").join("config.toml"),
        &render(CARGO_CONFIG),
    )?;
    write(&dir.join("src").join("main.rs"), &render(MAIN_RS))?;
    write(&dir.join(".gitignore"), GITIGNORE)?;
    write(&dir.join("README.md"), &render(README))?;
    let layout = FixtureLayout::of(&fixtures_src);
    let copied = copy_files(&layout.events, &dir.join("fixtures").join("events"), "bin")?;
    // The chain's state beside the events, so state reads answer in `cargo xxfunc test`.
    let state_blocks = match layout.recorded_state() {
        Some(state) => copy_files(state, &dir.join("fixtures").join("state"), "json")?,
        None => 0,
    };
    if copied == 0 {
        ctx.out.warn(format!(
            "no fixture events found in {}; add recorded envelopes (*.bin) to {} for the tests",
            fixtures_src.display(),
            dir.join("fixtures/events").display()
        ));
    }

    if ctx.out.json() {
        return ctx.out.json_line(&NewOutput {
            name: name.to_string(),
            path: dir,
            sdk,
            fixtures: copied,
            state_blocks,
        });
    }
    ctx.out.status(
        "Created",
        format!(
            "function `{name}` in {} ({copied} fixture events, {})",
            dir.display(),
            match state_blocks {
                0 => "no recorded state".to_string(),
                n => format!("chain state of {n} blocks"),
            }
        ),
    );
    ctx.out.note(format!(
        "next:\n  cd {}\n  cargo test              # the example against the recorded fixtures, natively\n  cargo xxfunc test       # the built module through the runner on the fixtures\n  cargo xxfunc deploy     # upload and bind `{name}`; prints its hash",
        dir.display()
    ));
    Ok(())
}

/// The SDK directory: explicit, else the checkout this CLI was built from.
fn sdk_path(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let candidate = match explicit {
        Some(p) => std::path::absolute(p)?,
        None => Path::new(REPO_ROOT).join("guest").join("xxfunc"),
    };
    let manifest = candidate.join("Cargo.toml");
    let is_sdk = std::fs::read_to_string(&manifest).is_ok_and(|t| {
        t.lines()
            .any(|l| l.trim().replace(' ', "") == "name=\"xxfunc\"")
    });
    if !is_sdk {
        return Err(fail(
            exit_codes::USAGE,
            format!(
                "cannot find the xxfunc SDK at {} (it is not on crates.io); pass --sdk-path \
                 /path/to/xxfunc/guest/xxfunc or set XXFUNC_SDK_PATH",
                candidate.display()
            ),
        ));
    }
    Ok(candidate.canonicalize().unwrap_or(candidate))
}

/// A path as the inside of a TOML basic string.
fn toml_string(path: &Path) -> String {
    path.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}

fn write(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))
}

/// Copies the regular files of `from` ending in `.{ext}` into `to`; how many.
fn copy_files(from: &Path, to: &Path, ext: &str) -> anyhow::Result<usize> {
    let Ok(entries) = std::fs::read_dir(from) else {
        return Ok(0);
    };
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let mut n = 0;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == ext) && path.is_file() {
            let dest = to.join(entry.file_name());
            std::fs::copy(&path, &dest)
                .with_context(|| format!("copying {} to {}", path.display(), dest.display()))?;
            n += 1;
        }
    }
    Ok(n)
}
