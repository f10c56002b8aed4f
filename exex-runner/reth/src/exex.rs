//! The `xxfunc` ExEx: consumes the node's chain notifications and reports finished heights.

use alloy_consensus::TxReceipt;
use alloy_eips::{BlockNumHash, eip2718::Encodable2718};
use alloy_rlp::Encodable;
use eyre::WrapErr;
use futures::TryStreamExt;
use reth_ethereum::{
    EthPrimitives, Receipt,
    chainspec::EthChainSpec,
    exex::{ExExContext, ExExEvent, ExExHead, ExExNotification},
    node::api::{FullNodeComponents, NodeTypes},
    primitives::RecoveredBlock,
    provider::{BlockHashReader, Chain},
};
use tracing::info;

/// Name the ExEx is installed under (reth keys its WAL position and metrics by it).
pub(crate) const NAME: &str = "xxfunc";

/// Log target of everything this ExEx prints.
const TARGET: &str = "xxfunc::exex";

/// Flags the ExEx adds to reth's `node` command.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ExExArgs {
    /// Deliver notifications for every block after BLOCK (a canonical block in the node's
    /// database). Blocks between BLOCK and the node's head are replayed from the ExEx
    /// write-ahead log or re-executed from history (backfill). Without it, notifications
    /// start with the first block the node commits after launch.
    #[arg(long = "xxfunc.resume-after", value_name = "BLOCK")]
    pub(crate) resume_after: Option<u64>,
}

/// Whether a chain segment is being applied or undone.
#[derive(Debug, Clone, Copy)]
enum Direction {
    Commit,
    Revert,
}

/// Runs the ExEx for as long as the node delivers notifications.
///
/// Never returns `Ok`: reth treats a finished ExEx as fatal, so the only way out is an error
/// (a failed stream, a closed event channel, or the stream ending with the node).
pub(crate) async fn run<Node>(mut ctx: ExExContext<Node>, args: ExExArgs) -> eyre::Result<()>
where
    Node: FullNodeComponents<Types: NodeTypes<Primitives = EthPrimitives>>,
{
    if let Some(number) = args.resume_after {
        let hash = ctx
            .provider()
            .block_hash(number)
            .wrap_err_with(|| format!("reading the hash of resume block {number}"))?
            .ok_or_else(|| eyre::eyre!("resume block {number} is not in the node's database"))?;
        info!(target: TARGET, number, %hash, "resuming notifications after block");
        ctx.set_notifications_with_head(ExExHead::new(BlockNumHash::new(number, hash)));
    }
    let chain_id = ctx.config.chain.chain().id();
    info!(target: TARGET, chain_id, node_head = ?ctx.head, "ExEx started");

    while let Some(notification) = ctx.notifications.try_next().await? {
        match &notification {
            ExExNotification::ChainCommitted { new } => log_chain(Direction::Commit, new),
            ExExNotification::ChainReorged { old, new } => {
                info!(target: TARGET, old = ?old.range(), new = ?new.range(), "reorg");
                log_chain(Direction::Revert, old);
                log_chain(Direction::Commit, new);
            }
            ExExNotification::ChainReverted { old } => log_chain(Direction::Revert, old),
        }
        if let Some(committed) = notification.committed_chain() {
            let tip = committed.tip().num_hash();
            ctx.events
                .send(ExExEvent::FinishedHeight(tip))
                .wrap_err("sending FinishedHeight to the node")?;
            info!(target: TARGET, number = tip.number, hash = %tip.hash, "finished height");
        }
    }
    // The stream only ends when the node drops the ExEx manager; reth treats a finished
    // ExEx as fatal either way, so say why.
    Err(eyre::eyre!("the node closed the ExEx notification stream"))
}

/// Logs each block of `chain`: oldest first when committing, newest first when reverting.
fn log_chain(direction: Direction, chain: &Chain) {
    let mut blocks: Vec<_> = chain.blocks_and_receipts().collect();
    if matches!(direction, Direction::Revert) {
        blocks.reverse();
    }
    for (block, receipts) in blocks {
        log_block(direction, block, receipts);
    }
}

/// Logs one block with the sizes of its consensus encodings (header RLP, EIP-2718
/// transactions, EIP-2718 receipts with bloom).
fn log_block(
    direction: Direction,
    block: &RecoveredBlock<reth_ethereum::Block>,
    receipts: &[Receipt],
) {
    let sealed = block.sealed_block();
    let header = sealed.header();
    let mut header_rlp = Vec::with_capacity(header.length());
    header.encode(&mut header_rlp);
    let tx_bytes: usize = block
        .transactions_with_sender()
        .map(|(_sender, tx)| tx.encode_2718_len())
        .sum();
    let receipt_bytes: usize = receipts
        .iter()
        .map(|receipt| receipt.with_bloom_ref().encode_2718_len())
        .sum();
    let logs: usize = receipts.iter().map(|receipt| receipt.logs().len()).sum();
    info!(
        target: TARGET,
        ?direction,
        number = header.number,
        hash = %sealed.hash(),
        parent = %header.parent_hash,
        txs = block.senders().len(),
        receipts = receipts.len(),
        logs,
        header_rlp = header_rlp.len(),
        tx_bytes,
        receipt_bytes,
        "block"
    );
}
