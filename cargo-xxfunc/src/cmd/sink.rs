//! `cargo xxfunc sink add|list|status|remove|retry`: where a function's outputs are
//! delivered. Sinks are kept in the registry and reach runners through the change
//! feed; each runner reports what its copy of a sink is doing.

use clap::{Args, Subcommand};
use xxfunc_api::{
    FunctionName,
    sinks::{SinkConfig, SinkKind, SinkView, SinksView},
};

use super::Ctx;
use crate::{exit_codes, failure::fail, output::Table};

#[derive(Debug, Args)]
pub(crate) struct SinkArgs {
    #[command(subcommand)]
    pub(crate) command: SinkCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SinkCommand {
    /// Add a sink to a function, or change it (same --name): a webhook, a PostgreSQL
    /// table or a NATS JetStream subject.
    #[command(after_help = ADD_HELP)]
    Add(AddArgs),
    /// List a function's sinks and their state on each runner.
    List(FunctionArg),
    /// Show a function's sinks (or one) in detail: state, cursor, lag, last error.
    Status(StatusArgs),
    /// Remove a sink; runners stop it and forget its cursor.
    Remove(SinkArg),
    /// Resume a `failed` sink: it delivers from its cursor again, nothing skipped.
    Retry(SinkArg),
}

const ADD_HELP: &str = "\
Examples:
  cargo xxfunc sink add erc20 webhook https://hooks.example/erc20 --secret-env HOOK_SECRET
  cargo xxfunc sink add erc20 postgres postgres://app@127.0.0.1/app --table transfers
  cargo xxfunc sink add erc20 nats nats://127.0.0.1:4222 --subject chain --confirmations 3

Secrets stay with the runner: --secret-env and --password-env name environment variables
of the runner process, never their values.";

#[derive(Debug, Args)]
pub(crate) struct FunctionArg {
    /// The function (name, hash or unique prefix).
    #[arg(value_name = "NAME|HASH")]
    pub(crate) function: String,
}

#[derive(Debug, Args)]
pub(crate) struct SinkArg {
    /// The function (name, hash or unique prefix).
    #[arg(value_name = "NAME|HASH")]
    pub(crate) function: String,
    /// The sink's name.
    #[arg(value_name = "SINK")]
    pub(crate) sink: String,
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The function (name, hash or unique prefix).
    #[arg(value_name = "NAME|HASH")]
    pub(crate) function: String,
    /// Only this sink.
    #[arg(value_name = "SINK")]
    pub(crate) sink: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The function (name, hash or unique prefix).
    #[arg(value_name = "NAME|HASH")]
    pub(crate) function: String,
    /// webhook, postgres or nats.
    #[arg(value_name = "KIND", value_parser = parse_kind)]
    pub(crate) kind: SinkKind,
    /// http(s)://host[:port]/path, postgres://user@host[:port]/db or nats://host[:port].
    #[arg(value_name = "URL")]
    pub(crate) url: String,
    /// The sink's name, unique in the registry [default: FUNCTION-KIND].
    #[arg(long, value_name = "SINK")]
    pub(crate) name: Option<String>,
    /// Deliver a block only once it is N blocks deep (0: at once, undone by retractions
    /// on a reorg).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(crate) confirmations: u64,
    /// Attempts of a batch the destination refuses for good before the sink is
    /// `failed` [default: 3].
    #[arg(long, value_name = "N")]
    pub(crate) attempts: Option<u32>,
    /// Timeout of one attempt [default: 10000].
    #[arg(long, value_name = "MS")]
    pub(crate) timeout_ms: Option<u64>,
    /// webhook (required): the runner's environment variable holding the whsec_ secret.
    #[arg(long, value_name = "VAR")]
    pub(crate) secret_env: Option<String>,
    /// postgres: the runner's environment variable holding the database password.
    #[arg(long, value_name = "VAR")]
    pub(crate) password_env: Option<String>,
    /// postgres: the records table [default: xxfunc_records].
    #[arg(long, value_name = "TABLE")]
    pub(crate) table: Option<String>,
    /// nats: messages go to SUBJECT.FUNCTION [default: xxfunc].
    #[arg(long, value_name = "SUBJECT")]
    pub(crate) subject: Option<String>,
    /// nats: the JetStream stream, created if absent [default: XXFUNC].
    #[arg(long, value_name = "STREAM")]
    pub(crate) stream: Option<String>,
}

fn parse_kind(s: &str) -> Result<SinkKind, String> {
    s.parse()
        .map_err(|e: xxfunc_api::sinks::UnknownSinkKind| e.to_string())
}

pub(crate) async fn run(ctx: &Ctx, args: SinkArgs) -> anyhow::Result<()> {
    match args.command {
        SinkCommand::Add(args) => add(ctx, args).await,
        SinkCommand::List(args) => {
            let view = ctx.backend().await?.sinks(&args.function).await?;
            print_list(ctx, &view)
        }
        SinkCommand::Status(args) => {
            let view = ctx.backend().await?.sinks(&args.function).await?;
            print_status(ctx, &view, args.sink.as_deref())
        }
        SinkCommand::Remove(args) => {
            let view = ctx
                .backend()
                .await?
                .remove_sink(&args.function, &args.sink)
                .await?;
            if ctx.out.json() {
                return ctx.out.json_line(&view);
            }
            ctx.out.status(
                "Removed",
                format!("sink {} of {}; runners stop it", args.sink, args.function),
            );
            Ok(())
        }
        SinkCommand::Retry(args) => {
            let view = ctx
                .backend()
                .await?
                .retry_sink(&args.function, &args.sink)
                .await?;
            if ctx.out.json() {
                return ctx.out.json_line(&view);
            }
            ctx.out.status(
                "Retrying",
                format!(
                    "sink {} of {}: runners resume it if it failed",
                    args.sink, args.function
                ),
            );
            Ok(())
        }
    }
}

async fn add(ctx: &Ctx, args: AddArgs) -> anyhow::Result<()> {
    let name = match args.name {
        Some(name) => name,
        None => match args.function.parse::<FunctionName>() {
            Ok(function) => format!("{function}-{}", args.kind),
            Err(_) => {
                return Err(fail(
                    exit_codes::USAGE,
                    format!(
                        "{:?} is not a function name, so there is no default sink name; give --name",
                        args.function
                    ),
                ));
            }
        },
    };
    let config = SinkConfig {
        kind: args.kind,
        url: args.url,
        confirmations: args.confirmations,
        attempts: args.attempts,
        timeout_ms: args.timeout_ms,
        secret_env: args.secret_env,
        password_env: args.password_env,
        table: args.table,
        subject: args.subject,
        stream: args.stream,
    };
    let backend = ctx.backend().await?;
    let view = backend.set_sink(&args.function, &name, config).await?;
    if ctx.out.json() {
        return ctx.out.json_line(&view);
    }
    let sink = view.sinks.iter().find(|s| s.name == name);
    ctx.out.status(
        "Added",
        format!(
            "sink {name} ({}) to {}; runners start it from the change feed",
            sink.map_or_else(String::new, |s| format!(
                "{} {}",
                s.config.kind, s.config.url
            )),
            view.function
        ),
    );
    Ok(())
}

/// A runner's state of `sink`, e.g. `local: idle` (several: comma-separated).
fn states(sink: &SinkView) -> String {
    if sink.runners.is_empty() {
        return "not reported yet".into();
    }
    sink.runners
        .iter()
        .map(|r| format!("{}: {}", r.runner, r.report.state))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_list(ctx: &Ctx, view: &SinksView) -> anyhow::Result<()> {
    if ctx.out.json() {
        return ctx.out.json_line(view);
    }
    if view.sinks.is_empty() {
        ctx.out.note(format!(
            "{} has no sinks; add one with `cargo xxfunc sink add {} KIND URL`",
            view.function, view.function
        ));
        return Ok(());
    }
    let mut t = Table::new(vec!["SINK", "KIND", "URL", "CONFIRMATIONS", "STATE"]);
    for s in &view.sinks {
        t.row(vec![
            s.name.clone(),
            s.config.kind.to_string(),
            s.config.url.clone(),
            s.config.confirmations.to_string(),
            states(s),
        ]);
    }
    for line in t.lines() {
        ctx.out.data(line)?;
    }
    Ok(())
}

fn print_status(ctx: &Ctx, view: &SinksView, only: Option<&str>) -> anyhow::Result<()> {
    let sinks: Vec<&SinkView> = view
        .sinks
        .iter()
        .filter(|s| only.is_none_or(|n| s.name == n))
        .collect();
    if let Some(name) = only
        && sinks.is_empty()
    {
        return Err(fail(
            exit_codes::NOT_FOUND,
            format!(
                "{} has no sink named {name}; list them with `cargo xxfunc sink list {}`",
                view.function, view.function
            ),
        ));
    }
    if ctx.out.json() {
        for s in sinks {
            ctx.out.json_line(s)?;
        }
        return Ok(());
    }
    if sinks.is_empty() {
        return print_list(ctx, view);
    }
    for s in sinks {
        ctx.out.data(format!("sink:          {}", s.name))?;
        ctx.out.data(format!("kind:          {}", s.config.kind))?;
        ctx.out.data(format!("url:           {}", s.config.url))?;
        ctx.out
            .data(format!("confirmations: {}", s.config.confirmations))?;
        if s.runners.is_empty() {
            ctx.out.data(
                "runners:       none has reported it yet (is a runner following this registry?)",
            )?;
        }
        for r in &s.runners {
            let rep = &r.report;
            ctx.out.data(format!("runner {}:", r.runner))?;
            ctx.out.data(format!("  state:       {}", rep.state))?;
            ctx.out.data(format!(
                "  cursor:      outcome {}, record {}{}",
                rep.cursor_outcome,
                rep.cursor_item,
                rep.block
                    .map_or_else(String::new, |b| format!(" (block {})", b.number))
            ))?;
            ctx.out.data(format!(
                "  lag:         {} blocks, {} records",
                rep.lag_blocks, rep.lag_records
            ))?;
            ctx.out.data(format!(
                "  delivered:   {} batches, {} records since the runner started",
                rep.delivered_batches, rep.delivered_records
            ))?;
            if rep.attempts > 0 {
                ctx.out
                    .data(format!("  attempts:    {} failed in a row", rep.attempts))?;
            }
            if let Some(e) = &rep.last_error {
                ctx.out.data(format!("  last error:  {e}"))?;
            }
            if rep.state == "failed" {
                ctx.out.data(format!(
                    "  to resume:   cargo xxfunc sink retry {} {}",
                    view.function, s.name
                ))?;
            }
        }
    }
    Ok(())
}
