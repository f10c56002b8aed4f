//! ERC-20 `Transfer` decoding, the worked example of reading typed events from logs.
//!
//! `event Transfer(address indexed from, address indexed to, uint256 value)` is logged
//! with topic 0 = keccak256 of its signature, `from` and `to` as topics 1 and 2 (each an
//! address left-padded to 32 bytes), and `value` as the 32-byte big-endian data.
//! ERC-721 logs the same signature with the token id as a third topic and no data; those
//! are not ERC-20 transfers and [`Transfer::from_log`] rejects them.

use crate::error::Result;
use crate::event::{Event, Log};
use crate::filter::LogFilter;
use alloy_primitives::{Address, B256, U256, b256};
use serde::Serialize;

/// `keccak256("Transfer(address,address,uint256)")`.
pub const TRANSFER_TOPIC: B256 =
    b256!("0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

/// One ERC-20 transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Transfer {
    /// The token contract (the log's address).
    pub token: Address,
    /// Sender (the zero address for a mint).
    pub from: Address,
    /// Recipient (the zero address for a burn).
    pub to: Address,
    /// Amount in the token's smallest unit.
    pub value: U256,
    /// Hash of the transaction that logged it.
    pub tx_hash: B256,
    /// Position of the log in the block.
    pub log_index: usize,
}

impl Transfer {
    /// A filter for `Transfer` logs, optionally of one token.
    pub fn filter(token: Option<Address>) -> LogFilter {
        let filter = LogFilter::new().topic0(TRANSFER_TOPIC);
        match token {
            Some(token) => filter.address(token),
            None => filter,
        }
    }

    /// Decodes `log` if it is an ERC-20 `Transfer`; `None` otherwise (other events,
    /// ERC-721 transfers, malformed topics or data).
    pub fn from_log(log: &Log) -> Option<Self> {
        let [signature, from, to] = log.topics.as_slice() else {
            return None;
        };
        if *signature != TRANSFER_TOPIC || log.data.len() != 32 {
            return None;
        }
        Some(Self {
            token: log.address,
            from: topic_address(from)?,
            to: topic_address(to)?,
            value: U256::from_be_slice(&log.data),
            tx_hash: log.tx_hash,
            log_index: log.log_index,
        })
    }

    /// Every ERC-20 transfer in the block, in log order.
    ///
    /// # Errors
    ///
    /// As [`Event::receipts`].
    pub fn all(event: &Event) -> Result<Vec<Self>> {
        Ok(event.logs()?.filter_map(Self::from_log).collect())
    }
}

/// An address stored in a topic: 12 zero bytes, then the 20 address bytes.
fn topic_address(topic: &B256) -> Option<Address> {
    let (padding, address) = topic.split_at(12);
    padding
        .iter()
        .all(|&b| b == 0)
        .then(|| Address::from_slice(address))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::{Bytes, address, keccak256};

    fn log(topics: Vec<B256>, data: Vec<u8>) -> Log {
        Log {
            tx_index: 0,
            log_index: 4,
            tx_hash: B256::repeat_byte(9),
            address: address!("0x00000000000000000000000000000000000000aa"),
            topics,
            data: Bytes::from(data),
        }
    }

    #[test]
    fn topic_is_the_signature_hash() {
        assert_eq!(
            TRANSFER_TOPIC,
            keccak256("Transfer(address,address,uint256)")
        );
    }

    #[test]
    fn decodes_a_transfer_and_rejects_lookalikes() {
        let from = Address::repeat_byte(1);
        let to = Address::repeat_byte(2);
        let value = U256::from(1_000_000u64);
        let good = log(
            vec![TRANSFER_TOPIC, from.into_word(), to.into_word()],
            value.to_be_bytes::<32>().to_vec(),
        );
        let transfer = Transfer::from_log(&good).expect("a transfer");
        assert_eq!(
            (transfer.from, transfer.to, transfer.value),
            (from, to, value)
        );
        assert_eq!(transfer.log_index, 4);

        let erc721 = log(
            vec![
                TRANSFER_TOPIC,
                from.into_word(),
                to.into_word(),
                B256::with_last_byte(7),
            ],
            vec![],
        );
        assert_eq!(Transfer::from_log(&erc721), None);
        let mut dirty = from.into_word();
        dirty.0[0] = 1;
        let bad_topic = log(vec![TRANSFER_TOPIC, dirty, to.into_word()], vec![0; 32]);
        assert_eq!(Transfer::from_log(&bad_topic), None);
        let short = log(
            vec![TRANSFER_TOPIC, from.into_word(), to.into_word()],
            vec![0; 31],
        );
        assert_eq!(Transfer::from_log(&short), None);
        let other = log(
            vec![B256::ZERO, from.into_word(), to.into_word()],
            vec![0; 32],
        );
        assert_eq!(Transfer::from_log(&other), None);
        assert!(Transfer::filter(None).matches(&good));
        assert!(!Transfer::filter(Some(Address::ZERO)).matches(&good));
    }
}
