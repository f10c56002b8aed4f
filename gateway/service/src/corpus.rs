//! Generated modules of every admission class (cargo feature `test-corpus`): healthy
//! modules the runner's engine runs, and one module per reason a module cannot run.
//!
//! The service's tests check each rejection's reason; the runner's tests compile every
//! module with the real engine and assert that the engine and [`validate_module`]
//! agree; the gateway's tests upload some and expect `422`.
//!
//! [`validate_module`]: crate::validate_module

/// What admission must say about a [`Case`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Accepted; the module runs to completion and exits 0.
    Accept,
    /// Rejected with a reason that contains this text.
    Reject(&'static str),
}

/// One generated module.
#[derive(Clone, Debug)]
pub struct Case {
    /// Short name of the class (`illegal-opcode`, `gc-types`, ...).
    pub name: &'static str,
    /// The module's bytes.
    pub bytes: Vec<u8>,
    /// What admission says about it.
    pub expect: Expect,
}

const MEMORY: &str = r#"(memory (export "memory") 1)"#;

fn wat(name: &'static str, expect: Expect, body: &str) -> Case {
    let src = format!("(module {body})");
    let bytes = wat::parse_str(&src).unwrap_or_else(|e| panic!("corpus module {name} parses: {e}"));
    Case {
        name,
        bytes,
        expect,
    }
}

/// `_start: [] -> []` whose body is opcode `0x27`, which no proposal defines. The text
/// format cannot spell it, so this one is written byte by byte.
fn illegal_opcode() -> Vec<u8> {
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    // type section: one type, func [] -> []
    m.extend_from_slice(&[0x01, 0x04, 0x01, 0x60, 0x00, 0x00]);
    // function section: one function of type 0
    m.extend_from_slice(&[0x03, 0x02, 0x01, 0x00]);
    // export section: "_start" = func 0
    m.extend_from_slice(&[0x07, 0x0a, 0x01, 0x06]);
    m.extend_from_slice(b"_start");
    m.extend_from_slice(&[0x00, 0x00]);
    // code section: one body of 3 bytes: no locals, 0x27, end
    m.extend_from_slice(&[0x0a, 0x05, 0x01, 0x03, 0x00, 0x27, 0x0b]);
    m
}

/// Modules the runner's engine runs, one per everyday proposal.
pub fn healthy() -> Vec<Case> {
    use Expect::Accept;
    vec![
        wat(
            "minimal",
            Accept,
            &format!(r#"{MEMORY} (func (export "_start"))"#),
        ),
        wat(
            "wasi-write",
            Accept,
            &format!(
                r#"(import "wasi_snapshot_preview1" "fd_write"
                      (func $fd_write (param i32 i32 i32 i32) (result i32)))
                   (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                   {MEMORY}
                   (data (i32.const 16) "ok\n")
                   (func (export "_start")
                     (i32.store (i32.const 0) (i32.const 16))
                     (i32.store (i32.const 4) (i32.const 3))
                     (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
                     (call $exit (i32.const 0)))"#
            ),
        ),
        wat(
            "state-host-calls",
            Accept,
            &format!(
                r#"(import "xxfunc" "state_account" (func $account (param i32 i32) (result i32)))
                   (import "xxfunc" "state_storage" (func $storage (param i32 i32 i32) (result i32)))
                   (import "xxfunc" "state_code" (func $code (param i32 i32 i32 i32) (result i32)))
                   (import "xxfunc" "state_call" (func $call (param i32 i32 i32 i32 i32) (result i32)))
                   {MEMORY}
                   (func (export "_start")
                     ;; BAD_ARGUMENT (-3) for a pointer outside memory, with or without state
                     (if (i32.ne (call $account (i32.const -1) (i32.const 0)) (i32.const -3))
                       (then unreachable)))"#
            ),
        ),
        wat(
            "unimplemented-wasi-sockets",
            Accept,
            &format!(
                r#"(import "wasi_snapshot_preview1" "sock_accept"
                      (func $accept (param i32 i32 i32) (result i32)))
                   (import "wasi_snapshot_preview1" "sock_recv"
                      (func $recv (param i32 i32 i32 i32 i32 i32) (result i32)))
                   (import "wasi_snapshot_preview1" "sock_send"
                      (func $send (param i32 i32 i32 i32 i32) (result i32)))
                   (import "wasi_snapshot_preview1" "sock_shutdown"
                      (func $shutdown (param i32 i32) (result i32)))
                   {MEMORY}
                   (func (export "_start")
                     ;; ENOTSOCK (57) for stdin, EBADF (8) for a descriptor that does not exist
                     (if (i32.ne (call $accept (i32.const 0) (i32.const 0) (i32.const 0))
                                 (i32.const 57)) (then unreachable))
                     (if (i32.ne (call $recv (i32.const 9) (i32.const 0) (i32.const 0)
                                             (i32.const 0) (i32.const 0) (i32.const 4))
                                 (i32.const 8)) (then unreachable))
                     (if (i32.ne (call $send (i32.const 1) (i32.const 0) (i32.const 0)
                                             (i32.const 0) (i32.const 0))
                                 (i32.const 57)) (then unreachable))
                     (if (i32.ne (call $shutdown (i32.const 2) (i32.const 0))
                                 (i32.const 57)) (then unreachable)))"#
            ),
        ),
        wat(
            "simd",
            Accept,
            &format!(
                r#"{MEMORY} (func (export "_start")
                     (v128.store (i32.const 0)
                       (i32x4.add (v128.load (i32.const 0)) (v128.const i32x4 1 2 3 4))))"#
            ),
        ),
        wat(
            "relaxed-simd",
            Accept,
            &format!(
                r#"{MEMORY} (func (export "_start")
                     (drop (i32x4.relaxed_trunc_f32x4_s (v128.const f32x4 1 2 3 4))))"#
            ),
        ),
        wat(
            "bulk-memory",
            Accept,
            &format!(
                r#"{MEMORY} (data $d "abc")
                   (func (export "_start")
                     (memory.init $d (i32.const 0) (i32.const 0) (i32.const 3))
                     (memory.copy (i32.const 8) (i32.const 0) (i32.const 3))
                     (memory.fill (i32.const 16) (i32.const 7) (i32.const 4))
                     (data.drop $d))"#
            ),
        ),
        wat(
            "reference-types",
            Accept,
            &format!(
                r#"{MEMORY} (table 2 funcref) (elem (i32.const 0) $f)
                   (func $f (result i32) (i32.const 7))
                   (func (export "_start")
                     (drop (call_indirect (result i32) (i32.const 0)))
                     (drop (ref.is_null (table.get 0 (i32.const 1)))))"#
            ),
        ),
        wat(
            "multi-value-and-sign-extension",
            Accept,
            &format!(
                r#"{MEMORY}
                   (func $two (result i32 i64) (i32.const 1) (i64.const 2))
                   (func (export "_start")
                     (call $two) (drop) (drop)
                     (drop (i32.extend16_s (i32.const 65535)))
                     (drop (i64.extend8_s (i64.const 255)))
                     (drop (i32.trunc_sat_f32_s (f32.const 1e30))))"#
            ),
        ),
        wat(
            "tail-call",
            Accept,
            &format!(
                r#"{MEMORY}
                   (func $down (param i32) (if (local.get 0)
                     (then (return_call $down (i32.sub (local.get 0) (i32.const 1))))))
                   (func (export "_start") (call $down (i32.const 1000)))"#
            ),
        ),
        wat(
            "extended-const-and-mutable-global",
            Accept,
            &format!(
                r#"{MEMORY}
                   (global $g (export "counter") (mut i32) (i32.add (i32.const 1) (i32.const 2)))
                   (func (export "_start") (global.set $g (i32.const 4)))"#
            ),
        ),
        wat(
            "memory64",
            Accept,
            r#"(memory (export "memory") i64 1)
               (func (export "_start") (i64.store (i64.const 8) (i64.const 1)))"#,
        ),
        wat(
            "table-at-the-limit",
            Accept,
            &format!(r#"{MEMORY} (table 20000 funcref) (func (export "_start"))"#),
        ),
    ]
}

/// One module per reason the runner's engine cannot run a module.
pub fn rejected() -> Vec<Case> {
    use Expect::Reject;
    vec![
        Case {
            name: "illegal-opcode",
            bytes: illegal_opcode(),
            expect: Reject("illegal opcode"),
        },
        wat(
            "unknown-host-call",
            Reject("xxfunc.state_logs"),
            r#"(import "xxfunc" "state_logs" (func (param i32) (result i32))) (func (export "_start"))"#,
        ),
        wat(
            "host-call-signature",
            Reject("xxfunc.state_storage"),
            r#"(import "xxfunc" "state_storage" (func (param i64 i32 i32) (result i32))) (func (export "_start"))"#,
        ),
        wat(
            "type-mismatch",
            Reject("type mismatch"),
            r#"(func (export "_start") (drop (i32.add (i32.const 1) (i64.const 2))))"#,
        ),
        wat(
            "call-out-of-bounds",
            Reject("unknown function 7"),
            r#"(func (export "_start") (call 7))"#,
        ),
        wat(
            "too-many-locals",
            Reject("too many locals"),
            &format!(
                r#"(func (export "_start") (local {}))"#,
                "i32 ".repeat(50_001)
            ),
        ),
        wat(
            "start-with-params",
            Reject("`_start` has type [i32] -> []"),
            r#"(func (export "_start") (param i32))"#,
        ),
        wat(
            "start-with-results",
            Reject("`_start` has type [] -> [i32]"),
            r#"(func (export "_start") (result i32) (i32.const 0))"#,
        ),
        wat(
            "gc-types",
            Reject("gc proposal"),
            r#"(type $point (struct (field i32) (field i32)))
               (func (export "_start") (drop (struct.new $point (i32.const 1) (i32.const 2))))"#,
        ),
        wat(
            "threads-shared-memory",
            Reject("threads proposal"),
            r#"(memory (export "memory") 1 1 shared)
               (func (export "_start") (drop (i32.atomic.load (i32.const 0))))"#,
        ),
        wat(
            "threads-atomics",
            Reject("threads proposal"),
            &format!(r#"{MEMORY} (func (export "_start") (atomic.fence))"#),
        ),
        wat(
            "exceptions",
            Reject("exceptions proposal"),
            r#"(tag $oops) (func (export "_start") (throw $oops))"#,
        ),
        wat(
            "two-memories",
            Reject("multi-memory proposal"),
            r#"(memory (export "memory") 1) (memory 1) (func (export "_start"))"#,
        ),
        wat(
            "custom-page-size",
            Reject("custom-page-sizes proposal"),
            r#"(memory (export "memory") 1 (pagesize 1)) (func (export "_start"))"#,
        ),
        wat(
            "two-tables",
            Reject("defines 2 tables"),
            r#"(table 1 funcref) (table 1 externref) (func (export "_start"))"#,
        ),
        wat(
            "table-too-large",
            Reject("starts with 20001 elements"),
            r#"(table 20001 funcref) (func (export "_start"))"#,
        ),
        wat(
            "imported-memory",
            Reject("as a memory"),
            r#"(import "wasi_snapshot_preview1" "memory" (memory 1)) (func (export "_start"))"#,
        ),
        wat(
            "no-start",
            Reject("no `_start`"),
            r#"(func (export "main"))"#,
        ),
    ]
}

/// [`healthy`] and [`rejected`].
pub fn all() -> Vec<Case> {
    let mut cases = healthy();
    cases.extend(rejected());
    cases
}
