//! The xxfunc runner core: runs WebAssembly functions on chain events, fast,
//! isolated and exactly once.
//!
//! This crate owns the wasmtime engine and its limits, the compiled-module
//! cache (memory and disk), per-function cursors and outcome logs in the
//! runner's own RocksDB (and the thread that pushes them to the registry), the chain sources (fixture replay and a JSON-RPC
//! follower) behind one [`ChainSource`] trait, the desired-state seam
//! ([`Registry`]), what a node adapter tells its node (the resume head and
//! `FinishedHeight`: [`NodeLink`]), and the runner's Prometheus metrics and
//! their endpoint ([`metrics`]). It never parses users' HTTP requests, never
//! depends on reth (the ExEx adapter is a thin crate that implements
//! [`ChainSource`] and [`BlockHashes`] and calls [`NodeLink`]), and never
//! decides names or versions (the registry does).
//!
//! # Features
//!
//! | feature | what it adds | pulls in |
//! |---|---|---|
//! | `cli` (default) | `RunnerArgs`, the flags every runner binary takes, and the `xxfunc-runner` binary; implies `gateway` and `local-registry` | clap, anyhow, tracing-subscriber |
//! | `gateway` | `GatewayRegistry` and `GatewayModules`: desired state and modules through a gateway's HTTP API | the `xxfunc-api` client |
//! | `local-registry` | `LocalRegistry`: desired state from the in-process RocksDB registry | `xxfunc-registry` |
//! | `test-utils` | `test_utils::Harness` and `test_utils::NodeHarness` | tempfile |
//! | `sink-webhook` (in `cli`) | the webhook sink | reqwest, hmac, sha2 |
//! | `sink-postgres` | the PostgreSQL sink | tokio-postgres, deadpool-postgres |
//! | `sink-nats` | the NATS JetStream sink | async-nats |
//!
//! Without any (`default-features = false`) the core remains: engine, cache,
//! runner, chain sources, [`serve`], metrics and the node logic.
//!
//! # Core concepts
//!
//! - [`WasmEngine`]: **one per process**. A wasmtime `Engine` with the pooling
//!   allocator, epoch interruption (a ticker thread bounds each invocation's
//!   wall time), optional fuel and a per-instance memory cap, plus one WASI
//!   preview-1 `Linker` whose `poll_oneoff` answers sleeps at once on a
//!   virtual clock.
//! - [`ModuleCache`]: **one `InstancePre` per module hash**, in memory, and a
//!   precompiled artifact per hash on disk under
//!   `artifacts/<engine fingerprint>/`, checksummed, written atomically; a bad
//!   artifact is discarded and rebuilt, never loaded.
//! - **One `Store` per invocation**: a fresh instance per event, stdin = the
//!   event envelope, stdout = output, stderr = log (both capped), clock =
//!   block timestamp, random seeded from block hash and module hash. See
//!   [`WasmEngine::invoke`] and [`Outcome`].
//! - [`Runner`]: functions, cursors and group commit. [`Runner::process`]
//!   runs a batch of events (functions in parallel on `workers` threads, each
//!   function in order) and writes every cursor, outcome and the source
//!   checkpoint in one synced RocksDB batch. [`Runner::safe_height`] is what
//!   the node may be told as `FinishedHeight`.
//! - **Outcome log**: per function, every invocation's outcome numbered by
//!   seq (raw stdout bytes, stderr, status, block), read in pages with
//!   [`Runner::outcomes`]; pruned in the commit batch once every consumer
//!   (the registry, [`Runner::add_consumer`]) acknowledged an outcome and its
//!   block is final, or when the byte budget forces it (counted, logged).
//! - [`serve`]: the loop a binary runs: a [`ChainSource`] thread, a
//!   [`Registry`] feed thread, the outcome pusher thread (pages by seq to
//!   [`Registry::push_outcomes`], resent from the stored acknowledgement),
//!   reports, backfill rounds when idle; its
//!   [`StatusHandle`] is what embedders watch (report, metrics, node errors).
//! - **Sinks** ([`Runner::add_sink`], `--sink`): each delivers one
//!   function's outputs to a webhook, PostgreSQL or NATS JetStream from a
//!   thread of its own, with its own cursor and confirmations depth, strictly
//!   in order, retried with backoff, `failed` (never skipping) on a permanent
//!   refusal until [`StatusHandle::retry_sink`]; states in
//!   [`StatusHandle::sinks`] and `/metrics`. The engine is here (it reads the
//!   outcome log); the sinks themselves are in `xxfunc-sinks`.
//! - [`Registry`]: desired state from the in-process registry
//!   (`LocalRegistry`) or a gateway's change feed (`GatewayRegistry`);
//!   `RunnerArgs` are the flags every runner binary takes to pick them.
//! - [`NodeLink`]: a node adapter's side: [`resume_head`] (the lowest cursor
//!   of the running functions, or the block before a pending backfill start)
//!   and [`FinishedHeights`] (the core's safe height, never above what was
//!   delivered), asking the node only [`BlockHashes::block_hash`]; a node
//!   that fails to answer is an error ([`RunnerError::Provider`]), counted in
//!   the status and `/metrics`, never taken for "no block".
//! - Errors: one [`RunnerError`] enum, each variant naming the object that
//!   failed and carrying its cause as a typed `#[source]`.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use xxfunc_runner::{FixtureSource, Runner, RunnerConfig, ServeOptions, StatusHandle,
//!     StopHandle, StoreModules, UntilDone, serve};
//! use xxfunc_api::{DesiredState, FunctionSpec, StartFrom};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = xxfunc_store::ModuleStore::open("file:///tmp/xxfunc-store")?;
//! let modules = Arc::new(StoreModules::new(store)?);
//! let mut runner = Runner::open(RunnerConfig::new("/tmp/xxfunc-runner"), modules)?;
//! runner.apply(&FunctionSpec {
//!     id: "hello".parse()?,
//!     hash: "blake3:0000000000000000000000000000000000000000000000000000000000000000".parse()?,
//!     desired: DesiredState::Started,
//!     start: StartFrom::Head,
//!     start_generation: 1,
//!     sinks: Vec::new(),
//! })?;
//! let source = FixtureSource::open("fixtures")?;
//! let options = ServeOptions { until: UntilDone::SourceEnd, ..ServeOptions::default() };
//! let runner = serve(runner, Box::new(source), None, StopHandle::new(), StatusHandle::default(), options)?;
//! for record in runner.outputs(&"hello".parse()?)? {
//!     println!("{:?} {} {}", record.kind, record.block.number, record.stdout);
//! }
//! # Ok(()) }
//! ```

#[cfg(feature = "cli")]
mod args;
mod blocking;
mod config;
mod dispatch;
mod engine;
mod error;
#[cfg(feature = "gateway")]
mod gateway_registry;
pub mod host_calls;
mod invoke;
#[cfg(feature = "local-registry")]
mod local_registry;
pub mod metrics;
mod module_cache;
mod modules;
mod node;
mod outcome_log;
mod pusher;
mod registry;
mod reporter;
mod runner;
mod sandbox;
mod service;
mod sinks;
mod source;
pub mod state;
mod state_db;
#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

#[cfg(feature = "cli")]
pub use args::{ArgsError, OpenedRunner, RunnerArgs};
pub use config::{Limits, RunnerConfig};
pub use engine::WasmEngine;
pub use error::{BoxError, ModuleLoadError, Result, RpcError, RunnerError};
#[cfg(feature = "gateway")]
pub use gateway_registry::{GatewayModules, GatewayRegistry};
pub use invoke::{EventInput, Outcome};
#[cfg(feature = "local-registry")]
pub use local_registry::LocalRegistry;
pub use module_cache::{
    CacheStats, DEFAULT_ARTIFACT_BUDGET, LoadedFrom, LoadedModule, ModuleCache,
};
pub use modules::{ModuleSource, StoreModules};
pub use node::{BlockHashes, FinishedHeights, NodeLink, Resume, resume_head};
pub use registry::Registry;
pub use runner::{BatchSummary, Runner, SinkPolicy};
pub use service::{NodeErrors, ServeOptions, StatusHandle, StopHandle, UntilDone, serve};
pub use sinks::{BACKOFF_MAX, BACKOFF_MIN, SinkState, SinkStatus};
pub use source::{
    BlockSource, ChainEvent, ChainSource, DEFAULT_STALL_AFTER, EventSink, FixtureLayout,
    FixtureSource, RpcBlocks, RpcFollower, RpcStart, SinkReceiver, SourceMessage, block_ref,
};
pub use state_db::{Checkpoint, FunctionRecord, Position};
/// The sink contract, configuration and sinks (crate `xxfunc-sinks`).
pub use xxfunc_sinks;
