//! The xxfunc guest SDK: write a function that runs for every block an Ethereum node
//! commits or reverts.
//!
//! A function is a WASI preview-1 command. The runner writes one event envelope (see
//! `docs/abi.md` and [`abi`]) to its stdin; whatever the function [`emit`]s goes to
//! stdout as JSON lines; stderr is its log; exit code 0 means success. This crate hides
//! that protocol behind [`main`] and typed access to the block: [`Event`] (kind, number,
//! hashes, timestamp), [`Transaction`]s with senders, [`Receipt`]s with [`Log`]s,
//! [`LogFilter`] by address and topic, chain-state reads at the event's block
//! ([`Event::state`]: accounts, storage, code, `eth_call`), typed contract bindings with
//! alloy's [`sol!`], and the ERC-20 helpers in [`erc20`] built on both.
//!
//! It owns the guest side only: it never depends on tokio (async `main` runs on a tiny
//! single-threaded executor), never touches the filesystem, network or environment (a
//! guest has none), and decodes transactions and receipts only when asked. State reads
//! are synchronous calls into the runner (the `xxfunc` import module); a module that
//! makes none imports nothing from it and runs under any stock WASI runtime.
//!
//! # Example
//!
//! An ERC-20 indexer that emits one record per transfer, and a retraction for each when a
//! reorg reverts the block:
//!
//! ```no_run
//! use xxfunc::{Event, erc20::Transfer};
//!
//! #[xxfunc::main]
//! fn main(event: Event) -> xxfunc::Result<()> {
//!     let op = if event.is_commit() { "insert" } else { "retract" };
//!     for transfer in Transfer::all(&event)? {
//!         xxfunc::emit(&xxfunc::json!({ "op": op, "block": event.number(), "transfer": transfer }))?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Reading chain state
//!
//! [`Event::state`] reads as of the event's block, by hash: the state after the block on
//! a commit, the same answers again on its revert. Here, the balances after every
//! transfer's block, through `balanceOf`:
//!
//! ```no_run
//! use xxfunc::{Event, erc20::{self, Transfer}};
//!
//! #[xxfunc::main]
//! fn main(event: Event) -> xxfunc::Result<()> {
//!     let state = event.state();
//!     for t in Transfer::all(&event)? {
//!         let to_balance = erc20::balance_of(&state, t.token, t.to)?;
//!         let eth = state.balance(t.to)?;
//!         xxfunc::emit(&xxfunc::json!({
//!             "to": t.to, "token_balance": to_balance.to_string(), "wei": eth.to_string(),
//!         }))?;
//!     }
//!     Ok(())
//! }
//! ```
//!
//! A failed read is a [`StateError`] (`?` turns it into [`Error::State`]):
//! [`StateError::Unavailable`] is not the function's fault and the runner delivers the
//! event again later; a reverted call carries its revert data. Contracts of your own are
//! declared with [`sol!`] and called with [`State::sol_call`]; see [`erc20`] for a worked
//! example and [`state`] for limits and native testing.
//!
//! Build it with `cargo build --target wasm32-wasip1 --release` and run it by hand:
//! `wasmtime run target/wasm32-wasip1/release/my_fn.wasm < fixtures/events/0001-commit-1.bin`.
//!
//! `#[xxfunc::main]` also accepts `async fn main(event: Event) -> Result<(), E>` and the
//! raw form `async fn main(data: &[u8])`, which receives the undecoded envelope. Errors
//! (any `E: Display`) print on stderr and exit 1; a panic prints and exits 101.
//!
//! Functions written for the original xxfunc run unchanged, in exactly the form it
//! documented, with or without `#![no_main]` at the top of `main.rs` (not compiled as a
//! doctest: under `#![no_main]` only a `wasm32-wasip1` build has an entry point):
//!
//! ```ignore
//! #![no_main]
//!
//! #[xxfunc::main]
//! async fn main(data: &[u8]) {
//!     println!("Hello, world from wasi!, exex notification data: {:?}", data);
//! }
//! ```
//!
//! `data` is the event envelope. Both forms are WASI commands a stock runtime starts at
//! `_start` (under `#![no_main]` the macro provides the C entry point that `_start` calls);
//! `guest/examples/hello-upstream` is this function, checked on every fixture event.

mod error;
mod event;
mod filter;
mod output;

pub mod erc20;
pub mod state;

/// Runtime used by the code `#[xxfunc::main]` generates. Not a stable API.
#[doc(hidden)]
pub mod __private {
    pub use crate::runtime::{block_on, decode_event, finish, start};
}
mod runtime;

pub use error::{Error, Result};
pub use event::{Event, Log, Receipt, Status, Transaction};
pub use filter::LogFilter;
pub use output::{emit, flush};
pub use runtime::{EXIT_BAD_ENVELOPE, EXIT_ERROR, EXIT_PANIC};
pub use state::{Account, CallRequest, State, StateError};
/// Marks the function's entry point; see the crate docs for the accepted forms.
pub use xxfunc_macros::main;

/// The envelope codec shared with the runner.
pub use xxfunc_abi as abi;
pub use xxfunc_abi::EventKind;

/// Ethereum primitive types (`Address`, `B256`, `U256`, `Bytes`, `address!`, ...).
pub use alloy_primitives as primitives;
pub use alloy_primitives::{Address, B256, Bytes, U256};

/// alloy's Solidity ABI types and traits (`SolCall`, `SolEvent`, `SolValue`, ...), for
/// bindings declared with [`sol!`].
pub use alloy_sol_types as sol_types;

/// Declares Solidity types, events, errors, functions and interfaces as Rust types:
/// alloy's [`sol!`](alloy_sol_types::sol), pointed at [`sol_types`] so a function needs no
/// `alloy-sol-types` dependency of its own. Everything `alloy_sol_types::sol!` takes works
/// (except file-level `#![sol(...)]` attributes, which this wrapper sets).
///
/// # Examples
///
/// ```
/// use xxfunc::sol_types::SolCall;
/// xxfunc::sol! {
///     function transfer(address to, uint256 value) external returns (bool);
/// }
/// let call = transferCall { to: xxfunc::Address::ZERO, value: xxfunc::U256::from(5) };
/// assert_eq!(call.abi_encode().len(), 4 + 32 + 32);
/// assert_eq!(transferCall::SIGNATURE, "transfer(address,uint256)");
/// ```
#[macro_export]
macro_rules! sol {
    ($($item:tt)*) => {
        $crate::sol_types::sol! {
            #![sol(alloy_sol_types = $crate::sol_types)]
            $($item)*
        }
    };
}

/// Re-exported so functions can derive `Serialize` without their own dependency
/// (`#[derive(xxfunc::serde::Serialize)] #[serde(crate = "xxfunc::serde")]`).
pub use serde;
pub use serde_json;
/// JSON values for [`emit`]: `xxfunc::json!({ "block": n })`.
pub use serde_json::json;
