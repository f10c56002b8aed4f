//! Running the real `cargo-xxfunc` binary in temporary directories.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
};

use serde_json::Value;

/// Exit codes, as documented in `src/exit_codes.rs` (checked against the
/// binary's `--help` in `errors::help_documents_exit_codes`).
pub mod code {
    pub const OK: i32 = 0;
    pub const USAGE: i32 = 2;
    pub const NOT_IN_CRATE: i32 = 3;
    pub const NOT_A_FUNCTION: i32 = 4;
    pub const TARGET_MISSING: i32 = 5;
    pub const INVALID_MODULE: i32 = 7;
    pub const GATEWAY_UNREACHABLE: i32 = 8;
    pub const AUTH: i32 = 9;
    pub const NOT_FOUND: i32 = 10;
    pub const AMBIGUOUS: i32 = 11;
}

/// Target directory for function crates the tests build for wasm32-wasip1:
/// separate from the one the outer `cargo test` holds locked, shared by all
/// tests (and runs) so the SDK's dependencies compile once.
pub fn function_target_dir() -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| xxfunc_guest_modules::repo_root().join("target"));
    base.join("cli-functions")
}

/// `cargo-xxfunc xxfunc` in `dir`, with a clean environment: no `XXFUNC_*`
/// variables from the caller, function builds in [`function_target_dir`].
pub fn cli(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-xxfunc"));
    cmd.arg("xxfunc").current_dir(dir);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("XXFUNC_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", function_target_dir())
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .env("NO_COLOR", "1");
    cmd
}

/// What a run printed and how it ended.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The stdout lines parsed as JSON values (JSON Lines).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}\n{self:?}"))
            })
            .collect()
    }

    /// The only JSON value on stdout.
    pub fn json(&self) -> Value {
        let mut lines = self.json_lines();
        assert_eq!(lines.len(), 1, "expected one JSON line: {self:?}");
        lines.remove(0)
    }
}

/// Runs `cmd` and captures its output.
pub fn run(cmd: &mut Command) -> Out {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    Out {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `cli(dir) args…` and asserts the exit code.
#[track_caller]
pub fn xx(dir: &Path, args: &[&str], expect: i32) -> Out {
    let out = run(cli(dir).args(args));
    assert_eq!(
        out.code,
        expect,
        "cargo xxfunc {}\n--- stdout\n{}\n--- stderr\n{}",
        args.join(" "),
        out.stdout,
        out.stderr
    );
    out
}

/// The repository's fixture events, or `None` (with a message) if none are recorded.
pub fn fixture_events() -> Option<Vec<PathBuf>> {
    let dir = xxfunc_guest_modules::fixtures_dir().join("events");
    let events = std::fs::read_dir(&dir).map(|d| {
        let mut v: Vec<PathBuf> = d
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "bin"))
            .collect();
        v.sort();
        v
    });
    match events {
        Ok(v) if !v.is_empty() => Some(v),
        _ => {
            eprintln!("skipping: no recorded fixture events in {}", dir.display());
            None
        }
    }
}

/// Checks the `--json` answer of a redeploy under a pinned name: version 2
/// of a hash other than `h1`, the name still pinned. Returns the new hash.
pub fn pinned_redeploy(v2: &Value, h1: &str) -> String {
    let h2 = v2["hash"].as_str().unwrap().to_string();
    assert_ne!(h2, h1);
    assert_eq!(
        (v2["version"].as_u64(), v2["pinned"].as_bool()),
        (Some(2), Some(true))
    );
    h2
}

/// Creates a function crate `name` in `parent` with `cargo xxfunc new`.
pub fn new_function(parent: &Path, name: &str) -> PathBuf {
    xx(parent, &["new", name], code::OK);
    parent.join(name)
}

/// A tiny valid function module (exports `_start`, imports nothing) carrying
/// `n` in a custom section, so each `n` gives a different hash.
pub fn tiny_module(n: u64) -> Vec<u8> {
    let mut m = vec![
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: func () -> ()
        0x03, 0x02, 0x01, 0x00, // function section
        0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00,
        0x00, // export _start
        0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code section: empty body
        0x00, 0x0a, 0x01, b'n', // custom section "n" of 10 bytes
    ];
    m.extend_from_slice(&n.to_le_bytes());
    m
}

/// Two valid modules whose hashes share their first 8 hex digits (a birthday
/// search over [`tiny_module`]), and that prefix: for ambiguous-prefix tests.
pub fn colliding_modules() -> &'static (Vec<u8>, Vec<u8>, String) {
    static PAIR: OnceLock<(Vec<u8>, Vec<u8>, String)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let mut seen = std::collections::HashMap::new();
        for n in 0u64.. {
            let prefix = xxfunc_store::ModuleHash::of(&tiny_module(n)).short(8);
            if let Some(other) = seen.insert(prefix.clone(), n) {
                return (tiny_module(other), tiny_module(n), prefix);
            }
        }
        unreachable!("the search ends by the birthday bound")
    })
}

/// A free TCP port on 127.0.0.1 (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("binding a free port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// Runs `f` to completion on a fresh single-threaded runtime (for store calls in tests).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}
