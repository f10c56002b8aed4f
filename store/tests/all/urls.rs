//! Opening stores from URLs, and URLs that must be refused.

use xxfunc_store::{ModuleStore, StoreConfig, StoreError};

fn invalid(url: &str, config: StoreConfig, reason_part: &str) {
    match ModuleStore::open_with(url, config) {
        Err(StoreError::InvalidUrl { url: got, reason }) => {
            assert_eq!(got, url);
            assert!(reason.contains(reason_part), "{url}: {reason}");
        }
        other => panic!("{url}: expected InvalidUrl, got {other:?}"),
    }
}

#[test]
fn bad_urls_are_refused() {
    let none = || StoreConfig::default().with_env(false);
    invalid("not a url", none(), "relative URL");
    invalid("ftp://host/x", none(), "unsupported scheme");
    invalid("http://127.0.0.1:9000/bucket", none(), "unsupported scheme");
    invalid("file://remote-host/data", none(), "must be local");
    invalid(
        "s3://key:secret@bucket/p",
        none(),
        "credentials do not belong",
    );
    invalid(
        "s3://bucket/p",
        none().with_option("aws_no_such_option", "1"),
        "unknown S3 option",
    );
    invalid(
        "s3://bucket/p",
        none().with_option("aws_endpoint", "not a url"),
        "invalid S3 endpoint",
    );
}

#[test]
fn file_store_directory_is_created_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c");
    let url = url::Url::from_directory_path(&nested).unwrap().to_string();
    ModuleStore::open(&url).unwrap();
    assert!(nested.is_dir());

    // A regular file where the directory should be.
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let url = url::Url::from_file_path(&file).unwrap().to_string();
    invalid(&url, StoreConfig::default(), "cannot create directory");
}

#[tokio::test]
async fn s3_url_prefix_becomes_the_key_prefix() {
    // Building an S3 store contacts nothing; keys are computed locally.
    let config = StoreConfig::default()
        .with_env(false)
        .with_option("aws_endpoint", "http://127.0.0.1:9")
        .with_option("aws_access_key_id", "k")
        .with_option("aws_secret_access_key", "s");
    let store = ModuleStore::open_with("s3://bucket/team/modules/", config).unwrap();
    let hash = xxfunc_store::ModuleHash::of(b"x");
    assert_eq!(
        store.key(&hash),
        format!("team/modules/blake3/{}", hash.to_hex())
    );
    assert!(store.description().contains("http://127.0.0.1:9"));

    let memory = ModuleStore::open("memory://").unwrap();
    assert_eq!(memory.key(&hash), format!("blake3/{}", hash.to_hex()));
}
