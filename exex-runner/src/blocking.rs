//! [`BlockingRuntime`]: the private tokio runtime behind the runner's
//! blocking clients (the module store, the JSON-RPC follower, the gateway).
//!
//! Their calls block the calling thread, so they are made from plain threads
//! (the runner's control, source and feed threads). The clients themselves may
//! still be created or dropped by async code (`cargo xxfunc dev`, the reth
//! node), so dropping one never blocks: the runtime shuts down in the
//! background instead of panicking inside an async context.

use std::future::Future;

use crate::error::{Result, RunnerError};

pub(crate) struct BlockingRuntime(Option<tokio::runtime::Runtime>);

impl BlockingRuntime {
    /// A runtime driven only by the thread that blocks on it.
    pub(crate) fn current_thread(what: &str) -> Result<Self> {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|source| RunnerError::Runtime {
                what: what.to_string(),
                source,
            })
    }

    /// A runtime with one worker thread of its own: pooled connections are
    /// driven there whichever thread makes the next call, so a connection
    /// opened for one caller never stalls another.
    pub(crate) fn with_worker(what: &str) -> Result<Self> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name(format!("xxfunc-{what}"))
            .enable_all()
            .build()
            .map(|rt| Self(Some(rt)))
            .map_err(|source| RunnerError::Runtime {
                what: what.to_string(),
                source,
            })
    }

    /// Runs `future` to completion on the calling thread (a plain thread, not
    /// an async task: tokio panics on nested runtimes).
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.0
            .as_ref()
            .expect("the runtime is present until drop")
            .block_on(future)
    }
}

impl Drop for BlockingRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_inside_an_async_context_without_panicking() {
        let blocking = BlockingRuntime::with_worker("test").unwrap();
        assert_eq!(blocking.block_on(async { 7 }), 7);
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        outer.block_on(async move { drop(blocking) });
    }
}
