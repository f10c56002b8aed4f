//! `cargo xxfunc status [NAME|HASH]`: desired and observed state, cursor, last
//! error and counters; a table of every function, or the details of one.

use clap::Args;
use xxfunc_api::{BlockRef, DesiredState, FunctionView, ModuleHash, ObservedState, StartFrom};

use super::Ctx;
use crate::output::Table;

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// One function (name, hash or unique prefix); all when omitted.
    #[arg(value_name = "NAME|HASH")]
    pub(crate) target: Option<String>,
}

pub(crate) async fn run(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<()> {
    let Some(target) = args.target else {
        return print_all(ctx, status_table).await;
    };
    let backend = ctx.backend().await?;
    let view = backend.function(&target).await?;
    if ctx.out.json() {
        return ctx.out.json_line(&view);
    }
    for line in details(&view) {
        ctx.out.data(line)?;
    }
    Ok(())
}

/// Every function: one JSON line each with `--json`, else `table` of them,
/// or a hint when there are none (`list`, and `status` without a target).
pub(crate) async fn print_all(
    ctx: &Ctx,
    table: fn(&[FunctionView]) -> Table,
) -> anyhow::Result<()> {
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
    for line in table(&views).lines() {
        ctx.out.data(line)?;
    }
    Ok(())
}

/// A name as is; a hash identity shortened to `blake3:<12 hex>…`.
pub(crate) fn display_id(id: &xxfunc_api::FunctionId) -> String {
    match id {
        xxfunc_api::FunctionId::Name(n) => n.to_string(),
        xxfunc_api::FunctionId::Hash(h) => format!("{}…", short_hash(h)),
    }
}

/// `blake3:` plus the first 12 hex digits.
pub(crate) fn short_hash(hash: &ModuleHash) -> String {
    format!("blake3:{}", hash.short(12))
}

pub(crate) fn desired(d: DesiredState) -> &'static str {
    match d {
        DesiredState::Started => "started",
        DesiredState::Stopped => "stopped",
    }
}

/// The observed state; `running` is flagged `(stale)` when its report is
/// older than [`STALE_AFTER_MS`] (the runner died or lost the gateway).
pub(crate) fn observed(v: &FunctionView) -> String {
    let state = match &v.observed {
        None => return "-".into(),
        Some(ObservedState::Running) => "running",
        Some(ObservedState::Stopped) => "stopped",
        Some(ObservedState::Quarantined { .. }) => "quarantined",
        Some(ObservedState::LoadFailed { .. }) => "load-failed",
    };
    match (&v.observed, report_age_ms(v)) {
        (Some(ObservedState::Running), Some(age)) if age > STALE_AFTER_MS => {
            format!("{state} (stale)")
        }
        _ => state.into(),
    }
}

/// Runners report at least every second while they run, and say so when they
/// stop; a `running` report this old means the runner died (`kill -9`, a crash).
const STALE_AFTER_MS: u64 = 10_000;

fn report_age_ms(v: &FunctionView) -> Option<u64> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_millis();
    let at = v.reported.as_ref()?.at_ms;
    Some(u64::try_from(now).ok()?.saturating_sub(at))
}

/// `3s`, `4m`, `2h`, `5d`.
fn human_age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

pub(crate) fn cursor(c: Option<&BlockRef>) -> String {
    match c {
        None => "-".into(),
        Some(b) => format!("#{} {}", b.number, short_b256(&b.hash.to_string())),
    }
}

fn short_b256(hex: &str) -> String {
    hex.chars().take(10).collect::<String>() + "…"
}

/// The table of `status` with no argument.
pub(crate) fn status_table(views: &[FunctionView]) -> Table {
    let mut t = Table::new(vec![
        "FUNCTION",
        "HASH",
        "VER",
        "DESIRED",
        "OBSERVED",
        "CURSOR",
        "CALLS",
        "FAILED",
        "LAST ERROR",
    ]);
    for v in views {
        t.row(vec![
            display_id(&v.id),
            short_hash(&v.hash) + if v.pinned { " (pinned)" } else { "" },
            v.version.map_or("-".into(), |n| n.to_string()),
            desired(v.desired).into(),
            observed(v),
            cursor(v.cursor.as_ref()),
            v.counters.invocations.to_string(),
            v.counters.failures.to_string(),
            v.last_error
                .as_deref()
                .map_or("-".into(), |e| e.chars().take(60).collect()),
        ]);
    }
    t
}

/// The key/value block of `status NAME`.
pub(crate) fn details(v: &FunctionView) -> Vec<String> {
    let mut lines = vec![
        format!("function     {}", v.id),
        format!("hash         {}", v.hash),
    ];
    if let Some(version) = v.version {
        lines.push(format!("version      {version}"));
    }
    lines.push(format!(
        "pinned       {}",
        if v.pinned { "yes" } else { "no" }
    ));
    let start = match v.start {
        StartFrom::Head => "from head".to_string(),
        StartFrom::Block(n) => format!("from block {n}"),
    };
    lines.push(format!("desired      {} ({start})", desired(v.desired)));
    let reason = match &v.observed {
        Some(ObservedState::Quarantined { reason } | ObservedState::LoadFailed { reason }) => {
            format!(": {reason}")
        }
        _ => String::new(),
    };
    let by = match (&v.reported, report_age_ms(v)) {
        (Some(r), Some(age)) => format!(" (runner {}, reported {} ago)", r.runner, human_age(age)),
        _ => String::new(),
    };
    lines.push(format!("observed     {}{reason}{by}", observed(v)));
    lines.push(match &v.cursor {
        Some(b) => format!("cursor       block {} {}", b.number, b.hash),
        None => "cursor       - (no block processed yet)".into(),
    });
    lines.push(format!(
        "invocations  {} ({} failed, {} in a row)",
        v.counters.invocations, v.counters.failures, v.counters.consecutive_failures
    ));
    lines.push(format!(
        "last error   {}",
        v.last_error.as_deref().unwrap_or("-")
    ));
    let sinks: Vec<_> = v
        .runners
        .iter()
        .flat_map(|r| r.sinks.iter().map(move |s| (r.runner.as_str(), s)))
        .collect();
    if !sinks.is_empty() {
        lines.push("sinks".into());
        for (runner, s) in sinks {
            let error = match (&s.last_error, s.state.as_str()) {
                (Some(e), "failed" | "retrying") => format!(": {e}"),
                _ => String::new(),
            };
            lines.push(format!(
                "  {} ({} on {runner}) {}, lag {} blocks / {} records{error}",
                s.name, s.kind, s.state, s.lag_blocks, s.lag_records
            ));
        }
    }
    if !v.versions.is_empty() {
        lines.push("versions".into());
        for e in &v.versions {
            lines.push(format!(
                "  v{:<4} {}  at {}",
                e.version,
                e.hash,
                format_ms(e.at_ms)
            ));
        }
    }
    lines
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn format_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_timestamps() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_ms(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00 UTC");
    }
}
