//! Where a function stands in the chain: [`BlockRef`] and the runner's cursor [`Position`].

use alloy_primitives::B256;
use serde::{Deserialize, Serialize};

/// A block identified by number and hash. As a cursor it is inclusive: the
/// last block a function has fully processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BlockRef {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
}

/// Where a function stands in the chain.
///
/// The runner persists it as JSON (`{"at":"head"}`, `{"at":"from","number":7}`,
/// `{"at":"block","block":{..},"first":3}`); the form is part of its on-disk format.
///
/// ```
/// use xxfunc_primitives::{BlockRef, Position};
///
/// let at = Position::Block { block: BlockRef { number: 9, hash: Default::default() }, first: 3 };
/// assert_eq!(at.cursor().map(|b| b.number), Some(9));
/// assert_eq!(Position::From { number: 7 }.cursor(), None);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "at")]
pub enum Position {
    /// Started at the head before any block was seen: the next commit is its first.
    Head,
    /// Backfill pending: the first block delivered is this number.
    From {
        /// First block number to deliver.
        number: u64,
    },
    /// Cursor: the last fully processed block (inclusive).
    Block {
        /// The block.
        block: BlockRef,
        /// The first block number of this start: reverting that block returns
        /// the function to `From { number: first }`, since it never saw its parent.
        first: u64,
    },
}

impl Position {
    /// The cursor, when the function has processed a block.
    pub fn cursor(&self) -> Option<BlockRef> {
        match self {
            Self::Block { block, .. } => Some(*block),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner's state database holds these strings: they must never change.
    #[test]
    fn persisted_forms_are_stable() {
        let hash = B256::repeat_byte(0xab);
        let block = BlockRef { number: 9, hash };
        let hex = format!("0x{}", "ab".repeat(32));
        for (position, json) in [
            (Position::Head, r#"{"at":"head"}"#.to_string()),
            (
                Position::From { number: 7 },
                r#"{"at":"from","number":7}"#.to_string(),
            ),
            (
                Position::Block { block, first: 3 },
                format!(r#"{{"at":"block","block":{{"number":9,"hash":"{hex}"}},"first":3}}"#),
            ),
        ] {
            assert_eq!(serde_json::to_string(&position).unwrap(), json);
            assert_eq!(serde_json::from_str::<Position>(&json).unwrap(), position);
        }
        assert_eq!(
            serde_json::to_string(&block).unwrap(),
            format!(r#"{{"number":9,"hash":"{hex}"}}"#)
        );
    }
}
