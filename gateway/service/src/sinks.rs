//! Sink operations: add or change, list, remove and retry a function's sinks.
//!
//! A configuration is checked here with the runner's own rules
//! ([`xxfunc_sinks::SinkSpec::from_config`]), so what the gateway accepts a runner can
//! start; only what depends on the runner (its environment holding the secret, its
//! `--sink-allow-host` list, the kinds it was built with) is decided there, and shows in
//! the sink's reported state.

use xxfunc_api::sinks::{SinkConfig, SinksView};
use xxfunc_registry::RegistryError;

use crate::{Service, error::Result};

impl Service {
    /// Adds sink `name` of the function `selector` picks, or replaces its configuration.
    /// Answers the function's sinks.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve); the registry's `InvalidSink` naming the field that
    /// is wrong (a password in the URL included: secrets are given by environment
    /// variable), `SinkNameTaken`, `FunctionNotFound`.
    pub async fn set_sink(
        &self,
        selector: &str,
        name: &str,
        config: SinkConfig,
    ) -> Result<SinksView> {
        let id = self.resolve(selector).await?;
        check(&id, name, &config).map_err(|reason| RegistryError::InvalidSink {
            name: name.to_string(),
            reason,
        })?;
        let name = name.to_string();
        self.registry_call(move |r| {
            r.set_sink(&id, &name, config)?;
            r.sinks(&id)
        })
        .await
    }

    /// The sinks of the function `selector` picks, each with every runner's report.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve); `FunctionNotFound`.
    pub async fn sinks(&self, selector: &str) -> Result<SinksView> {
        let id = self.resolve(selector).await?;
        self.registry_call(move |r| r.sinks(&id)).await
    }

    /// Removes sink `name`. Answers the sinks left.
    ///
    /// # Errors
    /// As [`resolve`](Self::resolve); `SinkNotFound`, `FunctionNotFound`.
    pub async fn remove_sink(&self, selector: &str, name: &str) -> Result<SinksView> {
        let id = self.resolve(selector).await?;
        let name = name.to_string();
        self.registry_call(move |r| {
            r.remove_sink(&id, &name)?;
            r.sinks(&id)
        })
        .await
    }

    /// Asks runners to resume sink `name` if it is `failed`.
    ///
    /// # Errors
    /// As [`remove_sink`](Self::remove_sink).
    pub async fn retry_sink(&self, selector: &str, name: &str) -> Result<SinksView> {
        let id = self.resolve(selector).await?;
        let name = name.to_string();
        self.registry_call(move |r| {
            r.retry_sink(&id, &name)?;
            r.sinks(&id)
        })
        .await
    }
}

/// The runner's checks of a sink's configuration, plus the API's own: no secret in
/// the URL (it would be stored and sent to every runner). `Err` says what is wrong.
fn check(id: &xxfunc_api::FunctionId, name: &str, config: &SinkConfig) -> Result<(), String> {
    xxfunc_sinks::SinkSpec::from_config(id.clone(), Some(name), config)
        .map_err(|e| e.to_string())?;
    if url::Url::parse(&config.url).is_ok_and(|u| u.password().is_some()) {
        let hint = match config.kind {
            xxfunc_api::sinks::SinkKind::Postgres => {
                "give the password by the name of the runner's environment variable holding \
                 it (`password_env`; `--password-env VAR` on the command line)"
            }
            _ => "keep secrets in the runner's environment",
        };
        return Err(format!(
            "url: a password in the URL would be stored in the registry and sent to every \
             runner; {hint}"
        ));
    }
    Ok(())
}
