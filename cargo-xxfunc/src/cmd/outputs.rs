//! `cargo xxfunc outputs NAME|HASH [-f] [--after SEQ] [--confirmations N] [--runner ID]`:
//! a function's output records, read by cursor from the gateway's outputs stream (or the
//! local registry with `--offline`). Records go to stdout as JSON lines; progress and
//! reconnects go to stderr.

use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde_json::value::RawValue;
use xxfunc_api::outputs::{ItemKind, OutputItem, OutputsQuery};

use super::Ctx;
use crate::{backend::Backend, exit_codes, failure::fail};

#[derive(Debug, Args)]
pub(crate) struct OutputsArgs {
    /// Function name, hash, or unique hash prefix.
    #[arg(value_name = "NAME|HASH")]
    pub(crate) target: String,
    /// Keep following: wait for new records, and resume by itself after a dropped connection.
    #[arg(short, long)]
    pub(crate) follow: bool,
    /// Start after this record number (the `seq` of the last record you have; 0: from the
    /// oldest the gateway keeps).
    #[arg(long, default_value_t = 0, value_name = "SEQ")]
    pub(crate) after: u64,
    /// Show a block's records only once the block is N deep (then a reorg shallower than N
    /// is never seen: no retractions). 0 shows records at once and retractions on reorgs.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) confirmations: u64,
    /// Read this runner's log (default: the runner that reported last and is running).
    #[arg(long, value_name = "ID")]
    pub(crate) runner: Option<String>,
    /// Records per request.
    #[arg(long, default_value_t = 1000, value_name = "N", hide = true)]
    pub(crate) page: usize,
}

/// How long one request of `--follow` waits for new records.
const FOLLOW_WAIT: Duration = Duration::from_secs(30);
/// Longest pause between reconnect attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

pub(crate) async fn run(ctx: &Ctx, args: OutputsArgs) -> anyhow::Result<()> {
    let backend = ctx.backend().await?;
    if args.follow && matches!(backend, Backend::Offline(_)) {
        return Err(fail(
            exit_codes::USAGE,
            "--follow reads a gateway's stream; with --offline nothing writes to the local \
             registry while this command holds it (run `cargo xxfunc dev` and follow its gateway)",
        ));
    }
    let mut after = args.after;
    let mut backoff = Duration::from_millis(250);
    let mut announced = false;
    loop {
        let query = OutputsQuery {
            after,
            confirmations: args.confirmations,
            limit: Some(args.page),
            runner: args.runner.clone(),
        };
        let wait = if args.follow {
            FOLLOW_WAIT
        } else {
            Duration::ZERO
        };
        let page = match backend.outputs(&args.target, &query, wait).await {
            Ok(page) => page,
            // Without --follow every error ends the command; with it, only errors that
            // retrying cannot mend (an unknown function, a bad argument) do.
            Err(e) if args.follow && retryable(&e) => {
                ctx.out.warn(format!(
                    "reading the outputs of {}: {e:#}; retrying in {:.1}s from after {after}",
                    args.target,
                    backoff.as_secs_f64()
                ));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
            Err(e) => return Err(e),
        };
        backoff = Duration::from_millis(250);
        if !announced {
            announced = true;
            ctx.out.note(format!(
                "outputs of {} from runner {}: records {}..={} (confirmations {})",
                args.target,
                if page.runner.is_empty() {
                    "-"
                } else {
                    &page.runner
                },
                after + 1,
                page.head,
                args.confirmations
            ));
        }
        for item in &page.items {
            print_item(ctx, item)?;
        }
        // With confirmations a page may release nothing yet cover items held back for
        // good, so the end is the head or a page that does not move the cursor.
        let advanced = page.next > after;
        after = page.next.max(after);
        if !args.follow && (after >= page.head || !advanced) {
            return Ok(());
        }
    }
}

/// Whether a failed read may succeed later (the gateway restarting, a dropped connection),
/// as opposed to a mistake in the request.
fn retryable(e: &anyhow::Error) -> bool {
    matches!(
        crate::failure::exit_code(e),
        exit_codes::GATEWAY_UNREACHABLE | exit_codes::FAILURE
    )
}

/// One record as a JSON line: `{"seq","kind","block","record"}` (`record_b64` and
/// `"binary": true` for a record that is not JSON); `--json` prints the whole item.
fn print_item(ctx: &Ctx, item: &OutputItem) -> anyhow::Result<()> {
    if ctx.out.json() {
        return ctx.out.json_line(item);
    }
    #[derive(Serialize)]
    struct Line<'a> {
        seq: u64,
        kind: ItemKind,
        block: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        record: Option<&'a RawValue>,
        #[serde(skip_serializing_if = "Option::is_none")]
        record_b64: Option<&'a str>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        binary: bool,
    }
    ctx.out.json_line(&Line {
        seq: item.seq,
        kind: item.kind,
        block: item.block.number,
        record: item.record.as_deref(),
        record_b64: item.record_b64.as_deref(),
        binary: item.binary,
    })
}
