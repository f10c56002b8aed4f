//! Content-addressed storage of WebAssembly modules.
//!
//! This crate owns module *bytes* and their identity: a module is named by the blake3 hash
//! of its exact bytes, written `blake3:<64 lowercase hex>` ([`ModuleHash`]). It stores them
//! in any [`object_store`] backend chosen by URL and checks every byte it hands back.
//!
//! It never knows about function names, desired states, pins or history (the gateway's
//! registry owns those), never speaks HTTP to users, and never runs or validates wasm.
//!
//! # Key types
//!
//! - [`ModuleStore`]: `put` / `put_stream`, `get` / `get_stream`, `contains`, `size`,
//!   `list`, `delete`, `resolve`; `put_recorded` / `upload_records` keep the time of each
//!   upload in the store itself, so any process can tell a fresh upload. Cheap to clone;
//!   share one per process.
//! - [`ModuleHash`]: a full hash; [`HashPrefix`]: what a user may type (≥ 8 hex digits);
//!   [`resolve_in`] resolves a prefix against any list of hashes. These identities are
//!   defined in `xxfunc-primitives` and re-exported here.
//! - [`StoreConfig`]: maximum module size (default 64 MiB), S3 options, timeouts.
//! - [`StoreError`] and [`Result`]: every failure names the hash, key or URL involved.
//!
//! # Backends
//!
//! | URL | backend |
//! |---|---|
//! | `file:///abs/path` | local directory (created if missing) |
//! | `s3://bucket/prefix` | S3 or any S3-compatible server; endpoint, region and credentials from `AWS_*` variables and/or [`StoreConfig::with_option`]; plain `http://` is allowed automatically for loopback endpoints, elsewhere only with `AWS_ALLOW_HTTP=true` |
//! | `memory://` | in-process, for tests |
//!
//! # Key layout
//!
//! Under the URL's prefix (empty for `file://`):
//!
//! - `blake3/<64 lowercase hex>`: one object per module, holding its exact bytes.
//! - `uploads/<64 lowercase hex>`: an empty object written by `put_recorded` just before
//!   the module; its last-modified time is the time of the latest recorded upload.
//! - `tmp/<32 hex>`: a streamed upload of more than 8 MiB while it is being written; it is
//!   copied to its final key and deleted when complete, and aborted on any error. Only a
//!   crash can leave one behind; they are never listed and may be deleted when old.
//!
//! The local backend additionally writes `<key>#<n>` staging files that are renamed or
//! hard-linked into place.
//!
//! # Guarantees
//!
//! - **Idempotent, concurrency-safe `put`.** Final keys are only ever written with
//!   create-if-absent operations (`PutMode::Create`; copy-if-not-exists for streamed
//!   uploads): the first writer wins, later ones get `created: false`. A reader never sees a
//!   partially written object under a final key.
//! - **Verify on read.** `get` re-hashes; a mismatch (flipped bits, truncation) is
//!   [`StoreError::Corrupt`] and the bytes are withheld. [`ModuleStream`] verifies at its
//!   end, so a streaming reader must not trust chunks until the stream ends cleanly.
//! - **Size limit first.** Modules larger than the configured maximum are rejected before
//!   anything is stored; streamed uploads stop as soon as they cross it.
//! - **Fail fast.** S3 requests use a 3 s connect timeout and a small retry budget, so a
//!   server that is down is reported within seconds as [`StoreError::Backend`], naming the
//!   operation, key and endpoint.
//!
//! # Example
//!
//! ```
//! use xxfunc_store::{ModuleHash, ModuleStore, StoreError};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), StoreError> {
//! let store = ModuleStore::open("memory://")?;
//!
//! let module = b"\0asm\x01\0\0\0".to_vec();
//! let first = store.put(module.clone()).await?;
//! assert!(first.created);
//! assert_eq!(first.hash, ModuleHash::of(&module));
//! assert!(!store.put(module.clone()).await?.created); // idempotent
//!
//! // Users may type a unique prefix of at least 8 hex digits.
//! let typed = format!("blake3:{}", first.hash.short(8));
//! assert_eq!(store.resolve(&typed).await?, first.hash);
//!
//! assert_eq!(store.get(&first.hash).await?, module);
//! assert_eq!(store.list().await?, vec![first.hash]);
//!
//! store.delete(&first.hash).await?;
//! assert!(matches!(store.get(&first.hash).await, Err(StoreError::NotFound { .. })));
//! # Ok(())
//! # }
//! ```

mod config;
mod error;
mod hash;
mod store;
mod stream;

#[cfg(feature = "test-utils")]
pub mod test_utils;

pub use config::{DEFAULT_MAX_MODULE_SIZE, StoreConfig};
pub use error::{Result, StoreError, StoreOp};
pub use hash::{HASH_HEX_LEN, HASH_SCHEME, HashPrefix, MIN_PREFIX_HEX_LEN, ModuleHash, resolve_in};
pub use store::{ModuleStore, PutOutcome, UploadRecord};
pub use stream::ModuleStream;
