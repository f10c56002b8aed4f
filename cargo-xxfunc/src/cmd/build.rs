//! `cargo xxfunc build`: compile for wasm32-wasip1, validate, print path, size and hash.

use clap::Args;

use super::Ctx;
use crate::{
    output::human_size,
    wasm_build::{self, BuildOptions},
};

/// Options shared by every command that builds the function.
#[derive(Debug, Clone, Args)]
pub(crate) struct BuildFlags {
    /// Package to build, in a workspace with several.
    #[arg(short, long, value_name = "NAME")]
    pub(crate) package: Option<String>,
    /// Cargo profile to build with.
    #[arg(long, default_value = "release", value_name = "PROFILE")]
    pub(crate) profile: String,
    /// Cargo features to enable.
    #[arg(short = 'F', long, value_name = "FEATURES", value_delimiter = ',')]
    pub(crate) features: Vec<String>,
}

impl BuildFlags {
    pub(crate) fn options(&self) -> BuildOptions {
        BuildOptions {
            profile: self.profile.clone(),
            features: self.features.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    #[command(flatten)]
    pub(crate) build: BuildFlags,
}

pub(crate) fn run(ctx: &Ctx, args: BuildArgs) -> anyhow::Result<()> {
    let krate = ctx.function_crate(args.build.package.as_deref())?;
    let built = wasm_build::build(&krate, &args.build.options(), &ctx.out)?;
    let o = &built.output;
    if ctx.out.json() {
        return ctx.out.json_line(o);
    }
    ctx.out.status(
        "Built",
        format!(
            "{} ({}, valid xxfunc module)",
            o.package,
            human_size(o.size)
        ),
    );
    ctx.out.data(format!("path  {}", o.path.display()))?;
    ctx.out.data(format!("size  {}", o.size))?;
    ctx.out.data(format!("hash  {}", o.hash))
}
