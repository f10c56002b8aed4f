//! The flags `xxfunc-reth node` adds to reth's own: the runner's state directory and
//! [`RunnerArgs`], the same store, gateway/registry and limit flags as `xxfunc-runner`
//! (without its chain-source flags: the node is the source).

use std::path::PathBuf;

use xxfunc_runner::{OpenedRunner, RunnerArgs};

/// Runner configuration.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Runner")]
pub(crate) struct XxfuncArgs {
    /// Directory of the runner's state (cursors, records, compiled modules)
    /// [default: <datadir>/xxfunc].
    #[arg(long, env = "XXFUNC_RUNNER_DATA", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) runner: RunnerArgs,
}

impl XxfuncArgs {
    /// Opens the runner (state under `<node datadir>/xxfunc` unless `--data-dir` is given),
    /// its module source and registry, with the registry's desired state applied so that
    /// functions started while the node was down count for the resume point.
    pub(crate) fn open(&self, node_datadir: PathBuf) -> eyre::Result<OpenedRunner> {
        let data_dir = self.data_dir.clone().unwrap_or(node_datadir);
        self.runner
            .open(&data_dir, "reth")
            .map_err(|e| eyre::eyre!("{e:#}"))
    }
}
