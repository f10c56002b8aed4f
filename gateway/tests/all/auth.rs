//! Bearer tokens: 401 without, 403 wrong, reads open unless a read token guards them;
//! no token beyond loopback.

use std::process::{Command, Stdio};

use xxfunc_api::{client::Client, codes};

use crate::support::{Backend, Gateway, error_code, module, raw};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutating_routes_need_the_token() {
    let gw = Gateway::start(Backend::File).expect("gateway");
    let hash = gw.client().upload(module(1)).await.unwrap().hash;
    gw.client()
        .bind(&"f".parse().unwrap(), &hash.to_string())
        .await
        .unwrap();
    let wrong = Client::new(&gw.url)
        .unwrap()
        .with_token(Some("test-token-0123456788".into()));
    let name = "f".parse().unwrap();
    let hs = hash.to_string();
    for client in [gw.anonymous(), wrong] {
        let results = [
            client.upload(module(2)).await.map(drop),
            client.bind(&name, &hs).await.map(drop),
            client.start("f", None).await.map(drop),
            client.stop("f").await.map(drop),
            client.pin("f").await.map(drop),
            client.unpin("f").await.map(drop),
            client.gc(true).await.map(drop),
            client
                .report(
                    "r",
                    &xxfunc_api::RunnerReport {
                        head: None,
                        safe_height: None,
                        functions: vec![],
                        invocations: vec![],
                    },
                )
                .await
                .map(drop),
        ];
        for r in results {
            let err = r.unwrap_err();
            let code = err.code().expect("an API error");
            assert!(
                code == codes::UNAUTHORIZED || code == codes::FORBIDDEN,
                "{err}"
            );
            assert!(err.to_string().contains("token"), "{err}");
        }
    }
    // Exact statuses, including malformed headers.
    let addr = gw.addr().to_string();
    let json = ("Content-Type", "application/json");
    let body = format!(r#"{{"hash":"{hash}"}}"#);
    for (headers, status, code) in [
        (vec![json], 401, codes::UNAUTHORIZED),
        (
            vec![json, ("Authorization", "Basic dGVzdA==")],
            401,
            codes::UNAUTHORIZED,
        ),
        (
            vec![json, ("Authorization", "Bearer")],
            401,
            codes::UNAUTHORIZED,
        ),
        (
            vec![json, ("Authorization", "Bearer test-token")],
            403,
            codes::FORBIDDEN,
        ),
        (
            vec![json, ("Authorization", "Bearer test-token-01234567890")],
            403,
            codes::FORBIDDEN,
        ),
        (
            vec![json, ("Authorization", "Bearer test-token-0123456789")],
            200,
            "",
        ),
    ] {
        let (got, resp) = raw(&addr, "PUT", "/v1/functions/g", &headers, body.as_bytes());
        assert_eq!(got, status, "{headers:?}: {resp}");
        if status != 200 {
            assert_eq!(error_code(&resp), code);
        }
    }
    // Reads need no token.
    let anon = gw.anonymous();
    assert_eq!(anon.list().await.unwrap().len(), 2);
    anon.function("f").await.unwrap();
    anon.download(&hs).await.unwrap();
    anon.feed_snapshot().await.unwrap();
    anon.health().await.unwrap();
    // Nothing the rejected requests asked for happened.
    assert_eq!(
        gw.client().function("f").await.unwrap().desired,
        xxfunc_api::DesiredState::Stopped
    );
}

#[test]
fn refuses_non_loopback_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_xxfunc-gateway"))
        .args(["--listen", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .env_remove("XXFUNC_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run gateway");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_guards_reads_and_grants_nothing_else() {
    const READ: &str = "reader-token-0123456789";
    let gw = Gateway::start_with(Backend::File, &["--read-token", READ]).expect("gateway");
    let hash = gw.client().upload(module(1)).await.unwrap().hash;
    let hs = hash.to_string();
    gw.client().bind(&"f".parse().unwrap(), &hs).await.unwrap();
    let addr = gw.addr().to_string();
    let bearer = |t: &str| format!("Bearer {t}");
    let (read, write, wrong) = (
        bearer(READ),
        bearer("test-token-0123456789"),
        bearer("reader-token-0123456788"),
    );
    for path in [
        "/v1/functions",
        "/v1/functions/f",
        "/v1/functions/f/logs",
        "/v1/functions/f/outputs",
        "/v1/feed/snapshot",
        "/metrics",
    ] {
        let get = |auth: Option<&str>| {
            let headers: Vec<(&str, &str)> =
                auth.map(|a| ("Authorization", a)).into_iter().collect();
            raw(&addr, "GET", path, &headers, b"")
        };
        let (status, body) = get(None);
        assert_eq!(status, 401, "{path} without a token: {body}");
        assert_eq!(error_code(&body), codes::UNAUTHORIZED);
        let (status, body) = get(Some(&wrong));
        assert_eq!(status, 403, "{path} with a wrong token: {body}");
        assert_eq!(get(Some(&read)).0, 200, "{path} with the read token");
        assert_eq!(get(Some(&write)).0, 200, "{path} with the write token");
    }
    // Liveness and the API's description stay open.
    assert_eq!(raw(&addr, "GET", "/healthz", &[], b"").0, 200);
    assert_eq!(raw(&addr, "GET", "/v1/openapi.json", &[], b"").0, 200);

    // The client sends its token on reads; the read token reads but never writes.
    let reader = Client::new(&gw.url).unwrap().with_token(Some(READ.into()));
    assert_eq!(reader.list().await.unwrap().len(), 1);
    reader.download(&hs).await.unwrap();
    let err = reader.start("f", None).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::FORBIDDEN), "{err}");
    let err = gw.anonymous().list().await.unwrap_err();
    assert_eq!(err.code(), Some(codes::UNAUTHORIZED), "{err}");
    assert_eq!(
        gw.client().function("f").await.unwrap().desired,
        xxfunc_api::DesiredState::Stopped,
        "the refused start changed nothing"
    );
}
