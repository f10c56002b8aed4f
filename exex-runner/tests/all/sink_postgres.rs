//! The PostgreSQL sink against a private PostgreSQL cluster on loopback
//! (`initdb` + `pg_ctl` as an unprivileged user): after `kill -9` of the
//! runner binary at random moments the table equals the canonical chain's
//! records; a table the user altered so inserts fail stops the sink with the
//! server's error, skipping nothing, and a retry after the fix delivers all; a server
//! stopped during delivery and started again leaves the table equal to the chain too.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;
use xxfunc_runner::{SinkState, xxfunc_sinks};

use crate::sink_common::{BlockRecords, Replay, canonical, outcomes};

const BIN: &str = env!("CARGO_BIN_EXE_xxfunc-runner");
const PG_USER: &str = "xxfunc-pg";

/// A private cluster, stopped on drop.
pub struct Postgres {
    bin: PathBuf,
    data: PathBuf,
    _dir: tempfile::TempDir,
    pub port: u16,
    as_user: bool,
}

fn pg_bin() -> Option<PathBuf> {
    [
        "/usr/lib/postgresql/15/bin",
        "/usr/lib/postgresql/16/bin",
        "/usr/local/bin",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|d| d.join("initdb").is_file() && d.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Postgres {
    /// Starts a cluster, or `None` (with a message) when PostgreSQL's
    /// binaries are not installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = pg_bin() else {
            eprintln!(
                "skipping: PostgreSQL server binaries not found (apt-get install postgresql)"
            );
            return None;
        };
        let as_user = is_root();
        if as_user
            && !Command::new("id")
                .arg(PG_USER)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap()
                .success()
        {
            let ok = Command::new("useradd")
                .args(["-r", "-M", "-s", "/usr/sbin/nologin", PG_USER])
                .status()
                .unwrap()
                .success();
            assert!(ok, "creating the unprivileged user {PG_USER} for postgres");
        }
        let dir = tempfile::Builder::new()
            .prefix("xxfunc-pg-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        if as_user {
            let ok = Command::new("chown")
                .args([PG_USER, dir.path().to_str().unwrap()])
                .status()
                .unwrap()
                .success();
            assert!(ok);
        }
        let pg = Self {
            bin,
            data,
            port: free_port(),
            _dir: dir,
            as_user,
        };
        pg.run(
            "initdb",
            &[
                "-D",
                pg.data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        pg.up();
        Some(pg)
    }

    /// Starts the server (on the cluster's port) and waits until it accepts.
    fn up(&self) {
        let opts = format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off",
            self.port,
            self._dir.path().display()
        );
        let log = self._dir.path().join("log");
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-D",
                self.data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
            ],
        );
    }

    /// Stops the server at once (`-m immediate`: connections are cut).
    fn down(&self) {
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-m",
                "immediate",
                "-w",
                "-D",
                self.data.to_str().unwrap(),
            ],
        );
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self._dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// A client on a runtime of its own.
    pub fn client(&self) -> (tokio::runtime::Runtime, tokio_postgres::Client) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (client, conn) = rt
            .block_on(tokio_postgres::connect(&self.url(), tokio_postgres::NoTls))
            .unwrap();
        rt.spawn(conn);
        (rt, client)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap().to_string();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["stop", "-m", "immediate", "-D", &data])
            .current_dir(self._dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The table's rows of `erc20`, in seq order, grouped by block as a sink
/// shows them (records as JSON values: jsonb normalizes the text).
fn table(pg: &Postgres, table: &str) -> Vec<(String, Vec<Value>)> {
    let (rt, client) = pg.client();
    let rows = rt
        .block_on(client.query(
            &format!(
                "SELECT block_hash, record::text FROM {table} WHERE function = 'erc20' ORDER BY seq"
            ),
            &[],
        ))
        .unwrap();
    let mut out: Vec<(String, Vec<Value>)> = Vec::new();
    for row in rows {
        let hash: String = row.get(0);
        let record: Value = serde_json::from_str(row.get::<_, &str>(1)).unwrap();
        match out.last_mut() {
            Some((h, records)) if *h == hash => records.push(record),
            _ => out.push((hash, vec![record])),
        }
    }
    out
}

fn as_values(blocks: &[BlockRecords]) -> Vec<(String, Vec<Value>)> {
    blocks
        .iter()
        .map(|(hash, records)| {
            (
                hash.to_string(),
                records
                    .iter()
                    .map(|r| serde_json::from_slice(r).unwrap())
                    .collect(),
            )
        })
        .collect()
}

fn runner_cmd(
    replay: &Replay,
    data: &Path,
    sinks: &[String],
    delay_ms: u64,
    to_end: bool,
) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data)
        .args(["--store", &replay.store_url, "--workers", "2"])
        .arg("--fixtures")
        .arg(&replay.events)
        .args(["--replay-delay-ms", &delay_ms.to_string()])
        .arg("--function")
        .arg(format!("{}={}", replay.id, replay.hash))
        .args(["--sink-allow-host", "127.0.0.1"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for sink in sinks {
        cmd.arg("--sink").arg(sink);
    }
    if to_end {
        cmd.arg("--exit-at-end");
    }
    cmd
}

#[test]
fn postgres_table_equals_the_canonical_chain_after_kill_dash_nine_at_random_moments() {
    let Some(pg) = Postgres::start() else { return };
    let replay = Replay::new();
    let data = replay.dir.path().join("runner");
    // One sink delivers at once (undoing the reorgs), one 3 blocks deep.
    let sink = [
        format!("erc20=postgres:{},name=pg,table=transfers", pg.url()),
        format!(
            "erc20=postgres:{},name=pg3,table=transfers3,confirmations=3",
            pg.url()
        ),
    ];

    // Each run replays from its checkpoint with DELAY_MS per event; once its
    // sink has changed the table, it is killed at a random moment of the
    // next few events, while it delivers.
    const DELAY_MS: u64 = 50;
    let (rt, client) = pg.client();
    let rows = || -> i64 {
        rt.block_on(client.query_opt("SELECT count(*) FROM transfers", &[]))
            .ok()
            .flatten()
            .map_or(0, |r| r.get(0))
    };
    let k = crate::sink_common::kill_while_delivering(
        || {
            runner_cmd(&replay, &data, &sink, DELAY_MS, false)
                .spawn()
                .unwrap()
        },
        || rows() as u64,
        DELAY_MS,
    );
    let status = runner_cmd(&replay, &data, &sink, 0, true).status().unwrap();
    assert!(status.success());

    let runner = replay.runner(&data);
    let log = outcomes(&runner, &replay.id);
    let want = as_values(&canonical(&log, 0));
    assert!(!want.is_empty());
    assert_eq!(table(&pg, "transfers"), want, "after {k:?}");
    let want3 = as_values(&canonical(&log, 3));
    assert!(want3.len() < want.len());
    assert_eq!(
        table(&pg, "transfers3"),
        want3,
        "3 confirmations, after {k:?}"
    );
    // The sink's cursor in PostgreSQL covers the whole log.
    let row = rt
        .block_on(client.query_one(
            "SELECT outcome, item FROM xxfunc_sink_cursors WHERE sink = 'pg'",
            &[],
        ))
        .unwrap();
    assert_eq!(row.get::<_, i64>(0) as u64, log.last().unwrap().seq);
    eprintln!("postgres: {k:?}; final {} blocks", want.len());
}

#[test]
fn postgres_table_altered_by_a_user_stops_the_sink_until_fixed() {
    let Some(pg) = Postgres::start() else { return };
    let replay = Replay::new();
    // The user's table has a NOT NULL column the sink does not fill.
    let (rt, client) = pg.client();
    rt.block_on(client.batch_execute(
        "CREATE TABLE altered (
             function text NOT NULL, seq bigint NOT NULL, block_number bigint NOT NULL,
             block_hash text NOT NULL, function_hash text NOT NULL, record jsonb NOT NULL,
             note text NOT NULL,
             PRIMARY KEY (function, seq))",
    ))
    .unwrap();
    let data = replay.dir.path().join("runner");
    let spec: xxfunc_sinks::SinkSpec = format!(
        "erc20=postgres:{},name=pg,table=altered,attempts=2",
        pg.url()
    )
    .parse()
    .unwrap();
    let runner = replay.runner_with_sink(&data, &spec);
    let served = replay.serve(runner, false);
    let failed = served.wait_sink("pg", "failed on the altered table", |s| {
        s.state == SinkState::Failed
    });
    let error = failed.last_error.clone().unwrap();
    assert!(
        error.contains("\"note\"") && error.contains("23502"),
        "{error}"
    );
    assert_eq!(failed.cursor.item, 0, "nothing delivered");
    let count = |client: &tokio_postgres::Client| -> i64 {
        rt.block_on(client.query_one("SELECT count(*) FROM altered", &[]))
            .unwrap()
            .get(0)
    };
    assert_eq!(count(&client), 0);

    // Fixed by the user: the sink resumes at the batch it stopped on.
    rt.block_on(client.batch_execute("ALTER TABLE altered DROP COLUMN note"))
        .unwrap();
    assert!(served.status.retry_sink("pg"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = xxfunc_runner::FixtureSource::open(&replay.events)
        .unwrap()
        .events()
        .len() as u64;
    loop {
        let done = served
            .status
            .get()
            .functions
            .iter()
            .any(|f| f.counters.invocations == events);
        let s = served.sink("pg").unwrap();
        if done && s.state == SinkState::Idle && s.lag_records == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "sink did not catch up: {s:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let runner = served.finish();
    let want = as_values(&canonical(&outcomes(&runner, &replay.id), 0));
    assert_eq!(table(&pg, "altered"), want);

    // A type the records no longer fit: stops again, with the server's words.
    rt.block_on(client.batch_execute(
        "DELETE FROM altered; DELETE FROM xxfunc_sink_cursors;
         ALTER TABLE altered ALTER COLUMN record TYPE integer USING 0",
    ))
    .unwrap();
    let data = replay.dir.path().join("runner-2");
    let runner = replay.runner_with_sink(&data, &spec);
    let served = replay.serve(runner, false);
    let failed = served.wait_sink("pg", "failed on the retyped column", |s| {
        s.state == SinkState::Failed
    });
    let _ = served.finish();
    let error = failed.last_error.unwrap();
    assert!(
        error.contains("integer") && error.contains("42804"),
        "{error}"
    );
    assert_eq!(count(&client), 0);
}

#[test]
fn postgres_cursor_ahead_of_a_reset_runner_stops_the_sink_until_cleared() {
    let Some(pg) = Postgres::start() else {
        return;
    };
    let replay = Replay::new();
    let spec: xxfunc_sinks::SinkSpec = format!("erc20=postgres:{},name=pg,table=reset", pg.url())
        .parse()
        .unwrap();
    let run = |dir: &str, until_end: bool, delay: Duration| {
        let runner = replay.runner_with_sink(&replay.dir.path().join(dir), &spec);
        replay.serve_with_delay(runner, until_end, delay)
    };
    let first = run("first", true, Duration::ZERO);
    let runner = first.thread.join().unwrap();
    let want = as_values(&canonical(&outcomes(&runner, &replay.id), 0));
    drop(runner);
    assert_eq!(table(&pg, "reset"), want);

    // A runner with a fresh data directory, delivering to the same table
    // under the same sink name: its log starts again at seq 1, below the
    // table's cursor.
    let second = run("second", false, Duration::from_millis(50));
    let failed = second.wait_sink("pg", "failed on a cursor ahead of the log", |s| {
        s.state == SinkState::Failed
    });
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap_or_default()
            .contains("ahead of this runner's log"),
        "{failed:?}"
    );
    assert_eq!(table(&pg, "reset"), want, "nothing mixed into the table");

    // The operator clears the destination; a retry delivers the new log.
    let (rt, client) = pg.client();
    rt.block_on(
        client
            .batch_execute("DELETE FROM reset; DELETE FROM xxfunc_sink_cursors WHERE sink = 'pg'"),
    )
    .unwrap();
    assert!(second.status.retry_sink("pg"));
    second.wait_every_event(&replay);
    second.wait_sink("pg", "caught up after the retry", |s| {
        s.state == SinkState::Idle && s.lag_records == 0 && s.cursor.item > 0
    });
    let runner = second.finish();
    assert_eq!(
        table(&pg, "reset"),
        as_values(&canonical(&outcomes(&runner, &replay.id), 0))
    );
}

#[test]
fn postgres_table_equals_the_canonical_chain_across_a_server_outage() {
    let Some(pg) = Postgres::start() else { return };
    let replay = Replay::new();
    let data = replay.dir.path().join("runner");
    let spec: xxfunc_sinks::SinkSpec = format!(
        "erc20=postgres:{},name=pg,table=outage,timeout-ms=1000",
        pg.url()
    )
    .parse()
    .unwrap();
    let runner = replay.runner_with_sink(&data, &spec);
    let served = replay.serve_with_delay(runner, false, Duration::from_millis(30));
    served.wait_sink("pg", "a few batches delivered", |s| {
        s.delivered_batches >= 3
    });
    // Down in the middle of the delivery: the sink retries, the function runs on.
    pg.down();
    let during = served.wait_sink("pg", "retrying during the outage", |s| {
        s.state == SinkState::Retrying && s.attempts >= 2
    });
    assert!(during.last_error.is_some(), "{during:?}");
    std::thread::sleep(Duration::from_millis(500));
    pg.up();
    served.wait_every_event(&replay);
    let done = served.wait_sink("pg", "caught up after the outage", |s| {
        s.state == SinkState::Idle && s.lag_records == 0 && s.cursor.item > 0
    });
    let runner = served.finish();
    let want = as_values(&canonical(&outcomes(&runner, &replay.id), 0));
    assert!(!want.is_empty());
    assert_eq!(table(&pg, "outage"), want, "after the outage: {done:?}");
    eprintln!("postgres outage: during {during:?}; at the end {done:?}");
}
