//! Store throughput: `put` and `get` of 1 MiB and 32 MiB modules on the memory and file
//! backends, each next to a baseline measured in the same run on the same bytes:
//! `std::fs::write` + `blake3::hash` (put) and `std::fs::read` + `blake3::hash` (get).
//!
//! Every timed `put` stores a new module (distinct bytes generated outside the timed
//! region). Each figure is the median of repeated runs. Prints one markdown row per id:
//! `| id | value | unit | baseline | ratio | notes |`.

use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng, rngs::StdRng};
use xxfunc_store::{ModuleHash, ModuleStore};

const MIB: usize = 1 << 20;

struct Case {
    label: &'static str,
    size: usize,
    runs: usize,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let cases = [
        Case {
            label: "1MiB",
            size: MIB,
            runs: 41,
        },
        Case {
            label: "32MiB",
            size: 32 * MIB,
            runs: 9,
        },
    ];
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut rows = Vec::new();
    for backend in ["file", "memory"] {
        for case in &cases {
            rows.extend(runtime.block_on(bench(backend, case, &mut rng)));
        }
    }
    // Same order as BENCHMARKS.md: file first, put before get.
    for row in rows {
        println!("{row}");
    }
}

async fn bench(backend: &str, case: &Case, rng: &mut StdRng) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store_dir = dir.path().join("store");
    let baseline_dir = dir.path().join("baseline");
    std::fs::create_dir_all(&baseline_dir).expect("baseline dir");
    let url = match backend {
        "file" => url::Url::from_directory_path(&store_dir)
            .expect("absolute path")
            .to_string(),
        _ => "memory://".to_string(),
    };
    let store = ModuleStore::open(&url).expect("open store");

    let mut put = Vec::new();
    let mut get = Vec::new();
    let mut base_put = Vec::new();
    let mut base_get = Vec::new();
    // One warm-up round (index 0) is discarded.
    for run in 0..=case.runs {
        let mut bytes = vec![0u8; case.size];
        rng.fill_bytes(&mut bytes);
        let bytes = bytes::Bytes::from(bytes);

        // Alternate the order so page-cache and allocator effects do not favour one side.
        let (t_put, t_get, bp, bg) = if run % 2 == 0 {
            let (p, g) = time_store(&store, &bytes).await;
            let (bp, bg) = time_baseline(&baseline_dir, &bytes);
            (p, g, bp, bg)
        } else {
            let (bp, bg) = time_baseline(&baseline_dir, &bytes);
            let (p, g) = time_store(&store, &bytes).await;
            (p, g, bp, bg)
        };
        if run > 0 {
            put.push(t_put);
            get.push(t_get);
            base_put.push(bp);
            base_get.push(bg);
        }
    }

    let mibs = |d: Duration| case.size as f64 / MIB as f64 / d.as_secs_f64();
    let row = |op: &str, value: Duration, baseline: Duration, what: &str| {
        let (v, b) = (mibs(value), mibs(baseline));
        format!(
            "| store.{op}.{backend}.{} | {v:.0} | MiB/s | {b:.0} | {:.2} | median of {} runs; baseline: {what} |",
            case.label,
            v / b,
            case.runs,
        )
    };
    vec![
        row(
            "put",
            median(put),
            median(base_put),
            "std::fs::write + blake3::hash",
        ),
        row(
            "get",
            median(get),
            median(base_get),
            "std::fs::read + blake3::hash",
        ),
    ]
}

/// Puts a new module, reads it back (verified), then deletes it (untimed).
async fn time_store(store: &ModuleStore, bytes: &bytes::Bytes) -> (Duration, Duration) {
    let start = Instant::now();
    let out = store.put(bytes.clone()).await.expect("put");
    let t_put = start.elapsed();
    assert!(out.created, "each timed put stores a new module");
    let start = Instant::now();
    let read = store.get(&out.hash).await.expect("get");
    let t_get = start.elapsed();
    assert_eq!(read, *bytes);
    assert_eq!(out.hash, ModuleHash::of(bytes));
    store.delete(&out.hash).await.expect("delete");
    (t_put, t_get)
}

/// `std::fs::write` + `blake3::hash`, then `std::fs::read` + `blake3::hash`, of the same bytes.
fn time_baseline(dir: &std::path::Path, bytes: &[u8]) -> (Duration, Duration) {
    let path = dir.join(format!("{}.bin", blake3::hash(&bytes[..64]).to_hex()));
    let start = Instant::now();
    let hash = blake3::hash(bytes);
    std::fs::write(&path, bytes).expect("baseline write");
    let t_put = start.elapsed();
    let start = Instant::now();
    let read = std::fs::read(&path).expect("baseline read");
    let check = blake3::hash(&read);
    let t_get = start.elapsed();
    assert_eq!(hash, check);
    std::fs::remove_file(&path).expect("baseline cleanup");
    (t_put, t_get)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}
