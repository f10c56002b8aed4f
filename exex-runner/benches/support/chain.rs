//! A generated chain for the benchmarks: `len` empty blocks from 1, each linked to its
//! parent.

use alloy_primitives::Bytes;
use xxfunc_abi::ChainBlock;

/// Blocks 1..=`len` of a generated chain (chain id 31337).
pub fn blocks(len: u64) -> Vec<ChainBlock> {
    let mut parent_hash = alloy_primitives::B256::ZERO;
    (1..=len)
        .map(|number| {
            let header = alloy_consensus::Header {
                number,
                parent_hash,
                timestamp: 1_700_000_000 + number * 12,
                extra_data: Bytes::new(),
                ..Default::default()
            };
            let block = ChainBlock::from_consensus::<
                alloy_consensus::TxEnvelope,
                alloy_consensus::ReceiptEnvelope,
            >(31337, &header, [], []);
            parent_hash = block.hash;
            block
        })
        .collect()
}
