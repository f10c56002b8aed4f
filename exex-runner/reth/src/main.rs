//! `xxfunc-reth`: a reth node with the xxfunc Execution Extension installed.
//!
//! The binary is reth's own command line (`xxfunc-reth node --dev ...` accepts every flag of
//! the `reth` binary of the pinned release) plus the `--xxfunc.*` flags of [`exex::ExExArgs`].
//! It installs one ExEx named `xxfunc` on [`EthereumNode`].
//!
//! This crate owns only the translation between reth and the runner core: it never decides
//! what a function sees or when a height is safe; that logic lives in `xxfunc-runner` and is
//! tested there. At this stage the ExEx logs every committed, reorged and reverted block and
//! reports each committed tip back to the node as finished.
//!
//! ```text
//! xxfunc-reth node --dev --dev.block-time 1s --datadir /tmp/xxfunc-reth \
//!     --disable-discovery --http --http.addr 127.0.0.1 ...
//! ```

mod exex;

use clap::Parser;
use reth_ethereum::{
    cli::{chainspec::EthereumChainSpecParser, interface::Cli},
    node::EthereumNode,
};

fn main() {
    reth_ethereum::cli::sigsegv_handler::install();

    let cli = Cli::<EthereumChainSpecParser, exex::ExExArgs>::parse();
    let outcome = cli.run(async move |builder, args| {
        let handle = builder
            .node(EthereumNode::default())
            .install_exex(exex::NAME, async move |ctx| Ok(exex::run(ctx, args)))
            .launch_with_debug_capabilities()
            .await?;
        handle.wait_for_node_exit().await
    });
    if let Err(err) = outcome {
        eprintln!("Error: {err:?}");
        std::process::exit(1);
    }
}
