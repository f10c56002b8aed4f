//! Log filters by address and topic.

use crate::event::Log;
use alloy_primitives::{Address, B256};

/// Selects logs by emitting contract and topics, like `eth_getLogs`.
///
/// Calling [`LogFilter::address`] several times accepts any of the addresses; with none,
/// every address matches. Likewise each topic position accepts any of the values given for
/// it, and a position with none matches anything (including an absent topic).
///
/// # Examples
///
/// ```
/// use xxfunc::{LogFilter, erc20};
/// use xxfunc::primitives::address;
/// let filter = LogFilter::new()
///     .address(address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"))
///     .topic0(erc20::TRANSFER_TOPIC);
/// # let _ = filter;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogFilter {
    addresses: Vec<Address>,
    topics: [Vec<B256>; 4],
}

impl LogFilter {
    /// A filter that matches every log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also accepts logs emitted by `address`.
    pub fn address(mut self, address: Address) -> Self {
        self.addresses.push(address);
        self
    }

    /// Also accepts `topic` as topic 0 (the event signature hash).
    pub fn topic0(self, topic: B256) -> Self {
        self.with_topic(0, topic)
    }

    /// Also accepts `topic` as topic 1 (the first indexed argument).
    pub fn topic1(self, topic: B256) -> Self {
        self.with_topic(1, topic)
    }

    /// Also accepts `topic` as topic 2.
    pub fn topic2(self, topic: B256) -> Self {
        self.with_topic(2, topic)
    }

    /// Also accepts `topic` as topic 3.
    pub fn topic3(self, topic: B256) -> Self {
        self.with_topic(3, topic)
    }

    fn with_topic(mut self, position: usize, topic: B256) -> Self {
        self.topics[position].push(topic);
        self
    }

    /// Whether `log` passes the filter.
    pub fn matches(&self, log: &Log) -> bool {
        if !self.addresses.is_empty() && !self.addresses.contains(&log.address) {
            return false;
        }
        self.topics.iter().enumerate().all(|(position, accepted)| {
            accepted.is_empty()
                || log
                    .topics
                    .get(position)
                    .is_some_and(|t| accepted.contains(t))
        })
    }
}
