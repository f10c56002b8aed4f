//! The owned block and event types.

use alloy_primitives::{Address, B256, Bytes};
pub use xxfunc_primitives::EventKind;

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
