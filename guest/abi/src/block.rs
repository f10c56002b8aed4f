//! The owned block and event types.

use alloy_primitives::{Address, B256, Bytes};
use core::fmt;
use core::str::FromStr;

/// Whether a block joined the canonical chain or left it.
///
/// A reorg is delivered as `Revert` events for the orphaned blocks, newest first, then
/// `Commit` events for the new branch, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventKind {
    /// The block was added to the canonical chain.
    Commit = 1,
    /// The block was removed from the canonical chain by a reorg.
    Revert = 2,
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
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "commit" => Ok(Self::Commit),
            "revert" => Ok(Self::Revert),
            other => Err(format!(
                "unknown event kind {other:?} (expected commit or revert)"
            )),
        }
    }
}

/// One block with everything an envelope carries, owned and cheap to clone.
///
/// Invariants the constructors keep (and [`crate::EnvelopeRef::verify`] checks):
/// `keccak256(header_rlp) == hash`; `number`, `parent_hash` and `timestamp` equal the
/// header's; `receipts[i]` belongs to `transactions[i]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ChainBlock {
    /// EIP-155 chain id (31337 for anvil, 1 for mainnet).
    pub chain_id: u64,
    /// Block number.
    pub number: u64,
    /// Block hash (keccak256 of `header_rlp`).
    pub hash: B256,
    /// Parent block hash.
    pub parent_hash: B256,
    /// Block timestamp, seconds since the Unix epoch.
    pub timestamp: u64,
    /// The block header as canonical RLP.
    pub header_rlp: Bytes,
    /// Each transaction's recovered sender and canonical EIP-2718 encoding
    /// (`type || rlp` for typed transactions, the RLP list for legacy ones).
    pub transactions: Vec<(Address, Bytes)>,
    /// Each receipt's canonical EIP-2718 encoding (as hashed into `receiptsRoot`).
    pub receipts: Vec<Bytes>,
}

/// A decoded envelope that owns its bytes: see [`crate::decode_owned`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Commit or revert.
    pub kind: EventKind,
    /// The block.
    pub block: ChainBlock,
}
