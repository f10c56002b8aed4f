//! `cargo xxfunc list`.

use clap::Args;

use super::{
    Ctx,
    status::{desired, display_id, observed, short_hash},
};
use crate::output::Table;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {}

pub(crate) async fn run(ctx: &Ctx, _args: ListArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    let views = backend.list().await?;
    if ctx.out.json() {
        for view in &views {
            ctx.out.json_line(view)?;
        }
        return Ok(());
    }
    if views.is_empty() {
        ctx.out.note(format!(
            "no functions on {}; deploy one with `cargo xxfunc deploy`",
            backend.describe()
        ));
        return Ok(());
    }
    let mut t = Table::new(vec![
        "FUNCTION", "HASH", "VERSION", "PINNED", "DESIRED", "OBSERVED",
    ]);
    for v in &views {
        t.row(vec![
            display_id(&v.id),
            short_hash(&v.hash),
            v.version.map_or("-".into(), |n| n.to_string()),
            if v.pinned { "yes" } else { "no" }.into(),
            desired(v.desired).into(),
            observed(v.observed.as_ref()),
        ]);
    }
    for line in t.lines() {
        ctx.out.data(line)?;
    }
    Ok(())
}
