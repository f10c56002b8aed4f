//! Finding the function crate: its manifest, package, binary and data directory.
//!
//! `cargo metadata` is the source of truth (it knows workspaces, renamed
//! dependencies and target directories), so this module never parses
//! `Cargo.toml` itself.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::Context;
use serde::Deserialize;

use crate::{exit_codes, failure::fail};

/// Name of the local data directory created in the project.
pub(crate) const DATA_DIR_NAME: &str = ".xxfunc";

/// A function crate: a package that depends on the `xxfunc` SDK and has a binary.
#[derive(Debug, Clone)]
pub(crate) struct FunctionCrate {
    /// Package name.
    pub(crate) package: String,
    /// The binary target to build (the package's only one, or the one named like it).
    pub(crate) bin: String,
    /// `Cargo.toml` of the package.
    pub(crate) manifest: PathBuf,
    /// Directory of the package.
    pub(crate) dir: PathBuf,
    /// Cargo's target directory for it.
    pub(crate) target_dir: PathBuf,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
    workspace_root: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    dependencies: Vec<Dependency>,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Dependency {
    name: String,
    rename: Option<String>,
    kind: Option<String>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// The nearest `Cargo.toml` at or above `start`.
pub(crate) fn find_manifest(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("Cargo.toml"))
        .find(|p| p.is_file())
}

/// The directory `.xxfunc` lives in: the crate (or workspace) root at or above
/// the current directory, else the current directory.
pub(crate) fn project_root(manifest_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(manifest) = manifest_path {
        let manifest = std::path::absolute(manifest)
            .with_context(|| format!("resolving {}", manifest.display()))?;
        return Ok(manifest.parent().map(Path::to_path_buf).unwrap_or_default());
    }
    let cwd = std::env::current_dir().context("reading the current directory")?;
    Ok(find_manifest(&cwd)
        .and_then(|m| m.parent().map(Path::to_path_buf))
        .unwrap_or(cwd))
}

/// The default data directory: `.xxfunc` in the project root.
pub(crate) fn default_data_dir(manifest_path: Option<&Path>) -> anyhow::Result<PathBuf> {
    Ok(project_root(manifest_path)?.join(DATA_DIR_NAME))
}

/// Locates the function crate from `manifest_path` or the current directory;
/// `package` picks one member of a workspace.
///
/// # Errors
/// [`exit_codes::NOT_IN_CRATE`] when there is no `Cargo.toml`,
/// [`exit_codes::NOT_A_FUNCTION`] when the package is not a function.
pub(crate) fn locate(
    manifest_path: Option<&Path>,
    package: Option<&str>,
) -> anyhow::Result<FunctionCrate> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let manifest = match manifest_path {
        Some(path) => {
            let path = std::path::absolute(path)
                .with_context(|| format!("resolving {}", path.display()))?;
            if !path.is_file() {
                return Err(fail(
                    exit_codes::NOT_IN_CRATE,
                    format!(
                        "manifest {} does not exist; pass the path of a function's Cargo.toml",
                        path.display()
                    ),
                ));
            }
            path
        }
        None => find_manifest(&cwd).ok_or_else(|| {
            fail(
                exit_codes::NOT_IN_CRATE,
                format!(
                    "{} is not inside a Cargo package (no Cargo.toml here or above); \
                     cd into a function crate, pass --manifest-path, or create one with \
                     `cargo xxfunc new NAME`",
                    cwd.display()
                ),
            )
        })?,
    };
    let metadata = metadata(&manifest)?;
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let chosen = match package {
        Some(name) => metadata
            .packages
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| {
                let names: Vec<&str> = metadata.packages.iter().map(|p| p.name.as_str()).collect();
                fail(
                    exit_codes::NOT_IN_CRATE,
                    format!(
                        "no package named {name:?} in the workspace at {}; its packages are: {}",
                        metadata.workspace_root.display(),
                        names.join(", ")
                    ),
                )
            })?,
        None => metadata
            .packages
            .iter()
            .find(|p| p.manifest_path.canonicalize().ok().as_deref() == Some(&manifest))
            .ok_or_else(|| {
                fail(
                    exit_codes::NOT_A_FUNCTION,
                    format!(
                        "{} is a workspace manifest, not a function crate; cd into the \
                         function's directory or pick one with --package NAME",
                        manifest.display()
                    ),
                )
            })?,
    };
    let is_sdk = |d: &Dependency| {
        d.kind.is_none() && (d.name == "xxfunc" || d.rename.as_deref() == Some("xxfunc"))
    };
    if !chosen.dependencies.iter().any(is_sdk) {
        return Err(fail(
            exit_codes::NOT_A_FUNCTION,
            format!(
                "package `{}` ({}) is not an xxfunc function: it does not depend on the xxfunc \
                 SDK; add `xxfunc` to its [dependencies] or create a function with \
                 `cargo xxfunc new NAME`",
                chosen.name,
                chosen.manifest_path.display()
            ),
        ));
    }
    let bins: Vec<&Target> = chosen
        .targets
        .iter()
        .filter(|t| t.kind.iter().any(|k| k == "bin"))
        .collect();
    let bin = match bins.as_slice() {
        [] => {
            return Err(fail(
                exit_codes::NOT_A_FUNCTION,
                format!(
                    "package `{}` ({}) has no binary target; a function is a WASI command \
                     with `#[xxfunc::main]` in src/main.rs",
                    chosen.name,
                    chosen.manifest_path.display()
                ),
            ));
        }
        [one] => one.name.clone(),
        many => match many.iter().find(|t| t.name == chosen.name) {
            Some(t) => t.name.clone(),
            None => {
                return Err(fail(
                    exit_codes::NOT_A_FUNCTION,
                    format!(
                        "package `{}` has several binaries ({}) and none is named like the \
                         package; build one with `cargo xxfunc deploy PATH` from its .wasm",
                        chosen.name,
                        many.iter()
                            .map(|t| t.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        },
    };
    let pkg_manifest = chosen.manifest_path.clone();
    Ok(FunctionCrate {
        package: chosen.name.clone(),
        bin,
        dir: pkg_manifest
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        manifest: pkg_manifest,
        target_dir: metadata.target_directory,
    })
}

fn metadata(manifest: &Path) -> anyhow::Result<Metadata> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(&cargo)
        .args([
            "metadata",
            "--no-deps",
            "--format-version",
            "1",
            "--manifest-path",
        ])
        .arg(manifest)
        .output()
        .with_context(|| format!("running `cargo metadata` for {}", manifest.display()))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(fail(
            exit_codes::NOT_IN_CRATE,
            format!(
                "cargo cannot read the package at {}: {}; fix the manifest and try again",
                manifest.display(),
                stderr.trim().trim_start_matches("error: ")
            ),
        ));
    }
    serde_json::from_slice(&out.stdout).context("parsing `cargo metadata` output")
}
