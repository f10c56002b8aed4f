//! `cargo xxfunc pin` / `unpin NAME|HASH|PREFIX`.

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub(crate) struct PinArgs {
    /// A name (stays on its current hash when new versions are deployed) or a
    /// hash / unique prefix (never garbage-collected).
    #[arg(value_name = "NAME|HASH")]
    pub(crate) target: String,
}

#[derive(Debug, Args)]
pub(crate) struct UnpinArgs {
    /// The pinned name or hash.
    #[arg(value_name = "NAME|HASH")]
    pub(crate) target: String,
}

pub(crate) async fn run_pin(ctx: &Ctx, args: PinArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    let pin = backend.pin(&args.target).await?;
    if ctx.out.json() {
        return ctx.out.json_line(&pin);
    }
    ctx.out
        .status("Pinned", format!("{} to {}", pin.id, pin.hash));
    Ok(())
}

pub(crate) async fn run_unpin(ctx: &Ctx, args: UnpinArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    let pin = backend.unpin(&args.target).await?;
    if ctx.out.json() {
        return ctx.out.json_line(&pin);
    }
    ctx.out
        .status("Unpinned", format!("{} (was {})", pin.id, pin.hash));
    Ok(())
}
