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
mod sink_webhook;
