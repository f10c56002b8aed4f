//! The runner's own RocksDB: per-function state (module, cursor, counters,
//! quarantine, outcome log bounds), the outcome logs, consumers'
//! acknowledgements, and the source checkpoint.
//!
//! Column families:
//!
//! | cf | key | value |
//! |---|---|---|
//! | `functions` | function id | [`FunctionRecord`] (JSON) |
//! | `outcomes` | function id, `0x00`, outcome seq (u64 BE) | [`OutcomeEntry`] (JSON; stdout and stderr as base64, bytes exactly as written) |
//! | `meta` | `checkpoint` | [`Checkpoint`] (JSON) |
//! | `meta` | `ack`, `0x00`, consumer, `0x00`, function id | the seq the consumer acknowledged (JSON number) |
//! | `meta` | `sink`, `0x00`, sink name | the sink's cursor (`xxfunc_sinks::SinkCursor`, JSON) |
//! | `blocks` | block number (u64 BE) | the block's commit envelope (docs/abi.md), for the last `RunnerConfig::reorg_blocks` blocks |
//!
//! Everything one group of events changes goes into one [`Batch`], written
//! with `sync = true`: a cursor never moves without the outcome that moved it,
//! and an outcome never lands without its cursor. Acknowledgements are
//! written by the pusher thread on their own, without `sync`: a lost one only
//! means outcomes are sent again (receivers store by seq, idempotently).
//!
//! A database written before the outcome log had a `records` column family of
//! lossily decoded invocation records; opening it converts them to outcomes
//! (seq = record index + 1) and drops the column family.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use std::collections::{BTreeMap, HashMap};

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use xxfunc_abi::ChainBlock;
use xxfunc_api::{
    BlockRef, Counters, FunctionId, InvocationRecord,
    outputs::{Bytes64, OutcomeEntry},
};
use xxfunc_store::ModuleHash;

use crate::{
    error::{Result, RunnerError},
    state::{BlockAt, RecordedAnswers, StateAnswer, StateRequest},
};

const CF_FUNCTIONS: &str = "functions";
const CF_OUTCOMES: &str = "outcomes";
/// Invocation records of databases written before the outcome log (converted on open).
const CF_LEGACY_RECORDS: &str = "records";
const CF_META: &str = "meta";
/// The last committed blocks (number, big-endian → commit envelope), so a
/// restarted runner can revert blocks the node dropped while it was down.
const CF_BLOCKS: &str = "blocks";
/// State answers the functions' committed outcomes read: (number BE, hash, request id)
/// → `{request, answer}` JSON, kept as long as the recent blocks.
const CF_STATE: &str = "state";
const KEY_CHECKPOINT: &[u8] = b"checkpoint";

pub use xxfunc_primitives::Position;

/// A function as the runner persists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionRecord {
    /// Identity.
    pub id: FunctionId,
    /// Module it runs.
    pub hash: ModuleHash,
    /// Whether it should receive events.
    pub started: bool,
    /// The registry's start generation this state belongs to.
    pub start_generation: u64,
    /// Cursor or pending start.
    pub position: Position,
    /// Invocation counters.
    pub counters: Counters,
    /// Set when quarantined, with the reason.
    pub quarantined: Option<String>,
    /// Last failure reason.
    pub last_error: Option<String>,
    /// Seq of the last outcome in the function's log (0: none yet). Outcomes
    /// are numbered 1, 2, 3, ... without gaps.
    #[serde(default)]
    pub last_seq: u64,
    /// Item seq of the last output record in the log (0: none yet). Items are
    /// numbered contiguously across outcomes.
    #[serde(default)]
    pub last_item: u64,
    /// Every outcome with seq up to this was pruned (0: none); the log keeps
    /// `pruned_to + 1 ..= last_seq`.
    #[serde(default)]
    pub pruned_to: u64,
    /// Encoded bytes of the outcomes kept (what the retention budget counts).
    #[serde(default)]
    pub kept_bytes: u64,
}

impl FunctionRecord {
    /// A function that has not run yet.
    pub(crate) fn new(
        id: FunctionId,
        hash: ModuleHash,
        start_generation: u64,
        position: Position,
    ) -> Self {
        Self {
            id,
            hash,
            started: true,
            start_generation,
            position,
            counters: Counters::default(),
            quarantined: None,
            last_error: None,
            last_seq: 0,
            last_item: 0,
            pruned_to: 0,
            kept_bytes: 0,
        }
    }
}

/// How far the runner has consumed its chain source.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Sequence number of the last event processed (0: none).
    pub seq: u64,
    /// Chain tip after that event.
    pub tip: Option<BlockRef>,
}

/// Options for the database and each column family. Compression is named
/// explicitly: RocksDB's default depends on the codecs compiled in, and a
/// build that links Snappy (as reth's does) would otherwise write files that
/// this workspace's LZ4-only build cannot read.
fn column_options() -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts
}

/// The database.
pub(crate) struct StateDb {
    db: DB,
    path: PathBuf,
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateDb")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl StateDb {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let mut opts = column_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let legacy = DB::list_cf(&opts, path)
            .is_ok_and(|names| names.iter().any(|n| n == CF_LEGACY_RECORDS));
        let mut names = vec![CF_FUNCTIONS, CF_OUTCOMES, CF_META, CF_BLOCKS, CF_STATE];
        if legacy {
            names.push(CF_LEGACY_RECORDS);
        }
        let cfs = names
            .into_iter()
            .map(|name| ColumnFamilyDescriptor::new(name, column_options()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| RunnerError::Db {
            path: path.to_path_buf(),
            source,
        })?;
        let mut db = Self {
            db,
            path: path.to_path_buf(),
        };
        if legacy {
            db.convert_legacy_records()?;
        }
        Ok(db)
    }

    /// Converts the invocation records of a database written before the
    /// outcome log into outcomes, then drops their column family. The
    /// conversion is one synced batch and idempotent, so a crash before the
    /// drop only repeats it.
    fn convert_legacy_records(&mut self) -> Result<()> {
        let records = self.cf(CF_LEGACY_RECORDS);
        let mut logs: BTreeMap<String, Vec<(u64, InvocationRecord)>> = BTreeMap::new();
        for item in self.db.iterator_cf(records, IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            let Some(split) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            let Ok(index) = <[u8; 8]>::try_from(&key[split + 1..]) else {
                continue;
            };
            let id = String::from_utf8_lossy(&key[..split]).into_owned();
            let record: InvocationRecord = decode(&key, &value)?;
            logs.entry(id)
                .or_default()
                .push((u64::from_be_bytes(index), record));
        }
        let mut batch = self.batch();
        let mut converted = 0usize;
        for mut rec in self.functions()? {
            let Some(log) = logs.get(&rec.id.to_string()) else {
                continue;
            };
            rec.pruned_to = log.first().map_or(0, |(index, _)| *index);
            rec.kept_bytes = 0;
            rec.last_item = 0;
            for (index, r) in log {
                let mut entry = OutcomeEntry {
                    seq: index + 1,
                    kind: r.kind,
                    block: r.block,
                    hash: r.hash,
                    status: r.status.clone(),
                    duration_us: r.duration_us,
                    at_ms: r.at_ms,
                    stdout: Bytes64(r.stdout.clone().into_bytes()),
                    stderr: Bytes64(r.stderr.clone().into_bytes()),
                    first_item: rec.last_item + 1,
                    item_count: 0,
                };
                entry.item_count = entry.count_records();
                rec.last_item += u64::from(entry.item_count);
                rec.last_seq = entry.seq;
                rec.kept_bytes += batch.put_outcome(&rec.id, &entry) as u64;
                converted += 1;
            }
            batch.put_function(&rec);
        }
        batch.commit()?;
        self.db
            .drop_cf(CF_LEGACY_RECORDS)
            .map_err(|e| self.err(e))?;
        tracing::info!(path = %self.path.display(), converted, "converted invocation records to the outcome log");
        Ok(())
    }

    fn err(&self, source: rocksdb::Error) -> RunnerError {
        RunnerError::Db {
            path: self.path.clone(),
            source,
        }
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created on open")
    }

    pub(crate) fn functions(&self) -> Result<Vec<FunctionRecord>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_FUNCTIONS), IteratorMode::Start)
        {
            let (key, value) = item.map_err(|e| self.err(e))?;
            out.push(decode(&key, &value)?);
        }
        Ok(out)
    }

    pub(crate) fn checkpoint(&self) -> Result<Checkpoint> {
        match self
            .db
            .get_cf(self.cf(CF_META), KEY_CHECKPOINT)
            .map_err(|e| self.err(e))?
        {
            Some(value) => decode(KEY_CHECKPOINT, &value),
            None => Ok(Checkpoint::default()),
        }
    }

    /// Outcomes of `id` with seq > `after`, oldest first: at most `limit`,
    /// and no more than `max_bytes` of encoded outcomes, but at least one
    /// when there is one (a single outcome may be larger). Never reads more
    /// than it returns, plus one entry.
    pub(crate) fn outcomes(
        &self,
        id: &FunctionId,
        after: u64,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutcomeEntry>> {
        let mut out = Vec::new();
        if after == u64::MAX {
            return Ok(out);
        }
        let prefix = outcome_prefix(id);
        let start = outcome_key(id, after + 1);
        let mut bytes = 0usize;
        let iter = self.db.iterator_cf(
            self.cf(CF_OUTCOMES),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            if !out.is_empty() && bytes + value.len() > max_bytes {
                break;
            }
            bytes += value.len();
            out.push(decode(&key, &value)?);
        }
        Ok(out)
    }

    /// Walks the outcomes of `id` with seq > `after`, oldest first, giving
    /// `visit` each one's seq, encoded size and block number (decoding only
    /// the block), until `visit` returns false.
    pub(crate) fn walk_outcomes(
        &self,
        id: &FunctionId,
        after: u64,
        mut visit: impl FnMut(u64, u64, u64) -> bool,
    ) -> Result<()> {
        #[derive(Deserialize)]
        struct Head {
            block: BlockRef,
        }
        let prefix = outcome_prefix(id);
        let start = outcome_key(id, after.saturating_add(1));
        let iter = self.db.iterator_cf(
            self.cf(CF_OUTCOMES),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let seq = u64::from_be_bytes(
                key[prefix.len()..]
                    .try_into()
                    .expect("outcome keys end with an 8-byte seq"),
            );
            let head: Head = decode(&key, &value)?;
            if !visit(seq, value.len() as u64, head.block.number) {
                break;
            }
        }
        Ok(())
    }

    /// The acknowledgements of `consumer`: per function, the highest seq it
    /// acknowledged.
    pub(crate) fn acks(&self, consumer: &str) -> Result<HashMap<FunctionId, u64>> {
        let prefix = ack_prefix(consumer);
        let mut out = HashMap::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_META),
            IteratorMode::From(&prefix, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.starts_with(&prefix) {
                break;
            }
            let text = String::from_utf8_lossy(&key[prefix.len()..]);
            let Ok(id) = text.parse::<FunctionId>() else {
                tracing::warn!(consumer, key = %text, "ignoring an acknowledgement of an invalid function id");
                continue;
            };
            out.insert(id, decode(&key, &value)?);
        }
        Ok(out)
    }

    /// Stores that `consumer` acknowledged `id`'s outcomes up to `seq`
    /// (without `sync`: see the module docs).
    pub(crate) fn put_ack(&self, consumer: &str, id: &FunctionId, seq: u64) -> Result<()> {
        self.db
            .put_cf(self.cf(CF_META), ack_key(consumer, id), encode(&seq))
            .map_err(|e| self.err(e))
    }

    /// The cursor stored for sink `name`.
    pub(crate) fn sink_cursor(&self, name: &str) -> Result<Option<xxfunc_sinks::SinkCursor>> {
        let key = sink_key(name);
        match self
            .db
            .get_cf(self.cf(CF_META), &key)
            .map_err(|e| self.err(e))?
        {
            Some(value) => Ok(Some(decode(&key, &value)?)),
            None => Ok(None),
        }
    }

    /// Stores sink `name`'s cursor (without `sync`, like acknowledgements: a
    /// lost one only means a batch is delivered again under the same key).
    pub(crate) fn put_sink_cursor(
        &self,
        name: &str,
        cursor: &xxfunc_sinks::SinkCursor,
    ) -> Result<()> {
        self.db
            .put_cf(self.cf(CF_META), sink_key(name), encode(cursor))
            .map_err(|e| self.err(e))
    }

    /// Forgets sink `name`: its cursor and the acknowledgements of its
    /// `consumer` (a removed sink; one added again later starts afresh).
    pub(crate) fn forget_sink(&self, name: &str, consumer: &str) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_META), sink_key(name));
        for id in self.acks(consumer)?.keys() {
            batch.delete_cf(self.cf(CF_META), ack_key(consumer, id));
        }
        self.db.write(batch).map_err(|e| self.err(e))
    }

    /// The stored recent blocks, oldest first. An entry that does not decode
    /// ends the list there (blocks are only a reorg aid, never required).
    pub(crate) fn recent_blocks(&self) -> Result<Vec<Arc<ChainBlock>>> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_BLOCKS), IteratorMode::Start) {
            let (key, value) = item.map_err(|e| self.err(e))?;
            match xxfunc_abi::decode_owned(&value) {
                Ok(envelope) => out.push(Arc::new(envelope.block)),
                Err(e) => {
                    tracing::warn!(key = ?key, "ignoring a stored block that does not decode: {e}");
                    out.clear();
                }
            }
        }
        Ok(out)
    }

    /// The answer stored for `request` at `at` (`None`: none, or unreadable).
    pub(crate) fn state_answer(&self, at: &BlockAt, request: &StateRequest) -> Option<StateAnswer> {
        let bytes = self
            .db
            .get_cf(self.cf(CF_STATE), state_key(at, request))
            .ok()??;
        let stored: StoredAnswer = serde_json::from_slice(&bytes).ok()?;
        (stored.request == *request).then_some(stored.answer)
    }

    pub(crate) fn batch(&self) -> Batch<'_> {
        Batch {
            db: self,
            wb: WriteBatch::default(),
        }
    }
}

/// One atomic, synced group of changes.
pub(crate) struct Batch<'a> {
    db: &'a StateDb,
    wb: WriteBatch,
}

impl Batch<'_> {
    pub(crate) fn put_function(&mut self, rec: &FunctionRecord) {
        self.wb
            .put_cf(self.db.cf(CF_FUNCTIONS), rec.id.to_string(), encode(rec));
    }

    /// Appends `entry` to `id`'s outcome log; returns its encoded size.
    pub(crate) fn put_outcome(&mut self, id: &FunctionId, entry: &OutcomeEntry) -> usize {
        let value = encode(entry);
        let len = value.len();
        self.wb
            .put_cf(self.db.cf(CF_OUTCOMES), outcome_key(id, entry.seq), value);
        len
    }

    /// Deletes the outcomes of `id` with seq ≤ `to`.
    pub(crate) fn prune_outcomes(&mut self, id: &FunctionId, to: u64) {
        self.wb.delete_range_cf(
            self.db.cf(CF_OUTCOMES),
            outcome_key(id, 0),
            outcome_key(id, to.saturating_add(1)),
        );
    }

    /// Stores the commit envelope of block `number`, replacing it and every
    /// block above it.
    pub(crate) fn put_block(&mut self, number: u64, envelope: &[u8]) {
        self.delete_blocks_from(number);
        self.wb
            .put_cf(self.db.cf(CF_BLOCKS), number.to_be_bytes(), envelope);
    }

    /// Forgets block `number` and every block above it (a revert).
    pub(crate) fn delete_blocks_from(&mut self, number: u64) {
        self.wb.delete_range_cf(
            self.db.cf(CF_BLOCKS),
            number.to_be_bytes(),
            u64::MAX.to_be_bytes(),
        );
    }

    /// Forgets the blocks below `number`.
    pub(crate) fn prune_blocks(&mut self, below: u64) {
        self.wb.delete_range_cf(
            self.db.cf(CF_BLOCKS),
            0u64.to_be_bytes(),
            below.to_be_bytes(),
        );
    }

    /// Stores what `request` answered at `at` (read by a committed outcome).
    pub(crate) fn put_state_answer(
        &mut self,
        at: &BlockAt,
        request: &StateRequest,
        answer: &StateAnswer,
    ) {
        let value = encode(&StoredAnswer {
            request: request.clone(),
            answer: answer.clone(),
        });
        self.wb
            .put_cf(self.db.cf(CF_STATE), state_key(at, request), value);
    }

    /// Forgets the state answers of blocks below `number`.
    pub(crate) fn prune_state_answers(&mut self, below: u64) {
        self.wb.delete_range_cf(
            self.db.cf(CF_STATE),
            0u64.to_be_bytes(),
            below.to_be_bytes(),
        );
    }

    pub(crate) fn put_checkpoint(&mut self, cp: &Checkpoint) {
        self.wb
            .put_cf(self.db.cf(CF_META), KEY_CHECKPOINT, encode(cp));
    }

    /// Writes everything with one fsync.
    pub(crate) fn commit(self) -> Result<()> {
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .db
            .write_opt(self.wb, &opts)
            .map_err(|e| self.db.err(e))
    }
}

fn outcome_prefix(id: &FunctionId) -> Vec<u8> {
    let mut key = id.to_string().into_bytes();
    key.push(0);
    key
}

fn outcome_key(id: &FunctionId, seq: u64) -> Vec<u8> {
    let mut key = outcome_prefix(id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn ack_prefix(consumer: &str) -> Vec<u8> {
    let mut key = b"ack\0".to_vec();
    key.extend_from_slice(consumer.as_bytes());
    key.push(0);
    key
}

fn sink_key(name: &str) -> Vec<u8> {
    let mut key = b"sink\0".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

fn ack_key(consumer: &str, id: &FunctionId) -> Vec<u8> {
    let mut key = ack_prefix(consumer);
    key.extend_from_slice(id.to_string().as_bytes());
    key
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("runner records serialize to JSON")
}

fn decode<T: DeserializeOwned>(key: &[u8], value: &[u8]) -> Result<T> {
    serde_json::from_slice(value).map_err(|source| RunnerError::CorruptRecord {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

/// A stored state answer, with its request (a key collision is then harmless).
#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    request: StateRequest,
    answer: StateAnswer,
}

/// `number BE ‖ hash ‖ the first 16 bytes of blake3(request JSON)`.
fn state_key(at: &BlockAt, request: &StateRequest) -> Vec<u8> {
    let id = blake3::hash(&encode(request));
    let mut key = Vec::with_capacity(8 + 32 + 16);
    key.extend_from_slice(&at.number.to_be_bytes());
    key.extend_from_slice(at.hash.as_slice());
    key.extend_from_slice(&id.as_bytes()[..16]);
    key
}

impl RecordedAnswers for StateDb {
    fn recorded(&self, at: &BlockAt, request: &StateRequest) -> Option<StateAnswer> {
        self.state_answer(at, request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

    fn record(id: &FunctionId) -> FunctionRecord {
        FunctionRecord::new(
            id.clone(),
            ModuleHash::of(b"m"),
            1,
            Position::Block {
                block: BlockRef {
                    number: 7,
                    hash: B256::repeat_byte(7),
                },
                first: 0,
            },
        )
    }

    fn entry(seq: u64, stdout: &[u8]) -> OutcomeEntry {
        OutcomeEntry {
            seq,
            kind: xxfunc_api::EventKind::Commit,
            block: BlockRef {
                number: seq,
                hash: B256::repeat_byte(seq as u8),
            },
            hash: ModuleHash::of(b"m"),
            status: xxfunc_api::InvocationStatus::Ok,
            duration_us: 1,
            at_ms: 2,
            stdout: Bytes64(stdout.to_vec()),
            stderr: Bytes64::default(),
            first_item: seq,
            item_count: 1,
        }
    }

    #[test]
    fn batch_is_atomic_and_survives_reopen() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let id: FunctionId = "f".parse()?;
        let mut rec = record(&id);
        rec.last_seq = 3;
        {
            let db = StateDb::open(dir.path())?;
            let mut b = db.batch();
            b.put_function(&rec);
            b.put_checkpoint(&Checkpoint {
                seq: 9,
                tip: rec.position.cursor(),
            });
            b.commit()?;
        }
        let db = StateDb::open(dir.path())?;
        assert_eq!(db.functions()?, vec![rec.clone()]);
        assert_eq!(db.checkpoint()?.seq, 9);
        assert!(db.outcomes(&id, 0, 10, usize::MAX)?.is_empty());
        Ok(())
    }

    #[test]
    fn outcomes_page_by_seq_and_bytes_and_keep_raw_bytes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = StateDb::open(dir.path())?;
        let (f, g): (FunctionId, FunctionId) = ("f".parse()?, "g".parse()?);
        let mut b = db.batch();
        let mut sizes = Vec::new();
        for seq in 1..=5 {
            sizes.push(b.put_outcome(&f, &entry(seq, b"\xff\x00 raw\n")));
        }
        b.put_outcome(&g, &entry(1, b"other"));
        b.commit()?;
        let all = db.outcomes(&f, 0, usize::MAX, usize::MAX)?;
        assert_eq!(
            all.iter().map(|o| o.seq).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert_eq!(all[0].stdout.0, b"\xff\x00 raw\n");
        assert_eq!(db.outcomes(&f, 3, usize::MAX, usize::MAX)?.len(), 2);
        assert_eq!(db.outcomes(&f, 0, 2, usize::MAX)?.len(), 2);
        // Bytes: two fit, and one is always returned even when it is larger.
        assert_eq!(db.outcomes(&f, 0, 10, sizes[0] * 2)?.len(), 2);
        assert_eq!(db.outcomes(&f, 0, 10, 1)?.len(), 1);
        assert!(db.outcomes(&f, 5, 10, usize::MAX)?.is_empty());
        let mut walked = Vec::new();
        db.walk_outcomes(&f, 1, |seq, size, number| {
            walked.push((seq, size, number));
            seq < 3
        })?;
        assert_eq!(walked, [(2, sizes[1] as u64, 2), (3, sizes[2] as u64, 3)]);
        let mut b = db.batch();
        b.prune_outcomes(&f, 4);
        b.commit()?;
        assert_eq!(db.outcomes(&f, 0, 10, usize::MAX)?[0].seq, 5);
        assert_eq!(db.outcomes(&g, 0, 10, usize::MAX)?.len(), 1);
        Ok(())
    }

    #[test]
    fn acks_are_kept_per_consumer_and_function() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let (f, g): (FunctionId, FunctionId) = ("f".parse()?, "g".parse()?);
        {
            let db = StateDb::open(dir.path())?;
            db.put_ack("registry", &f, 7)?;
            db.put_ack("registry", &g, 2)?;
            db.put_ack("sink", &f, 1)?;
            db.put_ack("registry", &f, 9)?;
        }
        let db = StateDb::open(dir.path())?;
        let acks = db.acks("registry")?;
        assert_eq!(acks.len(), 2);
        assert_eq!(acks[&f], 9);
        assert_eq!(acks[&g], 2);
        assert_eq!(db.acks("sink")?[&f], 1);
        assert!(db.acks("none")?.is_empty());
        assert_eq!(db.checkpoint()?, Checkpoint::default());
        Ok(())
    }

    #[test]
    fn legacy_records_become_outcomes() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let id: FunctionId = "f".parse()?;
        {
            // A database as written before the outcome log.
            let mut opts = column_options();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            let db = DB::open_cf(
                &opts,
                dir.path(),
                [CF_FUNCTIONS, CF_LEGACY_RECORDS, CF_META],
            )?;
            let mut old = serde_json::to_value(record(&id))?;
            old["next_record"] = 5.into();
            for k in ["last_seq", "last_item", "pruned_to", "kept_bytes"] {
                old.as_object_mut().unwrap().remove(k);
            }
            db.put_cf(
                db.cf_handle(CF_FUNCTIONS).unwrap(),
                "f",
                serde_json::to_vec(&old)?,
            )?;
            for index in 3..5u64 {
                let r = InvocationRecord {
                    id: id.clone(),
                    hash: ModuleHash::of(b"m"),
                    kind: xxfunc_api::EventKind::Commit,
                    block: BlockRef {
                        number: index,
                        hash: B256::ZERO,
                    },
                    status: xxfunc_api::InvocationStatus::Ok,
                    duration_us: 1,
                    stdout: format!("{{\"n\":{index}}}\n"),
                    stderr: String::new(),
                    at_ms: 1,
                };
                let mut key = b"f\0".to_vec();
                key.extend_from_slice(&index.to_be_bytes());
                db.put_cf(
                    db.cf_handle(CF_LEGACY_RECORDS).unwrap(),
                    key,
                    serde_json::to_vec(&r)?,
                )?;
            }
        }
        let db = StateDb::open(dir.path())?;
        let rec = &db.functions()?[0];
        assert_eq!((rec.pruned_to, rec.last_seq, rec.last_item), (3, 5, 2));
        let log = db.outcomes(&id, 0, 10, usize::MAX)?;
        assert_eq!(
            log.iter()
                .map(|o| (o.seq, o.first_item))
                .collect::<Vec<_>>(),
            [(4, 1), (5, 2)]
        );
        assert_eq!(log[1].stdout.0, b"{\"n\":4}\n");
        assert_eq!(
            rec.kept_bytes,
            log.iter().map(|o| encode(o).len() as u64).sum::<u64>()
        );
        drop(db);
        let names = DB::list_cf(&Options::default(), dir.path())?;
        assert!(!names.iter().any(|n| n == CF_LEGACY_RECORDS), "{names:?}");
        Ok(())
    }

    #[test]
    fn corrupt_values_are_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = StateDb::open(dir.path())?;
        db.db.put_cf(db.cf(CF_META), KEY_CHECKPOINT, b"{not json")?;
        assert!(matches!(
            db.checkpoint(),
            Err(RunnerError::CorruptRecord { .. })
        ));
        Ok(())
    }
}
