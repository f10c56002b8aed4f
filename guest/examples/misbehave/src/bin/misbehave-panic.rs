//! Panics: the SDK prints the message on stderr and exits 101.

#[xxfunc::main]
fn main(event: xxfunc::Event) -> xxfunc::Result<()> {
    panic!("deliberate panic on block {}", event.number());
}
