//! `xxfunc-reth`: a reth node with the xxfunc Execution Extension installed.
//!
//! The binary is reth's own command line (`xxfunc-reth node --dev ...` accepts every flag of
//! the `reth` binary of the pinned release) plus the runner flags of `xxfunc-runner` (module
//! store, gateway or registry, limits: [`xxfunc_runner::RunnerArgs`]). It installs one ExEx
//! named `xxfunc` on [`EthereumNode`].
//!
//! This crate owns only the translation between reth and the runner core: reth's blocks to
//! `ChainBlock`s, chain notifications to commit/revert events, the functions' lowest cursor to
//! the ExEx head, the core's safe height to `FinishedHeight`, functions' state reads to the
//! node's state provider. It never decides what a function sees or when a height is safe;
//! that logic lives in `xxfunc-runner` and is tested there.
//!
//! ```text
//! xxfunc-reth node --dev --dev.block-time 1s --datadir /tmp/xxfunc-reth \
//!     --disable-discovery --nat none --http --http.addr 127.0.0.1 ... \
//!     --gateway http://127.0.0.1:8722 --token "$XXFUNC_TOKEN"
//! ```

mod args;
mod block;
mod exex;
mod state;

use clap::Parser;
use reth_ethereum::{
    cli::{chainspec::EthereumChainSpecParser, interface::Cli},
    node::EthereumNode,
};

fn main() {
    reth_ethereum::cli::sigsegv_handler::install();

    let cli = Cli::<EthereumChainSpecParser, args::XxfuncArgs>::parse();
    let outcome = cli.run(async move |builder, args| {
        let handle = builder
            .node(EthereumNode::default())
            .install_exex(exex::NAME, async move |ctx| {
                // Open the runner during launch, so a bad store or registry stops the node
                // before it produces blocks.
                let datadir = ctx.config.datadir().data_dir().to_path_buf();
                let prepared = exex::prepare(args, datadir).await?;
                Ok(exex::run(ctx, prepared))
            })
            .launch_with_debug_capabilities()
            .await?;
        handle.wait_for_node_exit().await
    });
    if let Err(err) = outcome {
        eprintln!("Error: {err:?}");
        std::process::exit(1);
    }
}
