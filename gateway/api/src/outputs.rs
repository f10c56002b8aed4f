//! Outputs: the outcomes a runner commits, the items applications read, and the
//! confirmations filter. Pure code, shared by the runner (sinks) and the gateway (the
//! outputs stream), so both derive exactly the same items from the same outcomes.
//!
//! - An [`OutcomeEntry`] is one invocation of one function on one chain event, numbered by
//!   its runner per function (`seq` 1, 2, 3, … without gaps).
//! - An [`OutputItem`] is one output record. A successful invocation's stdout holds one
//!   record per line ([`records`]): a line that is JSON is served as that exact JSON text,
//!   anything else as base64 with `binary: true`; bytes are never altered. Items are
//!   numbered per function too, contiguously: an outcome carries the number of its first
//!   item and how many it has. The item's kind follows the event: records of a commit are
//!   [`ItemKind::Insert`], records of a revert are [`ItemKind::Retract`] (the function
//!   decides what it retracts). A failed invocation has no items.
//! - [`ConfirmationFilter`] holds a function's items back until their block is `N` deep.
//!
//! ```
//! use xxfunc_api::outputs::records;
//! let stdout = b"{\"a\":1}\n\nnot json\n{\"b\":2}";
//! let lines: Vec<&[u8]> = records(stdout).collect();
//! assert_eq!(lines, [&b"{\"a\":1}"[..], b"not json", b"{\"b\":2}"]);
//! ```

use std::collections::VecDeque;

use alloy_primitives::B256;
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::{BlockRef, EventKind, FunctionId, ModuleHash, types::InvocationStatus};

/// Raw bytes, written as standard base64 (with padding) in JSON.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Bytes64(pub Vec<u8>);

impl std::fmt::Debug for Bytes64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes64({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl From<Vec<u8>> for Bytes64 {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl Serialize for Bytes64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// Decodes the text where the deserializer holds it (no copy into a `String`
        /// first: stdout of a busy function is kilobytes per outcome).
        struct Base64;
        impl serde::de::Visitor<'_> for Base64 {
            type Value = Bytes64;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a base64 string")
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Bytes64, E> {
                STANDARD
                    .decode(text.as_bytes())
                    .map(Bytes64)
                    .map_err(|e| E::custom(format!("invalid base64: {e}")))
            }
        }
        d.deserialize_str(Base64)
    }
}

/// One invocation as its runner committed it: what `POST /v1/runners/{runner}/outcomes`
/// carries and what `logs` and the outputs stream are built from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomeEntry {
    /// Position in the function's outcome log on its runner, from 1, without gaps.
    pub seq: u64,
    /// The chain event: commit or revert.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::EventKindSchema))]
    pub kind: EventKind,
    /// The event's block.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::BlockRefSchema))]
    pub block: BlockRef,
    /// The module that ran.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// Ok, or failed with the reason.
    #[serde(flatten)]
    pub status: InvocationStatus,
    /// Wall time of the invocation, microseconds.
    pub duration_us: u64,
    /// Milliseconds since the Unix epoch when it finished.
    pub at_ms: u64,
    /// The function's stdout, exactly as written (up to the runner's cap), base64.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub stdout: Bytes64,
    /// The function's stderr (its log), up to the runner's cap, base64.
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = Byte))]
    pub stderr: Bytes64,
    /// Item seq of this outcome's first output record (the next item's seq when it has none).
    pub first_item: u64,
    /// How many output records it has: [`records`] of `stdout` when ok, else 0.
    pub item_count: u32,
}

impl OutcomeEntry {
    /// The output records of this outcome: its stdout's [`records`] when it succeeded,
    /// none when it failed.
    pub fn record_lines(&self) -> impl Iterator<Item = &[u8]> {
        let ok = matches!(self.status, InvocationStatus::Ok);
        records(if ok { &self.stdout.0 } else { &[] })
    }

    /// How many records [`record_lines`](Self::record_lines) yields (what `item_count` must be).
    pub fn count_records(&self) -> u32 {
        u32::try_from(self.record_lines().count()).unwrap_or(u32::MAX)
    }

    /// The items of this outcome, numbered from `first_item`, as served under `runner`.
    pub fn items<'a>(&'a self, runner: &'a str) -> impl Iterator<Item = OutputItem> + 'a {
        let kind = ItemKind::of(self.kind);
        self.record_lines()
            .zip(self.first_item..)
            .map(move |(line, seq)| OutputItem::new(seq, kind, self.block, self.hash, runner, line))
    }
}

/// The records in a function's stdout: one per line (split on `\n`; a last line without
/// `\n` counts), skipping lines that are empty or only whitespace. Bytes are not altered.
pub fn records(stdout: &[u8]) -> impl Iterator<Item = &[u8]> {
    stdout
        .split(|b| *b == b'\n')
        .filter(|line| !line.iter().all(u8::is_ascii_whitespace))
}

/// Whether an item adds a record or takes one back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ItemKind {
    /// A record of a committed block.
    Insert,
    /// A record the function emitted for a reverted block.
    Retract,
}

impl ItemKind {
    /// Insert for a commit, retract for a revert.
    pub fn of(kind: EventKind) -> Self {
        match kind {
            EventKind::Commit => Self::Insert,
            EventKind::Revert => Self::Retract,
        }
    }
}

/// One output record as applications read it (`GET /v1/functions/{name}/outputs`, its
/// Server-Sent Events form, and sinks).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputItem {
    /// Item seq in the function's output on `runner` (the SSE `id:`), from 1, without gaps.
    pub seq: u64,
    /// Insert (from a commit) or retract (from a revert).
    pub kind: ItemKind,
    /// The block of the event the record was emitted for.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::BlockRefSchema))]
    pub block: BlockRef,
    /// The module that produced it.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// The runner whose output log this is.
    pub runner: String,
    /// The record, exactly as the function wrote it, when it is JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<serde_json::Value>))]
    pub record: Option<Box<RawValue>>,
    /// The record in base64, when it is not JSON (not UTF-8, or not valid JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_b64: Option<String>,
    /// True when the record is served as `record_b64`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binary: bool,
}

impl PartialEq for OutputItem {
    fn eq(&self, other: &Self) -> bool {
        self.seq == other.seq
            && self.kind == other.kind
            && self.block == other.block
            && self.hash == other.hash
            && self.runner == other.runner
            && self.record.as_ref().map(|r| r.get()) == other.record.as_ref().map(|r| r.get())
            && self.record_b64 == other.record_b64
            && self.binary == other.binary
    }
}

impl OutputItem {
    /// An item for one record line.
    pub fn new(
        seq: u64,
        kind: ItemKind,
        block: BlockRef,
        hash: ModuleHash,
        runner: &str,
        line: &[u8],
    ) -> Self {
        // `from_string` validates the whole text as one JSON value (one parse).
        let json = std::str::from_utf8(line)
            .ok()
            .and_then(|text| RawValue::from_string(text.trim().to_string()).ok());
        let (record, record_b64, binary) = match json {
            Some(raw) => (Some(raw), None, false),
            None => (None, Some(STANDARD.encode(line)), true),
        };
        Self {
            seq,
            kind,
            block,
            hash,
            runner: runner.to_string(),
            record,
            record_b64,
            binary,
        }
    }

    /// The record's bytes: the JSON text, or the decoded binary record.
    pub fn record_bytes(&self) -> Vec<u8> {
        match (&self.record, &self.record_b64) {
            (Some(raw), _) => raw.get().as_bytes().to_vec(),
            (None, Some(b64)) => STANDARD.decode(b64.as_bytes()).unwrap_or_default(),
            (None, None) => Vec::new(),
        }
    }
}

/// `GET /v1/functions/{name}/outputs` answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputsPage {
    /// The runner whose output log the page reads.
    pub runner: String,
    /// Items after the requested `after`, in seq order (with `confirmations`, only the
    /// released ones).
    pub items: Vec<OutputItem>,
    /// Pass as `after` to continue: the last item seq this page covers (a page may cover
    /// items that `confirmations` held back for good, so it can exceed the last item's seq).
    pub next: u64,
    /// Highest item seq the log holds.
    pub head: u64,
}

/// What `GET /v1/functions/{name}/outputs` asks for (its query string, less `wait_ms`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutputsQuery {
    /// Items with a seq after this one (0: from the start).
    #[serde(default)]
    pub after: u64,
    /// At most this many items (the server's default and cap apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Release a block's items only once it is this many blocks deep (0: at once,
    /// with retractions on reorgs).
    #[serde(default)]
    pub confirmations: u64,
    /// Read this runner's log (default: the most recent runner that reports the function
    /// running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner: Option<String>,
}

/// `POST /v1/runners/{runner}/outcomes` body: a page of one function's outcome log, in
/// seq order, at most the gateway's body limit in bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomesPage {
    /// The function.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub id: FunctionId,
    /// Consecutive outcomes of its log on the posting runner.
    pub outcomes: Vec<OutcomeEntry>,
}

/// The answer to an [`OutcomesPage`]: what the receiver now holds for (runner, function).
///
/// Storing is idempotent by seq. `head` is the highest seq held after the page; the sender
/// advances its acknowledgement to it. `head_before` is the highest seq held before it: when
/// that is lower than what the sender had already seen acknowledged, the receiver lost
/// outcomes (a restored or reset gateway) and the sender resends what it still keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutcomesAck {
    /// Highest seq held before this page.
    pub head_before: u64,
    /// Highest seq held after it.
    pub head: u64,
}

/// A commit the filter has not decided yet.
#[derive(Debug)]
struct Pending {
    /// Its outcome's seq.
    seq: u64,
    module: ModuleHash,
    block: BlockRef,
    items: Vec<OutputItem>,
}

/// An outcome the filter released, with its items (possibly none): what a sink delivers
/// as one batch ([`ConfirmationFilter::pop_released`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Released {
    /// The outcome's seq.
    pub outcome: u64,
    /// Commit (its items are inserts) or revert (retracts).
    pub kind: EventKind,
    /// The event's block.
    pub block: BlockRef,
    /// The module that ran.
    pub module: ModuleHash,
    /// Its items, in seq order.
    pub items: Vec<OutputItem>,
}

/// Releases a function's items once their block is `depth` blocks deep on its chain.
///
/// Fed the function's outcomes in seq order ([`push`](Self::push)), it releases
/// ([`pop`](Self::pop)) a subsequence of their items, in seq order:
///
/// - the inserts of a commit of block B once a later commit of a block numbered at least
///   `B.number + depth` arrives with no revert of B in between; never, if B is reverted
///   first;
/// - the retracts of a revert of B if and only if the inserts of the commit it undoes
///   (the latest commit of B before it) were released.
///
/// With reorgs shallower than `depth` a consumer therefore never sees a retraction, and
/// with a deeper one it sees exactly the retractions of what it was shown. `depth` 0
/// releases everything at once.
///
/// The decision for an item depends only on the outcomes from its block's commit on, so a
/// consumer resuming after item `s` may start the filter at an earlier outcome (one whose
/// block is at least `depth` plus the deepest reorg below the block of item `s`) and drop
/// what it releases up to `s`.
#[derive(Debug)]
pub struct ConfirmationFilter {
    depth: u64,
    pending: VecDeque<Pending>,
    /// Hashes of recently released commits, newest last (bounded).
    released: VecDeque<B256>,
    /// Released outcomes not popped yet.
    ready: VecDeque<Released>,
    /// Items of the outcome [`pop`](Self::pop) is taking from.
    ready_items: VecDeque<OutputItem>,
}

/// Released commits remembered to decide later reverts (deeper reorgs are not followed).
const REMEMBERED_RELEASED: usize = 4096;

impl ConfirmationFilter {
    /// A filter for `depth` confirmations.
    pub fn new(depth: u64) -> Self {
        Self {
            depth,
            pending: VecDeque::new(),
            released: VecDeque::new(),
            ready: VecDeque::new(),
            ready_items: VecDeque::new(),
        }
    }

    /// The confirmations depth.
    pub fn depth(&self) -> u64 {
        self.depth
    }

    /// Feeds the next outcome (in seq order) with its items.
    pub fn push(&mut self, outcome: &OutcomeEntry, items: impl IntoIterator<Item = OutputItem>) {
        let items: Vec<OutputItem> = items.into_iter().collect();
        let release = |items| Released {
            outcome: outcome.seq,
            kind: outcome.kind,
            block: outcome.block,
            module: outcome.hash,
            items,
        };
        if self.depth == 0 {
            self.ready.push_back(release(items));
            return;
        }
        match outcome.kind {
            EventKind::Commit => {
                self.pending.push_back(Pending {
                    seq: outcome.seq,
                    module: outcome.hash,
                    block: outcome.block,
                    items,
                });
                let tip = outcome.block.number;
                while self
                    .pending
                    .front()
                    .is_some_and(|p| p.block.number.saturating_add(self.depth) <= tip)
                {
                    let p = self.pending.pop_front().expect("front exists");
                    self.ready.push_back(Released {
                        outcome: p.seq,
                        kind: EventKind::Commit,
                        block: p.block,
                        module: p.module,
                        items: p.items,
                    });
                    self.released.push_back(p.block.hash);
                    if self.released.len() > REMEMBERED_RELEASED {
                        self.released.pop_front();
                    }
                }
            }
            EventKind::Revert => {
                let hash = outcome.block.hash;
                if let Some(i) = self.pending.iter().rposition(|p| p.block.hash == hash) {
                    // Not yet deep enough: neither its inserts nor these retracts are shown.
                    self.pending.remove(i);
                } else if let Some(i) = self.released.iter().rposition(|h| *h == hash) {
                    self.released.remove(i);
                    self.ready.push_back(release(items));
                }
                // Otherwise the commit it undoes is older than the filter's memory: its
                // inserts were released (it was deep), so are its retracts.
                else {
                    self.ready.push_back(release(items));
                }
            }
        }
    }

    /// The next released item, in seq order.
    pub fn pop(&mut self) -> Option<OutputItem> {
        loop {
            if let Some(item) = self.ready_items.pop_front() {
                return Some(item);
            }
            self.ready_items.extend(self.ready.pop_front()?.items);
        }
    }

    /// The next released outcome with all its items (also one without items: a sink
    /// deletes a reverted block's rows whatever the function emitted), in seq order. Do
    /// not mix with [`pop`](Self::pop) on one outcome: what `pop` took is not returned.
    pub fn pop_released(&mut self) -> Option<Released> {
        self.ready.pop_front()
    }

    /// The seq of the oldest commit held back (not yet decided, with or without items).
    /// Every outcome fed before it is decided, so a consumer that restarts the filter at
    /// this outcome (dropping what it already consumed) sees the same releases.
    pub fn first_pending_outcome(&self) -> Option<u64> {
        self.pending.front().map(|p| p.seq)
    }

    /// Items held back (not yet decided).
    pub fn pending_items(&self) -> usize {
        self.pending.iter().map(|p| p.items.len()).sum()
    }

    /// The lowest seq of an item held back (not yet decided): a consumer has seen or
    /// skipped for good every item fed before it.
    pub fn first_pending_item(&self) -> Option<u64> {
        self.pending
            .iter()
            .flat_map(|p| p.items.first())
            .map(|i| i.seq)
            .next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(n: u64, branch: u64) -> B256 {
        let mut b = [0u8; 32];
        b[..8].copy_from_slice(&n.to_be_bytes());
        b[8..16].copy_from_slice(&branch.to_be_bytes());
        B256::from(b)
    }

    fn outcome(
        seq: u64,
        kind: EventKind,
        n: u64,
        branch: u64,
        lines: &[&str],
        first: u64,
    ) -> OutcomeEntry {
        let stdout: Vec<u8> = lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect();
        let mut o = OutcomeEntry {
            seq,
            kind,
            block: BlockRef {
                number: n,
                hash: hash(n, branch),
            },
            hash: ModuleHash::of(b"m"),
            status: InvocationStatus::Ok,
            duration_us: 1,
            at_ms: 1,
            stdout: Bytes64(stdout),
            stderr: Bytes64::default(),
            first_item: first,
            item_count: 0,
        };
        o.item_count = o.count_records();
        o
    }

    #[test]
    fn records_split_lines_and_keep_bytes() {
        let out: Vec<&[u8]> = records(b"a\n\n  \n\xff\xfe\r\nlast").collect();
        assert_eq!(out, [&b"a"[..], b"\xff\xfe\r", b"last"]);
        assert_eq!(records(b"").count(), 0);
        assert_eq!(records(b"\n\n").count(), 0);
    }

    #[test]
    fn items_are_exact_json_or_base64() {
        let mut o = outcome(1, EventKind::Commit, 5, 0, &[], 10);
        o.stdout = Bytes64(b"{\"b\": 2,  \"a\":1}\nplain text\n\xff\x00\n[1,2]".to_vec());
        o.item_count = o.count_records();
        assert_eq!(o.item_count, 4);
        let items: Vec<OutputItem> = o.items("r1").collect();
        assert_eq!(
            items.iter().map(|i| i.seq).collect::<Vec<_>>(),
            [10, 11, 12, 13]
        );
        assert_eq!(
            items[0].record.as_ref().unwrap().get(),
            "{\"b\": 2,  \"a\":1}"
        );
        assert!(!items[0].binary);
        assert!(items[1].binary);
        assert_eq!(items[1].record_bytes(), b"plain text");
        assert_eq!(items[2].record_bytes(), b"\xff\x00");
        assert_eq!(items[3].record.as_ref().unwrap().get(), "[1,2]");
        assert!(
            items
                .iter()
                .all(|i| i.kind == ItemKind::Insert && i.runner == "r1")
        );
        // Served and read back unchanged.
        let json = serde_json::to_string(&items).unwrap();
        let back: Vec<OutputItem> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, items);
        assert!(json.contains("{\"b\": 2,  \"a\":1}"), "{json}");
    }

    #[test]
    fn failed_outcomes_have_no_items_and_reverts_retract() {
        let mut failed = outcome(1, EventKind::Commit, 5, 0, &["{}"], 1);
        failed.status = InvocationStatus::Failed {
            reason: "trapped".into(),
        };
        assert_eq!(failed.count_records(), 0);
        assert_eq!(failed.items("r").count(), 0);
        let revert = outcome(2, EventKind::Revert, 5, 0, &["{}"], 1);
        assert!(revert.items("r").all(|i| i.kind == ItemKind::Retract));
    }

    #[test]
    fn outcome_entries_round_trip_with_base64_bytes() {
        let o = outcome(3, EventKind::Revert, 7, 1, &["{\"x\":1}"], 4);
        let json = serde_json::to_value(&o).unwrap();
        assert_eq!(json["stdout"], STANDARD.encode(b"{\"x\":1}\n"));
        assert_eq!(json["status"], "ok");
        let back: OutcomeEntry = serde_json::from_value(json).unwrap();
        assert_eq!(back, o);
        assert!(serde_json::from_str::<Bytes64>("\"not base64!\"").is_err());
    }

    /// A chain walk with reorgs: the outcome log of one function following it.
    fn walk(seed: u64, steps: usize) -> Vec<OutcomeEntry> {
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut chain: Vec<(u64, u64)> = Vec::new(); // (number, branch)
        let mut out = Vec::new();
        let (mut seq, mut item) = (0u64, 1u64);
        let mut branch = 0;
        let mut emit = |kind, n: u64, b: u64, out: &mut Vec<OutcomeEntry>, r: u64| {
            seq += 1;
            let count = (r % 3) as usize;
            let lines: Vec<String> = (0..count)
                .map(|i| format!("{{\"n\":{n},\"i\":{i}}}"))
                .collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            let mut o = outcome(seq, kind, n, b, &refs, item);
            if r.is_multiple_of(7) {
                o.status = InvocationStatus::Failed { reason: "x".into() };
            }
            o.item_count = o.count_records();
            item += u64::from(o.item_count);
            out.push(o);
        };
        for _ in 0..steps {
            let r = next();
            if r % 5 == 0 && !chain.is_empty() {
                let depth = 1 + (next() % 4).min(chain.len() as u64 - 1);
                for _ in 0..depth {
                    let (n, b) = chain.pop().expect("non-empty");
                    emit(EventKind::Revert, n, b, &mut out, next());
                }
                branch += 1;
            } else {
                let n = chain.last().map_or(1, |(n, _)| n + 1);
                chain.push((n, branch));
                emit(EventKind::Commit, n, branch, &mut out, next());
            }
        }
        out
    }

    /// The definition, applied outcome by outcome over the whole log.
    fn oracle(log: &[OutcomeEntry], depth: u64) -> Vec<u64> {
        let commit_released = |i: usize| -> bool {
            let b = log[i].block;
            for later in &log[i + 1..] {
                if later.kind == EventKind::Revert && later.block.hash == b.hash {
                    return false;
                }
                if later.kind == EventKind::Commit && later.block.number >= b.number + depth {
                    return true;
                }
            }
            false
        };
        let mut out = Vec::new();
        for (k, o) in log.iter().enumerate() {
            let released = match o.kind {
                _ if depth == 0 => true,
                EventKind::Commit => commit_released(k),
                EventKind::Revert => (0..k)
                    .rev()
                    .find(|&i| {
                        log[i].kind == EventKind::Commit && log[i].block.hash == o.block.hash
                    })
                    .is_some_and(commit_released),
            };
            if released {
                out.extend(o.items("r").map(|i| i.seq));
            }
        }
        out
    }

    #[test]
    fn filter_equals_its_definition_on_random_reorgs() {
        for seed in 1..200u64 {
            let log = walk(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1, 120);
            for depth in [0, 1, 2, 3, 5, 8] {
                let mut f = ConfirmationFilter::new(depth);
                let mut got = Vec::new();
                for o in &log {
                    f.push(o, o.items("r"));
                    while let Some(item) = f.pop() {
                        got.push(item.seq);
                    }
                }
                assert_eq!(got, oracle(&log, depth), "seed {seed} depth {depth}");
                assert!(got.windows(2).all(|w| w[0] < w[1]), "in seq order");
            }
        }
    }

    /// What a sink relies on: after consuming some of the outcomes released while feeding
    /// outcome `k`, a filter restarted at the next unconsumed one (or at
    /// `first_pending_outcome`, or after `k`, whichever is lowest) releases exactly the
    /// rest, in order.
    #[test]
    fn filter_restarted_where_a_sink_resumes_releases_the_rest() {
        for seed in 1..60u64 {
            let log = walk(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1, 80);
            for depth in [0, 1, 3, 5] {
                let mut whole = ConfirmationFilter::new(depth);
                let mut all: Vec<(u64, Vec<u64>)> = Vec::new();
                let mut restarts = Vec::new();
                for o in &log {
                    whole.push(o, o.items("r"));
                    let before = all.len();
                    while let Some(r) = whole.pop_released() {
                        all.push((r.outcome, r.items.iter().map(|i| i.seq).collect()));
                    }
                    let end = whole
                        .first_pending_outcome()
                        .unwrap_or(o.seq + 1)
                        .min(o.seq + 1);
                    for (j, released) in all.iter().enumerate().skip(before) {
                        restarts.push((j, released.0.min(end)));
                    }
                    restarts.push((all.len(), end));
                }
                for (consumed, from) in restarts {
                    let mut again = ConfirmationFilter::new(depth);
                    let mut got = Vec::new();
                    for o in log.iter().filter(|o| o.seq >= from) {
                        again.push(o, o.items("r"));
                        while let Some(r) = again.pop_released() {
                            got.push((r.outcome, r.items.iter().map(|i| i.seq).collect()));
                        }
                    }
                    assert_eq!(
                        got,
                        all[consumed..],
                        "seed {seed} depth {depth} from {from}"
                    );
                }
            }
        }
    }

    #[test]
    fn shallow_reorgs_never_show_a_retraction() {
        // 1, 2, 3, revert 3, 3', 4', 5': with depth 2 block 3's inserts and retracts vanish.
        let log = [
            outcome(1, EventKind::Commit, 1, 0, &["a"], 1),
            outcome(2, EventKind::Commit, 2, 0, &["b"], 2),
            outcome(3, EventKind::Commit, 3, 0, &["c"], 3),
            outcome(4, EventKind::Revert, 3, 0, &["-c"], 4),
            outcome(5, EventKind::Commit, 3, 1, &["c2"], 5),
            outcome(6, EventKind::Commit, 4, 1, &["d"], 6),
            outcome(7, EventKind::Commit, 5, 1, &["e"], 7),
        ];
        let mut f = ConfirmationFilter::new(2);
        let mut kinds = Vec::new();
        for o in &log {
            f.push(o, o.items("r"));
            while let Some(i) = f.pop() {
                kinds.push((i.seq, i.kind));
            }
        }
        assert_eq!(
            kinds,
            [
                (1, ItemKind::Insert),
                (2, ItemKind::Insert),
                (5, ItemKind::Insert)
            ]
        );
        assert_eq!(f.pending_items(), 2);
        assert_eq!(f.first_pending_item(), Some(6));
    }

    #[test]
    fn deep_reorgs_retract_what_was_shown() {
        let log = [
            outcome(1, EventKind::Commit, 1, 0, &["a"], 1),
            outcome(2, EventKind::Commit, 2, 0, &["b"], 2),
            outcome(3, EventKind::Revert, 2, 0, &["-b"], 3),
            outcome(4, EventKind::Revert, 1, 0, &["-a"], 4),
        ];
        let mut f = ConfirmationFilter::new(1);
        let mut seqs = Vec::new();
        for o in &log {
            f.push(o, o.items("r"));
            while let Some(i) = f.pop() {
                seqs.push((i.seq, i.kind));
            }
        }
        // Block 1 was 1 deep (block 2 on top), block 2 never was.
        assert_eq!(seqs, [(1, ItemKind::Insert), (4, ItemKind::Retract)]);
    }
}
