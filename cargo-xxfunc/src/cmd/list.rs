//! `cargo xxfunc list`.

use clap::Args;
use xxfunc_api::FunctionView;

use super::{
    Ctx,
    status::{desired, display_id, observed, print_all, short_hash},
};
use crate::output::Table;

#[derive(Debug, Args)]
pub(crate) struct ListArgs {}

pub(crate) async fn run(ctx: &Ctx, _args: ListArgs) -> anyhow::Result<()> {
    print_all(ctx, list_table).await
}

fn list_table(views: &[FunctionView]) -> Table {
    let mut t = Table::new(vec![
        "FUNCTION", "HASH", "VERSION", "PINNED", "DESIRED", "OBSERVED",
    ]);
    for v in views {
        t.row(vec![
            display_id(&v.id),
            short_hash(&v.hash),
            v.version.map_or("-".into(), |n| n.to_string()),
            if v.pinned { "yes" } else { "no" }.into(),
            desired(v.desired).into(),
            observed(v),
        ]);
    }
    t
}
