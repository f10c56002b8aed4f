//! [`Registry`]: the type, opening it, and the helpers its operations share.
//!
//! The operations live in submodules named for what they do: [`write`]
//! (each one synced `WriteBatch`), [`read`], [`feed`] and [`resolve`].

mod feed;
mod outcomes;
mod read;
mod resolve;
mod sinks;
mod write;

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use parking_lot::{Condvar, Mutex};
use rocksdb::{ColumnFamily, ColumnFamilyDescriptor, DB, IteratorMode, Options};
use xxfunc_api::{FunctionId, FunctionName, FunctionSpec, ModuleHash, sinks::SinkEntry};

use crate::{
    error::{RegistryError, Result},
    schema::*,
};

pub use outcomes::{
    DEFAULT_OUTPUTS_PAGE, MAX_CONFIRMATIONS, MAX_OUTPUTS_PAGE, MAX_OUTPUTS_PAGE_BYTES,
};
pub use read::MAX_LOGS_BYTES;

/// Invocation records kept per function by default.
pub const DEFAULT_LOGS_PER_FUNCTION: u64 = 1000;

/// Outcomes kept per (runner, function) by default.
pub const DEFAULT_OUTCOMES_PER_FUNCTION: u64 = 10_000;

/// Bytes of outcomes kept per (runner, function) by default (256 MiB).
pub const DEFAULT_OUTCOME_BYTES_PER_FUNCTION: u64 = 256 * 1024 * 1024;

/// Largest page [`Registry::feed_after`] returns.
pub const MAX_FEED_PAGE: usize = 10_000;

/// Tuning knobs of a [`Registry`].
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Legacy invocation records kept per function (no longer written; kept for old data).
    pub logs_per_function: u64,
    /// Outcomes kept per (runner, function); the oldest are pruned as new ones arrive.
    pub outcomes_per_function: u64,
    /// Bytes of outcomes (their stored JSON) kept per (runner, function); the oldest are
    /// pruned beyond it, always keeping the newest.
    pub outcome_bytes_per_function: u64,
    /// Sync the WAL on every write (default `true`). Only tests of throughput should turn it off.
    pub sync: bool,
}

/// Options for the database and each column family. Compression is named
/// explicitly: RocksDB's default depends on the codecs compiled in, so a
/// binary that links Snappy (as a reth node does) would otherwise write files
/// that the LZ4-only gateway and CLI cannot read.
fn column_options() -> Options {
    let mut opts = Options::default();
    opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
    opts
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self {
            logs_per_function: DEFAULT_LOGS_PER_FUNCTION,
            outcomes_per_function: DEFAULT_OUTCOMES_PER_FUNCTION,
            outcome_bytes_per_function: DEFAULT_OUTCOME_BYTES_PER_FUNCTION,
            sync: true,
        }
    }
}

/// A name's current binding, as [`Registry::lookup_name`] answers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameBinding {
    /// The name.
    pub name: FunctionName,
    /// The hash the name currently points at (its latest version).
    pub current: ModuleHash,
    /// The latest version number.
    pub version: u64,
    /// The pinned hash, if the name is pinned (this is what runs).
    pub pinned: Option<ModuleHash>,
}

impl NameBinding {
    /// The hash the function runs: pinned if pinned, else current.
    pub fn effective(&self) -> ModuleHash {
        self.pinned.unwrap_or(self.current)
    }
}

/// The registry. Cheap to clone (an `Arc`); share one per process. `Send + Sync`.
///
/// See the [crate docs](crate) for the data model and guarantees.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    db: DB,
    path: PathBuf,
    options: RegistryOptions,
    /// Serialises read-modify-write operations.
    write: Mutex<()>,
    /// Highest feed seq whose entries are durable (published): what readers see;
    /// waiters sleep on `changed`.
    head: Mutex<u64>,
    /// Highest feed seq written to the WAL (maybe not yet synced); writers number
    /// from it (under `write`).
    written: std::sync::atomic::AtomicU64,
    /// Serialises publishing (the head and its listeners in order).
    publishing: Mutex<()>,
    changed: Condvar,
    /// Called with the new feed head once entries are durable.
    listeners: Mutex<Vec<Listener>>,
    /// This registry's epoch ([`META_EPOCH`]).
    epoch: String,
    /// Called with the runner and function after every push that stored outcomes.
    outcome_listeners: Mutex<Vec<OutcomeListener>>,
}

type Listener = Box<dyn Fn(u64) + Send + Sync>;
type OutcomeListener = Box<dyn Fn(&str, &FunctionId, u64) + Send + Sync>;

/// A raw RocksDB entry.
type KeyValue = (Box<[u8]>, Box<[u8]>);

/// Everything stored about one identity.
#[derive(Default)]
struct State {
    name: Option<NameRecord>,
    pin: Option<ModuleHash>,
    desired: Option<DesiredRecord>,
    sinks: Vec<SinkEntry>,
}

impl Registry {
    /// Opens (creating if missing) the registry in the directory `path`.
    ///
    /// # Errors
    /// [`RegistryError::Locked`] if another process has it open,
    /// [`RegistryError::Open`] if RocksDB cannot open it for another reason.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with(path, RegistryOptions::default())
    }

    /// [`open`](Self::open) with options.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_with(path: impl AsRef<Path>, options: RegistryOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let mut db_opts = column_options();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_max_open_files(256);
        db_opts.set_keep_log_file_num(4);
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, column_options()));
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs)
            .map_err(|source| open_error(path.clone(), source))?;
        let head = match db
            .get_cf(
                db.cf_handle(CF_META)
                    .expect("meta column family is created at open"),
                META_FEED_HEAD,
            )
            .map_err(|source| RegistryError::Db {
                op: "read feed head",
                source,
            })? {
            Some(v) => decode_u64(CF_META, META_FEED_HEAD, &v)?,
            None => 0,
        };
        let epoch = read_or_create_epoch(&db, &path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                path,
                options,
                write: Mutex::new(()),
                head: Mutex::new(head),
                written: std::sync::atomic::AtomicU64::new(head),
                publishing: Mutex::new(()),
                changed: Condvar::new(),
                listeners: Mutex::new(Vec::new()),
                outcome_listeners: Mutex::new(Vec::new()),
                epoch,
            }),
        })
    }

    /// The directory the registry lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The registry's epoch: chosen when it was created and kept for its life, so a
    /// follower of its change feed sees when the registry it follows was replaced by
    /// another (reset, or a different data directory) and takes a new snapshot.
    pub fn epoch(&self) -> &str {
        &self.inner.epoch
    }

    // -------------------------------------------------------------- helpers

    fn cf(&self, name: &'static str) -> &ColumnFamily {
        self.inner
            .db
            .cf_handle(name)
            .expect("every column family is created at open")
    }

    fn get_raw(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.inner
            .db
            .get_cf(self.cf(cf), key)
            .map_err(|source| RegistryError::Db { op: "read", source })
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<T>> {
        self.get_raw(cf, key)?
            .map(|v| decode(cf, key, &v))
            .transpose()
    }

    fn get_u64(&self, cf: &'static str, key: &[u8]) -> Result<Option<u64>> {
        self.get_raw(cf, key)?
            .map(|v| decode_u64(cf, key, &v))
            .transpose()
    }

    fn scan(&self, cf: &'static str) -> Result<Vec<KeyValue>> {
        self.inner
            .db
            .iterator_cf(self.cf(cf), IteratorMode::Start)
            .collect::<std::result::Result<_, _>>()
            .map_err(|source| RegistryError::Db { op: "scan", source })
    }

    fn load(&self, id: &FunctionId) -> Result<State> {
        let key = id_key(id);
        let name = match id {
            FunctionId::Name(n) => self.get_json::<NameRecord>(CF_NAMES, n.as_str().as_bytes())?,
            FunctionId::Hash(_) => None,
        };
        let sinks = self
            .scan_prefix(CF_SINKS, &report_prefix(id))?
            .iter()
            .map(|(k, v)| decode(CF_SINKS, k, v))
            .collect::<Result<_>>()?;
        Ok(State {
            name,
            pin: self.get_json(CF_PINS, &key)?,
            desired: self.get_json(CF_DESIRED, &key)?,
            sinks,
        })
    }

    /// Names (sorted), then hash identities with a desired state.
    fn ids(&self) -> Result<Vec<FunctionId>> {
        let mut ids = Vec::new();
        for (key, _) in self.scan(CF_NAMES)? {
            ids.push(decode_id(CF_NAMES, &key)?);
        }
        for (key, _) in self.scan(CF_DESIRED)? {
            let id = decode_id(CF_DESIRED, &key)?;
            if matches!(id, FunctionId::Hash(_)) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Names must be bound; hash identities must have a desired state when `hash_needs_desired`.
    fn require_exists(
        &self,
        id: &FunctionId,
        state: &State,
        hash_needs_desired: bool,
    ) -> Result<()> {
        let exists = match id {
            FunctionId::Name(_) => state.name.is_some(),
            FunctionId::Hash(_) => !hash_needs_desired || state.desired.is_some(),
        };
        if exists { Ok(()) } else { Err(not_found(id)) }
    }
}

/// The spec runners see, or `None` if the identity is not a function.
fn spec_of(id: &FunctionId, state: &State) -> Option<FunctionSpec> {
    let hash = match id {
        FunctionId::Name(_) => state.pin.unwrap_or(state.name?.hash),
        FunctionId::Hash(h) => {
            state.desired?;
            *h
        }
    };
    let d = state.desired.unwrap_or_default();
    Some(FunctionSpec {
        id: id.clone(),
        hash,
        desired: d.desired,
        start: d.start,
        start_generation: d.start_generation,
        sinks: state.sinks.clone(),
    })
}

/// Classifies a failed open. RocksDB reports a lock held by another process
/// as the I/O error of its `fcntl` lock: "IO error: While lock file:
/// <dir>/LOCK: Resource temporarily unavailable". A second open inside this
/// process fails before that, with "lock hold by current process", and stays
/// [`RegistryError::Open`].
fn open_error(path: PathBuf, source: rocksdb::Error) -> RegistryError {
    if source.kind() == rocksdb::ErrorKind::IOError && source.as_ref().contains("While lock file") {
        RegistryError::Locked { path, source }
    } else {
        RegistryError::Open { path, source }
    }
}

fn not_found(id: &FunctionId) -> RegistryError {
    RegistryError::FunctionNotFound { id: id.clone() }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The epoch stored in `db`, or a new one (16 hex digits from the process's randomly
/// seeded hasher, the time and the path) written and synced when there is none.
fn read_or_create_epoch(db: &DB, path: &Path) -> Result<String> {
    let cf = db
        .cf_handle(CF_META)
        .expect("meta column family is created at open");
    let stored = db
        .get_cf(cf, META_EPOCH)
        .map_err(|source| RegistryError::Db {
            op: "read epoch",
            source,
        })?;
    if let Some(v) = stored {
        return Ok(String::from_utf8_lossy(&v).into_owned());
    }
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    hasher.write(path.as_os_str().as_encoded_bytes());
    let epoch = format!("{:016x}", hasher.finish());
    let mut opts = rocksdb::WriteOptions::default();
    opts.set_sync(true);
    db.put_cf_opt(cf, META_EPOCH, epoch.as_bytes(), &opts)
        .map_err(|source| RegistryError::Db {
            op: "write epoch",
            source,
        })?;
    Ok(epoch)
}
