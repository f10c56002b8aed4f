//! Where the xxfunc runner delivers a function's outputs: the [`Sink`] contract,
//! the batches it is handed, its configuration ([`SinkSpec`], parsed from a
//! `--sink` flag), and the sinks themselves behind features.
//!
//! This crate owns what a sink does with one batch. It never reads the
//! runner's outcome log, never decides what is delivered when, and never
//! retries: the runner's sink engine (`xxfunc_runner`) feeds each sink its
//! function's outcomes by seq through the confirmations filter, hands it one
//! [`Batch`] per released block, strictly in order, retries with backoff,
//! keeps the cursor and shows the state. A sink only answers "acknowledged"
//! (`Ok`) or a [`DeliveryError`] that says whether trying again can help.
//!
//! | feature | sink | acknowledged when |
//! |---|---|---|
//! | `webhook` | [`webhook::WebhookSink`]: one signed JSON POST per block (Standard Webhooks) | a 2xx answer |
//! | `postgres` | [`postgres::PostgresSink`]: rows inserted on commit, deleted on revert, in the transaction that moves the sink's cursor | the transaction commits |
//! | `nats` | [`nats::NatsSink`]: one JetStream message per block, `Nats-Msg-Id` = the idempotency key | JetStream's `PublishAck` |
//!
//! Without features the crate is the contract and the configuration only
//! (no HTTP, database or NATS client), which is what the runner core needs.
//!
//! # Batches and keys
//!
//! A [`Batch`] is one released outcome of one function: the records a commit
//! emitted (kind `insert`) or a revert emitted (kind `retract`), with the
//! block, the module, and the item seq range. Its
//! [`idempotency_key`](Batch::idempotency_key) is
//! `FUNCTION:BLOCKHASH:FIRST+COUNT`: identical on every retry and on every
//! runner with the same outcome log, so a receiver de-duplicates by it.
//!
//! ```
//! use xxfunc_sinks::SinkSpec;
//! let spec: SinkSpec = "erc20=webhook:http://127.0.0.1:9000/hook,secret-env=HOOK_SECRET,confirmations=3"
//!     .parse()
//!     .unwrap();
//! assert_eq!(spec.name, "erc20-webhook");
//! assert_eq!(spec.confirmations, 3);
//! ```

use std::{future::Future, pin::Pin};

use serde::{Deserialize, Serialize};
use xxfunc_api::{
    BlockRef, FunctionId, ModuleHash,
    outputs::{ItemKind, OutputItem},
};

#[cfg(feature = "nats")]
pub mod nats;
#[cfg(feature = "postgres")]
pub mod postgres;
mod spec;
#[cfg(feature = "webhook")]
pub mod webhook;

pub use spec::{ConfigError, SinkKind, SinkSpec, SpecError, check_allowed, redact};

/// A boxed future, as the [`Sink`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a sink stands in its function's outcome log. Inclusive, like every
/// cursor: `outcome` is the last outcome seq the sink has fully decided (it
/// resumes by feeding the outcomes after it), `item` the last item seq it
/// delivered or skipped for good (released items up to it are not delivered
/// again).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkCursor {
    /// Last outcome seq fully decided.
    pub outcome: u64,
    /// Last item seq delivered (or skipped for good).
    pub item: u64,
}

/// One block's records for one sink: the released outcome of a commit
/// (records to insert) or of a revert (records the function emitted to
/// retract; a sink holding rows deletes the block's rows whatever they are).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// The function.
    pub function: FunctionId,
    /// The runner whose outcome log this is.
    pub runner: String,
    /// Insert (a commit) or retract (a revert).
    pub kind: ItemKind,
    /// The event's block.
    pub block: BlockRef,
    /// The module that produced the records.
    pub module: ModuleHash,
    /// The outcome's seq in the function's log.
    pub outcome: u64,
    /// Item seq of the first record (the next item's seq when there is none).
    pub first_item: u64,
    /// The records, in seq order (`first_item`, `first_item + 1`, ...).
    pub records: Vec<OutputItem>,
    /// Where the sink stands once this batch is acknowledged.
    pub cursor: SinkCursor,
}

impl Batch {
    /// The idempotency key: `FUNCTION:BLOCKHASH:FIRST+COUNT`, stable across
    /// retries and runners (the webhook's `webhook-id`, the NATS `Nats-Msg-Id`).
    pub fn idempotency_key(&self) -> String {
        format!(
            "{}:{}:{}+{}",
            self.function,
            self.block.hash,
            self.first_item,
            self.records.len()
        )
    }

    /// The item seq of the last record (`None` without records).
    pub fn last_item(&self) -> Option<u64> {
        (!self.records.is_empty()).then(|| self.first_item + self.records.len() as u64 - 1)
    }

    /// The JSON document webhooks and NATS messages carry ([`BatchBody`]).
    pub fn body(&self) -> BatchBody<'_> {
        BatchBody {
            kind_tag: "xxfunc.batch",
            key: self.idempotency_key(),
            function: &self.function,
            runner: &self.runner,
            kind: self.kind,
            block: self.block,
            module: self.module,
            outcome: self.outcome,
            first_seq: self.first_item,
            count: self.records.len(),
            records: &self.records,
        }
    }

    /// [`Batch::body`] as JSON bytes: the same bytes on every attempt.
    pub fn body_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).expect("a batch always serializes")
    }
}

/// The JSON form of a [`Batch`]:
///
/// ```json
/// {"type":"xxfunc.batch","key":"erc20:0xab..:41+2","function":"erc20","runner":"local",
///  "kind":"insert","block":{"number":7,"hash":"0xab.."},"module":"blake3:..",
///  "outcome":12,"first_seq":41,"count":2,"records":[{"seq":41,"kind":"insert",..},..]}
/// ```
///
/// Each record is an [`OutputItem`] as the outputs API serves it (`record`
/// is the function's exact JSON, or `record_b64` with `binary: true`).
#[derive(Debug, Serialize)]
pub struct BatchBody<'a> {
    /// Always `xxfunc.batch`.
    #[serde(rename = "type")]
    pub kind_tag: &'static str,
    /// [`Batch::idempotency_key`].
    pub key: String,
    /// The function.
    pub function: &'a FunctionId,
    /// The runner.
    pub runner: &'a str,
    /// Insert or retract.
    pub kind: ItemKind,
    /// The block.
    pub block: BlockRef,
    /// The module.
    pub module: ModuleHash,
    /// The outcome seq.
    pub outcome: u64,
    /// Item seq of the first record.
    pub first_seq: u64,
    /// How many records.
    pub count: usize,
    /// The records.
    pub records: &'a [OutputItem],
}

/// The JSON form of a [`Batch`] as a receiver reads it back.
#[derive(Clone, Debug, Deserialize)]
pub struct ReceivedBatch {
    /// [`Batch::idempotency_key`].
    pub key: String,
    /// The function.
    pub function: String,
    /// Insert or retract.
    pub kind: ItemKind,
    /// The block.
    pub block: BlockRef,
    /// The outcome seq.
    pub outcome: u64,
    /// Item seq of the first record.
    pub first_seq: u64,
    /// How many records.
    pub count: usize,
    /// The records.
    pub records: Vec<OutputItem>,
}

/// Whether trying the same batch again can succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// The destination is down, slow, overloaded or answered "later" (5xx,
    /// 408, 429, a timeout, a lost connection): retried with backoff.
    Transient,
    /// The destination refused the batch (4xx, a schema that rejects the
    /// rows): retried a few times, then the sink is `failed` until a retry.
    Permanent,
}

/// Why a batch (or opening the sink) was not acknowledged.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{target}: {message}")]
pub struct DeliveryError {
    /// Transient or permanent.
    pub failure: Failure,
    /// The destination (redacted: no secrets or passwords).
    pub target: String,
    /// What went wrong.
    pub message: String,
}

impl DeliveryError {
    /// A transient failure at `target`.
    pub fn transient(target: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            failure: Failure::Transient,
            target: target.into(),
            message: message.to_string(),
        }
    }

    /// A permanent failure at `target`.
    pub fn permanent(target: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Self {
            failure: Failure::Permanent,
            target: target.into(),
            message: message.to_string(),
        }
    }

    /// Whether it is permanent.
    pub fn is_permanent(&self) -> bool {
        self.failure == Failure::Permanent
    }
}

/// A destination for one function's batches. The engine calls it from one
/// thread, in order: [`open`](Sink::open) until it succeeds, then
/// [`deliver`](Sink::deliver) for each batch (again with the same batch
/// after an error or a timeout: a sink must tolerate a batch it already
/// applied, by its key or its cursor), and [`checkpoint`](Sink::checkpoint)
/// when outcomes without records moved the cursor. Every call is bounded by
/// the engine's per-attempt timeout (the future is dropped then).
pub trait Sink: Send {
    /// The destination for logs and status, without secrets.
    fn describe(&self) -> String;

    /// Connects and prepares (creates tables, streams). Answers the cursor
    /// the destination keeps for this sink, when it keeps one (PostgreSQL
    /// keeps it beside the rows, so it is the truth after a crash; the
    /// default cursor when it holds nothing yet); `None` when the runner's
    /// stored cursor is the truth.
    fn open(&mut self) -> BoxFuture<'_, Result<Option<SinkCursor>, DeliveryError>>;

    /// Delivers `batch`; `Ok` means the destination holds it (and, for a
    /// sink that keeps its cursor, `batch.cursor`).
    fn deliver<'a>(&'a mut self, batch: &'a Batch) -> BoxFuture<'a, Result<(), DeliveryError>>;

    /// The sink stands at `cursor` after outcomes without records (nothing
    /// to deliver). A sink that keeps its cursor stores it; the default does
    /// nothing.
    fn checkpoint(&mut self, cursor: SinkCursor) -> BoxFuture<'_, Result<(), DeliveryError>> {
        let _ = cursor;
        Box::pin(async { Ok(()) })
    }
}

/// Why a [`SinkSpec`] could not become a [`Sink`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The password's environment variable is not set.
    #[error("sink {sink}: password-env {var} is not set in the runner's environment")]
    PasswordMissing {
        /// The sink.
        sink: String,
        /// The variable.
        var: String,
    },
    /// The secret's environment variable is not set.
    #[error("sink {sink}: secret-env {var} is not set in the runner's environment")]
    SecretMissing {
        /// The sink.
        sink: String,
        /// The variable.
        var: String,
    },
    /// The secret is not `whsec_` + base64.
    #[error(
        "sink {sink}: the secret in {var} is not a Standard Webhooks secret (whsec_BASE64): {reason}"
    )]
    SecretInvalid {
        /// The sink.
        sink: String,
        /// The variable.
        var: String,
        /// Why.
        reason: String,
    },
    /// The runner was built without this kind of sink.
    #[error(
        "sink {sink}: this runner was built without the {kind} sink (cargo feature `{feature}`)"
    )]
    NotBuilt {
        /// The sink.
        sink: String,
        /// Its kind.
        kind: SinkKind,
        /// The feature that adds it.
        feature: &'static str,
    },
    /// The sink's client could not be built.
    #[error("sink {sink}: {reason}")]
    Client {
        /// The sink.
        sink: String,
        /// Why.
        reason: String,
    },
}

/// Builds the sink `spec` describes (reading its secret from the
/// environment), delivering batches of `runner`'s outcome log.
///
/// # Errors
/// A [`BuildError`]: a missing or malformed secret, a kind this build lacks.
pub fn build(spec: &SinkSpec) -> Result<Box<dyn Sink>, BuildError> {
    #[cfg(feature = "webhook")]
    if spec.kind == SinkKind::Webhook {
        return Ok(Box::new(webhook::WebhookSink::from_spec(spec)?));
    }
    #[cfg(feature = "postgres")]
    if spec.kind == SinkKind::Postgres {
        return Ok(Box::new(postgres::PostgresSink::from_spec(spec)?));
    }
    #[cfg(feature = "nats")]
    if spec.kind == SinkKind::Nats {
        return Ok(Box::new(nats::NatsSink::from_spec(spec)?));
    }
    Err(BuildError::NotBuilt {
        sink: spec.name.clone(),
        kind: spec.kind,
        feature: spec.kind.as_str(),
    })
}
