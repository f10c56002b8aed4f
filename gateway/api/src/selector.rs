//! What a user may type to pick a function or module: a name, a hash, or a
//! unique hash prefix. The one parser both the gateway and `cargo xxfunc` use.
//!
//! # The rule
//!
//! 1. A string starting with `blake3:` is a hash or a hash prefix (at least 8
//!    hex digits), never a name.
//! 2. A valid function name is a name. If it also looks like a hash prefix
//!    (8 to 64 hex digits, e.g. `deadbeef`), it is [`Selector::NameOrHash`]:
//!    a bound name with that exact spelling wins, otherwise it is a prefix.
//! 3. Anything else that is 8 to 64 hex digits (e.g. upper case) is a prefix.
//! 4. Everything else is rejected with [`InvalidSelector`], which says both
//!    why it is not a name and why it is not a hash.
//!
//! Resolving a prefix to one module (and reporting an ambiguous prefix with
//! its candidates) is the registry's job: see `xxfunc_registry::Registry::resolve`.
//!
//! ```
//! use xxfunc_api::Selector;
//!
//! assert!(matches!("erc20".parse::<Selector>(), Ok(Selector::Name(_))));
//! assert!(matches!("deadbeef".parse::<Selector>(), Ok(Selector::NameOrHash(..))));
//! assert!(matches!("blake3:deadbeef".parse::<Selector>(), Ok(Selector::Hash(_))));
//! assert!(matches!("DEADBEEF".parse::<Selector>(), Ok(Selector::Hash(_))));
//! assert!("Erc20".parse::<Selector>().is_err());
//! ```

use std::{fmt, str::FromStr};

use xxfunc_primitives::{FunctionName, HASH_SCHEME, HashPrefix};

/// A parsed function or module selector. See the [module docs](self) for the rule.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selector {
    /// Only a name.
    Name(FunctionName),
    /// Only a hash or hash prefix.
    Hash(HashPrefix),
    /// A valid name that is also a valid hash prefix: the name wins if bound.
    NameOrHash(FunctionName, HashPrefix),
}

/// Why a string selects neither a function name nor a module hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{input:?} is neither a function name nor a module hash: {name_reason}; as a hash: \
     {hash_reason}. Use a name like `erc20-transfers`, a hash `blake3:<64 hex>` or a \
     unique prefix of at least 8 hex digits"
)]
pub struct InvalidSelector {
    /// What was given.
    pub input: String,
    /// Why it is not a name.
    pub name_reason: String,
    /// Why it is not a hash.
    pub hash_reason: String,
}

impl Selector {
    /// The name part, if any.
    pub fn name(&self) -> Option<&FunctionName> {
        match self {
            Self::Name(n) | Self::NameOrHash(n, _) => Some(n),
            Self::Hash(_) => None,
        }
    }

    /// The hash prefix part, if any.
    pub fn prefix(&self) -> Option<&HashPrefix> {
        match self {
            Self::Hash(p) | Self::NameOrHash(_, p) => Some(p),
            Self::Name(_) => None,
        }
    }
}

impl FromStr for Selector {
    type Err = InvalidSelector;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.starts_with(HASH_SCHEME) {
            return input
                .parse::<HashPrefix>()
                .map(Self::Hash)
                .map_err(|e| InvalidSelector {
                    input: input.to_string(),
                    name_reason: "names cannot contain ':'".into(),
                    hash_reason: e.reason,
                });
        }
        match (input.parse::<FunctionName>(), input.parse::<HashPrefix>()) {
            (Ok(name), Ok(prefix)) => Ok(Self::NameOrHash(name, prefix)),
            (Ok(name), Err(_)) => Ok(Self::Name(name)),
            (Err(_), Ok(prefix)) => Ok(Self::Hash(prefix)),
            (Err(name), Err(hash)) => Err(InvalidSelector {
                input: input.to_string(),
                name_reason: name.reason.to_string(),
                hash_reason: hash.reason,
            }),
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) | Self::NameOrHash(n, _) => n.fmt(f),
            Self::Hash(p) => p.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xxfunc_primitives::ModuleHash;

    #[test]
    fn classifies_inputs() {
        let hash = ModuleHash::of(b"x");
        assert!(
            matches!("hello".parse::<Selector>(), Ok(Selector::Name(n)) if n.as_str() == "hello")
        );
        assert!(matches!(
            "abcdef1".parse::<Selector>(),
            Ok(Selector::Name(_))
        ));
        assert!(matches!(
            "abcdef12".parse::<Selector>(),
            Ok(Selector::NameOrHash(..))
        ));
        assert!(
            matches!(hash.to_string().parse::<Selector>(), Ok(Selector::Hash(p)) if p.as_full() == Some(hash))
        );
        // 64 hex digits are longer than any name.
        assert!(matches!(
            hash.to_hex().parse::<Selector>(),
            Ok(Selector::Hash(_))
        ));
        assert!(matches!(
            "ABCDEF12".parse::<Selector>(),
            Ok(Selector::Hash(_))
        ));
    }

    #[test]
    fn rejects_garbage_with_both_reasons() {
        for bad in [
            "",
            "a/b",
            "..",
            "Hello",
            "héllo",
            "blake3:xyz",
            "blake3:1234",
            "sha256:abcdef12",
        ] {
            let err = bad.parse::<Selector>().unwrap_err();
            assert_eq!(err.input, bad);
            assert!(err.to_string().contains("neither"), "{err}");
        }
    }
}
