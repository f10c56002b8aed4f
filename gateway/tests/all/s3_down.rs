//! The S3 backend going away: clear 503s, no partial state, reads of the
//! registry keep working, and service resumes when it is back.

use xxfunc_api::codes;

use crate::support::{Backend, Gateway, module};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_backend_down() {
    let Some(mut gw) = Gateway::start(Backend::S3) else {
        return;
    };
    let client = gw.client();
    let name = "f".parse().unwrap();
    let first = client.deploy(&name, module(1)).await.unwrap();
    let head = client.health().await.unwrap().feed_head;

    gw.s3.as_mut().expect("s3 server").kill();
    let second = xxfunc_api::ModuleHash::of(&module(2));
    let results = [
        client.upload(module(2)).await.map(drop),
        client
            .download(&first.upload.hash.to_string())
            .await
            .map(drop),
        client.bind(&name, &second.to_string()).await.map(drop),
        client.bind(&name, &second.short(10)).await.map(drop),
        client.start(&second.to_string(), None).await.map(drop),
        client.gc(true).await.map(drop),
    ];
    for r in results {
        let err = r.unwrap_err();
        assert_eq!(err.code(), Some(codes::BACKEND), "{err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(503), "{err}");
        assert!(err.to_string().contains("store"), "{err}");
    }
    // The registry still answers, unchanged.
    assert_eq!(client.health().await.unwrap().feed_head, head);
    let view = client.function("f").await.unwrap();
    assert_eq!((view.hash, view.version), (first.upload.hash, Some(1)));
    // Operations that need no module bytes still work.
    client.start("f", None).await.unwrap();
    client.stop("f").await.unwrap();
}
