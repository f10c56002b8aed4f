//! The store's contract, checked against every backend.
//!
//! Each case is an `async fn(Kind)`; `conformance!` instantiates it once per backend as
//! `conformance::<backend>::<case>`.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use xxfunc_store::{HashPrefix, ModuleHash, StoreConfig, StoreError};

use crate::backends::{Backend, Kind, files_under, random_bytes};

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::Memory).await;
                }
            )*
        }
        mod file {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::File).await;
                }
            )*
        }
        mod s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::Kind::S3).await;
                }
            )*
        }
    };
}

conformance!(
    same_bytes_same_hash,
    put_is_idempotent,
    concurrent_puts_of_the_same_module,
    concurrent_puts_of_different_modules,
    flipped_byte_is_corrupt,
    truncated_object_is_corrupt,
    missing_module,
    oversize_put_stores_nothing,
    oversize_stream_stores_nothing,
    failing_input_stream_stores_nothing,
    stream_32_mib,
    delete_then_put_again,
    list_ignores_foreign_objects,
    upload_records_follow_recorded_puts,
    prefix_listing_finds_exactly_the_matches,
);

/// Opens a fresh backend, or returns from the case when s3s-fs is unavailable (skipped
/// with a printed message; with `CI` set, `S3sFs::start` fails instead).
macro_rules! open {
    ($kind:expr) => {
        open!($kind, StoreConfig::default())
    };
    ($kind:expr, $config:expr) => {
        match Backend::open($kind, $config) {
            Some(backend) => backend,
            None => return,
        }
    };
}

async fn same_bytes_same_hash(kind: Kind) {
    let b = open!(kind);
    for (i, len) in [0usize, 1, 1000, 300 * 1024].into_iter().enumerate() {
        let bytes = random_bytes(i as u64, len);
        let out = b.store.put(bytes.clone()).await.unwrap();
        let independent = ModuleHash::from_bytes(*blake3::hash(&bytes).as_bytes());
        assert_eq!(out.hash, independent, "{kind:?} len {len}");
        assert_eq!(
            out.hash.to_string(),
            format!("blake3:{}", blake3::hash(&bytes).to_hex())
        );
        assert_eq!(out.size, len as u64);
        assert!(out.created);
        assert_eq!(b.store.get(&out.hash).await.unwrap(), bytes);
        assert!(b.store.contains(&out.hash).await.unwrap());
        assert_eq!(b.store.size(&out.hash).await.unwrap(), len as u64);
        assert!(
            b.store
                .key(&out.hash)
                .ends_with(&format!("blake3/{}", out.hash.to_hex()))
        );

        // The same bytes through the streaming path give the same hash.
        let chunks: Vec<Result<Bytes, std::io::Error>> = bytes
            .chunks(777)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let streamed = b.store.put_stream(stream::iter(chunks)).await.unwrap();
        assert_eq!(streamed.hash, out.hash);
        assert!(!streamed.created);
    }
    assert_eq!(b.store.list().await.unwrap().len(), 4);
}

async fn put_is_idempotent(kind: Kind) {
    let b = open!(kind);
    let bytes = random_bytes(7, 4096);
    let first = b.store.put(bytes.clone()).await.unwrap();
    let second = b.store.put(bytes.clone()).await.unwrap();
    assert!(first.created);
    assert!(
        !second.created,
        "second put of the same bytes must not create"
    );
    assert_eq!(first.hash, second.hash);
    // Another client sees the module and also does not create it again.
    let other = b.second_client();
    assert!(!other.put(bytes.clone()).await.unwrap().created);
    assert_eq!(b.store.list().await.unwrap(), vec![first.hash]);
    assert_eq!(other.get(&first.hash).await.unwrap(), bytes);
}

async fn concurrent_puts_of_the_same_module(kind: Kind) {
    let b = open!(kind);
    let bytes = Bytes::from(random_bytes(11, 256 * 1024));
    let expected = ModuleHash::of(&bytes);
    let mut tasks = Vec::new();
    for i in 0..16 {
        // Half share one client, half are separate clients (like separate processes).
        let store = if i % 2 == 0 {
            b.store.clone()
        } else {
            b.second_client()
        };
        let bytes = bytes.clone();
        tasks.push(tokio::spawn(async move { store.put(bytes).await }));
    }
    let mut created = 0;
    for task in tasks {
        let out = task.await.unwrap().unwrap();
        assert_eq!(out.hash, expected);
        created += usize::from(out.created);
    }
    match kind {
        // Atomic create-if-absent (hard link / lock): exactly one writer wins.
        Kind::Memory | Kind::File => assert_eq!(created, 1, "{kind:?}"),
        // s3s-fs checks `If-None-Match: *` before writing, not atomically with it, so racing
        // writers of the same bytes may each report creating it; the object is whole either way.
        Kind::S3 => assert!(created >= 1, "{kind:?}: {created}"),
    }
    assert_eq!(b.store.list().await.unwrap(), vec![expected]);
    assert_eq!(b.store.get(&expected).await.unwrap(), bytes);
    assert!(b.staging_keys().await.is_empty());
}

async fn concurrent_puts_of_different_modules(kind: Kind) {
    let b = open!(kind);
    let mut tasks = Vec::new();
    let mut expected = Vec::new();
    for i in 0..32u64 {
        let bytes = random_bytes(100 + i, 10_000 + i as usize);
        expected.push(ModuleHash::of(&bytes));
        let store = if i % 2 == 0 {
            b.store.clone()
        } else {
            b.second_client()
        };
        tasks.push(tokio::spawn(async move { store.put(bytes).await }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap().created);
    }
    expected.sort();
    assert_eq!(b.store.list().await.unwrap(), expected);
    for hash in &expected {
        assert_eq!(ModuleHash::of(&b.store.get(hash).await.unwrap()), *hash);
    }
}

async fn assert_corrupt(b: &Backend, hash: &ModuleHash) {
    match b.store.get(hash).await {
        Err(StoreError::Corrupt { hash: h, key }) => {
            assert_eq!(h, *hash);
            assert_eq!(key, b.store.key(hash));
        }
        other => panic!("{:?}: expected Corrupt, got {other:?}", b.kind),
    }
    // The streaming reader yields the bytes it read, then Corrupt as its last item.
    let items: Vec<_> = b.store.get_stream(hash).await.unwrap().collect().await;
    match items.last() {
        Some(Err(StoreError::Corrupt { hash: h, .. })) => assert_eq!(h, hash),
        other => panic!("{:?}: expected a final Corrupt item, got {other:?}", b.kind),
    }
    assert!(items[..items.len() - 1].iter().all(Result::is_ok));
    let err = b.store.get(hash).await.unwrap_err().to_string();
    assert!(
        err.contains(&hash.to_string()) && err.contains(&b.store.key(hash)),
        "{err}"
    );
}

async fn flipped_byte_is_corrupt(kind: Kind) {
    let b = open!(kind);
    let bytes = random_bytes(21, 100_000);
    let hash = b.store.put(bytes).await.unwrap().hash;
    b.tamper(&hash, |bytes| bytes[50_000] ^= 0x01).await;
    assert_corrupt(&b, &hash).await;
    // Still listed: corruption is reported on read, not hidden.
    assert_eq!(b.store.list().await.unwrap(), vec![hash]);
    // Delete + put repairs it.
    b.store.delete(&hash).await.unwrap();
    let fixed = b.store.put(random_bytes(21, 100_000)).await.unwrap();
    assert!(fixed.created);
    assert_eq!(fixed.hash, hash);
    assert!(b.store.get(&hash).await.is_ok());
}

async fn truncated_object_is_corrupt(kind: Kind) {
    let b = open!(kind);
    let a = b.store.put(random_bytes(31, 64 * 1024)).await.unwrap().hash;
    b.tamper(&a, |bytes| bytes.truncate(1000)).await;
    assert_corrupt(&b, &a).await;

    let c = b.store.put(random_bytes(32, 64 * 1024)).await.unwrap().hash;
    b.tamper(&c, Vec::clear).await;
    assert_corrupt(&b, &c).await;
}

async fn missing_module(kind: Kind) {
    let b = open!(kind);
    let hash = ModuleHash::of(b"never stored");
    assert!(matches!(b.store.get(&hash).await, Err(StoreError::NotFound { hash: h }) if h == hash));
    assert!(matches!(
        b.store.get_stream(&hash).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        b.store.size(&hash).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(!b.store.contains(&hash).await.unwrap());
    assert!(b.store.list().await.unwrap().is_empty());
    // Deleting what is not there succeeds on every backend.
    b.store.delete(&hash).await.unwrap();
    assert!(matches!(
        b.store.resolve(&hash.to_string()).await,
        Err(StoreError::NotFound { hash: h }) if h == hash
    ));
    let err = b.store.resolve(&hash.short(8)).await.unwrap_err();
    assert!(matches!(err, StoreError::PrefixNotFound { .. }), "{err:?}");
    assert!(err.is_not_found());
    assert!(
        b.store
            .get(&hash)
            .await
            .unwrap_err()
            .to_string()
            .contains(&hash.to_string())
    );
}

async fn assert_nothing_stored(b: &Backend) {
    assert!(
        b.store.list().await.unwrap().is_empty(),
        "{:?}: list not empty",
        b.kind
    );
    assert!(
        b.staging_keys().await.is_empty(),
        "{:?}: staging leftovers",
        b.kind
    );
    if let Some(root) = b.root() {
        // No module, staging object or partial file anywhere (s3s-fs keeps its own
        // bookkeeping as dot-files outside the bucket directory).
        let files = files_under(&root);
        assert!(
            files.is_empty(),
            "{:?}: files left behind: {files:?}",
            b.kind
        );
    }
}

async fn oversize_put_stores_nothing(kind: Kind) {
    let b = open!(kind, StoreConfig::default().with_max_module_size(1024));
    assert_eq!(b.store.max_module_size(), 1024);
    let err = b.store.put(random_bytes(41, 1025)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                size: 1025,
                max: 1024
            }
        ),
        "{kind:?}: {err:?}"
    );
    let chunks = (0..3).map(|i| Ok::<_, std::io::Error>(Bytes::from(random_bytes(i, 512))));
    let err = b.store.put_stream(stream::iter(chunks)).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::TooLarge {
                size: 1536,
                max: 1024
            }
        ),
        "{err:?}"
    );
    assert_nothing_stored(&b).await;
    // Exactly the limit is fine.
    assert!(b.store.put(random_bytes(42, 1024)).await.unwrap().created);
}

async fn oversize_stream_stores_nothing(kind: Kind) {
    // Large enough that the stream is already being uploaded (multipart, staging key) when
    // the limit is crossed.
    let max = 10 << 20;
    let b = open!(kind, StoreConfig::default().with_max_module_size(max));
    let chunks = (0..12u64).map(|i| Ok::<_, std::io::Error>(Bytes::from(random_bytes(i, 1 << 20))));
    let err = b.store.put_stream(stream::iter(chunks)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::TooLarge { size, max: m } if m == max && size > max),
        "{kind:?}: {err:?}"
    );
    assert_nothing_stored(&b).await;
}

async fn failing_input_stream_stores_nothing(kind: Kind) {
    let b = open!(kind);
    for ok_chunks in [1u64, 10] {
        let chunks = (0..ok_chunks)
            .map(|i| Ok(Bytes::from(random_bytes(i, 1 << 20))))
            .chain([Err(std::io::Error::other("client went away"))]);
        let err = b.store.put_stream(stream::iter(chunks)).await.unwrap_err();
        match &err {
            StoreError::Input { source } => assert!(source.to_string().contains("went away")),
            other => panic!("{kind:?}: expected Input, got {other:?}"),
        }
        assert_nothing_stored(&b).await;
    }
}

async fn stream_32_mib(kind: Kind) {
    let b = open!(kind);
    let bytes = Bytes::from(random_bytes(51, 32 << 20));
    let chunks: Vec<Result<Bytes, std::io::Error>> = (0..bytes.len())
        .step_by(64 * 1024)
        .map(|i| Ok(bytes.slice(i..i + 64 * 1024)))
        .collect();
    let out = b.store.put_stream(stream::iter(chunks)).await.unwrap();
    assert_eq!(
        out.hash,
        ModuleHash::from_bytes(*blake3::hash(&bytes).as_bytes())
    );
    assert_eq!(out.size, 32 << 20);
    assert!(out.created);
    assert!(
        b.staging_keys().await.is_empty(),
        "staging object deleted after publishing"
    );

    let stream = b.store.get_stream(&out.hash).await.unwrap();
    assert_eq!(stream.hash(), out.hash);
    let read: Vec<Bytes> = stream.try_collect().await.unwrap();
    assert_eq!(read.concat(), bytes);
    assert_eq!(b.store.get(&out.hash).await.unwrap(), bytes);

    // Streaming the same module again, or putting it whole, creates nothing.
    let again = b
        .store
        .put_stream(stream::iter([Ok::<_, std::io::Error>(bytes.clone())]))
        .await
        .unwrap();
    assert!(!again.created);
    assert!(!b.store.put(bytes).await.unwrap().created);
    assert!(b.staging_keys().await.is_empty());
    assert_eq!(b.store.list().await.unwrap(), vec![out.hash]);
}

async fn delete_then_put_again(kind: Kind) {
    let b = open!(kind);
    let keep = b.store.put(random_bytes(61, 10)).await.unwrap().hash;
    let gone = b.store.put(random_bytes(62, 10)).await.unwrap().hash;
    b.store.delete(&gone).await.unwrap();
    assert!(!b.store.contains(&gone).await.unwrap());
    assert_eq!(b.store.list().await.unwrap(), vec![keep]);
    assert!(b.store.put(random_bytes(62, 10)).await.unwrap().created);
    assert!(b.store.contains(&gone).await.unwrap());
}

async fn list_ignores_foreign_objects(kind: Kind) {
    use object_store::{ObjectStoreExt, PutPayload, path::Path};
    let b = open!(kind);
    let hash = b.store.put(random_bytes(71, 10)).await.unwrap().hash;
    let key = b.store.key(&hash);
    let dir = key.strip_suffix(&hash.to_hex()).unwrap();
    for name in [
        "README",
        &hash.to_hex().to_uppercase(),
        &hash.to_hex()[..63],
    ] {
        b.store
            .object_store()
            .put(
                &Path::parse(format!("{dir}{name}")).unwrap(),
                PutPayload::from_static(b"x"),
            )
            .await
            .unwrap();
    }
    assert_eq!(b.store.list().await.unwrap(), vec![hash]);
}

async fn upload_records_follow_recorded_puts(kind: Kind) {
    use std::time::{Duration, SystemTime};
    let b = open!(kind);
    // Backends keep last-modified times to the second (S3) and clocks may differ a little.
    let slack = Duration::from_secs(2);
    let before = SystemTime::now() - slack;
    let plain = b.store.put(random_bytes(81, 10)).await.unwrap();
    assert!(
        b.store.upload_records().await.unwrap().is_empty(),
        "a plain put records nothing"
    );
    let recorded = b.store.put_recorded(random_bytes(82, 10)).await.unwrap();
    assert!(recorded.created);
    let again = b.store.put_recorded(random_bytes(82, 10)).await.unwrap();
    assert!(!again.created, "recording again is still an idempotent put");
    let records = b.store.upload_records().await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].hash, recorded.hash);
    assert!(
        records[0].at >= before && records[0].at <= SystemTime::now() + slack,
        "{records:?}"
    );
    // Records are not modules, and deleting one keeps the module.
    let mut modules = vec![plain.hash, recorded.hash];
    modules.sort();
    assert_eq!(b.store.list().await.unwrap(), modules);
    b.store.delete_upload_record(&recorded.hash).await.unwrap();
    b.store.delete_upload_record(&recorded.hash).await.unwrap();
    assert!(b.store.upload_records().await.unwrap().is_empty());
    assert!(b.store.contains(&recorded.hash).await.unwrap());
    // Another client (another process) sees the records.
    b.store.put_recorded(random_bytes(83, 10)).await.unwrap();
    assert_eq!(b.second_client().upload_records().await.unwrap().len(), 1);
    // An oversize recorded put records nothing.
    let small = open!(kind, StoreConfig::default().with_max_module_size(8));
    assert!(matches!(
        small.store.put_recorded(random_bytes(84, 9)).await,
        Err(StoreError::TooLarge { .. })
    ));
    assert!(small.store.upload_records().await.unwrap().is_empty());
}

/// `list_prefix` (what `resolve` uses) answers exactly the modules whose hash starts with
/// the prefix, whether the backend lists in key order and stops early (S3, memory) or not
/// (a local directory): prefixes of stored modules, prefixes that fall between two stored
/// keys, and prefixes past the last one.
async fn prefix_listing_finds_exactly_the_matches(kind: Kind) {
    let b = open!(kind);
    for i in 0..48u64 {
        b.store.put(random_bytes(1000 + i, 64)).await.unwrap();
    }
    let all = b.store.list().await.unwrap();
    assert_eq!(all.len(), 48);
    let expect = |prefix: &HashPrefix| -> Vec<ModuleHash> {
        all.iter().copied().filter(|h| prefix.matches(h)).collect()
    };
    let mut prefixes: Vec<HashPrefix> = Vec::new();
    for hash in &all {
        let hex = hash.to_hex();
        prefixes.push(hex[..8].parse().unwrap());
        prefixes.push(hex[..12].parse().unwrap());
        // The same digits with the last one moved up: between this key and the next.
        let mut bumped: Vec<u8> = hex[..8].bytes().collect();
        bumped[7] = if bumped[7] == b'f' {
            b'0'
        } else {
            bumped[7] + 1
        };
        prefixes.push(String::from_utf8(bumped).unwrap().parse().unwrap());
    }
    prefixes.push("ffffffff".parse().unwrap());
    prefixes.push("00000000".parse().unwrap());
    for prefix in &prefixes {
        assert_eq!(
            b.store.list_prefix(prefix).await.unwrap(),
            expect(prefix),
            "{prefix}"
        );
    }
    for hash in &all {
        assert_eq!(b.store.resolve(&hash.short(10)).await.unwrap(), *hash);
    }
}
