//! Failure paths: every bad input gets a JSON error with the right status and
//! code, and changes nothing.

use xxfunc_api::{ModuleHash, codes};

use crate::support::{
    Gateway, TOKEN, big_module, colliding_modules, error_code, module, on_backends, raw,
};

on_backends!(
    rejected_modules_store_nothing,
    modules_the_runner_cannot_run_get_422_with_the_reason,
    bad_names_and_bodies,
    unknown_and_ambiguous_hashes
);

/// `(method, path, headers, body, expected status, expected error code)`;
/// an empty code accepts any.
type BadRequest<'a> = (
    &'a str,
    &'a str,
    &'a [(&'a str, &'a str)],
    &'a [u8],
    u16,
    &'a str,
);

const AUTH: (&str, &str) = ("Authorization", "Bearer test-token-0123456789");

/// Admission is execution: every class of module the runner's engine cannot run (invalid
/// function bodies, `_start` with params or results, disabled proposals, a pooled slot's
/// shape) is refused with `422 invalid_module` naming the reason, through upload and
/// deploy, and stores nothing; the healthy modules of the same corpus are accepted.
async fn modules_the_runner_cannot_run_get_422_with_the_reason(gw: Gateway) {
    use xxfunc_service::corpus::{self, Expect};
    let client = gw.client();
    let name = "admitted".parse().unwrap();
    for case in corpus::rejected() {
        let Expect::Reject(needle) = case.expect else {
            unreachable!("rejected() holds only rejections")
        };
        for err in [
            client.upload(case.bytes.clone()).await.unwrap_err(),
            client.deploy(&name, case.bytes.clone()).await.unwrap_err(),
        ] {
            assert_eq!(
                err.code(),
                Some(codes::INVALID_MODULE),
                "{}: {err}",
                case.name
            );
            assert_eq!(err.status().map(|s| s.as_u16()), Some(422), "{}", case.name);
            assert!(err.to_string().contains(needle), "{}: {err}", case.name);
        }
        let hash = ModuleHash::of(&case.bytes);
        assert!(
            client
                .download(&hash.to_string())
                .await
                .unwrap_err()
                .is_not_found(),
            "{}",
            case.name
        );
    }
    let gc = client.gc(true).await.unwrap();
    assert_eq!((gc.removed.len(), gc.kept), (0, 0));
    for case in corpus::healthy() {
        let up = client.upload(case.bytes.clone()).await;
        assert_eq!(
            up.map(|u| u.hash).map_err(|e| e.to_string()),
            Ok(ModuleHash::of(&case.bytes)),
            "{}",
            case.name
        );
    }
}

async fn rejected_modules_store_nothing(gw: Gateway) {
    assert_eq!(AUTH.1, format!("Bearer {TOKEN}"));
    let client = gw.client();
    let random: Vec<u8> = (0..4096).map(|_| rand::random::<u8>()).collect();
    let no_start = wat::parse_str(r#"(module (func (export "main")))"#).unwrap();
    let env_foo =
        wat::parse_str(r#"(module (import "env" "foo" (func)) (func (export "_start")))"#).unwrap();
    let mut truncated = module(1);
    // Cut into the code section (the last 12 bytes are the seed's custom section).
    truncated.truncate(truncated.len() - 15);
    for (bytes, needle) in [
        (random, "not a WebAssembly module"),
        (no_start, "_start"),
        (env_foo, "env.foo"),
        (truncated, "invalid WebAssembly"),
        (Vec::new(), "not a WebAssembly module"),
    ] {
        let err = client.upload(bytes.clone()).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::INVALID_MODULE), "{err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(422));
        assert!(err.to_string().contains(needle), "{err}");
        let hash = ModuleHash::of(&bytes);
        assert!(
            client
                .download(&hash.to_string())
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
    // Nothing was stored at all.
    let gc = client.gc(true).await.unwrap();
    assert_eq!((gc.removed.len(), gc.kept), (0, 0));

    // Wrong content type.
    let (status, body) = raw(
        gw.addr(),
        "POST",
        "/v1/modules",
        &[AUTH, ("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (415, codes::UNSUPPORTED_MEDIA_TYPE)
    );
    let (status, body) = raw(gw.addr(), "POST", "/v1/modules", &[AUTH], &module(1));
    assert_eq!(
        (status, error_code(&body).as_str()),
        (415, codes::UNSUPPORTED_MEDIA_TYPE)
    );
}

async fn bad_names_and_bodies(gw: Gateway) {
    let client = gw.client();
    let hash = client.upload(module(7)).await.unwrap().hash;
    let body = format!(r#"{{"hash":"{hash}"}}"#);
    let json = ("Content-Type", "application/json");
    for path in [
        "/v1/functions/a/b",
        "/v1/functions/a%2Fb",
        "/v1/functions/..",
        "/v1/functions/.",
        "/v1/functions/Hello",
        "/v1/functions/h%C3%A9llo",
        "/v1/functions/%F0%9F%A6%80",
        "/v1/functions/",
        "/v1/functions/-x",
        "/v1/functions/a%20b",
        &format!("/v1/functions/{}", "a".repeat(64)),
    ] {
        let (status, resp) = raw(gw.addr(), "PUT", path, &[AUTH, json], body.as_bytes());
        assert_eq!(status, 400, "{path}: {resp}");
        assert_eq!(error_code(&resp), codes::INVALID_NAME, "{path}: {resp}");
    }
    // Selector routes reject the same spellings.
    for path in [
        "/v1/functions/Hello",
        "/v1/functions/h%C3%A9llo/start",
        "/v1/functions/../stop",
    ] {
        let method = if path.ends_with("start") || path.ends_with("stop") {
            "POST"
        } else {
            "GET"
        };
        let (status, resp) = raw(gw.addr(), method, path, &[AUTH], b"");
        assert_eq!(status, 400, "{path}: {resp}");
    }

    // Malformed JSON and wrong shapes.
    for bad in [
        "{",
        "[]",
        r#"{"hash":1}"#,
        "null",
        r#"{"hush":"x"}"#,
        "\u{0}",
    ] {
        let (status, resp) = raw(
            gw.addr(),
            "PUT",
            "/v1/functions/ok",
            &[AUTH, json],
            bad.as_bytes(),
        );
        assert_eq!(
            (status, error_code(&resp).as_str()),
            (400, codes::BAD_REQUEST),
            "{bad:?}: {resp}"
        );
    }
    // Empty and wrong-shaped bodies, oversize JSON, bad query strings,
    // unknown routes, wrong methods: (method, path, headers, body, status, code).
    let huge = format!(r#"{{"hash":"{}"}}"#, "a".repeat(100 * 1024));
    #[rustfmt::skip]
    let bad_requests: [BadRequest<'_>; 13] = [
        ("PUT", "/v1/functions/ok", &[AUTH, json], b"", 400, codes::BAD_REQUEST),
        ("PUT", "/v1/functions/ok", &[AUTH, json], br#"{"hash":"xyz"}"#, 400, codes::INVALID_HASH),
        ("PUT", "/v1/functions/ok", &[AUTH, json], br#"{"hash":"1234"}"#, 400, codes::INVALID_HASH),
        ("POST", "/v1/functions/ok/start", &[AUTH, json], b"{not json", 400, codes::BAD_REQUEST),
        ("POST", "/v1/gc", &[AUTH, json], br#"{"dry_run":"yes"}"#, 400, codes::BAD_REQUEST),
        ("POST", "/v1/runners/r1/report", &[AUTH, json], b"{}", 400, codes::BAD_REQUEST),
        ("POST", "/v1/runners/bad%20id/report", &[AUTH, json], br#"{"functions":[]}"#, 400, codes::BAD_REQUEST),
        ("PUT", "/v1/functions/ok", &[AUTH, json], huge.as_bytes(), 413, codes::TOO_LARGE),
        ("GET", "/v1/feed?after=minus-one", &[], b"", 400, codes::BAD_REQUEST),
        ("GET", "/v1/functions/ok/logs?limit=-3", &[], b"", 400, codes::BAD_REQUEST),
        ("GET", "/v2/nothing", &[], b"", 404, codes::NOT_FOUND),
        ("DELETE", "/v1/functions/ok", &[AUTH], b"", 405, ""),
        ("PATCH", "/v1/modules", &[AUTH], b"", 405, ""),
    ];
    for (method, path, headers, body, want_status, want_code) in bad_requests {
        let (status, resp) = raw(gw.addr(), method, path, headers, body);
        assert_eq!(status, want_status, "{method} {path}: {resp}");
        // Every error is `{"error":{"code","message"}}`.
        let code = error_code(&resp);
        if !want_code.is_empty() {
            assert_eq!(code, want_code, "{method} {path}: {resp}");
        }
    }

    // None of it changed anything.
    assert_eq!(client.health().await.unwrap().feed_head, 0);
    assert!(client.list().await.unwrap().is_empty());
    // And the server is still fine.
    assert_eq!(
        client
            .bind(&"ok".parse().unwrap(), &hash.to_string())
            .await
            .unwrap()
            .version,
        1
    );
}

async fn unknown_and_ambiguous_hashes(gw: Gateway) {
    let client = gw.client();
    let unknown = ModuleHash::of(b"never uploaded");
    let name = "f".parse().unwrap();
    for prefix in [unknown.to_string(), unknown.short(8), unknown.short(20)] {
        let err = client.bind(&name, &prefix).await.unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(
            err.to_string().contains("upload"),
            "message says what to do: {err}"
        );
    }
    for result in [
        client.start(&unknown.to_string(), None).await.map(drop),
        client.pin(&unknown.to_string()).await.map(drop),
        client.function(&unknown.to_string()).await.map(drop),
        client.start("nobody", None).await.map(drop),
        client.stop("nobody").await.map(drop),
        client.logs("nobody", None).await.map(drop),
        client.download(&unknown.short(9)).await.map(drop),
    ] {
        let err = result.unwrap_err();
        assert!(err.is_not_found(), "{err}");
    }
    assert_eq!(
        client.health().await.unwrap().feed_head,
        0,
        "failed requests changed nothing"
    );

    // Two real modules sharing an 8-hex-digit prefix.
    let (a, b) = colliding_modules();
    let ha = client.upload(a).await.unwrap().hash;
    let hb = client.upload(b).await.unwrap().hash;
    assert_eq!(ha.short(8), hb.short(8));
    let mut want = vec![ha, hb];
    want.sort();
    let prefix = ha.short(8);
    let errs = [
        client.download(&prefix).await.map(drop).unwrap_err(),
        client.bind(&name, &prefix).await.map(drop).unwrap_err(),
        client
            .start(&format!("blake3:{prefix}"), None)
            .await
            .map(drop)
            .unwrap_err(),
    ];
    for err in errs {
        assert_eq!(err.code(), Some(codes::AMBIGUOUS_HASH), "{err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(409));
        assert_eq!(err.candidates(), want.as_slice(), "{err}");
    }
    // A longer prefix is unique.
    let common = ha
        .to_hex()
        .chars()
        .zip(hb.to_hex().chars())
        .take_while(|(x, y)| x == y)
        .count();
    let unique = ha.short(common + 1);
    assert_eq!(client.bind(&name, &unique).await.unwrap().hash, ha);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_modules_are_refused() {
    let gw = Gateway::start_with(
        crate::support::Backend::File,
        &["--max-module-size", "1048576"],
    )
    .expect("gateway");
    let client = gw.client();
    let fits = big_module((1 << 20) - 64, 1);
    assert!(fits.len() <= 1 << 20);
    client.upload(fits).await.unwrap();
    for len in [(1 << 20) + 1024, 3 << 20] {
        let big = big_module(len, 2);
        assert!(big.len() > 1 << 20);
        let err = client.upload(big.clone()).await.unwrap_err();
        assert_eq!(err.code(), Some(codes::TOO_LARGE), "{err}");
        assert_eq!(err.status().map(|s| s.as_u16()), Some(413));
        assert!(
            client
                .download(&ModuleHash::of(&big).to_string())
                .await
                .unwrap_err()
                .is_not_found()
        );
    }
    // Chunked uploads without a Content-Length are cut off at the limit too.
    let stream =
        futures::stream::iter((0..40).map(|_| Ok::<_, std::io::Error>(vec![0u8; 64 * 1024])));
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/modules", gw.url))
        .bearer_auth(crate::support::TOKEN)
        .header("content-type", "application/wasm")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 413);
    }
    let stored = client.gc(true).await.unwrap();
    assert_eq!(
        stored.removed.len() as u64 + stored.kept,
        1,
        "only the module that fits is stored"
    );
}
