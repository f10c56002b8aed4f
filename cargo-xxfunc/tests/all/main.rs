//! Integration tests of `cargo xxfunc`: the real binary, in temporary
//! directories, against real RocksDB, wasmtime, guest modules built for
//! wasm32-wasip1, and (in `online`) a real `xxfunc-gateway` backed by s3s-fs.

mod errors;
mod new_build;
mod offline;
mod online;
mod sinks;
mod stream;
mod util;
