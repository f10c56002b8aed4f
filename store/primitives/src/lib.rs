//! The small types every xxfunc crate shares, parsed once into newtypes.
//!
//! This crate owns the identities and positions the other crates pass to each other:
//! a module's `blake3:` hash and the prefixes users type for it, function names and the
//! identities functions run under, blocks as number + hash, the runner's cursor and the
//! direction of a chain event. Each has one text form, one serde form and one parser
//! with a small error that keeps the offending input.
//!
//! It never does I/O, never depends on an async runtime, and builds for `wasm32-wasip1`
//! as well as the host: the store, the API types, the registry, the runner and the guest
//! ABI all take these types from here (and re-export them at their old paths).
//!
//! # Key types
//!
//! - [`ModuleHash`]: `blake3:<64 lowercase hex>` of a module's exact bytes;
//!   [`HashPrefix`]: what a user may type (≥ [`MIN_PREFIX_HEX_LEN`] hex digits);
//!   [`resolve_in`] resolves a prefix against any list of hashes ([`ResolveError`]).
//! - [`FunctionName`] (`[a-z0-9][a-z0-9._-]{0,62}`, [`InvalidName`]) and [`FunctionId`]:
//!   a name, or a module hash for a function started by hash.
//! - [`BlockRef`] (number + hash) and [`Position`]: where a function stands; a cursor is
//!   inclusive, the last fully processed block.
//! - [`admission`]: the WebAssembly the runner's engine runs, which is exactly what the
//!   gateway admits.
//! - [`EventKind`]: commit or revert; byte 1/2 in the envelope, `commit`/`revert` as text
//!   and JSON.
//!
//! # Example
//!
//! ```
//! use xxfunc_primitives::{FunctionId, HashPrefix, ModuleHash, ResolveError, resolve_in};
//!
//! let hash = ModuleHash::of(b"\0asm\x01\0\0\0");
//! let typed: HashPrefix = format!("blake3:{}", hash.short(8)).parse()?;
//! assert_eq!(resolve_in(&typed, [hash])?, hash);
//! assert!(matches!(resolve_in(&typed, []), Err(ResolveError::NotFound { .. })));
//!
//! let id: FunctionId = hash.to_string().parse()?;
//! assert_eq!(id.as_hash(), Some(&hash));
//! let named: FunctionId = "erc20-transfers".parse()?;
//! assert_eq!(named.to_string(), "erc20-transfers");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod admission;
mod block;
mod event;
mod hash;
mod name;

pub use block::{BlockRef, Position};
pub use event::{EventKind, InvalidEventKind};
pub use hash::{
    HASH_HEX_LEN, HASH_SCHEME, HashList, HashPrefix, InvalidHash, MIN_PREFIX_HEX_LEN, ModuleHash,
    ResolveError, resolve_in,
};
pub use name::{FunctionId, FunctionName, InvalidName, MAX_NAME_LEN};
