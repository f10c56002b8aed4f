//! Function operations: bind, resolve, start, stop, pin, unpin, list, show, logs, outputs,
//! and the runner-facing reads, reports and outcome pushes.

use xxfunc_api::{
    BindResponse, FeedPage, FeedSnapshot, FunctionView, LogsPage, PinResponse, RunnerReport,
    Selector, StartFrom,
    outputs::{OutcomesAck, OutcomesPage, OutputsPage, OutputsQuery},
};
use xxfunc_primitives::{FunctionId, FunctionName, HashPrefix, ModuleHash};
use xxfunc_registry::RegistryError;

use crate::{
    Service,
    error::{Result, ServiceError},
};

/// What [`Service::bind`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindOutcome {
    /// The answer: name, hash, version, pinned.
    pub bind: BindResponse,
    /// Whether the bind recorded a new version (false: the name was already on that hash).
    pub new_version: bool,
}

impl Service {
    /// Binds `name` to a stored module given by full hash or unique prefix (`hash`, with
    /// or without `blake3:`). A prefix is resolved by the registry's rule
    /// ([`Registry::resolve_hash`](xxfunc_registry::Registry::resolve_hash)) among the
    /// modules the registry refers to and those the store lists.
    ///
    /// # Errors
    ///
    /// [`ServiceError::InvalidHash`], [`ServiceError::ModuleNotFound`],
    /// [`ServiceError::Ambiguous`], [`ServiceError::ModuleNotStored`]; nothing changes.
    pub async fn bind(&self, name: &FunctionName, hash: &str) -> Result<BindOutcome> {
        let prefix: HashPrefix = hash.parse()?;
        let _gc = self.hold().await;
        let hash = self.resolve_module(prefix).await?;
        self.require_stored(&hash).await?;
        let name = name.clone();
        self.registry_call(move |r| {
            let before = r.lookup_name(&name)?.map(|b| b.version);
            let bind = r.bind(&name, hash)?;
            let new_version = before != Some(bind.version);
            Ok(BindOutcome { bind, new_version })
        })
        .await
    }

    /// Resolves what a user typed (a name, a hash or a unique hash prefix) to a function
    /// identity by the registry's one rule ([`Registry::resolve`](xxfunc_registry::Registry::resolve)),
    /// listing the store only for an abbreviated prefix that is not a bound name, and then
    /// only the keys that prefix can match ([`ModuleStore::list_prefix`](xxfunc_store::ModuleStore::list_prefix)).
    ///
    /// # Errors
    ///
    /// [`ServiceError::InvalidSelector`]; [`ServiceError::Registry`] with
    /// `PrefixNotFound` or `Ambiguous` (and its candidates).
    pub async fn resolve(&self, selector: &str) -> Result<FunctionId> {
        let selector: Selector = selector.parse()?;
        if let Selector::Name(_) = selector {
            // Rule 1 of `Registry::resolve`: a plain name is its identity, read nothing, so
            // it needs no blocking thread.
            return Ok(self.registry().resolve(&selector, &[])?);
        }
        let first = selector.clone();
        let resolved = self
            .registry_call(move |r| {
                if r.needs_store_modules(&first)? {
                    Ok(None)
                } else {
                    r.resolve(&first, &[]).map(Some)
                }
            })
            .await?;
        if let Some(id) = resolved {
            return Ok(id);
        }
        let prefix = match &selector {
            Selector::Hash(prefix) | Selector::NameOrHash(_, prefix) => prefix,
            Selector::Name(_) => unreachable!("a plain name returned above"),
        };
        let stored = self.store().list_prefix(prefix).await?;
        self.registry_call(move |r| r.resolve(&selector, &stored))
            .await
    }

    /// Starts a function by name, hash or prefix, from the head or backfilling from a
    /// block. Starting by hash runs that module under its hash, which must be stored.
    ///
    /// # Errors
    ///
    /// As [`resolve`](Self::resolve); [`ServiceError::ModuleNotStored`]; the registry's
    /// `FunctionNotFound` / `NameNotFound`.
    pub async fn start(&self, selector: &str, from: StartFrom) -> Result<FunctionView> {
        let id = self.resolve(selector).await?;
        let _gc = self.hold_function(&id).await?;
        self.registry_call(move |r| {
            r.start(&id, from)?;
            r.function(&id)
        })
        .await
    }

    /// Stops a function by name, hash or prefix.
    ///
    /// # Errors
    ///
    /// As [`resolve`](Self::resolve); the registry's `FunctionNotFound`.
    pub async fn stop(&self, selector: &str) -> Result<FunctionView> {
        let id = self.resolve(selector).await?;
        self.registry_call(move |r| {
            r.stop(&id)?;
            r.function(&id)
        })
        .await
    }

    /// Pins a name (it stays on its hash across deploys) or a hash (never collected; it
    /// must be stored).
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub async fn pin(&self, selector: &str) -> Result<PinResponse> {
        let id = self.resolve(selector).await?;
        let _gc = self.hold_function(&id).await?;
        self.registry_call(move |r| r.pin(&id)).await
    }

    /// Unpins a name or hash.
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop).
    pub async fn unpin(&self, selector: &str) -> Result<PinResponse> {
        let id = self.resolve(selector).await?;
        self.registry_call(move |r| r.unpin(&id)).await
    }

    /// Every function.
    ///
    /// # Errors
    ///
    /// Registry failures.
    pub async fn list(&self) -> Result<Vec<FunctionView>> {
        self.registry_call(|r| r.list()).await
    }

    /// One function by name, hash or prefix.
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop).
    pub async fn function(&self, selector: &str) -> Result<FunctionView> {
        let id = self.resolve(selector).await?;
        self.registry_call(move |r| r.function(&id)).await
    }

    /// The `limit` most recent invocations of a function, most recent last.
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop).
    pub async fn logs(&self, selector: &str, limit: usize) -> Result<LogsPage> {
        let id = self.resolve(selector).await?;
        self.registry_call(move |r| r.logs(&id, limit)).await
    }

    /// Every function's spec and the feed position it reflects (what a runner starts from).
    ///
    /// # Errors
    ///
    /// Registry failures.
    pub async fn snapshot(&self) -> Result<FeedSnapshot> {
        self.registry_call(|r| r.snapshot()).await
    }

    /// At most `limit` change-feed entries after `after`, without waiting.
    ///
    /// # Errors
    ///
    /// Registry failures.
    pub async fn feed_after(&self, after: u64, limit: usize) -> Result<FeedPage> {
        self.registry_call(move |r| r.feed_after(after, limit))
            .await
    }

    /// Records a runner's report of its functions and recent invocations.
    ///
    /// # Errors
    ///
    /// Registry failures.
    pub async fn record_report(&self, runner: String, report: RunnerReport) -> Result<()> {
        self.registry_call(move |r| r.record_report(&runner, &report))
            .await
    }

    /// Stores a page of `runner`'s outcome log (idempotent by seq).
    ///
    /// # Errors
    ///
    /// Registry failures; `InvalidRunner` / `InvalidOutcomes` for a bad page.
    pub async fn record_outcomes(&self, runner: String, page: OutcomesPage) -> Result<OutcomesAck> {
        self.registry_call(move |r| r.record_outcomes(&runner, &page))
            .await
    }

    /// A page of a function's output items (see
    /// [`Registry::outputs`](xxfunc_registry::Registry::outputs)).
    ///
    /// # Errors
    ///
    /// As [`stop`](Self::stop); `AfterBeyondHead`, `InvalidQuery`.
    pub async fn outputs(&self, id: FunctionId, query: OutputsQuery) -> Result<OutputsPage> {
        self.registry_call(move |r| r.outputs(&id, &query)).await
    }

    /// A bind's module: a full hash as is, a prefix by the registry's rule over what it
    /// refers to plus the stored modules the prefix matches.
    async fn resolve_module(&self, prefix: HashPrefix) -> Result<ModuleHash> {
        let stored = if prefix.as_full().is_some() {
            Vec::new()
        } else {
            self.store().list_prefix(&prefix).await?
        };
        self.registry_call(move |r| r.resolve_hash(&prefix, &stored))
            .await
            .map_err(|e| match e {
                ServiceError::Registry(RegistryError::PrefixNotFound { prefix }) => {
                    ServiceError::ModuleNotFound { prefix }
                }
                ServiceError::Registry(RegistryError::Ambiguous { prefix, candidates }) => {
                    ServiceError::Ambiguous { prefix, candidates }
                }
                other => other,
            })
    }
}
