//! The xxfunc API contract: the wire types of the gateway's `/v1` HTTP API and its
//! change feed, the selector rule users type functions by, and (with the `client`
//! feature) a typed HTTP client.
//!
//! This crate is shared by the gateway (which serves the types), the runner (which
//! follows the change feed and reports back) and `cargo xxfunc` (which prints them with
//! `--json`). It holds types only, plus the pure rules both sides must apply alike
//! ([`outputs`]: how stdout becomes output records, and the confirmations filter): it
//! never does I/O without the `client` feature, never
//! validates modules (that is `xxfunc-service`), never depends on actix, the module store
//! or RocksDB. The identities in these types ([`ModuleHash`], [`FunctionName`],
//! [`FunctionId`], [`BlockRef`], [`EventKind`]) are `xxfunc-primitives`' and re-exported
//! here.
//!
//! # Features
//!
//! - `client`: [`client::Client`], the typed `reqwest` client of every route.
//!
//! ```
//! use xxfunc_api::{FunctionName, Selector};
//! let name: FunctionName = "erc20-transfers".parse().unwrap();
//! assert_eq!(name.as_str(), "erc20-transfers");
//! assert!("Erc20".parse::<FunctionName>().is_err());
//! assert!(matches!("blake3:deadbeef".parse::<Selector>(), Ok(Selector::Hash(_))));
//! ```

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod outputs;
pub mod selector;
pub mod sinks;
pub mod types;

pub use selector::{InvalidSelector, Selector};
pub use types::*;
pub use xxfunc_primitives::{
    BlockRef, EventKind, FunctionId, FunctionName, HashPrefix, InvalidName, ModuleHash,
};
