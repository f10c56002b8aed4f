//! Upload, deploy and download.

use xxfunc_primitives::ModuleHash;
use xxfunc_registry::RegistryError;
use xxfunc_service::{ServiceError, ValidationError};
use xxfunc_store::StoreError;

use crate::{module, service};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_validates_then_stores_once() {
    let (_dir, service) = service();
    let bytes = module(1);
    let first = service.upload(bytes.clone()).await.unwrap();
    assert!(first.created);
    assert_eq!(first.hash, ModuleHash::of(&bytes));
    assert_eq!(first.size, bytes.len() as u64);
    let again = service.upload(bytes.clone()).await.unwrap();
    assert_eq!((again.hash, again.created), (first.hash, false));

    let (hash, stored) = service.module(&first.hash.short(8)).await.unwrap();
    assert_eq!((hash, stored.as_ref()), (first.hash, bytes.as_slice()));
    // Each upload left a record for the garbage collector.
    let records = service.store().upload_records().await.unwrap();
    assert_eq!(
        records.iter().map(|r| r.hash).collect::<Vec<_>>(),
        [first.hash]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_modules_store_nothing() {
    let (_dir, service) = service();
    let no_start = wat::parse_str(r#"(module (func (export "main")))"#).unwrap();
    let env_import =
        wat::parse_str(r#"(module (import "env" "f" (func)) (func (export "_start")))"#).unwrap();
    for (bytes, want) in [
        (b"hello world".to_vec(), ValidationError::NotWasm),
        (no_start, ValidationError::NoStart),
        (
            env_import,
            ValidationError::ForbiddenImport {
                module: "env".into(),
                name: "f".into(),
            },
        ),
    ] {
        match service.upload(bytes.clone()).await {
            Err(ServiceError::InvalidModule(got)) => assert_eq!(got, want),
            other => panic!("expected InvalidModule({want:?}), got {other:?}"),
        }
        match service.deploy(&"f".parse().unwrap(), bytes).await {
            Err(ServiceError::InvalidModule(got)) => assert_eq!(got, want),
            other => panic!("expected InvalidModule({want:?}), got {other:?}"),
        }
    }
    assert!(service.store().list().await.unwrap().is_empty());
    assert!(service.store().upload_records().await.unwrap().is_empty());
    assert_eq!(service.registry().feed_head(), 0, "nothing was bound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_uploads_and_binds() {
    let (_dir, service) = service();
    let name = "hello".parse().unwrap();
    let v1 = service.deploy(&name, module(1)).await.unwrap();
    assert!(v1.upload.created);
    assert_eq!((v1.bind.hash, v1.bind.version), (v1.upload.hash, 1));
    let same = service.deploy(&name, module(1)).await.unwrap();
    assert_eq!((same.upload.created, same.bind.version), (false, 1));
    let v2 = service.deploy(&name, module(2)).await.unwrap();
    assert_eq!(v2.bind.version, 2);
    let view = service.function("hello").await.unwrap();
    assert_eq!((view.hash, view.versions.len()), (v2.upload.hash, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_needs_a_stored_match() {
    let (_dir, service) = service();
    let hash = service.upload(module(1)).await.unwrap().hash;
    let unknown = ModuleHash::of(b"never uploaded");
    assert!(matches!(
        service.module(&unknown.to_string()).await,
        Err(ServiceError::Store(StoreError::NotFound { .. }))
    ));
    assert!(matches!(
        service.module(&unknown.short(9)).await,
        Err(ServiceError::Store(StoreError::PrefixNotFound { .. }))
    ));
    assert!(matches!(
        service.module("blake3:xyz").await,
        Err(ServiceError::Store(StoreError::InvalidHash { .. }))
    ));
    assert_eq!(service.module(&hash.to_hex()).await.unwrap().0, hash);
    // Names are not modules.
    assert!(matches!(
        service.function("nobody").await,
        Err(ServiceError::Registry(
            RegistryError::FunctionNotFound { .. }
        ))
    ));
}
