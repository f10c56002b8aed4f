//! Prints `blake3:<hex>  <size>  <path>` for each file argument: the content hash the
//! xxfunc store gives a module. Used by `scripts/build-guests`.

use anyhow::Context;

fn main() -> anyhow::Result<()> {
    for path in std::env::args().skip(1) {
        let bytes = std::fs::read(&path).with_context(|| format!("reading {path}"))?;
        println!(
            "blake3:{}  {}  {path}",
            blake3::hash(&bytes).to_hex(),
            bytes.len()
        );
    }
    Ok(())
}
