//! The OpenAPI 3.1 document of the API, derived with `utoipa` from the API
//! types and the operations declared here.
//!
//! Schemas come from the types in [`xxfunc_api`] (their `ToSchema` derives,
//! feature `openapi`), so a field added to a type is in the document without
//! anyone remembering it. Each operation is declared on a documentation-only
//! function below, one per route of `routes/mod.rs` with its parameters,
//! bodies, statuses and security; the handlers stay plain functions. The
//! tests check the operations against the route table both ways, and that
//! every schema the document references exists.

use std::{borrow::Cow, sync::LazyLock};

use utoipa::{
    IntoParams, OpenApi, PartialSchema, ToResponse, ToSchema,
    openapi::{
        self, ContentBuilder, KnownFormat, ObjectBuilder, RefOr, ResponseBuilder, Schema,
        SchemaFormat,
        schema::{SchemaType, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use xxfunc_api::{
    BindRequest, BindResponse, ErrorBody, FeedPage, FeedSnapshot, FunctionView, GcRequest,
    GcResponse, Health, LogsPage, PinResponse, RunnerReport, StartRequest, UploadResponse,
    openapi::ModuleHashSchema,
    outputs::{OutcomesAck, OutcomesPage, OutputItem, OutputsPage},
    sinks::{SinkConfig, SinksView},
};

/// The document served at `GET /v1/openapi.json`, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    ApiDoc::openapi()
        .to_pretty_json()
        .expect("an OpenAPI document always serialises")
});

/// The document as JSON.
pub(crate) fn json() -> &'static str {
    &DOCUMENT
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "xxfunc gateway",
        version = "1",
        description = "Deploy WebAssembly functions that run inside an Ethereum node. Mutating \
            requests need `Authorization: Bearer <token>` (401 without, 403 wrong). Every error \
            is `{\"error\":{\"code\",\"message\"}}`.",
    ),
    servers((url = "http://127.0.0.1:8722")),
    paths(
        health, metrics, openapi_document, upload_module, download_module, gc, list_functions,
        get_function, bind, start, stop, pin, unpin, logs, outputs, list_sinks, set_sink,
        remove_sink, retry_sink, feed_snapshot, feed, report, outcomes,
    ),
    // The error response is written by hand, so its schema is named here.
    components(schemas(ErrorBody), responses(ErrorResponse)),
    modifiers(&BearerScheme),
)]
struct ApiDoc;

/// Adds the `bearer` scheme the mutating operations require.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The gateway's token (`--token` / `XXFUNC_TOKEN`), compared in constant time.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every error answer: `components/responses/Error`.
struct ErrorResponse;

impl<'r> ToResponse<'r> for ErrorResponse {
    fn response() -> (&'r str, RefOr<openapi::Response>) {
        let response = ResponseBuilder::new()
            .description("An error with a stable code")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(openapi::Ref::from_schema_name(ErrorBody::name())))
                    .build(),
            )
            .build();
        ("Error", response.into())
    }
}

/// Module bytes: a WebAssembly binary.
struct WasmModule;

impl PartialSchema for WasmModule {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/wasm")
            .into()
    }
}

impl ToSchema for WasmModule {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("WasmModule")
    }
}

/// How the path segment `{name}` selects a function.
const SELECTOR: &str = "A function name, a module hash `blake3:<hex>`, or a unique hash prefix \
    of at least 8 hex digits. A bound name wins over a prefix spelled the same.";

/// Query of `GET /v1/functions/{name}/logs`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct LogsQuery {
    /// How many invocations, most recent last.
    #[param(minimum = 0, maximum = 1000, default = json!(100))]
    limit: Option<u64>,
}

/// Query of `GET /v1/functions/{name}/outputs`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct OutputsQuery {
    /// Items with a seq after this one (an event stream's `Last-Event-ID` header wins).
    #[param(minimum = 0, default = json!(0))]
    after: Option<u64>,
    /// Show a block's items only once it is this many blocks deep on the canonical
    /// chain. 0 shows commits at once and retractions on reorgs; N deeper than any reorg
    /// shows no retraction ever, at the cost of N blocks of delay.
    #[param(minimum = 0, maximum = 1000, default = json!(0))]
    confirmations: Option<u64>,
    /// At most this many items per page.
    #[param(minimum = 1, maximum = 10_000, default = json!(1000))]
    limit: Option<u64>,
    /// How long to wait for an item when none is ready, in milliseconds (JSON only).
    #[param(minimum = 0, maximum = 60_000, default = json!(0))]
    wait_ms: Option<u64>,
    /// Read this runner's log (default: the runner most recently reporting the function
    /// running).
    #[param(pattern = "^[A-Za-z0-9._-]{1,128}$")]
    runner: Option<String>,
}

/// Query of `GET /v1/feed`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct FeedQuery {
    /// Entries with a seq after this one.
    #[param(minimum = 0, default = json!(0))]
    after: Option<u64>,
    /// How long to wait for the first entry, in milliseconds (a long poll).
    #[param(minimum = 0, maximum = 60_000, default = json!(0))]
    wait_ms: Option<u64>,
    /// At most this many entries.
    #[param(minimum = 1, maximum = 10_000, default = json!(1000))]
    limit: Option<u64>,
}

// The operations, one documentation-only function each. Keep them in the
// order of `routes::configure`.

/// Liveness and feed head.
#[utoipa::path(
    get, path = "/healthz", operation_id = "health",
    responses((status = 200, description = "OK", body = Health)),
)]
#[allow(dead_code)]
fn health() {}

/// Prometheus metrics.
///
/// Requests and their latency by method, route and status; uploads, deploys,
/// garbage collection, runner reports; feed head and functions.
#[utoipa::path(
    get, path = "/metrics", operation_id = "metrics",
    responses((
        status = 200, description = "Prometheus text format 0.0.4",
        body = String, content_type = "text/plain",
    )),
)]
#[allow(dead_code)]
fn metrics() {}

/// This document.
#[utoipa::path(
    get, path = "/v1/openapi.json", operation_id = "openapi",
    responses((status = 200, description = "OK", body = serde_json::Value)),
)]
#[allow(dead_code)]
fn openapi_document() {}

/// Upload a module.
///
/// It is validated first (valid wasm, exports `_start`, imports only
/// `wasi_snapshot_preview1` and `xxfunc`); nothing is stored if it fails.
#[utoipa::path(
    post, path = "/v1/modules", operation_id = "uploadModule",
    request_body(content = inline(WasmModule), content_type = "application/wasm"),
    responses(
        (status = 201, description = "Stored", body = UploadResponse),
        (status = 200, description = "Already stored", body = UploadResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 413, response = ErrorResponse),
        (status = 415, response = ErrorResponse),
        (status = 422, response = ErrorResponse),
        (status = 503, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn upload_module() {}

/// Module bytes by hash or unique prefix.
#[utoipa::path(
    get, path = "/v1/modules/{hash}", operation_id = "downloadModule",
    params((
        "hash" = String, Path,
        description = "`blake3:<hex>`, bare hex, or a prefix of at least 8 hex digits",
    )),
    responses(
        (
            status = 200, description = "The module",
            content_type = "application/wasm", body = inline(WasmModule),
            headers(("x-xxfunc-hash" = ModuleHashSchema, description = "The module's full hash")),
        ),
        (status = 400, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
        (status = 500, response = ErrorResponse),
        (status = 503, response = ErrorResponse),
    ),
)]
#[allow(dead_code)]
fn download_module() {}

/// Remove unreferenced modules.
///
/// Removes the modules no name, version, hash identity or pin refers to.
/// Modules uploaded within the grace period (ten minutes by default) are kept.
#[utoipa::path(
    post, path = "/v1/gc", operation_id = "gc",
    request_body(content = Option<GcRequest>, description = "Optional; empty means a real run."),
    responses(
        (status = 200, description = "OK", body = GcResponse),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 503, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn gc() {}

/// Every function: named ones, then hash identities.
#[utoipa::path(
    get, path = "/v1/functions", operation_id = "listFunctions",
    responses((status = 200, description = "OK", body = Vec<FunctionView>)),
)]
#[allow(dead_code)]
fn list_functions() {}

/// One function by name, hash or prefix.
#[utoipa::path(
    get, path = "/v1/functions/{name}", operation_id = "getFunction",
    params(("name" = String, Path, description = SELECTOR)),
    responses(
        (status = 200, description = "OK", body = FunctionView),
        (status = 400, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
)]
#[allow(dead_code)]
fn get_function() {}

/// Bind a name to a stored module.
///
/// Records a new version; binding the current hash again changes nothing.
#[utoipa::path(
    put, path = "/v1/functions/{name}", operation_id = "bind",
    params((
        "name" = String, Path, description = "The name to bind.",
        pattern = "^[a-z0-9][a-z0-9._-]{0,62}$",
    )),
    request_body = BindRequest,
    responses(
        (status = 200, description = "OK", body = BindResponse),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
        (status = 503, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn bind() {}

/// Start a function.
///
/// By hash, it starts a function whose identity is that hash. Starting a
/// started function from the head changes nothing.
#[utoipa::path(
    post, path = "/v1/functions/{name}/start", operation_id = "start",
    params(("name" = String, Path, description = SELECTOR)),
    request_body(content = Option<StartRequest>, description = "Optional; empty means from the head."),
    responses(
        (status = 200, description = "OK", body = FunctionView),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn start() {}

/// Stop a function.
#[utoipa::path(
    post, path = "/v1/functions/{name}/stop", operation_id = "stop",
    params(("name" = String, Path, description = SELECTOR)),
    responses(
        (status = 200, description = "OK", body = FunctionView),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn stop() {}

/// Pin a name to its current hash, or pin a hash against garbage collection.
#[utoipa::path(
    post, path = "/v1/functions/{name}/pin", operation_id = "pin",
    params(("name" = String, Path, description = SELECTOR)),
    responses(
        (status = 200, description = "OK", body = PinResponse),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn pin() {}

/// Remove a pin.
#[utoipa::path(
    post, path = "/v1/functions/{name}/unpin", operation_id = "unpin",
    params(("name" = String, Path, description = SELECTOR)),
    responses(
        (status = 200, description = "OK", body = PinResponse),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn unpin() {}

/// Recent invocations, most recent last.
#[utoipa::path(
    get, path = "/v1/functions/{name}/logs", operation_id = "logs",
    params(("name" = String, Path, description = SELECTOR), LogsQuery),
    responses(
        (status = 200, description = "OK", body = LogsPage),
        (status = 400, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
)]
#[allow(dead_code)]
fn logs() {}

/// Output items after a seq: JSON pages or Server-Sent Events.
///
/// Each stdout line of an invocation is one item, numbered per function on one runner:
/// commits insert, reverts retract. JSON answers a page (long-polling up to `wait_ms`
/// when none is ready); continue with `after = next`. With `Accept: text/event-stream`
/// the answer is a stream of events, `id:` the item seq, `event:` `insert` or
/// `retract`, `data:` the item as JSON; reconnecting with `Last-Event-ID` resumes exactly
/// after that item. A stream reads one runner's log throughout, and is cut when the
/// client stops reading. `after` beyond the head is `after_beyond_head` (400).
#[utoipa::path(
    get, path = "/v1/functions/{name}/outputs", operation_id = "outputs",
    params(
        ("name" = String, Path, description = SELECTOR),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume an event stream after this item seq."),
        OutputsQuery,
    ),
    responses(
        (
            status = 200, description = "A page, or an event stream of items",
            content(
                (OutputsPage = "application/json"),
                (OutputItem = "text/event-stream"),
            ),
        ),
        (status = 400, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
)]
#[allow(dead_code)]
fn outputs() {}

/// A function's sinks, each with every runner's report of it.
///
/// A sink delivers the function's output records to a webhook, a PostgreSQL table or a
/// NATS JetStream subject, from each runner's outcome log, with its own cursor and
/// confirmations depth. Runners report its state: `starting`, `delivering`, `idle`,
/// `retrying`, `failed` or `stopped`, with cursor, lag, attempts and last error.
#[utoipa::path(
    get, path = "/v1/functions/{name}/sinks", operation_id = "list_sinks",
    params(("name" = String, Path, description = SELECTOR)),
    responses(
        (status = 200, description = "OK", body = SinksView),
        (status = 400, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
)]
#[allow(dead_code)]
fn list_sinks() {}

/// Add a sink, or replace its configuration.
///
/// The configuration is checked with the runner's own rules (400 `bad_request` naming
/// the field). Secrets are never part of it: a webhook's signing secret and a database
/// password are named by the runner's environment variable holding them (`secret_env`,
/// `password_env`); a URL with a password is refused. Sink names are unique in the
/// registry (409 `conflict` when another function has the name). Runners pick the change
/// up from the feed.
#[utoipa::path(
    put, path = "/v1/functions/{name}/sinks/{sink}", operation_id = "set_sink",
    params(
        ("name" = String, Path, description = SELECTOR),
        ("sink" = String, Path, description = "The sink's name: [a-z0-9][a-z0-9._-]{0,62}."),
    ),
    request_body(content = SinkConfig, content_type = "application/json"),
    responses(
        (status = 200, description = "The function's sinks", body = SinksView),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn set_sink() {}

/// Remove a sink. Runners stop it and forget its cursor.
#[utoipa::path(
    delete, path = "/v1/functions/{name}/sinks/{sink}", operation_id = "remove_sink",
    params(
        ("name" = String, Path, description = SELECTOR),
        ("sink" = String, Path, description = "The sink's name."),
    ),
    responses(
        (status = 200, description = "The sinks left", body = SinksView),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn remove_sink() {}

/// Resume a `failed` sink: runners deliver from its cursor again (nothing is skipped).
#[utoipa::path(
    post, path = "/v1/functions/{name}/sinks/{sink}/retry", operation_id = "retry_sink",
    params(
        ("name" = String, Path, description = SELECTOR),
        ("sink" = String, Path, description = "The sink's name."),
    ),
    responses(
        (status = 200, description = "The function's sinks", body = SinksView),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 404, response = ErrorResponse),
        (status = 409, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn retry_sink() {}

/// Every function's spec and the feed seq it reflects.
///
/// Follow with `GET /v1/feed?after={seq}`.
#[utoipa::path(
    get, path = "/v1/feed/snapshot", operation_id = "feedSnapshot",
    responses((status = 200, description = "OK", body = FeedSnapshot)),
)]
#[allow(dead_code)]
fn feed_snapshot() {}

/// Change feed entries after a seq.
///
/// Long-polls up to `wait_ms` (at most 60000) for the first one.
#[utoipa::path(
    get, path = "/v1/feed", operation_id = "feed",
    params(FeedQuery),
    responses(
        (status = 200, description = "OK", body = FeedPage),
        (status = 400, response = ErrorResponse),
    ),
)]
#[allow(dead_code)]
fn feed() {}

/// A runner's report.
///
/// Its observed state, cursors, errors and counters, kept per runner and function.
/// (`invocations` is ignored: invocations arrive as outcomes.)
#[utoipa::path(
    post, path = "/v1/runners/{runner}/report", operation_id = "report",
    params(("runner" = String, Path, description = "The runner's id.", pattern = "^[A-Za-z0-9._-]{1,128}$")),
    request_body = RunnerReport,
    responses(
        (status = 204, description = "Recorded"),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 413, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn report() {}

/// A page of a runner's outcome log of one function.
///
/// Stored idempotently by seq: outcomes already held (or pruned by the gateway's
/// retention) are skipped, gaps are allowed. The answer is the highest seq held before
/// and after the page; a runner that sees `head_before` below what it had acknowledged
/// resends from there. The body limit is the report limit (16 MiB by default).
#[utoipa::path(
    post, path = "/v1/runners/{runner}/outcomes", operation_id = "pushOutcomes",
    params(("runner" = String, Path, description = "The runner's id.", pattern = "^[A-Za-z0-9._-]{1,128}$")),
    request_body = OutcomesPage,
    responses(
        (status = 200, description = "Stored", body = OutcomesAck),
        (status = 400, response = ErrorResponse),
        (status = 401, response = ErrorResponse),
        (status = 403, response = ErrorResponse),
        (status = 413, response = ErrorResponse),
        (status = 503, response = ErrorResponse),
    ),
    security(("bearer" = [])),
)]
#[allow(dead_code)]
fn outcomes() {}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::Value;

    use super::*;

    /// Path → methods, as `routes::configure` registers them, read from its
    /// source: each `.service(...)` that routes a method on a `resource`.
    /// Fallback services (a `.to(...)` without a method) are not API routes.
    fn routes() -> BTreeMap<String, BTreeSet<String>> {
        let source = include_str!("routes/mod.rs");
        let body = &source[source
            .find("pub(crate) fn configure")
            .expect("routes/mod.rs defines configure")..];
        let mut routes = BTreeMap::new();
        for service in body.split(".service(").skip(1) {
            let Some(path) = service
                .split_once("resource(\"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map(|(path, _)| path)
            else {
                continue;
            };
            let methods: BTreeSet<String> = service
                .split(".route(web::")
                .skip(1)
                .filter_map(|route| route.split_once("()"))
                .map(|(method, _)| method.to_string())
                .collect();
            if !methods.is_empty() {
                routes.insert(path.to_string(), methods);
            }
        }
        routes
    }

    fn document() -> Value {
        serde_json::from_str(json()).expect("the document is JSON")
    }

    #[test]
    fn every_route_is_documented_with_its_methods_and_nothing_else() {
        let routes = routes();
        assert!(routes.len() >= 16, "parsed only {routes:?}");
        let document = document();
        let documented: BTreeMap<String, BTreeSet<String>> = document["paths"]
            .as_object()
            .expect("paths")
            .iter()
            .map(|(path, item)| {
                let methods = item
                    .as_object()
                    .expect("a path item")
                    .keys()
                    .filter(|k| {
                        ["get", "put", "post", "delete", "patch", "head"].contains(&k.as_str())
                    })
                    .cloned()
                    .collect();
                (path.clone(), methods)
            })
            .collect();
        assert_eq!(documented, routes);
    }

    #[test]
    fn every_operation_is_described() {
        let document = document();
        let mut ids = BTreeSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(
                    ids.insert(id.to_string()),
                    "{method} {path}: duplicate id {id:?}"
                );
                assert!(
                    op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                    "{method} {path} has no summary"
                );
                let responses = op["responses"].as_object().unwrap();
                assert!(
                    responses.keys().any(|s| s.starts_with('2')),
                    "{method} {path} has no success response"
                );
                // Every mutating route needs the token; no read does.
                let secured = op.get("security").is_some();
                assert_eq!(secured, method != "get", "{method} {path}");
                if secured {
                    assert_eq!(op["security"], serde_json::json!([{ "bearer": [] }]));
                    for status in ["401", "403"] {
                        assert!(responses.contains_key(status), "{method} {path}: {status}");
                    }
                }
                for (name, param) in op["parameters"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| (p["name"].as_str().unwrap(), p))
                {
                    if param["in"] == "path" {
                        assert!(path.contains(&format!("{{{name}}}")), "{path}: {name}");
                        assert_eq!(param["required"], true, "{path}: {name}");
                    }
                }
            }
        }
        assert_eq!(
            document["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn documented_limits_are_the_servers() {
        let document = document();
        let feed = &document["paths"]["/v1/feed"]["get"]["parameters"];
        let maximum = |name: &str| {
            feed.as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["schema"]["maximum"].as_u64())
                .unwrap_or_else(|| panic!("no maximum for {name}"))
        };
        assert_eq!(maximum("wait_ms"), crate::config::MAX_FEED_WAIT_MS);
        assert_eq!(maximum("limit"), xxfunc_registry::MAX_FEED_PAGE as u64);
        let outputs = &document["paths"]["/v1/functions/{name}/outputs"]["get"]["parameters"];
        let maximum = |name: &str| {
            outputs
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["name"] == name)
                .and_then(|p| p["schema"]["maximum"].as_u64())
                .unwrap_or_else(|| panic!("no maximum for {name}"))
        };
        assert_eq!(maximum("limit"), xxfunc_registry::MAX_OUTPUTS_PAGE as u64);
        assert_eq!(maximum("confirmations"), xxfunc_registry::MAX_CONFIRMATIONS);
        assert_eq!(maximum("wait_ms"), crate::config::MAX_FEED_WAIT_MS);
    }

    /// Collects every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("$ref", Value::String(target)) => out.push(target),
                        _ => refs(value, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let document = document();
        let mut targets = Vec::new();
        refs(&document, &mut targets);
        assert!(targets.len() > 50, "{} references", targets.len());
        for target in targets {
            let pointer = target
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{target} is not local"));
            assert!(
                document.pointer(pointer).is_some_and(Value::is_object),
                "{target} does not exist"
            );
        }
        // And every schema the old hand-written document had is still there.
        let schemas = document["components"]["schemas"].as_object().unwrap();
        for name in [
            "ModuleHash",
            "BlockRef",
            "StartFrom",
            "ObservedState",
            "Counters",
            "FunctionSpec",
            "InvocationRecord",
            "Health",
            "UploadResponse",
            "BindRequest",
            "BindResponse",
            "StartRequest",
            "GcRequest",
            "GcResponse",
            "PinResponse",
            "VersionEntry",
            "FunctionView",
            "FeedEntry",
            "FeedSnapshot",
            "FeedPage",
            "FunctionReport",
            "RunnerReport",
            "LogsPage",
            "ErrorBody",
            "ReportedBy",
            "RunnerView",
            "OutputsPage",
            "OutputItem",
            "OutcomesPage",
            "OutcomesAck",
        ] {
            assert!(schemas.contains_key(name), "schema {name} missing");
        }
    }
}
