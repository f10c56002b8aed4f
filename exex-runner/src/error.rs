//! The runner's error type. Each variant names the object that failed and
//! carries the error that caused it as a typed `#[source]`.
//!
//! The `Display` text of a variant includes its source's text, so a caller
//! that prints only the top error (a function's `LoadFailed` reason, a log
//! line) still says why.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use xxfunc_api::FunctionId;
use xxfunc_store::ModuleHash;

/// Result alias of the runner.
pub type Result<T, E = RunnerError> = std::result::Result<T, E>;

/// An error from an implementation of one of the runner's traits outside this
/// crate (a chain source, a block source, a node provider), kept as it is.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in the runner outside a guest invocation.
///
/// A guest that traps, loops or floods its output is not an error: it is a
/// failed [`InvocationRecord`](xxfunc_api::InvocationRecord) with a reason.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunnerError {
    /// The wasmtime engine could not be configured.
    #[error("configuring the wasmtime engine: {0:#}")]
    Engine(#[source] wasmtime::Error),
    /// The module store could not produce a module.
    #[error("fetching module {hash} from the module store: {source}")]
    ModuleFetch {
        /// The module.
        hash: ModuleHash,
        /// What the store said.
        #[source]
        source: Box<xxfunc_store::StoreError>,
    },
    /// The gateway could not produce a module.
    #[cfg(feature = "gateway")]
    #[error("fetching module {hash} through the gateway: {source}")]
    ModuleDownload {
        /// The module.
        hash: ModuleHash,
        /// What the client said.
        #[source]
        source: Box<xxfunc_api::client::ClientError>,
    },
    /// The module store could not be opened or written (tools and tests that
    /// put modules themselves).
    #[error("module store: {what}: {source}")]
    ModuleStore {
        /// What was being done.
        what: String,
        /// What the store said.
        #[source]
        source: Box<xxfunc_store::StoreError>,
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
    #[error("loading module {hash}: {source}")]
    ModuleLoad {
        /// The module.
        hash: ModuleHash,
        /// Why (compile error, unknown import, no `_start`).
        #[source]
        source: ModuleLoadError,
    },
    /// Reading or writing the precompiled-artifact cache failed.
    #[error("artifact cache {path}: {source}")]
    Artifact {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The runner's RocksDB failed.
    #[error("runner database {path}: {source}")]
    Db {
        /// The database directory.
        path: PathBuf,
        /// The RocksDB error.
        #[source]
        source: rocksdb::Error,
    },
    /// A value in the runner's database does not decode.
    #[error("runner database: corrupt record {key}: {source}")]
    CorruptRecord {
        /// The key.
        key: String,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// A block could not be framed as an event envelope.
    #[error("encoding the envelope of block {number}: {source}")]
    Envelope {
        /// Block number.
        number: u64,
        /// The codec error.
        #[source]
        source: xxfunc_abi::AbiError,
    },
    /// A recorded fixture could not be read.
    #[error("fixture {path}: {source}")]
    Fixture {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A recorded fixture does not decode as an event envelope.
    #[error("fixture {path}: {source}")]
    FixtureDecode {
        /// The file.
        path: PathBuf,
        /// The codec error.
        #[source]
        source: xxfunc_abi::AbiError,
    },
    /// A recorded state file (`fixtures/state/`) does not say what it must.
    #[error("state fixture {path}: {reason}")]
    StateFixture {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A fixture directory holds no event envelopes.
    #[error("fixture {path}: no *.bin event envelopes in this directory")]
    NoFixtures {
        /// The directory.
        path: PathBuf,
    },
    /// The JSON-RPC node failed or answered something unusable.
    #[error("JSON-RPC {url}: {source}")]
    Rpc {
        /// The node URL.
        url: String,
        /// What went wrong.
        #[source]
        source: Box<RpcError>,
    },
    /// A chain or block source outside this crate failed (the reth adapter's
    /// provider, a test source).
    #[error("chain source: {what}: {source}")]
    Source {
        /// What the source was doing.
        what: String,
        /// Its error.
        #[source]
        source: BoxError,
    },
    /// The chain source's thread panicked.
    #[error("chain source: the chain source panicked")]
    SourcePanicked,
    /// The node could not answer a question the runner asked it (the hash of
    /// a block, to resume from or report as finished).
    #[error("reading the hash of block {number} from the node: {source}")]
    Provider {
        /// The block number asked for.
        number: u64,
        /// The provider's error.
        #[source]
        source: BoxError,
    },
    /// A private tokio runtime (behind a blocking client) could not start.
    #[error("starting the {what} runtime: {source}")]
    Runtime {
        /// Which client's runtime.
        what: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The metrics endpoint could not listen.
    #[error("binding the metrics address {addr}: {source}")]
    MetricsListen {
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The in-process registry could not be opened.
    #[cfg(feature = "local-registry")]
    #[error("registry: opening {}: {source}", dir.display())]
    RegistryOpen {
        /// The registry directory.
        dir: PathBuf,
        /// The registry's error.
        #[source]
        source: Box<xxfunc_registry::RegistryError>,
    },
    /// The in-process registry could not be read or reported to.
    #[cfg(feature = "local-registry")]
    #[error("registry: {source}")]
    Registry {
        /// The registry's error.
        #[source]
        source: Box<xxfunc_registry::RegistryError>,
    },
    /// The gateway's registry could not be read or reported to.
    #[cfg(feature = "gateway")]
    #[error("registry: {source}")]
    Gateway {
        /// The client's error.
        #[source]
        source: Box<xxfunc_api::client::ClientError>,
    },
    /// A remote registry did not answer `what` within `after`.
    #[error("registry: no answer to {what} within {after:?}")]
    RegistryTimeout {
        /// The request (a report, a page of outcomes).
        what: &'static str,
        /// How long the runner waited.
        after: Duration,
    },
    /// A function the caller named is not known to the runner.
    #[error("function {0} is not known to this runner")]
    UnknownFunction(FunctionId),
    /// Two sinks with one name were added.
    #[error("a sink named {0:?} was already added; sink names are unique on a runner")]
    DuplicateSink(String),
    /// The runner was asked to stop.
    #[error("the runner is shutting down")]
    Stopped,
}

impl RunnerError {
    /// Whether this is a JSON-RPC failure that retrying cannot mend: a reorg
    /// deeper than the follower remembers, a node with another genesis, or a
    /// checkpoint tip the node does not know.
    pub fn is_terminal_rpc(&self) -> bool {
        matches!(
            self,
            Self::Rpc { source, .. } if matches!(
                **source,
                RpcError::ReorgTooDeep { .. } | RpcError::Genesis | RpcError::UnknownTip { .. }
            )
        )
    }

    /// A [`RunnerError::Source`]: `what` failed in a source outside this
    /// crate, because of `source`.
    pub fn chain_source(what: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Source {
            what: what.into(),
            source: source.into(),
        }
    }
}

/// Why a module could not be turned into something the runner can invoke.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModuleLoadError {
    /// wasmtime refused the bytes (not WebAssembly, unsupported features).
    #[error("{0:#}")]
    Compile(#[source] wasmtime::Error),
    /// The module imports something the runner's WASI linker does not provide.
    #[error("{0:#}")]
    Link(#[source] wasmtime::Error),
    /// The compiled module could not be serialized for the artifact cache.
    #[error("{0:#}")]
    Serialize(#[source] wasmtime::Error),
    /// The module has no `_start` of the right type.
    #[error("it does not export a `_start` function of type () -> ()")]
    NoStart,
}

/// What went wrong talking to a JSON-RPC node, or following its chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// The node's URL is not an `http://` or `https://` URL.
    #[error("not an http:// or https:// URL ({reason})")]
    Url {
        /// What is wrong with it.
        reason: String,
    },
    /// The request failed (connection, HTTP status, body not JSON).
    #[error("{method}: {source}")]
    Transport {
        /// The JSON-RPC method.
        method: &'static str,
        /// The HTTP error.
        #[source]
        source: reqwest::Error,
    },
    /// The node answered with a JSON-RPC error object.
    #[error("{method}: node answered error {error}")]
    Node {
        /// The JSON-RPC method.
        method: &'static str,
        /// The error object.
        error: serde_json::Value,
    },
    /// The reply has neither `result` nor `error`.
    #[error("{method}: reply has no result")]
    NoResult {
        /// The JSON-RPC method.
        method: &'static str,
    },
    /// A number in the reply is not a hex quantity.
    #[error("{method}: expected a hex quantity, got {value}")]
    Quantity {
        /// The JSON-RPC method.
        method: &'static str,
        /// What the node sent.
        value: serde_json::Value,
    },
    /// A block in the reply has no hash.
    #[error("eth_getBlockByNumber({number}): no hash in the reply")]
    NoHash {
        /// The block number asked for.
        number: u64,
    },
    /// A block and its receipts do not convert to the runner's block.
    #[error("converting block {block}: {source}")]
    Convert {
        /// The block asked for (number or hash, as sent).
        block: serde_json::Value,
        /// The conversion error.
        #[source]
        source: xxfunc_abi::ConvertError,
    },
    /// The runner's last block is unknown to the node.
    #[error(
        "the runner's last block {} ({}) is unknown to the node, and no recent blocks are stored to revert it from; it was probably reorged away while the runner was down: start the runner with an empty --data-dir to follow the node afresh",
        tip.number, tip.hash
    )]
    UnknownTip {
        /// The runner's checkpoint tip.
        tip: xxfunc_api::BlockRef,
    },
    /// A reorg reaches below what the follower remembers.
    #[error("reorg deeper than the {remembered} remembered blocks (below block {below})")]
    ReorgTooDeep {
        /// How many blocks the follower remembers.
        remembered: usize,
        /// The first block it does not remember.
        below: u64,
    },
    /// The node has another genesis block than the one followed so far.
    #[error("the node disagrees about the genesis block")]
    Genesis,
    /// The block to start at (`--start HASH`) is not on the node's canonical chain.
    #[error("the node has no canonical block {hash} to start at")]
    UnknownStart {
        /// The requested start block.
        hash: alloy_primitives::B256,
    },
}
