//! The xxfunc registry: names, versions, pins, desired states, runner reports
//! and the numbered change feed, on RocksDB.
//!
//! This is the one registry. The gateway serves it over HTTP, `cargo xxfunc
//! --offline` uses it in-process, and the runner follows its change feed
//! (through the gateway, or directly offline). It never stores or reads module
//! bytes (that is `xxfunc-store`), never speaks HTTP and never runs wasm.
//!
//! # Data model
//!
//! - A **name** ([`FunctionName`]) is bound to a module hash; every bind that
//!   changes the hash records a new **version** (1, 2, ...) in its history.
//! - A **function** runs under a [`FunctionId`]: a bound name (it runs the
//!   name's current hash, or its pinned hash), or a hash (`start <hash>`).
//! - A **pin** keeps a name on its hash across deploys, or keeps a hash from
//!   garbage collection.
//! - The **desired state** (`started` / `stopped`, start position and a start
//!   generation) is what runners act on.
//! - Each runner **reports** per function (observed state, cursor, counters), kept per
//!   (function, runner), and pushes each function's **outcome log**
//!   ([`Registry::record_outcomes`]): every invocation numbered by seq, its output
//!   records numbered as items. Applications read the items by cursor
//!   ([`Registry::outputs`], optionally only blocks N deep), and `logs` shows the last
//!   outcomes; both read one runner's log, never a mix.
//! - The **change feed** numbers every change from 1 without gaps; each
//!   entry carries the function's full [`FunctionSpec`] after the change, so
//!   a runner that applies [`Registry::snapshot`] then
//!   [`Registry::feed_after`] is exactly in sync.
//!
//! # Guarantees
//!
//! - Each operation is one RocksDB `WriteBatch` written with a synced WAL:
//!   when a call returns `Ok`, the change survives a crash (`kill -9`, power
//!   loss). The feed entry is in the same batch as the change it describes, so
//!   after any crash the feed has no gap and agrees with the state.
//! - Writers are serialised, so read-modify-write operations (version
//!   numbers, feed seqs) never race; the WAL sync happens after the lock is
//!   released, so concurrent writers share syncs (group commit). Readers never
//!   block writers. A reader may see a change a moment before its sync
//!   returns; only a power loss in that moment could take it back.
//! - Repeating an operation is harmless: binding a name to its current hash,
//!   starting a started function from the head, stopping a stopped one,
//!   pinning a pinned one change nothing and add no feed entry.
//! - Selectors (`name`, `blake3:<hash>`, unique prefix) are resolved by one
//!   rule, [`Registry::resolve`].
//! - One process at a time opens a directory: another process's open fails
//!   with [`RegistryError::Locked`], so callers can say who holds it.
//!
//! # Layout
//!
//! The [`Registry`] type and its opening live in `registry.rs`, its
//! operations in submodules named for what they hold: `write` (bind,
//! start/stop, pin/unpin, reports), `read` (names, views, logs, referenced
//! hashes), `feed` (head, snapshot, pages, long polls), `outcomes` (outcome
//! logs and the outputs read from them) and `resolve` (selectors). `schema` is the on-disk layout: column families, keys and
//! stored records.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use xxfunc_api::{DesiredState, FunctionId, ModuleHash, StartFrom};
//! use xxfunc_registry::Registry;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let registry = Registry::open(dir.path())?;
//! let name = "hello".parse()?;
//! let bound = registry.bind(&name, ModuleHash::of(b"v1"))?;
//! assert_eq!(bound.version, 1);
//!
//! let id = FunctionId::Name(name);
//! let spec = registry.start(&id, StartFrom::Head)?;
//! assert_eq!(spec.desired, DesiredState::Started);
//!
//! let page = registry.wait_feed(0, Duration::from_secs(1))?;
//! assert_eq!(page.entries.len(), 2); // deployed, started
//! assert_eq!(registry.snapshot()?.seq, 2);
//! # Ok(())
//! # }
//! ```

mod error;
mod registry;
mod schema;

pub use error::{RegistryError, Result};
pub use registry::{
    DEFAULT_LOGS_PER_FUNCTION, DEFAULT_OUTCOME_BYTES_PER_FUNCTION, DEFAULT_OUTCOMES_PER_FUNCTION,
    DEFAULT_OUTPUTS_PAGE, MAX_CONFIRMATIONS, MAX_FEED_PAGE, MAX_LOGS_BYTES, MAX_OUTPUTS_PAGE,
    MAX_OUTPUTS_PAGE_BYTES, NameBinding, Registry, RegistryOptions,
};
pub use xxfunc_api::{FunctionId, FunctionName, FunctionSpec, Selector};
