//! `cargo xxfunc start NAME|HASH|PREFIX [--from-block N]`.

use clap::Args;
use xxfunc_api::StartFrom;

use super::{Ctx, status::short_hash};

#[derive(Debug, Args)]
pub(crate) struct StartArgs {
    /// Function name, module hash (`blake3:…`), or a unique hash prefix (≥ 8 hex digits).
    /// A hash starts the module as a function of its own, identified by the hash.
    #[arg(value_name = "NAME|HASH")]
    pub(crate) target: String,
    /// Backfill: deliver events from this block number instead of the chain head.
    #[arg(long, value_name = "N")]
    pub(crate) from_block: Option<u64>,
}

pub(crate) async fn run(ctx: &Ctx, args: StartArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    let from = args.from_block.map_or(StartFrom::Head, StartFrom::Block);
    let view = backend.start(&args.target, from).await?;
    if ctx.out.json() {
        return ctx.out.json_line(&view);
    }
    let from = match view.start {
        StartFrom::Head => "from the chain head".to_string(),
        StartFrom::Block(n) => format!("from block {n}"),
    };
    ctx.out.status(
        "Started",
        format!(
            "{} ({}) {from} on {}",
            view.id,
            short_hash(&view.hash),
            backend.describe()
        ),
    );
    Ok(())
}
