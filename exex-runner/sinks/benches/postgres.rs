//! `sink.postgres.records_per_s`: 100 blocks × 1,000 records delivered by the
//! PostgreSQL sink (one `INSERT … SELECT … FROM UNNEST` and the cursor per
//! block, in one transaction) into a private local cluster; baseline: the
//! same rows with one plain `INSERT` per row in one transaction per block.
//! Prints one markdown row: `| id | value | unit | baseline | ratio | notes |`.
//!
//! Run with `cargo bench -p xxfunc-sinks --features postgres --bench postgres`
//! (PostgreSQL's server binaries must be installed; as root, the cluster runs
//! as the unprivileged user `xxfunc-pg`, created if absent).

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Instant,
};

use xxfunc_api::{
    BlockRef, FunctionId, ModuleHash,
    outputs::{ItemKind, OutputItem},
};
use xxfunc_sinks::{Batch, Sink, SinkCursor, SinkSpec, postgres::PostgresSink};

const BLOCKS: u64 = 100;
const RECORDS: u64 = 1_000;
const PG_USER: &str = "xxfunc-pg";

struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_user: bool,
}

impl Cluster {
    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_user {
            let mut c = Command::new("runuser");
            c.args(["-u", PG_USER, "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("running a PostgreSQL tool");
        assert!(
            out.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Option<Self> {
        let bin = [
            "/usr/lib/postgresql/15/bin",
            "/usr/lib/postgresql/16/bin",
            "/usr/local/bin",
        ]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("initdb").is_file())?;
        let as_user = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if as_user {
            let exists = Command::new("id")
                .arg(PG_USER)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if !exists {
                let _ = Command::new("useradd")
                    .args(["-r", "-M", "-s", "/usr/sbin/nologin", PG_USER])
                    .status();
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("xxfunc-pg-bench-")
            .tempdir()
            .ok()?;
        if as_user {
            let _ = Command::new("chown").arg(PG_USER).arg(dir.path()).status();
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let c = Self {
            bin,
            dir,
            port,
            as_user,
        };
        let data = c.dir.path().join("data");
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str()?,
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
            ],
        );
        let opts = format!("-h 127.0.0.1 -p {port} -k {}", c.dir.path().display());
        let log = c.dir.path().join("log");
        c.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-D",
                data.to_str()?,
                "-l",
                log.to_str()?,
                "-o",
                &opts,
            ],
        );
        Some(c)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        self.run(
            "pg_ctl",
            &[
                "stop",
                "-m",
                "fast",
                "-D",
                data.to_str().unwrap_or_default(),
            ],
        );
    }
}

fn batches(function: &FunctionId) -> Vec<Batch> {
    let module = ModuleHash::of(b"bench");
    (0..BLOCKS)
        .map(|b| {
            let mut hash = [0u8; 32];
            hash[..8].copy_from_slice(&(b + 1).to_be_bytes());
            let block = BlockRef {
                number: b + 1,
                hash: hash.into(),
            };
            let first = b * RECORDS + 1;
            let records = (0..RECORDS)
                .map(|i| {
                    let line = format!(
                        r#"{{"from":"0x{i:040x}","to":"0x{b:040x}","value":"{}","log_index":{i}}}"#,
                        i * 1_000_000_007
                    );
                    OutputItem::new(
                        first + i,
                        ItemKind::Insert,
                        block,
                        module,
                        "bench",
                        line.as_bytes(),
                    )
                })
                .collect();
            Batch {
                function: function.clone(),
                runner: "bench".into(),
                kind: ItemKind::Insert,
                block,
                module,
                outcome: b + 1,
                first_item: first,
                records,
                cursor: SinkCursor {
                    outcome: b + 1,
                    item: first + RECORDS - 1,
                },
            }
        })
        .collect()
}

fn main() {
    let Some(cluster) = Cluster::start() else {
        eprintln!("skipping sink.postgres.records_per_s: PostgreSQL server binaries not found");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let spec: SinkSpec = format!(
        "bench=postgres:{},name=bench,table=bench_sink",
        cluster.url()
    )
    .parse()
    .expect("a sink spec");
    let batches = batches(&spec.function);
    let total = (BLOCKS * RECORDS) as f64;

    let mut sink = PostgresSink::from_spec(&spec).expect("the sink");
    rt.block_on(sink.open()).expect("opening the sink");
    let started = Instant::now();
    for batch in &batches {
        rt.block_on(sink.deliver(batch)).expect("delivering");
    }
    let sink_rate = total / started.elapsed().as_secs_f64();

    let (client, conn) = rt
        .block_on(tokio_postgres::connect(
            &cluster.url(),
            tokio_postgres::NoTls,
        ))
        .expect("connecting");
    rt.spawn(conn);
    rt.block_on(client.batch_execute(
        "CREATE TABLE bench_plain (function text NOT NULL, seq bigint NOT NULL, \
         block_number bigint NOT NULL, block_hash text NOT NULL, function_hash text NOT NULL, \
         record jsonb NOT NULL, PRIMARY KEY (function, seq))",
    ))
    .expect("creating the baseline table");
    let insert = rt
        .block_on(client.prepare(
            "INSERT INTO bench_plain (function, seq, block_number, block_hash, function_hash, record) \
             VALUES ($1, $2, $3, $4, $5, $6::text::jsonb)",
        ))
        .expect("preparing");
    let started = Instant::now();
    for batch in &batches {
        rt.block_on(async {
            client.batch_execute("BEGIN").await?;
            for r in &batch.records {
                let record = r
                    .record
                    .as_ref()
                    .map(|v| v.get().to_string())
                    .unwrap_or_default();
                client
                    .execute(
                        &insert,
                        &[
                            &"bench",
                            &(r.seq as i64),
                            &(batch.block.number as i64),
                            &batch.block.hash.to_string(),
                            &batch.module.to_string(),
                            &record,
                        ],
                    )
                    .await?;
            }
            client.batch_execute("COMMIT").await
        })
        .expect("baseline inserts");
    }
    let plain_rate = total / started.elapsed().as_secs_f64();
    println!(
        "| sink.postgres.records_per_s | {sink_rate:.0} | records/s | {plain_rate:.0} | {:.1} | \
         {BLOCKS} blocks × {RECORDS} records, local PostgreSQL; baseline: one INSERT per row, one \
         transaction per block |",
        sink_rate / plain_rate
    );
}
