//! Integration tests of the runner, one module per topic.

mod admission;
mod cache;
mod chain;
mod exactly_once;
mod gateway;
mod hanging;
mod isolation;
mod kill9;
mod metrics;
mod node;
mod ordering;
mod outcomes;
mod pusher;
mod registry;
mod replay;
mod rpc_follower;
mod sandbox;
mod sink_common;
mod sink_nats;
mod sink_postgres;
mod sink_registry;
mod sink_webhook;
mod state;
mod state_offline;

/// Batches wait for every function and no invocation counts as slow: for tests that
/// check each function's exact event sequence. (A function that lags behind, because a
/// batch did not wait for it, catches up on the canonical chain and never sees blocks
/// orphaned meanwhile; its commits minus reverts are the same, its sequence is not.)
pub(crate) fn never_lag(config: &mut xxfunc_runner::RunnerConfig) {
    config.detach_after = std::time::Duration::from_secs(3600);
    config.slow_invocation = std::time::Duration::from_secs(3600);
}

/// The runner flags of [`never_lag`].
pub(crate) const NEVER_LAG_FLAGS: [&str; 4] = [
    "--detach-after-ms",
    "3600000",
    "--slow-invocation-ms",
    "3600000",
];
