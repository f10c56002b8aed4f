//! Every block in `../shared/chain-data` (real mainnet blocks and the hive chain through
//! Prague and beyond) converts from JSON-RPC into an envelope whose parts are canonical:
//! the header RLP hashes to the block hash, the transaction and receipt encodings rebuild
//! `transactionsRoot` and `receiptsRoot`, and every part decodes and re-encodes identically.

use crate::support::chain_data_dir;
use alloy_consensus::Eip658Value;
use alloy_consensus::proofs::ordered_trie_root_with_encoder;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Bytes, keccak256};
use alloy_rpc_types_eth::{Block, BlockTransactions, TransactionReceipt};
use std::collections::BTreeSet;
use std::path::Path;
use xxfunc_abi::{ChainBlock, EventKind, decode, encode, rpc};

const HIVE_CHAIN_ID: u64 = 3_503_995_874_084_926;

#[derive(Default)]
struct Coverage {
    blocks: usize,
    with_receipts: usize,
    tx_types: BTreeSet<u8>,
    post_state_receipts: usize,
    status_receipts: usize,
    logs: usize,
    base_fee: usize,
    withdrawals_root: usize,
    blob_gas: usize,
    requests_hash: usize,
}

fn trie_root(parts: &[Bytes]) -> B256 {
    ordered_trie_root_with_encoder(parts, |p: &Bytes, buf| buf.extend_from_slice(p))
}

fn check_file(path: &Path, chain_id: u64, cov: &mut Coverage) {
    let name = path.display();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut json: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let block_json = json["block"].take();
    let receipts_json = json["receipts"].take();
    let block: Block =
        serde_json::from_value(block_json.clone()).unwrap_or_else(|e| panic!("{name}: block: {e}"));
    let header = &block.header.inner;
    cov.blocks += 1;
    cov.base_fee += usize::from(header.base_fee_per_gas.is_some());
    cov.withdrawals_root += usize::from(header.withdrawals_root.is_some());
    cov.blob_gas += usize::from(header.blob_gas_used.is_some());
    cov.requests_hash += usize::from(header.requests_hash.is_some());

    // Header and transactions on their own (some blocks have no receipts).
    let header_rlp = rpc::header_rlp(&block.header);
    assert_eq!(
        keccak256(&header_rlp),
        block.header.hash,
        "{name}: header RLP hash"
    );
    let txs: Vec<(alloy_primitives::Address, Bytes)> = match &block.transactions {
        BlockTransactions::Full(txs) => txs.iter().map(rpc::transaction).collect(),
        other => {
            assert!(
                other.is_empty(),
                "{name}: block must carry full transactions"
            );
            Vec::new()
        }
    };
    let reported: Vec<B256> = block.transactions.hashes().collect();
    for (i, ((sender, encoded), hash)) in txs.iter().zip(&reported).enumerate() {
        assert_eq!(keccak256(encoded), *hash, "{name}: tx {i} hash");
        let raw = block_json["transactions"][i]["from"]
            .as_str()
            .expect("from");
        assert_eq!(
            sender.to_string().to_lowercase(),
            raw.to_lowercase(),
            "{name}: tx {i} sender"
        );
    }
    let encoded_txs: Vec<Bytes> = txs.iter().map(|(_, t)| t.clone()).collect();
    assert_eq!(
        trie_root(&encoded_txs),
        header.transactions_root,
        "{name}: transactionsRoot"
    );

    if receipts_json.is_null() {
        return;
    }
    cov.with_receipts += 1;
    let receipts: Vec<TransactionReceipt> = serde_json::from_value(receipts_json.clone())
        .unwrap_or_else(|e| panic!("{name}: receipts: {e}"));
    let chain_block = ChainBlock::from_rpc(chain_id, &block, &receipts)
        .unwrap_or_else(|e| panic!("{name}: from_rpc: {e}"));
    let via_json = ChainBlock::from_rpc_json(chain_id, block_json, receipts_json)
        .unwrap_or_else(|e| panic!("{name}: from_rpc_json: {e}"));
    assert_eq!(
        chain_block, via_json,
        "{name}: typed and JSON conversions agree"
    );
    assert_eq!(chain_block.header_rlp, header_rlp);
    assert_eq!(chain_block.transactions, txs);
    assert_eq!(
        trie_root(&chain_block.receipts),
        header.receipts_root,
        "{name}: receiptsRoot"
    );

    for kind in [EventKind::Commit, EventKind::Revert] {
        let bytes = encode(kind, &chain_block).unwrap_or_else(|e| panic!("{name}: encode: {e}"));
        let env = decode(&bytes).unwrap_or_else(|e| panic!("{name}: decode: {e}"));
        env.verify()
            .unwrap_or_else(|e| panic!("{name}: verify: {e}"));
        assert_eq!(env.kind(), kind);
        assert_eq!(
            env.decode_header().expect("header decodes"),
            *header,
            "{name}"
        );
        if kind == EventKind::Revert {
            continue;
        }
        for (tx, hash) in env.transactions().zip(&reported) {
            assert_eq!(tx.hash(), *hash, "{name}: tx {} hash", tx.index);
            let decoded = tx.decode().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                decoded.encoded_2718(),
                tx.encoded,
                "{name}: tx {} re-encodes",
                tx.index
            );
            assert_eq!(decoded.tx_type() as u8, tx.tx_type());
            cov.tx_types.insert(tx.tx_type());
        }
        for (raw, rpc_receipt) in env.receipts().zip(&receipts) {
            let decoded = raw.decode().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(
                decoded.encoded_2718(),
                raw.encoded,
                "{name}: receipt {} re-encodes",
                raw.index
            );
            assert_eq!(
                decoded.cumulative_gas_used(),
                rpc_receipt.inner.cumulative_gas_used()
            );
            assert_eq!(decoded.logs().len(), rpc_receipt.inner.logs().len());
            cov.logs += decoded.logs().len();
            match decoded.as_receipt().map(|r| r.status) {
                Some(Eip658Value::PostState(_)) => cov.post_state_receipts += 1,
                Some(Eip658Value::Eip658(_)) => cov.status_receipts += 1,
                None => panic!("{name}: receipt without inner receipt"),
            }
        }
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_recorded_block_converts_canonically() {
    let Some(dir) = chain_data_dir() else {
        println!("skipping chain-data conformance: ../shared/chain-data not found");
        return;
    };
    let mut cov = Coverage::default();
    for path in files(&dir.join("data/mainnet")) {
        check_file(&path, 1, &mut cov);
    }
    for path in files(&dir.join("data/hive")) {
        check_file(&path, HIVE_CHAIN_ID, &mut cov);
    }
    println!(
        "chain-data: {} blocks ({} with receipts), tx types {:?}, {} pre-Byzantium and {} status receipts, {} logs",
        cov.blocks,
        cov.with_receipts,
        cov.tx_types,
        cov.post_state_receipts,
        cov.status_receipts,
        cov.logs
    );
    assert_eq!(cov.blocks, 136, "all 136 blocks checked");
    assert_eq!(cov.tx_types, BTreeSet::from([0, 1, 2, 3, 4]));
    assert!(cov.post_state_receipts > 0 && cov.status_receipts > 0);
    assert!(cov.logs > 10_041, "the Merge block alone has 10,041 logs");
    assert!(
        cov.base_fee > 0 && cov.withdrawals_root > 0 && cov.blob_gas > 0 && cov.requests_hash > 0
    );
}

#[test]
fn rpc_conversion_rejects_inconsistent_input() {
    let Some(dir) = chain_data_dir() else {
        println!("skipping: ../shared/chain-data not found");
        return;
    };
    let text = std::fs::read_to_string(dir.join("data/mainnet/22869878.json")).expect("block file");
    let json: serde_json::Value = serde_json::from_str(&text).expect("json");
    let block: Block = serde_json::from_value(json["block"].clone()).expect("block");
    let receipts: Vec<TransactionReceipt> =
        serde_json::from_value(json["receipts"].clone()).expect("receipts");
    assert!(ChainBlock::from_rpc(1, &block, &receipts).is_ok());

    let mut wrong_hash = block.clone();
    wrong_hash.header.hash = B256::ZERO;
    assert!(matches!(
        ChainBlock::from_rpc(1, &wrong_hash, &receipts),
        Err(rpc::ConvertError::HeaderHash { .. })
    ));
    assert!(matches!(
        ChainBlock::from_rpc(1, &block, &receipts[1..]),
        Err(rpc::ConvertError::ReceiptCount { .. })
    ));
    let mut swapped = receipts.clone();
    swapped.swap(0, 1);
    assert!(matches!(
        ChainBlock::from_rpc(1, &block, &swapped),
        Err(rpc::ConvertError::ReceiptOrder { index: 0, .. })
    ));
    let mut hashes_only = block.clone();
    hashes_only.transactions = BlockTransactions::Hashes(block.transactions.hashes().collect());
    assert!(matches!(
        ChainBlock::from_rpc(1, &hashes_only, &receipts),
        Err(rpc::ConvertError::NotFull { .. })
    ));
    assert!(matches!(
        ChainBlock::from_rpc_json(1, serde_json::Value::Null, serde_json::json!([])),
        Err(rpc::ConvertError::Null { what: "block" })
    ));
    assert!(matches!(
        ChainBlock::from_rpc_json(
            1,
            serde_json::json!({"number": "zz"}),
            serde_json::json!([])
        ),
        Err(rpc::ConvertError::Json { what: "block", .. })
    ));
}
