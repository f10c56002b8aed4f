//! Garbage collection: what it keeps, the grace period across processes, and the lock.

use std::time::Duration;

use xxfunc_api::StartFrom;
use xxfunc_service::ServiceOptions;

use crate::{file_store, module, open};

fn no_grace() -> ServiceOptions {
    ServiceOptions::default().with_upload_grace(Duration::ZERO)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_only_what_nothing_refers_to() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path(), &file_store(dir.path()), no_grace());
    let name = "keep".parse().unwrap();
    let old = service.deploy(&name, module(10)).await.unwrap().upload.hash;
    let current = service.deploy(&name, module(11)).await.unwrap().upload.hash;
    let pinned = service.upload(module(12)).await.unwrap().hash;
    service.pin(&pinned.to_string()).await.unwrap();
    let by_hash = service.upload(module(13)).await.unwrap().hash;
    service
        .start(&by_hash.to_string(), StartFrom::Head)
        .await
        .unwrap();
    let loose = service.upload(module(14)).await.unwrap().hash;

    let dry = service.gc(true).await.unwrap();
    assert_eq!(
        (dry.removed.clone(), dry.kept, dry.dry_run),
        (vec![loose], 4, true)
    );
    assert!(
        service.store().contains(&loose).await.unwrap(),
        "a dry run removes nothing"
    );
    assert_eq!(service.store().upload_records().await.unwrap().len(), 5);

    let real = service.gc(false).await.unwrap();
    assert_eq!(
        (real.removed, real.kept, real.dry_run),
        (vec![loose], 4, false)
    );
    let left = service.store().list().await.unwrap();
    for kept in [old, current, pinned, by_hash] {
        assert!(left.contains(&kept), "{kept} was collected");
    }
    assert!(!left.contains(&loose));
    assert!(
        service.store().upload_records().await.unwrap().is_empty(),
        "records past the grace period are deleted"
    );
    assert!(service.gc(false).await.unwrap().removed.is_empty());
}

/// The grace period comes from the store's upload records, not from memory: a service
/// opened afresh on the same registry and store (as a new process would) still spares
/// a module uploaded a moment ago and not yet bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grace_period_holds_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let store_url = file_store(dir.path());
    let first = open(dir.path(), &store_url, ServiceOptions::default());
    let fresh = first.upload(module(1)).await.unwrap().hash;
    // Bytes put into the store directly were never uploaded through a service.
    let foreign = first.store().put(module(2)).await.unwrap().hash;
    drop(first); // closes the registry, as a process exit would

    let second = open(dir.path(), &store_url, ServiceOptions::default());
    let gc = second.gc(false).await.unwrap();
    assert_eq!((gc.removed, gc.kept), (vec![foreign], 1));
    assert!(second.store().contains(&fresh).await.unwrap());
    assert_eq!(second.store().upload_records().await.unwrap().len(), 1);
    drop(second);

    // Past the grace period (here: none), the unbound upload goes, and so does its record.
    let third = open(dir.path(), &store_url, no_grace());
    let gc = third.gc(false).await.unwrap();
    assert_eq!((gc.removed, gc.kept), (vec![fresh], 0));
    assert!(third.store().upload_records().await.unwrap().is_empty());
}

/// Deploys racing collections with no grace period at all: only the lock keeps each
/// module alive between its upload and its bind.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_never_removes_a_module_between_upload_and_bind() {
    let dir = tempfile::tempdir().unwrap();
    let service = open(dir.path(), &file_store(dir.path()), no_grace());
    let mut tasks = Vec::new();
    for i in 0..24u64 {
        let service = service.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let name = format!("f{i}").parse().unwrap();
                Some(
                    service
                        .deploy(&name, module(i))
                        .await
                        .map(|d| d.upload.hash),
                )
            } else {
                service.gc(false).await.expect("a collection succeeds");
                None
            }
        }));
    }
    let mut deployed = Vec::new();
    for task in tasks {
        if let Some(result) = task.await.unwrap() {
            deployed.push(result.unwrap());
        }
    }
    assert_eq!(deployed.len(), 12);
    assert!(service.gc(false).await.unwrap().removed.is_empty());
    let left = service.store().list().await.unwrap();
    for hash in deployed {
        assert!(
            left.contains(&hash),
            "{hash} was collected after its deploy"
        );
    }
}
