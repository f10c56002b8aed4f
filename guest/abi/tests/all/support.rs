//! Blocks shared by the tests, built from real encodings via the consensus conversion.

use alloy_consensus::{
    Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Signed, TxEip1559, TxEnvelope,
    TxLegacy,
};
use alloy_primitives::{Address, B256, Bytes, Log, Signature, TxKind, U256, address, b256};
use std::path::PathBuf;
use xxfunc_abi::ChainBlock;

/// A block with a legacy and an EIP-1559 transaction and their receipts.
pub fn sample_block() -> ChainBlock {
    let header = Header {
        number: 1234,
        parent_hash: b256!("0x1111111111111111111111111111111111111111111111111111111111111111"),
        timestamp: 1_700_000_123,
        gas_limit: 30_000_000,
        base_fee_per_gas: Some(7),
        ..Default::default()
    };
    let sig = Signature::new(U256::from(1u8), U256::from(2u8), false);
    let legacy = TxEnvelope::Legacy(Signed::new_unhashed(
        TxLegacy {
            chain_id: Some(31337),
            nonce: 3,
            gas_price: 10,
            gas_limit: 21_000,
            to: TxKind::Call(address!("0x00000000000000000000000000000000000000aa")),
            value: U256::from(5u8),
            input: Bytes::new(),
        },
        sig,
    ));
    let dynamic = TxEnvelope::Eip1559(Signed::new_unhashed(
        TxEip1559 {
            chain_id: 31337,
            nonce: 4,
            gas_limit: 60_000,
            max_fee_per_gas: 20,
            max_priority_fee_per_gas: 1,
            to: TxKind::Create,
            value: U256::ZERO,
            input: Bytes::from_static(&[0x60, 0x00, 0x60, 0x00]),
            access_list: Default::default(),
        },
        sig,
    ));
    let log = Log::new_unchecked(
        address!("0x00000000000000000000000000000000000000bb"),
        vec![B256::repeat_byte(0xdd)],
        Bytes::from_static(b"data"),
    );
    let receipt = |status: bool, gas: u64, logs: Vec<Log>| {
        ReceiptWithBloom::from(Receipt {
            status: Eip658Value::Eip658(status),
            cumulative_gas_used: gas,
            logs,
        })
    };
    let receipts = [
        ReceiptEnvelope::Legacy(receipt(true, 21_000, vec![log])),
        ReceiptEnvelope::Eip1559(receipt(false, 80_000, vec![])),
    ];
    let senders = [Address::repeat_byte(0x01), Address::repeat_byte(0x02)];
    let txs = [legacy, dynamic];
    ChainBlock::from_consensus(31337, &header, senders.into_iter().zip(&txs), &receipts)
}

/// `../shared/chain-data` beside the repository, if present.
pub fn chain_data_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XXFUNC_CHAIN_DATA") {
        return Some(PathBuf::from(dir));
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let manifest = manifest.canonicalize().unwrap_or(manifest);
    let dir = manifest.join("../../../shared/chain-data");
    dir.join("data").is_dir().then_some(dir)
}
