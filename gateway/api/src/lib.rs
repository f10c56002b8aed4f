//! The xxfunc API contract: request, response and change-feed types of the
//! gateway's `/v1` HTTP API, module validation, and a typed HTTP client. The
//! identities in these types (module hashes, function names and ids, block
//! refs, event kinds) are `xxfunc-primitives`' and re-exported here.
//!
//! This crate is shared by the gateway (which serves the types), the runner
//! (which follows the change feed and reports back) and `cargo xxfunc` (which
//! prints them with `--json`). It never depends on actix and never touches
//! RocksDB: it is the seam, not a side of it.
//!
//! ```
//! use xxfunc_api::FunctionName;
//! let name: FunctionName = "erc20-transfers".parse().unwrap();
//! assert_eq!(name.as_str(), "erc20-transfers");
//! assert!("Erc20".parse::<FunctionName>().is_err());
//! ```

pub mod client;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod selector;
pub mod types;
pub mod validate;

pub use selector::{InvalidSelector, Selector};
pub use types::*;
pub use validate::{ModuleInfo, ValidationError, validate_module};
pub use xxfunc_primitives::{
    BlockRef, EventKind, FunctionId, FunctionName, HashPrefix, InvalidName, ModuleHash,
};
