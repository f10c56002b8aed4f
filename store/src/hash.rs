//! Module identities live in `xxfunc-primitives`; this module re-exports them and
//! maps their errors into [`StoreError`](crate::StoreError).

pub use xxfunc_primitives::{
    HASH_HEX_LEN, HASH_SCHEME, HashPrefix, InvalidHash, MIN_PREFIX_HEX_LEN, ModuleHash,
    ResolveError,
};

use crate::error::Result;

/// Resolves `prefix` against `candidates` (e.g. the output of
/// [`ModuleStore::list`](crate::ModuleStore::list) or a registry's list): the rule of
/// [`xxfunc_primitives::resolve_in`], with its errors as [`StoreError`](crate::StoreError)s.
///
/// # Errors
///
/// [`StoreError::PrefixNotFound`](crate::StoreError::PrefixNotFound) when nothing matches,
/// [`StoreError::Ambiguous`](crate::StoreError::Ambiguous) (with the
/// sorted, deduplicated matches) when more than one does.
///
/// ```
/// use xxfunc_store::{ModuleHash, StoreError, resolve_in};
///
/// let a = ModuleHash::of(b"a");
/// let b = ModuleHash::of(b"b");
/// let prefix = a.short(8).parse().unwrap();
/// assert_eq!(resolve_in(&prefix, [a, b]).unwrap(), a);
/// assert!(matches!(resolve_in(&prefix, [b]), Err(StoreError::PrefixNotFound { .. })));
/// ```
pub fn resolve_in(
    prefix: &HashPrefix,
    candidates: impl IntoIterator<Item = ModuleHash>,
) -> Result<ModuleHash> {
    Ok(xxfunc_primitives::resolve_in(prefix, candidates)?)
}
