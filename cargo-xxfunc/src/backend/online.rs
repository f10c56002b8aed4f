//! The online backend: a gateway's `/v1` API through `xxfunc_api::client`.
//!
//! Every [`ClientError`] is mapped to an exit code and a message that names
//! the gateway and says what to do next.

use xxfunc_api::{
    DeployResponse, FunctionName, FunctionView, GcResponse, Health, LogsPage, PinResponse,
    StartFrom,
    client::{Client, ClientError},
    codes,
};

use std::time::Duration;

use xxfunc_api::{
    outputs::{OutputsPage, OutputsQuery},
    sinks::{SinkConfig, SinksView},
};

use crate::{exit_codes, failure::fail};

/// A gateway.
pub(crate) struct Online {
    base: String,
    client: Client,
}

impl Online {
    pub(crate) fn new(gateway: &str, token: Option<String>) -> anyhow::Result<Self> {
        let client = Client::new(gateway).map_err(|e| {
            fail(
                exit_codes::USAGE,
                format!("--gateway {gateway:?}: {e}; use e.g. http://127.0.0.1:8722"),
            )
        })?;
        Ok(Self {
            base: gateway.trim_end_matches('/').to_string(),
            client: client.with_token(token),
        })
    }

    pub(crate) fn describe(&self) -> String {
        self.base.clone()
    }

    /// Checks that the gateway answers `/healthz`.
    pub(crate) async fn health(&self) -> anyhow::Result<Health> {
        self.client.health().await.map_err(|e| self.error(e, None))
    }

    pub(crate) async fn deploy(
        &self,
        name: &FunctionName,
        module: Vec<u8>,
    ) -> anyhow::Result<DeployResponse> {
        self.client
            .deploy(name, module)
            .await
            .map_err(|e| self.error(e, None))
    }

    pub(crate) async fn start(
        &self,
        selector: &str,
        from: StartFrom,
    ) -> anyhow::Result<FunctionView> {
        let from_block = match from {
            StartFrom::Head => None,
            StartFrom::Block(n) => Some(n),
        };
        self.client
            .start(selector, from_block)
            .await
            .map_err(|e| self.error(e, Some(selector)))
    }

    pub(crate) async fn stop(&self, selector: &str) -> anyhow::Result<FunctionView> {
        self.client
            .stop(selector)
            .await
            .map_err(|e| self.error(e, Some(selector)))
    }

    pub(crate) async fn pin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        self.client
            .pin(selector)
            .await
            .map_err(|e| self.error(e, Some(selector)))
    }

    pub(crate) async fn unpin(&self, selector: &str) -> anyhow::Result<PinResponse> {
        self.client
            .unpin(selector)
            .await
            .map_err(|e| self.error(e, Some(selector)))
    }

    pub(crate) async fn list(&self) -> anyhow::Result<Vec<FunctionView>> {
        self.client.list().await.map_err(|e| self.error(e, None))
    }

    pub(crate) async fn function(&self, selector: &str) -> anyhow::Result<FunctionView> {
        self.client
            .function(selector)
            .await
            .map_err(|e| self.error(e, Some(selector)))
    }

    pub(crate) async fn logs(&self, selector: &str, limit: usize) -> anyhow::Result<LogsPage> {
        self.client
            .logs(selector, Some(limit))
            .await
            .map_err(|e| self.error(e, Some(selector)))
    }

    pub(crate) async fn outputs(
        &self,
        selector: &str,
        query: &OutputsQuery,
        wait: Duration,
    ) -> anyhow::Result<OutputsPage> {
        self.client
            .outputs(selector, query, wait)
            .await
            .map_err(|e| self.error(e, Some(selector)))
    }

    // Sink errors name the sink or the function themselves: no selector hint.

    pub(crate) async fn set_sink(
        &self,
        selector: &str,
        sink: &str,
        config: &SinkConfig,
    ) -> anyhow::Result<SinksView> {
        self.client
            .put_sink(selector, sink, config)
            .await
            .map_err(|e| self.error(e, None))
    }

    pub(crate) async fn sinks(&self, selector: &str) -> anyhow::Result<SinksView> {
        self.client
            .sinks(selector)
            .await
            .map_err(|e| self.error(e, None))
    }

    pub(crate) async fn remove_sink(
        &self,
        selector: &str,
        sink: &str,
    ) -> anyhow::Result<SinksView> {
        self.client
            .remove_sink(selector, sink)
            .await
            .map_err(|e| self.error(e, None))
    }

    pub(crate) async fn retry_sink(&self, selector: &str, sink: &str) -> anyhow::Result<SinksView> {
        self.client
            .retry_sink(selector, sink)
            .await
            .map_err(|e| self.error(e, None))
    }

    pub(crate) async fn gc(&self, dry_run: bool) -> anyhow::Result<GcResponse> {
        self.client
            .gc(dry_run)
            .await
            .map_err(|e| self.error(e, None))
    }

    /// Maps a client error to a failure with its exit code; `selector` is what
    /// the user typed, when the request was about a function.
    fn error(&self, e: ClientError, selector: Option<&str>) -> anyhow::Error {
        let base = &self.base;
        match &e {
            ClientError::Unreachable { source, .. } => {
                let mut reason = source.to_string();
                let mut cause = std::error::Error::source(source);
                while let Some(c) = cause {
                    reason = format!("{reason}: {c}");
                    cause = c.source();
                }
                return fail(
                    exit_codes::GATEWAY_UNREACHABLE,
                    format!(
                        "cannot reach the gateway at {base} ({reason}); start one (`xxfunc-gateway`, \
                         or `cargo xxfunc dev` locally), point --gateway / XXFUNC_GATEWAY at it, or \
                         work without a server using --offline"
                    ),
                );
            }
            ClientError::InvalidSelector(_) | ClientError::InvalidUrl { .. } => {
                return fail(exit_codes::USAGE, e.to_string());
            }
            ClientError::Api { .. } => {}
            _ => return anyhow::Error::new(e),
        }
        let ClientError::Api {
            code,
            message,
            status,
            candidates,
            ..
        } = &e
        else {
            unreachable!("handled above")
        };
        let message = message.trim_end_matches('.');
        match code.as_str() {
            codes::UNAUTHORIZED => fail(
                exit_codes::AUTH,
                format!(
                    "the gateway at {base} needs a token for this request; pass --token or set \
                     XXFUNC_TOKEN (`cargo xxfunc dev` prints its token)"
                ),
            ),
            codes::FORBIDDEN => fail(
                exit_codes::AUTH,
                format!(
                    "the gateway at {base} rejected the token; check --token / XXFUNC_TOKEN \
                     (`cargo xxfunc dev` prints its token)"
                ),
            ),
            codes::NOT_FOUND => match selector {
                Some(sel) => fail(
                    exit_codes::NOT_FOUND,
                    format!(
                        "function {sel:?} not found on {base} ({message}); run cargo xxfunc list"
                    ),
                ),
                None => fail(exit_codes::NOT_FOUND, format!("{message} (gateway {base})")),
            },
            codes::AMBIGUOUS_HASH => {
                let list: Vec<String> = candidates.iter().map(ToString::to_string).collect();
                let list = if list.is_empty() {
                    String::new()
                } else {
                    format!("; candidates:\n  {}", list.join("\n  "))
                };
                fail(
                    exit_codes::AMBIGUOUS,
                    format!("{message} (gateway {base}); type more hex digits{list}"),
                )
            }
            codes::INVALID_MODULE | codes::TOO_LARGE => fail(
                exit_codes::INVALID_MODULE,
                format!("the gateway at {base} rejected the module: {message}"),
            ),
            codes::INVALID_NAME | codes::INVALID_HASH | codes::BAD_REQUEST => {
                fail(exit_codes::USAGE, format!("{message} (gateway {base})"))
            }
            codes::CONFLICT => fail(exit_codes::CONFLICT, format!("{message} (gateway {base})")),
            _ => fail(
                exit_codes::FAILURE,
                format!("the gateway at {base} failed ({status} {code}): {message}"),
            ),
        }
    }
}
