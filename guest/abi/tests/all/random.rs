//! Random and mutated inputs never panic the decoder or the lazy accessors.

use crate::support::sample_block;
use xxfunc_abi::{EventKind, decode, encode};

/// SplitMix64: small, deterministic, good enough to drive a fuzz loop.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Decodes, and when it succeeds, walks and decodes every part.
fn exercise(bytes: &[u8]) -> bool {
    let Ok(env) = decode(bytes) else { return false };
    let _ = env.verify();
    let _ = env.decode_header();
    assert_eq!(env.transactions().count(), env.transaction_count());
    assert_eq!(env.receipts().count(), env.receipt_count());
    for tx in env.transactions() {
        let _ = (tx.decode(), tx.hash(), tx.tx_type());
    }
    for receipt in env.receipts() {
        let _ = receipt.decode();
    }
    let _ = env.to_envelope();
    true
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(1);
    for _ in 0..20_000 {
        let len = rng.below(300);
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Give half of them a valid prefix so the decoder gets past the magic.
        if len >= 8 && rng.next().is_multiple_of(2) {
            bytes[..4].copy_from_slice(b"XXFN");
            bytes[4..8].copy_from_slice(&[1, 0, 1, 0]);
        }
        exercise(&bytes);
    }
}

#[test]
fn mutated_envelopes_never_panic() {
    let original = encode(EventKind::Commit, &sample_block()).expect("sample encodes");
    let mut rng = Rng(7);
    let mut still_valid = 0;
    for _ in 0..20_000 {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(3) {
                0 => {
                    let i = rng.below(bytes.len());
                    bytes[i] = rng.next() as u8;
                }
                1 => {
                    let i = rng.below(bytes.len());
                    bytes.truncate(i);
                }
                _ => {
                    let i = rng.below(bytes.len() + 1);
                    bytes.insert(i, rng.next() as u8);
                }
            }
            if bytes.is_empty() {
                break;
            }
        }
        still_valid += usize::from(exercise(&bytes));
    }
    // Mutations inside hashes or payload bytes keep the framing valid: both paths ran.
    assert!(
        still_valid > 0 && still_valid < 20_000,
        "valid after mutation: {still_valid}"
    );
}
