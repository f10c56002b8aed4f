//! Envelope encoding and zero-copy decoding.
//!
//! Layout (version 1, all integers little-endian):
//!
//! ```text
//! off  size  field
//!   0     4  magic "XXFN"
//!   4     2  version (u16) = 1
//!   6     1  event kind: 1 = commit, 2 = revert
//!   7     1  reserved, 0
//!   8     8  chain id (u64)
//!  16     8  block number (u64)
//!  24    32  block hash
//!  56    32  parent hash
//!  88     8  timestamp (u64)
//!  96     4  header length H (u32), then H bytes of header RLP
//!   .     4  transaction count T (u32), then T times:
//!              20 bytes sender, u32 length L, L bytes EIP-2718 encoding
//!   .     4  receipt count R (u32, R == T), then R times:
//!              u32 length L, L bytes EIP-2718 receipt encoding
//! ```

use crate::block::{ChainBlock, Envelope, EventKind};
use crate::error::{AbiError, Result};
use crate::rlp_shape::{check_2718, check_list};
use alloy_consensus::{Header, ReceiptEnvelope, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bytes, keccak256};

/// The four bytes every envelope starts with.
pub const MAGIC: [u8; 4] = *b"XXFN";
/// The envelope version this crate writes and reads.
pub const VERSION: u16 = 1;
/// Size of the fixed header, before the header RLP's length prefix.
pub const FIXED_HEADER_LEN: usize = 96;

const SENDER_LEN: usize = 20;
const PREFIX_LEN: usize = 4;

fn prefix(what: &'static str, len: usize) -> Result<[u8; 4]> {
    u32::try_from(len)
        .map(u32::to_le_bytes)
        .map_err(|_| AbiError::TooLarge { what, len })
}

/// Exact size in bytes of the envelope [`encode_into`] writes for `block`.
pub fn encoded_len(block: &ChainBlock) -> usize {
    FIXED_HEADER_LEN
        + PREFIX_LEN
        + block.header_rlp.len()
        + PREFIX_LEN
        + block
            .transactions
            .iter()
            .map(|(_, tx)| SENDER_LEN + PREFIX_LEN + tx.len())
            .sum::<usize>()
        + PREFIX_LEN
        + block
            .receipts
            .iter()
            .map(|r| PREFIX_LEN + r.len())
            .sum::<usize>()
}

/// Appends the envelope of `block` as a `kind` event to `out`.
///
/// Reserves the exact size once and copies the already-canonical parts; it never
/// re-encodes RLP. To reuse a buffer across blocks, `clear()` it first.
///
/// # Errors
///
/// [`AbiError::CountMismatch`] when `block.receipts` and `block.transactions` differ in
/// length, [`AbiError::TooLarge`] when a part or count does not fit a `u32`. `out` is left
/// unchanged on error.
pub fn encode_into(kind: EventKind, block: &ChainBlock, out: &mut Vec<u8>) -> Result<()> {
    if block.transactions.len() != block.receipts.len() {
        return Err(AbiError::CountMismatch {
            transactions: block.transactions.len(),
            receipts: block.receipts.len(),
        });
    }
    // Validate every prefix before writing so a failure leaves `out` untouched.
    let header_len = prefix("header", block.header_rlp.len())?;
    let count = prefix("transaction count", block.transactions.len())?;
    for (_, tx) in &block.transactions {
        prefix("transaction", tx.len())?;
    }
    for receipt in &block.receipts {
        prefix("receipt", receipt.len())?;
    }

    out.reserve(encoded_len(block));
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.push(kind.as_u8());
    out.push(0);
    out.extend_from_slice(&block.chain_id.to_le_bytes());
    out.extend_from_slice(&block.number.to_le_bytes());
    out.extend_from_slice(block.hash.as_slice());
    out.extend_from_slice(block.parent_hash.as_slice());
    out.extend_from_slice(&block.timestamp.to_le_bytes());
    out.extend_from_slice(&header_len);
    out.extend_from_slice(&block.header_rlp);
    out.extend_from_slice(&count);
    for (sender, tx) in &block.transactions {
        out.extend_from_slice(sender.as_slice());
        out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
        out.extend_from_slice(tx);
    }
    out.extend_from_slice(&count);
    for receipt in &block.receipts {
        out.extend_from_slice(&(receipt.len() as u32).to_le_bytes());
        out.extend_from_slice(receipt);
    }
    Ok(())
}

/// Encodes `block` as a `kind` event into a new vector. See [`encode_into`].
///
/// # Errors
///
/// As [`encode_into`].
pub fn encode(kind: EventKind, block: &ChainBlock) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_into(kind, block, &mut out)?;
    Ok(out)
}

/// A bounds-checked reader over the envelope bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, need: usize) -> Result<&'a [u8]> {
        let at = self.pos;
        let end = at
            .checked_add(need)
            .filter(|&end| end <= self.buf.len())
            .ok_or(AbiError::Truncated { at, need })?;
        self.pos = end;
        Ok(&self.buf[at..end])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        Ok(bytes.try_into().expect("take returned exactly N bytes"))
    }

    fn u32(&mut self) -> Result<usize> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    fn b256(&mut self) -> Result<B256> {
        Ok(B256::from(self.array::<32>()?))
    }
}

/// Decodes and validates an envelope without copying: every slice borrows from `bytes`.
///
/// Checks the magic, version, kind, every length prefix, that receipts and transactions
/// are equally many, that nothing trails, and the shallow RLP shape of the header, each
/// transaction and each receipt. It does not hash anything; [`EnvelopeRef::verify`] checks
/// the fixed header against the block header.
///
/// # Errors
///
/// A typed [`AbiError`] for any malformed input; never panics.
pub fn decode(bytes: &[u8]) -> Result<EnvelopeRef<'_>> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let magic: [u8; 4] = r.array()?;
    if magic != MAGIC {
        return Err(AbiError::BadMagic { found: magic });
    }
    let version = u16::from_le_bytes(r.array()?);
    if version != VERSION {
        return Err(AbiError::UnsupportedVersion(version));
    }
    let [kind, reserved] = r.array()?;
    let kind = EventKind::from_u8(kind).ok_or(AbiError::BadKind(kind))?;
    if reserved != 0 {
        return Err(AbiError::BadReserved(reserved));
    }
    let chain_id = r.u64()?;
    let number = r.u64()?;
    let hash = r.b256()?;
    let parent_hash = r.b256()?;
    let timestamp = r.u64()?;

    let header_len = r.u32()?;
    let header_rlp = r.take(header_len)?;
    check_list(header_rlp).map_err(|e| AbiError::invalid_rlp("header", 0, e))?;

    let tx_count = r.u32()?;
    let tx_start = r.pos;
    for index in 0..tx_count {
        r.take(SENDER_LEN)?;
        let len = r.u32()?;
        check_2718(r.take(len)?).map_err(|e| AbiError::invalid_rlp("transaction", index, e))?;
    }
    let transactions = &bytes[tx_start..r.pos];

    let receipt_count = r.u32()?;
    if receipt_count != tx_count {
        return Err(AbiError::CountMismatch {
            transactions: tx_count,
            receipts: receipt_count,
        });
    }
    let receipt_start = r.pos;
    for index in 0..receipt_count {
        let len = r.u32()?;
        check_2718(r.take(len)?).map_err(|e| AbiError::invalid_rlp("receipt", index, e))?;
    }
    let receipts = &bytes[receipt_start..r.pos];

    if r.pos != bytes.len() {
        return Err(AbiError::TrailingBytes {
            at: r.pos,
            count: bytes.len() - r.pos,
        });
    }
    Ok(EnvelopeRef {
        kind,
        chain_id,
        number,
        hash,
        parent_hash,
        timestamp,
        header_rlp,
        transactions,
        count: tx_count,
        receipts,
    })
}

/// Decodes an envelope into an owned [`Envelope`] (copies every part once).
///
/// # Errors
///
/// As [`decode`].
pub fn decode_owned(bytes: &[u8]) -> Result<Envelope> {
    Ok(decode(bytes)?.to_envelope())
}

/// A validated envelope borrowing from the input bytes. Built by [`decode`].
///
/// Transactions and receipts are decoded lazily: iterating yields raw slices, and
/// [`RawTransaction::decode`] / [`RawReceipt::decode`] decode one on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeRef<'a> {
    kind: EventKind,
    chain_id: u64,
    number: u64,
    hash: B256,
    parent_hash: B256,
    timestamp: u64,
    header_rlp: &'a [u8],
    transactions: &'a [u8],
    count: usize,
    receipts: &'a [u8],
}

impl<'a> EnvelopeRef<'a> {
    /// Commit or revert.
    pub const fn kind(&self) -> EventKind {
        self.kind
    }
    /// EIP-155 chain id.
    pub const fn chain_id(&self) -> u64 {
        self.chain_id
    }
    /// Block number.
    pub const fn number(&self) -> u64 {
        self.number
    }
    /// Block hash.
    pub const fn hash(&self) -> B256 {
        self.hash
    }
    /// Parent block hash.
    pub const fn parent_hash(&self) -> B256 {
        self.parent_hash
    }
    /// Block timestamp (seconds since the Unix epoch).
    pub const fn timestamp(&self) -> u64 {
        self.timestamp
    }
    /// The block header as canonical RLP.
    pub const fn header_rlp(&self) -> &'a [u8] {
        self.header_rlp
    }
    /// Number of transactions (equal to the number of receipts).
    pub const fn transaction_count(&self) -> usize {
        self.count
    }
    /// Number of receipts (equal to the number of transactions).
    pub const fn receipt_count(&self) -> usize {
        self.count
    }

    /// The transactions in block order, undecoded.
    pub fn transactions(&self) -> Transactions<'a> {
        Transactions {
            buf: self.transactions,
            index: 0,
            count: self.count,
        }
    }

    /// The receipts in block order, undecoded.
    pub fn receipts(&self) -> Receipts<'a> {
        Receipts {
            buf: self.receipts,
            index: 0,
            count: self.count,
        }
    }

    /// Decodes the block header.
    ///
    /// # Errors
    ///
    /// [`AbiError::InvalidRlp`] when the header RLP is not a valid Ethereum header.
    pub fn decode_header(&self) -> Result<Header> {
        let mut buf = self.header_rlp;
        let header = <Header as alloy_rlp::Decodable>::decode(&mut buf)
            .map_err(|e| AbiError::invalid_rlp("header", 0, e))?;
        if !buf.is_empty() {
            return Err(AbiError::invalid_rlp(
                "header",
                0,
                "trailing bytes after the header",
            ));
        }
        Ok(header)
    }

    /// Checks the fixed header against the block header: `keccak256(header_rlp) == hash`,
    /// and equal number, parent hash and timestamp.
    ///
    /// # Errors
    ///
    /// [`AbiError::Inconsistent`] naming the first field that differs, or
    /// [`AbiError::InvalidRlp`] when the header does not decode.
    pub fn verify(&self) -> Result<()> {
        let computed = keccak256(self.header_rlp);
        if computed != self.hash {
            return Err(AbiError::inconsistent_hash(self.hash, computed));
        }
        let header = self.decode_header()?;
        let fields: [(&'static str, String, String); 3] = [
            ("number", self.number.to_string(), header.number.to_string()),
            (
                "parent hash",
                self.parent_hash.to_string(),
                header.parent_hash.to_string(),
            ),
            (
                "timestamp",
                self.timestamp.to_string(),
                header.timestamp.to_string(),
            ),
        ];
        for (field, envelope, header) in fields {
            if envelope != header {
                return Err(AbiError::Inconsistent {
                    field,
                    envelope,
                    header,
                });
            }
        }
        Ok(())
    }

    /// Copies everything into an owned [`Envelope`].
    pub fn to_envelope(&self) -> Envelope {
        Envelope {
            kind: self.kind,
            block: ChainBlock {
                chain_id: self.chain_id,
                number: self.number,
                hash: self.hash,
                parent_hash: self.parent_hash,
                timestamp: self.timestamp,
                header_rlp: Bytes::copy_from_slice(self.header_rlp),
                transactions: self
                    .transactions()
                    .map(|tx| (tx.sender, Bytes::copy_from_slice(tx.encoded)))
                    .collect(),
                receipts: self
                    .receipts()
                    .map(|r| Bytes::copy_from_slice(r.encoded))
                    .collect(),
            },
        }
    }
}

/// One transaction as carried in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawTransaction<'a> {
    /// Position in the block.
    pub index: usize,
    /// The recovered sender.
    pub sender: Address,
    /// Canonical EIP-2718 encoding.
    pub encoded: &'a [u8],
}

impl RawTransaction<'_> {
    /// The EIP-2718 type: 0 for legacy, else the leading type byte.
    pub fn tx_type(&self) -> u8 {
        match self.encoded.first() {
            Some(&b) if b <= 0x7f => b,
            _ => 0,
        }
    }

    /// The transaction hash: keccak256 of the encoding.
    pub fn hash(&self) -> B256 {
        keccak256(self.encoded)
    }

    /// Decodes the transaction.
    ///
    /// # Errors
    ///
    /// [`AbiError::InvalidRlp`] naming this transaction's index.
    pub fn decode(&self) -> Result<TxEnvelope> {
        TxEnvelope::decode_2718_exact(self.encoded)
            .map_err(|e| AbiError::invalid_rlp("transaction", self.index, e))
    }
}

/// One receipt as carried in the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawReceipt<'a> {
    /// Position in the block (the index of its transaction).
    pub index: usize,
    /// Canonical EIP-2718 receipt encoding.
    pub encoded: &'a [u8],
}

impl RawReceipt<'_> {
    /// The EIP-2718 type: 0 for legacy, else the leading type byte.
    pub fn tx_type(&self) -> u8 {
        match self.encoded.first() {
            Some(&b) if b <= 0x7f => b,
            _ => 0,
        }
    }

    /// Decodes the receipt (status or pre-Byzantium state root, cumulative gas, bloom,
    /// logs).
    ///
    /// # Errors
    ///
    /// [`AbiError::InvalidRlp`] naming this receipt's index.
    pub fn decode(&self) -> Result<ReceiptEnvelope> {
        ReceiptEnvelope::decode_2718_exact(self.encoded)
            .map_err(|e| AbiError::invalid_rlp("receipt", self.index, e))
    }
}

/// Iterator over an envelope's transactions; see [`EnvelopeRef::transactions`].
#[derive(Debug, Clone)]
pub struct Transactions<'a> {
    buf: &'a [u8],
    index: usize,
    count: usize,
}

impl<'a> Iterator for Transactions<'a> {
    type Item = RawTransaction<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        // `decode` validated the framing; `get` keeps this panic-free regardless.
        let sender = Address::from_slice(self.buf.get(..SENDER_LEN)?);
        let len_bytes: [u8; 4] = self
            .buf
            .get(SENDER_LEN..SENDER_LEN + PREFIX_LEN)?
            .try_into()
            .ok()?;
        let start = SENDER_LEN + PREFIX_LEN;
        let end = start + u32::from_le_bytes(len_bytes) as usize;
        let encoded = self.buf.get(start..end)?;
        self.buf = &self.buf[end..];
        let tx = RawTransaction {
            index: self.index,
            sender,
            encoded,
        };
        self.index += 1;
        Some(tx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Transactions<'_> {}

/// Iterator over an envelope's receipts; see [`EnvelopeRef::receipts`].
#[derive(Debug, Clone)]
pub struct Receipts<'a> {
    buf: &'a [u8],
    index: usize,
    count: usize,
}

impl<'a> Iterator for Receipts<'a> {
    type Item = RawReceipt<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.index >= self.count {
            return None;
        }
        let len_bytes: [u8; 4] = self.buf.get(..PREFIX_LEN)?.try_into().ok()?;
        let end = PREFIX_LEN + u32::from_le_bytes(len_bytes) as usize;
        let encoded = self.buf.get(PREFIX_LEN..end)?;
        self.buf = &self.buf[end..];
        let receipt = RawReceipt {
            index: self.index,
            encoded,
        };
        self.index += 1;
        Some(receipt)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.count - self.index;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Receipts<'_> {}
