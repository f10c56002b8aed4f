//! The event a function receives: one block, committed or reverted, decoded lazily.

use crate::error::Result;
use crate::filter::LogFilter;
use crate::state::State;
use alloy_consensus::{Eip658Value, Header, Transaction as _, TxEnvelope, TxReceipt};
use alloy_primitives::{Address, B256, Bytes, U256};
use std::cell::OnceCell;
use std::fmt;
use xxfunc_abi::{EnvelopeRef, EventKind};

/// One chain event: a block that was committed to, or reverted from, the canonical chain.
///
/// The fixed fields (kind, number, hashes, timestamp, chain id, transaction count) cost
/// nothing to read. Transactions and receipts are decoded on first use and cached, so a
/// function that only needs the block number never pays for decoding them.
pub struct Event {
    envelope: EnvelopeRef<'static>,
    transactions: OnceCell<Vec<Transaction>>,
    receipts: OnceCell<Vec<Receipt>>,
    state: State,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("kind", &self.kind())
            .field("chain_id", &self.chain_id())
            .field("number", &self.number())
            .field("hash", &self.hash())
            .field("transactions", &self.transaction_count())
            .finish_non_exhaustive()
    }
}

impl Event {
    /// Decodes an envelope that lives for the rest of the program (stdin, read once).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Abi`] when the bytes are not a valid envelope.
    pub fn from_static(bytes: &'static [u8]) -> Result<Self> {
        Ok(Self {
            envelope: xxfunc_abi::decode(bytes)?,
            transactions: OnceCell::new(),
            receipts: OnceCell::new(),
            state: State::imports(),
        })
    }

    /// Decodes an envelope from owned bytes. The bytes are kept for the rest of the program
    /// (a function handles exactly one event per run, so this is what `main` needs); in
    /// long-running host code prefer [`xxfunc_abi::decode`].
    ///
    /// # Errors
    ///
    /// [`crate::Error::Abi`] when the bytes are not a valid envelope.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Self> {
        Self::from_static(Vec::leak(bytes))
    }

    /// Commit or revert.
    pub fn kind(&self) -> EventKind {
        self.envelope.kind()
    }
    /// The block joined the canonical chain.
    pub fn is_commit(&self) -> bool {
        self.kind() == EventKind::Commit
    }
    /// The block left the canonical chain (a reorg); undo what its commit did.
    pub fn is_revert(&self) -> bool {
        self.kind() == EventKind::Revert
    }
    /// EIP-155 chain id.
    pub fn chain_id(&self) -> u64 {
        self.envelope.chain_id()
    }
    /// Block number.
    pub fn number(&self) -> u64 {
        self.envelope.number()
    }
    /// Block hash.
    pub fn hash(&self) -> B256 {
        self.envelope.hash()
    }
    /// Parent block hash.
    pub fn parent_hash(&self) -> B256 {
        self.envelope.parent_hash()
    }
    /// Block timestamp, seconds since the Unix epoch (also what the guest's clock reads).
    pub fn timestamp(&self) -> u64 {
        self.envelope.timestamp()
    }
    /// Number of transactions, without decoding any.
    pub fn transaction_count(&self) -> usize {
        self.envelope.transaction_count()
    }
    /// The raw envelope: header RLP and undecoded transaction and receipt encodings.
    pub fn envelope(&self) -> &EnvelopeRef<'static> {
        &self.envelope
    }

    /// Chain-state reads as of this event's block, by hash (on a revert of N: N on the
    /// reverted branch); see [`State`]. Under the runner these are its `xxfunc` host
    /// calls; natively, what [`Event::with_state`] gave.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # fn f(event: xxfunc::Event) -> xxfunc::Result<()> {
    /// let miner = event.header()?.beneficiary;
    /// let balance = event.state().balance(miner)?;
    /// # let _ = balance; Ok(()) }
    /// ```
    pub fn state(&self) -> State {
        self.state.clone()
    }

    /// The same event answering state reads from `state` (for native tests:
    /// `event.with_state(State::with_host(my_host))`).
    pub fn with_state(mut self, state: State) -> Self {
        self.state = state;
        self
    }

    /// Decodes the full block header (gas, base fee, beneficiary, roots, ...).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Abi`] when the header RLP is invalid.
    pub fn header(&self) -> Result<Header> {
        Ok(self.envelope.decode_header()?)
    }

    /// The block's transactions, decoded on first call.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Abi`] naming the first transaction that does not decode.
    pub fn transactions(&self) -> Result<&[Transaction]> {
        if let Some(txs) = self.transactions.get() {
            return Ok(txs);
        }
        let txs = self
            .envelope
            .transactions()
            .map(|raw| {
                Ok(Transaction {
                    index: raw.index,
                    hash: raw.hash(),
                    sender: raw.sender,
                    tx_type: raw.tx_type(),
                    envelope: raw.decode()?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(self.transactions.get_or_init(|| txs).as_slice())
    }

    /// The block's receipts with their logs, decoded on first call. `receipts()[i]`
    /// belongs to transaction `i`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Abi`] naming the first receipt that does not decode.
    pub fn receipts(&self) -> Result<&[Receipt]> {
        if let Some(receipts) = self.receipts.get() {
            return Ok(receipts);
        }
        let mut receipts = Vec::with_capacity(self.transaction_count());
        let mut log_index = 0;
        let mut previous_cumulative = 0;
        for (raw, tx) in self.envelope.receipts().zip(self.envelope.transactions()) {
            let decoded = raw.decode()?;
            let tx_hash = tx.hash();
            let status = match decoded.status_or_post_state() {
                Eip658Value::Eip658(true) => Status::Success,
                Eip658Value::Eip658(false) => Status::Failure,
                Eip658Value::PostState(root) => Status::PostState(root),
            };
            let cumulative = decoded.cumulative_gas_used();
            let logs = decoded
                .logs()
                .iter()
                .map(|log| {
                    let log = Log {
                        tx_index: raw.index,
                        log_index,
                        tx_hash,
                        address: log.address,
                        topics: log.data.topics().to_vec(),
                        data: log.data.data.clone(),
                    };
                    log_index += 1;
                    log
                })
                .collect();
            receipts.push(Receipt {
                tx_index: raw.index,
                tx_hash,
                tx_type: raw.tx_type(),
                status,
                cumulative_gas_used: cumulative,
                gas_used: cumulative.saturating_sub(previous_cumulative),
                logs,
            });
            previous_cumulative = cumulative;
        }
        Ok(self.receipts.get_or_init(|| receipts).as_slice())
    }

    /// Every log of the block in order, each with its transaction index and hash.
    ///
    /// # Errors
    ///
    /// As [`Event::receipts`].
    pub fn logs(&self) -> Result<impl Iterator<Item = &Log>> {
        Ok(self.receipts()?.iter().flat_map(|r| r.logs.iter()))
    }

    /// The logs that pass `filter`.
    ///
    /// # Errors
    ///
    /// As [`Event::receipts`].
    pub fn logs_matching<'a>(
        &'a self,
        filter: &'a LogFilter,
    ) -> Result<impl Iterator<Item = &'a Log> + 'a> {
        Ok(self.logs()?.filter(move |log| filter.matches(log)))
    }
}

/// A decoded transaction with its recovered sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Position in the block.
    pub index: usize,
    /// Transaction hash.
    pub hash: B256,
    /// The recovered sender.
    pub sender: Address,
    /// EIP-2718 type: 0 legacy, 1 access list, 2 EIP-1559, 3 blob, 4 set-code.
    pub tx_type: u8,
    envelope: TxEnvelope,
}

impl Transaction {
    /// The recipient; `None` for a contract creation.
    pub fn to(&self) -> Option<Address> {
        self.envelope.to()
    }
    /// Wei sent with the transaction.
    pub fn value(&self) -> U256 {
        self.envelope.value()
    }
    /// Call data (or init code for a contract creation).
    pub fn input(&self) -> &Bytes {
        self.envelope.input()
    }
    /// Sender nonce.
    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }
    /// Gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }
    /// Chain id the signature commits to; `None` for pre-EIP-155 legacy transactions.
    pub fn chain_id(&self) -> Option<u64> {
        self.envelope.chain_id()
    }
    /// Whether this transaction creates a contract.
    pub fn is_create(&self) -> bool {
        self.envelope.kind().is_create()
    }
    /// The 4-byte function selector of the call data, if there is one.
    pub fn selector(&self) -> Option<[u8; 4]> {
        self.input().get(..4).and_then(|s| s.try_into().ok())
    }
    /// The full alloy transaction, for fields this type does not surface.
    pub fn envelope(&self) -> &TxEnvelope {
        &self.envelope
    }
}

/// Outcome of a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Succeeded (EIP-658 status 1).
    Success,
    /// Reverted or ran out of gas (EIP-658 status 0).
    Failure,
    /// Pre-Byzantium receipts carry the intermediate state root instead of a status.
    PostState(B256),
}

/// A decoded receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    /// Index of the transaction this receipt belongs to.
    pub tx_index: usize,
    /// Hash of that transaction.
    pub tx_hash: B256,
    /// EIP-2718 type of the transaction.
    pub tx_type: u8,
    /// Success, failure, or a pre-Byzantium state root.
    pub status: Status,
    /// Gas used by this and all earlier transactions of the block.
    pub cumulative_gas_used: u64,
    /// Gas used by this transaction alone.
    pub gas_used: u64,
    /// Logs emitted, in order.
    pub logs: Vec<Log>,
}

impl Receipt {
    /// `true` unless the transaction failed (pre-Byzantium receipts count as success).
    pub fn success(&self) -> bool {
        self.status != Status::Failure
    }
}

/// One log (event) emitted by a contract, with its place in the block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// Index of the transaction that emitted it.
    pub tx_index: usize,
    /// Position among all logs of the block (as `logIndex` in JSON-RPC).
    pub log_index: usize,
    /// Hash of the transaction that emitted it.
    pub tx_hash: B256,
    /// The emitting contract.
    pub address: Address,
    /// Topics: the event signature hash first, then indexed arguments.
    pub topics: Vec<B256>,
    /// ABI-encoded non-indexed arguments.
    pub data: Bytes,
}
