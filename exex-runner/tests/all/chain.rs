//! Linked test chains (headers with correct hashes and parent links) and
//! small WAT modules that probe one host behaviour each.

use alloy_consensus::Header;
use alloy_primitives::{B256, Bytes};
use xxfunc_abi::ChainBlock;

/// `len` linked blocks starting at `from` on top of `parent`; `branch` makes
/// forks of the same heights differ.
pub fn blocks(parent: Option<&ChainBlock>, from: u64, len: u64, branch: u8) -> Vec<ChainBlock> {
    let mut out: Vec<ChainBlock> = Vec::new();
    let mut parent_hash = parent.map_or(B256::ZERO, |p| p.hash);
    for number in from..from + len {
        let header = Header {
            number,
            parent_hash,
            timestamp: 1_700_000_000 + number * 12,
            extra_data: Bytes::from(vec![branch]),
            ..Default::default()
        };
        let block = ChainBlock::from_consensus::<
            alloy_consensus::TxEnvelope,
            alloy_consensus::ReceiptEnvelope,
        >(31337, &header, [], []);
        parent_hash = block.hash;
        out.push(block);
    }
    out
}

/// A WASI command that copies the first 4 bytes of stdin (the envelope magic)
/// and the 8-byte block number (offset 16) to stdout.
pub const ECHO_MAGIC: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; iovec at 0: buf=64 len=96
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 96))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    ;; copy number (offset 64+16, 8 bytes) right after the magic (64+4)
    (i64.store (i32.const 68) (i64.load (i32.const 80)))
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 12))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)"#;

/// Sleeps 10 s via `poll_oneoff` (relative monotonic clock), then writes the
/// monotonic and realtime clocks (8 bytes LE each) and 16 random bytes.
pub const SLEEP_THEN_CLOCKS: &str = r#"
(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; subscription at 100: userdata=7, tag=0 (clock), id=1 (monotonic), timeout=10s, flags=0
    (i64.store (i32.const 100) (i64.const 7))
    (i32.store8 (i32.const 108) (i32.const 0))
    (i32.store (i32.const 116) (i32.const 1))
    (i64.store (i32.const 124) (i64.const 10000000000))
    (i64.store (i32.const 132) (i64.const 0))
    (i32.store16 (i32.const 140) (i32.const 0))
    (if (call $poll (i32.const 100) (i32.const 200) (i32.const 1) (i32.const 240)) (then unreachable))
    (if (i32.ne (i32.load (i32.const 240)) (i32.const 1)) (then unreachable))
    (if (i64.ne (i64.load (i32.const 200)) (i64.const 7)) (then unreachable))
    (drop (call $clock (i32.const 1) (i64.const 1) (i32.const 304)))
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 312)))
    (drop (call $random (i32.const 320) (i32.const 16)))
    (i32.store (i32.const 0) (i32.const 304))
    (i32.store (i32.const 4) (i32.const 32))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
)"#;

/// Spins forever.
pub const LOOP: &str =
    r#"(module (memory (export "memory") 1) (func (export "_start") (loop br 0)))"#;

/// Grows memory by 64 KiB pages until `memory.grow` fails, then traps.
pub const GROW: &str = r#"
(module (memory (export "memory") 1)
  (func (export "_start")
    (loop
      (if (i32.eq (memory.grow (i32.const 16)) (i32.const -1)) (then unreachable))
      (br 0))))"#;

/// Exits with code 3 via `proc_exit`.
pub const EXIT3: &str = r#"
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))"#;

/// Writes 64 KiB to stdout forever (ignoring errors).
pub const FLOOD: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 1024))
    (i32.store (i32.const 4) (i32.const 65536))
    (loop
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (br 0))))"#;

/// Imports a function the runner does not provide.
pub const BAD_IMPORT: &str = r#"
(module (import "env" "nope" (func)) (memory (export "memory") 1) (func (export "_start")))"#;

/// Compiles WAT text to module bytes.
pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("test WAT parses")
}
