//! Integration tests for `xxfunc-store`.
//!
//! `conformance` is one suite run against every backend (memory, a local directory and a
//! real `s3s-fs` server); the other modules cover what is specific to one concern.

mod backends;
mod conformance;
mod resolve;
mod s3;
mod urls;
