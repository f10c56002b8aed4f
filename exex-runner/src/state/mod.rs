//! Chain state for guests: the `xxfunc.state_*` host calls (docs/abi.md §8), the
//! [`StateBackend`] seam behind them, and the [`StateCache`] every function of a runner
//! shares.
//!
//! A read is always **at the event's block, by hash** ([`BlockAt`]): on a commit of N the
//! state after N; on a revert of N the state as of N on the reverted branch. Answers are
//! cached per (block hash, request) for the runner's recent blocks, so ten functions
//! reading one slot on one block cost one backend read, a guest's retry after
//! `BUFFER_TOO_SMALL` costs none, and a revert of N answers every read made at N's commit
//! identically even when the backend no longer has N's state.
//!
//! A backend that cannot answer (pruned state, node down, past the invocation's deadline)
//! returns [`Unavailable`]: the invocation is then not recorded, the function stays at its
//! cursor and is retried with backoff, and it never counts towards quarantine (it is not
//! the function's fault).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use alloy_primitives::{Address, B256, Bytes, U256};

mod cache;
mod evm;
pub(crate) mod host;
mod offline;
mod rpc;

pub use cache::StateCache;
pub use evm::evm_call;
pub use offline::FixtureState;
pub use rpc::RpcState;

/// keccak256 of empty code: the code hash of an account that has none.
pub const EMPTY_CODE_HASH: B256 =
    alloy_primitives::b256!("c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");

/// The block a read is made at: the event's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlockAt {
    /// Its number.
    pub number: u64,
    /// Its hash (what the backend is asked by).
    pub hash: B256,
}

/// One read-only call, as `eth_call` runs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct CallRequest {
    /// The called account.
    pub to: Address,
    /// `msg.sender` (`None`: the zero address).
    pub from: Option<Address>,
    /// Value sent, in wei.
    pub value: U256,
    /// Gas the call may use (already bounded by the runner's per-call cap).
    pub gas: u64,
    /// Calldata.
    pub data: Bytes,
}

/// What a guest asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum StateRequest {
    /// Balance, nonce and code hash of an account.
    Account(Address),
    /// One storage word.
    Storage(Address, B256),
    /// An account's code.
    Code(Address),
    /// A read-only call.
    Call(CallRequest),
}

impl StateRequest {
    /// Its kind, as metrics label it: `account`, `storage`, `code` or `call`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Account(_) => "account",
            Self::Storage(..) => "storage",
            Self::Code(_) => "code",
            Self::Call(_) => "call",
        }
    }
}

/// A deterministic answer: the same request at the same block always gets it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum StateAnswer {
    /// For [`StateRequest::Account`]; an absent account is all zero with
    /// [`EMPTY_CODE_HASH`].
    Account {
        /// In wei.
        balance: U256,
        /// Transactions sent (or contracts created, for a contract).
        nonce: u64,
        /// keccak256 of its code.
        code_hash: B256,
    },
    /// For [`StateRequest::Storage`] (zero when unset).
    Word(B256),
    /// For [`StateRequest::Code`] (empty when there is none).
    Code(Bytes),
    /// For [`StateRequest::Call`]: it returned `output`.
    Returned(Bytes),
    /// For [`StateRequest::Call`]: it reverted with `data` (possibly empty).
    Reverted(Bytes),
    /// For [`StateRequest::Call`]: it failed without revert data (out of gas, invalid
    /// opcode, ...); the reason is for logs only.
    Halted(String),
}

impl StateAnswer {
    /// The answer for an account found with `balance`, `nonce` and `code_hash` (none for an
    /// account without code), or for an absent one: all zero with [`EMPTY_CODE_HASH`].
    pub fn account(found: Option<(U256, u64, Option<B256>)>) -> Self {
        let (balance, nonce, code_hash) = found.unwrap_or_default();
        Self::Account {
            balance,
            nonce,
            code_hash: code_hash.unwrap_or(EMPTY_CODE_HASH),
        }
    }

    /// The answer's size in guest memory (what counts against the answer-byte limit).
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Account { .. } => host::ACCOUNT_ANSWER,
            Self::Word(_) => 32,
            Self::Code(b) | Self::Returned(b) | Self::Reverted(b) => b.len(),
            Self::Halted(_) => 0,
        }
    }
}

/// The state could not be read: not the function's fault, retried later.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl Unavailable {
    /// The invocation's deadline passed before an answer came.
    pub fn deadline() -> Self {
        Self("deadline: no answer within the invocation's wall-time limit".into())
    }
}

/// Where state comes from: the node's provider inside reth, a node's JSON-RPC, or a
/// recorded state offline. Implementations are called from several invocation threads
/// at once, and must not wait past `deadline` (answer [`Unavailable::deadline`] then).
pub trait StateBackend: Send + Sync + 'static {
    /// A short name for logs and status (`rpc http://...`).
    fn describe(&self) -> String;

    /// Answers `request` at `at`, or says why it cannot.
    ///
    /// # Errors
    /// [`Unavailable`] when the state at `at` cannot be read now.
    fn read(
        &self,
        at: &BlockAt,
        request: &StateRequest,
        deadline: Instant,
    ) -> Result<StateAnswer, Unavailable>;
}

/// Per-invocation limits on host calls (docs/abi.md §8, "Limits").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StateLimits {
    /// Host calls per invocation.
    pub calls: u32,
    /// Gas per `state_call` (also what a request's gas of 0 means).
    pub gas: u64,
    /// Bytes written to the guest, summed over the invocation's host calls.
    pub answer_bytes: usize,
}

impl Default for StateLimits {
    fn default() -> Self {
        Self {
            calls: 1_000,
            gas: 50_000_000,
            answer_bytes: 16 << 20,
        }
    }
}

/// Answers recorded with committed outcomes (the runner's database), consulted before
/// the backend: after a restart, a revert of N still answers the reads made at N's
/// commit identically, even when the backend no longer has N's state.
pub(crate) trait RecordedAnswers: Send + Sync {
    /// The answer recorded for `request` at `at`, if any.
    fn recorded(&self, at: &BlockAt, request: &StateRequest) -> Option<StateAnswer>;
}

/// A backend with the cache in front of it: what the runner hands each invocation.
#[derive(Clone)]
pub struct StateSource {
    backend: Arc<dyn StateBackend>,
    cache: Arc<StateCache>,
    recorded: Option<Arc<dyn RecordedAnswers>>,
}

impl std::fmt::Debug for StateSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateSource")
            .field("backend", &self.backend.describe())
            .finish_non_exhaustive()
    }
}

impl StateSource {
    /// `backend` behind a fresh cache.
    pub fn new(backend: Arc<dyn StateBackend>) -> Self {
        Self {
            backend,
            cache: Arc::new(StateCache::default()),
            recorded: None,
        }
    }

    /// The same, consulting `recorded` before the backend.
    pub(crate) fn with_recorded(mut self, recorded: Arc<dyn RecordedAnswers>) -> Self {
        self.recorded = Some(recorded);
        self
    }

    /// The backend's name.
    pub fn describe(&self) -> String {
        self.backend.describe()
    }

    /// The shared cache.
    pub fn cache(&self) -> &Arc<StateCache> {
        &self.cache
    }

    /// Answers `request` at `at` from the cache, or from the backend (once, however
    /// many callers ask at the same time), waiting no later than `deadline`.
    ///
    /// # Errors
    /// [`Unavailable`], from the backend or at the deadline.
    pub fn read(
        &self,
        at: &BlockAt,
        request: &StateRequest,
        deadline: Instant,
    ) -> Result<StateAnswer, Unavailable> {
        self.read_at(at, request, deadline, true)
    }

    /// [`StateSource::read`], consulting the recorded answers on a miss only when
    /// `recorded` (a commit's reads are recorded only once it is, so only a revert can
    /// find them).
    fn read_at(
        &self,
        at: &BlockAt,
        request: &StateRequest,
        deadline: Instant,
        recorded: bool,
    ) -> Result<StateAnswer, Unavailable> {
        self.cache
            .get_or_read(at, request, deadline, |at, request| {
                let stored = self.recorded.as_ref().filter(|_| recorded);
                if let Some(answer) = stored.and_then(|r| r.recorded(at, request)) {
                    return Ok(answer);
                }
                let started = Instant::now();
                let answer = self.backend.read(at, request, deadline);
                crate::metrics::observe_state_read(request.kind(), started.elapsed());
                answer
            })
    }
}

/// State reads of this process, for metrics (`xxfunc_state_reads_total`).
pub(crate) static READS: ReadCounts = ReadCounts {
    hits: AtomicU64::new(0),
    misses: AtomicU64::new(0),
    unavailable: AtomicU64::new(0),
};

/// Counts of [`READS`].
pub(crate) struct ReadCounts {
    /// Answered from the cache.
    pub(crate) hits: AtomicU64,
    /// Answered by the backend.
    pub(crate) misses: AtomicU64,
    /// Not answered ([`Unavailable`]).
    pub(crate) unavailable: AtomicU64,
}

impl ReadCounts {
    /// (hits, misses, unavailable).
    pub(crate) fn get(&self) -> (u64, u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.unavailable.load(Ordering::Relaxed),
        )
    }
}

/// What one invocation reads at: the source and the event's block.
#[derive(Clone, Debug)]
pub struct StateScope {
    /// The backend and its cache.
    pub source: StateSource,
    /// The event's block.
    pub at: BlockAt,
    /// Whether the event is a revert of that block (only then can the answers recorded
    /// with its commit be there to consult).
    pub revert: bool,
}

impl StateScope {
    /// Answers `request` at the event's block (see [`StateSource::read`]).
    ///
    /// # Errors
    /// [`Unavailable`], from the backend or at the deadline.
    pub fn read(
        &self,
        request: &StateRequest,
        deadline: Instant,
    ) -> Result<StateAnswer, Unavailable> {
        self.source
            .read_at(&self.at, request, deadline, self.revert)
    }
}
