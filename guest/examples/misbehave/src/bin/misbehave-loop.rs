//! Spins forever; only the runner's wall-time limit stops it.

#[xxfunc::main]
fn main(event: xxfunc::Event) -> xxfunc::Result<()> {
    eprintln!("spinning forever on block {}", event.number());
    let mut counter = event.number();
    loop {
        counter = std::hint::black_box(counter.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
}
