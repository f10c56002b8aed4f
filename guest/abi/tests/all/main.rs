//! Integration tests of the envelope codec: round trips, malformed input, random input,
//! and conformance over real mainnet and hive blocks.

mod conformance;
mod malformed;
mod random;
mod roundtrip;
mod support;
