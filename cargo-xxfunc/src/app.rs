//! The command line: `cargo xxfunc <command>` with global options flattened in.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::{cmd, output::Output};

const EXIT_CODES_HELP: &str = "\
Exit codes:
   0  ok                    8  gateway unreachable
   1  unexpected failure    9  missing or wrong token
   2  usage error          10  function or module not found
   3  not in a crate       11  ambiguous hash prefix
   4  not a function crate 12  conflict (e.g. data directory in use)
   5  wasm target missing  13  test failed
   6  build failed
   7  invalid module

Data goes to stdout (with --json: one JSON value per line); messages and progress go to stderr.";

/// `cargo` as seen by a cargo subcommand: cargo runs `cargo-xxfunc xxfunc …`.
#[derive(Debug, Parser)]
#[command(name = "cargo", bin_name = "cargo", styles = clap::builder::styling::Styles::styled())]
pub(crate) enum Cargo {
    /// Create, build, test, deploy and run xxfunc functions.
    Xxfunc(XxfuncApp),
}

/// Create, build, test, deploy and run xxfunc functions: WebAssembly functions
/// that run inside an Ethereum node on every block.
#[derive(Debug, Args)]
#[command(version, after_help = EXIT_CODES_HELP, propagate_version = true)]
pub(crate) struct XxfuncApp {
    #[command(flatten)]
    pub(crate) global: GlobalOpts,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalOpts {
    /// Gateway URL.
    #[arg(
        long,
        env = "XXFUNC_GATEWAY",
        default_value = "http://127.0.0.1:8722",
        global = true,
        value_name = "URL"
    )]
    pub(crate) gateway: String,

    /// Bearer token sent to the gateway: its token for changes, or its read token
    /// where reads are guarded.
    #[arg(
        long,
        env = "XXFUNC_TOKEN",
        global = true,
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub(crate) token: Option<String>,

    /// Module store URL for --offline, `test` and `dev` (file:///abs/path, s3://bucket/prefix).
    /// [default: file://<data-dir>/modules]
    #[arg(long, env = "XXFUNC_STORE", global = true, value_name = "URL")]
    pub(crate) store: Option<String>,

    /// Local data directory (registry, module store, runner state) for --offline and `dev`.
    /// [default: .xxfunc in the project]
    #[arg(long, env = "XXFUNC_DATA_DIR", global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// Work on the local store and registry under --data-dir instead of a gateway.
    #[arg(long, env = "XXFUNC_OFFLINE", global = true)]
    pub(crate) offline: bool,

    /// Path to the function's Cargo.toml [default: found from the current directory].
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) manifest_path: Option<PathBuf>,

    /// Print machine-readable JSON (one value per line) on stdout.
    #[arg(long, global = true)]
    pub(crate) json: bool,

    /// Print nothing on stderr but warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Print more detail (repeat for debug logs).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

impl GlobalOpts {
    pub(crate) fn output(&self) -> Output {
        Output::new(self.json, self.quiet, self.verbose)
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new function crate, ready to build, test and deploy.
    New(cmd::new::NewArgs),
    /// Build the function for wasm32-wasip1 and validate it; prints path, size and hash.
    Build(cmd::build::BuildArgs),
    /// Build (if needed), upload and bind a name; prints only the hash on stdout.
    Deploy(cmd::deploy::DeployArgs),
    /// Start a function by name, hash or unique hash prefix.
    Start(cmd::start::StartArgs),
    /// Stop a function by name, hash or unique hash prefix.
    Stop(cmd::stop::StopArgs),
    /// Pin a name to its current hash (new deploys don't move it) or protect a hash from gc.
    Pin(cmd::pin::PinArgs),
    /// Remove a pin.
    Unpin(cmd::pin::UnpinArgs),
    /// List functions.
    List(cmd::list::ListArgs),
    /// Show desired and observed state, cursor, last error and counters.
    Status(cmd::status::StatusArgs),
    /// Show recent invocations (outputs and logs) of a function.
    Logs(cmd::logs::LogsArgs),
    /// Read a function's output records by cursor: once, or following (-f) the stream.
    Outputs(cmd::outputs::OutputsArgs),
    /// Deliver a function's outputs to webhooks, PostgreSQL or NATS: add, list, status,
    /// remove, retry.
    Sink(cmd::sink::SinkArgs),
    /// Delete modules no name, version, hash function or pin refers to.
    Gc(cmd::gc::GcArgs),
    /// Run the function on recorded chain fixtures through the real runner, offline.
    Test(cmd::test::TestArgs),
    /// Run gateway and runner in one process on the local data directory.
    Dev(cmd::dev::DevArgs),
}

/// Parses the command line. Accepts `cargo xxfunc …` (argv `cargo-xxfunc xxfunc …`)
/// and, for convenience, `cargo-xxfunc …` without the `xxfunc` word.
pub(crate) fn parse() -> XxfuncApp {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let needs_word = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| a != "xxfunc" && !a.starts_with('-') && a != "help");
    if needs_word {
        args.insert(1, "xxfunc".into());
    }
    let Cargo::Xxfunc(app) = Cargo::parse_from(args);
    app
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_line_is_consistent() {
        Cargo::command().debug_assert();
    }

    #[test]
    fn global_flags_go_anywhere() {
        let Cargo::Xxfunc(app) = Cargo::try_parse_from([
            "cargo",
            "xxfunc",
            "deploy",
            "--offline",
            "--json",
            "--name",
            "x",
            "-q",
        ])
        .unwrap();
        assert!(app.global.offline && app.global.json && app.global.quiet);
        assert!(matches!(app.command, Command::Deploy(_)));
    }

    #[test]
    fn usage_errors_exit_2() {
        let err = Cargo::try_parse_from(["cargo", "xxfunc", "start"]).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit_codes::USAGE);
        let err = Cargo::try_parse_from(["cargo", "xxfunc", "nope"]).unwrap_err();
        assert_eq!(err.exit_code(), crate::exit_codes::USAGE);
    }
}
