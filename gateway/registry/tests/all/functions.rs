use xxfunc_api::{DesiredState, FunctionId, StartFrom};
use xxfunc_registry::{Registry, RegistryError};

use crate::{hash, name, named, open};

#[test]
fn bind_records_versions_and_is_idempotent() {
    let (_dir, reg) = open();
    let n = name("hello");
    let b1 = reg.bind(&n, hash("v1")).unwrap();
    assert_eq!((b1.version, b1.hash, b1.pinned), (1, hash("v1"), false));
    // Same hash again: no new version.
    assert_eq!(reg.bind(&n, hash("v1")).unwrap().version, 1);
    assert_eq!(reg.bind(&n, hash("v2")).unwrap().version, 2);
    // Rolling back to an old hash is a new version.
    assert_eq!(reg.bind(&n, hash("v1")).unwrap().version, 3);

    let view = reg.function(&named("hello")).unwrap();
    assert_eq!(view.hash, hash("v1"));
    assert_eq!(view.version, Some(3));
    let history: Vec<_> = view.versions.iter().map(|v| (v.version, v.hash)).collect();
    assert_eq!(history, [(1, hash("v1")), (2, hash("v2")), (3, hash("v1"))]);
    assert_eq!(view.desired, DesiredState::Stopped);
    assert_eq!(view.observed, None);

    let binding = reg.lookup_name(&n).unwrap().unwrap();
    assert_eq!(
        (binding.current, binding.version, binding.pinned),
        (hash("v1"), 3, None)
    );
    assert!(reg.lookup_name(&name("other")).unwrap().is_none());
}

#[test]
fn start_stop_by_name_and_hash() {
    let (_dir, reg) = open();
    reg.bind(&name("a"), hash("a")).unwrap();

    let spec = reg.start(&named("a"), StartFrom::Head).unwrap();
    assert_eq!(
        (spec.desired, spec.start, spec.start_generation),
        (DesiredState::Started, StartFrom::Head, 1)
    );
    // Starting again from the head changes nothing.
    assert_eq!(
        reg.start(&named("a"), StartFrom::Head)
            .unwrap()
            .start_generation,
        1
    );
    // A backfill is a new start.
    let spec = reg.start(&named("a"), StartFrom::Block(7)).unwrap();
    assert_eq!(
        (spec.start, spec.start_generation),
        (StartFrom::Block(7), 2)
    );
    let spec = reg.stop(&named("a")).unwrap();
    assert_eq!(
        (spec.desired, spec.start_generation),
        (DesiredState::Stopped, 2)
    );
    assert_eq!(
        reg.stop(&named("a")).unwrap().desired,
        DesiredState::Stopped
    );

    // A hash identity is created by start and is distinct from the name.
    let hid = FunctionId::Hash(hash("a"));
    assert!(matches!(
        reg.function(&hid),
        Err(RegistryError::FunctionNotFound { .. })
    ));
    assert!(matches!(
        reg.stop(&hid),
        Err(RegistryError::FunctionNotFound { .. })
    ));
    let spec = reg.start(&hid, StartFrom::Head).unwrap();
    assert_eq!(
        (spec.hash, spec.desired),
        (hash("a"), DesiredState::Started)
    );
    let view = reg.function(&hid).unwrap();
    assert_eq!(
        (view.name, view.version, view.versions.len()),
        (None, None, 0)
    );

    let ids: Vec<_> = reg.list().unwrap().into_iter().map(|v| v.id).collect();
    assert_eq!(ids, [named("a"), hid]);
}

#[test]
fn unknown_names_are_not_found_and_change_nothing() {
    let (_dir, reg) = open();
    for result in [
        reg.start(&named("ghost"), StartFrom::Head).map(drop),
        reg.stop(&named("ghost")).map(drop),
        reg.pin(&named("ghost")).map(drop),
        reg.unpin(&named("ghost")).map(drop),
        reg.function(&named("ghost")).map(drop),
        reg.logs(&named("ghost"), 10).map(drop),
    ] {
        let err = result.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(err.to_string().contains("ghost"), "{err}");
    }
    assert_eq!(reg.feed_head(), 0);
    assert!(reg.list().unwrap().is_empty());
}

#[test]
fn pinned_names_stay_on_their_hash() {
    let (_dir, reg) = open();
    let n = name("p");
    reg.bind(&n, hash("1")).unwrap();
    let pin = reg.pin(&named("p")).unwrap();
    assert_eq!((pin.hash, pin.pinned), (hash("1"), true));
    let b = reg.bind(&n, hash("2")).unwrap();
    assert_eq!((b.version, b.pinned), (2, true));
    let view = reg.function(&named("p")).unwrap();
    assert_eq!(
        (view.hash, view.version, view.pinned),
        (hash("1"), Some(2), true)
    );
    assert_eq!(reg.snapshot().unwrap().functions[0].hash, hash("1"));

    let unpin = reg.unpin(&named("p")).unwrap();
    assert_eq!((unpin.hash, unpin.pinned), (hash("1"), false));
    assert_eq!(reg.function(&named("p")).unwrap().hash, hash("2"));
    // Unpinning again is a no-op.
    assert!(!reg.unpin(&named("p")).unwrap().pinned);
}

#[test]
fn referenced_hashes_cover_history_pins_and_hash_ids() {
    let (_dir, reg) = open();
    reg.bind(&name("x"), hash("x1")).unwrap();
    reg.bind(&name("x"), hash("x2")).unwrap();
    reg.pin(&FunctionId::Hash(hash("pinned"))).unwrap();
    reg.start(&FunctionId::Hash(hash("byhash")), StartFrom::Head)
        .unwrap();
    let refs = reg.referenced_hashes().unwrap();
    let want: std::collections::BTreeSet<_> =
        [hash("x1"), hash("x2"), hash("pinned"), hash("byhash")]
            .into_iter()
            .collect();
    assert_eq!(refs, want);
    assert!(!refs.contains(&hash("unrelated")));
}

#[test]
fn state_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    {
        let reg = Registry::open(&path).unwrap();
        reg.bind(&name("durable"), hash("d1")).unwrap();
        reg.bind(&name("durable"), hash("d2")).unwrap();
        reg.start(&named("durable"), StartFrom::Block(3)).unwrap();
        reg.pin(&named("durable")).unwrap();
        // A second open of the same directory in the same process is refused.
        let err = Registry::open(&path).unwrap_err();
        assert!(matches!(err, RegistryError::Open { .. }), "{err}");
    }
    let reg = Registry::open(&path).unwrap();
    let view = reg.function(&named("durable")).unwrap();
    assert_eq!(
        (view.version, view.hash, view.pinned),
        (Some(2), hash("d2"), true)
    );
    assert_eq!(
        (view.desired, view.start),
        (DesiredState::Started, StartFrom::Block(3))
    );
    assert_eq!(reg.feed_head(), 4);
    // The feed continues where it stopped.
    reg.stop(&named("durable")).unwrap();
    let seqs: Vec<_> = reg
        .feed_after(0, 100)
        .unwrap()
        .entries
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
}

/// Set in the child process of [`open_held_by_another_process_is_locked`]:
/// the registry directory it holds open.
const HOLD_ENV: &str = "XXFUNC_REGISTRY_TEST_HOLD";
/// What the child prints once it holds the registry.
const HELD: &str = "child-holds-the-registry";

#[test]
fn open_held_by_another_process_is_locked() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::{Command, Stdio};

    if let Some(path) = std::env::var_os(HOLD_ENV) {
        // The child: hold the registry open until the parent closes stdin.
        let _held = Registry::open(&path).expect("the child opens the registry first");
        // libtest has already printed "test <name> ... " on this line.
        println!("{HELD}");
        std::io::stdout().flush().unwrap();
        let _ = std::io::stdin().read(&mut [0u8; 1]);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r");
    Registry::open(&path)
        .unwrap()
        .bind(&name("kept"), hash("k"))
        .unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "functions::open_held_by_another_process_is_locked",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLD_ENV, &path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let held = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|line| line.ends_with(HELD));
    assert!(held, "the child process did not open the registry");

    let err = Registry::open(&path).unwrap_err();
    assert!(matches!(err, RegistryError::Locked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains(&path.display().to_string()) && message.contains("another process"),
        "{message}"
    );

    drop(child.stdin.take());
    // Read the child's output to its end, so its last lines find a reader.
    lines.for_each(drop);
    assert!(child.wait().unwrap().success());
    // Once the other process is gone the registry opens, with its data.
    let reg = Registry::open(&path).unwrap();
    assert_eq!(reg.lookup_name(&name("kept")).unwrap().unwrap().version, 1);
}
