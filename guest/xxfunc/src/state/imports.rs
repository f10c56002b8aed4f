//! The `xxfunc` import module on `wasm32-wasip1`: the runner's state host calls.
//!
//! Pointers and lengths are wasm32 `i32`s (`*const u8`, `usize` and `u32` all lower to
//! `i32` there). The signatures are the contract of `docs/abi.md`; the runner validates
//! them at upload.

use super::{ACCOUNT_LEN, Host};

#[link(wasm_import_module = "xxfunc")]
unsafe extern "C" {
    fn state_account(addr_ptr: *const u8, out_ptr: *mut u8) -> i32;
    fn state_storage(addr_ptr: *const u8, slot_ptr: *const u8, out_ptr: *mut u8) -> i32;
    fn state_code(addr_ptr: *const u8, out_ptr: *mut u8, out_cap: usize, len_ptr: *mut u32) -> i32;
    fn state_call(
        req_ptr: *const u8,
        req_len: usize,
        out_ptr: *mut u8,
        out_cap: usize,
        len_ptr: *mut u32,
    ) -> i32;
}

/// The runner, through the imports above.
pub(super) struct Imports;

// SAFETY (all four): every pointer comes from a live Rust reference or slice, valid for the
// length the ABI lets the host read or write (20-byte address, 32-byte slot, 72- or
// 32-byte fixed answers, `out.len()` bytes of answer buffer, a 4-byte length), and the
// host writes nothing beyond those. The calls are synchronous: no pointer outlives them.
impl Host for Imports {
    fn account(&self, address: &[u8; 20], out: &mut [u8; ACCOUNT_LEN]) -> i32 {
        unsafe { state_account(address.as_ptr(), out.as_mut_ptr()) }
    }

    fn storage(&self, address: &[u8; 20], slot: &[u8; 32], out: &mut [u8; 32]) -> i32 {
        unsafe { state_storage(address.as_ptr(), slot.as_ptr(), out.as_mut_ptr()) }
    }

    fn code(&self, address: &[u8; 20], out: &mut [u8], len: &mut u32) -> i32 {
        unsafe { state_code(address.as_ptr(), out.as_mut_ptr(), out.len(), len) }
    }

    fn call(&self, request: &[u8], out: &mut [u8], len: &mut u32) -> i32 {
        unsafe {
            state_call(
                request.as_ptr(),
                request.len(),
                out.as_mut_ptr(),
                out.len(),
                len,
            )
        }
    }
}
