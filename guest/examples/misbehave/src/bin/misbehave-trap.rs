//! Executes the `unreachable` instruction: a WebAssembly trap, not an exit.

#[xxfunc::main]
fn main(_event: xxfunc::Event) -> xxfunc::Result<()> {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}
