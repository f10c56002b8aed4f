//! Allocates and touches 1 MiB blocks until allocation fails (which aborts with a trap).

#[xxfunc::main]
fn main(_event: xxfunc::Event) -> xxfunc::Result<()> {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        // `vec![n; len]` with n != 0 writes every byte, so the pages are really used.
        blocks.push(vec![0xa5; 1 << 20]);
        if blocks.len().is_multiple_of(16) {
            eprintln!("holding {} MiB", blocks.len());
        }
        std::hint::black_box(&blocks);
    }
}
