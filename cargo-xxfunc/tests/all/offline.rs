//! The whole journey with no server: local store and registry under `.xxfunc`,
//! fixture replay through the real runner.

use std::path::Path;

use serde_json::Value;
use xxfunc_registry::Registry;
use xxfunc_service::{Service, ServiceOptions};
use xxfunc_store::{ModuleHash, ModuleStore};

use crate::util::{block_on, code, fixture_events, new_function, tiny_module, xx};

fn file_store(dir: &Path) -> ModuleStore {
    let url = url::Url::from_directory_path(dir).unwrap().to_string();
    ModuleStore::open(&url).unwrap()
}

#[test]
fn offline_journey() {
    let Some(events) = fixture_events() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let krate = new_function(tmp.path(), "transfers");

    // deploy: only the hash on stdout.
    let out = xx(&krate, &["deploy", "--offline"], code::OK);
    let h1 = out.stdout.trim().to_string();
    assert_eq!(
        out.stdout,
        format!("{h1}\n"),
        "deploy prints exactly the hash"
    );
    let h1_hash: ModuleHash = h1.parse().unwrap();
    assert!(
        out.stderr.contains("Deployed transfers v1"),
        "{}",
        out.stderr
    );
    assert!(krate.join(".xxfunc/registry").is_dir() && krate.join(".xxfunc/modules").is_dir());
    // Deploying the same bytes again is idempotent.
    let again = xx(&krate, &["deploy", "--offline", "--json"], code::OK).json();
    assert_eq!(
        (again["hash"].as_str(), again["version"].as_u64()),
        (Some(h1.as_str()), Some(1))
    );

    // start by a hash prefix: the module runs as a function identified by its hash.
    let prefix = h1_hash.short(12);
    let started = xx(&krate, &["start", &prefix, "--offline", "--json"], code::OK).json();
    assert_eq!(started["id"], h1);
    assert_eq!(started["desired"], "started");

    // Replay the fixtures through the embedded runner: outputs appear.
    let out = xx(&krate, &["dev", "--once"], code::OK);
    assert!(
        out.stdout.contains("  out | {") && out.stdout.contains("\"op\":\"insert\""),
        "replay prints the outputs:\n{}",
        out.stdout
    );
    let logs = xx(
        &krate,
        &["logs", &prefix, "--offline", "--json", "-n", "1000"],
        code::OK,
    )
    .json_lines();
    assert_eq!(logs.len(), events.len(), "one invocation per fixture event");
    assert!(
        logs.iter()
            .all(|r| r["status"] == "ok" && r["id"] == h1.as_str())
    );
    assert!(
        logs.iter()
            .any(|r| r["stdout"].as_str().unwrap().contains("\"op\":\"insert\""))
    );
    let outputs = xx(
        &krate,
        &["logs", &h1, "--offline", "--outputs", "-n", "1000"],
        code::OK,
    );
    for line in outputs.stdout.lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert!(
            record["op"] == "insert" || record["op"] == "retract",
            "{line}"
        );
    }

    // status: desired and observed state, cursor at the replayed head, counters.
    let status = xx(&krate, &["status", &h1, "--offline", "--json"], code::OK).json();
    assert_eq!(status["desired"], "started");
    // The replay has ended, so nothing runs it now: the runner's last report says so.
    assert_eq!(status["observed"]["state"], "stopped");
    assert_eq!(status["reported"]["runner"], "dev", "{status}");
    assert_eq!(
        status["counters"]["invocations"].as_u64().unwrap() as usize,
        events.len()
    );
    assert_eq!(status["counters"]["failures"], 0);
    assert!(status["cursor"]["number"].as_u64().is_some(), "{status}");
    let table = xx(&krate, &["status", "--offline"], code::OK).stdout;
    let header = table.lines().next().unwrap();
    for col in [
        "FUNCTION",
        "DESIRED",
        "OBSERVED",
        "CURSOR",
        "CALLS",
        "LAST ERROR",
    ] {
        assert!(header.contains(col), "{table}");
    }
    assert!(
        table.contains(&format!("blake3:{}", h1_hash.short(12))),
        "{table}"
    );

    // stop.
    let stopped = xx(&krate, &["stop", &h1, "--offline", "--json"], code::OK).json();
    assert_eq!(stopped["desired"], "stopped");

    // pin the name, deploy a new version: the name keeps running the old hash.
    let pin = xx(
        &krate,
        &["pin", "transfers", "--offline", "--json"],
        code::OK,
    )
    .json();
    assert_eq!(
        (pin["hash"].as_str(), pin["pinned"].as_bool()),
        (Some(h1.as_str()), Some(true))
    );
    let v2_path = tmp.path().join("v2.wasm");
    std::fs::write(&v2_path, xxfunc_guest_modules::module_bytes("hello")).unwrap();
    let v2 = xx(
        &krate,
        &[
            "deploy",
            "--offline",
            "--json",
            v2_path.to_str().unwrap(),
            "--name",
            "transfers",
        ],
        code::OK,
    )
    .json();
    let h2 = crate::util::pinned_redeploy(&v2, &h1);
    let named = xx(
        &krate,
        &["status", "transfers", "--offline", "--json"],
        code::OK,
    )
    .json();
    assert_eq!(named["hash"], h1, "a pinned name keeps its hash");
    assert_eq!(named["version"], 2);
    assert_eq!(named["versions"].as_array().unwrap().len(), 2);
    let list = xx(&krate, &["list", "--offline", "--json"], code::OK).json_lines();
    assert_eq!(
        list.iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["transfers", h1.as_str()]
    );

    // gc keeps everything referenced, removes only the orphan.
    let store = file_store(&krate.join(".xxfunc/modules"));
    let orphan = block_on(store.put(tiny_module(7))).unwrap().hash;
    let dry = xx(
        &krate,
        &["gc", "--dry-run", "--offline", "--json"],
        code::OK,
    )
    .json();
    assert_eq!(dry["removed"], serde_json::json!([orphan.to_string()]));
    assert_eq!(dry["dry_run"], true);
    assert!(
        block_on(store.contains(&orphan)).unwrap(),
        "--dry-run removes nothing"
    );
    let out = xx(&krate, &["gc", "--offline"], code::OK);
    assert_eq!(out.stdout.trim(), orphan.to_string());
    let left = block_on(store.list()).unwrap();
    assert!(
        left.contains(&h1_hash) && left.contains(&h2.parse().unwrap()) && !left.contains(&orphan),
        "{left:?}"
    );

    // unpin: the name runs its current version again.
    xx(&krate, &["unpin", "transfers", "--offline"], code::OK);
    let named = xx(
        &krate,
        &["status", "transfers", "--offline", "--json"],
        code::OK,
    )
    .json();
    assert_eq!(
        (named["hash"].as_str(), named["pinned"].as_bool()),
        (Some(h2.as_str()), Some(false))
    );
}

/// The gc grace period holds across processes: a module uploaded through the service
/// by another process (as a gateway does before the bind) survives an offline `gc` in a
/// new process, while bytes put into the store behind the service's back do not.
#[test]
fn offline_gc_spares_a_fresh_upload_from_another_process() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let modules = file_store(&data.join("modules"));
    let fresh = block_on(async {
        let registry = Registry::open(data.join("registry")).unwrap();
        let service = Service::new(registry, modules.clone(), ServiceOptions::default());
        service.upload(tiny_module(21)).await.unwrap().hash
    });
    let foreign = block_on(modules.put(tiny_module(22))).unwrap().hash;
    let data_arg = data.to_str().unwrap();
    let gc = xx(
        tmp.path(),
        &["gc", "--offline", "--data-dir", data_arg, "--json"],
        code::OK,
    )
    .json();
    assert_eq!(gc["removed"], serde_json::json!([foreign.to_string()]));
    assert_eq!(gc["kept"], 1);
    assert!(block_on(modules.contains(&fresh)).unwrap());
    assert!(!block_on(modules.contains(&foreign)).unwrap());
}
