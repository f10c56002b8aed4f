//! `cargo xxfunc gc [--dry-run]`.

use clap::Args;

use super::Ctx;

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Only list what would be removed.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

pub(crate) async fn run(ctx: &Ctx, args: GcArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    let gc = backend.gc(args.dry_run).await?;
    if ctx.out.json() {
        return ctx.out.json_line(&gc);
    }
    for hash in &gc.removed {
        ctx.out.data(hash)?;
    }
    let verb = if gc.dry_run {
        "Would remove"
    } else {
        "Removed"
    };
    ctx.out.status(
        verb,
        format!(
            "{} unreferenced module(s) from {}; kept {} referenced by a name, version, started hash or pin",
            gc.removed.len(),
            backend.describe(),
            gc.kept
        ),
    );
    Ok(())
}
