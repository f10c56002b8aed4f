//! Resolving what users type (full hashes, prefixes) to stored modules.

use std::collections::HashMap;

use xxfunc_store::{HashPrefix, ModuleHash, ModuleStore, StoreError, resolve_in};

/// Two distinct small inputs whose hashes share their first 8 hex digits (32 bits).
///
/// A birthday search: among n hashes a shared 32-bit prefix is expected after about
/// sqrt(2^32 * pi / 2) ~ 82k inputs, i.e. milliseconds of hashing. Deterministic.
fn inputs_sharing_8_hex_digits() -> (Vec<u8>, Vec<u8>) {
    let mut seen: HashMap<[u8; 4], u64> = HashMap::new();
    for i in 0u64..10_000_000 {
        let hash = blake3::hash(&i.to_le_bytes());
        let key: [u8; 4] = hash.as_bytes()[..4].try_into().expect("4 bytes");
        if let Some(j) = seen.insert(key, i) {
            return (j.to_le_bytes().to_vec(), i.to_le_bytes().to_vec());
        }
    }
    unreachable!("a 32-bit collision among 10M hashes is all but certain");
}

#[tokio::test]
async fn ambiguous_prefix_lists_every_candidate() {
    let (x, y) = inputs_sharing_8_hex_digits();
    let store = ModuleStore::open("memory://").unwrap();
    let a = store.put(x).await.unwrap().hash;
    let b = store.put(y).await.unwrap().hash;
    let other = store.put(b"unrelated".to_vec()).await.unwrap().hash;
    assert_ne!(a, b);
    assert_eq!(a.short(8), b.short(8));

    for typed in [
        a.short(8),
        format!("blake3:{}", a.short(8)),
        a.short(8).to_uppercase(),
    ] {
        match store.resolve(&typed).await {
            Err(StoreError::Ambiguous { prefix, candidates }) => {
                assert_eq!(prefix.hex(), a.short(8));
                let mut expected = vec![a, b];
                expected.sort();
                assert_eq!(candidates, expected);
            }
            other => panic!("{typed}: expected Ambiguous, got {other:?}"),
        }
    }
    let message = store.resolve(&a.short(8)).await.unwrap_err().to_string();
    assert!(
        message.contains(&a.to_string()) && message.contains(&b.to_string()),
        "{message}"
    );
    assert!(message.contains("ambiguous"), "{message}");

    // One more digit (where they differ) is unique again.
    let common = a
        .to_hex()
        .chars()
        .zip(b.to_hex().chars())
        .take_while(|(p, q)| p == q)
        .count();
    assert_eq!(store.resolve(&a.short(common + 1)).await.unwrap(), a);
    assert_eq!(store.resolve(&b.short(common + 1)).await.unwrap(), b);
    assert_eq!(store.resolve(&other.short(8)).await.unwrap(), other);

    // Full hashes never need resolving against the list.
    assert_eq!(store.resolve(&a.to_string()).await.unwrap(), a);
    assert_eq!(store.resolve(&a.to_hex()).await.unwrap(), a);
}

#[tokio::test]
async fn prefixes_on_a_file_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = url::Url::from_directory_path(dir.path())
        .unwrap()
        .to_string();
    let store = ModuleStore::open(&url).unwrap();
    let mut hashes = Vec::new();
    for i in 0..20u32 {
        hashes.push(store.put(i.to_le_bytes().to_vec()).await.unwrap().hash);
    }
    for hash in &hashes {
        assert_eq!(store.resolve(&hash.short(8)).await.unwrap(), *hash);
        assert_eq!(
            store
                .resolve(&format!("blake3:{}", hash.short(12)))
                .await
                .unwrap(),
            *hash
        );
        assert_eq!(
            store.resolve(&hash.to_hex().to_uppercase()).await.unwrap(),
            *hash
        );
    }
}

#[tokio::test]
async fn bad_input_is_rejected_before_looking() {
    let store = ModuleStore::open("memory://").unwrap();
    let hash = store.put(b"module".to_vec()).await.unwrap().hash;
    let hex = hash.to_hex();
    let cases = [
        (hex[..7].to_string(), "at least 8"),
        (format!("blake3:{}", &hex[..4]), "at least 8"),
        (String::new(), "at least 8"),
        (format!("{}g", &hex[..8]), "not a hex digit"),
        (
            format!("blake3:{}-{}", &hex[..8], &hex[9..12]),
            "not a hex digit",
        ),
        (format!("sha256:{hex}"), "unsupported hash scheme"),
        (format!("{hex}00"), "64 hex digits"),
    ];
    for (input, reason_part) in cases {
        match store.resolve(&input).await {
            Err(StoreError::InvalidHash { input: got, reason }) => {
                assert_eq!(got, input);
                assert!(reason.contains(reason_part), "{input:?}: {reason}");
            }
            other => panic!("{input:?}: expected InvalidHash, got {other:?}"),
        }
    }
}

#[test]
fn resolve_in_over_any_list() {
    let hashes: Vec<ModuleHash> = (0..100u32)
        .map(|i| ModuleHash::of(&i.to_le_bytes()))
        .collect();
    for hash in &hashes {
        let prefix: HashPrefix = hash.short(8).parse().unwrap();
        assert_eq!(resolve_in(&prefix, hashes.iter().copied()).unwrap(), *hash);
        // Duplicates in the list are not ambiguity.
        assert_eq!(resolve_in(&prefix, [*hash, *hash]).unwrap(), *hash);
    }
    let absent: HashPrefix = ModuleHash::of(b"absent").short(10).parse().unwrap();
    assert!(matches!(
        resolve_in(&absent, hashes.iter().copied()),
        Err(StoreError::PrefixNotFound { prefix }) if prefix == absent
    ));
}
