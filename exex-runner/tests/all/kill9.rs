//! `kill -9` of the runner binary at random points during a fixture replay:
//! after each restart every function resumes after its cursor, and the final
//! records equal those of an uninterrupted run (no loss, no duplicates).

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::Arc,
    time::Duration,
};

use rand::Rng;
use xxfunc_api::{FunctionId, InvocationRecord};
use xxfunc_runner::{Runner, RunnerConfig, StoreModules};
use xxfunc_store::{ModuleHash, ModuleStore};

use crate::{chain, replay};

const BIN: &str = env!("CARGO_BIN_EXE_xxfunc-runner");

struct Setup {
    store_url: String,
    fixtures: PathBuf,
    functions: Vec<(FunctionId, ModuleHash)>,
}

fn runner_cmd(setup: &Setup, data: &Path, delay_ms: u64) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data)
        .args([
            "--store",
            &setup.store_url,
            "--exit-at-end",
            "--workers",
            "2",
        ])
        .arg("--fixtures")
        .arg(&setup.fixtures)
        .args(["--replay-delay-ms", &delay_ms.to_string()])
        // Compared event by event with the uninterrupted run: no function may lag.
        .args(crate::NEVER_LAG_FLAGS)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (id, hash) in &setup.functions {
        cmd.arg("--function").arg(format!("{id}={hash}"));
    }
    cmd
}

fn outputs(setup: &Setup, data: &Path) -> Vec<Vec<InvocationRecord>> {
    let store = ModuleStore::open(&setup.store_url).unwrap();
    let runner = Runner::open(
        RunnerConfig::new(data),
        Arc::new(StoreModules::new(store).unwrap()),
    )
    .unwrap();
    setup
        .functions
        .iter()
        .map(|(id, _)| {
            runner
                .outputs(id)
                .unwrap()
                .into_iter()
                // Wall-clock fields differ between runs by nature.
                .map(|r| InvocationRecord {
                    duration_us: 0,
                    at_ms: 0,
                    ..r
                })
                .collect()
        })
        .collect()
}

#[test]
fn kill_dash_nine_at_twenty_random_points_loses_and_repeats_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    std::fs::create_dir_all(&store_dir).unwrap();
    let store_url = format!("file://{}", store_dir.display());
    let store = ModuleStore::open(&store_url).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut functions = Vec::new();
    for (name, bytes) in [
        ("hello", xxfunc_guest_modules::module_bytes("hello")),
        (
            "erc20-transfers",
            xxfunc_guest_modules::module_bytes("erc20-transfers"),
        ),
        ("echo", chain::wasm(chain::ECHO_MAGIC)),
    ] {
        let hash = rt.block_on(store.put(bytes)).unwrap().hash;
        functions.push((name.parse().unwrap(), hash));
    }
    let fixtures = replay::events_dir(dir.path());
    let setup = Setup {
        store_url,
        fixtures,
        functions,
    };

    // Uninterrupted reference run.
    let reference = dir.path().join("reference");
    let status = runner_cmd(&setup, &reference, 0).status().unwrap();
    assert!(status.success());
    let expected = outputs(&setup, &reference);
    assert!(expected.iter().all(|records| !records.is_empty()));

    // Interrupted runs: kill -9 at random points until 20 kills hit a
    // running process, then one run to the end. The per-event delay makes
    // the whole replay longer than all 20 runs together, however fast the
    // machine starts the runner, so every run is still going when its kill
    // comes and the kills land at spread-out points of the replay.
    const KILLS: u64 = 20;
    const MAX_RUN_MS: u64 = 250;
    let events = std::fs::read_dir(&setup.fixtures).unwrap().count() as u64;
    let delay_ms = (2 * KILLS * MAX_RUN_MS).div_ceil(events.max(1));
    let data = dir.path().join("killed");
    let mut rng = rand::rng();
    let mut kills = 0;
    let mut attempts = 0;
    while kills < KILLS {
        attempts += 1;
        assert!(
            attempts < 10 * KILLS,
            "could not kill the runner mid-replay {KILLS} times"
        );
        let mut child = runner_cmd(&setup, &data, delay_ms).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(20..MAX_RUN_MS)));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        let _ = child.wait();
    }
    let status = runner_cmd(&setup, &data, 0).status().unwrap();
    assert!(status.success());
    let got = outputs(&setup, &data);
    for (((id, _), want), got) in setup.functions.iter().zip(&expected).zip(&got) {
        assert_eq!(
            got.len(),
            want.len(),
            "{id}: record count after {kills} kills"
        );
        assert_eq!(got, want, "{id}");
    }
}
