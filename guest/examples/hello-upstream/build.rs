//! `src/main.rs` is `#![no_main]`, as the original xxfunc documented functions. On
//! `wasm32-wasip1` `#[xxfunc::main]` provides the C entry wasi-libc's `_start` calls. A
//! native build of the workspace (`cargo build --workspace`) links the binary too, and
//! there a `#![no_main]` binary has no `main`: alias it to the same entry.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=hello-upstream=-Wl,--defsym=main=__main_argc_argv");
    }
}
