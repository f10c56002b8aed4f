//! The examples under a WASI runtime that is not wasmtime: Node.js's built-in `node:wasi`,
//! calling `_start` with no extra flags or exports, stdin = the fixture envelope. Its stdout
//! must equal the golden. Skipped with a message where `node` is not installed.

use std::path::Path;
use std::process::Command;

use xxfunc_guest_modules::{fixture_events, fixtures_dir, module_path};

/// Runs one module on each event given, stdout of event `i` into `<out>/<i>.out`, and
/// prints `<i> <exit code>` per event.
const RUN_WASI: &str = r#"
import { readFileSync, openSync, closeSync } from 'node:fs';
import { WASI } from 'node:wasi';
const [wasmPath, outDir, ...events] = process.argv.slice(1);
const module = await WebAssembly.compile(readFileSync(wasmPath));
events.forEach((event, i) => {
  const stdin = openSync(event, 'r');
  const stdout = openSync(`${outDir}/${i}.out`, 'w');
  const wasi = new WASI({ version: 'preview1', args: ['main'], env: {}, stdin, stdout, stderr: 2, returnOnExit: true });
  const instance = new WebAssembly.Instance(module, wasi.getImportObject());
  const code = wasi.start(instance);
  closeSync(stdin); closeSync(stdout);
  console.log(`${i} ${code}`);
});
"#;

fn node_available() -> bool {
    Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn check_under_node(module: &str, golden_dir: &str) {
    let events = fixture_events();
    assert!(
        !events.is_empty(),
        "no fixture events; run scripts/record-fixtures"
    );
    let out = tempfile::tempdir().expect("temp dir");
    let run = Command::new("node")
        .args(["--no-warnings", "--input-type=module", "-e", RUN_WASI])
        .arg(module_path(module))
        .arg(out.path())
        .args(&events)
        .output()
        .expect("running node");
    assert!(
        run.status.success(),
        "node failed on {module}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let exits = String::from_utf8_lossy(&run.stdout);
    let exits: Vec<&str> = exits.lines().collect();
    assert_eq!(
        exits.len(),
        events.len(),
        "{module}: one exit code per event"
    );
    for (i, event) in events.iter().enumerate() {
        assert_eq!(
            exits[i],
            format!("{i} 0"),
            "{module} on {}",
            event.display()
        );
        let got = std::fs::read(out.path().join(format!("{i}.out"))).expect("output file");
        let want = std::fs::read(golden(golden_dir, event)).expect("golden output");
        assert!(
            got == want,
            "{module} on {} under node:wasi differs from its golden",
            event.display()
        );
    }
}

fn golden(dir: &str, event: &Path) -> std::path::PathBuf {
    let stem = event
        .file_stem()
        .expect("event file name")
        .to_string_lossy();
    fixtures_dir()
        .join("golden")
        .join(dir)
        .join(format!("{stem}.out"))
}

#[test]
fn upstream_functions_run_under_node_wasi() {
    if !node_available() {
        eprintln!("skipping: node is not installed (the stock-runtime check uses node:wasi)");
        return;
    }
    check_under_node("hello-upstream", "hello-upstream");
    check_under_node("hello-upstream-main", "hello-upstream");
    check_under_node("erc20-transfers", "erc20-transfers");
}
