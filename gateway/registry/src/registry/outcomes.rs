//! The outcome logs runners push ([`Registry::record_outcomes`]) and the outputs
//! applications read from them ([`Registry::outputs`]), per (runner, function).
//!
//! Three column families hold a log: the outcomes themselves, a small index entry per
//! outcome (block, items, size: what pruning and the confirmations filter need without
//! loading output), and `first_item → seq` for the outcomes that have items, so the
//! outcome holding item N is one reverse seek away. A meta record per log holds its head,
//! what retention pruned, and the byte and count totals retention works from.

use std::collections::BTreeMap;

use rocksdb::{Direction, IteratorMode, WriteBatch};
use xxfunc_api::{
    FunctionId, InvocationStatus,
    outputs::{
        ConfirmationFilter, ItemKind, OutcomeEntry, OutcomesAck, OutcomesPage, OutputItem,
        OutputsPage, OutputsQuery,
    },
};

use super::{KeyValue, Registry};
use crate::{
    error::{RegistryError, Result},
    schema::*,
};

/// Default `limit` of [`Registry::outputs`].
pub const DEFAULT_OUTPUTS_PAGE: usize = 1000;
/// Largest `limit` of [`Registry::outputs`].
pub const MAX_OUTPUTS_PAGE: usize = 10_000;
/// Largest `confirmations` of [`Registry::outputs`] (far deeper than any reorg).
pub const MAX_CONFIRMATIONS: u64 = 1000;
/// Record bytes after which an outputs page ends (it always holds at least one item).
pub const MAX_OUTPUTS_PAGE_BYTES: usize = 8 * 1024 * 1024;
/// Blocks below `confirmations` from which a page restarts the confirmations filter:
/// reorgs deeper than this are decided by the filter's rule for forgotten commits.
const REORG_MARGIN: u64 = 64;
/// Index entries one page walks back to restart the filter, and reads forward.
const MAX_WALKBACK: usize = 10_000;
const MAX_SCAN: usize = 10_000;

impl Registry {
    /// Stores a page of `runner`'s outcome log of `page.id`, in one synced batch.
    ///
    /// Idempotent by seq: an outcome the log already holds is skipped, as is one at or
    /// below what retention pruned. Gaps are allowed (the runner's own retention may
    /// have dropped outcomes), and a later page may fill them (a runner resending after
    /// the gateway lost outcomes). Retention then keeps at most
    /// [`outcomes_per_function`](crate::RegistryOptions::outcomes_per_function) outcomes and
    /// [`outcome_bytes_per_function`](crate::RegistryOptions::outcome_bytes_per_function)
    /// bytes per (runner, function), pruning the oldest (never the head).
    ///
    /// The answer's `head_before` / `head` are the highest seq held before and after.
    /// Listeners registered with [`on_outcomes`](Self::on_outcomes) are called when
    /// anything was stored. The function need not exist (a runner may push outcomes of a
    /// function renamed or stopped since).
    ///
    /// # Errors
    /// [`RegistryError::InvalidRunner`] for an empty runner id or one with a NUL byte;
    /// [`RegistryError::InvalidOutcomes`] when seqs do not increase from 1, an item count
    /// is not its stdout's record count, or item numbers go backwards (nothing is
    /// stored); [`RegistryError::Db`] if the write fails.
    pub fn record_outcomes(&self, runner: &str, page: &OutcomesPage) -> Result<OutcomesAck> {
        check_runner(runner)?;
        check_page(page)?;
        let id = &page.id;
        let w = self.inner.write.lock();
        let meta_key = outcome_meta_key(id, runner);
        let mut meta: OutcomeMeta = self.get_json(CF_META, &meta_key)?.unwrap_or_default();
        let head_before = meta.head;
        // The outcomes to store, by seq.
        let mut new: BTreeMap<u64, (&OutcomeEntry, Vec<u8>)> = BTreeMap::new();
        for o in &page.outcomes {
            if o.seq <= meta.pruned_through {
                continue;
            }
            let key = log_key(runner, id, o.seq);
            if o.seq <= meta.head && self.get_raw(CF_OUTCOME_INDEX, &key)?.is_some() {
                continue;
            }
            new.insert(o.seq, (o, encode(o)));
        }
        if new.is_empty() {
            return Ok(OutcomesAck {
                head_before,
                head: meta.head,
            });
        }
        for (o, value) in new.values() {
            meta.held += 1;
            meta.bytes += value.len() as u64;
            if o.seq > meta.head {
                meta.head = o.seq;
                meta.item_head = meta
                    .item_head
                    .max((o.first_item + u64::from(o.item_count)).saturating_sub(1));
            }
        }
        let mut batch = WriteBatch::default();
        // Retention: prune the oldest, old and new merged, while over either budget.
        let keep = self.inner.options.outcomes_per_function.max(1);
        let budget = self.inner.options.outcome_bytes_per_function;
        let over = |m: &OutcomeMeta| m.held > keep || (m.bytes > budget && m.held > 1);
        if over(&meta) {
            let prefix = log_prefix(runner, id);
            let mut old = self
                .inner
                .db
                .iterator_cf(
                    self.cf(CF_OUTCOME_INDEX),
                    IteratorMode::From(&prefix, Direction::Forward),
                )
                .map_while(|item| match item {
                    Ok((key, value)) if key.starts_with(&prefix) => Some(Ok((key, value))),
                    Ok(_) => None,
                    Err(source) => Some(Err(RegistryError::Db {
                        op: "read outcome index",
                        source,
                    })),
                })
                .peekable();
            while over(&meta) {
                let old_seq = match old.peek() {
                    Some(Ok((key, _))) => Some(log_key_n(CF_OUTCOME_INDEX, key)?),
                    Some(Err(_)) => {
                        return Err(old.next().and_then(Result::err).expect("an error"));
                    }
                    None => None,
                };
                let new_seq = new.keys().next().copied();
                let prune_new = match (old_seq, new_seq) {
                    (Some(o), Some(n)) => n < o,
                    (None, Some(_)) => true,
                    (Some(_), None) => false,
                    (None, None) => break,
                };
                let (seq, bytes) = if prune_new {
                    let (seq, (_, value)) = new.pop_first().expect("peeked");
                    (seq, value.len() as u64)
                } else {
                    let (key, value) = old.next().expect("peeked")?;
                    let index: OutcomeIndex = decode(CF_OUTCOME_INDEX, &key, &value)?;
                    batch.delete_cf(self.cf(CF_OUTCOMES), &key);
                    batch.delete_cf(self.cf(CF_OUTCOME_INDEX), &key);
                    if index.item_count > 0 {
                        batch.delete_cf(
                            self.cf(CF_OUTCOME_ITEMS),
                            log_key(runner, id, index.first_item),
                        );
                    }
                    (log_key_n(CF_OUTCOME_INDEX, &key)?, index.bytes)
                };
                meta.held -= 1;
                meta.bytes = meta.bytes.saturating_sub(bytes);
                meta.pruned += 1;
                meta.pruned_through = meta.pruned_through.max(seq);
            }
        }
        for (seq, (o, value)) in &new {
            let key = log_key(runner, id, *seq);
            let index = OutcomeIndex {
                kind: o.kind,
                block: o.block,
                hash: o.hash,
                first_item: o.first_item,
                item_count: o.item_count,
                bytes: value.len() as u64,
            };
            batch.put_cf(self.cf(CF_OUTCOMES), &key, value);
            batch.put_cf(self.cf(CF_OUTCOME_INDEX), &key, encode(&index));
            if o.item_count > 0 {
                let item_key = log_key(runner, id, o.first_item);
                // The highest seq with this first item wins (they are unique when the
                // runner numbers items as documented).
                let held = self.get_u64(CF_OUTCOME_ITEMS, &item_key)?.unwrap_or(0);
                batch.put_cf(
                    self.cf(CF_OUTCOME_ITEMS),
                    item_key,
                    held.max(*seq).to_be_bytes(),
                );
            }
        }
        batch.put_cf(self.cf(CF_META), &meta_key, encode(&meta));
        self.write_batch(batch)?;
        drop(w);
        self.sync_wal()?;
        let stored = new.len() as u64;
        for listener in self.inner.outcome_listeners.lock().iter() {
            listener(runner, id, stored);
        }
        Ok(OutcomesAck {
            head_before,
            head: meta.head,
        })
    }

    /// Calls `listener` with the runner, the function and how many outcomes were stored
    /// after every [`record_outcomes`](Self::record_outcomes) that stored something
    /// (after the write is durable). Async servers use it to wake long polls and streams. Keep it
    /// short: it runs on the writer's thread.
    pub fn on_outcomes(&self, listener: impl Fn(&str, &FunctionId, u64) + Send + Sync + 'static) {
        self.inner.outcome_listeners.lock().push(Box::new(listener));
    }

    /// The highest output item seq `runner`'s log of `id` holds (0: none).
    ///
    /// # Errors
    /// Read failures.
    pub fn outputs_head(&self, id: &FunctionId, runner: &str) -> Result<u64> {
        Ok(self.outcome_meta(id, runner)?.item_head)
    }

    /// Outcomes pruned by the gateway's retention from `runner`'s log of `id`.
    ///
    /// # Errors
    /// Read failures.
    pub fn outcomes_pruned(&self, id: &FunctionId, runner: &str) -> Result<u64> {
        Ok(self.outcome_meta(id, runner)?.pruned)
    }

    /// The runner whose log [`outputs`](Self::outputs) reads when none is named: the
    /// one with the most recent report that observes the function running, else the one
    /// with the most recent report, else the one holding the most outputs; `None` when no
    /// runner has reported or pushed anything about `id`.
    ///
    /// # Errors
    /// Read failures.
    pub fn default_runner(&self, id: &FunctionId) -> Result<Option<String>> {
        let reports = self.reports(id)?;
        let running = reports
            .iter()
            .filter(|r| matches!(r.report.observed, xxfunc_api::ObservedState::Running))
            .max_by_key(|r| r.at_ms);
        if let Some(r) = running.or_else(|| reports.iter().max_by_key(|r| r.at_ms)) {
            return Ok(Some(r.runner.clone()));
        }
        Ok(self
            .outcome_logs(id)?
            .into_iter()
            .max_by_key(|(_, m)| m.item_head)
            .map(|(runner, _)| runner))
    }

    /// A page of a function's output items after `query.after`, from one runner's log
    /// (`query.runner`, else [`default_runner`](Self::default_runner)).
    ///
    /// Items come in seq order, at most `limit` (default [`DEFAULT_OUTPUTS_PAGE`], at most
    /// [`MAX_OUTPUTS_PAGE`]) and about [`MAX_OUTPUTS_PAGE_BYTES`] of records (at least one
    /// item). With `confirmations` N > 0 only items released by the
    /// [`ConfirmationFilter`] (blocks N deep) are shown: the filter restarts at an
    /// outcome well below the block of item `after + 1`, so a consumer resuming anywhere
    /// sees the same items as one that read from the start. `next` is where to continue
    /// (every item up to it was shown or is held back for good); `head` the highest
    /// item seq the log holds. A page reads a bounded number of outcomes; a page cut short
    /// by that has fewer items but a `next` that still advances.
    ///
    /// A function no runner has reported or pushed outcomes for has an empty log: the
    /// page names no runner (`""`) and `head` is 0.
    ///
    /// # Errors
    /// [`RegistryError::FunctionNotFound`] for an unknown function;
    /// [`RegistryError::AfterBeyondHead`] when `after` exceeds the head;
    /// [`RegistryError::InvalidOutcomes`] when `confirmations` exceeds
    /// [`MAX_CONFIRMATIONS`]; read failures.
    pub fn outputs(&self, id: &FunctionId, query: &OutputsQuery) -> Result<OutputsPage> {
        let state = self.load(id)?;
        self.require_exists(id, &state, true)?;
        if query.confirmations > MAX_CONFIRMATIONS {
            return Err(RegistryError::InvalidQuery {
                reason: format!(
                    "confirmations={} is more than the most accepted, {MAX_CONFIRMATIONS}",
                    query.confirmations
                ),
            });
        }
        let runner = match &query.runner {
            Some(r) => {
                check_runner(r)?;
                r.clone()
            }
            None => self.default_runner(id)?.unwrap_or_default(),
        };
        let head = if runner.is_empty() {
            0
        } else {
            self.outcome_meta(id, &runner)?.item_head
        };
        let after = query.after;
        if after > head {
            return Err(RegistryError::AfterBeyondHead { after, head });
        }
        let mut page = OutputsPage {
            runner,
            items: Vec::new(),
            next: after,
            head,
        };
        if after == head {
            return Ok(page);
        }
        let limit = query
            .limit
            .unwrap_or(DEFAULT_OUTPUTS_PAGE)
            .clamp(1, MAX_OUTPUTS_PAGE);
        let runner = page.runner.clone();
        let prefix = log_prefix(&runner, id);
        let depth = query.confirmations;
        let holder = self.item_holder(&runner, id, after + 1)?;
        let start = match holder {
            Some(seq) if depth > 0 => self.walk_back(&runner, id, seq, depth)?,
            other => other,
        };
        let start_key = start.map_or_else(|| prefix.clone(), |seq| log_key(&runner, id, seq));
        let iter = self.inner.db.iterator_cf(
            self.cf(CF_OUTCOME_INDEX),
            IteratorMode::From(&start_key, Direction::Forward),
        );
        let mut filter = ConfirmationFilter::new(depth);
        // Outcome seq by first item, of the outcomes whose markers the filter holds.
        let mut seqs: BTreeMap<u64, u64> = BTreeMap::new();
        let mut covered = after;
        let mut bytes = 0usize;
        let mut full = false;
        'scan: for (scanned, item) in iter.enumerate() {
            let (key, value) = item.map_err(|source| RegistryError::Db {
                op: "read outcome index",
                source,
            })?;
            if !key.starts_with(&prefix) || scanned >= MAX_WALKBACK + MAX_SCAN {
                break;
            }
            let seq = log_key_n(CF_OUTCOME_INDEX, &key)?;
            let index: OutcomeIndex = decode(CF_OUTCOME_INDEX, &key, &value)?;
            let last = (index.first_item + u64::from(index.item_count)).saturating_sub(1);
            // The filter decides per outcome, so it is fed one marker item per outcome
            // (numbered by its first item); the outcome is read only when released.
            let marker = (index.item_count > 0 && last > after).then(|| {
                seqs.insert(index.first_item, seq);
                OutputItem::new(
                    index.first_item,
                    ItemKind::of(index.kind),
                    index.block,
                    index.hash,
                    "",
                    b"",
                )
            });
            filter.push(&light_outcome(seq, &index), marker);
            covered = covered.max(last);
            while let Some(marker) = filter.pop() {
                let Some(seq) = seqs.remove(&marker.seq) else {
                    continue;
                };
                let outcome_key = log_key(&runner, id, seq);
                let Some(outcome) = self.get_json::<OutcomeEntry>(CF_OUTCOMES, &outcome_key)?
                else {
                    continue;
                };
                for item in outcome.items(&runner).filter(|i| i.seq > after) {
                    let len = item.record.as_ref().map_or(0, |r| r.get().len())
                        + item.record_b64.as_ref().map_or(0, String::len);
                    if !page.items.is_empty()
                        && (page.items.len() >= limit || bytes + len > MAX_OUTPUTS_PAGE_BYTES)
                    {
                        full = true;
                        break 'scan;
                    }
                    bytes += len;
                    page.items.push(item);
                }
            }
        }
        page.next = if full {
            page.items.last().map_or(after, |i| i.seq)
        } else {
            let held_back = filter.first_pending_item().map_or(u64::MAX, |s| s - 1);
            covered.min(held_back).max(after)
        };
        Ok(page)
    }

    /// The last `limit` outcomes of `runner`'s log of `id`, most recent last, with at
    /// most `max_bytes` of output (older ones are left out first).
    pub(crate) fn last_outcomes(
        &self,
        id: &FunctionId,
        runner: &str,
        limit: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutcomeEntry>> {
        let prefix = log_prefix(runner, id);
        let end = log_key(runner, id, u64::MAX);
        let iter = self.inner.db.iterator_cf(
            self.cf(CF_OUTCOMES),
            IteratorMode::From(&end, Direction::Reverse),
        );
        let mut out = Vec::new();
        let mut bytes = 0;
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (key, value) = item.map_err(|source| RegistryError::Db {
                op: "read outcomes",
                source,
            })?;
            if !key.starts_with(&prefix) {
                break;
            }
            bytes += value.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(decode::<OutcomeEntry>(CF_OUTCOMES, &key, &value)?);
        }
        out.reverse();
        Ok(out)
    }

    fn outcome_meta(&self, id: &FunctionId, runner: &str) -> Result<OutcomeMeta> {
        Ok(self
            .get_json(CF_META, &outcome_meta_key(id, runner))?
            .unwrap_or_default())
    }

    /// Every runner holding outcomes of `id`, with its log's meta.
    fn outcome_logs(&self, id: &FunctionId) -> Result<Vec<(String, OutcomeMeta)>> {
        let prefix = outcome_meta_prefix(id);
        let mut out = Vec::new();
        for (key, value) in self.scan_prefix(CF_META, &prefix)? {
            let runner = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            out.push((runner, decode(CF_META, &key, &value)?));
        }
        Ok(out)
    }

    /// The highest seq whose outcome has items starting at or before `item`.
    fn item_holder(&self, runner: &str, id: &FunctionId, item: u64) -> Result<Option<u64>> {
        let prefix = log_prefix(runner, id);
        let key = log_key(runner, id, item);
        let mut iter = self.inner.db.iterator_cf(
            self.cf(CF_OUTCOME_ITEMS),
            IteratorMode::From(&key, Direction::Reverse),
        );
        match iter.next() {
            Some(Ok((key, value))) if key.starts_with(&prefix) => {
                Ok(Some(decode_u64(CF_OUTCOME_ITEMS, &key, &value)?))
            }
            Some(Err(source)) => Err(RegistryError::Db {
                op: "read outcome items",
                source,
            }),
            _ => Ok(None),
        }
    }

    /// Where the confirmations filter restarts for a page whose first item is in outcome
    /// `seq`: the latest outcome at or before it whose block is `depth` plus a margin
    /// below `seq`'s block (or the oldest held, within a bounded walk).
    fn walk_back(
        &self,
        runner: &str,
        id: &FunctionId,
        seq: u64,
        depth: u64,
    ) -> Result<Option<u64>> {
        let prefix = log_prefix(runner, id);
        let key = log_key(runner, id, seq);
        let iter = self.inner.db.iterator_cf(
            self.cf(CF_OUTCOME_INDEX),
            IteratorMode::From(&key, Direction::Reverse),
        );
        let mut floor = None;
        let mut start = None;
        for item in iter.take(MAX_WALKBACK) {
            let (key, value) = item.map_err(|source| RegistryError::Db {
                op: "read outcome index",
                source,
            })?;
            if !key.starts_with(&prefix) {
                break;
            }
            let index: OutcomeIndex = decode(CF_OUTCOME_INDEX, &key, &value)?;
            start = Some(log_key_n(CF_OUTCOME_INDEX, &key)?);
            let floor =
                *floor.get_or_insert(index.block.number.saturating_sub(depth + REORG_MARGIN));
            if index.block.number <= floor {
                break;
            }
        }
        Ok(start)
    }

    /// Every `(key, value)` of `cf` under `prefix`.
    pub(crate) fn scan_prefix(&self, cf: &'static str, prefix: &[u8]) -> Result<Vec<KeyValue>> {
        let mut out = Vec::new();
        let iter = self
            .inner
            .db
            .iterator_cf(self.cf(cf), IteratorMode::From(prefix, Direction::Forward));
        for item in iter {
            let (key, value) = item.map_err(|source| RegistryError::Db { op: "scan", source })?;
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key, value));
        }
        Ok(out)
    }
}

/// An outcome without its output, as the confirmations filter needs it.
fn light_outcome(seq: u64, index: &OutcomeIndex) -> OutcomeEntry {
    OutcomeEntry {
        seq,
        kind: index.kind,
        block: index.block,
        hash: index.hash,
        status: InvocationStatus::Ok,
        duration_us: 0,
        at_ms: 0,
        stdout: Default::default(),
        stderr: Default::default(),
        first_item: index.first_item,
        item_count: index.item_count,
    }
}

/// A runner id must be non-empty and free of NUL (it is part of keys); the gateway
/// applies its stricter rule before.
fn check_runner(runner: &str) -> Result<()> {
    if runner.is_empty() || runner.len() > 128 || runner.contains('\0') {
        return Err(RegistryError::InvalidRunner {
            runner: runner.to_string(),
        });
    }
    Ok(())
}

fn check_page(page: &OutcomesPage) -> Result<()> {
    let invalid = |reason: String| Err(RegistryError::InvalidOutcomes { reason });
    let mut prev: Option<&OutcomeEntry> = None;
    for o in &page.outcomes {
        if o.seq == 0 {
            return invalid("outcome seqs start at 1".into());
        }
        if o.first_item == 0 {
            return invalid(format!("outcome {}: item seqs start at 1", o.seq));
        }
        let count = o.count_records();
        if o.item_count != count {
            return invalid(format!(
                "outcome {}: item_count is {} but its stdout holds {count} records",
                o.seq, o.item_count
            ));
        }
        if let Some(p) = prev {
            if o.seq <= p.seq {
                return invalid(format!(
                    "outcome seqs must increase: {} after {}",
                    o.seq, p.seq
                ));
            }
            if o.first_item < p.first_item + u64::from(p.item_count) {
                return invalid(format!(
                    "outcome {}: first_item {} overlaps the items of outcome {}",
                    o.seq, o.first_item, p.seq
                ));
            }
        }
        prev = Some(o);
    }
    Ok(())
}
