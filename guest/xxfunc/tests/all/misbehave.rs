//! The misbehaving modules build and misbehave as named under plain wasmtime with the
//! runner's default limits (64 MiB memory, 1 MiB stdout). The runner's own tests check
//! its reactions; here we check the modules are what they claim.

use crate::wasm::{Exit, Limits, Outcome, Runner};
use xxfunc_guest_modules::{fixture_events, module_bytes, repo_root};

const MODULES: &[&str] = &[
    "misbehave-exit",
    "misbehave-loop",
    "misbehave-memory",
    "misbehave-panic",
    "misbehave-sleep",
    "misbehave-stdout",
    "misbehave-trap",
];

fn envelope() -> Vec<u8> {
    let first = fixture_events()
        .into_iter()
        .next()
        .expect("fixture events exist");
    std::fs::read(first).expect("fixture readable")
}

fn run(module: &str, limits: Limits) -> Outcome {
    let runner = Runner::new(&module_bytes(module), limits.fuel.is_some());
    runner.run(&envelope(), &limits)
}

fn assert_trap(outcome: &Outcome, what: &str, needle: &str) {
    match &outcome.exit {
        Exit::Trap(message) => assert!(
            message.contains(needle),
            "{what}: trap {message:?} should mention {needle:?}; stderr: {}",
            outcome.stderr_text()
        ),
        other => panic!(
            "{what}: expected a trap, got {other:?}; stderr: {}",
            outcome.stderr_text()
        ),
    }
}

#[test]
fn misbehave_modules_are_exactly_these() {
    let bins = repo_root().join("guest/examples/misbehave/src/bin");
    let mut found: Vec<String> = std::fs::read_dir(&bins)
        .expect("misbehave bins")
        .map(|e| {
            e.expect("entry")
                .path()
                .file_stem()
                .expect("stem")
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    found.sort();
    assert_eq!(found, MODULES, "every misbehave module needs a test here");
}

#[test]
fn misbehave_exit_exits_3() {
    let outcome = run("misbehave-exit", Limits::default());
    assert_eq!(outcome.exit, Exit::Code(3));
    assert!(outcome.stderr_text().contains("exiting with code 3"));
    assert!(outcome.stdout.is_empty());
}

#[test]
fn misbehave_panic_exits_101_with_message() {
    let outcome = run("misbehave-panic", Limits::default());
    assert_eq!(outcome.exit, Exit::Code(xxfunc::EXIT_PANIC));
    assert!(
        outcome
            .stderr_text()
            .contains("deliberate panic on block 1"),
        "{}",
        outcome.stderr_text()
    );
}

#[test]
fn misbehave_trap_traps() {
    let outcome = run("misbehave-trap", Limits::default());
    assert_trap(&outcome, "misbehave-trap", "unreachable");
}

#[test]
fn misbehave_loop_runs_until_stopped() {
    // Fuel stands in for the runner's wall-time limit: deterministic, no timing.
    let outcome = run(
        "misbehave-loop",
        Limits {
            fuel: Some(200_000_000),
            ..Limits::default()
        },
    );
    assert_trap(&outcome, "misbehave-loop", "fuel");
    assert!(outcome.stderr_text().contains("spinning forever"));
}

#[test]
fn misbehave_memory_grows_until_the_limit() {
    let outcome = run("misbehave-memory", Limits::default());
    assert_trap(&outcome, "misbehave-memory", "unreachable");
    let stderr = outcome.stderr_text();
    assert!(
        stderr.contains("holding 48 MiB") && !stderr.contains("holding 64 MiB"),
        "{stderr}"
    );
    assert!(stderr.contains("memory allocation"), "{stderr}");
}

#[test]
fn misbehave_stdout_hits_the_output_cap() {
    let outcome = run("misbehave-stdout", Limits::default());
    assert_ne!(
        outcome.exit,
        Exit::Code(0),
        "writing 64 MiB into a 1 MiB cap must fail"
    );
    assert!(outcome.stdout.len() <= 1 << 20);
    // With room for it, the module really writes 64 MiB.
    let full = run(
        "misbehave-stdout",
        Limits {
            stdout: 65 << 20,
            ..Limits::default()
        },
    );
    assert_eq!(full.exit, Exit::Code(0), "{}", full.stderr_text());
    assert_eq!(full.stdout.len(), 64 << 20);
}

#[test]
fn misbehave_sleep_asks_the_host_to_sleep() {
    // A stock runtime would really sleep 60 s; the runner answers on its virtual clock.
    // Here: the module exists and its sleep goes through WASI `poll_oneoff`.
    let runner = Runner::new(&module_bytes("misbehave-sleep"), false);
    let imports: Vec<String> = runner
        .module()
        .imports()
        .map(|i| format!("{}::{}", i.module(), i.name()))
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i == "wasi_snapshot_preview1::poll_oneoff"),
        "imports: {imports:?}"
    );
}
