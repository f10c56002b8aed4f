//! `cargo xxfunc stop NAME|HASH|PREFIX`.

use clap::Args;

use super::{Ctx, status::short_hash};

#[derive(Debug, Args)]
pub(crate) struct StopArgs {
    /// Function name, module hash, or a unique hash prefix (≥ 8 hex digits).
    #[arg(value_name = "NAME|HASH")]
    pub(crate) target: String,
}

pub(crate) async fn run(ctx: &Ctx, args: StopArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    let view = backend.stop(&args.target).await?;
    if ctx.out.json() {
        return ctx.out.json_line(&view);
    }
    ctx.out.status(
        "Stopped",
        format!(
            "{} ({}) on {}",
            view.id,
            short_hash(&view.hash),
            backend.describe()
        ),
    );
    Ok(())
}
