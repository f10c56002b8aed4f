//! Every route's success path, on the file and S3 backends.

use alloy_primitives::B256;
use xxfunc_api::{
    BlockRef, ChangeKind, Counters, DesiredState, EventKind, FunctionId, FunctionReport,
    InvocationStatus, ModuleHash, ObservedState, RunnerReport, StartFrom,
};

use crate::support::{Gateway, module, on_backends};

on_backends!(lifecycle, gc_removes_only_unreferenced);

async fn lifecycle(gw: Gateway) {
    let client = gw.client();
    let health = client.health().await.unwrap();
    assert_eq!((health.status.as_str(), health.feed_head), ("ok", 0));

    // Upload a real module built from guest/examples.
    let hello = xxfunc_guest_modules::module_bytes("hello");
    let up = client.upload(hello.clone()).await.unwrap();
    assert!(up.created);
    assert_eq!(
        (up.hash, up.size),
        (ModuleHash::of(&hello), hello.len() as u64)
    );
    let again = client.upload(hello.clone()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.hash, up.hash);

    // Download by full hash and by prefix.
    let (hash, bytes) = client.download(&up.hash.to_string()).await.unwrap();
    assert_eq!((hash, bytes.as_slice()), (up.hash, hello.as_slice()));
    let (hash, _) = client.download(&up.hash.short(10)).await.unwrap();
    assert_eq!(hash, up.hash);

    // Bind (by prefix), list, show.
    let name = "hello".parse().unwrap();
    let bound = client
        .bind(&name, &format!("blake3:{}", up.hash.short(12)))
        .await
        .unwrap();
    assert_eq!(
        (bound.hash, bound.version, bound.pinned),
        (up.hash, 1, false)
    );
    let v2 = client.deploy(&name, module(1)).await.unwrap();
    assert_eq!(v2.bind.version, 2);
    assert!(v2.upload.created);
    let list = client.list().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].hash, v2.upload.hash);
    let view = client.function("hello").await.unwrap();
    assert_eq!(
        view.versions.iter().map(|v| v.hash).collect::<Vec<_>>(),
        [up.hash, v2.upload.hash]
    );
    assert_eq!(view.desired, DesiredState::Stopped);

    // Start / stop by name; start by hash prefix creates a hash identity.
    let started = client.start("hello", Some(5)).await.unwrap();
    assert_eq!(
        (started.desired, started.start),
        (DesiredState::Started, StartFrom::Block(5))
    );
    let stopped = client.stop("hello").await.unwrap();
    assert_eq!(stopped.desired, DesiredState::Stopped);
    let by_hash = client.start(&up.hash.short(8), None).await.unwrap();
    assert_eq!(by_hash.id, FunctionId::Hash(up.hash));
    assert_eq!(
        client.function(&up.hash.to_string()).await.unwrap().desired,
        DesiredState::Started
    );
    assert_eq!(client.list().await.unwrap().len(), 2);

    // Pin keeps the name on its hash across a deploy; unpin releases it.
    let pin = client.pin("hello").await.unwrap();
    assert_eq!((pin.hash, pin.pinned), (v2.upload.hash, true));
    let v3 = client.deploy(&name, module(2)).await.unwrap();
    assert_eq!((v3.bind.version, v3.bind.pinned), (3, true));
    assert_eq!(client.function("hello").await.unwrap().hash, v2.upload.hash);
    let unpin = client.unpin("hello").await.unwrap();
    assert!(!unpin.pinned);
    assert_eq!(client.function("hello").await.unwrap().hash, v3.upload.hash);

    // Feed: snapshot plus entries, gapless.
    let snapshot = client.feed_snapshot().await.unwrap();
    assert_eq!(snapshot.functions.len(), 2);
    let page = client.feed(0, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(page.head, snapshot.seq);
    let seqs: Vec<u64> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=snapshot.seq).collect::<Vec<_>>());
    assert_eq!(page.entries[0].change, ChangeKind::Deployed);

    // Runner reports show up in the view and the logs.
    let id = FunctionId::Name(name.clone());
    let block = BlockRef {
        number: 6,
        hash: B256::repeat_byte(6),
    };
    let report = RunnerReport {
        head: Some(block),
        safe_height: Some(6),
        functions: vec![FunctionReport {
            sinks: Vec::new(),
            id: id.clone(),
            hash: v3.upload.hash,
            observed: ObservedState::Running,
            cursor: Some(block),
            last_error: None,
            counters: Counters {
                invocations: 2,
                failures: 0,
                consecutive_failures: 0,
                ..Counters::default()
            },
        }],
        invocations: Vec::new(),
    };
    // Logs come from the runner's outcome log, pushed by seq.
    let page = xxfunc_api::outputs::OutcomesPage {
        id: id.clone(),
        outcomes: vec![xxfunc_api::outputs::OutcomeEntry {
            seq: 1,
            kind: EventKind::Commit,
            block,
            hash: v3.upload.hash,
            status: InvocationStatus::Ok,
            duration_us: 30,
            at_ms: 1,
            stdout: xxfunc_api::outputs::Bytes64(b"hello from block 6\n".to_vec()),
            stderr: xxfunc_api::outputs::Bytes64(Vec::new()),
            first_item: 1,
            item_count: 1,
        }],
    };
    client.push_outcomes("runner-a", &page).await.unwrap();
    client.report("runner-a", &report).await.unwrap();
    let view = client.function("hello").await.unwrap();
    assert_eq!(
        (view.observed, view.cursor, view.counters.invocations),
        (Some(ObservedState::Running), Some(block), 2)
    );
    let logs = client.logs("hello", Some(10)).await.unwrap();
    assert_eq!(logs.invocations.len(), 1);
    assert_eq!(logs.invocations[0].stdout, "hello from block 6\n");
    assert!(
        client
            .logs(&up.hash.to_string(), None)
            .await
            .unwrap()
            .invocations
            .is_empty()
    );

    // Metrics and the API description.
    let metrics = client.metrics().await.unwrap();
    assert!(metrics.contains("xxfunc_deploys_total 3"), "{metrics}");
    assert!(
        metrics.contains(&format!("xxfunc_feed_head {}", snapshot.seq)),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"route="/v1/functions/{name}",status="200""#),
        "{metrics}"
    );
    assert!(metrics.contains("xxfunc_functions_started 1"), "{metrics}");
    let openapi = client.openapi().await.unwrap();
    for path in [
        "/healthz",
        "/metrics",
        "/v1/openapi.json",
        "/v1/modules",
        "/v1/modules/{hash}",
        "/v1/gc",
        "/v1/functions",
        "/v1/functions/{name}",
        "/v1/functions/{name}/start",
        "/v1/functions/{name}/stop",
        "/v1/functions/{name}/pin",
        "/v1/functions/{name}/unpin",
        "/v1/functions/{name}/logs",
        "/v1/feed/snapshot",
        "/v1/feed",
        "/v1/runners/{runner}/report",
        "/v1/runners/{runner}/outcomes",
        "/v1/functions/{name}/outputs",
        "/v1/functions/{name}/sinks",
        "/v1/functions/{name}/sinks/{sink}",
        "/v1/functions/{name}/sinks/{sink}/retry",
    ] {
        assert!(
            openapi["paths"][path].is_object(),
            "{path} missing from openapi.json"
        );
    }
    assert_eq!(openapi["paths"].as_object().unwrap().len(), 21);
}

async fn gc_removes_only_unreferenced(gw: Gateway) {
    let client = gw.client();
    let kept_by_name = client
        .deploy(&"keep".parse().unwrap(), module(10))
        .await
        .unwrap()
        .upload
        .hash;
    let pinned = client.upload(module(11)).await.unwrap().hash;
    client.pin(&pinned.to_string()).await.unwrap();
    let by_hash = client.upload(module(12)).await.unwrap().hash;
    client.start(&by_hash.to_string(), None).await.unwrap();
    let old_version = client
        .deploy(&"keep".parse().unwrap(), module(13))
        .await
        .unwrap();
    assert_eq!(old_version.bind.version, 2);
    let loose = client.upload(module(14)).await.unwrap().hash;

    let dry = client.gc(true).await.unwrap();
    assert_eq!(
        (dry.removed.clone(), dry.kept, dry.dry_run),
        (vec![loose], 4, true)
    );
    assert!(
        client.download(&loose.to_string()).await.is_ok(),
        "dry run removes nothing"
    );
    let real = client.gc(false).await.unwrap();
    assert_eq!(real.removed, vec![loose]);
    let err = client.download(&loose.to_string()).await.unwrap_err();
    assert!(err.is_not_found(), "{err}");
    for kept in [kept_by_name, pinned, by_hash, old_version.upload.hash] {
        client.download(&kept.to_string()).await.unwrap();
    }
    assert!(client.gc(false).await.unwrap().removed.is_empty());
}
