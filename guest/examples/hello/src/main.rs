//! Emits the block number and transaction count of every event: the smallest useful
//! function, and the one the runner's dispatch benchmark runs. It decodes no transaction.

use xxfunc::Event;

#[xxfunc::main]
fn main(event: Event) -> xxfunc::Result<()> {
    xxfunc::emit(&xxfunc::json!({
        "kind": event.kind().as_str(),
        "number": event.number(),
        "hash": event.hash(),
        "transactions": event.transaction_count(),
    }))
}
