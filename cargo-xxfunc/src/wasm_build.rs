//! Building a function crate for `wasm32-wasip1` and validating the module.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use anyhow::Context;
use serde::Serialize;
use xxfunc_api::ModuleHash;
use xxfunc_service::validate_module;

use crate::{exit_codes, failure::fail, output::Output, project::FunctionCrate};

/// The Rust target functions are built for.
pub(crate) const TARGET: &str = "wasm32-wasip1";

/// Set (to anything but `0`) to never install a missing target with rustup.
pub(crate) const NO_INSTALL_ENV: &str = "XXFUNC_NO_INSTALL";

/// What `cargo xxfunc build` prints (`--json`: this object).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BuildOutput {
    /// Package name.
    pub(crate) package: String,
    /// The `.wasm` file.
    pub(crate) path: PathBuf,
    /// Size in bytes.
    pub(crate) size: u64,
    /// `blake3:` content hash: the module's identity once deployed.
    pub(crate) hash: ModuleHash,
    /// Exports of the module (`_start`, `memory`, ...).
    pub(crate) exports: Vec<String>,
}

/// A built and validated module.
#[derive(Debug, Clone)]
pub(crate) struct Built {
    pub(crate) output: BuildOutput,
    pub(crate) bytes: Vec<u8>,
}

/// Build options.
#[derive(Debug, Clone)]
pub(crate) struct BuildOptions {
    /// Cargo profile (`release` unless asked otherwise).
    pub(crate) profile: String,
    /// Extra `--features`.
    pub(crate) features: Vec<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            profile: "release".into(),
            features: Vec::new(),
        }
    }
}

/// Makes sure the `wasm32-wasip1` standard library is installed for the
/// toolchain cargo will use in `dir`, installing it with rustup if missing.
///
/// # Errors
/// [`exit_codes::TARGET_MISSING`] when it is missing and cannot be installed.
pub(crate) fn ensure_target(dir: &Path, out: &Output) -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .current_dir(dir)
        .output()
        .with_context(|| format!("running `{} --print sysroot`", rustc.to_string_lossy()))?;
    if !sysroot.status.success() {
        anyhow::bail!(
            "`rustc --print sysroot` failed in {}: {}",
            dir.display(),
            String::from_utf8_lossy(&sysroot.stderr).trim()
        );
    }
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    let libdir = sysroot.join("lib").join("rustlib").join(TARGET).join("lib");
    if libdir.is_dir() {
        return Ok(());
    }
    let missing = format!(
        "the {TARGET} target is not installed for the Rust toolchain at {}",
        sysroot.display()
    );
    if std::env::var_os(NO_INSTALL_ENV).is_some_and(|v| !v.is_empty() && v != "0") {
        return Err(fail(
            exit_codes::TARGET_MISSING,
            format!(
                "{missing} ({NO_INSTALL_ENV} forbids installing it); install it with \
                 `rustup target add {TARGET}` and run the command again"
            ),
        ));
    }
    let rustup_found = Command::new("rustup")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !rustup_found {
        return Err(fail(
            exit_codes::TARGET_MISSING,
            format!(
                "{missing}, and rustup is not available to install it; install the {TARGET} \
                 standard library for this toolchain (with rustup: `rustup target add {TARGET}`) \
                 and run the command again"
            ),
        ));
    }
    out.status(
        "Installing",
        format!("the {TARGET} target with rustup (functions are built for it; one time)"),
    );
    let install = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(dir)
        .stdout(Stdio::null())
        .output()
        .context("running `rustup target add`")?;
    if !install.status.success() || !libdir.is_dir() {
        return Err(fail(
            exit_codes::TARGET_MISSING,
            format!(
                "{missing}, and `rustup target add {TARGET}` failed: {}; install the target by \
                 hand (`rustup target add {TARGET}`) and run the command again",
                String::from_utf8_lossy(&install.stderr)
                    .trim()
                    .replace('\n', " ")
            ),
        ));
    }
    Ok(())
}

/// Runs `cargo build --target wasm32-wasip1` on the crate and validates the
/// resulting module exactly as the gateway will.
///
/// # Errors
/// [`exit_codes::TARGET_MISSING`], [`exit_codes::BUILD_FAILED`] (cargo's
/// diagnostics are already on stderr), [`exit_codes::INVALID_MODULE`].
pub(crate) fn build(
    krate: &FunctionCrate,
    opts: &BuildOptions,
    out: &Output,
) -> anyhow::Result<Built> {
    ensure_target(&krate.dir, out)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(&cargo);
    cmd.arg("build")
        .arg("--manifest-path")
        .arg(&krate.manifest)
        .args(["--target", TARGET, "--profile", &opts.profile])
        .args(["--bin", &krate.bin])
        .args(["--message-format", "json-render-diagnostics"])
        .current_dir(&krate.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    if !opts.features.is_empty() {
        cmd.arg("--features").arg(opts.features.join(","));
    }
    if out.quiet() || out.json() {
        cmd.arg("--quiet");
    }
    out.detail(format!("running {cmd:?}"));
    let mut child = cmd.spawn().context("running cargo build")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut wasm: Option<PathBuf> = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.context("reading cargo's output")?;
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] == "compiler-artifact"
            && msg["target"]["name"] == krate.bin.as_str()
            && msg["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "bin"))
            && let Some(exe) = msg["executable"].as_str()
        {
            wasm = Some(PathBuf::from(exe));
        }
    }
    let status = child.wait().context("waiting for cargo build")?;
    if !status.success() {
        return Err(fail(
            exit_codes::BUILD_FAILED,
            format!(
                "building `{}` for {TARGET} failed (cargo's errors are above); fix them and run \
                 the command again",
                krate.package
            ),
        ));
    }
    let path = wasm.unwrap_or_else(|| {
        krate
            .target_dir
            .join(TARGET)
            .join(profile_dir(&opts.profile))
            .join(format!("{}.wasm", krate.bin))
    });
    let built = load_module(&path)?;
    Ok(Built {
        output: BuildOutput {
            package: krate.package.clone(),
            ..built.output
        },
        bytes: built.bytes,
    })
}

fn profile_dir(profile: &str) -> &str {
    match profile {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    }
}

/// Reads and validates a `.wasm` file.
///
/// # Errors
/// [`exit_codes::NOT_FOUND`] when it cannot be read, [`exit_codes::INVALID_MODULE`].
pub(crate) fn load_module(path: &Path) -> anyhow::Result<Built> {
    let bytes = std::fs::read(path).map_err(|e| {
        fail(
            exit_codes::NOT_FOUND,
            format!(
                "cannot read module {}: {e}; check the path or build with `cargo xxfunc build`",
                path.display()
            ),
        )
    })?;
    let info = validate_module(&bytes).map_err(|e| {
        fail(
            exit_codes::INVALID_MODULE,
            format!(
                "{} is not a valid xxfunc module: {e}; a function is a Rust binary using \
                 #[xxfunc::main], built for {TARGET}",
                path.display()
            ),
        )
    })?;
    let package = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Built {
        output: BuildOutput {
            package,
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            hash: ModuleHash::of(&bytes),
            exports: info.exports,
        },
        bytes,
    })
}
