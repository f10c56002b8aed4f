//! `cargo xxfunc deploy`: build if needed, upload, bind a name; prints only the hash.

use std::path::PathBuf;

use clap::Args;
use xxfunc_api::FunctionName;

use super::{Ctx, build::BuildFlags};
use crate::{
    backend::Backend,
    exit_codes,
    failure::fail,
    output::human_size,
    wasm_build::{self, Built},
};

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Name to bind [default: the crate's name, or the file name of PATH].
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
    /// A built .wasm module to deploy instead of building the current crate.
    #[arg(value_name = "PATH")]
    pub(crate) path: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) build: BuildFlags,
}

pub(crate) async fn run(ctx: &Ctx, args: DeployArgs) -> anyhow::Result<()> {
    // Reach the backend first: a down gateway should not cost a build.
    let backend = ctx.backend().await?;
    if let Backend::Online(gw) = &backend {
        gw.health().await?;
    }
    let (built, default_name) = match &args.path {
        Some(path) => {
            let built = wasm_build::load_module(path)?;
            let stem = built.output.package.clone();
            (built, stem)
        }
        None => {
            let krate = ctx.function_crate(args.build.package.as_deref())?;
            let built = wasm_build::build(&krate, &args.build.options(), &ctx.out)?;
            (built, krate.package)
        }
    };
    let name = function_name(args.name.as_deref(), &default_name)?;
    let spinner = ctx.out.spinner(format!(
        "uploading {} to {}",
        human_size(built.output.size),
        backend.describe()
    ));
    let deployed = deploy(&backend, &name, &built).await;
    spinner.finish_and_clear();
    let deployed = deployed?;
    let b = &deployed.bind;
    if ctx.out.json() {
        ctx.out.json_line(&deployed)?;
    } else {
        let pinned = if b.pinned {
            " (name is pinned: it keeps running its pinned hash)"
        } else {
            ""
        };
        ctx.out.status(
            "Deployed",
            format!(
                "{} v{} to {} ({}){pinned}",
                b.name,
                b.version,
                backend.describe(),
                human_size(deployed.size)
            ),
        );
        ctx.out.data(b.hash)?;
    }
    Ok(())
}

async fn deploy(
    backend: &Backend,
    name: &FunctionName,
    built: &Built,
) -> anyhow::Result<crate::backend::DeployOutput> {
    backend.deploy(name, built).await
}

/// `--name`, else the crate name made into a function name (`My_Fn` → `my_fn`).
fn function_name(explicit: Option<&str>, default: &str) -> anyhow::Result<FunctionName> {
    if let Some(name) = explicit {
        return name
            .parse()
            .map_err(|e| fail(exit_codes::USAGE, format!("--name: {e}")));
    }
    default.to_ascii_lowercase().parse().map_err(|e| {
        fail(
            exit_codes::USAGE,
            format!(
                "the default name {default:?} is not a valid function name ({e}); pass --name NAME"
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names() {
        assert_eq!(function_name(None, "My_Fn").unwrap().as_str(), "my_fn");
        assert_eq!(function_name(Some("x"), "ignored").unwrap().as_str(), "x");
        assert!(function_name(Some("Bad Name"), "x").is_err());
        assert!(function_name(None, "-x").is_err());
    }
}
