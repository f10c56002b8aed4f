//! One way to open each backend, plus the means to damage its objects behind its back.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use bytes::Bytes;
use object_store::{ObjectStoreExt, PutPayload, path::Path as ObjectPath};
use xxfunc_store::{ModuleHash, ModuleStore, StoreConfig, test_utils::S3sFs};

/// Which backend a conformance case runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Memory,
    File,
    S3,
}

/// A store under test and whatever keeps it alive.
pub struct Backend {
    pub kind: Kind,
    pub store: ModuleStore,
    url: String,
    config: StoreConfig,
    /// Directory of the file backend.
    dir: Option<tempfile::TempDir>,
    pub server: Option<S3sFs>,
}

impl Backend {
    /// Opens a fresh, empty store of `kind`; `None` when s3s-fs is unavailable (and CI unset).
    pub fn open(kind: Kind, config: StoreConfig) -> Option<Self> {
        match kind {
            Kind::Memory => Some(Self {
                kind,
                store: ModuleStore::open_with("memory://", config.clone()).expect("memory store"),
                url: "memory://".into(),
                config,
                dir: None,
                server: None,
            }),
            Kind::File => {
                let dir = tempfile::tempdir().expect("temp dir");
                // A directory that does not exist yet: opening creates it.
                let root = dir.path().join("modules");
                let url = url::Url::from_directory_path(&root)
                    .expect("absolute path")
                    .to_string();
                let store = ModuleStore::open_with(&url, config.clone()).expect("file store");
                assert!(root.is_dir(), "opening a file store creates its directory");
                Some(Self {
                    kind,
                    store,
                    url,
                    config,
                    dir: Some(dir),
                    server: None,
                })
            }
            Kind::S3 => {
                let server = S3sFs::start()?;
                let url = server.url("modules");
                let config = server
                    .options()
                    .into_iter()
                    .fold(config.with_env(false), |c, (k, v)| c.with_option(k, v));
                let store = ModuleStore::open_with(&url, config.clone()).expect("s3 store");
                Some(Self {
                    kind,
                    store,
                    url,
                    config,
                    dir: None,
                    server: Some(server),
                })
            }
        }
    }

    /// Another client of the same storage, like a second process would have.
    pub fn second_client(&self) -> ModuleStore {
        match self.kind {
            Kind::Memory => ModuleStore::from_object_store(
                Arc::clone(self.store.object_store()),
                "",
                "memory:// (second client)",
                &self.config,
            )
            .expect("second memory client"),
            Kind::File | Kind::S3 => {
                ModuleStore::open_with(&self.url, self.config.clone()).expect("second client")
            }
        }
    }

    /// The file holding `hash` on disk, for the backends that have one.
    pub fn object_file(&self, hash: &ModuleHash) -> Option<PathBuf> {
        let key = self.store.key(hash);
        match self.kind {
            Kind::Memory => None,
            Kind::File => Some(self.root()?.join(key)),
            Kind::S3 => Some(self.server.as_ref()?.object_file(&key)),
        }
    }

    /// The directory holding every object of this store on disk, if any.
    pub fn root(&self) -> Option<PathBuf> {
        match self.kind {
            Kind::Memory => None,
            Kind::File => Some(self.dir.as_ref()?.path().join("modules")),
            Kind::S3 => {
                let server = self.server.as_ref()?;
                Some(server.data_dir().join(server.bucket()))
            }
        }
    }

    /// Replaces the stored object for `hash` with `bytes`, bypassing the module store:
    /// on disk for file and S3 (like bit rot would), through the raw object store for memory.
    pub async fn tamper(&self, hash: &ModuleHash, edit: impl FnOnce(&mut Vec<u8>)) {
        match self.object_file(hash) {
            Some(path) => {
                let mut bytes = std::fs::read(&path).expect("stored object file");
                edit(&mut bytes);
                std::fs::write(&path, bytes).expect("rewrite object file");
            }
            None => {
                let key = ObjectPath::parse(self.store.key(hash)).expect("key");
                let raw = self.store.object_store();
                let mut bytes = raw
                    .get(&key)
                    .await
                    .expect("raw get")
                    .bytes()
                    .await
                    .expect("raw bytes")
                    .to_vec();
                edit(&mut bytes);
                raw.put(&key, PutPayload::from(Bytes::from(bytes)))
                    .await
                    .expect("raw overwrite");
            }
        }
    }

    /// Raw keys under the store's staging directory (`tmp/`).
    pub async fn staging_keys(&self) -> Vec<String> {
        use futures::TryStreamExt;
        let probe = ModuleHash::of(b"");
        let key = self.store.key(&probe);
        let base = key
            .strip_suffix(&format!("blake3/{}", probe.to_hex()))
            .expect("key layout <prefix>/blake3/<hex>");
        let dir = ObjectPath::parse(format!("{base}tmp")).expect("staging path");
        self.store
            .object_store()
            .list(Some(&dir))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .expect("list staging")
    }
}

/// Every regular file under `dir` (recursively), relative to it.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap_or(&path).to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// `len` pseudo-random bytes from `seed` (distinct seeds give distinct modules).
pub fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    use rand::{RngCore, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut buf = vec![0u8; len];
    rng.fill_bytes(&mut buf);
    buf
}
