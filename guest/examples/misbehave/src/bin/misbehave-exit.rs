//! Exits with code 3 without emitting anything.

#[xxfunc::main]
fn main(event: xxfunc::Event) -> xxfunc::Result<()> {
    eprintln!("exiting with code 3 on block {}", event.number());
    std::process::exit(3);
}
