//! Registry tests against real RocksDB in temporary directories.

mod feed;
mod functions;
mod outcomes;
mod reports;
mod selectors;
mod sinks;

use xxfunc_api::{FunctionId, FunctionName, ModuleHash};
use xxfunc_registry::Registry;

pub(crate) fn open() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = Registry::open(dir.path().join("registry")).expect("open registry");
    (dir, registry)
}

pub(crate) fn name(s: &str) -> FunctionName {
    s.parse().expect("test names are valid")
}

pub(crate) fn named(s: &str) -> FunctionId {
    FunctionId::Name(name(s))
}

pub(crate) fn hash(seed: &str) -> ModuleHash {
    ModuleHash::of(seed.as_bytes())
}
