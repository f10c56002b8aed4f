//! A generated function for the benchmarks: a WASI command that writes `count`
//! ERC-20-transfer-like JSON lines (about 150 bytes each) on every event.

use std::fmt::Write as _;

/// The module's bytes.
pub fn records_module(count: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..count {
        writeln!(
            out,
            r#"{{"op":"transfer","token":"0x{:040x}","from":"0x{:040x}","to":"0x{:040x}","value":"{}","log_index":{i}}}"#,
            0xaa_u64,
            i + 1,
            i + 2,
            1_000_000_000_000_000_u64 * (i as u64 + 1),
        )
        .unwrap();
    }
    let data: String = out.bytes().map(|b| format!("\\{b:02x}")).collect();
    let wat = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{data}")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        len = out.len()
    );
    wat::parse_str(wat).expect("the benchmark's WAT parses")
}
