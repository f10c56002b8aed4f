//! [`Registry`]: every operation, each one synced `WriteBatch`.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use parking_lot::{Condvar, Mutex};
use rocksdb::{
    ColumnFamily, ColumnFamilyDescriptor, DB, Direction, IteratorMode, Options, WriteBatch,
};
use xxfunc_api::{
    BindResponse, ChangeKind, DesiredState, FeedEntry, FeedPage, FeedSnapshot, FunctionId,
    FunctionName, FunctionSpec, FunctionView, HashPrefix, InvocationRecord, LogsPage, ModuleHash,
    PinResponse, ReportedBy, RunnerReport, Selector, StartFrom, VersionEntry,
};

use xxfunc_store::StoreError;

use crate::{
    error::{RegistryError, Result},
    schema::*,
};

/// Invocation records kept per function by default.
pub const DEFAULT_LOGS_PER_FUNCTION: u64 = 1000;

/// Largest page [`Registry::feed_after`] returns.
pub const MAX_FEED_PAGE: usize = 10_000;

/// Tuning knobs of a [`Registry`].
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Invocation records kept per function; older ones are deleted as new ones arrive.
    pub logs_per_function: u64,
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
    /// Highest committed feed seq; waiters sleep on `changed`.
    head: Mutex<u64>,
    changed: Condvar,
    /// Called with the new feed head after every commit that added entries.
    listeners: Mutex<Vec<Listener>>,
}

type Listener = Box<dyn Fn(u64) + Send + Sync>;

/// A raw RocksDB entry.
type KeyValue = (Box<[u8]>, Box<[u8]>);

/// Everything stored about one identity.
#[derive(Default)]
struct State {
    name: Option<NameRecord>,
    pin: Option<ModuleHash>,
    desired: Option<DesiredRecord>,
}

impl Registry {
    /// Opens (creating if missing) the registry in the directory `path`.
    ///
    /// # Errors
    /// [`RegistryError::Open`] if RocksDB cannot open it (e.g. another process has it open).
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
        let db = DB::open_cf_descriptors(&db_opts, &path, cfs).map_err(|source| {
            RegistryError::Open {
                path: path.clone(),
                source,
            }
        })?;
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
        Ok(Self {
            inner: Arc::new(Inner {
                db,
                path,
                options,
                write: Mutex::new(()),
                head: Mutex::new(head),
                changed: Condvar::new(),
                listeners: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The directory the registry lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Calls `listener` with the new feed head after every commit that adds
    /// feed entries (from the committing thread, after the write is durable).
    /// Async servers use it to wake long polls without blocking a thread.
    /// Keep it short: it runs while writers wait.
    pub fn on_commit(&self, listener: impl Fn(u64) + Send + Sync + 'static) {
        self.inner.listeners.lock().push(Box::new(listener));
    }

    /// The highest change feed seq (0 when the feed is empty).
    pub fn feed_head(&self) -> u64 {
        *self.inner.head.lock()
    }

    // ---------------------------------------------------------------- writes

    /// Binds `name` to `hash`, recording a new version (and a `deployed` feed
    /// entry). Binding a name to the hash it already points at changes nothing
    /// and answers the current version, so a repeated deploy is idempotent.
    ///
    /// The caller vouches that `hash` is stored (the gateway checks its module
    /// store first); the registry never sees module bytes.
    ///
    /// # Errors
    /// [`RegistryError::Db`] if the write fails; nothing is changed then.
    pub fn bind(&self, name: &FunctionName, hash: ModuleHash) -> Result<BindResponse> {
        let w = self.inner.write.lock();
        let id = FunctionId::Name(name.clone());
        let state = self.load(&id)?;
        if let Some(rec) = state.name
            && rec.hash == hash
        {
            return Ok(BindResponse {
                name: name.clone(),
                hash,
                version: rec.version,
                pinned: state.pin.is_some(),
            });
        }
        let version = state.name.map_or(1, |r| r.version + 1);
        let rec = NameRecord { hash, version };
        let at_ms = now_ms();
        let mut tx = self.tx();
        tx.batch
            .put_cf(self.cf(CF_NAMES), name.as_str(), encode(&rec));
        tx.batch.put_cf(
            self.cf(CF_VERSIONS),
            sub_key(name.as_str(), version),
            encode(&VersionEntry {
                version,
                hash,
                at_ms,
            }),
        );
        let after = State {
            name: Some(rec),
            ..state
        };
        tx.feed(&id, ChangeKind::Deployed, spec_of(&id, &after), at_ms);
        tx.commit()?;
        drop(w);
        self.sync_wal()?;
        Ok(BindResponse {
            name: name.clone(),
            hash,
            version,
            pinned: after.pin.is_some(),
        })
    }

    /// Sets a function's desired state to started, beginning at `from`.
    ///
    /// A start bumps `start_generation` (runners reset the cursor to `from`),
    /// except that starting an already started function from the head
    /// changes nothing: repeating `start` never skips blocks.
    ///
    /// A [`FunctionId::Hash`] identity is created by its first start; the
    /// caller vouches that the module is stored.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name that was never bound.
    pub fn start(&self, id: &FunctionId, from: StartFrom) -> Result<FunctionSpec> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        self.require_exists(id, &state, false)?;
        let cur = state.desired.unwrap_or_default();
        if cur.desired == DesiredState::Started && from == StartFrom::Head {
            return Ok(spec_of(id, &state).expect("an existing function has a spec"));
        }
        let rec = DesiredRecord {
            desired: DesiredState::Started,
            start: from,
            start_generation: cur.start_generation + 1,
        };
        let spec = self.set_desired(id, state, rec, ChangeKind::Started)?;
        drop(w);
        self.sync_wal()?;
        Ok(spec)
    }

    /// Sets a function's desired state to stopped. Stopping a stopped function changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for an unknown name, or a hash that was never started.
    pub fn stop(&self, id: &FunctionId) -> Result<FunctionSpec> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        self.require_exists(id, &state, true)?;
        let cur = state.desired.unwrap_or_default();
        if cur.desired == DesiredState::Stopped {
            return Ok(spec_of(id, &state).expect("an existing function has a spec"));
        }
        let rec = DesiredRecord {
            desired: DesiredState::Stopped,
            ..cur
        };
        let spec = self.set_desired(id, state, rec, ChangeKind::Stopped)?;
        drop(w);
        self.sync_wal()?;
        Ok(spec)
    }

    fn set_desired(
        &self,
        id: &FunctionId,
        state: State,
        rec: DesiredRecord,
        change: ChangeKind,
    ) -> Result<FunctionSpec> {
        let mut tx = self.tx();
        tx.batch
            .put_cf(self.cf(CF_DESIRED), id_key(id), encode(&rec));
        let after = State {
            desired: Some(rec),
            ..state
        };
        let spec = spec_of(id, &after).expect("a function with a desired state has a spec");
        tx.feed(id, change, Some(spec.clone()), now_ms());
        tx.commit()?;
        Ok(spec)
    }

    /// Pins a name to its current hash (new deploys record versions but the
    /// function keeps running the pinned hash), or pins a hash (garbage
    /// collection never removes it). Pinning something pinned changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name that was never bound.
    pub fn pin(&self, id: &FunctionId) -> Result<PinResponse> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        let hash = match id {
            FunctionId::Name(_) => state.name.ok_or_else(|| not_found(id))?.hash,
            FunctionId::Hash(h) => *h,
        };
        if let Some(pinned) = state.pin {
            return Ok(PinResponse {
                id: id.clone(),
                hash: pinned,
                pinned: true,
            });
        }
        let mut tx = self.tx();
        tx.batch.put_cf(self.cf(CF_PINS), id_key(id), encode(&hash));
        let after = State {
            pin: Some(hash),
            ..state
        };
        tx.feed(id, ChangeKind::Pinned, spec_of(id, &after), now_ms());
        tx.commit()?;
        drop(w);
        self.sync_wal()?;
        Ok(PinResponse {
            id: id.clone(),
            hash,
            pinned: true,
        })
    }

    /// Removes a pin; a name then runs its current hash again. Unpinning
    /// something not pinned changes nothing.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name that was never bound.
    pub fn unpin(&self, id: &FunctionId) -> Result<PinResponse> {
        let w = self.inner.write.lock();
        let state = self.load(id)?;
        let current = match id {
            FunctionId::Name(_) => state.name.ok_or_else(|| not_found(id))?.hash,
            FunctionId::Hash(h) => *h,
        };
        let Some(pinned) = state.pin else {
            return Ok(PinResponse {
                id: id.clone(),
                hash: current,
                pinned: false,
            });
        };
        let mut tx = self.tx();
        tx.batch.delete_cf(self.cf(CF_PINS), id_key(id));
        let after = State { pin: None, ..state };
        tx.feed(id, ChangeKind::Unpinned, spec_of(id, &after), now_ms());
        tx.commit()?;
        drop(w);
        self.sync_wal()?;
        Ok(PinResponse {
            id: id.clone(),
            hash: pinned,
            pinned: false,
        })
    }

    /// Records what runner `runner_id` observes: per-function state, cursor,
    /// last error and counters (shown by [`function`](Self::function)), and
    /// its recent invocations (kept bounded per function, shown by
    /// [`logs`](Self::logs)). Reports are not registry changes and add no feed entry.
    ///
    /// # Errors
    /// [`RegistryError::Db`] if the write fails.
    pub fn record_report(&self, runner_id: &str, report: &RunnerReport) -> Result<()> {
        let w = self.inner.write.lock();
        let at_ms = now_ms();
        let mut batch = WriteBatch::default();
        for f in &report.functions {
            let stored = StoredReport {
                runner: runner_id.to_string(),
                at_ms,
                report: f.clone(),
            };
            batch.put_cf(self.cf(CF_REPORTS), id_key(&f.id), encode(&stored));
        }
        let mut by_id: BTreeMap<&FunctionId, Vec<&InvocationRecord>> = BTreeMap::new();
        for rec in &report.invocations {
            by_id.entry(&rec.id).or_default().push(rec);
        }
        let keep = self.inner.options.logs_per_function.max(1);
        for (id, records) in by_id {
            let seq_key = log_seq_key(id);
            let mut seq = self.get_u64(CF_META, &seq_key)?.unwrap_or(0);
            let id_str = id.to_string();
            // Only the newest `keep` of this report can survive anyway.
            let skip = records
                .len()
                .saturating_sub(usize::try_from(keep).unwrap_or(usize::MAX));
            seq += skip as u64;
            for rec in &records[skip..] {
                seq += 1;
                batch.put_cf(self.cf(CF_LOGS), sub_key(&id_str, seq), encode(*rec));
            }
            batch.put_cf(self.cf(CF_META), &seq_key, seq.to_be_bytes());
            if seq > keep {
                batch.delete_range_cf(
                    self.cf(CF_LOGS),
                    sub_key(&id_str, 0),
                    sub_key(&id_str, seq - keep + 1),
                );
            }
        }
        self.write_batch(batch)?;
        drop(w);
        self.sync_wal()
    }

    // ----------------------------------------------------------------- reads

    /// A name's binding, or `None` if the name was never bound.
    ///
    /// # Errors
    /// [`RegistryError::Db`] / [`RegistryError::Corrupt`] on read failures.
    pub fn lookup_name(&self, name: &FunctionName) -> Result<Option<NameBinding>> {
        let Some(rec) = self.get_json::<NameRecord>(CF_NAMES, name.as_str().as_bytes())? else {
            return Ok(None);
        };
        let pinned =
            self.get_json::<ModuleHash>(CF_PINS, &id_key(&FunctionId::Name(name.clone())))?;
        Ok(Some(NameBinding {
            name: name.clone(),
            current: rec.hash,
            version: rec.version,
            pinned,
        }))
    }

    /// Everything known about one function.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for a name never bound or a hash never started.
    pub fn function(&self, id: &FunctionId) -> Result<FunctionView> {
        let state = self.load(id)?;
        self.view(id, &state)
    }

    /// Every function: named ones by name, then hash identities.
    ///
    /// # Errors
    /// Read failures.
    pub fn list(&self) -> Result<Vec<FunctionView>> {
        self.ids()?.iter().map(|id| self.function(id)).collect()
    }

    /// Every function's spec and the feed seq they reflect, read consistently.
    ///
    /// # Errors
    /// Read failures.
    pub fn snapshot(&self) -> Result<FeedSnapshot> {
        let _w = self.inner.write.lock();
        let seq = self.feed_head();
        let mut functions = Vec::new();
        for id in self.ids()? {
            if let Some(spec) = spec_of(&id, &self.load(&id)?) {
                functions.push(spec);
            }
        }
        Ok(FeedSnapshot { seq, functions })
    }

    /// Feed entries with `seq > after`, at most `limit` (capped at [`MAX_FEED_PAGE`]).
    ///
    /// # Errors
    /// Read failures.
    pub fn feed_after(&self, after: u64, limit: usize) -> Result<FeedPage> {
        let head = self.feed_head();
        let limit = limit.clamp(1, MAX_FEED_PAGE);
        let mut entries = Vec::new();
        if after < head {
            let start = (after + 1).to_be_bytes();
            let iter = self.inner.db.iterator_cf(
                self.cf(CF_FEED),
                IteratorMode::From(&start, Direction::Forward),
            );
            for item in iter.take(limit) {
                let (key, value) = item.map_err(|source| RegistryError::Db {
                    op: "read feed",
                    source,
                })?;
                let entry: FeedEntry = decode(CF_FEED, &key, &value)?;
                if entry.seq > head {
                    break;
                }
                entries.push(entry);
            }
        }
        Ok(FeedPage { entries, head })
    }

    /// Like [`feed_after`](Self::feed_after), but blocks the calling thread
    /// until an entry after `after` exists or `timeout` passes (then the page
    /// is empty). Run it off async executors (`spawn_blocking`).
    ///
    /// # Errors
    /// Read failures.
    pub fn wait_feed(&self, after: u64, timeout: Duration) -> Result<FeedPage> {
        let deadline = Instant::now() + timeout;
        {
            let mut head = self.inner.head.lock();
            while *head <= after {
                if self
                    .inner
                    .changed
                    .wait_until(&mut head, deadline)
                    .timed_out()
                {
                    break;
                }
            }
        }
        self.feed_after(after, MAX_FEED_PAGE)
    }

    /// Recent invocations of a function, most recent last, at most `limit`.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] if the function does not exist and has no records.
    pub fn logs(&self, id: &FunctionId, limit: usize) -> Result<LogsPage> {
        let id_str = id.to_string();
        let prefix = sub_key_prefix(&id_str);
        let end = sub_key(&id_str, u64::MAX);
        let iter = self.inner.db.iterator_cf(
            self.cf(CF_LOGS),
            IteratorMode::From(&end, Direction::Reverse),
        );
        let mut invocations = Vec::new();
        for item in iter {
            if invocations.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(|source| RegistryError::Db {
                op: "read logs",
                source,
            })?;
            if !key.starts_with(&prefix) {
                break;
            }
            invocations.push(decode::<InvocationRecord>(CF_LOGS, &key, &value)?);
        }
        if invocations.is_empty() {
            let state = self.load(id)?;
            self.require_exists(id, &state, true)?;
        }
        invocations.reverse();
        Ok(LogsPage { invocations })
    }

    /// Every module hash something refers to: names' current hashes, every
    /// version in every history, hash identities and pins. Garbage collection
    /// must keep all of them.
    ///
    /// # Errors
    /// Read failures.
    pub fn referenced_hashes(&self) -> Result<BTreeSet<ModuleHash>> {
        let mut out = BTreeSet::new();
        for (key, value) in self.scan(CF_VERSIONS)? {
            out.insert(decode::<VersionEntry>(CF_VERSIONS, &key, &value)?.hash);
        }
        for (key, value) in self.scan(CF_NAMES)? {
            out.insert(decode::<NameRecord>(CF_NAMES, &key, &value)?.hash);
        }
        for (key, value) in self.scan(CF_PINS)? {
            out.insert(decode::<ModuleHash>(CF_PINS, &key, &value)?);
        }
        for (key, _) in self.scan(CF_DESIRED)? {
            if let FunctionId::Hash(h) = decode_id(CF_DESIRED, &key)? {
                out.insert(h);
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------- selectors

    /// Whether resolving `selector` needs the list of stored modules: it is
    /// an abbreviated prefix and not a bound name. When false, pass `&[]` to
    /// [`resolve`](Self::resolve).
    ///
    /// # Errors
    /// Read failures.
    pub fn needs_store_modules(&self, selector: &Selector) -> Result<bool> {
        Ok(match selector {
            Selector::Name(_) => false,
            Selector::Hash(p) => p.as_full().is_none(),
            Selector::NameOrHash(name, p) => {
                p.as_full().is_none() && self.lookup_name(name)?.is_none()
            }
        })
    }

    /// Resolves a user's selector to a function identity. The one rule,
    /// shared by the gateway and offline `cargo xxfunc`:
    ///
    /// 1. A name (a [`Selector::Name`], or a [`Selector::NameOrHash`] whose
    ///    name is bound) is [`FunctionId::Name`]. Its existence is checked by
    ///    the operation that uses it.
    /// 2. A full hash is [`FunctionId::Hash`] of it.
    /// 3. A prefix must match exactly one module among those the registry
    ///    refers to plus `store_modules` (what the module store lists).
    ///
    /// # Errors
    /// [`RegistryError::PrefixNotFound`], or [`RegistryError::Ambiguous`] with the candidates.
    pub fn resolve(&self, selector: &Selector, store_modules: &[ModuleHash]) -> Result<FunctionId> {
        match selector {
            Selector::Name(name) => Ok(FunctionId::Name(name.clone())),
            Selector::NameOrHash(name, prefix) => {
                if self.lookup_name(name)?.is_some() {
                    Ok(FunctionId::Name(name.clone()))
                } else {
                    self.resolve_hash(prefix, store_modules)
                        .map(FunctionId::Hash)
                }
            }
            Selector::Hash(prefix) => self
                .resolve_hash(prefix, store_modules)
                .map(FunctionId::Hash),
        }
    }

    /// Resolves a hash prefix among the modules the registry refers to plus `store_modules`.
    ///
    /// # Errors
    /// [`RegistryError::PrefixNotFound`], or [`RegistryError::Ambiguous`] with the sorted candidates.
    pub fn resolve_hash(
        &self,
        prefix: &HashPrefix,
        store_modules: &[ModuleHash],
    ) -> Result<ModuleHash> {
        if let Some(full) = prefix.as_full() {
            return Ok(full);
        }
        let referenced = self.referenced_hashes()?;
        let known = store_modules.iter().copied().chain(referenced);
        xxfunc_store::resolve_in(prefix, known).map_err(|e| match e {
            StoreError::Ambiguous { prefix, candidates } => {
                RegistryError::Ambiguous { prefix, candidates }
            }
            // `resolve_in` fails only with the two prefix errors.
            _ => RegistryError::PrefixNotFound {
                prefix: prefix.clone(),
            },
        })
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
        Ok(State {
            name,
            pin: self.get_json(CF_PINS, &key)?,
            desired: self.get_json(CF_DESIRED, &key)?,
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

    fn view(&self, id: &FunctionId, state: &State) -> Result<FunctionView> {
        let spec = spec_of(id, state).ok_or_else(|| not_found(id))?;
        let mut versions = Vec::new();
        if let FunctionId::Name(name) = id {
            let prefix = sub_key_prefix(name.as_str());
            let iter = self.inner.db.iterator_cf(
                self.cf(CF_VERSIONS),
                IteratorMode::From(&prefix, Direction::Forward),
            );
            for item in iter {
                let (key, value) = item.map_err(|source| RegistryError::Db {
                    op: "read versions",
                    source,
                })?;
                if !key.starts_with(&prefix) {
                    break;
                }
                versions.push(decode::<VersionEntry>(CF_VERSIONS, &key, &value)?);
            }
        }
        let stored = self.get_json::<StoredReport>(CF_REPORTS, &id_key(id))?;
        let reported = stored.as_ref().map(|r| ReportedBy {
            runner: r.runner.clone(),
            at_ms: r.at_ms,
        });
        let report = stored.map(|r| r.report);
        Ok(FunctionView {
            id: id.clone(),
            name: match id {
                FunctionId::Name(n) => Some(n.clone()),
                FunctionId::Hash(_) => None,
            },
            hash: spec.hash,
            version: state.name.map(|r| r.version),
            versions,
            pinned: state.pin.is_some(),
            desired: spec.desired,
            start: spec.start,
            observed: report.as_ref().map(|r| r.observed.clone()),
            reported,
            cursor: report.as_ref().and_then(|r| r.cursor),
            last_error: report.as_ref().and_then(|r| r.last_error.clone()),
            counters: report.map(|r| r.counters).unwrap_or_default(),
        })
    }

    /// Writes a batch to the WAL and memtable, in feed order (callers hold
    /// the write lock). Not yet synced: see [`sync_wal`](Self::sync_wal).
    fn write_batch(&self, batch: WriteBatch) -> Result<()> {
        self.inner
            .db
            .write(batch)
            .map_err(|source| RegistryError::Db {
                op: "write batch",
                source,
            })
    }

    /// Syncs the WAL; called after the write lock is released, so writers
    /// that commit while one sync runs share the next one (group commit).
    /// Batches reach the WAL in feed order, so a crash keeps a gapless prefix,
    /// and no write is acknowledged before the sync covering it returns.
    fn sync_wal(&self) -> Result<()> {
        if !self.inner.options.sync {
            return Ok(());
        }
        self.inner
            .db
            .flush_wal(true)
            .map_err(|source| RegistryError::Db {
                op: "sync WAL",
                source,
            })
    }

    /// A transaction; call only while holding the write lock.
    fn tx(&self) -> Tx<'_> {
        Tx {
            reg: self,
            batch: WriteBatch::default(),
            head: self.feed_head(),
        }
    }
}

/// One batch of changes plus the feed entries describing them.
struct Tx<'a> {
    reg: &'a Registry,
    batch: WriteBatch,
    head: u64,
}

impl Tx<'_> {
    fn feed(
        &mut self,
        id: &FunctionId,
        change: ChangeKind,
        spec: Option<FunctionSpec>,
        at_ms: u64,
    ) {
        self.head += 1;
        let entry = FeedEntry {
            seq: self.head,
            at_ms,
            id: id.clone(),
            change,
            spec,
        };
        self.batch.put_cf(
            self.reg.cf(CF_FEED),
            self.head.to_be_bytes(),
            encode(&entry),
        );
    }

    fn commit(mut self) -> Result<()> {
        self.batch.put_cf(
            self.reg.cf(CF_META),
            META_FEED_HEAD,
            self.head.to_be_bytes(),
        );
        self.reg.write_batch(self.batch)?;
        *self.reg.inner.head.lock() = self.head;
        self.reg.inner.changed.notify_all();
        for listener in self.reg.inner.listeners.lock().iter() {
            listener(self.head);
        }
        Ok(())
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
    })
}

fn not_found(id: &FunctionId) -> RegistryError {
    RegistryError::FunctionNotFound { id: id.clone() }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
