//! [`SinkSpec`]: one sink's configuration, checked once by
//! [`SinkSpec::from_config`] from the registry's [`SinkConfig`] (the gateway's sink API)
//! or parsed from the runner's `--sink` flag:
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
//!   password-env=VAR    postgres: the variable holding the database password
//!   table=NAME          postgres: the records table [xxfunc_records]
//!   subject=PREFIX      nats: subjects are PREFIX.FUNCTION [xxfunc]
//!   stream=NAME         nats: the JetStream stream, created if absent [XXFUNC]
//! ```

use std::{str::FromStr, time::Duration};

use url::Url;
pub use xxfunc_api::sinks::SinkKind;
use xxfunc_api::{
    FunctionId,
    sinks::{SinkConfig, valid_sink_name},
};

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
    /// PostgreSQL: the environment variable holding the password.
    pub password_env: Option<String>,
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

fn valid_identifier(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && (b[0].is_ascii_lowercase() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_')
}

/// What is wrong with one field of a sink's configuration ([`SinkSpec::from_config`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ConfigError {
    /// The field, as the API names it (`url`, `secret_env`, ...).
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

fn config_err(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

impl SinkSpec {
    /// The sink `config` describes, of `function`'s outputs, named `name` (default
    /// `FUNCTION-KIND`). The one check of a sink's configuration: the runner's `--sink`
    /// flag and the gateway's sink API both go through it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field that is wrong: a name that is not a sink
    /// name, a URL not of the kind's schemes or without a host, an option of another
    /// kind, a webhook without `secret_env`, a number out of range, a malformed table,
    /// subject or stream.
    pub fn from_config(
        function: FunctionId,
        name: Option<&str>,
        config: &SinkConfig,
    ) -> Result<Self, ConfigError> {
        let kind = config.kind;
        let name = match name {
            Some(n) => n.to_string(),
            None => format!("{function}-{kind}"),
        };
        if !valid_sink_name(&name) {
            return Err(config_err(
                "name",
                format!("{name:?} is not a sink name: use [a-z0-9][a-z0-9._-]{{0,62}}"),
            ));
        }
        let url = Url::parse(&config.url).map_err(|e| config_err("url", e.to_string()))?;
        if !kind.schemes().contains(&url.scheme()) {
            return Err(config_err(
                "url",
                format!(
                    "a {kind} sink takes a {} URL",
                    kind.schemes().join(":// or ") + "://"
                ),
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(config_err("url", "no host"));
        }
        let only = |field: &'static str, present: bool, k: SinkKind| {
            if present && kind != k {
                Err(config_err(field, format!("only for {k} sinks")))
            } else {
                Ok(())
            }
        };
        only("secret_env", config.secret_env.is_some(), SinkKind::Webhook)?;
        only(
            "password_env",
            config.password_env.is_some(),
            SinkKind::Postgres,
        )?;
        only("table", config.table.is_some(), SinkKind::Postgres)?;
        only("subject", config.subject.is_some(), SinkKind::Nats)?;
        only("stream", config.stream.is_some(), SinkKind::Nats)?;
        let attempts = config.attempts.unwrap_or(DEFAULT_ATTEMPTS);
        if attempts < 1 {
            return Err(config_err("attempts", "a number of at least 1"));
        }
        let timeout = match config.timeout_ms {
            None => DEFAULT_TIMEOUT,
            Some(0) => return Err(config_err("timeout_ms", "milliseconds, at least 1")),
            Some(ms) => Duration::from_millis(ms),
        };
        let var = |field: &'static str, v: &Option<String>| match v {
            Some(v) if !valid_env_var(v) => Err(config_err(
                field,
                format!(
                    "{v:?} is not the name of an environment variable ([A-Za-z_][A-Za-z0-9_]*)"
                ),
            )),
            _ => Ok(v.clone()),
        };
        let secret_env = var("secret_env", &config.secret_env)?;
        let password_env = var("password_env", &config.password_env)?;
        if kind == SinkKind::Webhook && secret_env.is_none() {
            return Err(config_err(
                "secret_env",
                "a webhook sink signs its requests: name the runner's environment variable                  holding a whsec_ secret",
            ));
        }
        let table = config
            .table
            .clone()
            .unwrap_or_else(|| "xxfunc_records".into());
        if !valid_identifier(&table) {
            return Err(config_err(
                "table",
                "a table name matches [a-z_][a-z0-9_]{0,62}",
            ));
        }
        let subject = config.subject.clone().unwrap_or_else(|| "xxfunc".into());
        if subject.is_empty()
            || subject.split('.').any(str::is_empty)
            || subject.contains(['*', '>', ' '])
        {
            return Err(config_err(
                "subject",
                "a subject prefix like xxfunc or app.outputs",
            ));
        }
        let stream = config.stream.clone().unwrap_or_else(|| "XXFUNC".into());
        if stream.is_empty() || stream.contains(['.', '*', '>', ' ', '/']) {
            return Err(config_err(
                "stream",
                "a stream name without . * > / or spaces",
            ));
        }
        Ok(SinkSpec {
            name,
            function,
            kind,
            target: url,
            confirmations: config.confirmations,
            attempts,
            timeout,
            secret_env,
            password_env,
            table,
            subject,
            stream,
        })
    }
}

/// `url` with its password (if any) shown as `***`.
pub fn redact(url: &Url) -> String {
    let mut url = url.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("***"));
    }
    url.to_string()
}

fn valid_env_var(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

impl FromStr for SinkSpec {
    type Err = SpecError;

    /// `FUNCTION=KIND:TARGET[,OPTION=VALUE]...`, checked by [`SinkSpec::from_config`].
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
        let kind: SinkKind = kind.parse().map_err(|_| SpecError::Kind {
            input: input.to_string(),
            kind: kind.to_string(),
        })?;
        let mut config = SinkConfig::new(kind, target);
        let mut name = None;
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for part in parts {
            let option_err = |reason: &str| SpecError::Option {
                input: input.to_string(),
                option: part.to_string(),
                reason: reason.to_string(),
            };
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| option_err("expected option=value"))?;
            if seen.iter().any(|(k, _)| *k == key) {
                return Err(option_err("given twice"));
            }
            seen.push((key, part));
            let text = || Some(value.to_string());
            match key {
                "name" => name = Some(value),
                "confirmations" => {
                    config.confirmations = value
                        .parse()
                        .map_err(|_| option_err("a number of blocks"))?;
                }
                "attempts" => {
                    config.attempts = Some(
                        value
                            .parse()
                            .map_err(|_| option_err("a number of at least 1"))?,
                    );
                }
                "timeout-ms" => {
                    config.timeout_ms = Some(
                        value
                            .parse()
                            .map_err(|_| option_err("milliseconds, at least 1"))?,
                    );
                }
                "secret-env" => config.secret_env = text(),
                "password-env" => config.password_env = text(),
                "table" => config.table = text(),
                "subject" => config.subject = text(),
                "stream" => config.stream = text(),
                _ => return Err(option_err("unknown option")),
            }
        }
        SinkSpec::from_config(function, name, &config).map_err(|e| {
            if e.field == "url" {
                return SpecError::Target {
                    input: input.to_string(),
                    target: target.to_string(),
                    reason: e.reason,
                };
            }
            let flag = e.field.replace('_', "-");
            let option = seen
                .iter()
                .find(|(k, _)| *k == flag)
                .map_or(flag.clone(), |(_, part)| (*part).to_string());
            SpecError::Option {
                input: input.to_string(),
                option,
                reason: e.reason,
            }
        })
    }
}

impl SinkSpec {
    /// The target without its password.
    pub fn redacted(&self) -> String {
        redact(&self.target)
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
    fn the_registry_configuration_and_the_flag_are_one_rule() {
        let function: FunctionId = "erc20".parse().unwrap();
        let config = SinkConfig {
            password_env: Some("PGPASS".into()),
            table: Some("transfers".into()),
            confirmations: 3,
            ..SinkConfig::new(SinkKind::Postgres, "postgres://app@127.0.0.1:5432/app")
        };
        let from_config = SinkSpec::from_config(function.clone(), None, &config).unwrap();
        let from_flag: SinkSpec =
            "erc20=postgres:postgres://app@127.0.0.1:5432/app,password-env=PGPASS,table=transfers,confirmations=3"
                .parse()
                .unwrap();
        assert_eq!(from_config, from_flag);
        assert_eq!(from_config.name, "erc20-postgres");

        let err =
            |c: &SinkConfig| SinkSpec::from_config(function.clone(), Some("s"), c).unwrap_err();
        let nats = SinkConfig::new(SinkKind::Nats, "nats://127.0.0.1:4222");
        let e = err(&SinkConfig {
            password_env: Some("X".into()),
            ..nats.clone()
        });
        assert_eq!(
            (e.field, e.reason.as_str()),
            ("password_env", "only for postgres sinks")
        );
        let e = err(&SinkConfig {
            timeout_ms: Some(0),
            ..nats.clone()
        });
        assert_eq!(e.field, "timeout_ms");
        let e = err(&SinkConfig {
            attempts: Some(0),
            ..nats.clone()
        });
        assert_eq!(e.field, "attempts");
        let e = err(&SinkConfig {
            stream: Some("a.b".into()),
            ..nats.clone()
        });
        assert_eq!(e.field, "stream");
        let e = err(&SinkConfig::new(SinkKind::Nats, "not a url"));
        assert_eq!(e.field, "url");
        let e = err(&SinkConfig {
            secret_env: Some("1BAD".into()),
            ..SinkConfig::new(SinkKind::Webhook, "http://127.0.0.1/")
        });
        assert_eq!(e.field, "secret_env");
        assert!(e.to_string().contains("environment variable"), "{e}");
        let e = SinkSpec::from_config(function, Some("Bad"), &nats).unwrap_err();
        assert_eq!(e.field, "name");
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
