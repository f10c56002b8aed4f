//! [`SinkSpec`]: one sink's configuration, parsed once from the runner's
//! `--sink` flag:
//!
//! ```text
//! FUNCTION=KIND:TARGET[,OPTION=VALUE]...
//!   KIND:TARGET   webhook:http(s)://host[:port]/path
//!                 postgres:postgres://user[:password]@host[:port]/db
//!                 nats:nats://host[:port]
//!   name=NAME           the sink's name [default: FUNCTION-KIND]
//!   confirmations=N     deliver only blocks N deep (0: at once, with retractions) [0]
//!   attempts=N          attempts of a permanently refused batch before `failed` [3]
//!   timeout-ms=MS       per attempt [10000]
//!   secret-env=VAR      webhook: the variable holding the whsec_ secret (required)
//!   table=NAME          postgres: the records table [xxfunc_records]
//!   subject=PREFIX      nats: subjects are PREFIX.FUNCTION [xxfunc]
//!   stream=NAME         nats: the JetStream stream, created if absent [XXFUNC]
//! ```

use std::{fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};
use url::Url;
use xxfunc_api::FunctionId;

/// The kinds of sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// Signed HTTP POSTs.
    Webhook,
    /// Rows in PostgreSQL.
    Postgres,
    /// NATS JetStream messages.
    Nats,
}

impl SinkKind {
    /// The name in `--sink` and in status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Postgres => "postgres",
            Self::Nats => "nats",
        }
    }

    /// The cargo feature of `xxfunc-sinks` that adds it.
    pub fn feature(self) -> &'static str {
        self.as_str()
    }

    fn schemes(self) -> &'static [&'static str] {
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

/// One sink of one function.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    /// Its name, unique on the runner (`[a-z0-9][a-z0-9._-]{0,62}`): the key
    /// of its cursor, status and metrics.
    pub name: String,
    /// The function whose outputs it delivers.
    pub function: FunctionId,
    /// Its kind.
    pub kind: SinkKind,
    /// The destination URL (may hold a password: show [`SinkSpec::redacted`]).
    pub target: Url,
    /// Blocks this deep are delivered (0: at once, undone by retractions).
    pub confirmations: u64,
    /// Attempts of a batch the destination refuses for good before `failed`.
    pub attempts: u32,
    /// Per attempt.
    pub timeout: Duration,
    /// Webhook: the environment variable holding the `whsec_` secret.
    pub secret_env: Option<String>,
    /// PostgreSQL: the records table.
    pub table: String,
    /// NATS: the subject prefix.
    pub subject: String,
    /// NATS: the stream.
    pub stream: String,
}

/// Default attempts of a permanently refused batch.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// Default per-attempt timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a `--sink` value is not a sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SpecError {
    /// Not `FUNCTION=KIND:TARGET[,...]`.
    #[error(
        "--sink {input:?}: expected FUNCTION=KIND:URL[,option=value...] (KIND: webhook, postgres, nats)"
    )]
    Syntax {
        /// The flag's value.
        input: String,
    },
    /// The function is not a function name or hash.
    #[error("--sink {input:?}: {reason}")]
    Function {
        /// The flag's value.
        input: String,
        /// Why.
        reason: String,
    },
    /// An unknown kind.
    #[error("--sink {input:?}: unknown sink kind {kind:?} (expected webhook, postgres or nats)")]
    Kind {
        /// The flag's value.
        input: String,
        /// What was given.
        kind: String,
    },
    /// The target is not a URL of the kind's schemes.
    #[error("--sink {input:?}: target {target:?}: {reason}")]
    Target {
        /// The flag's value.
        input: String,
        /// What was given.
        target: String,
        /// Why.
        reason: String,
    },
    /// An option that is unknown, repeated, malformed or of another kind.
    #[error("--sink {input:?}: option {option:?}: {reason}")]
    Option {
        /// The flag's value.
        input: String,
        /// The option.
        option: String,
        /// Why.
        reason: String,
    },
    /// Two sinks with one name.
    #[error("two sinks are named {name:?}; give one of them name=OTHER")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// The target's host is not in the operator's allow-list.
    #[error(
        "sink {name}: host {host} is not allowed by the runner's --sink-allow-host list ({allowed}); \
         ask the operator to add it"
    )]
    NotAllowed {
        /// The sink.
        name: String,
        /// The target's host (and port).
        host: String,
        /// The list.
        allowed: String,
    },
}

fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-".contains(c))
}

fn valid_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

impl FromStr for SinkSpec {
    type Err = SpecError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let syntax = || SpecError::Syntax {
            input: input.to_string(),
        };
        let (function, rest) = input.split_once('=').ok_or_else(syntax)?;
        let function: FunctionId = function.parse().map_err(|e| SpecError::Function {
            input: input.to_string(),
            reason: format!("{e}"),
        })?;
        let mut parts = rest.split(',');
        let first = parts.next().ok_or_else(syntax)?;
        let (kind, target) = first.split_once(':').ok_or_else(syntax)?;
        let kind = match kind {
            "webhook" => SinkKind::Webhook,
            "postgres" | "postgresql" => SinkKind::Postgres,
            "nats" => SinkKind::Nats,
            other => {
                return Err(SpecError::Kind {
                    input: input.to_string(),
                    kind: other.to_string(),
                });
            }
        };
        let target_err = |reason: String| SpecError::Target {
            input: input.to_string(),
            target: target.to_string(),
            reason,
        };
        let url = Url::parse(target).map_err(|e| target_err(e.to_string()))?;
        if !kind.schemes().contains(&url.scheme()) {
            return Err(target_err(format!(
                "a {kind} sink takes a {} URL",
                kind.schemes().join(":// or ") + "://"
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(target_err("no host".into()));
        }
        let mut spec = SinkSpec {
            name: format!("{function}-{kind}"),
            function,
            kind,
            target: url,
            confirmations: 0,
            attempts: DEFAULT_ATTEMPTS,
            timeout: DEFAULT_TIMEOUT,
            secret_env: None,
            table: "xxfunc_records".into(),
            subject: "xxfunc".into(),
            stream: "XXFUNC".into(),
        };
        let mut seen: Vec<&str> = Vec::new();
        for part in parts {
            let option_err = |reason: &str| SpecError::Option {
                input: input.to_string(),
                option: part.to_string(),
                reason: reason.to_string(),
            };
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| option_err("expected option=value"))?;
            if seen.contains(&key) {
                return Err(option_err("given twice"));
            }
            seen.push(key);
            let only = |k: SinkKind| {
                if kind == k {
                    Ok(())
                } else {
                    Err(option_err(&format!("only for {k} sinks")))
                }
            };
            match key {
                "name" => {
                    if !valid_name(value) {
                        return Err(option_err("a sink name matches [a-z0-9][a-z0-9._-]{0,62}"));
                    }
                    spec.name = value.to_string();
                }
                "confirmations" => {
                    spec.confirmations = value
                        .parse()
                        .map_err(|_| option_err("a number of blocks"))?;
                }
                "attempts" => {
                    spec.attempts = value
                        .parse()
                        .ok()
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| option_err("a number of at least 1"))?;
                }
                "timeout-ms" => {
                    spec.timeout = Duration::from_millis(
                        value
                            .parse()
                            .ok()
                            .filter(|n| *n >= 1)
                            .ok_or_else(|| option_err("milliseconds, at least 1"))?,
                    );
                }
                "secret-env" => {
                    only(SinkKind::Webhook)?;
                    if value.is_empty() {
                        return Err(option_err("the name of an environment variable"));
                    }
                    spec.secret_env = Some(value.to_string());
                }
                "table" => {
                    only(SinkKind::Postgres)?;
                    if !valid_identifier(value) {
                        return Err(option_err("a table name matches [a-z_][a-z0-9_]{0,62}"));
                    }
                    spec.table = value.to_string();
                }
                "subject" => {
                    only(SinkKind::Nats)?;
                    if value.is_empty()
                        || value.split('.').any(str::is_empty)
                        || value.contains(['*', '>', ' '])
                    {
                        return Err(option_err("a subject prefix like xxfunc or app.outputs"));
                    }
                    spec.subject = value.to_string();
                }
                "stream" => {
                    only(SinkKind::Nats)?;
                    if value.is_empty() || value.contains(['.', '*', '>', ' ', '/']) {
                        return Err(option_err("a stream name without . * > / or spaces"));
                    }
                    spec.stream = value.to_string();
                }
                _ => return Err(option_err("unknown option")),
            }
        }
        if kind == SinkKind::Webhook && spec.secret_env.is_none() {
            return Err(SpecError::Option {
                input: input.to_string(),
                option: "secret-env".into(),
                reason: "a webhook sink signs its requests: give secret-env=VAR, VAR holding \
                         a whsec_ secret"
                    .into(),
            });
        }
        if !valid_name(&spec.name) {
            return Err(SpecError::Option {
                input: input.to_string(),
                option: "name".into(),
                reason: format!(
                    "the default name {:?} is not a sink name; give name=NAME",
                    spec.name
                ),
            });
        }
        Ok(spec)
    }
}

impl SinkSpec {
    /// The target without its password.
    pub fn redacted(&self) -> String {
        let mut url = self.target.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        url.to_string()
    }

    /// The target's `host[:port]`.
    pub fn host(&self) -> String {
        let host = self.target.host_str().unwrap_or_default();
        match self.target.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    /// The subject of this sink's messages: `PREFIX.FUNCTION`, the function's
    /// dots and colons made underscores (a subject token per function).
    pub fn nats_subject(&self) -> String {
        let function: String = self
            .function
            .to_string()
            .chars()
            .map(|c| if c == '.' || c == ':' { '_' } else { c })
            .collect();
        format!("{}.{function}", self.subject)
    }
}

/// Checks every spec's host against the operator's allow-list (each entry
/// `HOST` or `HOST:PORT`, case-insensitive; an empty list allows any host)
/// and that names are unique.
///
/// # Errors
/// [`SpecError::NotAllowed`] naming the first sink whose host is not
/// listed, or [`SpecError::Duplicate`].
pub fn check_allowed(specs: &[SinkSpec], allow: &[String]) -> Result<(), SpecError> {
    for (i, spec) in specs.iter().enumerate() {
        if specs[..i].iter().any(|s| s.name == spec.name) {
            return Err(SpecError::Duplicate {
                name: spec.name.clone(),
            });
        }
        if allow.is_empty() {
            continue;
        }
        let host = spec
            .target
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let with_port = spec
            .target
            .port_or_known_default()
            .map(|p| format!("{host}:{p}"));
        let ok = allow.iter().any(|a| {
            let a = a.to_ascii_lowercase();
            a == host || Some(&a) == with_port.as_ref()
        });
        if !ok {
            return Err(SpecError::NotAllowed {
                name: spec.name.clone(),
                host: spec.host(),
                allowed: allow.join(", "),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_with_options() {
        let s: SinkSpec =
            "erc20=webhook:https://hooks.example.invalid/x?a=1,secret-env=S,attempts=5,timeout-ms=250"
                .parse()
                .unwrap();
        assert_eq!(s.kind, SinkKind::Webhook);
        assert_eq!(s.name, "erc20-webhook");
        assert_eq!(s.target.as_str(), "https://hooks.example.invalid/x?a=1");
        assert_eq!((s.attempts, s.timeout), (5, Duration::from_millis(250)));
        assert_eq!(s.secret_env.as_deref(), Some("S"));

        let s: SinkSpec =
            "erc20=postgres:postgres://u:pw@127.0.0.1:5432/db,table=t1,confirmations=3,name=pg"
                .parse()
                .unwrap();
        assert_eq!(
            (s.kind, s.confirmations, s.table.as_str()),
            (SinkKind::Postgres, 3, "t1")
        );
        assert_eq!(s.name, "pg");
        assert_eq!(s.redacted(), "postgres://u:***@127.0.0.1:5432/db");

        let s: SinkSpec = "my.fn=nats:nats://127.0.0.1:4222,subject=app.out"
            .parse()
            .unwrap();
        assert_eq!(s.nats_subject(), "app.out.my_fn");
        assert_eq!(s.stream, "XXFUNC");
    }

    #[test]
    fn errors_name_the_offending_part() {
        let err = |s: &str| s.parse::<SinkSpec>().unwrap_err().to_string();
        assert!(err("erc20").contains("expected FUNCTION=KIND:URL"));
        assert!(err("erc20=kafka:kafka://x").contains("unknown sink kind \"kafka\""));
        assert!(err("erc20=webhook:ftp://x,secret-env=S").contains("http:// or https://"));
        assert!(err("erc20=webhook:http://x").contains("secret-env"));
        assert!(err("erc20=webhook:http://x,secret-env=S,table=t").contains("only for postgres"));
        assert!(err("erc20=nats:nats://x,bogus=1").contains("unknown option"));
        assert!(err("erc20=nats:nats://x,confirmations=-1").contains("a number of blocks"));
        assert!(err("erc20=nats:nats://x,name=a,name=b").contains("given twice"));
        assert!(err("Bad Name=nats:nats://x").contains("Bad Name"));
    }

    #[test]
    fn allow_list_and_unique_names() {
        let a: SinkSpec = "f=webhook:http://127.0.0.1:9000/h,secret-env=S"
            .parse()
            .unwrap();
        let b: SinkSpec = "f=nats:nats://bus.example.invalid:4222".parse().unwrap();
        check_allowed(&[a.clone(), b.clone()], &[]).unwrap();
        check_allowed(std::slice::from_ref(&a), &["127.0.0.1".into()]).unwrap();
        check_allowed(std::slice::from_ref(&a), &["127.0.0.1:9000".into()]).unwrap();
        let e = check_allowed(&[a.clone(), b], &["127.0.0.1".into()]).unwrap_err();
        assert!(
            e.to_string()
                .contains("host bus.example.invalid:4222 is not allowed"),
            "{e}"
        );
        let e = check_allowed(std::slice::from_ref(&a), &["127.0.0.1:9001".into()]).unwrap_err();
        assert!(matches!(e, SpecError::NotAllowed { .. }));
        let e = check_allowed(&[a.clone(), a], &[]).unwrap_err();
        assert!(e.to_string().contains("two sinks are named \"f-webhook\""));
    }
}
