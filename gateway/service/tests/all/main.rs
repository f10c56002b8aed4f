//! Service tests: real RocksDB registries in temporary directories, real module stores
//! (memory and local files), real modules checked by the real validator.

mod functions;
mod gc;
mod modules;

use std::{path::Path, sync::OnceLock};

use xxfunc_primitives::ModuleHash;
use xxfunc_registry::Registry;
use xxfunc_service::{Service, ServiceOptions};
use xxfunc_store::ModuleStore;

/// A service on a fresh registry and an in-memory store, with the default options.
pub(crate) fn service() -> (tempfile::TempDir, Service) {
    let dir = tempfile::tempdir().expect("temp dir");
    let service = open(dir.path(), "memory://", ServiceOptions::default());
    (dir, service)
}

/// A service on the registry under `dir` and the store at `store_url`.
pub(crate) fn open(dir: &Path, store_url: &str, options: ServiceOptions) -> Service {
    let registry = Registry::open(dir.join("registry")).expect("open registry");
    let store = ModuleStore::open(store_url).expect("open store");
    Service::new(registry, store, options)
}

/// `file://` URL of `dir/modules`.
pub(crate) fn file_store(dir: &Path) -> String {
    format!("file://{}", dir.join("modules").display())
}

/// A valid WASI command module, distinct for each `seed`.
pub(crate) fn module(seed: u64) -> Vec<u8> {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    let mut bytes = BASE
        .get_or_init(|| {
            wat::parse_str(
                r#"(module
                    (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                    (memory (export "memory") 1)
                    (func (export "_start")))"#,
            )
            .expect("test module parses")
        })
        .clone();
    // A custom section `x` holding the seed keeps the module valid.
    bytes.extend_from_slice(&[0x00, 10, 0x01, b'x']);
    bytes.extend_from_slice(&seed.to_le_bytes());
    bytes
}

/// Two valid modules whose hashes share their first 8 hex digits (a birthday search
/// over the seed, about 2^16 hashes).
pub(crate) fn colliding_modules() -> (Vec<u8>, Vec<u8>) {
    let mut seen = std::collections::HashMap::new();
    for seed in 0u64.. {
        let bytes = module(seed);
        let short = ModuleHash::of(&bytes).short(8);
        if let Some(other) = seen.insert(short, seed) {
            return (module(other), bytes);
        }
    }
    unreachable!("the search ends")
}
