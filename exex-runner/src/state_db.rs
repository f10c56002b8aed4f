//! The runner's own RocksDB: per-function state (module, cursor, counters,
//! quarantine), invocation records, and the source checkpoint.
//!
//! Column families:
//!
//! | cf | key | value (JSON) |
//! |---|---|---|
//! | `functions` | function id | [`FunctionRecord`] |
//! | `records` | function id, `0x00`, record index (u64 BE) | [`InvocationRecord`] |
//! | `meta` | `checkpoint` | [`Checkpoint`] |
//! | `blocks` | block number (u64 BE) | the block's commit envelope (docs/abi.md), for the last `RunnerConfig::reorg_blocks` blocks |
//!
//! Everything one group of events changes goes into one [`Batch`], written
//! with `sync = true`: a cursor never moves without the outcome that moved it,
//! and an outcome never lands without its cursor.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use rocksdb::{
    ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch, WriteOptions,
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use xxfunc_abi::ChainBlock;
use xxfunc_api::{BlockRef, Counters, FunctionId, InvocationRecord};
use xxfunc_store::ModuleHash;

use crate::error::{Result, RunnerError};

const CF_FUNCTIONS: &str = "functions";
const CF_RECORDS: &str = "records";
const CF_META: &str = "meta";
/// The last committed blocks (number, big-endian → commit envelope), so a
/// restarted runner can revert blocks the node dropped while it was down.
const CF_BLOCKS: &str = "blocks";
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
    /// Index of the next invocation record.
    pub next_record: u64,
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

impl StateDb {
    pub(crate) fn open(path: &Path) -> Result<Self> {
        let mut opts = column_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = [CF_FUNCTIONS, CF_RECORDS, CF_META, CF_BLOCKS]
            .map(|name| ColumnFamilyDescriptor::new(name, column_options()));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| RunnerError::Db {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            db,
            path: path.to_path_buf(),
        })
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

    /// Records of `id` with index ≥ `from`, oldest first, at most `limit`.
    pub(crate) fn records(
        &self,
        id: &FunctionId,
        from: u64,
        limit: usize,
    ) -> Result<Vec<InvocationRecord>> {
        let prefix = record_prefix(id);
        let start = record_key(id, from);
        let mut out = Vec::new();
        let iter = self.db.iterator_cf(
            self.cf(CF_RECORDS),
            IteratorMode::From(&start, Direction::Forward),
        );
        for item in iter {
            let (key, value) = item.map_err(|e| self.err(e))?;
            if !key.starts_with(&prefix) || out.len() >= limit {
                break;
            }
            out.push(decode(&key, &value)?);
        }
        Ok(out)
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

    pub(crate) fn put_record(&mut self, id: &FunctionId, index: u64, rec: &InvocationRecord) {
        self.wb
            .put_cf(self.db.cf(CF_RECORDS), record_key(id, index), encode(rec));
    }

    /// Deletes the records of `id` with index < `below`.
    pub(crate) fn prune_records(&mut self, id: &FunctionId, below: u64) {
        self.wb.delete_range_cf(
            self.db.cf(CF_RECORDS),
            record_key(id, 0),
            record_key(id, below),
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

fn record_prefix(id: &FunctionId) -> Vec<u8> {
    let mut key = id.to_string().into_bytes();
    key.push(0);
    key
}

fn record_key(id: &FunctionId, index: u64) -> Vec<u8> {
    let mut key = record_prefix(id);
    key.extend_from_slice(&index.to_be_bytes());
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

    #[test]
    fn batch_is_atomic_and_survives_reopen() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let id: FunctionId = "f".parse()?;
        let rec = FunctionRecord {
            id: id.clone(),
            hash: ModuleHash::of(b"m"),
            started: true,
            start_generation: 1,
            position: Position::Block {
                block: BlockRef {
                    number: 7,
                    hash: B256::repeat_byte(7),
                },
                first: 0,
            },
            counters: Counters::default(),
            quarantined: None,
            last_error: None,
            next_record: 3,
        };
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
        assert!(db.records(&id, 0, 10)?.is_empty());
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
