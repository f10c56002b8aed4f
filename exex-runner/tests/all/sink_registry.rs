//! Sinks configured in the registry, end to end: a real gateway served in-process, the
//! `xxfunc-runner` binary following it (modules, desired state and sinks through the
//! change feed) on the fixture replay, and a real webhook receiver that verifies
//! signatures. Through the HTTP API a test adds a sink while the runner runs, sees the
//! gateway refuse what no runner could start, sees the runner refuse what only it can
//! judge (a secret not in its environment), sees a 410 turn the sink `failed` in the
//! gateway's view, retries it, and removes it: the receiver ends with the canonical
//! chain's records, the removed sink's cursor is forgotten.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use xxfunc_api::{
    client::ClientError,
    sinks::{SinkConfig, SinkKind, SinkReport, SinksView},
};

use crate::{
    gateway::{Gateway, TOKEN},
    sink_common::{Replay, apply, canonical, outcomes},
    sink_webhook::{Behaviour, Receiver, SECRET},
};

const SECRET_VAR: &str = "XXFUNC_TEST_REGISTRY_HOOK_SECRET";

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The report of sink `name` by any runner, once one satisfies `cond` (60 s at most).
fn wait_report(
    gateway: &Gateway,
    name: &str,
    what: &str,
    cond: impl Fn(Option<&SinkReport>) -> bool,
) -> SinksView {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let view = gateway
            .runtime
            .block_on(gateway.client.sinks("erc20"))
            .unwrap();
        let report = view
            .sinks
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.runners.first())
            .map(|r| &r.report);
        if cond(report) {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for sink {name}: {what}; view {view:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn api_error(e: ClientError) -> (u16, String, String) {
    match e {
        ClientError::Api {
            status,
            code,
            message,
            ..
        } => (status.as_u16(), code, message),
        other => panic!("expected an API error, got {other}"),
    }
}

#[test]
fn sinks_set_in_the_registry_start_fail_retry_and_stop_in_a_running_runner() {
    let replay = Replay::new();
    let gateway = Gateway::start();
    gateway.deploy_and_start("erc20", "erc20-transfers");
    let receiver = Receiver::start(
        SECRET,
        Behaviour {
            gone_after: Some(2),
            ..Behaviour::default()
        },
    );
    let hook = SinkConfig {
        secret_env: Some(SECRET_VAR.into()),
        attempts: Some(2),
        ..SinkConfig::new(SinkKind::Webhook, receiver.url())
    };
    let put = |name: &str, config: &SinkConfig| {
        gateway
            .runtime
            .block_on(gateway.client.put_sink("erc20", name, config))
            .map_err(api_error)
    };

    // What no runner could start is refused with the field at fault.
    let (status, code, message) = put(
        "hook",
        &SinkConfig {
            secret_env: None,
            ..hook.clone()
        },
    )
    .unwrap_err();
    assert_eq!((status, code.as_str()), (400, "bad_request"), "{message}");
    assert!(message.contains("secret_env"), "{message}");
    let (status, _, message) = put(
        "pg",
        &SinkConfig::new(SinkKind::Postgres, "postgres://app:hunter2@127.0.0.1/app"),
    )
    .unwrap_err();
    assert_eq!(status, 400);
    assert!(message.contains("password_env"), "{message}");
    assert!(
        !message.contains("hunter2"),
        "the password is not echoed: {message}"
    );
    let (status, _, message) = put("Bad Name", &hook).unwrap_err();
    assert_eq!(status, 400, "{message}");

    // The runner follows the gateway on the fixture replay, slowly enough that the sink
    // is added while it runs.
    let data = replay.dir.path().join("runner");
    let child = Killed(
        Command::new(env!("CARGO_BIN_EXE_xxfunc-runner"))
            .args(["--gateway", &gateway.url(), "--token", TOKEN])
            .arg("--data-dir")
            .arg(&data)
            .arg("--fixtures")
            .arg(&replay.events)
            .args(["--replay-delay-ms", "20", "--sink-allow-host", "127.0.0.1"])
            .env(SECRET_VAR, SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("starting xxfunc-runner"),
    );
    let view = put("hook", &hook).unwrap();
    assert_eq!(view.sinks.len(), 1);
    assert_eq!(view.sinks[0].config, hook);
    // A sink whose secret the runner does not hold is refused by the runner, visibly.
    put(
        "hook-unset",
        &SinkConfig {
            secret_env: Some("XXFUNC_TEST_NOT_SET_ANYWHERE".into()),
            ..hook.clone()
        },
    )
    .unwrap();
    // Names key cursors at destinations: unique in the registry.
    gateway
        .runtime
        .block_on(gateway.client.deploy(
            &"other".parse().unwrap(),
            xxfunc_guest_modules::module_bytes("hello"),
        ))
        .unwrap();
    let taken = gateway
        .runtime
        .block_on(gateway.client.put_sink("other", "hook", &hook))
        .unwrap_err();
    let (status, code, _) = api_error(taken);
    assert_eq!((status, code.as_str()), (409, "conflict"));

    wait_report(&gateway, "hook-unset", "refused by the runner", |r| {
        r.is_some_and(|r| {
            r.state == "failed"
                && r.last_error
                    .as_deref()
                    .is_some_and(|e| e.contains("XXFUNC_TEST_NOT_SET_ANYWHERE is not set"))
        })
    });
    let view = wait_report(&gateway, "hook", "failed on the receiver's 410", |r| {
        r.is_some_and(|r| r.state == "failed")
    });
    let report = &view.sinks[0].runners[0].report;
    assert!(
        report
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("410"),
        "{report:?}"
    );
    assert_eq!(receiver.accepted().len(), 2, "nothing after the refusal");
    assert_eq!(view.sinks[0].runners[0].runner, "local");

    // Retried through the registry: it delivers the rest.
    receiver
        .gone
        .store(false, std::sync::atomic::Ordering::SeqCst);
    gateway
        .runtime
        .block_on(gateway.client.retry_sink("erc20", "hook"))
        .unwrap();
    let events = xxfunc_runner::FixtureSource::open(&replay.events)
        .unwrap()
        .events()
        .len() as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = gateway
            .runtime
            .block_on(gateway.client.function("erc20"))
            .unwrap();
        let caught_up = v.runners.first().is_some_and(|r| {
            r.counters.invocations == events
                && r.sinks
                    .iter()
                    .any(|s| s.name == "hook" && s.state == "idle" && s.lag_records == 0)
        });
        if caught_up {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up: {v:#?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Removed: the runner stops it, and its view no longer lists it.
    let view = gateway
        .runtime
        .block_on(gateway.client.remove_sink("erc20", "hook"))
        .unwrap();
    assert_eq!(
        view.sinks
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["hook-unset"]
    );
    let (status, _, _) = api_error(
        gateway
            .runtime
            .block_on(gateway.client.remove_sink("erc20", "hook"))
            .unwrap_err(),
    );
    assert_eq!(status, 404);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = gateway
            .runtime
            .block_on(gateway.client.function("erc20"))
            .unwrap();
        if v.runners
            .first()
            .is_some_and(|r| r.sinks.iter().all(|s| s.name != "hook"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the runner still shows hook: {v:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(child);

    // The receiver holds the canonical chain's records; the removed sink's cursor is gone.
    let runner = replay.runner(&data);
    let want = canonical(&outcomes(&runner, &replay.id), 0);
    assert!(!want.is_empty());
    assert_eq!(apply(&receiver.accepted()), want);
    assert_eq!(runner.sink_cursor("hook").unwrap(), None);
    assert_eq!(receiver.seen.lock().bad_signatures, 0);
}
