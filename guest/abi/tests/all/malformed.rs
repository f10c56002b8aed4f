use crate::support::sample_block;
use xxfunc_abi::{AbiError, EventKind, decode, encode};

fn sample() -> Vec<u8> {
    encode(EventKind::Commit, &sample_block()).expect("sample block encodes")
}

#[test]
fn truncated_at_every_offset_is_a_typed_error() {
    let bytes = sample();
    for len in 0..bytes.len() {
        match decode(&bytes[..len]) {
            Err(AbiError::Truncated { at, need }) => {
                assert!(
                    at <= len && at + need > len,
                    "len {len}: at {at} need {need}"
                )
            }
            // Cutting inside an RLP item can also surface as a shape error first.
            Err(AbiError::InvalidRlp { .. }) => {}
            other => panic!("prefix of {len} bytes: expected Truncated, got {other:?}"),
        }
    }
    assert!(decode(&bytes).is_ok());
}

#[test]
fn empty_input_is_truncated() {
    assert_eq!(decode(&[]), Err(AbiError::Truncated { at: 0, need: 4 }));
}

#[test]
fn wrong_magic() {
    let mut bytes = sample();
    bytes[0] = b'Y';
    assert_eq!(decode(&bytes), Err(AbiError::BadMagic { found: *b"YXFN" }));
}

#[test]
fn wrong_version() {
    let mut bytes = sample();
    bytes[4..6].copy_from_slice(&2u16.to_le_bytes());
    assert_eq!(decode(&bytes), Err(AbiError::UnsupportedVersion(2)));
    bytes[4..6].copy_from_slice(&0u16.to_le_bytes());
    assert_eq!(decode(&bytes), Err(AbiError::UnsupportedVersion(0)));
}

#[test]
fn wrong_kind_and_reserved() {
    let mut bytes = sample();
    bytes[6] = 0;
    assert_eq!(decode(&bytes), Err(AbiError::BadKind(0)));
    bytes[6] = 3;
    assert_eq!(decode(&bytes), Err(AbiError::BadKind(3)));
    bytes[6] = 1;
    bytes[7] = 9;
    assert_eq!(decode(&bytes), Err(AbiError::BadReserved(9)));
}

#[test]
fn trailing_bytes() {
    let mut bytes = sample();
    let len = bytes.len();
    bytes.extend_from_slice(&[0, 0]);
    assert_eq!(
        decode(&bytes),
        Err(AbiError::TrailingBytes { at: len, count: 2 })
    );
}

#[test]
fn receipt_count_mismatch() {
    let block = sample_block();
    let bytes = sample();
    // The receipt count sits right after the last transaction.
    let tx_bytes: usize = block.transactions.iter().map(|(_, t)| 24 + t.len()).sum();
    let at = 100 + block.header_rlp.len() + 4 + tx_bytes;
    let mut bad = bytes.clone();
    bad[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
    assert_eq!(
        decode(&bad),
        Err(AbiError::CountMismatch {
            transactions: 2,
            receipts: 1
        })
    );
}

#[test]
fn garbage_rlp_in_each_part() {
    let block = sample_block();
    let mut header = block.clone();
    header.header_rlp = vec![0x83, 1, 2, 3].into(); // a string, not a list
    let bytes = encode(EventKind::Commit, &header).expect("encodes");
    assert!(matches!(
        decode(&bytes),
        Err(AbiError::InvalidRlp {
            what: "header",
            index: 0,
            ..
        })
    ));

    let mut tx = block.clone();
    tx.transactions[1].1 = vec![0x02, 0xc5, 1].into(); // list longer than its bytes
    let bytes = encode(EventKind::Commit, &tx).expect("encodes");
    assert!(matches!(
        decode(&bytes),
        Err(AbiError::InvalidRlp {
            what: "transaction",
            index: 1,
            ..
        })
    ));

    let mut receipt = block.clone();
    receipt.receipts[0] = vec![0x99].into(); // neither a type byte nor a list
    let bytes = encode(EventKind::Commit, &receipt).expect("encodes");
    assert!(matches!(
        decode(&bytes),
        Err(AbiError::InvalidRlp {
            what: "receipt",
            index: 0,
            ..
        })
    ));

    let mut empty = block;
    empty.receipts[1] = Default::default();
    let bytes = encode(EventKind::Commit, &empty).expect("encodes");
    assert!(matches!(
        decode(&bytes),
        Err(AbiError::InvalidRlp {
            what: "receipt",
            index: 1,
            ..
        })
    ));
}

#[test]
fn well_framed_but_undecodable_parts_fail_typed_decoding() -> Result<(), AbiError> {
    let mut block = sample_block();
    block.transactions[0].1 = vec![0xc3, 0x01, 0x02, 0x03].into(); // a list, not a tx
    block.receipts[0] = vec![0x02, 0xc1, 0x05].into();
    block.header_rlp = vec![0xc1, 0x80].into();
    let bytes = encode(EventKind::Commit, &block)?;
    let env = decode(&bytes)?;
    let tx = env.transactions().next().expect("one transaction");
    assert!(matches!(
        tx.decode(),
        Err(AbiError::InvalidRlp {
            what: "transaction",
            index: 0,
            ..
        })
    ));
    let receipt = env.receipts().next().expect("one receipt");
    assert!(matches!(
        receipt.decode(),
        Err(AbiError::InvalidRlp {
            what: "receipt",
            index: 0,
            ..
        })
    ));
    assert!(matches!(
        env.decode_header(),
        Err(AbiError::InvalidRlp { what: "header", .. })
    ));
    assert!(matches!(
        env.verify(),
        Err(AbiError::Inconsistent { field: "hash", .. })
    ));
    Ok(())
}

#[test]
fn huge_declared_lengths_do_not_allocate_or_panic() {
    let bytes = sample();
    let mut bad = bytes.clone();
    bad[96..100].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode(&bad),
        Err(AbiError::Truncated { at: 100, .. })
    ));
    let header_len = u32::from_le_bytes(bytes[96..100].try_into().unwrap()) as usize;
    let count_at = 100 + header_len;
    bad = bytes;
    bad[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode(&bad).is_err());
}
