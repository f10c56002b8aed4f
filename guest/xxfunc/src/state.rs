//! Chain-state reads at the event's block: accounts, storage slots, code and read-only calls.
//!
//! A [`State`] (from [`Event::state`](crate::Event::state)) answers every read **as of the
//! event's block, by hash**: on a commit of block N the state after N; on a revert of N the
//! state as of N on the reverted branch (every read the function made at N's commit answers
//! identically). There is no "latest": a function replayed on the same events reads the
//! same answers.
//!
//! Each read is one synchronous call into the runner through the `xxfunc` import module
//! (specified byte by byte in `docs/abi.md`, "Host calls: chain state"), so it works the
//! same from a sync or an `async fn main`. Absent things get Ethereum's own answer (zero
//! balance, nonce 0, the empty-code hash, empty code, zero storage); everything else that
//! can go wrong is a [`StateError`].
//!
//! # Examples
//!
//! ```no_run
//! use xxfunc::{Event, erc20};
//! use xxfunc::primitives::address;
//!
//! #[xxfunc::main]
//! fn main(event: Event) -> xxfunc::Result<()> {
//!     let state = event.state();
//!     let vault = address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
//!     let account = state.account(vault)?;
//!     let slot0 = state.storage(vault, xxfunc::U256::ZERO)?;
//!     let code = state.code(vault)?;
//!     let supply = erc20::total_supply(&state, vault)?;
//!     xxfunc::emit(&xxfunc::json!({
//!         "block": event.number(), "balance": account.balance.to_string(),
//!         "nonce": account.nonce, "slot0": slot0, "code_bytes": code.len(),
//!         "supply": supply.to_string(),
//!     }))
//! }
//! ```
//!
//! # Limits and failures
//!
//! The runner caps host calls (default 1,000 per invocation), gas per call (default
//! 50,000,000) and answer bytes (default 16 MiB) per invocation; past them reads fail with
//! [`StateError::LimitExceeded`]. [`StateError::Unavailable`] means the state could not be
//! read (pruned, backend down, deadline): not the function's fault. Propagate it with `?`:
//! the runner knows it answered "unavailable", does not record the invocation as the
//! function's result, and delivers the event again later.
//!
//! # Testing natively
//!
//! Off `wasm32-wasip1` there are no host imports: [`State::imports`] (and so
//! [`Event::state`](crate::Event::state)) answers every read with
//! [`StateError::NoHost`]. Give a state to an event with
//! [`Event::with_state`](crate::Event::with_state) and [`State::with_host`], over any
//! [`Host`]: the four imports as byte-level calls.

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_sol_types::{GenericContractError, SolCall, SolInterface};
use std::fmt;
use std::sync::Arc;

#[cfg(target_os = "wasi")]
mod imports;

/// The status codes every state import returns (`docs/abi.md`).
pub mod status {
    /// The answer was written.
    pub const OK: i32 = 0;
    /// (`state_call` only) The call reverted; the answer buffer holds the revert data.
    pub const REVERTED: i32 = 1;
    /// Nothing was written; `*len_ptr` holds the bytes needed.
    pub const BUFFER_TOO_SMALL: i32 = 2;
    /// The state could not be read (pruned, backend down, deadline); the runner retries.
    pub const STATE_UNAVAILABLE: i32 = -1;
    /// The invocation's cap on host calls or answer bytes was reached.
    pub const LIMIT_EXCEEDED: i32 = -2;
    /// A pointer or length outside linear memory, or a malformed request.
    pub const BAD_ARGUMENT: i32 = -3;
    /// (`state_call` only) The call failed without revert data (out of gas, invalid
    /// opcode, ...).
    pub const HALTED: i32 = -4;
}

/// Bytes of a `state_account` answer: balance (32) ‖ nonce (8) ‖ code hash (32).
pub const ACCOUNT_LEN: usize = 72;

/// The first buffer offered for a variable-length answer (code, call output). A longer
/// answer costs one more host call, answered from the runner's cache.
pub const INITIAL_BUFFER: usize = 4096;

/// Host calls made for one variable-length read at most: the first, and one retry with the
/// length the host asked for (a third only if the host asks for more again).
const MAX_ATTEMPTS: usize = 3;

/// `keccak256("")`: the code hash of an account without code.
pub const EMPTY_CODE_HASH: B256 = alloy_primitives::KECCAK256_EMPTY;

/// The `xxfunc` state imports as byte-level calls, exactly as `docs/abi.md` specifies
/// them: fixed-size arrays for fixed-size fields, `out`'s length as `out_cap`, and `len`
/// for `*len_ptr` (written on OK, REVERTED and BUFFER_TOO_SMALL). Each method returns one
/// of the [`status`] codes.
///
/// On `wasm32-wasip1` the runner implements it; elsewhere implement it to give a
/// [`State`] to native tests ([`State::with_host`]). [`State`] does the rest: the
/// length protocol, decoding, and mapping statuses to [`StateError`].
pub trait Host: Send + Sync {
    /// `state_account(addr_ptr, out_ptr) -> i32`.
    fn account(&self, address: &[u8; 20], out: &mut [u8; ACCOUNT_LEN]) -> i32;
    /// `state_storage(addr_ptr, slot_ptr, out_ptr) -> i32`.
    fn storage(&self, address: &[u8; 20], slot: &[u8; 32], out: &mut [u8; 32]) -> i32;
    /// `state_code(addr_ptr, out_ptr, out_cap, len_ptr) -> i32`.
    fn code(&self, address: &[u8; 20], out: &mut [u8], len: &mut u32) -> i32;
    /// `state_call(req_ptr, req_len, out_ptr, out_cap, len_ptr) -> i32`; `request` is
    /// [`CallRequest::encode`]'s layout.
    fn call(&self, request: &[u8], out: &mut [u8], len: &mut u32) -> i32;
}

/// A shared host: keep a handle to it (e.g. to inspect a test host) while a [`State`]
/// uses it.
impl<H: Host + ?Sized> Host for Arc<H> {
    fn account(&self, address: &[u8; 20], out: &mut [u8; ACCOUNT_LEN]) -> i32 {
        (**self).account(address, out)
    }
    fn storage(&self, address: &[u8; 20], slot: &[u8; 32], out: &mut [u8; 32]) -> i32 {
        (**self).storage(address, slot, out)
    }
    fn code(&self, address: &[u8; 20], out: &mut [u8], len: &mut u32) -> i32 {
        (**self).code(address, out, len)
    }
    fn call(&self, request: &[u8], out: &mut [u8], len: &mut u32) -> i32 {
        (**self).call(request, out, len)
    }
}

/// Why a state read gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// `STATE_UNAVAILABLE`: the runner could not read the state at this block.
    #[error(
        "chain state unavailable at this block (pruned, backend down or past the invocation's \
         deadline): not the function's fault; the runner delivers this event again later"
    )]
    Unavailable,
    /// `LIMIT_EXCEEDED`: the invocation's cap on host calls or answer bytes was reached.
    #[error(
        "this invocation reached its limit on state reads (host calls or answer bytes): read \
         less per block, or ask the runner's operator for a higher limit"
    )]
    LimitExceeded,
    /// `BAD_ARGUMENT`: the runner rejected the request as malformed.
    #[error(
        "the runner rejected a state request as malformed (a pointer or length outside the \
         function's memory, or a request shorter than its fixed fields)"
    )]
    BadArgument,
    /// `REVERTED`: the call reverted; this is its revert data (possibly empty).
    #[error("the call reverted{}", revert_detail(.0))]
    Reverted(Bytes),
    /// `HALTED`: the call failed without revert data.
    #[error(
        "the call halted without revert data (out of gas, invalid opcode, stack overflow, ...); \
         the same call at this block always halts"
    )]
    Halted,
    /// No host answers state reads here: not built for `wasm32-wasip1`, and no [`Host`]
    /// was given ([`State::with_host`]).
    #[error(
        "no xxfunc host: chain-state reads need the xxfunc runner (this build is not for \
         wasm32-wasip1 and the State was given no Host)"
    )]
    NoHost,
    /// The answer is larger than the function can allocate.
    #[error("the runner's answer of {needed} bytes does not fit in the function's memory")]
    TooLarge {
        /// Bytes the runner asked for.
        needed: u64,
    },
    /// A call succeeded but its return data is not what the declared function returns.
    #[error("cannot decode what {to:#x} answered to {call} ({len} bytes{}): {reason}", empty_hint(*.len, .to))]
    Decode {
        /// The function's signature, e.g. `balanceOf(address)`.
        call: &'static str,
        /// The called contract.
        to: Address,
        /// Length of the return data.
        len: usize,
        /// What the decoder said.
        reason: String,
    },
    /// The runner answered outside the documented protocol (an unknown status, a length
    /// past the buffer): the runner and this SDK disagree on `docs/abi.md`.
    #[error("the runner broke the state ABI in {import}: {detail}")]
    Protocol {
        /// The import, e.g. `state_code`.
        import: &'static str,
        /// What was wrong.
        detail: String,
    },
}

/// Solidity's `Error(string)` selector.
const ERROR_SELECTOR: [u8; 4] = [0x08, 0xc3, 0x79, 0xa0];
/// Solidity's `Panic(uint256)` selector.
const PANIC_SELECTOR: [u8; 4] = [0x4e, 0x48, 0x7b, 0x71];

/// How `Reverted`'s message shows the revert data. It decodes the two standard forms by
/// hand because this `Display` is linked into every module (it is part of
/// `xxfunc::Error`), and alloy's generic decoder would add about 9 KB to each;
/// [`StateError::revert_reason`] uses alloy's.
fn revert_detail(data: &Bytes) -> String {
    let word = |at: usize| -> Option<usize> {
        let word = data.get(at..at + 32)?;
        let (high, low) = word.split_at(24);
        high.iter()
            .all(|&b| b == 0)
            .then(|| u64::from_be_bytes(low.try_into().expect("8 bytes by split_at")))
            .and_then(|n| usize::try_from(n).ok())
    };
    if data.is_empty() {
        return " without revert data".to_string();
    }
    if data.starts_with(&ERROR_SELECTOR)
        && word(4) == Some(32)
        && let Some(len) = word(36)
        && let Some(text) = data.get(68..68usize.saturating_add(len))
        && let Ok(text) = std::str::from_utf8(text)
    {
        return format!(" (revert: {text})");
    }
    if data.len() == 36
        && data.starts_with(&PANIC_SELECTOR)
        && let Some(code) = word(4)
    {
        return format!(" (panic: code {code:#x})");
    }
    if data.len() <= 68 {
        format!(" with data {data}")
    } else {
        format!(
            " with {} bytes of data starting {}…",
            data.len(),
            Bytes::copy_from_slice(&data[..64])
        )
    }
}

fn empty_hint(len: usize, to: &Address) -> String {
    if len == 0 {
        format!(
            "; an account without code answers every call with nothing: is {to:#x} a contract at this block?"
        )
    } else {
        String::new()
    }
}

impl StateError {
    /// Maps a status that is not an answer to its error. `import` names the host call for
    /// [`StateError::Protocol`].
    fn from_status(status: i32, import: &'static str) -> Self {
        match status {
            status::STATE_UNAVAILABLE => Self::Unavailable,
            status::LIMIT_EXCEEDED => Self::LimitExceeded,
            status::BAD_ARGUMENT => Self::BadArgument,
            status::HALTED if import == "state_call" => Self::Halted,
            other => Self::Protocol {
                import,
                detail: format!("status {other} is not an answer this import gives"),
            },
        }
    }

    /// The revert reason when the revert data is a Solidity `Error(string)` or
    /// `Panic(uint256)`, e.g. `revert: balance`.
    pub fn revert_reason(&self) -> Option<String> {
        match self {
            Self::Reverted(data) => GenericContractError::abi_decode(data)
                .ok()
                .map(|reason| reason.to_string()),
            _ => None,
        }
    }
}

/// An account as of the event's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// Balance in wei.
    pub balance: U256,
    /// Transactions sent (or, for a contract, contracts created).
    pub nonce: u64,
    /// keccak256 of the account's code; [`EMPTY_CODE_HASH`] without code.
    pub code_hash: B256,
}

impl Account {
    /// Whether the account has code (a contract, or an EIP-7702 delegation).
    pub fn has_code(&self) -> bool {
        self.code_hash != EMPTY_CODE_HASH && self.code_hash != B256::ZERO
    }

    /// Decodes the 72-byte `state_account` answer.
    fn decode(out: &[u8; ACCOUNT_LEN]) -> Self {
        let (balance, rest) = out.split_at(32);
        let (nonce, code_hash) = rest.split_at(8);
        Self {
            balance: U256::from_be_slice(balance),
            nonce: u64::from_be_bytes(nonce.try_into().expect("8 bytes by split_at")),
            code_hash: B256::from_slice(code_hash),
        }
    }
}

/// A read-only call: `to` and its calldata, optionally a sender, a value and a gas cap.
///
/// # Examples
///
/// ```
/// use xxfunc::{CallRequest, U256};
/// use xxfunc::primitives::{address, bytes};
/// let request = CallRequest::new(address!("0x5FbDB2315678afecb367f032d93F642f64180aa3"), bytes!("18160ddd"))
///     .from(address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"))
///     .value(U256::from(1))
///     .gas(100_000);
/// assert_eq!(request.encode().len(), 20 + 20 + 32 + 8 + 4);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRequest {
    to: Address,
    from: Option<Address>,
    value: U256,
    gas: u64,
    calldata: Bytes,
}

impl CallRequest {
    /// Bytes before the calldata: to (20) ‖ from (20) ‖ value (32) ‖ gas (8).
    pub const FIXED_LEN: usize = 80;

    /// A call of `to` with `calldata`, no sender, no value, the runner's gas cap.
    pub fn new(to: Address, calldata: impl Into<Bytes>) -> Self {
        Self {
            to,
            from: None,
            value: U256::ZERO,
            gas: 0,
            calldata: calldata.into(),
        }
    }

    /// A call of `to` with an ABI-encoded [`sol!`](crate::sol) function call.
    pub fn sol<C: SolCall>(to: Address, call: &C) -> Self {
        Self::new(to, call.abi_encode())
    }

    /// Calls as `from` (`msg.sender`). The zero address means no sender, as if unset.
    pub fn from(mut self, from: Address) -> Self {
        self.from = Some(from);
        self
    }

    /// Sends `value` wei with the call.
    pub fn value(mut self, value: U256) -> Self {
        self.value = value;
        self
    }

    /// Caps the call's gas; `0` (the default) means the runner's per-call cap, which also
    /// bounds any larger value.
    pub fn gas(mut self, gas: u64) -> Self {
        self.gas = gas;
        self
    }

    /// The called contract.
    pub fn to(&self) -> Address {
        self.to
    }

    /// The calldata.
    pub fn calldata(&self) -> &Bytes {
        &self.calldata
    }

    /// The request as `state_call` takes it: to (20) ‖ from (20; all-zero = none) ‖
    /// value (32, big-endian) ‖ gas (8, big-endian; 0 = the cap) ‖ calldata.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::FIXED_LEN + self.calldata.len());
        out.extend_from_slice(self.to.as_slice());
        out.extend_from_slice(self.from.unwrap_or(Address::ZERO).as_slice());
        out.extend_from_slice(&self.value.to_be_bytes::<32>());
        out.extend_from_slice(&self.gas.to_be_bytes());
        out.extend_from_slice(&self.calldata);
        out
    }
}

/// Reads chain state as of the event's block; see the [module docs](self).
///
/// Cheap to clone (a pointer at most). Every method is one host call (two when a
/// variable-length answer is longer than [`INITIAL_BUFFER`]).
#[derive(Clone)]
pub struct State {
    host: Backend,
}

#[derive(Clone)]
enum Backend {
    /// The `xxfunc` imports of the runner (`wasm32-wasip1` only).
    #[cfg(target_os = "wasi")]
    Imports,
    /// A host given with [`State::with_host`].
    Custom(Arc<dyn Host>),
    /// No host on this target.
    #[cfg(not(target_os = "wasi"))]
    Missing,
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host {
            #[cfg(target_os = "wasi")]
            Backend::Imports => "xxfunc imports",
            Backend::Custom(_) => "custom host",
            #[cfg(not(target_os = "wasi"))]
            Backend::Missing => "no host",
        };
        f.debug_struct("State").field("host", &host).finish()
    }
}

impl Default for State {
    fn default() -> Self {
        Self::imports()
    }
}

impl State {
    /// The runner's `xxfunc` imports. On targets other than WASI there are none, and every
    /// read fails with [`StateError::NoHost`].
    pub fn imports() -> Self {
        #[cfg(target_os = "wasi")]
        let host = Backend::Imports;
        #[cfg(not(target_os = "wasi"))]
        let host = Backend::Missing;
        Self { host }
    }

    /// A state answered by `host`, for tests and native runs.
    pub fn with_host(host: impl Host + 'static) -> Self {
        Self {
            host: Backend::Custom(Arc::new(host)),
        }
    }

    fn host(&self) -> Result<HostRef<'_>, StateError> {
        match &self.host {
            #[cfg(target_os = "wasi")]
            Backend::Imports => Ok(HostRef::Imports),
            Backend::Custom(host) => Ok(HostRef::Custom(host.as_ref())),
            #[cfg(not(target_os = "wasi"))]
            Backend::Missing => Err(StateError::NoHost),
        }
    }

    /// Balance, nonce and code hash of `address` (zero, 0 and [`EMPTY_CODE_HASH`] when it
    /// does not exist).
    ///
    /// # Errors
    ///
    /// [`StateError::Unavailable`], [`StateError::LimitExceeded`],
    /// [`StateError::BadArgument`], [`StateError::NoHost`], [`StateError::Protocol`].
    pub fn account(&self, address: Address) -> Result<Account, StateError> {
        let host = self.host()?;
        let mut out = [0u8; ACCOUNT_LEN];
        match host.account(&address.0.0, &mut out) {
            status::OK => Ok(Account::decode(&out)),
            other => Err(StateError::from_status(other, "state_account")),
        }
    }

    /// Balance of `address` in wei. One [`State::account`] read.
    ///
    /// # Errors
    ///
    /// As [`State::account`].
    pub fn balance(&self, address: Address) -> Result<U256, StateError> {
        Ok(self.account(address)?.balance)
    }

    /// Nonce of `address`. One [`State::account`] read.
    ///
    /// # Errors
    ///
    /// As [`State::account`].
    pub fn nonce(&self, address: Address) -> Result<u64, StateError> {
        Ok(self.account(address)?.nonce)
    }

    /// Code hash of `address`. One [`State::account`] read.
    ///
    /// # Errors
    ///
    /// As [`State::account`].
    pub fn code_hash(&self, address: Address) -> Result<B256, StateError> {
        Ok(self.account(address)?.code_hash)
    }

    /// The 32-byte storage word of `address` at `slot` (zero when unset). `slot` may be a
    /// `B256` or a `U256`; `U256::from(word)` reads the word as a number.
    ///
    /// # Errors
    ///
    /// As [`State::account`].
    pub fn storage(&self, address: Address, slot: impl Into<B256>) -> Result<B256, StateError> {
        let host = self.host()?;
        let slot = slot.into();
        let mut out = [0u8; 32];
        match host.storage(&address.0.0, &slot.0, &mut out) {
            status::OK => Ok(B256::from(out)),
            other => Err(StateError::from_status(other, "state_storage")),
        }
    }

    /// The code of `address` (empty when it has none).
    ///
    /// # Errors
    ///
    /// As [`State::account`], and [`StateError::TooLarge`] when the code does not fit in
    /// memory.
    pub fn code(&self, address: Address) -> Result<Bytes, StateError> {
        let host = self.host()?;
        let (status, code) =
            read_variable("state_code", |out, len| host.code(&address.0.0, out, len))?;
        match status {
            status::OK => Ok(code.into()),
            other => Err(StateError::from_status(other, "state_code")),
        }
    }

    /// Calls `to` with `calldata` (no sender, no value, the runner's gas cap) and returns
    /// its return data. See [`State::call_with`] for the rest.
    ///
    /// # Errors
    ///
    /// As [`State::call_with`].
    pub fn call(&self, to: Address, calldata: impl Into<Bytes>) -> Result<Bytes, StateError> {
        self.call_with(&CallRequest::new(to, calldata))
    }

    /// Runs `request` as `eth_call` does, on the state as of the event's block, and returns
    /// the return data. Calling an account without code succeeds with no data.
    ///
    /// # Errors
    ///
    /// [`StateError::Reverted`] with the revert data, [`StateError::Halted`] when it
    /// fails without any (out of gas, ...), and the errors of [`State::code`].
    pub fn call_with(&self, request: &CallRequest) -> Result<Bytes, StateError> {
        let host = self.host()?;
        let encoded = request.encode();
        let (status, output) =
            read_variable("state_call", |out, len| host.call(&encoded, out, len))?;
        match status {
            status::OK => Ok(output.into()),
            status::REVERTED => Err(StateError::Reverted(output.into())),
            other => Err(StateError::from_status(other, "state_call")),
        }
    }

    /// Calls a function declared with [`sol!`](crate::sol) on `to` and decodes its return
    /// value.
    ///
    /// # Errors
    ///
    /// As [`State::call_with`], and [`StateError::Decode`] when the return data is not
    /// what the declaration returns (e.g. empty, from an account without code).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn main() -> Result<(), xxfunc::StateError> {
    /// # let state = xxfunc::State::imports();
    /// use xxfunc::primitives::address;
    /// xxfunc::sol! {
    ///     interface IPair {
    ///         function getReserves() external view returns (uint112 reserve0, uint112 reserve1, uint32 time);
    ///     }
    /// }
    /// let pair = address!("0xB4e16d0168e52d35CaCD2c6185b44281Ec28C9Dc");
    /// # if false {
    /// let reserves = state.sol_call(pair, &IPair::getReservesCall {})?;
    /// println!("{} {}", reserves.reserve0, reserves.reserve1);
    /// # }
    /// # Ok(()) }
    /// ```
    pub fn sol_call<C: SolCall>(&self, to: Address, call: &C) -> Result<C::Return, StateError> {
        let output = self.call_with(&CallRequest::sol(to, call))?;
        C::abi_decode_returns(&output).map_err(|err| StateError::Decode {
            call: C::SIGNATURE,
            to,
            len: output.len(),
            reason: err.to_string(),
        })
    }
}

/// The host a read goes to. The imports are called statically, never through a `dyn
/// Host` vtable: a vtable would link all four imports into every module that reads any
/// state, and a module may only import what it calls (a module that reads no state has
/// no `xxfunc` import at all, so stock WASI runtimes still run it).
enum HostRef<'a> {
    #[cfg(target_os = "wasi")]
    Imports,
    Custom(&'a dyn Host),
}

impl Host for HostRef<'_> {
    fn account(&self, address: &[u8; 20], out: &mut [u8; ACCOUNT_LEN]) -> i32 {
        match self {
            #[cfg(target_os = "wasi")]
            Self::Imports => imports::Imports.account(address, out),
            Self::Custom(host) => host.account(address, out),
        }
    }
    fn storage(&self, address: &[u8; 20], slot: &[u8; 32], out: &mut [u8; 32]) -> i32 {
        match self {
            #[cfg(target_os = "wasi")]
            Self::Imports => imports::Imports.storage(address, slot, out),
            Self::Custom(host) => host.storage(address, slot, out),
        }
    }
    fn code(&self, address: &[u8; 20], out: &mut [u8], len: &mut u32) -> i32 {
        match self {
            #[cfg(target_os = "wasi")]
            Self::Imports => imports::Imports.code(address, out, len),
            Self::Custom(host) => host.code(address, out, len),
        }
    }
    fn call(&self, request: &[u8], out: &mut [u8], len: &mut u32) -> i32 {
        match self {
            #[cfg(target_os = "wasi")]
            Self::Imports => imports::Imports.call(request, out, len),
            Self::Custom(host) => host.call(request, out, len),
        }
    }
}

/// The length protocol of `state_code` and `state_call`: offer [`INITIAL_BUFFER`] bytes;
/// on BUFFER_TOO_SMALL grow to the length the host asks for and call again. Returns the
/// answering status with the answer (OK or REVERTED), or the error status untouched.
fn read_variable(
    import: &'static str,
    mut call: impl FnMut(&mut [u8], &mut u32) -> i32,
) -> Result<(i32, Vec<u8>), StateError> {
    let mut buffer = vec![0u8; INITIAL_BUFFER];
    for _ in 0..MAX_ATTEMPTS {
        let mut len = 0u32;
        let status = call(&mut buffer, &mut len);
        let len = len as usize;
        match status {
            status::OK | status::REVERTED => {
                if len > buffer.len() {
                    return Err(StateError::Protocol {
                        import,
                        detail: format!("answered {len} bytes into a buffer of {}", buffer.len()),
                    });
                }
                buffer.truncate(len);
                return Ok((status, buffer));
            }
            status::BUFFER_TOO_SMALL => {
                if len <= buffer.len() {
                    return Err(StateError::Protocol {
                        import,
                        detail: format!(
                            "said a buffer of {} bytes is too small for {len} bytes",
                            buffer.len()
                        ),
                    });
                }
                buffer
                    .try_reserve_exact(len - buffer.len())
                    .map_err(|_| StateError::TooLarge { needed: len as u64 })?;
                buffer.resize(len, 0);
            }
            other => return Ok((other, Vec::new())),
        }
    }
    Err(StateError::Protocol {
        import,
        detail: format!("still asked for a bigger buffer after {MAX_ATTEMPTS} attempts"),
    })
}

#[cfg(test)]
mod tests;
