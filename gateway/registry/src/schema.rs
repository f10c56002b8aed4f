//! The on-disk layout: column families, key encodings and stored records.
//!
//! Every value is JSON (small, self-describing, readable with `ldb`). Keys are
//! raw bytes chosen so that RocksDB's byte order is the order we iterate in.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use xxfunc_api::{
    BlockRef, DesiredState, EventKind, FunctionId, FunctionReport, ModuleHash, StartFrom,
};

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
/// `id \0 runner` → [`StoredReport`]: the latest report of each runner about each function.
/// (Gateways before the outcome log keyed it by `id` alone; such a key is deleted by the
/// next report about its function.)
pub(crate) const CF_REPORTS: &str = "reports";
/// `id \0 seq(be u64)` → `InvocationRecord`: invocations as older gateways stored them
/// from reports. No longer written; `logs` falls back to it for a function with no outcomes.
pub(crate) const CF_LOGS: &str = "logs";
/// Counters: [`META_FEED_HEAD`], [`META_EPOCH`], and
/// [`outcome_meta_key`] → [`OutcomeMeta`] of each (function, runner) outcome log.
pub(crate) const CF_META: &str = "meta";
/// [`log_key`]`(runner, id, seq)` → `OutcomeEntry`: each runner's outcome log per function.
pub(crate) const CF_OUTCOMES: &str = "outcomes";
/// [`log_key`]`(runner, id, seq)` → [`OutcomeIndex`]: what reading and pruning need
/// without loading an outcome's output.
pub(crate) const CF_OUTCOME_INDEX: &str = "outcome_index";
/// [`log_key`]`(runner, id, first_item)` → seq(be u64): the highest held seq whose
/// `first_item` is that; a reverse seek from item N finds the outcome holding N.
pub(crate) const CF_OUTCOME_ITEMS: &str = "outcome_items";

/// `id \0 sink name` → `SinkEntry`: each function's sinks. Sink names are unique in the
/// registry (they key cursors at destinations), checked on every write.
pub(crate) const CF_SINKS: &str = "sinks";

/// Every column family, in creation order.
pub(crate) const ALL_CFS: [&str; 12] = [
    CF_NAMES,
    CF_VERSIONS,
    CF_PINS,
    CF_DESIRED,
    CF_FEED,
    CF_REPORTS,
    CF_LOGS,
    CF_META,
    CF_OUTCOMES,
    CF_OUTCOME_INDEX,
    CF_OUTCOME_ITEMS,
    CF_SINKS,
];

/// Key in [`CF_META`] of the highest feed seq (be u64).
pub(crate) const META_FEED_HEAD: &[u8] = b"feed_head";

/// Key in [`CF_META`] of the registry's epoch (UTF-8): chosen when the registry is
/// created, so a runner tells a gateway reset (or replaced) from the one it followed.
pub(crate) const META_EPOCH: &[u8] = b"epoch";

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

/// What is known about one (function, runner) outcome log without reading it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OutcomeMeta {
    /// Highest seq held (0: none).
    pub(crate) head: u64,
    /// Outcomes with a seq up to this one were pruned by retention and are not stored again.
    pub(crate) pruned_through: u64,
    /// Outcomes held.
    pub(crate) held: u64,
    /// Bytes of the outcomes held (their stored JSON).
    pub(crate) bytes: u64,
    /// Highest item seq held: the head outcome's `first_item + item_count - 1`.
    pub(crate) item_head: u64,
    /// Outcomes pruned by retention so far.
    pub(crate) pruned: u64,
}

/// An outcome's place in its log: enough to prune it, find its items and feed the
/// confirmations filter (which needs no output).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OutcomeIndex {
    pub(crate) kind: EventKind,
    pub(crate) block: BlockRef,
    pub(crate) hash: ModuleHash,
    pub(crate) first_item: u64,
    pub(crate) item_count: u32,
    /// Bytes of its stored JSON.
    pub(crate) bytes: u64,
}

/// `runner \0 id \0 n(be)`: ordered keys of one runner's log of one function.
pub(crate) fn log_key(runner: &str, id: &FunctionId, n: u64) -> Vec<u8> {
    let mut key = log_prefix(runner, id);
    key.extend_from_slice(&n.to_be_bytes());
    key
}

/// `runner \0 id \0`: the range of every [`log_key`] of one log.
pub(crate) fn log_prefix(runner: &str, id: &FunctionId) -> Vec<u8> {
    let id = id.to_string();
    let mut key = Vec::with_capacity(runner.len() + id.len() + 10);
    key.extend_from_slice(runner.as_bytes());
    key.push(0);
    key.extend_from_slice(id.as_bytes());
    key.push(0);
    key
}

/// The number at the end of a [`log_key`].
pub(crate) fn log_key_n(table: &'static str, key: &[u8]) -> Result<u64> {
    let at = key.len().saturating_sub(8);
    decode_u64(table, key, &key[at..])
}

/// `ometa \0 id \0 runner` in [`CF_META`]: [`OutcomeMeta`] of a log; a prefix scan by
/// function lists the runners holding its outcomes.
pub(crate) fn outcome_meta_key(id: &FunctionId, runner: &str) -> Vec<u8> {
    let mut key = outcome_meta_prefix(id);
    key.extend_from_slice(runner.as_bytes());
    key
}

/// `ometa \0 id \0`.
pub(crate) fn outcome_meta_prefix(id: &FunctionId) -> Vec<u8> {
    let mut key = b"ometa\0".to_vec();
    key.extend_from_slice(id.to_string().as_bytes());
    key.push(0);
    key
}

/// `id \0 name` in [`CF_SINKS`].
pub(crate) fn sink_key(id: &FunctionId, name: &str) -> Vec<u8> {
    let mut key = report_prefix(id);
    key.extend_from_slice(name.as_bytes());
    key
}

/// `id \0 runner` in [`CF_REPORTS`].
pub(crate) fn report_key(id: &FunctionId, runner: &str) -> Vec<u8> {
    let mut key = report_prefix(id);
    key.extend_from_slice(runner.as_bytes());
    key
}

/// `id \0`: every runner's report about `id`.
pub(crate) fn report_prefix(id: &FunctionId) -> Vec<u8> {
    let mut key = id_key(id);
    key.push(0);
    key
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
