//! `new` makes a crate that builds, validates and passes its own test unedited.

use std::process::Command;

use xxfunc_store::ModuleHash;

use crate::util::{code, fixture_events, function_target_dir, new_function, run, xx};

#[test]
fn new_crate_builds_and_passes_its_test() {
    if fixture_events().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = xx(dir.path(), &["new", "my-transfers", "--json"], code::OK);
    let created = out.json();
    let krate = dir.path().join("my-transfers");
    assert_eq!(created["name"], "my-transfers");
    assert!(created["fixtures"].as_u64().unwrap() > 0, "{created}");
    // The recorded chain state comes along, so state reads answer offline.
    let repo_state = xxfunc_guest_modules::fixtures_dir().join("state");
    let count = |d: &std::path::Path| std::fs::read_dir(d).map_or(0, |r| r.count() as u64);
    assert_eq!(created["state_blocks"].as_u64(), Some(count(&repo_state)));
    assert!(count(&repo_state) > 0);
    assert_eq!(count(&krate.join("fixtures/state")), count(&repo_state));
    for file in [
        "Cargo.toml",
        ".cargo/config.toml",
        "src/main.rs",
        "README.md",
        ".gitignore",
    ] {
        assert!(krate.join(file).is_file(), "{file} missing");
    }
    // The crate's own test, natively, with plain cargo and no edits.
    let test = run(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["test", "--quiet"])
            .current_dir(&krate)
            .env("CARGO_TARGET_DIR", function_target_dir())
            .env_remove("RUSTFLAGS"),
    );
    assert_eq!(
        test.code, 0,
        "cargo test in the new crate failed:\n{}\n{}",
        test.stdout, test.stderr
    );
    assert!(test.stdout.contains("1 passed"), "{}", test.stdout);

    // build: path, size and hash of a valid module, on stdout.
    let out = xx(&krate, &["build"], code::OK);
    let fields: Vec<(&str, &str)> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .map(|(k, v)| (k, v.trim()))
        .collect();
    let path = fields
        .iter()
        .find(|(k, _)| *k == "path")
        .expect("path line")
        .1;
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        fields.iter().find(|(k, _)| *k == "size").unwrap().1,
        bytes.len().to_string()
    );
    assert_eq!(
        fields.iter().find(|(k, _)| *k == "hash").unwrap().1,
        ModuleHash::of(&bytes).to_string()
    );
    assert!(out.stderr.contains("valid xxfunc module"), "{}", out.stderr);

    // --json carries the same facts (read the file again: the SDK may have been rebuilt meanwhile).
    let json = xx(&krate, &["build", "--json"], code::OK).json();
    let bytes = std::fs::read(json["path"].as_str().unwrap()).unwrap();
    assert_eq!(json["hash"], ModuleHash::of(&bytes).to_string());
    assert_eq!(json["size"], bytes.len() as u64);
    assert_eq!(json["package"], "my-transfers");
    assert!(
        json["exports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "_start")
    );

    // The function through the runner on the fixtures: passes with no goldens, then blesses them, then matches.
    let out = xx(&krate, &["test"], code::OK);
    assert!(out.stderr.contains("no golden files"), "{}", out.stderr);
    xx(&krate, &["test", "--bless"], code::OK);
    let out = xx(&krate, &["test", "--json"], code::OK);
    let lines = out.json_lines();
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["passed"], true);
    assert_eq!(summary["differs"], 0);
    assert_eq!(
        summary["events"].as_u64().unwrap() as usize,
        lines.len() - 1
    );
    assert!(
        lines[..lines.len() - 1]
            .iter()
            .all(|l| l["type"] == "event" && l["golden"] == "match" && l["status"] == "ok")
    );

    // A golden that disagrees fails the test with its own exit code and a diff.
    let golden_dir = krate.join("fixtures/golden/my-transfers");
    let first = std::fs::read_dir(&golden_dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .min()
        .unwrap();
    std::fs::write(&first, "{\"tampered\":true}\n").unwrap();
    let out = xx(&krate, &["test"], 13);
    assert!(
        out.stderr.contains("differ") && out.stderr.contains("--bless"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("-{\"tampered\":true}"),
        "a diff is shown: {}",
        out.stderr
    );

    // A function that reads state, written into the new crate, runs on its copied state.
    std::fs::write(
        krate.join("src/main.rs"),
        r#"use xxfunc::{Event, erc20};

#[xxfunc::main]
fn main(event: Event) -> xxfunc::Result<()> {
    for t in erc20::Transfer::all(&event)? {
        let balance = erc20::balance_of(&event.state(), t.token, t.to)?;
        xxfunc::emit(&xxfunc::json!({ "to": t.to, "balance": balance.to_string() }))?;
    }
    Ok(())
}
"#,
    )
    .unwrap();
    std::fs::remove_dir_all(&golden_dir).unwrap();
    let out = xx(&krate, &["test", "--bless"], code::OK);
    assert!(!out.stderr.contains("unavailable"), "{}", out.stderr);
    let blessed: String = std::fs::read_dir(&golden_dir)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(blessed.contains("\"balance\""), "{blessed}");
}

#[test]
fn new_refuses_bad_names_and_existing_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let out = xx(dir.path(), &["new", "Bad Name"], code::USAGE);
    assert!(
        out.stderr.contains("invalid function name"),
        "{}",
        out.stderr
    );
    new_function(dir.path(), "taken");
    let out = xx(dir.path(), &["new", "taken"], code::USAGE);
    assert!(out.stderr.contains("already exists"), "{}", out.stderr);
    let out = xx(
        dir.path(),
        &["new", "x", "--sdk-path", "/nonexistent"],
        code::USAGE,
    );
    assert!(out.stderr.contains("XXFUNC_SDK_PATH"), "{}", out.stderr);
}

/// A function that reads chain state, tested on fixtures recorded without `state/`: the
/// replay ends (its reads answer "state unavailable", so nothing is recorded and nothing
/// hangs) and the test fails with its own exit code, saying which directory is missing.
#[test]
fn state_reads_without_recorded_state_fail_naming_the_missing_directory() {
    let Some(events) = fixture_events() else {
        return;
    };
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../guest/examples/erc20-balances")
        .canonicalize()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir_all(fixtures.join("events")).unwrap();
    for event in &events {
        std::fs::copy(
            event,
            fixtures.join("events").join(event.file_name().unwrap()),
        )
        .unwrap();
    }
    let fixtures_arg = fixtures.to_str().unwrap();
    let out = xx(&example, &["test", "--fixtures", fixtures_arg], 13);
    assert!(
        out.stderr.contains("state unavailable")
            && out.stderr.contains("state/")
            && out.stderr.contains(fixtures_arg),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("none recorded with these fixtures"),
        "{}",
        out.stderr
    );
}
