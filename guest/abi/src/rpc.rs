//! Building a [`ChainBlock`] from JSON-RPC results (feature `rpc`).
//!
//! The input is what a node answers to `eth_getBlockByNumber(n, true)` and
//! `eth_getBlockReceipts(n)`. The runner's JSON-RPC follower and the fixture recorder both
//! go through [`ChainBlock::from_rpc`], so replayed fixtures and a live node give the same
//! envelopes byte for byte.
//!
//! Every conversion is checked against the hashes the node reported: the header RLP must
//! hash to the block hash, each transaction encoding to its transaction hash, and each
//! receipt must name the transaction at its index. A mismatch is an error, never a
//! silently wrong envelope.

use crate::block::ChainBlock;
use alloy_consensus::TxEnvelope;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, keccak256};
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Transaction, TransactionReceipt};

/// Why JSON-RPC results could not be turned into a [`ChainBlock`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A JSON value did not deserialize into the expected RPC type.
    #[error("cannot parse {what} as a JSON-RPC result: {source}")]
    Json {
        /// `"block"` or `"receipts"`.
        what: &'static str,
        /// The serde error.
        source: serde_json::Error,
    },
    /// The node answered `null` (block not found yet).
    #[error("{what} is null (not available on the node)")]
    Null {
        /// `"block"` or `"receipts"`.
        what: &'static str,
    },
    /// The block lists only transaction hashes: it was fetched without `full = true`.
    #[error("block {number} lists only transaction hashes; fetch it with full transactions")]
    NotFull {
        /// Block number.
        number: u64,
    },
    /// Receipts and transactions differ in number.
    #[error("block {number} has {transactions} transactions but {receipts} receipts")]
    ReceiptCount {
        /// Block number.
        number: u64,
        /// Transactions in the block.
        transactions: usize,
        /// Receipts given.
        receipts: usize,
    },
    /// The canonical header RLP does not hash to the reported block hash.
    #[error("block {number}: header RLP hashes to {computed}, node reported {reported}")]
    HeaderHash {
        /// Block number.
        number: u64,
        /// Hash the node reported.
        reported: B256,
        /// keccak256 of the header RLP built here.
        computed: B256,
    },
    /// A transaction's canonical encoding does not hash to its reported hash.
    #[error(
        "block {number} transaction {index}: encoding hashes to {computed}, node reported {reported}"
    )]
    TransactionHash {
        /// Block number.
        number: u64,
        /// Index in the block.
        index: usize,
        /// Hash the node reported.
        reported: B256,
        /// keccak256 of the encoding built here.
        computed: B256,
    },
    /// The receipt at an index belongs to another transaction.
    #[error("block {number} receipt {index} is for transaction {found}, expected {expected}")]
    ReceiptOrder {
        /// Block number.
        number: u64,
        /// Index in the block.
        index: usize,
        /// The transaction hash at that index.
        expected: B256,
        /// The receipt's transaction hash.
        found: B256,
    },
}

/// The header's canonical RLP, as hashed into the block hash.
pub fn header_rlp(header: &Header) -> Bytes {
    let mut out = Vec::with_capacity(alloy_rlp::Encodable::length(&header.inner));
    alloy_rlp::Encodable::encode(&header.inner, &mut out);
    out.into()
}

/// A transaction's sender and canonical EIP-2718 encoding.
pub fn transaction(tx: &Transaction) -> (Address, Bytes) {
    let envelope: &TxEnvelope = tx.inner.inner();
    (tx.inner.signer(), envelope.encoded_2718().into())
}

/// A receipt's canonical EIP-2718 encoding (status or state root, cumulative gas, bloom,
/// logs), as hashed into `receiptsRoot`.
pub fn receipt(receipt: &TransactionReceipt) -> Bytes {
    let consensus = receipt.inner.clone().into_primitives_receipt();
    consensus.encoded_2718().into()
}

impl ChainBlock {
    /// Builds a block from `eth_getBlockByNumber(n, true)` and `eth_getBlockReceipts(n)`.
    ///
    /// # Errors
    ///
    /// [`ConvertError`] when the block lacks full transactions, the receipt count differs,
    /// or any reported hash disagrees with the canonical encodings.
    pub fn from_rpc(
        chain_id: u64,
        block: &Block,
        receipts: &[TransactionReceipt],
    ) -> Result<Self, ConvertError> {
        let number = block.header.number;
        let BlockTransactions::Full(txs) = &block.transactions else {
            // An empty `transactions` list deserializes as hashes; that is a full empty block.
            if block.transactions.is_empty() && receipts.is_empty() {
                return Self::assemble(chain_id, block, Vec::new(), Vec::new());
            }
            return Err(ConvertError::NotFull { number });
        };
        if txs.len() != receipts.len() {
            return Err(ConvertError::ReceiptCount {
                number,
                transactions: txs.len(),
                receipts: receipts.len(),
            });
        }
        let mut transactions = Vec::with_capacity(txs.len());
        let mut encoded_receipts = Vec::with_capacity(receipts.len());
        for (index, (tx, rcpt)) in txs.iter().zip(receipts).enumerate() {
            let (sender, encoded) = transaction(tx);
            let reported = *tx.inner.tx_hash();
            let computed = keccak256(&encoded);
            if computed != reported {
                return Err(ConvertError::TransactionHash {
                    number,
                    index,
                    reported,
                    computed,
                });
            }
            if rcpt.transaction_hash != reported {
                return Err(ConvertError::ReceiptOrder {
                    number,
                    index,
                    expected: reported,
                    found: rcpt.transaction_hash,
                });
            }
            transactions.push((sender, encoded));
            encoded_receipts.push(receipt(rcpt));
        }
        Self::assemble(chain_id, block, transactions, encoded_receipts)
    }

    fn assemble(
        chain_id: u64,
        block: &Block,
        transactions: Vec<(Address, Bytes)>,
        receipts: Vec<Bytes>,
    ) -> Result<Self, ConvertError> {
        let header = &block.header;
        let header_rlp = header_rlp(header);
        let computed = keccak256(&header_rlp);
        if computed != header.hash {
            return Err(ConvertError::HeaderHash {
                number: header.number,
                reported: header.hash,
                computed,
            });
        }
        Ok(Self {
            chain_id,
            number: header.number,
            hash: header.hash,
            parent_hash: header.parent_hash,
            timestamp: header.timestamp,
            header_rlp,
            transactions,
            receipts,
        })
    }

    /// Like [`ChainBlock::from_rpc`], from the raw JSON `result` values of the two calls.
    ///
    /// # Errors
    ///
    /// [`ConvertError::Null`] for a `null` result, [`ConvertError::Json`] when a value does
    /// not parse, then as [`ChainBlock::from_rpc`].
    pub fn from_rpc_json(
        chain_id: u64,
        block: serde_json::Value,
        receipts: serde_json::Value,
    ) -> Result<Self, ConvertError> {
        if block.is_null() {
            return Err(ConvertError::Null { what: "block" });
        }
        if receipts.is_null() {
            return Err(ConvertError::Null { what: "receipts" });
        }
        let block: Block = serde_json::from_value(block).map_err(|source| ConvertError::Json {
            what: "block",
            source,
        })?;
        let receipts: Vec<TransactionReceipt> =
            serde_json::from_value(receipts).map_err(|source| ConvertError::Json {
                what: "receipts",
                source,
            })?;
        Self::from_rpc(chain_id, &block, &receipts)
    }
}
