//! The module cache: memory hit, disk hit, miss, stale fingerprint, corrupt
//! or truncated artifact, wrong bytes, unlinkable module.

use std::sync::Arc;

use xxfunc_runner::{Limits, LoadedFrom, ModuleCache, RunnerError, WasmEngine};
use xxfunc_store::ModuleHash;

use crate::chain::{self, wasm};

fn cache(dir: &std::path::Path, limits: Limits) -> ModuleCache {
    ModuleCache::new(
        Arc::new(WasmEngine::new(limits, 2).expect("engine")),
        Some(dir),
    )
}

#[test]
fn memory_then_disk_then_recompile_on_damage() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wasm(chain::ECHO_MAGIC);
    let hash = ModuleHash::of(&bytes);
    let fetch = || Ok(bytes.clone());

    let first = cache(dir.path(), Limits::default());
    assert_eq!(first.load(&hash, fetch).unwrap().1, LoadedFrom::Compiled);
    assert_eq!(
        first
            .load(&hash, || panic!("memory hit must not fetch"))
            .unwrap()
            .1,
        LoadedFrom::Memory
    );
    let path = first.artifact_path(&hash).unwrap();
    assert!(path.is_file());

    // A restarted runner loads the artifact without fetching or compiling.
    let second = cache(dir.path(), Limits::default());
    assert_eq!(
        second
            .load(&hash, || panic!("disk hit must not fetch"))
            .unwrap()
            .1,
        LoadedFrom::Disk
    );

    // Flip one payload byte: detected, discarded, rebuilt.
    let mut file = std::fs::read(&path).unwrap();
    let last = file.len() - 1;
    file[last] ^= 0xff;
    std::fs::write(&path, &file).unwrap();
    let third = cache(dir.path(), Limits::default());
    assert_eq!(third.load(&hash, fetch).unwrap().1, LoadedFrom::Compiled);
    assert_eq!(third.stats().discarded, 1);

    // Truncate it: same.
    let file = std::fs::read(&path).unwrap();
    std::fs::write(&path, &file[..file.len() / 2]).unwrap();
    let fourth = cache(dir.path(), Limits::default());
    assert_eq!(fourth.load(&hash, fetch).unwrap().1, LoadedFrom::Compiled);
    assert_eq!(fourth.stats().discarded, 1);
    let fifth = cache(dir.path(), Limits::default());
    assert_eq!(
        fifth
            .load(&hash, || panic!("rebuilt artifact is whole"))
            .unwrap()
            .1,
        LoadedFrom::Disk
    );
}

#[test]
fn a_different_engine_never_loads_a_stale_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = wasm(chain::ECHO_MAGIC);
    let hash = ModuleHash::of(&bytes);
    let plain = cache(dir.path(), Limits::default());
    plain.load(&hash, || Ok(bytes.clone())).unwrap();
    let fueled = cache(
        dir.path(),
        Limits {
            fuel: Some(1_000_000),
            ..Limits::default()
        },
    );
    assert_ne!(plain.artifact_path(&hash), fueled.artifact_path(&hash));
    assert_eq!(
        fueled.load(&hash, || Ok(bytes.clone())).unwrap().1,
        LoadedFrom::Compiled
    );

    // Even an artifact of the other engine copied under this engine's key
    // (valid checksum, wrong engine) is refused by wasmtime and rebuilt.
    let foreign = std::fs::read(fueled.artifact_path(&hash).unwrap()).unwrap();
    std::fs::write(plain.artifact_path(&hash).unwrap(), foreign).unwrap();
    let again = cache(dir.path(), Limits::default());
    assert_eq!(
        again.load(&hash, || Ok(bytes.clone())).unwrap().1,
        LoadedFrom::Compiled
    );
    assert_eq!(again.stats().discarded, 1);
}

#[test]
fn wrong_bytes_and_unlinkable_modules_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = cache(dir.path(), Limits::default());
    let good = wasm(chain::ECHO_MAGIC);
    let other = wasm(chain::LOOP);
    let err = c
        .load(&ModuleHash::of(&good), || Ok(other.clone()))
        .unwrap_err();
    assert!(
        matches!(err, RunnerError::ModuleHashMismatch { .. }),
        "{err}"
    );

    let bad = wasm(chain::BAD_IMPORT);
    let err = c
        .load(&ModuleHash::of(&bad), || Ok(bad.clone()))
        .unwrap_err();
    assert!(matches!(err, RunnerError::ModuleLoad { .. }), "{err}");
    assert!(err.to_string().contains("env"), "{err}");

    let garbage = b"\0asm not really".to_vec();
    let err = c
        .load(&ModuleHash::of(&garbage), || Ok(garbage.clone()))
        .unwrap_err();
    assert!(matches!(err, RunnerError::ModuleLoad { .. }), "{err}");
}

/// A module's compiled code leaves memory once no function runs it (stop, redeploy to
/// another hash); the artifact stays on disk, so starting it again compiles nothing.
#[test]
fn stop_and_redeploy_evict_compiled_code_that_no_function_runs() {
    use xxfunc_api::{DesiredState, FunctionSpec, StartFrom};
    use xxfunc_runner::test_utils::Harness;

    let mut h = Harness::new().unwrap();
    let v1 = wasm(chain::ECHO_MAGIC);
    let v2 = wasm(&chain::ECHO_MAGIC.replace(
        "(memory (export \"memory\") 1)",
        "(memory (export \"memory\") 2)",
    ));
    assert_ne!(v1, v2);
    let (h1, h2) = (h.put_module(&v1).unwrap(), h.put_module(&v2).unwrap());
    let spec = |id: &str, hash: ModuleHash, desired: DesiredState| FunctionSpec {
        id: id.parse().unwrap(),
        hash,
        desired,
        start: StartFrom::Head,
        start_generation: 1,
        sinks: Vec::new(),
    };
    h.runner_mut()
        .apply(&spec("a", h1, DesiredState::Started))
        .unwrap();
    h.runner_mut()
        .apply(&spec("b", h1, DesiredState::Started))
        .unwrap();
    assert_eq!(h.runner().cache().len(), 1, "one module, two functions");
    assert_eq!(h.runner().cache().stats().compiles, 1);

    // `a` moves to v2: v1 stays, `b` runs it.
    h.runner_mut()
        .apply(&spec("a", h2, DesiredState::Started))
        .unwrap();
    assert_eq!(h.runner().cache().len(), 2);
    // `b` stops: nothing runs v1 any more.
    h.runner_mut()
        .apply(&spec("b", h1, DesiredState::Stopped))
        .unwrap();
    assert_eq!(h.runner().cache().len(), 1, "v1 evicted");
    // Removed from the registry altogether: v2 goes too.
    h.runner_mut().remove(&"a".parse().unwrap()).unwrap();
    assert!(h.runner().cache().is_empty(), "v2 evicted");

    // Starting v1 again reads its artifact: no compile.
    let before = h.runner().cache().stats();
    h.runner_mut()
        .apply(&spec("b", h1, DesiredState::Started))
        .unwrap();
    let after = h.runner().cache().stats();
    assert_eq!(after.compiles, before.compiles, "nothing compiled again");
    assert_eq!(after.disk_hits, before.disk_hits + 1, "loaded from disk");
    assert_eq!(h.runner().cache().len(), 1);
}

/// A module of its own hash: `_start` does nothing, `n` names a second export.
fn numbered(n: u32) -> Vec<u8> {
    wasm(&format!(
        r#"(module (memory (export "memory") 1) (func (export "_start")) (func (export "f{n}")))"#
    ))
}

#[test]
fn artifacts_past_the_budget_are_evicted_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let modules: Vec<(Vec<u8>, ModuleHash)> = (0..4)
        .map(|n| {
            let bytes = numbered(n);
            let hash = ModuleHash::of(&bytes);
            (bytes, hash)
        })
        .collect();
    // One artifact's size decides the budget: room for two and a half.
    let probe_dir = tempfile::tempdir().unwrap();
    let probe = cache(probe_dir.path(), Limits::default());
    let (bytes, hash) = &modules[0];
    probe.load(hash, || Ok(bytes.clone())).unwrap();
    let size = std::fs::metadata(probe.artifact_path(hash).unwrap())
        .unwrap()
        .len();
    let budget = size * 5 / 2;
    let open = || cache(dir.path(), Limits::default()).with_artifact_budget(budget);
    let on_disk = |c: &ModuleCache| -> Vec<bool> {
        modules
            .iter()
            .map(|(_, h)| c.artifact_path(h).unwrap().is_file())
            .collect()
    };

    // 0 and 1 compiled by one runner; a restarted one uses 0 from disk (so 1 is the
    // least recently used), drops it from memory, then compiles 2: 1 goes.
    let first = open();
    for (bytes, hash) in &modules[..2] {
        first.load(hash, || Ok(bytes.clone())).unwrap();
    }
    assert_eq!(on_disk(&first), [true, true, false, false]);
    drop(first);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = open();
    let (_, h0) = &modules[0];
    assert_eq!(
        second.load(h0, || panic!("on disk: no fetch")).unwrap().1,
        LoadedFrom::Disk
    );
    second.forget(h0);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let (bytes, hash) = &modules[2];
    second.load(hash, || Ok(bytes.clone())).unwrap();
    assert_eq!(on_disk(&second), [true, false, true, false]);
    assert_eq!(second.stats().evicted, 1);

    // A module in memory is never evicted: with 2 and 0 loaded, compiling 3 leaves
    // the directory over budget rather than delete what is in use.
    second.load(h0, || panic!("on disk: no fetch")).unwrap();
    let (bytes, hash) = &modules[3];
    second.load(hash, || Ok(bytes.clone())).unwrap();
    assert_eq!(on_disk(&second), [true, false, true, true]);
    assert_eq!(second.stats().evicted, 1);

    // An evicted module compiles again when it is needed.
    let (bytes, hash) = &modules[1];
    assert_eq!(
        second.load(hash, || Ok(bytes.clone())).unwrap().1,
        LoadedFrom::Compiled
    );
}
