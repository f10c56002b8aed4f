//! The one wasmtime [`Engine`] of a runner process, its epoch ticker, its
//! WASI [`Linker`], and the fingerprint that keys precompiled artifacts.
//!
//! The engine runs exactly the WebAssembly that admission accepts: its proposals
//! and its pooled slot's shape (one memory, one table of bounded size) come from
//! [`xxfunc_primitives::admission`], the description the gateway validates with.
//!
//! # Lifetimes
//!
//! - **One `Engine` per process** (per [`WasmEngine`]): it owns the pooling
//!   allocator (a fixed set of instance slots reserved up front), the compiled
//!   code of every module, and the epoch counter. Creating one is expensive
//!   (virtual memory reservations); cloning one is an `Arc` bump.
//! - **One `Linker` per engine**: WASI preview 1 plus the runner's virtual-time
//!   `poll_oneoff`, and the `xxfunc.state_*` host calls ([`crate::state`]). It is immutable after construction and shared.
//! - **One `InstancePre` per module hash** (see `module_cache`): imports are
//!   resolved once, so each invocation only allocates a pool slot.
//! - **One `Store` per invocation** (see `invoke`): it holds the WASI context
//!   (stdin = the envelope, captured stdout/stderr), the limits and the
//!   instance, and is dropped when the invocation ends, so nothing survives
//!   from one event to the next.

use std::{
    hash::Hasher,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
};

use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, Linker, OptLevel, PoolingAllocationConfig,
};

use xxfunc_primitives::admission;

use crate::{
    config::Limits,
    error::{Result, RunnerError},
    sandbox::{self, GuestState},
};

/// The engine, linker and limits shared by every invocation of a runner.
pub struct WasmEngine {
    engine: Engine,
    linker: Linker<GuestState>,
    limits: Limits,
    fingerprint: String,
    ticker: Option<EpochTicker>,
}

impl std::fmt::Debug for WasmEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmEngine")
            .field("limits", &self.limits)
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl WasmEngine {
    /// Builds the engine for `limits`, with `slots` pooled instance slots (the
    /// most invocations that may run at once).
    ///
    /// # Errors
    /// [`RunnerError::Engine`] when wasmtime rejects the configuration (for
    /// example when the host cannot reserve the pool's virtual memory).
    pub fn new(limits: Limits, slots: u32) -> Result<Self> {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(slots)
            .total_memories(slots)
            .total_tables(slots)
            // Invocations are synchronous and never use fiber stacks, but the
            // pool reserves wasmtime's default of 1,000 of them otherwise,
            // which alone made an engine take ~2 ms to create.
            .total_stacks(slots)
            .max_memory_size(limits.memory_bytes)
            .max_memories_per_module(admission::MAX_MEMORIES)
            .max_tables_per_module(admission::MAX_TABLES)
            .table_elements(
                usize::try_from(admission::MAX_TABLE_ELEMENTS)
                    .expect("the table element limit fits a usize"),
            );
        let mut config = Config::new();
        // Exactly the proposals admission validates with: every other one off, these on,
        // whatever wasmtime's defaults are.
        let features = admission::wasm_features();
        config
            .wasm_features(!features, false)
            .wasm_features(features, true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .epoch_interruption(true)
            .consume_fuel(limits.fuel.is_some())
            .cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).map_err(RunnerError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut GuestState| {
            &mut state.wasi
        })
        .map_err(RunnerError::Engine)?;
        sandbox::shadow_wasi(&mut linker).map_err(RunnerError::Engine)?;
        crate::state::host::add_to_linker(&mut linker).map_err(RunnerError::Engine)?;
        let fingerprint = fingerprint(&engine, &limits);
        let ticker = Some(EpochTicker::start(engine.clone()));
        Ok(Self {
            engine,
            linker,
            limits,
            fingerprint,
            ticker,
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The shared linker (WASI preview 1 with virtual time).
    pub(crate) fn linker(&self) -> &Linker<GuestState> {
        &self.linker
    }

    /// The limits every invocation runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Identifies everything that makes a precompiled artifact loadable:
    /// wasmtime's own compatibility hash (version, compiler settings, target
    /// features), the host target, and this runner's engine settings.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }
}

impl Drop for WasmEngine {
    fn drop(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.stop();
        }
    }
}

/// Version of the artifact layout; bump it to orphan every cached artifact.
const ARTIFACT_LAYOUT: &str = "xxfunc-artifact-v1";

fn fingerprint(engine: &Engine, limits: &Limits) -> String {
    struct Blake3Hasher(blake3::Hasher);
    impl Hasher for Blake3Hasher {
        fn finish(&self) -> u64 {
            let hash = self.0.finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(&hash.as_bytes()[..8]);
            u64::from_le_bytes(first)
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Blake3Hasher(blake3::Hasher::new());
    std::hash::Hash::hash(&engine.precompile_compatibility_hash(), &mut hasher);
    hasher.write(ARTIFACT_LAYOUT.as_bytes());
    hasher.write(std::env::consts::ARCH.as_bytes());
    hasher.write(std::env::consts::OS.as_bytes());
    let settings = format!(
        "epoch=1;fuel={};memory={}",
        limits.fuel.is_some(),
        limits.memory_bytes
    );
    hasher.write(settings.as_bytes());
    hasher.0.finalize().to_hex()[..32].to_string()
}

/// A thread that advances the engine's epoch every [`Limits::EPOCH_TICK`].
/// Stores set their deadline in ticks, so a guest that runs past its wall-time
/// limit traps with `Trap::Interrupt` at the next tick.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl EpochTicker {
    fn start(engine: Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("xxfunc-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Limits::EPOCH_TICK);
                    engine.increment_epoch();
                }
            })
            .expect("spawning the epoch ticker thread");
        Self { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_engine_settings() -> anyhow::Result<()> {
        let plain = WasmEngine::new(Limits::default(), 2)?;
        let again = WasmEngine::new(Limits::default(), 2)?;
        let fueled = WasmEngine::new(
            Limits {
                fuel: Some(1_000_000),
                ..Limits::default()
            },
            2,
        )?;
        assert_eq!(plain.fingerprint(), again.fingerprint());
        assert_ne!(plain.fingerprint(), fueled.fingerprint());
        assert_eq!(plain.fingerprint().len(), 32);
        Ok(())
    }
}
