//! Every example module, on every fixture event, prints exactly its golden output, and
//! printing it twice gives the same bytes. `XXFUNC_BLESS=1` (re)writes the goldens.

use crate::wasm::{Exit, Limits, Runner};
use std::path::{Path, PathBuf};
use xxfunc_guest_modules::{example_packages, fixture_events, fixtures_dir, module_bytes};

/// Modules checked against goldens. The `misbehave` package is checked in `misbehave.rs`.
const GOLDEN_MODULES: &[&str] = &[
    "erc20-transfers",
    "hello",
    "hello-async",
    "hello-raw",
    "hello-upstream",
];

/// Examples that read chain state. This harness has no state backend, so their goldens
/// are written and checked through the real runner on the recorded state
/// (`fixtures/state/`): `cargo xxfunc test --bless` in scripts/record-fixtures, and
/// exex-runner's replay test. `state.rs` checks the same goldens here against balances
/// replayed from the fixture chain's own Transfer logs.
const STATE_MODULES: &[&str] = &["erc20-balances"];

fn bless() -> bool {
    std::env::var_os("XXFUNC_BLESS").is_some_and(|v| v != "0")
}

fn golden_path(module: &str, event: &Path) -> PathBuf {
    let stem = event
        .file_stem()
        .expect("event file has a name")
        .to_string_lossy()
        .into_owned();
    fixtures_dir()
        .join("golden")
        .join(module)
        .join(format!("{stem}.out"))
}

fn check_module(module: &str) {
    check_module_against(module, module);
}

/// Runs `module` on every fixture event and compares with the goldens of `golden_dir`.
fn check_module_against(module: &str, golden_dir: &str) {
    let events = fixture_events();
    assert!(
        !events.is_empty(),
        "no fixture events; run scripts/record-fixtures"
    );
    let runner = Runner::new(&module_bytes(module), false);
    let limits = Limits::default();
    let mut mismatches = Vec::new();
    for event in &events {
        let envelope = std::fs::read(event).expect("fixture event readable");
        let first = runner.run(&envelope, &limits);
        assert_eq!(
            first.exit,
            Exit::Code(0),
            "{module} on {}: stderr: {}",
            event.display(),
            first.stderr_text()
        );
        let second = runner.run(&envelope, &limits);
        assert_eq!(
            first.stdout,
            second.stdout,
            "{module} on {}: output differs between runs",
            event.display()
        );
        let golden = golden_path(golden_dir, event);
        if bless() {
            std::fs::create_dir_all(golden.parent().expect("golden dir"))
                .expect("create golden dir");
            std::fs::write(&golden, &first.stdout).expect("write golden");
            continue;
        }
        match std::fs::read(&golden) {
            Ok(expected) if expected == first.stdout => {}
            Ok(expected) => mismatches.push(format!(
                "{}:\n  expected: {}\n  actual:   {}",
                golden.display(),
                String::from_utf8_lossy(&expected).trim_end(),
                String::from_utf8_lossy(&first.stdout).trim_end()
            )),
            Err(err) => mismatches.push(format!("{}: {err}", golden.display())),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{module}: {} of {} events differ from their goldens (XXFUNC_BLESS=1 rewrites them):\n{}",
        mismatches.len(),
        events.len(),
        mismatches.join("\n")
    );
}

#[test]
fn golden_hello() {
    check_module("hello");
}

#[test]
fn golden_hello_async_matches_hello() {
    check_module("hello-async");
    for event in fixture_events() {
        let a = std::fs::read(golden_path("hello", &event));
        let b = std::fs::read(golden_path("hello-async", &event));
        if let (Ok(a), Ok(b)) = (a, b) {
            assert_eq!(
                a,
                b,
                "hello-async differs from hello on {}",
                event.display()
            );
        }
    }
}

#[test]
fn golden_hello_raw() {
    check_module("hello-raw");
}

/// The function exactly as the original xxfunc documented it (`#![no_main]`, raw
/// `async fn main(data: &[u8])`), and the same without `#![no_main]`: both print the
/// same bytes on every event.
#[test]
fn golden_hello_upstream_with_and_without_no_main() {
    check_module("hello-upstream");
    check_module_against("hello-upstream-main", "hello-upstream");
}

#[test]
fn golden_erc20_transfers() {
    check_module("erc20-transfers");
}

/// Every example package has goldens for every event (or is the misbehave package).
#[test]
fn golden_every_example_is_covered() {
    let events = fixture_events();
    for package in example_packages() {
        if package == "misbehave" {
            continue;
        }
        if STATE_MODULES.contains(&package.as_str()) {
            let imports = crate::state::xxfunc_imports(&package);
            assert!(
                !imports.is_empty(),
                "{package:?} is listed as reading state but imports no xxfunc state call"
            );
        } else {
            assert!(
                GOLDEN_MODULES.contains(&package.as_str()),
                "example {package:?} has no golden test; add it to GOLDEN_MODULES in {}",
                file!()
            );
        }
        if bless() {
            continue;
        }
        let dir = fixtures_dir().join("golden").join(&package);
        let goldens = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert_eq!(
            goldens,
            events.len(),
            "{}: {goldens} goldens for {} events; scripts/record-fixtures blesses every example",
            dir.display(),
            events.len()
        );
    }
}
