//! One module per subcommand. Each has an `Args` struct (clap) and a `run`.

pub(crate) mod build;
pub(crate) mod deploy;
pub(crate) mod dev;
pub(crate) mod gc;
pub(crate) mod list;
pub(crate) mod logs;
pub(crate) mod new;
pub(crate) mod outputs;
pub(crate) mod pin;
pub(crate) mod sink;
pub(crate) mod start;
pub(crate) mod status;
pub(crate) mod stop;
pub(crate) mod test;

use std::path::PathBuf;

use crate::{
    app::{Command, GlobalOpts, XxfuncApp},
    backend::{Backend, offline, online},
    output::Output,
    project::{self, FunctionCrate},
};

/// What every command gets: the global options and the printer.
pub(crate) struct Ctx {
    pub(crate) global: GlobalOpts,
    pub(crate) out: Output,
}

impl Ctx {
    /// `--data-dir`, or `.xxfunc` in the project.
    pub(crate) fn data_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.global.data_dir {
            Some(dir) => Ok(std::path::absolute(dir)?),
            None => project::default_data_dir(self.global.manifest_path.as_deref()),
        }
    }

    /// `--store`, or the file store in the data directory.
    pub(crate) fn store_url(&self) -> anyhow::Result<String> {
        match &self.global.store {
            Some(url) => Ok(url.clone()),
            None => offline::default_store_url(&self.data_dir()?),
        }
    }

    /// The function crate in the current directory (or --manifest-path).
    pub(crate) fn function_crate(&self, package: Option<&str>) -> anyhow::Result<FunctionCrate> {
        project::locate(self.global.manifest_path.as_deref(), package)
    }

    /// The gateway, or the local data directory with `--offline`.
    pub(crate) async fn backend(&self) -> anyhow::Result<Backend> {
        if self.global.offline {
            let data_dir = self.data_dir()?;
            let store = self.store_url()?;
            return Ok(Backend::Offline(offline::Offline::open(&data_dir, &store)?));
        }
        let gw = online::Online::new(&self.global.gateway, self.global.token.clone())?;
        Ok(Backend::Online(gw))
    }
}

/// Runs the parsed command line.
pub(crate) async fn run(app: XxfuncApp) -> anyhow::Result<()> {
    let ctx = Ctx {
        out: app.global.output(),
        global: app.global,
    };
    match app.command {
        Command::New(args) => new::run(&ctx, args),
        Command::Build(args) => build::run(&ctx, args),
        Command::Deploy(args) => deploy::run(&ctx, args).await,
        Command::Start(args) => start::run(&ctx, args).await,
        Command::Stop(args) => stop::run(&ctx, args).await,
        Command::Pin(args) => pin::run_pin(&ctx, args).await,
        Command::Unpin(args) => pin::run_unpin(&ctx, args).await,
        Command::List(args) => list::run(&ctx, args).await,
        Command::Status(args) => status::run(&ctx, args).await,
        Command::Logs(args) => logs::run(&ctx, args).await,
        Command::Outputs(args) => outputs::run(&ctx, args).await,
        Command::Sink(args) => sink::run(&ctx, args).await,
        Command::Gc(args) => gc::run(&ctx, args).await,
        Command::Test(args) => test::run(&ctx, args).await,
        Command::Dev(args) => dev::run(&ctx, args).await,
    }
}
