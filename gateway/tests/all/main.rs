//! Gateway tests: the real `xxfunc-gateway` binary on loopback ports, over
//! the file backend and a real S3 server (s3s-fs), driven by the typed client.

mod auth;
mod bad_input;
mod crash;
mod embedded;
mod feed;
mod load;
mod outputs;
mod routes;
mod s3_down;
mod sinks;
mod support;
