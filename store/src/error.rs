//! The store's error type.

use std::fmt;

use xxfunc_primitives::HashList;

use crate::hash::{HashPrefix, InvalidHash, ModuleHash, ResolveError};

/// Result alias for store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The backend operation that failed, for [`StoreError::Backend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// Writing an object.
    Put,
    /// Starting, writing or completing a multipart upload.
    Upload,
    /// Publishing a staged upload under its final key (copy if not exists).
    Publish,
    /// Reading an object.
    Get,
    /// Checking whether an object exists.
    Head,
    /// Listing objects.
    List,
    /// Deleting an object.
    Delete,
    /// Preparing the backend (e.g. creating the local directory).
    Open,
}

impl fmt::Display for StoreOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Put => "put",
            Self::Upload => "upload",
            Self::Publish => "publish",
            Self::Get => "get",
            Self::Head => "head",
            Self::List => "list",
            Self::Delete => "delete",
            Self::Open => "open",
        })
    }
}

/// Everything that can go wrong in the store. Each variant names the object that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No module with this hash is stored.
    #[error("module {hash} not found")]
    NotFound {
        /// The hash asked for.
        hash: ModuleHash,
    },

    /// No stored module starts with this prefix.
    #[error("no module matches {prefix}")]
    PrefixNotFound {
        /// The prefix asked for.
        prefix: HashPrefix,
    },

    /// The bytes stored under `key` do not hash to `hash` (bit rot, truncation, tampering).
    /// The bytes are never returned.
    #[error("module {hash} is corrupt: the object at {key} does not hash to it")]
    Corrupt {
        /// The hash the object should have.
        hash: ModuleHash,
        /// The backend key of the object.
        key: String,
    },

    /// A module is larger than the configured maximum; nothing was stored.
    #[error("module is too large: {size} bytes (or more) exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Bytes seen when the limit was crossed (a lower bound for streams).
        size: u64,
        /// The configured maximum.
        max: u64,
    },

    /// A prefix matches more than one stored module.
    #[error("{prefix} is ambiguous; it matches {}", HashList(candidates))]
    Ambiguous {
        /// The prefix asked for.
        prefix: HashPrefix,
        /// Every matching hash, sorted.
        candidates: Vec<ModuleHash>,
    },

    /// A string is not a valid hash or hash prefix.
    #[error("invalid module hash {input:?}: {reason}")]
    InvalidHash {
        /// What was given.
        input: String,
        /// Why it was rejected.
        reason: String,
    },

    /// A store URL or option cannot be used.
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given (credentials are never part of it).
        url: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The caller's byte stream failed while a module was being uploaded; nothing was stored.
    #[error("reading the module bytes failed")]
    Input {
        /// The stream's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// The backend failed (I/O error, server down or refusing, timeout).
    #[error("store {store}: {op} {key} failed: {source}")]
    Backend {
        /// What was attempted.
        op: StoreOp,
        /// The backend key (or prefix, for listing).
        key: String,
        /// The store, e.g. `s3://bucket/prefix (endpoint http://127.0.0.1:9000)`.
        store: String,
        /// The backend's error.
        #[source]
        source: object_store::Error,
    },
}

impl StoreError {
    /// Whether this is [`StoreError::NotFound`] or [`StoreError::PrefixNotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. } | Self::PrefixNotFound { .. })
    }
}

impl From<InvalidHash> for StoreError {
    fn from(InvalidHash { input, reason }: InvalidHash) -> Self {
        Self::InvalidHash { input, reason }
    }
}

impl From<ResolveError> for StoreError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::NotFound { prefix } => Self::PrefixNotFound { prefix },
            ResolveError::Ambiguous { prefix, candidates } => {
                Self::Ambiguous { prefix, candidates }
            }
        }
    }
}
