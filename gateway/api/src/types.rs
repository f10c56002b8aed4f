//! Request, response and change-feed types of the `/v1` API.
//!
//! These are the one definition shared by the gateway (which serves them), the
//! runner (which follows the change feed and reports back) and `cargo xxfunc`
//! (whose `--json` output serialises them). New fields are fine; renaming a
//! field is a breaking change.

use serde::{Deserialize, Serialize};
use xxfunc_primitives::{BlockRef, EventKind, FunctionId, FunctionName, ModuleHash};

/// `POST /v1/modules` answer (201 when new, 200 when already stored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadResponse {
    /// Content hash of the module.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// Size in bytes.
    pub size: u64,
    /// Whether this upload stored the bytes (false: they were already there).
    pub created: bool,
}

/// `PUT /v1/functions/{name}` body: bind a name to a module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BindRequest {
    /// Full hash or unique prefix of at least 8 hex digits.
    pub hash: String,
}

/// `PUT /v1/functions/{name}` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BindResponse {
    /// The bound name.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionNameSchema))]
    pub name: FunctionName,
    /// The hash the name now points at.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// The new version number (1 for the first bind of a name).
    pub version: u64,
    /// True when the name is pinned: the bind recorded a new version but the
    /// function keeps running its pinned hash.
    #[serde(default)]
    pub pinned: bool,
}

/// What a deploy answers: the upload, then the bind of the name to the uploaded hash
/// (two requests over HTTP, one service call offline).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployResponse {
    /// The upload.
    pub upload: UploadResponse,
    /// The bind of the name to the uploaded hash.
    pub bind: BindResponse,
}

/// Where a started function begins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "from", content = "block")]
pub enum StartFrom {
    /// The next block after the runner's current head.
    #[default]
    Head,
    /// Backfill: the first event delivered is this block number.
    Block(u64),
}

/// `POST /v1/functions/{name_or_hash}/start` body (optional; empty = from head).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StartRequest {
    /// Backfill from this block number instead of starting at the head.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_block: Option<u64>,
}

/// What the registry wants for a function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    /// Run on every chain event.
    Started,
    /// Do not run.
    #[default]
    Stopped,
}

/// What a runner reports a function is actually doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum ObservedState {
    /// Loaded and receiving events.
    Running,
    /// Not running (stopped on request, or never started).
    Stopped,
    /// Stopped by the runner after too many consecutive failures.
    Quarantined {
        /// Why, e.g. "5 consecutive failures; last: wall-time limit of 1s exceeded".
        reason: String,
    },
    /// The module could not be loaded (missing from the store, corrupt, does not compile).
    LoadFailed {
        /// Why.
        reason: String,
    },
}

/// Invocation counters of one function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Counters {
    /// Invocations run.
    pub invocations: u64,
    /// Of which failed.
    pub failures: u64,
    /// Failures in a row since the last success.
    pub consecutive_failures: u64,
    /// Outcomes the runner pruned before every consumer had acknowledged them, because
    /// the function's retention budget forced it (never silent: `status` shows it).
    #[serde(default)]
    pub dropped_by_retention: u64,
}

/// What the runner needs to know about one function: the registry's desired
/// state resolved to a concrete module.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunctionSpec {
    /// Identity the function runs under (cursor and outputs are kept per id).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub id: FunctionId,
    /// Module to run: the name's current hash, or its pinned hash.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// Started or stopped.
    pub desired: DesiredState,
    /// Where a (re)started function begins.
    #[serde(default)]
    pub start: StartFrom,
    /// Bumped on every start request, so a runner can tell a new start (which
    /// resets the cursor to `start`) from a redeploy (which keeps it).
    #[serde(default)]
    pub start_generation: u64,
    /// Where its outputs are delivered, by sink name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<crate::sinks::SinkEntry>,
}

/// One entry of the numbered change feed. `spec` is the function's full state
/// after the change (`None`: the function no longer exists for runners).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedEntry {
    /// Position in the feed, strictly increasing without gaps from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch when the change was written.
    pub at_ms: u64,
    /// The function the change is about.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub id: FunctionId,
    /// What happened.
    pub change: ChangeKind,
    /// The function's state after the change.
    pub spec: Option<FunctionSpec>,
}

/// Kind of a change feed entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A name was bound to a (new) hash.
    Deployed,
    /// A function was started.
    Started,
    /// A function was stopped.
    Stopped,
    /// A name or hash was pinned.
    Pinned,
    /// A name or hash was unpinned.
    Unpinned,
    /// A sink was added or changed.
    SinkSet,
    /// A sink was removed.
    SinkRemoved,
    /// A failed sink was asked to resume.
    SinkRetried,
}

/// `GET /v1/feed/snapshot`: every function's spec and the feed position it
/// reflects; follow with `GET /v1/feed?after={seq}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedSnapshot {
    /// Feed position this snapshot includes.
    pub seq: u64,
    /// All functions runners should know about.
    pub functions: Vec<FunctionSpec>,
    /// The registry's epoch: chosen when the registry was created. A follower that
    /// sees another epoch on a feed page follows a different registry (reset or
    /// replaced) and takes a new snapshot. Empty from gateways that predate it.
    #[serde(default)]
    pub epoch: String,
}

/// `GET /v1/feed?after={seq}&wait_ms={ms}`: entries after `seq`, waiting up to
/// `wait_ms` for the first one (long poll).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FeedPage {
    /// Entries in order.
    pub entries: Vec<FeedEntry>,
    /// Highest seq the registry has (may exceed the last entry when the page is cut).
    /// Lower than the `after` asked for when the registry lost entries (restored from
    /// a backup, or reset): the follower then takes a new snapshot.
    pub head: u64,
    /// The registry's epoch (see [`FeedSnapshot::epoch`]).
    #[serde(default)]
    pub epoch: String,
}

/// One version in a name's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VersionEntry {
    /// Version number, from 1.
    pub version: u64,
    /// Module bound at this version.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
}

/// `GET /v1/functions/{name_or_hash}` (and one row of `GET /v1/functions`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunctionView {
    /// Identity.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub id: FunctionId,
    /// The name, for named functions.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::FunctionNameSchema>))]
    pub name: Option<FunctionName>,
    /// Module the function runs (pinned hash if pinned, else current).
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// Current version number, for named functions.
    pub version: Option<u64>,
    /// Version history, oldest first (empty for hash identities).
    pub versions: Vec<VersionEntry>,
    /// Whether the name (or hash) is pinned.
    pub pinned: bool,
    /// Desired state from the registry.
    pub desired: DesiredState,
    /// Where a start begins.
    pub start: StartFrom,
    /// Latest runner report, if any.
    pub observed: Option<ObservedState>,
    /// Which runner sent that report, and when (absent before the first
    /// report). A report many seconds old means no runner is following.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reported: Option<ReportedBy>,
    /// Last fully processed block.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::BlockRefSchema>))]
    pub cursor: Option<BlockRef>,
    /// Last failure reason, if any.
    pub last_error: Option<String>,
    /// Counters from the latest runner report.
    pub counters: Counters,
    /// Every runner's latest report about this function, by runner id (the fields
    /// above show the most recent of them).
    #[serde(default)]
    pub runners: Vec<RunnerView>,
}

/// One runner's latest report about one function.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunnerView {
    /// The runner's id (`--runner-id`).
    pub runner: String,
    /// Milliseconds since the Unix epoch when its report was recorded.
    pub at_ms: u64,
    /// What it observes the function doing.
    pub observed: ObservedState,
    /// Last block it fully processed.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::BlockRefSchema>))]
    pub cursor: Option<BlockRef>,
    /// Its last failure reason, if any.
    pub last_error: Option<String>,
    /// Its counters.
    pub counters: Counters,
    /// The function's sinks on that runner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<crate::sinks::SinkReport>,
}

/// The runner behind a function's observed state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportedBy {
    /// The runner's id (`--runner-id`).
    pub runner: String,
    /// Milliseconds since the Unix epoch when its report was recorded.
    pub at_ms: u64,
}

/// One function's entry in a runner report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FunctionReport {
    /// Identity.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub id: FunctionId,
    /// Module the runner has loaded.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// What the runner is doing with it.
    pub observed: ObservedState,
    /// Last fully processed block.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::BlockRefSchema>))]
    pub cursor: Option<BlockRef>,
    /// Last failure reason.
    pub last_error: Option<String>,
    /// Counters.
    pub counters: Counters,
    /// The function's sinks on this runner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sinks: Vec<crate::sinks::SinkReport>,
}

/// `POST /v1/runners/{runner}/report`: a runner's view of its functions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunnerReport {
    /// Chain head the runner has seen.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::BlockRefSchema>))]
    pub head: Option<BlockRef>,
    /// Lowest cursor over started functions (what the node may prune up to).
    pub safe_height: Option<u64>,
    /// Per function.
    pub functions: Vec<FunctionReport>,
    /// Not used any more: runners send it empty and the gateway ignores it (invocations
    /// arrive as outcomes, `POST /v1/runners/{runner}/outcomes`). Kept so older runners'
    /// reports still parse.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invocations: Vec<InvocationRecord>,
}

/// Outcome of one invocation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum InvocationStatus {
    /// `_start` returned or exited with code 0.
    Ok,
    /// Anything else, with the reason (trap, exit code, time or memory limit, output cap).
    Failed {
        /// Human-readable reason, e.g. "wall-time limit of 1s exceeded".
        reason: String,
    },
}

/// A recorded invocation: what `logs` shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InvocationRecord {
    /// Function identity.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub id: FunctionId,
    /// Module that ran.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// Commit or revert.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::EventKindSchema))]
    pub kind: EventKind,
    /// The block of the event.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::BlockRefSchema))]
    pub block: BlockRef,
    /// Outcome.
    #[serde(flatten)]
    pub status: InvocationStatus,
    /// Wall time of the invocation in microseconds.
    pub duration_us: u64,
    /// The function's stdout (its output records), lossily decoded as UTF-8.
    pub stdout: String,
    /// The function's stderr (its log), lossily decoded as UTF-8.
    pub stderr: String,
    /// Milliseconds since the Unix epoch when it finished.
    pub at_ms: u64,
}

/// `GET /v1/functions/{name_or_hash}/logs?limit=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogsPage {
    /// Most recent last.
    pub invocations: Vec<InvocationRecord>,
}

/// `POST /v1/gc` body.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcRequest {
    /// Only report what would be removed.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /v1/gc` answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GcResponse {
    /// Modules removed (or that would be, with `dry_run`).
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::ModuleHashSchema>))]
    pub removed: Vec<ModuleHash>,
    /// Modules kept because a name, a version history entry of a current
    /// binding, a hash identity or a pin refers to them.
    pub kept: u64,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Answer of `pin` / `unpin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinResponse {
    /// The name or hash identity.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub id: FunctionId,
    /// The hash that is (or was) pinned.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ModuleHashSchema))]
    pub hash: ModuleHash,
    /// Pinned after the call.
    pub pinned: bool,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// "ok".
    pub status: String,
    /// Server version.
    pub version: String,
    /// Highest change feed seq.
    pub feed_head: u64,
}

/// Every error body: `{"error":{"code":"…","message":"…"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Stable machine-readable code plus a message that says what to do next.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable code, one of [`codes`].
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::ErrorCodeSchema))]
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// For `ambiguous_hash`: the candidate hashes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<crate::openapi::ModuleHashSchema>))]
    pub candidates: Vec<ModuleHash>,
}

/// Stable error codes of [`ErrorDetail::code`].
pub mod codes {
    /// 400: the request body or a parameter is malformed.
    pub const BAD_REQUEST: &str = "bad_request";
    /// 400: not a valid function name.
    pub const INVALID_NAME: &str = "invalid_name";
    /// 400: not a valid hash or hash prefix.
    pub const INVALID_HASH: &str = "invalid_hash";
    /// 401: no bearer token on a mutating request.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// 403: wrong bearer token.
    pub const FORBIDDEN: &str = "forbidden";
    /// 404: no such function, module or route.
    pub const NOT_FOUND: &str = "not_found";
    /// 400: `after` is beyond the head of a function's outputs.
    pub const AFTER_BEYOND_HEAD: &str = "after_beyond_head";
    /// 409: a hash prefix matches several modules.
    pub const AMBIGUOUS_HASH: &str = "ambiguous_hash";
    /// 409: the operation conflicts with current state.
    pub const CONFLICT: &str = "conflict";
    /// 413: body larger than the limit.
    pub const TOO_LARGE: &str = "too_large";
    /// 415: wrong content type.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// 422: the module fails validation.
    pub const INVALID_MODULE: &str = "invalid_module";
    /// 500: the stored bytes do not match their hash.
    pub const CORRUPT: &str = "corrupt";
    /// 502/503: the module store or registry backend failed.
    pub const BACKEND: &str = "backend_unavailable";
    /// 500: anything else.
    pub const INTERNAL: &str = "internal";
}
