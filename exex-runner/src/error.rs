//! The runner's error type. Each variant names the object that failed.

use std::path::PathBuf;

use xxfunc_api::FunctionId;
use xxfunc_store::ModuleHash;

/// Result alias of the runner.
pub type Result<T, E = RunnerError> = std::result::Result<T, E>;

/// Everything that can go wrong in the runner outside a guest invocation.
///
/// A guest that traps, loops or floods its output is not an error: it is a
/// failed [`InvocationRecord`](xxfunc_api::InvocationRecord) with a reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The wasmtime engine could not be configured.
    #[error("configuring the wasmtime engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The module store could not produce a module.
    #[error("fetching module {hash} from the module store: {message}")]
    ModuleFetch {
        /// The module.
        hash: ModuleHash,
        /// What the store said.
        message: String,
    },
    /// Bytes handed over for a module do not hash to its identity.
    #[error("module {hash}: the fetched bytes hash to {actual}, refusing to compile them")]
    ModuleHashMismatch {
        /// The module asked for.
        hash: ModuleHash,
        /// What the bytes hash to.
        actual: ModuleHash,
    },
    /// The module does not compile or does not link against the runner's WASI.
    #[error("loading module {hash}: {message}")]
    ModuleLoad {
        /// The module.
        hash: ModuleHash,
        /// Why (compile error, unknown import, no `_start`).
        message: String,
    },
    /// Reading or writing the precompiled-artifact cache failed.
    #[error("artifact cache {path}: {source}")]
    Artifact {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The runner's RocksDB failed.
    #[error("runner database {path}: {source}")]
    Db {
        /// The database directory.
        path: PathBuf,
        /// The RocksDB error.
        source: rocksdb::Error,
    },
    /// A value in the runner's database does not decode.
    #[error("runner database: corrupt record {key}: {reason}")]
    CorruptRecord {
        /// The key.
        key: String,
        /// Why it does not decode.
        reason: String,
    },
    /// A block could not be framed as an event envelope.
    #[error("encoding the envelope of block {number}: {source}")]
    Envelope {
        /// Block number.
        number: u64,
        /// The codec error.
        source: xxfunc_abi::AbiError,
    },
    /// A recorded fixture could not be read or decoded.
    #[error("fixture {path}: {message}")]
    Fixture {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The JSON-RPC node failed or answered something unusable.
    #[error("JSON-RPC {url}: {message}")]
    Rpc {
        /// The node URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A chain source produced an event that does not fit the chain so far.
    #[error("chain source: {0}")]
    Source(String),
    /// The registry could not be read or reported to.
    #[error("registry: {0}")]
    Registry(String),
    /// A function the caller named is not known to the runner.
    #[error("function {0} is not known to this runner")]
    UnknownFunction(FunctionId),
    /// The runner was asked to stop.
    #[error("the runner is shutting down")]
    Stopped,
}
