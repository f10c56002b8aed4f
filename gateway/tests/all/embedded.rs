//! The library entry point `cargo xxfunc dev` embeds.

use std::time::Duration;

use xxfunc_gateway::{GatewayConfig, GatewayError, serve};

use crate::support::module;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let config = GatewayConfig::new(dir.path()).with_listen("127.0.0.1:0".parse().unwrap());
    let gateway = serve(config.clone()).await.unwrap();
    assert_ne!(gateway.addr().port(), 0);
    let client = xxfunc_api::client::Client::new(&gateway.url()).unwrap();
    // No token configured on loopback: writes are open.
    let d = client
        .deploy(&"e".parse().unwrap(), module(1))
        .await
        .unwrap();
    assert_eq!(
        gateway
            .registry()
            .lookup_name(&"e".parse().unwrap())
            .unwrap()
            .unwrap()
            .current,
        d.upload.hash
    );
    // Fresh uploads are safe from gc for the default grace period.
    let loose = client.upload(module(2)).await.unwrap().hash;
    let gc = client.gc(false).await.unwrap();
    assert!(gc.removed.is_empty());
    assert!(gateway.store().contains(&loose).await.unwrap());

    // The registry is locked while the server runs, and reopens after stop.
    assert!(matches!(
        serve(config.clone()).await,
        Err(GatewayError::Registry(_))
    ));
    gateway.stop().await;
    let err = client.health().await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(
        err.to_string()
            .contains("cannot reach the gateway at http://127.0.0.1:"),
        "{err}"
    );
    let gateway = serve(config).await.unwrap();
    let client = xxfunc_api::client::Client::new(&gateway.url()).unwrap();
    assert_eq!(client.function("e").await.unwrap().hash, d.upload.hash);
    tokio::time::timeout(Duration::from_secs(10), gateway.stop())
        .await
        .unwrap();

    let insecure = GatewayConfig::new(dir.path()).with_listen("0.0.0.0:0".parse().unwrap());
    assert!(matches!(
        serve(insecure).await,
        Err(GatewayError::InsecureListen { .. })
    ));
}
