//! [`ServiceError`]: every way a service operation fails, each variant naming its object.

use xxfunc_api::InvalidSelector;
use xxfunc_primitives::{HashList, HashPrefix, InvalidHash, ModuleHash};
use xxfunc_registry::RegistryError;
use xxfunc_store::StoreError;

use crate::validate::ValidationError;

/// Result alias for service operations.
pub type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// Why a service operation failed. Nothing is changed when an operation fails, except
/// where a variant says so.
///
/// Transports map these to their own answers: the gateway to an HTTP status and a stable
/// error code, `cargo xxfunc --offline` to an exit code.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// What the user typed to pick a function is neither a name nor a hash.
    #[error(transparent)]
    InvalidSelector(#[from] InvalidSelector),

    /// A hash given for a module (a bind's `hash`) is malformed.
    #[error(transparent)]
    InvalidHash(#[from] InvalidHash),

    /// The module failed validation; nothing was stored.
    #[error("module rejected, nothing was stored: {0}")]
    InvalidModule(#[from] ValidationError),

    /// The operation needs module bytes the store does not hold (a bind, or a start or pin
    /// by hash).
    #[error("module {0} is not stored")]
    ModuleNotStored(ModuleHash),

    /// A hash prefix given for a module (a bind's `hash`) matches no module the registry
    /// or the store knows.
    #[error("no module matches {prefix}")]
    ModuleNotFound {
        /// The prefix given.
        prefix: HashPrefix,
    },

    /// A hash prefix given for a module (a bind's `hash`) matches several modules.
    #[error("{prefix} is ambiguous; it matches {}", HashList(candidates))]
    Ambiguous {
        /// The prefix given.
        prefix: HashPrefix,
        /// Every matching hash, sorted.
        candidates: Vec<ModuleHash>,
    },

    /// The registry failed, or has no such function or name, or a selector's hash prefix
    /// matches no or several modules (see [`xxfunc_registry::Registry::resolve`]).
    #[error(transparent)]
    Registry(#[from] RegistryError),

    /// The module store failed (or, for a download, holds no matching module).
    #[error(transparent)]
    Store(#[from] StoreError),

    /// A blocking task (a registry call, a validation) panicked or was cancelled.
    #[error("a blocking worker failed: {0}")]
    Worker(#[source] tokio::task::JoinError),
}
