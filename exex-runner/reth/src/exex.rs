//! The `xxfunc` ExEx: translates the node's chain notifications into the runner core's
//! commit and revert events, and the core's decisions (the resume head, the next
//! `FinishedHeight`: `xxfunc_runner::NodeLink`) into the node's calls.

use std::{path::PathBuf, sync::Arc, time::Duration};

use alloy_eips::BlockNumHash;
use alloy_primitives::B256;
use eyre::WrapErr;
use futures::TryStreamExt;
use reth_ethereum::{
    EthPrimitives,
    chainspec::{ChainSpec, EthChainSpec},
    evm::EthEvmConfig,
    exex::{ExExContext, ExExHead, ExExNotification},
    node::api::{FullNodeComponents, NodeTypes},
    provider::{BlockHashReader, Chain},
};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};
use xxfunc_api::{
    BlockRef, FeedPage, FeedSnapshot, InvocationStatus, RunnerReport,
    outputs::{OutcomeEntry, OutcomesAck, OutcomesPage},
};
use xxfunc_runner::{
    BlockHashes, BlockSource, BoxError, ChainEvent, ChainSource, Checkpoint, EventSink, NodeLink,
    OpenedRunner, Registry, Resume, Runner, ServeOptions, StatusHandle, StopHandle,
    metrics::{self, MetricsServer},
    serve,
    state::StateSource,
};

use crate::{
    args::XxfuncArgs,
    block::{ProviderBlocks, chain_block},
    state::NodeState,
};

/// Name the ExEx is installed under (reth keys its WAL position and metrics by it).
pub(crate) const NAME: &str = "xxfunc";

/// Log target of the ExEx's own lines; function outputs go to `xxfunc::output`.
const TARGET: &str = "xxfunc::exex";

/// Events buffered between the node's notification stream and the runner.
const QUEUE: usize = 1024;

/// How long the node's shutdown waits for the runner's loop to return.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(4);

/// How often the safe height is re-read while no notification arrives.
const TICK: Duration = Duration::from_secs(1);

/// The runner, opened while the node launches (so a bad flag stops the launch).
pub(crate) struct Prepared {
    runner: Runner,
    registry: Option<Arc<dyn Registry>>,
    status: StatusHandle,
    /// Serves until the ExEx future is dropped.
    metrics: Option<MetricsServer>,
}

/// Opens the runner from the flags (its state defaults to `<datadir>/xxfunc`) and its
/// metrics endpoint. The core blocks on its own runtimes, so this runs on a blocking thread.
pub(crate) async fn prepare(args: XxfuncArgs, node_datadir: PathBuf) -> eyre::Result<Prepared> {
    tokio::task::spawn_blocking(move || {
        let OpenedRunner { runner, registry } = args.open(node_datadir.join("xxfunc"))?;
        let status = StatusHandle::default();
        let metrics = match args.runner.metrics_addr {
            Some(addr) => {
                let server = metrics::serve_metrics(addr, status.clone())
                    .wrap_err_with(|| format!("serving runner metrics on {addr}"))?;
                info!(target: TARGET, "runner metrics on http://{}/metrics", server.local_addr());
                Some(server)
            }
            None => None,
        };
        Ok(Prepared {
            runner,
            registry,
            status,
            metrics,
        })
    })
    .await
    .wrap_err("opening the runner")?
}

/// Runs the ExEx. Returns only when the node closes the notification stream (an error, as
/// reth requires); a failed runner is logged and holds `FinishedHeight` where it was, so the
/// node keeps the blocks for the next start.
pub(crate) async fn run<Node>(mut ctx: ExExContext<Node>, prepared: Prepared) -> eyre::Result<()>
where
    Node: FullNodeComponents<Types: NodeTypes<Primitives = EthPrimitives, ChainSpec = ChainSpec>>,
{
    let Prepared {
        mut runner,
        registry,
        status,
        metrics: _metrics,
    } = prepared;
    let chain_id = ctx.config.chain.chain().id();
    // Chain state for functions from the node's own database, unless --state-rpc or
    // --state-fixtures chose another source.
    if runner.state().is_none() {
        let evm = EthEvmConfig::ethereum(ctx.config.chain.clone());
        let backend = NodeState::new(ctx.provider().clone(), evm);
        runner.set_state(Some(StateSource::new(Arc::new(backend))));
    }

    // Nothing below may fail before the runner is handed to its thread: dropping it here
    // would drop its private tokio runtimes inside the node's. A node that cannot say
    // where to resume is recorded in the status (and logged) by the core, which then
    // starts at the node's head.
    let node_head = BlockRef {
        number: ctx.head.number,
        hash: ctx.head.hash,
    };
    let (mut link, resume) = NodeLink::start(
        &runner,
        status.clone(),
        &NodeHashes(ctx.provider()),
        node_head,
    );
    if let Resume::After(head) = resume {
        info!(target: TARGET, number = head.number, hash = %head.hash, "resuming after the lowest function cursor");
        ctx.set_notifications_with_head(ExExHead::new(BlockNumHash::new(head.number, head.hash)));
    }
    info!(target: TARGET, chain_id, node_head = ?ctx.head, "ExEx started");

    let (events, queue) = mpsc::channel(QUEUE);
    let source = ExExSource {
        queue,
        runtime: tokio::runtime::Handle::current(),
        blocks: Arc::new(ProviderBlocks::new(ctx.provider().clone(), chain_id)),
    };
    let registry = registry.map(|inner| Arc::new(OutputLog(inner)) as Arc<dyn Registry>);
    let stop = StopHandle::new();
    let _stop_on_drop = StopOnDrop(stop.clone());
    let (done_tx, mut done) = oneshot::channel();
    let (exited_tx, exited) = oneshot::channel::<()>();
    {
        let (stop, status) = (stop.clone(), status.clone());
        std::thread::Builder::new()
            .name("xxfunc-runner".into())
            .spawn(move || {
                let result = serve(
                    runner,
                    Box::new(source),
                    registry,
                    stop,
                    status,
                    ServeOptions::default(),
                );
                let _ = done_tx.send(result.map(|_| ()));
                let _ = exited_tx.send(());
            })
            .expect("spawning the runner thread");
    }
    // On the node's graceful shutdown (Ctrl-C), stop the runner and hold the shutdown
    // until its loop has returned: its last batch and last report (functions no longer
    // running) are written. reth waits up to 5 s for such tasks.
    {
        let stop = stop.clone();
        ctx.task_executor()
            .spawn_with_graceful_shutdown_signal(async move |shutdown| {
                let guard = shutdown.await;
                stop.stop();
                if tokio::time::timeout(SHUTDOWN_WAIT, exited).await.is_err() {
                    warn!(target: TARGET, "the runner did not stop within {SHUTDOWN_WAIT:?}");
                }
                drop(guard);
            });
    }

    let mut failed: Option<String> = None;
    let mut tick = tokio::time::interval(TICK);
    let mut complaints = 0u64;
    loop {
        tokio::select! {
            next = ctx.notifications.try_next() => match next {
                Ok(Some(notification)) => {
                    for event in translate(chain_id, &notification) {
                        link.delivered(&event);
                        if failed.is_none() && events.send(event).await.is_err() {
                            // The runner's loop has ended: its result says why.
                            failed = Some(stopped_reason((&mut done).await));
                        }
                    }
                }
                Ok(None) => return Err(eyre::eyre!("the node closed the ExEx notification stream")),
                Err(e) => {
                    error!(target: TARGET, "ExEx notification stream: {e:#}");
                    tokio::time::sleep(TICK).await;
                }
            },
            result = &mut done, if failed.is_none() => failed = Some(stopped_reason(result)),
            _ = tick.tick() => {}
        }
        if let Some(reason) = &failed {
            // Keep the node running; the held FinishedHeight keeps the WAL for a restart.
            if complaints.is_multiple_of(60) {
                error!(target: TARGET, held_at = ?link.sent(), "xxfunc runner failed, restart the node to resume: {reason}");
            }
            complaints += 1;
            continue;
        }
        let next = link.poll(&NodeHashes(ctx.provider()));
        if let Some(height) = next {
            ctx.send_finished_height(BlockNumHash::new(height.number, height.hash))
                .wrap_err("sending FinishedHeight to the node")?;
            tracing::debug!(target: TARGET, number = height.number, "finished height");
        }
    }
}

/// Why the runner's loop ended, from what its thread sent.
fn stopped_reason(result: Result<xxfunc_runner::Result<()>, oneshot::error::RecvError>) -> String {
    match result {
        Ok(Err(e)) => e.to_string(),
        Ok(Ok(())) => "the runner stopped".into(),
        Err(_) => "the runner thread panicked".into(),
    }
}

/// The runner's events for one notification: reverts of the old chain newest first, then
/// commits of the new chain oldest first.
fn translate(chain_id: u64, notification: &ExExNotification) -> Vec<ChainEvent> {
    let mut out = Vec::new();
    if let Some(old) = notification.reverted_chain() {
        let mut blocks: Vec<_> = old.blocks_and_receipts().collect();
        blocks.reverse();
        out.extend(
            blocks
                .into_iter()
                .map(|(b, r)| ChainEvent::revert(0, chain_block(chain_id, b, r))),
        );
    }
    if let Some(new) = notification.committed_chain() {
        out.extend(
            new.blocks_and_receipts()
                .map(|(b, r)| ChainEvent::commit(0, chain_block(chain_id, b, r))),
        );
    }
    let range = |c: Option<Arc<Chain>>| c.map(|c| c.range());
    info!(
        target: TARGET,
        reverted = ?range(notification.reverted_chain()),
        committed = ?range(notification.committed_chain()),
        txs = out.iter().map(|e| e.block.transactions.len()).sum::<usize>(),
        "notification"
    );
    out
}

/// The node's provider as the core's [`BlockHashes`]: the canonical hash by number.
struct NodeHashes<'a, P>(&'a P);

impl<P: BlockHashReader> BlockHashes for NodeHashes<'_, P> {
    fn block_hash(&self, number: u64) -> Result<Option<B256>, BoxError> {
        self.0.block_hash(number).map_err(Into::into)
    }
}

/// The runner's chain source: whatever the ExEx hands it, in order. Events carry `seq` 0
/// (numbered by the runner); blocks a function already processed are skipped by its cursor.
struct ExExSource {
    queue: mpsc::Receiver<ChainEvent>,
    runtime: tokio::runtime::Handle,
    blocks: Arc<dyn BlockSource>,
}

impl ChainSource for ExExSource {
    fn describe(&self) -> String {
        "reth ExEx".into()
    }

    fn blocks(&self) -> Option<Arc<dyn BlockSource>> {
        Some(self.blocks.clone())
    }

    fn run(mut self: Box<Self>, _resume: Checkpoint, sink: EventSink) -> xxfunc_runner::Result<()> {
        while !sink.is_closed() {
            // The timer is created inside the node's runtime (block_on enters it).
            let queue = &mut self.queue;
            let next = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_millis(200), queue.recv()).await
            });
            match next {
                Ok(Some(event)) => sink.send(event)?,
                Ok(None) => {
                    sink.end();
                    return Ok(());
                }
                Err(_elapsed) => {}
            }
        }
        Ok(())
    }
}

/// The registry, with each outcome the registry newly stored that printed something or
/// failed also logged (target `xxfunc::output`), so a node's log shows what functions
/// output per block. Outcomes come from the runner's pusher thread (`push_outcomes`), not
/// from reports; one is logged once the registry acknowledged it, so a page sent again
/// after a failure is not logged twice.
struct OutputLog(Arc<dyn Registry>);

impl Registry for OutputLog {
    fn snapshot(&self) -> xxfunc_runner::Result<FeedSnapshot> {
        self.0.snapshot()
    }

    fn wait_changes(&self, after: u64, timeout: Duration) -> xxfunc_runner::Result<FeedPage> {
        self.0.wait_changes(after, timeout)
    }

    fn report(&self, report: &RunnerReport) -> xxfunc_runner::Result<()> {
        if let Err(e) = self.0.report(report) {
            warn!(target: TARGET, "reporting to the registry: {e}");
            return Err(e);
        }
        Ok(())
    }

    fn push_outcomes(&self, page: &OutcomesPage) -> xxfunc_runner::Result<OutcomesAck> {
        let ack = self.0.push_outcomes(page)?;
        let printed = |o: &&OutcomeEntry| {
            o.seq > ack.head_before
                && o.seq <= ack.head
                && (!o.stdout.0.is_empty() || !matches!(o.status, InvocationStatus::Ok))
        };
        for o in page.outcomes.iter().filter(printed) {
            info!(
                target: "xxfunc::output",
                id = %page.id, seq = o.seq, kind = ?o.kind, block = o.block.number, status = ?o.status,
                "{}", String::from_utf8_lossy(&o.stdout.0).trim_end()
            );
        }
        Ok(ack)
    }
}

/// Asks the runner loop to return when the ExEx future is dropped (node shutdown).
struct StopOnDrop(StopHandle);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop();
    }
}
