//! One record per ERC-20 `Transfer` log of a committed block; on a revert, one retraction
//! per transfer of the orphaned block, newest first, so a consumer can undo them in order.

use xxfunc::{Event, erc20::Transfer};

#[xxfunc::main]
fn main(event: Event) -> xxfunc::Result<()> {
    let mut transfers = Transfer::all(&event)?;
    let op = if event.is_revert() {
        transfers.reverse();
        "retract"
    } else {
        "insert"
    };
    for t in transfers {
        xxfunc::emit(&xxfunc::json!({
            "op": op,
            "block": event.number(),
            "block_hash": event.hash(),
            "tx": t.tx_hash,
            "log_index": t.log_index,
            "token": t.token,
            "from": t.from,
            "to": t.to,
            "value": t.value.to_string(),
        }))?;
    }
    Ok(())
}
