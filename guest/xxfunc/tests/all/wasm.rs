//! Runs a module the way the ABI says: WASI preview 1, stdin = envelope, stdout and stderr
//! captured, `_start` called, exit code or trap reported.

use wasmtime::{Config, Engine, Module, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::I32Exit;
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

/// How an invocation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// `_start` returned or the guest called `proc_exit(code)`.
    Code(i32),
    /// A trap (message from wasmtime).
    Trap(String),
}

#[derive(Debug)]
pub struct Outcome {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Outcome {
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

pub struct Limits {
    pub memory: usize,
    pub stdout: usize,
    pub fuel: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        // The runner's defaults (docs/abi.md): 64 MiB memory, 1 MiB stdout.
        Self {
            memory: 64 << 20,
            stdout: 1 << 20,
            fuel: None,
        }
    }
}

struct State {
    wasi: WasiP1Ctx,
    limits: StoreLimits,
}

/// One engine and compiled module, instantiated afresh per run.
pub struct Runner {
    engine: Engine,
    module: Module,
}

impl Runner {
    pub fn new(wasm: &[u8], fuel: bool) -> Self {
        let mut config = Config::new();
        config.consume_fuel(fuel);
        let engine = Engine::new(&config).expect("engine");
        let module = Module::new(&engine, wasm).expect("module compiles");
        Self { engine, module }
    }

    pub fn module(&self) -> &Module {
        &self.module
    }

    pub fn run(&self, stdin: &[u8], limits: &Limits) -> Outcome {
        let stdout = MemoryOutputPipe::new(limits.stdout);
        let stderr = MemoryOutputPipe::new(256 << 10);
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(stdin.to_vec()))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .build_p1();
        let limits_state = StoreLimitsBuilder::new().memory_size(limits.memory).build();
        let mut store = Store::new(
            &self.engine,
            State {
                wasi,
                limits: limits_state,
            },
        );
        store.limiter(|s| &mut s.limits);
        if let Some(fuel) = limits.fuel {
            store.set_fuel(fuel).expect("fuel enabled on this engine");
        }
        let mut linker = wasmtime::Linker::new(&self.engine);
        p1::add_to_linker_sync(&mut linker, |s: &mut State| &mut s.wasi).expect("WASI p1 links");
        let exit = match linker
            .instantiate(&mut store, &self.module)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .and_then(|start| start.call(&mut store, ()))
        {
            Ok(()) => Exit::Code(0),
            Err(err) => match err.downcast_ref::<I32Exit>() {
                Some(I32Exit(code)) => Exit::Code(*code),
                None => Exit::Trap(format!("{err:?}")),
            },
        };
        drop(store);
        Outcome {
            exit,
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
        }
    }
}
