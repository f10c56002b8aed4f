//! Sinks as the registry keeps them and runners report them: where a function's outputs
//! are delivered (a webhook, a PostgreSQL table, a NATS JetStream subject).
//!
//! A sink is configured per function (`PUT /v1/functions/{name}/sinks/{sink}` with a
//! [`SinkConfig`]), stored in the registry and carried to runners in the function's
//! [`FunctionSpec`](crate::FunctionSpec) through the change feed, like desired state. Each
//! runner delivers it from its own outcome log and reports its state
//! ([`SinkReport`], in [`FunctionReport::sinks`](crate::FunctionReport::sinks)).
//!
//! Secrets never travel through the API: a webhook's signing secret and a database
//! password are given by the name of an environment variable of the runner
//! (`secret_env`, `password_env`), which the runner reads when it starts the sink.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

use crate::BlockRef;

/// The kinds of sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// Signed HTTP POSTs (Standard Webhooks), one per block.
    Webhook,
    /// Rows in a PostgreSQL table, inserted on commit and deleted on revert.
    Postgres,
    /// NATS JetStream messages, one per block, de-duplicated by `Nats-Msg-Id`.
    Nats,
}

impl SinkKind {
    /// Every kind.
    pub const ALL: [SinkKind; 3] = [Self::Webhook, Self::Postgres, Self::Nats];

    /// The name on the command line, in the API and in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Postgres => "postgres",
            Self::Nats => "nats",
        }
    }

    /// The URL schemes a target of this kind may have.
    pub fn schemes(self) -> &'static [&'static str] {
        match self {
            Self::Webhook => &["http", "https"],
            Self::Postgres => &["postgres", "postgresql"],
            Self::Nats => &["nats", "tls"],
        }
    }
}

impl fmt::Display for SinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A sink kind that is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown sink kind {0:?} (expected webhook, postgres or nats)")]
pub struct UnknownSinkKind(pub String);

impl FromStr for SinkKind {
    type Err = UnknownSinkKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "webhook" => Ok(Self::Webhook),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            "nats" => Ok(Self::Nats),
            other => Err(UnknownSinkKind(other.to_string())),
        }
    }
}

/// One sink's configuration: `PUT /v1/functions/{name}/sinks/{sink}`'s body. Options a
/// kind does not take are refused; absent ones take the defaults named here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// The kind (`webhook`, `postgres`, `nats`).
    pub kind: SinkKind,
    /// Where to: `http(s)://host[:port]/path`, `postgres://user@host[:port]/db` (no
    /// password: give `password_env`), or `nats://host[:port]`.
    pub url: String,
    /// Deliver a block only once it is this many blocks deep (0: at once, undone by
    /// retractions on a reorg).
    #[serde(default)]
    pub confirmations: u64,
    /// Attempts of a batch the destination refuses for good before the sink is `failed`
    /// [3].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Timeout of one attempt, in milliseconds [10000].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Webhook (required): the runner's environment variable holding the `whsec_` secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// PostgreSQL: the runner's environment variable holding the database password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// PostgreSQL: the records table [`xxfunc_records`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// NATS: messages go to `SUBJECT.FUNCTION` [`xxfunc`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// NATS: the JetStream stream, created over `SUBJECT.>` if absent [`XXFUNC`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
}

impl SinkConfig {
    /// A sink of `kind` to `url` with every option at its default.
    pub fn new(kind: SinkKind, url: impl Into<String>) -> Self {
        Self {
            kind,
            url: url.into(),
            confirmations: 0,
            attempts: None,
            timeout_ms: None,
            secret_env: None,
            password_env: None,
            table: None,
            subject: None,
            stream: None,
        }
    }
}

/// A sink of a function as the registry holds it and runners receive it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SinkEntry {
    /// The sink's name, unique in the registry (`[a-z0-9][a-z0-9._-]{0,62}`): its cursor,
    /// status and metrics are keyed by it.
    pub name: String,
    /// Its configuration.
    pub config: SinkConfig,
    /// Bumped by every `POST .../sinks/{sink}/retry`: a runner holding the sink `failed`
    /// resumes it when this changes.
    #[serde(default)]
    pub retry_generation: u64,
}

/// One sink as a runner reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SinkReport {
    /// The sink's name.
    pub name: String,
    /// Its kind.
    pub kind: SinkKind,
    /// Its destination, without secrets.
    pub target: String,
    /// Its confirmations depth.
    pub confirmations: u64,
    /// `starting`, `delivering`, `idle`, `retrying`, `failed` or `stopped`.
    pub state: String,
    /// Outcome seq of the function's log the destination acknowledged up to.
    pub cursor_outcome: u64,
    /// Item seq the destination acknowledged up to.
    pub cursor_item: u64,
    /// The block of the last outcome the cursor covers.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<crate::openapi::BlockRefSchema>))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockRef>,
    /// Failed attempts of the current batch (0 after a success).
    pub attempts: u64,
    /// The last failure, kept after a success (see `attempts`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Blocks between the function's cursor and the sink's.
    pub lag_blocks: u64,
    /// Records of the function's log after the sink's cursor.
    pub lag_records: u64,
    /// Batches acknowledged since the runner started.
    pub delivered_batches: u64,
    /// Records in them.
    pub delivered_records: u64,
}

/// One runner's report of one sink.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunnerSinkView {
    /// The runner's id.
    pub runner: String,
    /// Milliseconds since the Unix epoch when its report was recorded.
    pub at_ms: u64,
    /// What it reported.
    pub report: SinkReport,
}

/// A configured sink and what every runner reports of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SinkView {
    /// The sink's name.
    pub name: String,
    /// Its configuration.
    pub config: SinkConfig,
    /// Retries asked so far.
    pub retry_generation: u64,
    /// Each runner's latest report of it (empty until a runner starts it).
    pub runners: Vec<RunnerSinkView>,
}

/// `GET /v1/functions/{name}/sinks`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SinksView {
    /// The function.
    #[cfg_attr(feature = "openapi", schema(value_type = crate::openapi::FunctionIdSchema))]
    pub function: crate::FunctionId,
    /// Its sinks, by name.
    pub sinks: Vec<SinkView>,
}

/// Whether `name` is a sink name: `[a-z0-9][a-z0-9._-]{0,62}`.
pub fn valid_sink_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_json_is_compact_and_strict() {
        let config = SinkConfig {
            secret_env: Some("S".into()),
            ..SinkConfig::new(SinkKind::Webhook, "http://127.0.0.1:9/h")
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"webhook","url":"http://127.0.0.1:9/h","confirmations":0,"secret_env":"S"}"#
        );
        assert_eq!(serde_json::from_str::<SinkConfig>(&json).unwrap(), config);
        let err = serde_json::from_str::<SinkConfig>(r#"{"kind":"nats","url":"x","secret":"s"}"#)
            .unwrap_err();
        assert!(err.to_string().contains("unknown field `secret`"), "{err}");
    }

    #[test]
    fn kinds_and_names() {
        assert_eq!(
            "postgresql".parse::<SinkKind>().unwrap(),
            SinkKind::Postgres
        );
        assert!(
            "kafka"
                .parse::<SinkKind>()
                .unwrap_err()
                .to_string()
                .contains("kafka")
        );
        assert!(valid_sink_name("erc20-pg.1"));
        for bad in ["", "Pg", "-x", "a b", &"x".repeat(64)] {
            assert!(!valid_sink_name(bad), "{bad:?}");
        }
    }
}
