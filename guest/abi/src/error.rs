//! The error type of the envelope codec.

use alloy_primitives::B256;

/// Result alias of this crate.
pub type Result<T, E = AbiError> = core::result::Result<T, E>;

/// Why an envelope could not be encoded, decoded or verified.
///
/// Decoding never panics: every malformed input maps to one of these variants, naming the
/// byte offset or the part (`what` + `index`) that failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AbiError {
    /// The input ended early: `need` more bytes were required at offset `at`.
    #[error("envelope truncated: {need} bytes needed at offset {at}")]
    Truncated {
        /// Offset where the read started.
        at: usize,
        /// Bytes the read needed.
        need: usize,
    },
    /// The first four bytes are not [`crate::MAGIC`].
    #[error("not an xxfunc envelope: bad magic {found:#04x?}")]
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// The envelope's version is not one this decoder understands.
    #[error("unsupported envelope version {0} (this decoder reads version {v})", v = crate::VERSION)]
    UnsupportedVersion(u16),
    /// The event kind byte is neither commit (1) nor revert (2).
    #[error("bad event kind {0} (expected 1 = commit or 2 = revert)")]
    BadKind(u8),
    /// The reserved byte at offset 7 is not zero.
    #[error("reserved header byte is {0:#04x}, must be 0")]
    BadReserved(u8),
    /// Bytes remain after the last receipt.
    #[error("{count} trailing bytes after the envelope at offset {at}")]
    TrailingBytes {
        /// Offset of the first trailing byte.
        at: usize,
        /// Number of trailing bytes.
        count: usize,
    },
    /// The number of receipts differs from the number of transactions.
    #[error("{transactions} transactions but {receipts} receipts")]
    CountMismatch {
        /// Transactions in the block.
        transactions: usize,
        /// Receipts in the block.
        receipts: usize,
    },
    /// A part does not fit a `u32` length prefix.
    #[error("{what} is {len} bytes, over the u32 length limit")]
    TooLarge {
        /// Which part.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// A part is not the canonical RLP (or EIP-2718) shape it must have.
    #[error("invalid RLP in {what} {index}: {reason}")]
    InvalidRlp {
        /// `"header"`, `"transaction"` or `"receipt"`.
        what: &'static str,
        /// Index of the part (0 for the header).
        index: usize,
        /// What the RLP decoder said.
        reason: String,
    },
    /// A fixed-header field disagrees with the block header it summarises.
    #[error("envelope {field} {envelope} disagrees with the block header's {header}")]
    Inconsistent {
        /// The field name (`"hash"`, `"number"`, `"parent hash"`, `"timestamp"`).
        field: &'static str,
        /// The value in the fixed header.
        envelope: String,
        /// The value in the block header.
        header: String,
    },
}

impl AbiError {
    pub(crate) fn invalid_rlp(what: &'static str, index: usize, reason: impl ToString) -> Self {
        Self::InvalidRlp {
            what,
            index,
            reason: reason.to_string(),
        }
    }

    pub(crate) fn inconsistent_hash(envelope: B256, header: B256) -> Self {
        Self::Inconsistent {
            field: "hash",
            envelope: envelope.to_string(),
            header: header.to_string(),
        }
    }
}
