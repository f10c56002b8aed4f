//! [`EventKind`]: whether a block joined the canonical chain or left it.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// Whether a block joined the canonical chain or left it.
///
/// A reorg is delivered as `Revert` events for the orphaned blocks, newest first, then
/// `Commit` events for the new branch, oldest first.
///
/// One type for every representation: the envelope byte ([`as_u8`](Self::as_u8): 1 or 2),
/// text (`Display` / `FromStr`: `commit` / `revert`) and JSON (`"commit"` / `"revert"`).
///
/// ```
/// use xxfunc_primitives::EventKind;
///
/// assert_eq!(EventKind::Revert.as_u8(), 2);
/// assert_eq!(EventKind::from_u8(1), Some(EventKind::Commit));
/// assert_eq!(EventKind::Commit.to_string(), "commit");
/// assert_eq!("revert".parse::<EventKind>(), Ok(EventKind::Revert));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum EventKind {
    /// The block was added to the canonical chain.
    Commit = 1,
    /// The block was removed from the canonical chain by a reorg.
    Revert = 2,
}

/// A string that is neither `commit` nor `revert`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event kind {input:?} (expected commit or revert)")]
pub struct InvalidEventKind {
    /// What was given.
    pub input: String,
}

impl EventKind {
    /// The byte stored at offset 6 of an envelope.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// Parses the envelope byte; `None` for anything but 1 or 2.
    pub const fn from_u8(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Commit),
            2 => Some(Self::Revert),
            _ => None,
        }
    }

    /// `"commit"` or `"revert"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Commit => "commit",
            Self::Revert => "revert",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = InvalidEventKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "commit" => Ok(Self::Commit),
            "revert" => Ok(Self::Revert),
            other => Err(InvalidEventKind {
                input: other.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_agrees() {
        for (kind, byte, text) in [
            (EventKind::Commit, 1, "commit"),
            (EventKind::Revert, 2, "revert"),
        ] {
            assert_eq!(kind.as_u8(), byte);
            assert_eq!(EventKind::from_u8(byte), Some(kind));
            assert_eq!(kind.to_string(), text);
            assert_eq!(text.parse::<EventKind>(), Ok(kind));
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{text}\""));
            assert_eq!(
                serde_json::from_str::<EventKind>(&format!("\"{text}\"")).unwrap(),
                kind
            );
        }
        for byte in [0, 3, 255] {
            assert_eq!(EventKind::from_u8(byte), None);
        }
        let err = "Commit".parse::<EventKind>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown event kind \"Commit\" (expected commit or revert)"
        );
        assert!(serde_json::from_str::<EventKind>("1").is_err());
    }
}
