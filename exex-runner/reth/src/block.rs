//! reth's blocks as the runner's [`ChainBlock`]s, and the node's database as the runner's
//! history for functions that backfill.

use std::sync::Arc;

use alloy_consensus::TxReceipt;
use reth_ethereum::{
    Block, Receipt,
    primitives::RecoveredBlock,
    provider::{BlockReader, ReceiptProvider, TransactionVariant},
};
use xxfunc_abi::ChainBlock;
use xxfunc_runner::{BlockSource, RunnerError};

/// The runner's view of one block: canonical header RLP, EIP-2718 transactions with their
/// recovered senders, EIP-2718 receipts with bloom (xxfunc-abi builds and hashes it).
pub(crate) fn chain_block(
    chain_id: u64,
    block: &RecoveredBlock<Block>,
    receipts: &[Receipt],
) -> ChainBlock {
    let with_bloom: Vec<_> = receipts.iter().map(|r| r.with_bloom_ref()).collect();
    let converted = ChainBlock::from_consensus(
        chain_id,
        block.sealed_block().header(),
        block
            .transactions_with_sender()
            .map(|(sender, tx)| (*sender, tx)),
        with_bloom.iter(),
    );
    debug_assert_eq!(
        converted.hash,
        block.hash(),
        "header RLP hashes to the block hash"
    );
    converted
}

/// Canonical blocks read from the node's database (block with senders, then receipts).
pub(crate) struct ProviderBlocks<P> {
    provider: P,
    chain_id: u64,
}

impl<P> ProviderBlocks<P> {
    pub(crate) fn new(provider: P, chain_id: u64) -> Self {
        Self { provider, chain_id }
    }
}

impl<P> BlockSource for ProviderBlocks<P>
where
    P: BlockReader<Block = Block> + ReceiptProvider<Receipt = Receipt> + Send + Sync,
{
    fn block(&self, number: u64) -> xxfunc_runner::Result<Option<Arc<ChainBlock>>> {
        let Some(block) = self
            .provider
            .recovered_block(number.into(), TransactionVariant::WithHash)
            .map_err(|e| read_error("the body", number, e))?
        else {
            return Ok(None);
        };
        let Some(receipts) = self
            .provider
            .receipts_by_block(number.into())
            .map_err(|e| read_error("the receipts", number, e))?
        else {
            return Ok(None);
        };
        Ok(Some(Arc::new(chain_block(
            self.chain_id,
            &block,
            &receipts,
        ))))
    }
}

/// A provider failure while reading `what` of block `number`, kept as the error's source.
fn read_error<E>(what: &str, number: u64, error: E) -> RunnerError
where
    E: std::error::Error + Send + Sync + 'static,
{
    RunnerError::chain_source(
        format!("reading {what} of block {number} from the node"),
        error,
    )
}
