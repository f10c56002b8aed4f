//! What a module may use: the one description of the WebAssembly the runner's engine runs.
//!
//! The gateway (and `cargo xxfunc build`, and offline uploads) admits a module only if it
//! stays within this description, and the runner configures its wasmtime engine from the
//! very same values, so a module that is admitted compiles, and one the engine could not
//! compile is refused at upload with a reason instead of sitting in `load_failed`.
//!
//! - [`wasm_features`] (cargo feature `wasm-features`): the exact set of WebAssembly
//!   proposals, as `wasmparser::WasmFeatures` (the version wasmtime itself validates
//!   with). The runner enables these and disables every other one; the gateway validates
//!   every function body with them.
//! - [`PROPOSALS`]: every proposal by name, on or off, which [`wasm_features`] is built
//!   from; messages name a disabled one a module needs.
//! - [`MAX_MEMORIES`], [`MAX_TABLES`], [`MAX_TABLE_ELEMENTS`]: the shape of the pooled
//!   instance slot every invocation gets.
//!
//! What this does not cover, because it depends on a runner's own settings: a memory
//! minimum over that runner's memory cap, and the pooled instance's size budget (1 MiB of
//! per-instance metadata: globals, functions, tables).

/// A WebAssembly proposal, whether the engine runs it, and what a module uses it for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// The proposal's name, as wasm-tools and the WebAssembly repositories spell it.
    pub name: &'static str,
    /// Whether the runner's engine runs modules that use it.
    pub enabled: bool,
    /// What a module uses it for (or what gives it away).
    pub what: &'static str,
}

const fn on(name: &'static str, what: &'static str) -> Proposal {
    Proposal {
        name,
        enabled: true,
        what,
    }
}

const fn off(name: &'static str, what: &'static str) -> Proposal {
    Proposal {
        name,
        enabled: false,
        what,
    }
}

/// Every proposal wasmtime knows for core modules, and whether the engine runs it.
pub const PROPOSALS: &[Proposal] = &[
    on("mutable-global", "mutable imported and exported globals"),
    on(
        "saturating-float-to-int",
        "non-trapping float-to-int conversions",
    ),
    on("sign-extension", "sign-extension operators"),
    on(
        "reference-types",
        "funcref/externref values and table operators",
    ),
    on("multi-value", "functions and blocks with several results"),
    on(
        "bulk-memory",
        "memory.copy, memory.fill and passive segments",
    ),
    on("simd", "128-bit SIMD"),
    on("relaxed-simd", "relaxed SIMD"),
    on("tail-call", "return_call"),
    on("extended-const", "extended constant expressions"),
    on("function-references", "typed function references"),
    on("memory64", "64-bit memory indexes"),
    off("threads", "shared memory and atomic operators"),
    off("gc", "struct, array and other GC types"),
    off("exceptions", "tags, throw and try_table"),
    off("legacy-exceptions", "try, catch and rethrow"),
    off("multi-memory", "more than one linear memory"),
    off("custom-page-sizes", "memories with a custom page size"),
    off("wide-arithmetic", "128-bit arithmetic operators"),
    off("stack-switching", "continuations"),
    off(
        "shared-everything-threads",
        "shared tables, globals and functions",
    ),
    off("memory-control", "memory.discard"),
    off("component-model", "components instead of core modules"),
];

/// Linear memories a module may define (each pooled instance slot holds one).
pub const MAX_MEMORIES: u32 = 1;

/// Tables a module may define (each pooled instance slot holds one).
pub const MAX_TABLES: u32 = 1;

/// Largest initial size, in elements, of a module's table (the slot's table capacity;
/// wasmtime's default, which a debug build of a large program may approach).
pub const MAX_TABLE_ELEMENTS: u64 = 20_000;

/// The import module of the runner's own host calls (docs/abi.md §8).
pub const HOST_MODULE: &str = "xxfunc";

/// The host calls of [`HOST_MODULE`], each with its number of parameters: every parameter
/// is an `i32` and every one returns one `i32` (docs/abi.md §8, "The functions"). The
/// gateway admits exactly these imports from it, and the runner's linker defines them.
pub const HOST_CALLS: &[(&str, usize)] = &[
    ("state_account", 2),
    ("state_storage", 3),
    ("state_code", 4),
    ("state_call", 5),
];

/// The WebAssembly proposals the runner's engine runs, exactly: the runner enables these
/// and disables every other, and admission validates every function body with them. It is
/// floating point plus every enabled entry of [`PROPOSALS`].
///
/// This is wasmtime 48's default set on a build without its `gc` and `threads` features
/// (WebAssembly 3.0 without GC types, exceptions and threads), without GC's other
/// encodings, and without multi-memory (a pooled instance slot has one memory).
#[cfg(feature = "wasm-features")]
pub fn wasm_features() -> wasmparser::WasmFeatures {
    PROPOSALS
        .iter()
        .filter(|p| p.enabled)
        .fold(wasmparser::WasmFeatures::FLOATS, |all, p| {
            all | proposal_flags(p)
        })
}

/// The `wasmparser` flags of `proposal`.
#[cfg(feature = "wasm-features")]
pub fn proposal_flags(proposal: &Proposal) -> wasmparser::WasmFeatures {
    use wasmparser::WasmFeatures as F;
    match proposal.name {
        "mutable-global" => F::MUTABLE_GLOBAL,
        "saturating-float-to-int" => F::SATURATING_FLOAT_TO_INT,
        "sign-extension" => F::SIGN_EXTENSION,
        "reference-types" => F::REFERENCE_TYPES,
        "multi-value" => F::MULTI_VALUE,
        "bulk-memory" => F::BULK_MEMORY,
        "simd" => F::SIMD,
        "relaxed-simd" => F::RELAXED_SIMD,
        "tail-call" => F::TAIL_CALL,
        "extended-const" => F::EXTENDED_CONST,
        "function-references" => F::FUNCTION_REFERENCES,
        "memory64" => F::MEMORY64,
        "threads" => F::THREADS,
        "gc" => F::GC | F::GC_TYPES,
        "exceptions" => F::EXCEPTIONS,
        "legacy-exceptions" => F::LEGACY_EXCEPTIONS,
        "multi-memory" => F::MULTI_MEMORY,
        "custom-page-sizes" => F::CUSTOM_PAGE_SIZES,
        "wide-arithmetic" => F::WIDE_ARITHMETIC,
        "stack-switching" => F::STACK_SWITCHING,
        "shared-everything-threads" => F::SHARED_EVERYTHING_THREADS,
        "memory-control" => F::MEMORY_CONTROL,
        "component-model" => F::COMPONENT_MODEL,
        other => unreachable!("PROPOSALS names {other}, which has no flags here"),
    }
}

#[cfg(all(test, feature = "wasm-features"))]
mod tests {
    use wasmparser::WasmFeatures as F;

    use super::*;

    #[test]
    fn the_set_is_wasm3_without_what_the_engine_cannot_run() {
        let expected =
            F::WASM3 & !(F::GC | F::GC_TYPES | F::EXCEPTIONS | F::THREADS | F::MULTI_MEMORY);
        assert_eq!(wasm_features(), expected);
    }

    #[test]
    fn every_proposal_has_its_own_flags() {
        let mut seen = F::empty();
        for p in PROPOSALS {
            let flags = proposal_flags(p);
            assert!(!flags.is_empty(), "{}", p.name);
            assert!((seen & flags).is_empty(), "{} overlaps another", p.name);
            seen |= flags;
            assert_eq!(wasm_features().contains(flags), p.enabled, "{}", p.name);
        }
    }
}
