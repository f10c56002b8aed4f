//! The on-disk layout: column families, key encodings and stored records.
//!
//! Every value is JSON (small, self-describing, readable with `ldb`). Keys are
//! raw bytes chosen so that RocksDB's byte order is the order we iterate in.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use xxfunc_api::{DesiredState, FunctionId, FunctionReport, ModuleHash, StartFrom};

use crate::error::{RegistryError, Result};

/// `name` → [`NameRecord`]: the current binding of every name.
pub(crate) const CF_NAMES: &str = "names";
/// `name \0 version(be u64)` → `VersionEntry`: every name's history.
pub(crate) const CF_VERSIONS: &str = "versions";
/// `id` → `ModuleHash`: pinned names (the hash they stay on) and pinned hashes.
pub(crate) const CF_PINS: &str = "pins";
/// `id` → [`DesiredRecord`]: desired state of every function that has one.
pub(crate) const CF_DESIRED: &str = "desired";
/// `seq(be u64)` → `FeedEntry`: the numbered change feed.
pub(crate) const CF_FEED: &str = "feed";
/// `id` → [`StoredReport`]: the latest runner report per function.
pub(crate) const CF_REPORTS: &str = "reports";
/// `id \0 seq(be u64)` → `InvocationRecord`: recent invocations per function.
pub(crate) const CF_LOGS: &str = "logs";
/// Counters: [`META_FEED_HEAD`], and `logseq \0 id` → last log seq of a function.
pub(crate) const CF_META: &str = "meta";

/// Every column family, in creation order.
pub(crate) const ALL_CFS: [&str; 8] = [
    CF_NAMES,
    CF_VERSIONS,
    CF_PINS,
    CF_DESIRED,
    CF_FEED,
    CF_REPORTS,
    CF_LOGS,
    CF_META,
];

/// Key in [`CF_META`] of the highest feed seq (be u64).
pub(crate) const META_FEED_HEAD: &[u8] = b"feed_head";

/// A name's current binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NameRecord {
    pub(crate) hash: ModuleHash,
    pub(crate) version: u64,
}

/// A function's desired state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct DesiredRecord {
    pub(crate) desired: DesiredState,
    pub(crate) start: StartFrom,
    pub(crate) start_generation: u64,
}

/// The latest report about one function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StoredReport {
    pub(crate) runner: String,
    pub(crate) at_ms: u64,
    pub(crate) report: FunctionReport,
}

pub(crate) fn id_key(id: &FunctionId) -> Vec<u8> {
    id.to_string().into_bytes()
}

/// `prefix \0 n(be)`: ordered sub-keys of a name or id.
pub(crate) fn sub_key(prefix: &str, n: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 9);
    key.extend_from_slice(prefix.as_bytes());
    key.push(0);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// The range of every [`sub_key`] of `prefix`.
pub(crate) fn sub_key_prefix(prefix: &str) -> Vec<u8> {
    let mut key = prefix.as_bytes().to_vec();
    key.push(0);
    key
}

pub(crate) fn log_seq_key(id: &FunctionId) -> Vec<u8> {
    let mut key = b"logseq\0".to_vec();
    key.extend_from_slice(id.to_string().as_bytes());
    key
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("registry records are plain data and always serialize")
}

pub(crate) fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: &[u8],
    value: &[u8],
) -> Result<T> {
    serde_json::from_slice(value).map_err(|e| RegistryError::Corrupt {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: e.to_string(),
    })
}

pub(crate) fn decode_u64(table: &'static str, key: &[u8], value: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = value.try_into().map_err(|_| RegistryError::Corrupt {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        reason: format!("expected 8 bytes, found {}", value.len()),
    })?;
    Ok(u64::from_be_bytes(bytes))
}

pub(crate) fn decode_id(table: &'static str, key: &[u8]) -> Result<FunctionId> {
    let corrupt = |reason: String| RegistryError::Corrupt {
        table,
        key: String::from_utf8_lossy(key).into_owned(),
        reason,
    };
    std::str::from_utf8(key)
        .map_err(|e| corrupt(e.to_string()))?
        .parse()
        .map_err(|e: xxfunc_api::InvalidName| corrupt(e.to_string()))
}
