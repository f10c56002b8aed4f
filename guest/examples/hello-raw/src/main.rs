//! The upstream-compatible raw form, `async fn main(data: &[u8])`: the function gets the
//! envelope bytes undecoded and parses the fixed header itself (see docs/abi.md).

#[xxfunc::main]
async fn main(data: &[u8]) {
    let u64_at = |at: usize| {
        data.get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    let record = xxfunc::json!({
        "bytes": data.len(),
        "magic": data.get(..4).map(String::from_utf8_lossy),
        "kind": data.get(6),
        "number": u64_at(16),
        "timestamp": u64_at(88),
    });
    if let Err(err) = xxfunc::emit(&record) {
        eprintln!("{err}");
    }
}
