//! For every ERC-20 `Transfer` of a block, one record with the balances of `from` and `to`
//! read with `balanceOf` at the event's block: chain-state reads through the runner.
//!
//! On a commit of block N (`"op": "insert"`) the balances are the state after N, so they
//! are the balances at the end of the block: an account that moves tokens twice in one
//! block shows the same balance on both records.
//!
//! On a revert of N (`"op": "retract"`) the same records come back newest first, with the
//! same reads answered as of N on the reverted branch (the runner answers every read the
//! function made at N's commit identically), so each retraction repeats its insert
//! exactly, `op` aside, and a consumer can undo them in order.
//!
//! Each distinct (token, owner) is read once per block, so a block costs at most two host
//! calls per transfer and usually far fewer; a block with more distinct holders than the
//! runner's host-call limit (default 1,000) fails with "limit on state reads".

use std::collections::BTreeMap;
use xxfunc::{Address, Event, StateError, U256, erc20};

#[xxfunc::main]
fn main(event: Event) -> xxfunc::Result<()> {
    let state = event.state();
    let mut transfers = Vec::new();
    for log in event.logs()? {
        if let Some(transfer) = erc20::Transfer::from_log(log) {
            transfers.push((log.tx_index, transfer));
        }
    }
    let op = if event.is_revert() {
        transfers.reverse();
        "retract"
    } else {
        "insert"
    };
    let mut balances: BTreeMap<(Address, Address), U256> = BTreeMap::new();
    let mut balance = |token: Address, owner: Address| -> Result<U256, StateError> {
        if let Some(balance) = balances.get(&(token, owner)) {
            return Ok(*balance);
        }
        let balance = erc20::balance_of(&state, token, owner)?;
        balances.insert((token, owner), balance);
        Ok(balance)
    };
    for (tx_index, t) in transfers {
        let from_balance = balance(t.token, t.from)?;
        let to_balance = balance(t.token, t.to)?;
        xxfunc::emit(&xxfunc::json!({
            "op": op,
            "block": event.number(),
            "block_hash": event.hash(),
            "tx": t.tx_hash,
            "tx_index": tx_index,
            "log_index": t.log_index,
            "token": t.token,
            "from": t.from,
            "to": t.to,
            "value": t.value.to_string(),
            "from_balance": from_balance.to_string(),
            "to_balance": to_balance.to_string(),
        }))?;
    }
    Ok(())
}
