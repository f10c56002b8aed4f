//! [`ModuleStore`]: put, get, list and delete modules by hash.

use std::{fmt, sync::Arc, time::SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use object_store::{
    GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutPayload, WriteMultipart, path::Path,
};

use crate::{
    config::{StoreConfig, open_backend},
    error::{Result, StoreError, StoreOp},
    hash::{HashPrefix, ModuleHash, resolve_in},
    stream::{ModuleStream, read_file_chunks},
};

/// Directory (under the store prefix) holding one object per module, named by its hex hash.
pub(crate) const MODULES_DIR: &str = "blake3";
/// Directory (under the store prefix) holding streamed uploads until they are published.
pub(crate) const STAGING_DIR: &str = "tmp";
/// Directory (under the store prefix) holding one empty object per recorded upload, named
/// by the module's hex hash; its last-modified time is the time of the upload.
pub(crate) const UPLOADS_DIR: &str = "uploads";
/// A streamed upload is buffered in memory up to this size; larger ones go to a staging
/// object through a multipart upload.
const SPOOL_LIMIT: usize = 8 << 20;
/// Part size of multipart uploads (S3 needs at least 5 MiB for all but the last part).
const PART_SIZE: usize = 8 << 20;
/// Parts uploaded concurrently by one streamed upload.
const PART_CONCURRENCY: usize = 2;
/// Complete payloads at least this large are not uploaded when a HEAD shows the module is
/// already stored.
const PRECHECK_THRESHOLD: usize = 1 << 20;
/// Payloads at least this large are hashed on a blocking thread, not on the async executor.
const BLOCKING_HASH_THRESHOLD: usize = 1 << 20;

/// What [`ModuleStore::put`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PutOutcome {
    /// The module's identity.
    pub hash: ModuleHash,
    /// Its size in bytes.
    pub size: u64,
    /// `true` if this call stored it, `false` if it was already there.
    pub created: bool,
}

/// When a module was last stored with [`ModuleStore::put_recorded`], as the backend saw it
/// (the record object's last-modified time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadRecord {
    /// The module.
    pub hash: ModuleHash,
    /// The time of its latest recorded upload, by the backend's clock.
    pub at: SystemTime,
}

/// Content-addressed module storage over an [`ObjectStore`]. Cheap to clone (one `Arc`);
/// clones share the backend and its connection pool.
///
/// See the [crate docs](crate) for the key layout and guarantees.
#[derive(Clone)]
pub struct ModuleStore {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    modules: Path,
    staging: Path,
    uploads: Path,
    description: String,
    max_module_size: u64,
    /// Whether listings come back in key order (S3 and memory do; a local directory does
    /// not), so a prefix listing may stop at the first key past the prefix.
    sorted_listing: bool,
}

impl fmt::Debug for ModuleStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModuleStore")
            .field("store", &self.inner.description)
            .field("max_module_size", &self.inner.max_module_size)
            .finish_non_exhaustive()
    }
}

impl ModuleStore {
    /// Opens the store at `url` with the default [`StoreConfig`]: `file:///abs/path` (the
    /// directory is created if missing), `s3://bucket/prefix` or `memory://`.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidUrl`] for an unsupported or malformed URL, an uncreatable
    /// directory or a bad S3 setting. Nothing is contacted over the network yet.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, StoreConfig::default())
    }

    /// Opens the store at `url` with `config`. See [`ModuleStore::open`].
    ///
    /// # Errors
    ///
    /// As [`ModuleStore::open`].
    pub fn open_with(url: &str, config: StoreConfig) -> Result<Self> {
        let backend = open_backend(url, &config)?;
        // S3 lists in key order, and so does the memory backend; a local directory does not.
        let sorted_listing = !url.starts_with("file:");
        Ok(Self::from_parts(
            backend.store,
            backend.prefix,
            backend.description,
            &config,
            sorted_listing,
        ))
    }

    /// Wraps an existing [`ObjectStore`], keeping modules under `prefix`
    /// (`""` for the root). `description` names the store in error messages.
    pub fn from_object_store(
        store: Arc<dyn ObjectStore>,
        prefix: &str,
        description: impl Into<String>,
        config: &StoreConfig,
    ) -> Result<Self> {
        let prefix = Path::parse(prefix.trim_matches('/')).map_err(|e| StoreError::InvalidUrl {
            url: prefix.to_owned(),
            reason: format!("invalid key prefix: {e}"),
        })?;
        Ok(Self::from_parts(
            store,
            prefix,
            description.into(),
            config,
            false,
        ))
    }

    fn from_parts(
        store: Arc<dyn ObjectStore>,
        prefix: Path,
        description: String,
        config: &StoreConfig,
        sorted_listing: bool,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                modules: prefix.clone().join(MODULES_DIR),
                staging: prefix.clone().join(STAGING_DIR),
                uploads: prefix.join(UPLOADS_DIR),
                description,
                max_module_size: config.max_module_size(),
                sorted_listing,
            }),
        }
    }

    /// The store's URL (plus the S3 endpoint, when one is set), as used in messages.
    pub fn description(&self) -> &str {
        &self.inner.description
    }

    /// The largest module accepted, in bytes.
    pub fn max_module_size(&self) -> u64 {
        self.inner.max_module_size
    }

    /// The backend key of `hash`: `<prefix>/blake3/<hex>`.
    pub fn key(&self, hash: &ModuleHash) -> String {
        self.path(hash).to_string()
    }

    /// The underlying object store, for callers that need it (e.g. to share its client).
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner.store
    }

    fn path(&self, hash: &ModuleHash) -> Path {
        self.inner.modules.clone().join(hash.to_hex())
    }

    fn upload_path(&self, hash: &ModuleHash) -> Path {
        self.inner.uploads.clone().join(hash.to_hex())
    }

    fn backend_err(&self, op: StoreOp, key: &Path, source: object_store::Error) -> StoreError {
        StoreError::Backend {
            op,
            key: key.to_string(),
            store: self.inner.description.clone(),
            source,
        }
    }

    fn check_size(&self, size: u64) -> Result<()> {
        let max = self.inner.max_module_size;
        if size > max {
            return Err(StoreError::TooLarge { size, max });
        }
        Ok(())
    }

    /// Stores `bytes` under their hash. Idempotent: storing bytes that are already present
    /// succeeds with `created: false` and writes nothing. Safe under concurrent writers of
    /// the same bytes: the object is created with a create-if-absent write, so no reader
    /// ever sees a partial object under its final key.
    ///
    /// An object that is already present is not re-read; if it was damaged on disk, `get`
    /// reports [`StoreError::Corrupt`] and `delete` followed by `put` repairs it.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] (checked before anything is written) or
    /// [`StoreError::Backend`].
    pub async fn put(&self, bytes: impl Into<Bytes>) -> Result<PutOutcome> {
        let bytes = bytes.into();
        let size = bytes.len() as u64;
        self.check_size(size)?;
        let hash = hash_bytes(bytes.clone()).await;
        let created = self.put_final(&hash, PutPayload::from(bytes)).await?;
        Ok(PutOutcome {
            hash,
            size,
            created,
        })
    }

    /// Like [`ModuleStore::put`], and records the upload first: an empty object at
    /// `<prefix>/uploads/<hex>` is (over)written *before* the module is stored, so whoever
    /// sees the module also finds a record at least as new as its upload. Garbage
    /// collectors in any process read the records with [`ModuleStore::upload_records`] to
    /// spare fresh uploads that nothing refers to yet.
    ///
    /// # Errors
    ///
    /// As [`ModuleStore::put`]; a failed record stores nothing.
    pub async fn put_recorded(&self, bytes: impl Into<Bytes>) -> Result<PutOutcome> {
        let bytes = bytes.into();
        let size = bytes.len() as u64;
        self.check_size(size)?;
        let hash = hash_bytes(bytes.clone()).await;
        let record = self.upload_path(&hash);
        self.inner
            .store
            .put_opts(&record, PutPayload::new(), PutMode::Overwrite.into())
            .await
            .map_err(|e| self.backend_err(StoreOp::Put, &record, e))?;
        let created = self.put_final(&hash, PutPayload::from(bytes)).await?;
        Ok(PutOutcome {
            hash,
            size,
            created,
        })
    }

    /// Every upload record written by [`ModuleStore::put_recorded`], sorted by hash. A
    /// record may outlive its module (it is deleted separately, with
    /// [`ModuleStore::delete_upload_record`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    pub async fn upload_records(&self) -> Result<Vec<UploadRecord>> {
        let dir = &self.inner.uploads;
        let mut records: Vec<UploadRecord> = self
            .inner
            .store
            .list(Some(dir))
            .map_err(|e| self.backend_err(StoreOp::List, dir, e))
            .try_filter_map(|meta| async move {
                Ok(parse_object_name(&meta.location).map(|hash| UploadRecord {
                    hash,
                    at: SystemTime::from(meta.last_modified),
                }))
            })
            .try_collect()
            .await?;
        records.sort_unstable_by_key(|r| r.hash);
        Ok(records)
    }

    /// Deletes the upload record of `hash` (never the module). Deleting a record that does
    /// not exist succeeds.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    pub async fn delete_upload_record(&self, hash: &ModuleHash) -> Result<()> {
        let key = self.upload_path(hash);
        match self.inner.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend_err(StoreOp::Delete, &key, e)),
        }
    }

    /// Like [`ModuleStore::put`], for modules arriving in chunks (an HTTP body, a file).
    /// Hashes while reading; the size limit is enforced as chunks arrive, so an oversized
    /// stream is rejected as soon as it crosses the limit.
    ///
    /// Up to 8 MiB is buffered in memory; beyond that the bytes go through a multipart upload
    /// to a staging key (`<prefix>/tmp/<random>`), which is then published under the final
    /// key with an atomic copy-if-absent and deleted. On every error the staging upload is
    /// aborted, so nothing is left behind. If the future is dropped mid-way, the cleanup is
    /// spawned on the current Tokio runtime; after a crash, staging objects may remain and
    /// can be deleted (they are never listed as modules).
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`], [`StoreError::Input`] when `stream` yields an error,
    /// [`StoreError::Backend`].
    pub async fn put_stream<S, E>(&self, stream: S) -> Result<PutOutcome>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut staged: Option<Staged> = None;
        let result = self.put_stream_inner(stream, &mut staged).await;
        if let Some(staged) = staged.take() {
            staged.abort().await;
        }
        result
    }

    async fn put_stream_inner<S, E>(
        &self,
        stream: S,
        staged: &mut Option<Staged>,
    ) -> Result<PutOutcome>
    where
        S: Stream<Item = std::result::Result<Bytes, E>> + Send,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let mut stream = std::pin::pin!(stream);
        let mut hasher = blake3::Hasher::new();
        let mut size: u64 = 0;
        let mut spool: Vec<Bytes> = Vec::new();
        let mut spooled: usize = 0;

        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| StoreError::Input { source: e.into() })?;
            if chunk.is_empty() {
                continue;
            }
            size += chunk.len() as u64;
            self.check_size(size)?;
            hasher = hash_chunk(hasher, chunk.clone()).await;
            match staged {
                Some(upload) => upload.write(self, chunk).await?,
                None => {
                    spooled += chunk.len();
                    spool.push(chunk);
                    if spooled >= SPOOL_LIMIT {
                        let mut upload = Staged::start(self).await?;
                        for chunk in spool.drain(..) {
                            upload.write(self, chunk).await?;
                        }
                        *staged = Some(upload);
                    }
                }
            }
        }

        let hash = ModuleHash::from(hasher.finalize());
        let created = match staged.take() {
            None => self.put_final(&hash, spool.into_iter().collect()).await?,
            Some(upload) => upload.publish(self, &self.path(&hash)).await?,
        };
        Ok(PutOutcome {
            hash,
            size,
            created,
        })
    }

    /// Create-if-absent write of a complete payload to the final key. Returns whether this
    /// call created it.
    async fn put_final(&self, hash: &ModuleHash, payload: PutPayload) -> Result<bool> {
        let key = self.path(hash);
        // Skip uploading a large module that is already there. Only an optimisation: the
        // conditional put below is what decides.
        if payload.content_length() >= PRECHECK_THRESHOLD && self.exists(&key).await? {
            return Ok(false);
        }
        match self
            .inner
            .store
            .put_opts(&key, payload, PutMode::Create.into())
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => {
                // A server may reject a conditional put on an existing key before reading the
                // body and close the connection, which the client sees as a broken pipe. If the
                // module is there now, a concurrent writer stored it: that is success.
                match self.exists(&key).await {
                    Ok(true) => Ok(false),
                    _ => Err(self.backend_err(StoreOp::Put, &key, e)),
                }
            }
        }
    }

    async fn exists(&self, key: &Path) -> Result<bool> {
        match self.inner.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.backend_err(StoreOp::Head, key, e)),
        }
    }

    /// Reads module `hash` and checks that the bytes hash to it.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`], [`StoreError::Corrupt`] (the bytes are not returned),
    /// [`StoreError::Backend`].
    pub async fn get(&self, hash: &ModuleHash) -> Result<Bytes> {
        let key = self.path(hash);
        let result = self.open_object(hash, &key).await?;
        let (bytes, actual) = match result.payload {
            // Read and hash on one blocking thread, into an uninitialised buffer
            // (`GetResult::bytes` zero-fills the whole buffer first: one more pass over it).
            GetResultPayload::File(file, path) => read_and_hash_file(file, result.meta.size)
                .await
                .map_err(|e| self.backend_err(StoreOp::Get, &key, local_read_error(&path, e)))?,
            GetResultPayload::Stream(stream) => {
                let bytes = object_store::collect_bytes(stream, Some(result.meta.size))
                    .await
                    .map_err(|e| self.backend_err(StoreOp::Get, &key, e))?;
                let actual = hash_bytes(bytes.clone()).await;
                (bytes, actual)
            }
        };
        if actual != *hash {
            return Err(StoreError::Corrupt {
                hash: *hash,
                key: key.to_string(),
            });
        }
        Ok(bytes)
    }

    /// Reads module `hash` as a stream of chunks, hashing as it goes. If the bytes do not
    /// hash to `hash`, the stream's last item is [`StoreError::Corrupt`].
    ///
    /// **Chunks are unverified until the stream has ended without error**: a consumer must
    /// not act on (execute, cache, forward as trusted) any chunk before then, and must
    /// discard everything it received if any item is an error.
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] or [`StoreError::Backend`] when opening; later failures
    /// arrive as stream items.
    pub async fn get_stream(&self, hash: &ModuleHash) -> Result<ModuleStream> {
        let key = self.path(hash);
        let result = self.open_object(hash, &key).await?;
        let chunks = match result.payload {
            GetResultPayload::File(file, path) => read_file_chunks(file, path).boxed(),
            GetResultPayload::Stream(stream) => stream,
        };
        Ok(ModuleStream::new(
            chunks,
            *hash,
            key,
            self.inner.description.clone(),
        ))
    }

    async fn open_object(&self, hash: &ModuleHash, key: &Path) -> Result<object_store::GetResult> {
        match self.inner.store.get(key).await {
            Ok(result) => Ok(result),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound { hash: *hash }),
            Err(e) => Err(self.backend_err(StoreOp::Get, key, e)),
        }
    }

    /// The stored size of module `hash` in bytes (not verified).
    ///
    /// # Errors
    ///
    /// [`StoreError::NotFound`] or [`StoreError::Backend`].
    pub async fn size(&self, hash: &ModuleHash) -> Result<u64> {
        let key = self.path(hash);
        match self.inner.store.head(&key).await {
            Ok(meta) => Ok(meta.size),
            Err(object_store::Error::NotFound { .. }) => Err(StoreError::NotFound { hash: *hash }),
            Err(e) => Err(self.backend_err(StoreOp::Head, &key, e)),
        }
    }

    /// Whether module `hash` is stored (not verified).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    pub async fn contains(&self, hash: &ModuleHash) -> Result<bool> {
        match self.size(hash).await {
            Ok(_) => Ok(true),
            Err(StoreError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every stored module, sorted. Objects under the modules directory whose names are not
    /// 64 lowercase hex digits are ignored.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    pub async fn list(&self) -> Result<Vec<ModuleHash>> {
        let dir = &self.inner.modules;
        let mut hashes: Vec<ModuleHash> = self
            .inner
            .store
            .list(Some(dir))
            .map_err(|e| self.backend_err(StoreOp::List, dir, e))
            .try_filter_map(|meta| async move { Ok(parse_object_name(&meta.location)) })
            .try_collect()
            .await?;
        hashes.sort_unstable();
        Ok(hashes)
    }

    /// Deletes module `hash`. Deleting a module that is not stored succeeds (as on S3).
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    pub async fn delete(&self, hash: &ModuleHash) -> Result<()> {
        let key = self.path(hash);
        match self.inner.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.backend_err(StoreOp::Delete, &key, e)),
        }
    }

    /// Resolves what a user typed (a full hash or a prefix of at least 8 hex digits, with or
    /// without `blake3:`) to a stored module.
    ///
    /// # Errors
    ///
    /// [`StoreError::InvalidHash`] for malformed input, [`StoreError::NotFound`] /
    /// [`StoreError::PrefixNotFound`] when nothing matches, [`StoreError::Ambiguous`] with
    /// every candidate when more than one does, [`StoreError::Backend`].
    pub async fn resolve(&self, input: &str) -> Result<ModuleHash> {
        let prefix: HashPrefix = input.parse()?;
        if let Some(full) = prefix.as_full() {
            return match self.contains(&full).await? {
                true => Ok(full),
                false => Err(StoreError::NotFound { hash: full }),
            };
        }
        let candidates = self.list_prefix(&prefix).await?;
        resolve_in(&prefix, candidates)
    }

    /// The stored modules whose hash starts with `prefix`, sorted. The listing starts at the
    /// prefix and, on backends that list in key order (S3, memory), stops at the first key
    /// past it, so it costs what the matches cost, not what the store holds.
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`].
    pub async fn list_prefix(&self, prefix: &HashPrefix) -> Result<Vec<ModuleHash>> {
        let dir = &self.inner.modules;
        // Every key starting with the prefix sorts after the prefix itself.
        let offset = dir.clone().join(prefix.hex());
        let mut listing = self.inner.store.list_with_offset(Some(dir), &offset);
        let mut found = Vec::new();
        while let Some(meta) = listing
            .try_next()
            .await
            .map_err(|e| self.backend_err(StoreOp::List, dir, e))?
        {
            let Some(hash) = parse_object_name(&meta.location) else {
                continue;
            };
            if prefix.matches(&hash) {
                found.push(hash);
            } else if self.inner.sorted_listing && hash.to_hex().as_str() > prefix.hex() {
                break;
            }
        }
        found.sort_unstable();
        Ok(found)
    }
}

fn parse_object_name(location: &Path) -> Option<ModuleHash> {
    let name = location.filename()?;
    if name.len() != 64 || !name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    name.parse().ok()
}

async fn hash_bytes(bytes: Bytes) -> ModuleHash {
    if bytes.len() >= BLOCKING_HASH_THRESHOLD
        && let Ok(handle) = tokio::runtime::Handle::try_current()
    {
        let shared = bytes.clone();
        if let Ok(hash) = handle.spawn_blocking(move || ModuleHash::of(&shared)).await {
            return hash;
        }
    }
    ModuleHash::of(&bytes)
}

async fn read_and_hash_file(
    mut file: std::fs::File,
    size_hint: u64,
) -> std::io::Result<(Bytes, ModuleHash)> {
    let mut read = move || {
        use std::io::Read;
        let mut buf = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
        file.read_to_end(&mut buf)?;
        let hash = ModuleHash::of(&buf);
        Ok((Bytes::from(buf), hash))
    };
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle
            .spawn_blocking(read)
            .await
            .map_err(std::io::Error::other)?,
        Err(_) => read(),
    }
}

fn local_read_error(path: &std::path::Path, source: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("reading {}: {source}", path.display()).into(),
    }
}

async fn hash_chunk(mut hasher: blake3::Hasher, chunk: Bytes) -> blake3::Hasher {
    if chunk.len() >= BLOCKING_HASH_THRESHOLD
        && let Ok(handle) = tokio::runtime::Handle::try_current()
    {
        let (mut moved, shared) = (hasher.clone(), chunk.clone());
        let task = handle.spawn_blocking(move || {
            moved.update(&shared);
            moved
        });
        if let Ok(updated) = task.await {
            return updated;
        }
    }
    hasher.update(&chunk);
    hasher
}

/// A streamed upload in progress under a staging key. Dropping it without `publish` or
/// `abort` spawns the cleanup on the current runtime.
struct Staged {
    store: Arc<dyn ObjectStore>,
    key: Path,
    upload: Option<WriteMultipart>,
    /// The staging object exists (the upload completed) and must be deleted.
    completed: bool,
}

impl Staged {
    async fn start(owner: &ModuleStore) -> Result<Self> {
        let key = owner
            .inner
            .staging
            .clone()
            .join(format!("{:032x}", rand::random::<u128>()));
        let upload = owner
            .inner
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| owner.backend_err(StoreOp::Upload, &key, e))?;
        Ok(Self {
            store: owner.inner.store.clone(),
            upload: Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)),
            key,
            completed: false,
        })
    }

    async fn write(&mut self, owner: &ModuleStore, chunk: Bytes) -> Result<()> {
        let Some(upload) = self.upload.as_mut() else {
            return Ok(());
        };
        upload
            .wait_for_capacity(PART_CONCURRENCY)
            .await
            .map_err(|e| owner.backend_err(StoreOp::Upload, &self.key, e))?;
        upload.put(chunk);
        Ok(())
    }

    /// Completes the upload and copies it to `target` unless that exists. Returns whether
    /// this call created `target`.
    async fn publish(mut self, owner: &ModuleStore, target: &Path) -> Result<bool> {
        if let Some(upload) = self.upload.take() {
            // `finish` aborts the upload itself when it fails.
            upload
                .finish()
                .await
                .map_err(|e| owner.backend_err(StoreOp::Upload, &self.key, e))?;
            self.completed = true;
        }
        let created = match self.store.copy_if_not_exists(&self.key, target).await {
            Ok(()) => true,
            Err(object_store::Error::AlreadyExists { .. }) => false,
            Err(e) => {
                let err = owner.backend_err(StoreOp::Publish, target, e);
                self.abort().await;
                return Err(err);
            }
        };
        self.abort().await;
        Ok(created)
    }

    /// Aborts the upload or deletes the staging object. Failures are logged: the module is
    /// unaffected, only a staging leftover remains.
    async fn abort(mut self) {
        cleanup(
            self.store.clone(),
            self.key.clone(),
            self.upload.take(),
            std::mem::take(&mut self.completed),
        )
        .await;
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let upload = self.upload.take();
        let completed = std::mem::take(&mut self.completed);
        if upload.is_none() && !completed {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(cleanup(
                self.store.clone(),
                self.key.clone(),
                upload,
                completed,
            ));
        } else {
            tracing::warn!(key = %self.key, "staged upload abandoned without a runtime to clean it up");
        }
    }
}

async fn cleanup(
    store: Arc<dyn ObjectStore>,
    key: Path,
    upload: Option<WriteMultipart>,
    completed: bool,
) {
    if let Some(upload) = upload
        && let Err(e) = upload.abort().await
    {
        tracing::warn!(%key, error = %e, "aborting a staged module upload failed");
    }
    if completed
        && let Err(e) = store.delete(&key).await
        && !matches!(e, object_store::Error::NotFound { .. })
    {
        tracing::warn!(%key, error = %e, "deleting a staged module upload failed");
    }
}
