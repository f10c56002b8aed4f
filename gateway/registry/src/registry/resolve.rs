//! Selectors: the one rule that turns a name, hash or prefix into a [`FunctionId`].

use xxfunc_api::{FunctionId, HashPrefix, ModuleHash, Selector};
use xxfunc_store::StoreError;

use super::Registry;
use crate::error::{RegistryError, Result};

impl Registry {
    /// Whether resolving `selector` needs the list of stored modules: it is
    /// an abbreviated prefix and not a bound name. When false, pass `&[]` to
    /// [`resolve`](Self::resolve).
    ///
    /// # Errors
    /// Read failures.
    pub fn needs_store_modules(&self, selector: &Selector) -> Result<bool> {
        Ok(match selector {
            Selector::Name(_) => false,
            Selector::Hash(p) => p.as_full().is_none(),
            Selector::NameOrHash(name, p) => {
                p.as_full().is_none() && self.lookup_name(name)?.is_none()
            }
        })
    }

    /// Resolves a user's selector to a function identity. The one rule,
    /// shared by the gateway and offline `cargo xxfunc`:
    ///
    /// 1. A name (a [`Selector::Name`], or a [`Selector::NameOrHash`] whose
    ///    name is bound) is [`FunctionId::Name`]. Its existence is checked by
    ///    the operation that uses it.
    /// 2. A full hash is [`FunctionId::Hash`] of it.
    /// 3. A prefix must match exactly one module among those the registry
    ///    refers to plus `store_modules` (what the module store lists).
    ///
    /// # Errors
    /// [`RegistryError::PrefixNotFound`], or [`RegistryError::Ambiguous`] with the candidates.
    pub fn resolve(&self, selector: &Selector, store_modules: &[ModuleHash]) -> Result<FunctionId> {
        match selector {
            Selector::Name(name) => Ok(FunctionId::Name(name.clone())),
            Selector::NameOrHash(name, prefix) => {
                if self.lookup_name(name)?.is_some() {
                    Ok(FunctionId::Name(name.clone()))
                } else {
                    self.resolve_hash(prefix, store_modules)
                        .map(FunctionId::Hash)
                }
            }
            Selector::Hash(prefix) => self
                .resolve_hash(prefix, store_modules)
                .map(FunctionId::Hash),
        }
    }

    /// Resolves a hash prefix among the modules the registry refers to plus `store_modules`.
    ///
    /// # Errors
    /// [`RegistryError::PrefixNotFound`], or [`RegistryError::Ambiguous`] with the sorted candidates.
    pub fn resolve_hash(
        &self,
        prefix: &HashPrefix,
        store_modules: &[ModuleHash],
    ) -> Result<ModuleHash> {
        if let Some(full) = prefix.as_full() {
            return Ok(full);
        }
        let referenced = self.referenced_hashes()?;
        let known = store_modules.iter().copied().chain(referenced);
        xxfunc_store::resolve_in(prefix, known).map_err(|e| match e {
            StoreError::Ambiguous { prefix, candidates } => {
                RegistryError::Ambiguous { prefix, candidates }
            }
            // `resolve_in` fails only with the two prefix errors.
            _ => RegistryError::PrefixNotFound {
                prefix: prefix.clone(),
            },
        })
    }
}
