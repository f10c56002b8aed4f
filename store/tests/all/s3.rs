//! S3 specifics: configuration from `AWS_*` variables, and a server that is down.

use std::time::Duration;

use xxfunc_store::{ModuleHash, ModuleStore, StoreConfig, StoreError, StoreOp, test_utils::S3sFs};

/// Generous bound: the store must fail fast (connect refused, few retries), never hang.
const NO_HANG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn configured_from_aws_variables() {
    let Some(server) = S3sFs::start() else { return };
    // AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ALLOW_HTTP.
    let config = StoreConfig::default().with_env_vars(server.env());
    let store = ModuleStore::open_with(&server.url("env"), config).unwrap();
    let out = store.put(b"from env".to_vec()).await.unwrap();
    assert!(out.created);
    assert_eq!(store.get(&out.hash).await.unwrap(), &b"from env"[..]);
    // The object really is in the bucket, under the URL's prefix.
    assert!(server.object_file(&store.key(&out.hash)).is_file());
    assert!(store.key(&out.hash).starts_with("env/blake3/"));
    assert!(
        store.description().contains(&server.endpoint()),
        "{}",
        store.description()
    );
}

#[tokio::test]
async fn loopback_http_endpoint_needs_no_allow_http() {
    let Some(server) = S3sFs::start() else { return };
    let vars: Vec<_> = server
        .env()
        .into_iter()
        .filter(|(k, _)| k != "AWS_ALLOW_HTTP")
        .collect();
    let store = ModuleStore::open_with(&server.url(""), StoreConfig::default().with_env_vars(vars))
        .unwrap();
    assert!(store.put(b"loopback".to_vec()).await.unwrap().created);
}

#[tokio::test]
async fn wrong_credentials_are_a_backend_error() {
    let Some(server) = S3sFs::start() else { return };
    let vars = server.env().into_iter().map(|(k, v)| match k.as_str() {
        "AWS_SECRET_ACCESS_KEY" => (k, "wrong".to_string()),
        _ => (k, v),
    });
    let store =
        ModuleStore::open_with(&server.url("m"), StoreConfig::default().with_env_vars(vars))
            .unwrap();
    let err = store.put(b"denied".to_vec()).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Backend {
                op: StoreOp::Put,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn server_down_fails_fast_with_a_clear_error() {
    let Some(mut server) = S3sFs::start() else {
        return;
    };
    let store = ModuleStore::open_with(&server.url("modules"), server.config()).unwrap();
    let stored = store.put(b"before the outage".to_vec()).await.unwrap().hash;
    server.kill();

    let endpoint = server.endpoint();
    let check = |err: StoreError, op: StoreOp| {
        let message = err.to_string();
        match &err {
            StoreError::Backend { op: got, store, .. } => {
                assert_eq!(*got, op, "{message}");
                assert!(store.contains(&endpoint), "{message}");
            }
            other => panic!("expected Backend({op}), got {other:?}"),
        }
        assert!(
            message.contains(&endpoint) && message.contains(&op.to_string()),
            "{message}"
        );
    };

    let put = tokio::time::timeout(NO_HANG, store.put(b"during the outage".to_vec()))
        .await
        .expect("put must not hang when the server is down");
    check(put.unwrap_err(), StoreOp::Put);
    let get = tokio::time::timeout(NO_HANG, store.get(&stored))
        .await
        .expect("get must not hang");
    check(get.unwrap_err(), StoreOp::Get);
    let list = tokio::time::timeout(NO_HANG, store.list())
        .await
        .expect("list must not hang");
    check(list.unwrap_err(), StoreOp::List);
    let contains = tokio::time::timeout(NO_HANG, store.contains(&ModuleHash::of(b"x")))
        .await
        .expect("contains must not hang");
    check(contains.unwrap_err(), StoreOp::Head);
}
