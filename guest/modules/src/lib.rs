//! Test support for every crate that runs guest functions.
//!
//! Owns one thing: turning the example crates under `guest/examples/` into
//! `wasm32-wasip1` modules for tests and benchmarks, and locating the recorded
//! fixtures and the shared real-chain data. It never runs a module.
//!
//! The examples are built once per process with `cargo build --profile guest
//! --target wasm32-wasip1` into their own target directory
//! (`<target>/guest-modules/<checkout>`), so a test running under `cargo test` never waits
//! on the build lock that its own `cargo` invocation holds. Concurrent test
//! processes serialise on cargo's lock of that directory.
//!
//! ```no_run
//! let wasm = xxfunc_guest_modules::module_bytes("hello");
//! assert_eq!(&wasm[..4], b"\0asm");
//! ```

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

/// The repository root (the directory of the workspace `Cargo.toml`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .expect("guest/modules sits two levels below the repository root")
        .to_path_buf()
}

/// `fixtures/` at the repository root.
pub fn fixtures_dir() -> PathBuf {
    repo_root().join("fixtures")
}

/// The recorded event envelopes in delivery order (`fixtures/events/*.bin`,
/// sorted by file name).
pub fn fixture_events() -> Vec<PathBuf> {
    let dir = fixtures_dir().join("events");
    let mut events: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "bin"))
        .collect();
    events.sort();
    events
}

/// The shared real-chain data set (`../shared/chain-data` beside the
/// repository), or `None` when it is not present on this machine. Callers
/// print a skip message when it is absent.
pub fn chain_data_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("XXFUNC_CHAIN_DATA") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    let dir = repo_root().parent()?.join("shared").join("chain-data");
    dir.join("data").is_dir().then_some(dir)
}

/// Names of the example packages under `guest/examples/` (one per directory).
pub fn example_packages() -> Vec<String> {
    let dir = repo_root().join("guest").join("examples");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .flatten()
    {
        let manifest = entry.path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        if let Some(name) = package_name(&text) {
            names.push(name);
        }
    }
    names.sort();
    names
}

fn package_name(manifest: &str) -> Option<String> {
    let mut in_package = false;
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_package = line == "[package]";
            continue;
        }
        if in_package
            && let Some(rest) = line.strip_prefix("name")
            && let Some(value) = rest.trim_start().strip_prefix('=')
        {
            return Some(value.trim().trim_matches('"').to_string());
        }
    }
    None
}

/// The target directory the guest modules are built into:
/// `<target>/guest-modules/<checkout>`, one per checkout, so two clones (or worktrees)
/// sharing one `CARGO_TARGET_DIR` never overwrite each other's modules.
pub fn guest_target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"));
    base.join("guest-modules").join(checkout_key(&repo_root()))
}

/// A short stable key for a checkout directory: its name and an FNV-1a hash of its path.
fn checkout_key(root: &Path) -> String {
    let hash = root
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
        });
    let name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}-{hash:016x}")
}

/// Builds every example (once per process) and returns the directory that
/// holds the `.wasm` files.
///
/// # Panics
/// When the build fails: the message carries cargo's output and says what to do.
pub fn build_all() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let target = guest_target_dir();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(repo_root())
            .args([
                "build",
                "--quiet",
                "--profile",
                "guest",
                "--target",
                "wasm32-wasip1",
            ])
            .arg("--target-dir")
            .arg(&target)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS");
        for name in example_packages() {
            cmd.arg("-p").arg(name);
        }
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("running cargo to build the guest examples: {e}"));
        assert!(
            out.status.success(),
            "building the guest examples for wasm32-wasip1 failed \
             (is the target installed? `rustup target add wasm32-wasip1`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        target.join("wasm32-wasip1").join("guest")
    })
}

/// Path of the built example module `name` (e.g. `"hello"`, `"misbehave-loop"`).
///
/// # Panics
/// When the build fails or no such module exists.
pub fn module_path(name: &str) -> PathBuf {
    let path = build_all().join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "no guest module {name:?} at {}; examples are the packages under guest/examples/",
        path.display()
    );
    path
}

/// Bytes of the built example module `name`.
///
/// # Panics
/// As [`module_path`], or when the file cannot be read.
pub fn module_bytes(name: &str) -> Vec<u8> {
    let path = module_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_package_names() {
        let manifest = "[package]\nname = \"erc20-transfers\"\nversion = \"0.1.0\"\n\n[dependencies]\nname = \"x\"\n";
        assert_eq!(package_name(manifest).as_deref(), Some("erc20-transfers"));
        assert_eq!(package_name("[dependencies]\nname = \"x\"\n"), None);
    }

    #[test]
    fn finds_the_examples() {
        assert!(example_packages().iter().any(|n| n == "hello"));
    }
}
