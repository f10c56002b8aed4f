//! The registry's error type.

use std::path::PathBuf;

use xxfunc_api::{FunctionId, FunctionName, HashPrefix, ModuleHash};

/// Result alias for registry operations.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Everything that can go wrong in the registry. Each variant names what failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// The RocksDB directory could not be opened (missing permissions,
    /// incompatible files, or a second open in the same process: share one
    /// [`Registry`](crate::Registry) per process instead).
    #[error("cannot open the registry at {}: {source}", path.display())]
    Open {
        /// The directory.
        path: PathBuf,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },

    /// Another process has the registry open: RocksDB lets one process at a
    /// time hold a directory's lock.
    #[error(
        "the registry at {} is in use by another process (only one may open it at a time); \
         stop that process, or go through it instead of opening the directory",
        path.display()
    )]
    Locked {
        /// The directory.
        path: PathBuf,
        /// RocksDB's error, naming the lock file.
        #[source]
        source: rocksdb::Error,
    },

    /// No function has this identity.
    #[error(
        "function {id} not found; deploy it with `cargo xxfunc deploy` or list functions with `cargo xxfunc list`"
    )]
    FunctionNotFound {
        /// The identity asked for.
        id: FunctionId,
    },

    /// No name is bound with this spelling.
    #[error("no function is named {name}; deploy it with `cargo xxfunc deploy --name {name}`")]
    NameNotFound {
        /// The name asked for.
        name: FunctionName,
    },

    /// No known module starts with this prefix.
    #[error(
        "no module matches {prefix}; upload it first, or check the hash with `cargo xxfunc list`"
    )]
    PrefixNotFound {
        /// The prefix asked for.
        prefix: HashPrefix,
    },

    /// A prefix matches several modules.
    #[error(
        "{prefix} is ambiguous: it matches {}; type more hex digits",
        list(candidates)
    )]
    Ambiguous {
        /// The prefix asked for.
        prefix: HashPrefix,
        /// Every matching hash, sorted.
        candidates: Vec<ModuleHash>,
    },

    /// `after` names an output item the log does not hold yet.
    #[error(
        "after={after} is beyond the head of the outputs ({head}): items are numbered from 1 \
         and the log holds up to {head}; resume with after={head} or lower"
    )]
    AfterBeyondHead {
        /// The requested position.
        after: u64,
        /// The highest item seq held.
        head: u64,
    },

    /// A runner id that cannot key a log (empty, or with a NUL byte).
    #[error("invalid runner id {runner:?}: use 1 to 128 letters, digits, '.', '_' or '-'")]
    InvalidRunner {
        /// The id given.
        runner: String,
    },

    /// An outputs query out of range.
    #[error("{reason}")]
    InvalidQuery {
        /// What is wrong.
        reason: String,
    },

    /// A page of outcomes that breaks the log's rules; nothing of it is stored.
    #[error("invalid outcomes page: {reason}")]
    InvalidOutcomes {
        /// What is wrong.
        reason: String,
    },

    /// The function has no sink of this name.
    #[error(
        "function {id} has no sink named {name}; list its sinks with `cargo xxfunc sink list {id}`"
    )]
    SinkNotFound {
        /// The function.
        id: FunctionId,
        /// The sink asked for.
        name: String,
    },

    /// Another function has a sink of this name (names are unique in the registry: they
    /// key cursors at destinations).
    #[error("sink name {name} is taken by function {owner}; choose another name")]
    SinkNameTaken {
        /// The name.
        name: String,
        /// The function that has it.
        owner: FunctionId,
    },

    /// A sink whose name or configuration cannot be used.
    #[error("sink {name}: {reason}")]
    InvalidSink {
        /// The sink.
        name: String,
        /// What is wrong.
        reason: String,
    },

    /// A RocksDB read or write failed.
    #[error("registry {op} failed: {source}")]
    Db {
        /// What was attempted, e.g. "write batch", "read names".
        op: &'static str,
        /// RocksDB's error.
        #[source]
        source: rocksdb::Error,
    },

    /// A stored value or key does not decode: the database was written by an
    /// incompatible version or damaged.
    #[error("registry record {key:?} in {table} is unreadable: {reason}")]
    Corrupt {
        /// Column family.
        table: &'static str,
        /// The key, lossily decoded.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

impl RegistryError {
    /// Whether the error means "no such thing" (function, name or module).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Self::FunctionNotFound { .. }
                | Self::NameNotFound { .. }
                | Self::PrefixNotFound { .. }
                | Self::SinkNotFound { .. }
        )
    }
}

fn list(candidates: &[ModuleHash]) -> String {
    candidates
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
