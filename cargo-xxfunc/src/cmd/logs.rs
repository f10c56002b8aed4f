//! `cargo xxfunc logs NAME|HASH [-n N] [-f] [--outputs]`: recent invocations,
//! their outputs (the function's stdout) and logs (its stderr).

use std::{collections::HashSet, time::Duration};

use clap::Args;
use xxfunc_api::{EventKind, InvocationRecord, InvocationStatus};

use super::Ctx;
use crate::output::{Output, human_us};

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Function name, hash, or unique hash prefix.
    #[arg(value_name = "NAME|HASH")]
    pub(crate) target: String,
    /// How many recent invocations to show.
    #[arg(short = 'n', long, default_value_t = 20, value_name = "N")]
    pub(crate) limit: usize,
    /// Keep running and print new invocations as they arrive.
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Print only the outputs (the function's stdout), one record per line.
    #[arg(long)]
    pub(crate) outputs: bool,
    /// Poll interval for --follow, in milliseconds.
    #[arg(long, default_value_t = 1000, value_name = "MS", hide = true)]
    pub(crate) interval_ms: u64,
}

/// Identifies an invocation record: finish time, block number and hash, direction, module.
pub(crate) type Key = (u64, u64, String, bool, String);

pub(crate) fn key(r: &InvocationRecord) -> Key {
    (
        r.at_ms,
        r.block.number,
        r.block.hash.to_string(),
        r.kind == EventKind::Commit,
        r.hash.to_string(),
    )
}

pub(crate) async fn run(ctx: &Ctx, args: LogsArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    let page = backend.logs(&args.target, args.limit).await?;
    if page.invocations.is_empty() && !ctx.out.json() && !args.follow {
        ctx.out.note(format!(
            "{} has no recorded invocations yet; is it started (`cargo xxfunc status {}`) and is a runner following the chain?",
            args.target, args.target
        ));
    }
    let mut seen: HashSet<Key> = HashSet::new();
    for rec in &page.invocations {
        print_record(&ctx.out, rec, args.outputs)?;
        seen.insert(key(rec));
    }
    if !args.follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(Duration::from_millis(args.interval_ms)).await;
        let page = backend.logs(&args.target, args.limit.max(100)).await?;
        let mut now_seen = HashSet::with_capacity(page.invocations.len());
        for rec in &page.invocations {
            let k = key(rec);
            if !seen.contains(&k) {
                print_record(&ctx.out, rec, args.outputs)?;
            }
            now_seen.insert(k);
        }
        seen = now_seen;
    }
}

/// Prints one invocation: JSON, only its outputs, or a header plus indented output and log.
pub(crate) fn print_record(
    out: &Output,
    rec: &InvocationRecord,
    outputs_only: bool,
) -> anyhow::Result<()> {
    if out.json() {
        return out.json_line(rec);
    }
    if outputs_only {
        for line in rec.stdout.lines() {
            out.data(line)?;
        }
        return Ok(());
    }
    out.data(header(rec))?;
    for line in rec.stdout.lines() {
        out.data(format!("  out | {line}"))?;
    }
    for line in rec.stderr.lines() {
        out.data(format!("  log | {line}"))?;
    }
    Ok(())
}

/// `block 17 0x1234567890… commit ok 1.2ms hello`
pub(crate) fn header(rec: &InvocationRecord) -> String {
    let kind = match rec.kind {
        EventKind::Commit => "commit",
        EventKind::Revert => "revert",
    };
    let status = match &rec.status {
        InvocationStatus::Ok => "ok".to_string(),
        InvocationStatus::Failed { reason } => format!("FAILED: {reason}"),
    };
    let hash = rec.block.hash.to_string();
    format!(
        "block {} {}… {kind} {} {} [{}]",
        rec.block.number,
        &hash[..hash.len().min(10)],
        human_us(rec.duration_us),
        status,
        rec.id
    )
}
