//! `cargo xxfunc`: create, build, test, deploy and operate xxfunc functions.
//!
//! The CLI is glue: building is cargo's, API types are `xxfunc-api`'s, every
//! business rule (validation, deploy, bind, selectors, start/stop/pin, gc) is
//! `xxfunc-service`'s, which `--offline` calls in-process and the gateway
//! serves online; storage is `xxfunc-store`'s, names and states are
//! `xxfunc-registry`'s, running is `xxfunc-runner`'s. Data goes to stdout,
//! everything else to stderr; exit codes are in [`exit_codes`].

mod app;
mod backend;
mod cmd;
mod exit_codes;
mod failure;
mod gateway_embed;
mod output;
mod project;
mod wasm_build;

use std::process::ExitCode;

fn main() -> ExitCode {
    let app = app::parse();
    init_tracing(app.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(exit_codes::FAILURE as u8);
        }
    };
    match runtime.block_on(cmd::run(app)) {
        Ok(()) => ExitCode::from(exit_codes::OK as u8),
        // `cargo xxfunc list | head`: the reader left; not a failure.
        Err(err) if failure::is_broken_pipe(&err) => ExitCode::from(exit_codes::OK as u8),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(u8::try_from(failure::exit_code(&err)).unwrap_or(1))
        }
    }
}

/// Library logs on stderr: warnings by default, more with `-vv`, or `RUST_LOG`.
fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 | 1 => "warn",
        2 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
