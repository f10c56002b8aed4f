//! Compiled modules by hash: in memory (`InstancePre`), and on disk as
//! precompiled artifacts under `<dir>/<engine fingerprint>/<hex>.cwasm`.
//!
//! An artifact file is a 76-byte header followed by wasmtime's serialized
//! module:
//!
//! | bytes | field |
//! |---|---|
//! | 0..4 | magic `XXFA` |
//! | 4..8 | layout version, u32 LE (1) |
//! | 8..16 | payload length, u64 LE |
//! | 16..48 | blake3 of the payload |
//! | 48..76 | first 28 bytes of the module hash it was compiled from |
//!
//! A file whose header, length or checksum does not match, or that wasmtime
//! refuses, is deleted and the module recompiled; it is never loaded. Files are
//! written to a temporary name and renamed, so a crash leaves either no file or
//! a whole one.
//!
//! The directory is kept under a byte budget ([`ModuleCache::with_artifact_budget`],
//! [`DEFAULT_ARTIFACT_BUDGET`]): after each artifact written, the least recently
//! used artifacts of modules not in memory are deleted until the rest fit (a load
//! from disk marks its file used). Redeploying in a loop (`dev --watch`) therefore
//! keeps the newest modules, not every one ever compiled. A module in memory is
//! dropped from it when no function holds it any more (stop, redeploy).

use std::{
    collections::HashMap,
    fs,
    io::Write,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use parking_lot::Mutex;
use wasmtime::{ExternType, InstancePre, Module};
use xxfunc_store::ModuleHash;

use crate::{
    engine::WasmEngine,
    error::{ModuleLoadError, Result, RunnerError},
    sandbox::GuestState,
};

const MAGIC: &[u8; 4] = b"XXFA";
const LAYOUT: u32 = 1;
const HEADER_LEN: usize = 76;

/// Bytes of precompiled artifacts a cache keeps on disk by default (1 GiB).
pub const DEFAULT_ARTIFACT_BUDGET: u64 = 1 << 30;

/// A module ready to instantiate: one per hash, shared by every invocation.
pub struct LoadedModule {
    hash: ModuleHash,
    pre: InstancePre<GuestState>,
}

impl std::fmt::Debug for LoadedModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedModule")
            .field("hash", &self.hash)
            .finish_non_exhaustive()
    }
}

impl LoadedModule {
    /// The module's identity.
    pub fn hash(&self) -> &ModuleHash {
        &self.hash
    }

    pub(crate) fn pre(&self) -> &InstancePre<GuestState> {
        &self.pre
    }
}

/// Where [`ModuleCache::load`] found a module.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadedFrom {
    /// Already in memory.
    Memory,
    /// Deserialized from a precompiled artifact on disk.
    Disk,
    /// Compiled from the module's bytes (and written to disk).
    Compiled,
}

/// Counters of a [`ModuleCache`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads answered from memory.
    pub memory_hits: u64,
    /// Loads answered from a disk artifact.
    pub disk_hits: u64,
    /// Loads that compiled.
    pub compiles: u64,
    /// Artifacts found corrupt, truncated or incompatible, deleted and rebuilt.
    pub discarded: u64,
    /// Artifacts deleted to keep the directory under its byte budget.
    pub evicted: u64,
}

#[derive(Default)]
struct Counters {
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    compiles: AtomicU64,
    discarded: AtomicU64,
    evicted: AtomicU64,
}

/// The module cache of one engine.
pub struct ModuleCache {
    engine: Arc<WasmEngine>,
    /// `<artifacts root>/<fingerprint>`, or `None` for memory only.
    dir: Option<PathBuf>,
    loaded: Mutex<HashMap<ModuleHash, Arc<LoadedModule>>>,
    counters: Counters,
    /// Bytes of artifacts kept on disk.
    budget: u64,
}

impl std::fmt::Debug for ModuleCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModuleCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ModuleCache {
    /// A cache for `engine`, persisting artifacts under
    /// `artifacts_root/<engine fingerprint>/` when a root is given.
    pub fn new(engine: Arc<WasmEngine>, artifacts_root: Option<&Path>) -> Self {
        let dir = artifacts_root.map(|root| root.join(engine.fingerprint()));
        Self {
            engine,
            dir,
            loaded: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            budget: DEFAULT_ARTIFACT_BUDGET,
        }
    }

    /// Keeps at most `bytes` of artifacts on disk (least recently used first out;
    /// the artifact just written always stays).
    #[must_use]
    pub fn with_artifact_budget(mut self, bytes: u64) -> Self {
        self.budget = bytes;
        self
    }

    /// The engine the modules are compiled for.
    pub fn engine(&self) -> &Arc<WasmEngine> {
        &self.engine
    }

    /// Path of the artifact of `hash` (whether or not it exists).
    pub fn artifact_path(&self, hash: &ModuleHash) -> Option<PathBuf> {
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}.cwasm", hash.to_hex())))
    }

    /// The module `hash`, from memory, from disk, or compiled from the bytes
    /// `fetch` returns (verified against `hash` first).
    ///
    /// # Errors
    /// [`RunnerError::ModuleHashMismatch`] when the fetched bytes are not the
    /// module, [`RunnerError::ModuleLoad`] when it does not compile, does not
    /// link against WASI preview 1 or has no `_start`, whatever `fetch` fails
    /// with, and [`RunnerError::Artifact`] when the cache directory cannot be
    /// written.
    pub fn load(
        &self,
        hash: &ModuleHash,
        fetch: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<(Arc<LoadedModule>, LoadedFrom)> {
        if let Some(module) = self.loaded.lock().get(hash) {
            self.counters.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok((module.clone(), LoadedFrom::Memory));
        }
        let (module, from) = match self.read_artifact(hash) {
            Some(module) => (module, LoadedFrom::Disk),
            None => (self.compile(hash, fetch)?, LoadedFrom::Compiled),
        };
        let loaded = Arc::new(self.link(hash, &module)?);
        match from {
            LoadedFrom::Disk => self.counters.disk_hits.fetch_add(1, Ordering::Relaxed),
            _ => self.counters.compiles.fetch_add(1, Ordering::Relaxed),
        };
        self.loaded.lock().insert(*hash, loaded.clone());
        Ok((loaded, from))
    }

    /// Drops the in-memory entry of `hash` (its artifact stays on disk).
    pub fn forget(&self, hash: &ModuleHash) {
        self.loaded.lock().remove(hash);
    }

    /// Number of modules in memory.
    pub fn len(&self) -> usize {
        self.loaded.lock().len()
    }

    /// Whether no module is in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counters since the cache was created.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.counters.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.counters.disk_hits.load(Ordering::Relaxed),
            compiles: self.counters.compiles.load(Ordering::Relaxed),
            discarded: self.counters.discarded.load(Ordering::Relaxed),
            evicted: self.counters.evicted.load(Ordering::Relaxed),
        }
    }

    /// Deletes the least recently used artifacts of modules not in memory (never
    /// `keep`'s) until the directory holds at most the budget.
    fn trim_artifacts(&self, keep: &ModuleHash) {
        let Some(dir) = &self.dir else { return };
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = entries
            .filter_map(|e| {
                let e = e.ok()?;
                let path = e.path();
                (path.extension()? == "cwasm").then_some(())?;
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), path))
            })
            .collect();
        let mut total: u64 = files.iter().map(|(_, len, _)| len).sum();
        if total <= self.budget {
            return;
        }
        files.sort();
        let in_memory: Vec<String> = self
            .loaded
            .lock()
            .keys()
            .chain([keep])
            .map(|h| format!("{}.cwasm", h.to_hex()))
            .collect();
        for (_, len, path) in files {
            if total <= self.budget {
                break;
            }
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if in_memory.iter().any(|n| n == name) {
                continue;
            }
            match fs::remove_file(&path) {
                Ok(()) => {
                    total -= len;
                    self.counters.evicted.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(path = %path.display(), "precompiled artifact evicted (cache budget)");
                }
                Err(e) => {
                    tracing::debug!(path = %path.display(), "evicting a precompiled artifact: {e}");
                }
            }
        }
    }

    fn link(&self, hash: &ModuleHash, module: &Module) -> Result<LoadedModule> {
        let load_err = |source| RunnerError::ModuleLoad {
            hash: *hash,
            source,
        };
        match module.get_export("_start") {
            Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {}
            _ => {
                return Err(load_err(ModuleLoadError::NoStart));
            }
        }
        let pre = self
            .engine
            .linker()
            .instantiate_pre(module)
            .map_err(|e| load_err(ModuleLoadError::Link(e)))?;
        Ok(LoadedModule { hash: *hash, pre })
    }

    fn compile(
        &self,
        hash: &ModuleHash,
        fetch: impl FnOnce() -> Result<Vec<u8>>,
    ) -> Result<Module> {
        let bytes = fetch()?;
        let actual = ModuleHash::of(&bytes);
        if actual != *hash {
            return Err(RunnerError::ModuleHashMismatch {
                hash: *hash,
                actual,
            });
        }
        let module = Module::from_binary(self.engine.engine(), &bytes).map_err(|e| {
            RunnerError::ModuleLoad {
                hash: *hash,
                source: ModuleLoadError::Compile(e),
            }
        })?;
        if let Some(path) = self.artifact_path(hash) {
            let payload = module.serialize().map_err(|e| RunnerError::ModuleLoad {
                hash: *hash,
                source: ModuleLoadError::Serialize(e),
            })?;
            write_artifact(&path, hash, &payload)?;
            self.trim_artifacts(hash);
        }
        Ok(module)
    }

    /// The module from its artifact, or `None` (after deleting the file) when
    /// there is none or it fails any check.
    fn read_artifact(&self, hash: &ModuleHash) -> Option<Module> {
        let path = self.artifact_path(hash)?;
        let file = fs::read(&path).ok()?;
        let discard = |why: &str| {
            tracing::warn!(path = %path.display(), "discarding precompiled artifact: {why}");
            self.counters.discarded.fetch_add(1, Ordering::Relaxed);
            let _ = fs::remove_file(&path);
            None
        };
        let Some(payload) = check_artifact(&file, hash) else {
            return discard("bad header, length or checksum");
        };
        // SAFETY: `Module::deserialize` is sound only for bytes produced by
        // `Module::serialize` of a compatible engine, since they are mapped as
        // executable code. These bytes come from this runner's own cache
        // directory, keyed by the engine fingerprint (wasmtime's compatibility
        // hash plus the runner's engine settings), and pass a blake3 checksum
        // written by `write_artifact` after `serialize`; wasmtime additionally
        // checks its own version and settings header and rejects a mismatch.
        match unsafe { Module::deserialize(self.engine.engine(), payload) } {
            Ok(module) => {
                // Used now: the budget evicts the least recently used first.
                if let Ok(f) = fs::File::options().write(true).open(&path) {
                    let _ = f.set_modified(std::time::SystemTime::now());
                }
                Some(module)
            }
            Err(e) => discard(&format!("wasmtime refused it: {e:#}")),
        }
    }
}

fn check_artifact<'a>(file: &'a [u8], hash: &ModuleHash) -> Option<&'a [u8]> {
    let header = file.get(..HEADER_LEN)?;
    let payload = &file[HEADER_LEN..];
    let len = u64::from_le_bytes(header[8..16].try_into().ok()?);
    let ok = &header[..4] == MAGIC
        && u32::from_le_bytes(header[4..8].try_into().ok()?) == LAYOUT
        && len == payload.len() as u64
        && header[16..48] == *blake3::hash(payload).as_bytes()
        && header[48..76] == hash.as_bytes()[..28];
    ok.then_some(payload)
}

fn write_artifact(path: &Path, hash: &ModuleHash, payload: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .expect("artifact paths have a parent directory");
    let io = |source| RunnerError::Artifact {
        path: dir.to_path_buf(),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&LAYOUT.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    header.extend_from_slice(blake3::hash(payload).as_bytes());
    header.extend_from_slice(&hash.as_bytes()[..28]);
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        hash.to_hex(),
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(&header)?;
        file.write_all(payload)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&tmp);
        return Err(RunnerError::Artifact {
            path: path.to_path_buf(),
            source,
        });
    }
    Ok(())
}

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks_reject_damage() {
        let hash = ModuleHash::of(b"m");
        let payload = b"serialized module bytes".to_vec();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.cwasm");
        write_artifact(&path, &hash, &payload).expect("write");
        let file = fs::read(&path).expect("read");
        assert_eq!(check_artifact(&file, &hash), Some(&payload[..]));
        assert_eq!(check_artifact(&file[..file.len() - 1], &hash), None);
        assert_eq!(check_artifact(&file[..10], &hash), None);
        assert_eq!(check_artifact(&file, &ModuleHash::of(b"other")), None);
        let mut flipped = file.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(check_artifact(&flipped, &hash), None);
    }
}
