//! Module identities: [`ModuleHash`] (a full `blake3:` hash) and [`HashPrefix`] (what a
//! user may type), plus prefix resolution over a set of known hashes.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The scheme tag in front of every module identity string.
pub const HASH_SCHEME: &str = "blake3:";

/// Number of hex digits in a full hash.
pub const HASH_HEX_LEN: usize = 64;

/// The fewest hex digits accepted as a prefix (like git's abbreviated ids).
pub const MIN_PREFIX_HEX_LEN: usize = 8;

/// A string is not a valid module hash or hash prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid module hash {input:?}: {reason}")]
pub struct InvalidHash {
    /// What was given.
    pub input: String,
    /// Why it was rejected.
    pub reason: String,
}

/// Why [`resolve_in`] found no single module for a prefix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No candidate starts with the prefix.
    #[error("no module matches {prefix}")]
    NotFound {
        /// The prefix asked for.
        prefix: HashPrefix,
    },
    /// More than one candidate starts with the prefix.
    #[error("{prefix} is ambiguous; it matches {}", HashList(candidates))]
    Ambiguous {
        /// The prefix asked for.
        prefix: HashPrefix,
        /// Every matching hash, sorted and deduplicated.
        candidates: Vec<ModuleHash>,
    },
}

/// Displays hashes as `blake3:…, blake3:…`, for messages that list candidates.
///
/// ```
/// use xxfunc_primitives::{HashList, ModuleHash};
///
/// let (a, b) = (ModuleHash::of(b"a"), ModuleHash::of(b"b"));
/// assert_eq!(HashList(&[a, b]).to_string(), format!("{a}, {b}"));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HashList<'a>(pub &'a [ModuleHash]);

impl fmt::Display for HashList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, hash) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            hash.fmt(f)?;
        }
        Ok(())
    }
}

/// The identity of a module: the blake3 hash of its exact bytes.
///
/// Displays and serializes as `blake3:<64 lowercase hex>`. [`FromStr`] accepts that form or
/// bare hex (either case; the result is always shown lowercase).
///
/// ```
/// use xxfunc_primitives::ModuleHash;
///
/// let hash = ModuleHash::of(b"hello");
/// assert_eq!(hash.to_string(), format!("blake3:{}", hash.to_hex()));
/// assert_eq!(hash.to_string().parse::<ModuleHash>().unwrap(), hash);
/// assert_eq!(hash.to_hex().parse::<ModuleHash>().unwrap(), hash);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleHash([u8; 32]);

impl ModuleHash {
    /// Hashes `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(*blake3::hash(bytes).as_bytes())
    }

    /// Wraps raw hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The 64 lowercase hex digits, without the `blake3:` tag.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first `digits` hex digits (at most 64), handy for short display.
    pub fn short(&self, digits: usize) -> String {
        let mut hex = self.to_hex();
        hex.truncate(digits.min(HASH_HEX_LEN));
        hex
    }

    /// Parses exactly 64 hex digits (no tag).
    fn from_hex_digits(input: &str, hex_digits: &str) -> Result<Self, InvalidHash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(hex_digits, &mut out).map_err(|_| InvalidHash {
            input: input.to_owned(),
            reason: "not hexadecimal".into(),
        })?;
        Ok(Self(out))
    }
}

impl From<blake3::Hash> for ModuleHash {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(HASH_SCHEME)?;
        let mut buf = [0u8; HASH_HEX_LEN];
        // Encoding 32 bytes into a 64-byte buffer cannot fail.
        hex::encode_to_slice(self.0, &mut buf).map_err(|_| fmt::Error)?;
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ModuleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModuleHash({self})")
    }
}

impl FromStr for ModuleHash {
    type Err = InvalidHash;

    fn from_str(input: &str) -> Result<Self, InvalidHash> {
        let digits = strip_scheme(input)?;
        if digits.len() != HASH_HEX_LEN {
            return Err(InvalidHash {
                input: input.to_owned(),
                reason: format!("expected {HASH_HEX_LEN} hex digits, found {}", digits.len()),
            });
        }
        Self::from_hex_digits(input, digits)
    }
}

impl Serialize for ModuleHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModuleHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Strips an optional `blake3:` tag; rejects any other `scheme:`.
fn strip_scheme(input: &str) -> Result<&str, InvalidHash> {
    if let Some(rest) = input.strip_prefix(HASH_SCHEME) {
        return Ok(rest);
    }
    if let Some((scheme, _)) = input.split_once(':') {
        return Err(InvalidHash {
            input: input.to_owned(),
            reason: format!("unsupported hash scheme {scheme:?}; expected \"blake3\""),
        });
    }
    Ok(input)
}

/// What a user may type for a module: a full hash or a prefix of at least
/// [`MIN_PREFIX_HEX_LEN`] hex digits, with or without the `blake3:` tag.
///
/// Stored lowercase. Displays as `blake3:<hex digits>`.
///
/// ```
/// use xxfunc_primitives::HashPrefix;
///
/// let prefix: HashPrefix = "blake3:0123ABCD".parse().unwrap();
/// assert_eq!(prefix.hex(), "0123abcd");
/// assert!("0123abc".parse::<HashPrefix>().is_err()); // fewer than 8 digits
/// assert!("0123abcx".parse::<HashPrefix>().is_err()); // not hex
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HashPrefix(String);

impl HashPrefix {
    /// The lowercase hex digits (no tag).
    pub fn hex(&self) -> &str {
        &self.0
    }

    /// Whether the prefix is a complete hash.
    pub fn as_full(&self) -> Option<ModuleHash> {
        (self.0.len() == HASH_HEX_LEN)
            .then(|| ModuleHash::from_hex_digits(&self.0, &self.0).ok())
            .flatten()
    }

    /// Whether `hash` starts with this prefix.
    pub fn matches(&self, hash: &ModuleHash) -> bool {
        hash.to_hex().starts_with(&self.0)
    }
}

impl FromStr for HashPrefix {
    type Err = InvalidHash;

    fn from_str(input: &str) -> Result<Self, InvalidHash> {
        let digits = strip_scheme(input.trim())?;
        let invalid = |reason: String| InvalidHash {
            input: input.to_owned(),
            reason,
        };
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(invalid(format!("{bad:?} is not a hex digit")));
        }
        if digits.len() < MIN_PREFIX_HEX_LEN {
            return Err(invalid(format!(
                "a hash prefix needs at least {MIN_PREFIX_HEX_LEN} hex digits, found {}",
                digits.len()
            )));
        }
        if digits.len() > HASH_HEX_LEN {
            return Err(invalid(format!(
                "a hash has {HASH_HEX_LEN} hex digits, found {}",
                digits.len()
            )));
        }
        Ok(Self(digits.to_ascii_lowercase()))
    }
}

impl From<ModuleHash> for HashPrefix {
    fn from(hash: ModuleHash) -> Self {
        Self(hash.to_hex())
    }
}

impl fmt::Display for HashPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{HASH_SCHEME}{}", self.0)
    }
}

impl fmt::Debug for HashPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HashPrefix({self})")
    }
}

/// Resolves `prefix` against `candidates` (e.g. what a module store lists, or the hashes
/// a registry refers to).
///
/// # Errors
///
/// [`ResolveError::NotFound`] when nothing matches, [`ResolveError::Ambiguous`] (with the
/// sorted, deduplicated matches) when more than one does.
///
/// ```
/// use xxfunc_primitives::{ModuleHash, ResolveError, resolve_in};
///
/// let a = ModuleHash::of(b"a");
/// let b = ModuleHash::of(b"b");
/// let prefix = a.short(8).parse().unwrap();
/// assert_eq!(resolve_in(&prefix, [a, b]).unwrap(), a);
/// assert!(matches!(resolve_in(&prefix, [b]), Err(ResolveError::NotFound { .. })));
/// ```
pub fn resolve_in(
    prefix: &HashPrefix,
    candidates: impl IntoIterator<Item = ModuleHash>,
) -> Result<ModuleHash, ResolveError> {
    let mut found: Vec<ModuleHash> = candidates
        .into_iter()
        .filter(|hash| prefix.matches(hash))
        .collect();
    found.sort_unstable();
    found.dedup();
    match found.as_slice() {
        [] => Err(ResolveError::NotFound {
            prefix: prefix.clone(),
        }),
        [one] => Ok(*one),
        _ => Err(ResolveError::Ambiguous {
            prefix: prefix.clone(),
            candidates: found,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_parse_round_trip() {
        let hash = ModuleHash::of(b"module");
        let shown = hash.to_string();
        assert!(shown.starts_with("blake3:"));
        assert_eq!(shown.len(), HASH_SCHEME.len() + HASH_HEX_LEN);
        assert_eq!(shown.parse::<ModuleHash>().unwrap(), hash);
        assert_eq!(
            hash.to_hex().to_uppercase().parse::<ModuleHash>().unwrap(),
            hash
        );
        assert_eq!(
            format!("blake3:{}", hash.to_hex().to_uppercase())
                .parse::<ModuleHash>()
                .unwrap()
                .to_string(),
            shown
        );
    }

    #[test]
    fn bad_full_hashes_are_rejected() {
        let hex = ModuleHash::of(b"x").to_hex();
        for bad in [
            String::new(),
            "blake3:".into(),
            hex[..63].to_string(),
            format!("{hex}0"),
            format!("sha256:{hex}"),
            format!("{}g", &hex[..63]),
            format!(" {hex}"),
        ] {
            let err = bad.parse::<ModuleHash>().unwrap_err();
            assert!(
                matches!(&err, InvalidHash { input, .. } if *input == bad),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn serde_uses_the_string_form() {
        let hash = ModuleHash::of(b"serde");
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{hash}\""));
        assert_eq!(serde_json::from_str::<ModuleHash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<ModuleHash>("\"blake3:00\"").is_err());
        assert!(serde_json::from_str::<ModuleHash>("42").is_err());
    }

    #[test]
    fn prefixes() {
        let hash = ModuleHash::of(b"prefix");
        let hex = hash.to_hex();
        let p: HashPrefix = hex[..8].parse().unwrap();
        assert!(p.matches(&hash));
        assert_eq!(p.as_full(), None);
        let full: HashPrefix = hash.to_string().parse().unwrap();
        assert_eq!(full.as_full(), Some(hash));
        assert_eq!(
            format!("blake3:{}", hex[..10].to_uppercase())
                .parse::<HashPrefix>()
                .unwrap()
                .hex(),
            &hex[..10]
        );
        for bad in ["", "1234567", "blake3:1234567", "1234567z", "sha1:12345678"] {
            assert!(
                matches!(bad.parse::<HashPrefix>(), Err(InvalidHash { .. })),
                "{bad:?}"
            );
        }
        assert!(format!("{hex}0").parse::<HashPrefix>().is_err());
    }

    #[test]
    fn resolution_errors_name_the_prefix_and_candidates() {
        let (a, b) = (ModuleHash::of(b"a"), ModuleHash::of(b"b"));
        let prefix: HashPrefix = a.short(8).parse().unwrap();
        let err = resolve_in(&prefix, [b]).unwrap_err();
        assert_eq!(err.to_string(), format!("no module matches {prefix}"));
        // The empty prefix (which parsing never yields) matches every hash.
        let everything = HashPrefix(String::new());
        let mut want = vec![a, b];
        want.sort();
        let err = resolve_in(&everything, [b, a, b]).unwrap_err();
        assert_eq!(
            err,
            ResolveError::Ambiguous {
                prefix: everything.clone(),
                candidates: want.clone()
            }
        );
        assert_eq!(
            err.to_string(),
            format!("blake3: is ambiguous; it matches {}, {}", want[0], want[1])
        );
    }
}
