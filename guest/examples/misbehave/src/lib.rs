//! Functions that misbehave on purpose, to test the runner's limits. Each binary in
//! `src/bin/` is one module, `misbehave-<what>.wasm`:
//!
//! | module | does | expected under the runner |
//! |---|---|---|
//! | `misbehave-loop` | spins forever | wall-time limit (epoch interruption) |
//! | `misbehave-memory` | allocates 1 MiB blocks until allocation fails | memory limit, then a trap |
//! | `misbehave-stdout` | writes 64 MiB to stdout | stdout cap |
//! | `misbehave-panic` | panics | exit 101, message on stderr |
//! | `misbehave-exit` | exits with code 3 | exit 3 |
//! | `misbehave-trap` | executes `unreachable` | trap |
//! | `misbehave-sleep` | sleeps 60 s, then emits how long it slept | answered at once on the virtual clock |
