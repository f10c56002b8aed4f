//! Bind, selector resolution, start / stop / pin / unpin, logs.

use xxfunc_api::{DesiredState, FunctionId, StartFrom};
use xxfunc_primitives::ModuleHash;
use xxfunc_registry::RegistryError;
use xxfunc_service::ServiceError;

use crate::{colliding_modules, module, service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_takes_a_full_hash_or_a_unique_prefix() {
    let (_dir, service) = service();
    let hash = service.upload(module(1)).await.unwrap().hash;
    let name = "f".parse().unwrap();
    for (typed, version, new_version) in [
        (hash.to_string(), 1, true),
        (hash.short(8), 1, false),
        (hash.to_hex().to_uppercase(), 1, false),
    ] {
        let outcome = service.bind(&name, &typed).await.unwrap();
        assert_eq!(
            (outcome.bind.hash, outcome.bind.version, outcome.new_version),
            (hash, version, new_version),
            "{typed}"
        );
    }
    let other = service.upload(module(2)).await.unwrap().hash;
    let outcome = service.bind(&name, &other.short(12)).await.unwrap();
    assert_eq!((outcome.bind.version, outcome.new_version), (2, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_refuses_unknown_malformed_and_ambiguous_hashes() {
    let (_dir, service) = service();
    let name = "f".parse().unwrap();
    let unknown = ModuleHash::of(b"never uploaded");
    assert!(matches!(
        service.bind(&name, &unknown.to_string()).await,
        Err(ServiceError::ModuleNotStored(h)) if h == unknown
    ));
    for prefix in [unknown.short(8), unknown.short(20)] {
        assert!(matches!(
            service.bind(&name, &prefix).await,
            Err(ServiceError::ModuleNotFound { prefix: p }) if p.hex() == prefix
        ));
    }
    for bad in ["blake3:xyz", "1234567", "sha256:12345678"] {
        assert!(
            matches!(service.bind(&name, bad).await, Err(ServiceError::InvalidHash(e)) if e.input == bad),
            "{bad}"
        );
    }
    let (a, b) = colliding_modules();
    let ha = service.upload(a).await.unwrap().hash;
    let hb = service.upload(b).await.unwrap().hash;
    let mut want = vec![ha, hb];
    want.sort();
    match service.bind(&name, &ha.short(8)).await {
        Err(ServiceError::Ambiguous { candidates, .. }) => assert_eq!(candidates, want),
        other => panic!("expected Ambiguous, got {other:?}"),
    }
    assert_eq!(
        service.registry().feed_head(),
        0,
        "failed binds change nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_resolves_prefixes_among_registry_references_too() {
    let (_dir, service) = service();
    let name = "f".parse().unwrap();
    let deployed = service.deploy(&name, module(1)).await.unwrap().upload.hash;
    // The module disappears from the store behind the service's back; the registry
    // still refers to it, so its prefix resolves, and the bind names what is missing.
    service.store().delete(&deployed).await.unwrap();
    assert!(matches!(
        service.bind(&"g".parse().unwrap(), &deployed.short(10)).await,
        Err(ServiceError::ModuleNotStored(h)) if h == deployed
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_by_name_hash_or_prefix() {
    let (_dir, service) = service();
    let v1 = service
        .deploy(&"hello".parse().unwrap(), module(1))
        .await
        .unwrap();
    let view = service.start("hello", StartFrom::Block(7)).await.unwrap();
    assert_eq!(
        (view.desired, view.start),
        (DesiredState::Started, StartFrom::Block(7))
    );
    // A prefix of a stored module starts it under its hash.
    let loose = service.upload(module(2)).await.unwrap().hash;
    let view = service
        .start(&loose.short(8), StartFrom::Head)
        .await
        .unwrap();
    assert_eq!(view.id, FunctionId::Hash(loose));
    let view = service
        .stop(&format!("blake3:{}", loose.short(9)))
        .await
        .unwrap();
    assert_eq!(view.desired, DesiredState::Stopped);
    // A prefix of a module only the registry knows resolves too.
    assert!(matches!(
        service.function(&v1.upload.hash.short(8)).await,
        Err(ServiceError::Registry(RegistryError::FunctionNotFound { id }))
            if id == FunctionId::Hash(v1.upload.hash)
    ));
    let names: Vec<String> = service
        .list()
        .await
        .unwrap()
        .iter()
        .map(|v| v.id.to_string())
        .collect();
    assert_eq!(names, ["hello".to_string(), loose.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_and_pin_by_hash_need_a_stored_module() {
    let (_dir, service) = service();
    let unknown = ModuleHash::of(b"never uploaded");
    for result in [
        service
            .start(&unknown.to_string(), StartFrom::Head)
            .await
            .map(drop),
        service.pin(&unknown.to_string()).await.map(drop),
    ] {
        assert!(
            matches!(result, Err(ServiceError::ModuleNotStored(h)) if h == unknown),
            "{result:?}"
        );
    }
    let pinned = service.upload(module(3)).await.unwrap().hash;
    let pin = service.pin(&pinned.to_string()).await.unwrap();
    assert!(pin.pinned);
    assert!(!service.unpin(&pinned.short(8)).await.unwrap().pinned);
    assert_eq!(
        service.registry().feed_head(),
        2,
        "pin and unpin, nothing else"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_fail_with_the_registry_rule() {
    let (_dir, service) = service();
    for result in [
        service.start("nobody", StartFrom::Head).await.map(drop),
        service.stop("nobody").await.map(drop),
        service.pin("nobody").await.map(drop),
        service.unpin("nobody").await.map(drop),
        service.function("nobody").await.map(drop),
        service.logs("nobody", 10).await.map(drop),
    ] {
        assert!(
            matches!(&result, Err(ServiceError::Registry(e)) if e.is_not_found()),
            "{result:?}"
        );
    }
    assert!(matches!(
        service.function("Not A Name").await,
        Err(ServiceError::InvalidSelector(e)) if e.input == "Not A Name"
    ));
    let (a, b) = colliding_modules();
    let ha = service.upload(a).await.unwrap().hash;
    service.upload(b).await.unwrap();
    assert!(matches!(
        service.start(&format!("blake3:{}", ha.short(8)), StartFrom::Head).await,
        Err(ServiceError::Registry(RegistryError::Ambiguous { candidates, .. })) if candidates.len() == 2
    ));
    // A bound name wins over the same spelling as a hash prefix.
    let name = "deadbeef".parse().unwrap();
    let hash = service.deploy(&name, module(4)).await.unwrap().upload.hash;
    let view = service.function("deadbeef").await.unwrap();
    assert_eq!((view.id, view.hash), (FunctionId::Name(name), hash));
}

/// Selectors and binds resolve a prefix among only the stored modules it can match
/// (`ModuleStore::list_prefix`), with the same answers as over the whole store: on the
/// memory store (key-ordered, the listing stops past the prefix) and on a local directory
/// (unordered), for modules that nothing refers to, prefixes that fall between two
/// stored hashes, and a prefix two modules share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prefixes_resolve_among_many_stored_modules() {
    for store in ["memory", "file"] {
        let dir = tempfile::tempdir().unwrap();
        let url = match store {
            "memory" => "memory://".to_string(),
            _ => crate::file_store(dir.path()),
        };
        let service = crate::open(dir.path(), &url, xxfunc_service::ServiceOptions::default());
        let mut hashes = Vec::new();
        for seed in 0..40 {
            hashes.push(service.upload(module(1000 + seed)).await.unwrap().hash);
        }
        let (a, b) = colliding_modules();
        let ha = service.upload(a).await.unwrap().hash;
        let hb = service.upload(b).await.unwrap().hash;
        for hash in &hashes {
            let id = service.resolve(&hash.short(8)).await.unwrap();
            assert_eq!(id, FunctionId::Hash(*hash), "{store}");
            let id = service
                .resolve(&format!("blake3:{}", hash.short(12)))
                .await
                .unwrap();
            assert_eq!(id, FunctionId::Hash(*hash), "{store}");
            // The same digits with the last one moved: no stored hash starts so, unless
            // another one happens to.
            let mut bumped = hash.short(8).into_bytes();
            bumped[7] = match bumped[7] {
                b'9' => b'a',
                b'f' => b'0',
                d => d + 1,
            };
            let bumped = String::from_utf8(bumped).unwrap();
            let expected: Vec<ModuleHash> = hashes
                .iter()
                .chain([&ha, &hb])
                .copied()
                .filter(|h| h.to_hex().starts_with(&bumped))
                .collect();
            let got = service.resolve(&format!("blake3:{bumped}")).await;
            match expected.as_slice() {
                [] => assert!(
                    matches!(&got, Err(ServiceError::Registry(e)) if e.is_not_found()),
                    "{store} {bumped}: {got:?}"
                ),
                [one] => assert_eq!(got.unwrap(), FunctionId::Hash(*one)),
                _ => assert!(matches!(
                    got,
                    Err(ServiceError::Registry(RegistryError::Ambiguous { .. }))
                )),
            }
        }
        let name = "f".parse().unwrap();
        let bound = service.bind(&name, &hashes[7].short(9)).await.unwrap();
        assert_eq!(bound.bind.hash, hashes[7], "{store}");
        match service.bind(&name, &ha.short(8)).await {
            Err(ServiceError::Ambiguous { candidates, .. }) => {
                let mut both = vec![ha, hb];
                both.sort();
                assert_eq!(candidates, both, "{store}");
            }
            other => panic!("{store}: expected Ambiguous, got {other:?}"),
        }
        assert!(
            matches!(
                service.resolve("blake3:ffffffffff").await,
                Err(ServiceError::Registry(e)) if e.is_not_found()
            ) || hashes.iter().any(|h| h.to_hex().starts_with("ffffffffff"))
        );
    }
}
