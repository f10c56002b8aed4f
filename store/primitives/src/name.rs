//! Function names and the identities functions run under.

use std::{fmt, str::FromStr};

use crate::hash::{HASH_SCHEME, ModuleHash};
use serde::{Deserialize, Serialize};

/// Longest accepted function name, in bytes.
pub const MAX_NAME_LEN: usize = 63;

/// A validated function name: `[a-z0-9][a-z0-9._-]{0,62}`.
///
/// ```
/// use xxfunc_primitives::FunctionName;
///
/// let name: FunctionName = "erc20-transfers".parse().unwrap();
/// assert_eq!(name.as_str(), "erc20-transfers");
/// assert!("Erc20".parse::<FunctionName>().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionName(String);

/// Why a string is not a [`FunctionName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid function name {input:?}: {reason} (names match [a-z0-9][a-z0-9._-]{{0,62}})")]
pub struct InvalidName {
    /// The rejected input.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FunctionName {
    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for FunctionName {
    type Err = InvalidName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason| InvalidName {
            input: s.to_string(),
            reason,
        };
        let bytes = s.as_bytes();
        let Some(first) = bytes.first() else {
            return Err(err("it is empty"));
        };
        if bytes.len() > MAX_NAME_LEN {
            return Err(err("it is longer than 63 characters"));
        }
        if !(first.is_ascii_lowercase() || first.is_ascii_digit()) {
            return Err(err("it must start with a lowercase letter or a digit"));
        }
        if !bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return Err(err(
                "only lowercase letters, digits, '.', '_' and '-' are allowed",
            ));
        }
        Ok(Self(s.to_string()))
    }
}

impl TryFrom<String> for FunctionName {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<FunctionName> for String {
    fn from(value: FunctionName) -> Self {
        value.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The identity a function runs under: a bound name, or a module hash for a
/// function started by hash (`start <hash>`).
///
/// Serialised as the name, or as `blake3:<hex>`; the two never collide
/// because names cannot contain `:`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum FunctionId {
    /// A function known by name; its module is the name's current (or pinned) hash.
    Name(FunctionName),
    /// A function whose identity is its module hash.
    Hash(ModuleHash),
}

impl FunctionId {
    /// The module hash when the identity is a hash.
    pub fn as_hash(&self) -> Option<&ModuleHash> {
        match self {
            Self::Hash(h) => Some(h),
            Self::Name(_) => None,
        }
    }
}

impl fmt::Display for FunctionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Name(n) => n.fmt(f),
            Self::Hash(h) => h.fmt(f),
        }
    }
}

impl FromStr for FunctionId {
    type Err = InvalidName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with(HASH_SCHEME) {
            return s
                .parse::<ModuleHash>()
                .map(Self::Hash)
                .map_err(|_| InvalidName {
                    input: s.to_string(),
                    reason: "a hash identity is blake3: followed by 64 lowercase hex digits",
                });
        }
        s.parse().map(Self::Name)
    }
}

impl TryFrom<String> for FunctionId {
    type Error = InvalidName;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<FunctionId> for String {
    fn from(value: FunctionId) -> Self {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_names() {
        for ok in ["a", "0", "erc20-transfers", "my.fn_2", &"a".repeat(63)] {
            assert_eq!(ok.parse::<FunctionName>().unwrap().as_str(), ok);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for bad in [
            "",
            "-a",
            ".a",
            "_a",
            "A",
            "aB",
            "a/b",
            "..",
            "a b",
            "héllo",
            "a:b",
            &"a".repeat(64),
        ] {
            let err = bad.parse::<FunctionName>().unwrap_err();
            assert_eq!(err.input, bad);
        }
    }

    #[test]
    fn function_id_round_trips() {
        let hash = ModuleHash::of(b"module");
        for id in [
            FunctionId::Hash(hash),
            FunctionId::Name("hello".parse().unwrap()),
        ] {
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(serde_json::from_str::<FunctionId>(&json).unwrap(), id);
            assert_eq!(id.to_string().parse::<FunctionId>().unwrap(), id);
        }
        assert!("blake3:xyz".parse::<FunctionId>().is_err());
    }
}
