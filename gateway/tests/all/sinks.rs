//! `/v1/functions/{name}/sinks` on the real gateway binary: add, change, list, retry,
//! remove; the change feed carries them to runners; every bad input is a JSON error
//! naming what is wrong, needs the token where it mutates, and changes nothing.

use xxfunc_api::{
    ChangeKind, codes,
    sinks::{SinkConfig, SinkKind},
};

use crate::support::{Backend, Gateway, error_code, module, raw};

const AUTH: (&str, &str) = ("Authorization", "Bearer test-token-0123456789");
const JSON: (&str, &str) = ("Content-Type", "application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_are_set_listed_retried_removed_and_reach_the_feed() {
    let gw = Gateway::start(Backend::File).expect("gateway");
    let client = gw.client();
    client
        .deploy(&"erc20".parse().unwrap(), module(1))
        .await
        .unwrap();
    client.start("erc20", None).await.unwrap();
    let head = client.health().await.unwrap().feed_head;

    let hook = SinkConfig {
        secret_env: Some("HOOK_SECRET".into()),
        confirmations: 2,
        ..SinkConfig::new(SinkKind::Webhook, "https://hooks.example.invalid/erc20")
    };
    let view = client.put_sink("erc20", "erc20-hook", &hook).await.unwrap();
    assert_eq!(view.function.to_string(), "erc20");
    assert_eq!(view.sinks.len(), 1);
    assert_eq!(view.sinks[0].config, hook);
    assert!(
        view.sinks[0].runners.is_empty(),
        "no runner reported it yet"
    );
    let pg = SinkConfig {
        password_env: Some("PGPASSWORD".into()),
        table: Some("transfers".into()),
        ..SinkConfig::new(SinkKind::Postgres, "postgres://app@127.0.0.1:5432/app")
    };
    client.put_sink("erc20", "erc20-pg", &pg).await.unwrap();
    let view = client.sinks("erc20").await.unwrap();
    let names: Vec<_> = view.sinks.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["erc20-hook", "erc20-pg"]);
    assert_eq!(
        client.retry_sink("erc20", "erc20-pg").await.unwrap().sinks[1].retry_generation,
        1
    );
    let view = client.remove_sink("erc20", "erc20-hook").await.unwrap();
    assert_eq!(view.sinks.len(), 1);

    // Runners learn it from the feed: each change is an entry with the function's sinks.
    let page = client.feed(head, std::time::Duration::ZERO).await.unwrap();
    let kinds: Vec<_> = page.entries.iter().map(|e| e.change.clone()).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::SinkSet,
            ChangeKind::SinkSet,
            ChangeKind::SinkRetried,
            ChangeKind::SinkRemoved
        ]
    );
    let last = page.entries.last().unwrap().spec.as_ref().unwrap();
    assert_eq!(last.sinks.len(), 1);
    assert_eq!(last.sinks[0].config, pg);
    let snapshot = client.feed_snapshot().await.unwrap();
    assert_eq!(snapshot.functions[0].sinks, last.sinks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sinks_are_refused_naming_the_problem() {
    let gw = Gateway::start(Backend::File).expect("gateway");
    let client = gw.client();
    client
        .deploy(&"erc20".parse().unwrap(), module(2))
        .await
        .unwrap();
    client
        .deploy(&"other".parse().unwrap(), module(3))
        .await
        .unwrap();
    let put = |path: &str, body: &str, headers: &[(&str, &str)]| {
        raw(gw.addr(), "PUT", path, headers, body.as_bytes())
    };
    let ok = r#"{"kind":"nats","url":"nats://127.0.0.1:4222"}"#;

    // (path, body, status, code, what the message names)
    #[rustfmt::skip]
    let cases: [(&str, &str, u16, &str, &str); 12] = [
        ("/v1/functions/erc20/sinks/hook", r#"{"kind":"webhook","url":"http://127.0.0.1:9/h"}"#, 400, codes::BAD_REQUEST, "secret_env"),
        ("/v1/functions/erc20/sinks/hook", r#"{"kind":"webhook","url":"ftp://x/h","secret_env":"S"}"#, 400, codes::BAD_REQUEST, "http:// or https://"),
        ("/v1/functions/erc20/sinks/pg", r#"{"kind":"postgres","url":"postgres://u:pw@127.0.0.1/db"}"#, 400, codes::BAD_REQUEST, "password_env"),
        ("/v1/functions/erc20/sinks/pg", r#"{"kind":"postgres","url":"postgres://u@127.0.0.1/db","table":"Bad-Table"}"#, 400, codes::BAD_REQUEST, "table"),
        ("/v1/functions/erc20/sinks/n", r#"{"kind":"nats","url":"nats://127.0.0.1:4222","table":"t"}"#, 400, codes::BAD_REQUEST, "only for postgres"),
        ("/v1/functions/erc20/sinks/n", r#"{"kind":"kafka","url":"kafka://x"}"#, 400, codes::BAD_REQUEST, "kafka"),
        ("/v1/functions/erc20/sinks/n", r#"{"kind":"nats","url":"nats://x","secret":"s"}"#, 400, codes::BAD_REQUEST, "secret"),
        ("/v1/functions/erc20/sinks/n", r#"{"kind":"nats"}"#, 400, codes::BAD_REQUEST, "url"),
        ("/v1/functions/erc20/sinks/n", "{", 400, codes::BAD_REQUEST, ""),
        ("/v1/functions/erc20/sinks/Bad%20Name", ok, 400, codes::BAD_REQUEST, "sink name"),
        ("/v1/functions/missing/sinks/n", ok, 404, codes::NOT_FOUND, "missing"),
        ("/v1/functions/Bad/sinks/n", ok, 400, codes::INVALID_NAME, ""),
    ];
    for (path, body, status, code, names) in cases {
        let (got, resp) = put(path, body, &[AUTH, JSON]);
        assert_eq!(
            (got, error_code(&resp).as_str()),
            (status, code),
            "{path} {body}: {resp}"
        );
        assert!(
            resp.contains(names),
            "{path} {body}: {resp} should name {names:?}"
        );
        assert!(!resp.contains(":pw@"), "no password echoed: {resp}");
    }
    // Nothing was stored by any of them.
    assert!(client.sinks("erc20").await.unwrap().sinks.is_empty());

    // Mutations need the token; reads do not.
    let (status, _) = put("/v1/functions/erc20/sinks/n", ok, &[JSON]);
    assert_eq!(status, 401);
    let (status, _) = put(
        "/v1/functions/erc20/sinks/n",
        ok,
        &[("Authorization", "Bearer wrong"), JSON],
    );
    assert_eq!(status, 403);
    let (status, _) = raw(gw.addr(), "DELETE", "/v1/functions/erc20/sinks/n", &[], b"");
    assert_eq!(status, 401);
    let (status, _) = raw(
        gw.addr(),
        "POST",
        "/v1/functions/erc20/sinks/n/retry",
        &[],
        b"",
    );
    assert_eq!(status, 401);
    let (status, resp) = raw(gw.addr(), "GET", "/v1/functions/erc20/sinks", &[], b"");
    assert_eq!(status, 200, "{resp}");

    // Unknown sinks, a name another function has, a wrong method.
    let (status, resp) = raw(
        gw.addr(),
        "DELETE",
        "/v1/functions/erc20/sinks/n",
        &[AUTH],
        b"",
    );
    assert_eq!(
        (status, error_code(&resp).as_str()),
        (404, codes::NOT_FOUND),
        "{resp}"
    );
    assert!(resp.contains("no sink named n"), "{resp}");
    let (status, _) = raw(
        gw.addr(),
        "POST",
        "/v1/functions/erc20/sinks/n/retry",
        &[AUTH],
        b"",
    );
    assert_eq!(status, 404);
    let (status, _) = put("/v1/functions/other/sinks/n", ok, &[AUTH, JSON]);
    assert_eq!(status, 200);
    let (status, resp) = put("/v1/functions/erc20/sinks/n", ok, &[AUTH, JSON]);
    assert_eq!(
        (status, error_code(&resp).as_str()),
        (409, codes::CONFLICT),
        "{resp}"
    );
    assert!(resp.contains("taken by function other"), "{resp}");
    let (status, _) = raw(
        gw.addr(),
        "POST",
        "/v1/functions/erc20/sinks/n",
        &[AUTH],
        b"",
    );
    assert_eq!(status, 405);
}
