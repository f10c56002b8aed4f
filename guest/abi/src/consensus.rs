//! Building a [`ChainBlock`] from alloy consensus types (what a reth adapter holds).

use crate::block::ChainBlock;
use alloy_consensus::Header;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, keccak256};

impl ChainBlock {
    /// Builds a block from a consensus header, the transactions with their recovered
    /// senders, and the receipts (anything with a canonical EIP-2718 encoding, e.g.
    /// `TxEnvelope` and `ReceiptEnvelope`).
    ///
    /// The hash is computed from the header's canonical RLP, so it is correct by
    /// construction. The caller passes receipts in transaction order.
    pub fn from_consensus<'t, T, R>(
        chain_id: u64,
        header: &Header,
        transactions: impl IntoIterator<Item = (Address, &'t T)>,
        receipts: impl IntoIterator<Item = &'t R>,
    ) -> Self
    where
        T: Encodable2718 + 't,
        R: Encodable2718 + 't,
    {
        let mut header_rlp = Vec::with_capacity(alloy_rlp::Encodable::length(header));
        alloy_rlp::Encodable::encode(header, &mut header_rlp);
        Self {
            chain_id,
            number: header.number,
            hash: keccak256(&header_rlp),
            parent_hash: header.parent_hash,
            timestamp: header.timestamp,
            header_rlp: header_rlp.into(),
            transactions: transactions
                .into_iter()
                .map(|(sender, tx)| (sender, Bytes::from(tx.encoded_2718())))
                .collect(),
            receipts: receipts
                .into_iter()
                .map(|r| Bytes::from(r.encoded_2718()))
                .collect(),
        }
    }
}
