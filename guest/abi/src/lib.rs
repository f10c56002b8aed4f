//! The xxfunc event envelope: the binary contract between the runner and guest functions.
//!
//! One invocation of a function receives one *event envelope* on stdin: a fixed 96-byte
//! header (magic, version, event kind, chain id, block number, block hash, parent hash,
//! timestamp) followed by the block header as canonical RLP, the transactions (each with
//! its recovered sender and its canonical EIP-2718 encoding) and the receipts (canonical
//! EIP-2718 receipt encodings), all framed with `u32` little-endian length prefixes so any
//! language can walk it. `docs/abi.md` documents it byte by byte.
//!
//! This crate owns the encoding and decoding of that envelope and the conversions that
//! build a [`ChainBlock`] from Ethereum data (alloy consensus types always, JSON-RPC
//! results with the `rpc` feature). It never runs wasm, never does I/O, and never depends
//! on wasmtime or tokio: it builds for `wasm32-wasip1` and is shared by runner and SDK.
//!
//! # API used by the runner
//!
//! ```text
//! pub enum EventKind { Commit = 1, Revert = 2 }                 // xxfunc-primitives'; Display: "commit" / "revert"
//! pub struct ChainBlock {                                        // owned, cheap to clone (Bytes)
//!     pub chain_id: u64, pub number: u64, pub hash: B256, pub parent_hash: B256,
//!     pub timestamp: u64,
//!     pub header_rlp: Bytes,                    // canonical RLP; keccak256(header_rlp) == hash
//!     pub transactions: Vec<(Address, Bytes)>,  // (sender, canonical EIP-2718 encoding)
//!     pub receipts: Vec<Bytes>,                 // canonical EIP-2718 receipt encodings, same order
//! }
//! ChainBlock::from_consensus(chain_id, &Header, txs: (Address, &impl Encodable2718), receipts: &impl Encodable2718)
//! ChainBlock::from_rpc(chain_id, &rpc::Block, &[rpc::TransactionReceipt]) -> Result<_, ConvertError>   // feature "rpc"
//! ChainBlock::from_rpc_json(chain_id, serde_json::Value, serde_json::Value) -> Result<_, ConvertError> // feature "rpc"
//!
//! encoded_len(&ChainBlock) -> usize
//! encode_into(EventKind, &ChainBlock, &mut Vec<u8>) -> Result<(), AbiError>  // appends; one reserve
//! encode(EventKind, &ChainBlock) -> Result<Vec<u8>, AbiError>
//! decode(&[u8]) -> Result<EnvelopeRef<'_>, AbiError>          // zero-copy, validates framing + RLP shape
//! decode_owned(&[u8]) -> Result<Envelope, AbiError>           // Envelope { kind, block: ChainBlock }
//! ```
//!
//! `encode_into` fails only when the block cannot be framed: more receipts than
//! transactions or the reverse ([`AbiError::CountMismatch`]), or a part over `u32::MAX`
//! bytes. It never re-encodes RLP: the runner encodes one envelope per block and hands the
//! same bytes to every function.
//!
//! # Example
//!
//! ```
//! use xxfunc_abi::{ChainBlock, EventKind, decode, encode};
//! # use alloy_consensus::Header;
//! # use alloy_rlp::Encodable;
//! let header = Header { number: 7, timestamp: 1_700_000_000, ..Default::default() };
//! let block = ChainBlock::from_consensus::<alloy_consensus::TxEnvelope, alloy_consensus::ReceiptEnvelope>(
//!     31337, &header, [], [],
//! );
//! let bytes = encode(EventKind::Commit, &block)?;
//! let envelope = decode(&bytes)?;
//! assert_eq!(envelope.kind(), EventKind::Commit);
//! assert_eq!(envelope.number(), 7);
//! assert_eq!(envelope.hash(), header.hash_slow());
//! assert_eq!(envelope.transaction_count(), 0);
//! envelope.verify()?;
//! # Ok::<(), xxfunc_abi::AbiError>(())
//! ```

mod block;
mod codec;
mod consensus;
mod error;
mod rlp_shape;
#[cfg(feature = "rpc")]
pub mod rpc;

pub use alloy_primitives::{Address, B256, Bytes};
pub use block::{ChainBlock, Envelope, EventKind};
pub use codec::{
    EnvelopeRef, FIXED_HEADER_LEN, MAGIC, RawReceipt, RawTransaction, Receipts, Transactions,
    VERSION, decode, decode_owned, encode, encode_into, encoded_len,
};
pub use error::{AbiError, Result};
#[cfg(feature = "rpc")]
pub use rpc::ConvertError;
