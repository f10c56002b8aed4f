use crate::support::sample_block;
use xxfunc_abi::{
    AbiError, ChainBlock, EventKind, FIXED_HEADER_LEN, MAGIC, VERSION, decode, decode_owned,
    encode, encode_into, encoded_len,
};

#[test]
fn commit_and_revert_round_trip() -> Result<(), AbiError> {
    let block = sample_block();
    for kind in [EventKind::Commit, EventKind::Revert] {
        let bytes = encode(kind, &block)?;
        assert_eq!(bytes.len(), encoded_len(&block));
        let env = decode(&bytes)?;
        env.verify()?;
        assert_eq!(env.kind(), kind);
        assert_eq!(env.chain_id(), 31337);
        assert_eq!(env.number(), 1234);
        assert_eq!(env.hash(), block.hash);
        assert_eq!(env.parent_hash(), block.parent_hash);
        assert_eq!(env.timestamp(), 1_700_000_123);
        assert_eq!(env.header_rlp(), &block.header_rlp[..]);
        assert_eq!(env.transaction_count(), 2);
        assert_eq!(env.transactions().len(), 2);
        let txs: Vec<_> = env.transactions().collect();
        assert_eq!(txs[0].tx_type(), 0);
        assert_eq!(txs[1].tx_type(), 2);
        assert_eq!(txs[1].sender, block.transactions[1].0);
        assert_eq!(txs[0].decode()?.tx_hash(), &txs[0].hash());
        let receipts: Vec<_> = env.receipts().collect();
        assert_eq!(receipts[0].decode()?.logs().len(), 1);
        assert!(!receipts[1].decode()?.status());
        let owned = decode_owned(&bytes)?;
        assert_eq!(owned.kind, kind);
        assert_eq!(owned.block, block);
        assert_eq!(
            encode(kind, &owned.block)?,
            bytes,
            "re-encoding is byte-identical"
        );
    }
    Ok(())
}

#[test]
fn fixed_header_layout_is_as_documented() -> Result<(), AbiError> {
    let block = sample_block();
    let bytes = encode(EventKind::Revert, &block)?;
    assert_eq!(&bytes[0..4], &MAGIC);
    assert_eq!(&bytes[0..4], b"XXFN");
    assert_eq!(u16::from_le_bytes([bytes[4], bytes[5]]), VERSION);
    assert_eq!(bytes[6], 2);
    assert_eq!(bytes[7], 0);
    assert_eq!(&bytes[8..16], &31337u64.to_le_bytes());
    assert_eq!(&bytes[16..24], &1234u64.to_le_bytes());
    assert_eq!(&bytes[24..56], block.hash.as_slice());
    assert_eq!(&bytes[56..88], block.parent_hash.as_slice());
    assert_eq!(&bytes[88..96], &1_700_000_123u64.to_le_bytes());
    let header_len = u32::from_le_bytes(bytes[96..100].try_into().unwrap()) as usize;
    assert_eq!(header_len, block.header_rlp.len());
    assert_eq!(&bytes[100..100 + header_len], &block.header_rlp[..]);
    let at = FIXED_HEADER_LEN + 4 + header_len;
    assert_eq!(&bytes[at..at + 4], &2u32.to_le_bytes());
    assert_eq!(&bytes[at + 4..at + 24], block.transactions[0].0.as_slice());
    Ok(())
}

#[test]
fn empty_block_round_trips() -> Result<(), AbiError> {
    let mut block = sample_block();
    block.transactions.clear();
    block.receipts.clear();
    let bytes = encode(EventKind::Commit, &block)?;
    assert_eq!(
        bytes.len(),
        FIXED_HEADER_LEN + 4 + block.header_rlp.len() + 8
    );
    let env = decode(&bytes)?;
    assert_eq!(env.transactions().count(), 0);
    assert_eq!(env.receipts().count(), 0);
    Ok(())
}

#[test]
fn encode_into_appends_and_rejects_count_mismatch_without_writing() -> Result<(), AbiError> {
    let block = sample_block();
    let mut out = b"prefix".to_vec();
    encode_into(EventKind::Commit, &block, &mut out)?;
    assert_eq!(&out[..6], b"prefix");
    decode(&out[6..])?;

    let mut broken = block.clone();
    broken.receipts.pop();
    let mut out = Vec::new();
    assert_eq!(
        encode_into(EventKind::Commit, &broken, &mut out),
        Err(AbiError::CountMismatch {
            transactions: 2,
            receipts: 1
        })
    );
    assert!(out.is_empty());
    Ok(())
}

#[test]
fn verify_catches_inconsistent_fixed_header() -> Result<(), AbiError> {
    let block = sample_block();
    type Mutation = fn(&mut ChainBlock);
    let cases: [(&str, Mutation); 4] = [
        ("hash", |b| b.hash.0[0] ^= 1),
        ("number", |b| b.number += 1),
        ("parent hash", |b| b.parent_hash.0[31] ^= 1),
        ("timestamp", |b| b.timestamp += 1),
    ];
    for (field, mutate) in cases {
        let mut bad = block.clone();
        mutate(&mut bad);
        let bytes = encode(EventKind::Commit, &bad)?;
        let env = decode(&bytes)?;
        match env.verify() {
            Err(AbiError::Inconsistent { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: expected Inconsistent, got {other:?}"),
        }
    }
    Ok(())
}

#[test]
fn event_kind_names() {
    assert_eq!(EventKind::Commit.to_string(), "commit");
    assert_eq!("revert".parse::<EventKind>(), Ok(EventKind::Revert));
    assert!("other".parse::<EventKind>().is_err());
    assert_eq!(EventKind::from_u8(0), None);
    assert_eq!(EventKind::from_u8(3), None);
}
