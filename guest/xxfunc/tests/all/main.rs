//! Integration tests of the SDK: the example modules built for wasm32-wasip1 and run in
//! wasmtime exactly as docs/abi.md says, against the recorded fixtures; and the SDK's typed
//! accessors on the same envelopes, natively.

mod golden;
mod misbehave;
mod sdk;
mod state;
mod stock;
mod wasm;
