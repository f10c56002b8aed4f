//! The `xxfunc.state_*` host calls, byte for byte as docs/abi.md §8 specifies them.
//!
//! Every argument is checked against linear memory before anything is read or written;
//! a bad one is `BAD_ARGUMENT` and the guest goes on (a host call never traps for the
//! guest's arguments and never panics). Every call counts against the invocation's
//! limit on host calls, every byte written against its limit on answer bytes, and no call
//! waits past the invocation's deadline.

use std::time::Instant;

use alloy_primitives::{Address, B256, Bytes, U256};
use wasmtime::{Caller, Extern, Linker, Memory};

use super::{CallRequest, StateAnswer, StateLimits, StateRequest, StateScope, Unavailable};
use crate::sandbox::GuestState;

/// Statuses (docs/abi.md §8, "Calling convention").
pub(crate) mod status {
    pub(crate) const OK: i32 = 0;
    pub(crate) const REVERTED: i32 = 1;
    pub(crate) const BUFFER_TOO_SMALL: i32 = 2;
    pub(crate) const STATE_UNAVAILABLE: i32 = -1;
    pub(crate) const LIMIT_EXCEEDED: i32 = -2;
    pub(crate) const BAD_ARGUMENT: i32 = -3;
    pub(crate) const HALTED: i32 = -4;
}

/// Bytes of a `state_account` answer: balance 32, nonce 8, code hash 32.
pub(crate) const ACCOUNT_ANSWER: usize = 72;

/// Bytes of a `state_call` request before its calldata.
const CALL_HEADER: usize = 80;

/// The host-call side of one invocation: where it reads, what it may still do, and
/// whether the state was unavailable.
pub(crate) struct HostCalls {
    scope: Option<StateScope>,
    limits: StateLimits,
    deadline: Instant,
    calls: u32,
    bytes: usize,
    /// Why the state could not be read, the first time it could not (the invocation is
    /// then not recorded, whatever the guest did next).
    pub(crate) unavailable: Option<String>,
    /// Every distinct request answered, with its answer (stored with the outcome).
    pub(crate) reads: Vec<(StateRequest, StateAnswer)>,
    seen: std::collections::HashSet<StateRequest>,
}

impl HostCalls {
    pub(crate) fn new(scope: Option<StateScope>, limits: StateLimits, deadline: Instant) -> Self {
        Self {
            scope,
            limits,
            deadline,
            calls: 0,
            bytes: 0,
            unavailable: None,
            reads: Vec::new(),
            seen: std::collections::HashSet::new(),
        }
    }

    /// Counts one call; `LIMIT_EXCEEDED` past the limit, `STATE_UNAVAILABLE` once the
    /// state was unavailable (the invocation will not be recorded; no more reads).
    fn begin(&mut self) -> Result<(), i32> {
        self.calls = self.calls.saturating_add(1);
        if self.unavailable.is_some() {
            return Err(status::STATE_UNAVAILABLE);
        }
        if self.calls > self.limits.calls {
            return Err(status::LIMIT_EXCEEDED);
        }
        Ok(())
    }

    /// The answer to `request`, from the cache or the backend.
    fn ask(&mut self, request: &StateRequest) -> Result<StateAnswer, i32> {
        let answer = match &self.scope {
            None => Err(Unavailable(
                "this runner has no state backend (start it with --state-rpc <url>, or inside \
                 a node)"
                    .into(),
            )),
            Some(_) if Instant::now() >= self.deadline => Err(Unavailable::deadline()),
            Some(scope) => scope.read(request, self.deadline),
        };
        if let Ok(answer) = &answer
            && !self.seen.contains(request)
        {
            self.seen.insert(request.clone());
            self.reads.push((request.clone(), answer.clone()));
        }
        answer.map_err(|Unavailable(reason)| {
            super::READS
                .unavailable
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.unavailable.get_or_insert(reason);
            status::STATE_UNAVAILABLE
        })
    }

    /// Counts `n` answer bytes; `LIMIT_EXCEEDED` past the limit (nothing counted).
    fn charge(&mut self, n: usize) -> Result<(), i32> {
        let total = self.bytes.saturating_add(n);
        if total > self.limits.answer_bytes {
            return Err(status::LIMIT_EXCEEDED);
        }
        self.bytes = total;
        Ok(())
    }
}

/// Defines the host calls in `linker` (their names and parameter counts are
/// [`xxfunc_primitives::admission::HOST_CALLS`]).
pub(crate) fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    const M: &str = xxfunc_primitives::admission::HOST_MODULE;
    linker.func_wrap(
        M,
        "state_account",
        |mut caller: Caller<'_, GuestState>, addr: i32, out: i32| -> i32 {
            status(account(&mut caller, addr, out))
        },
    )?;
    linker.func_wrap(
        M,
        "state_storage",
        |mut caller: Caller<'_, GuestState>, addr: i32, slot: i32, out: i32| -> i32 {
            status(storage(&mut caller, addr, slot, out))
        },
    )?;
    linker.func_wrap(
        M,
        "state_code",
        |mut caller: Caller<'_, GuestState>, addr: i32, out: i32, cap: i32, len: i32| -> i32 {
            status(code(&mut caller, addr, Buffer { out, cap, len }))
        },
    )?;
    linker.func_wrap(
        M,
        "state_call",
        |mut caller: Caller<'_, GuestState>,
         req: i32,
         req_len: i32,
         out: i32,
         cap: i32,
         len: i32|
         -> i32 { status(call(&mut caller, req, req_len, Buffer { out, cap, len })) },
    )?;
    Ok(())
}

fn status(result: Result<i32, i32>) -> i32 {
    result.unwrap_or_else(|code| code)
}

/// A guest pointer and length as a range of linear memory, if it lies inside it.
fn range(mem: &[u8], ptr: i32, len: usize) -> Result<std::ops::Range<usize>, i32> {
    let start = ptr as u32 as usize;
    start
        .checked_add(len)
        .filter(|end| *end <= mem.len())
        .map(|end| start..end)
        .ok_or(status::BAD_ARGUMENT)
}

/// The guest's exported memory.
fn memory(caller: &mut Caller<'_, GuestState>) -> Result<Memory, i32> {
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(status::BAD_ARGUMENT),
    }
}

fn read_address(mem: &[u8], ptr: i32) -> Result<Address, i32> {
    Ok(Address::from_slice(&mem[range(mem, ptr, 20)?]))
}

/// A guest-offered answer buffer (`out_ptr`, `out_cap`, `len_ptr`).
#[derive(Clone, Copy)]
struct Buffer {
    out: i32,
    cap: i32,
    len: i32,
}

impl Buffer {
    /// Checks both ranges; `BAD_ARGUMENT` when either is outside memory.
    fn check(self, mem: &[u8]) -> Result<(), i32> {
        range(mem, self.out, self.cap as u32 as usize)?;
        range(mem, self.len, 4)?;
        Ok(())
    }
}

fn account(caller: &mut Caller<'_, GuestState>, addr: i32, out: i32) -> Result<i32, i32> {
    caller.data_mut().host.begin()?;
    let memory = memory(caller)?;
    let address = {
        let mem = memory.data(&*caller);
        range(mem, out, ACCOUNT_ANSWER)?;
        read_address(mem, addr)?
    };
    let answer = caller
        .data_mut()
        .host
        .ask(&StateRequest::Account(address))?;
    let StateAnswer::Account {
        balance,
        nonce,
        code_hash,
    } = answer
    else {
        return Err(mismatch(caller, "account"));
    };
    caller.data_mut().host.charge(ACCOUNT_ANSWER)?;
    let mut bytes = [0u8; ACCOUNT_ANSWER];
    bytes[..32].copy_from_slice(&balance.to_be_bytes::<32>());
    bytes[32..40].copy_from_slice(&nonce.to_be_bytes());
    bytes[40..].copy_from_slice(code_hash.as_slice());
    let mem = memory.data_mut(&mut *caller);
    let at = range(mem, out, ACCOUNT_ANSWER)?;
    mem[at].copy_from_slice(&bytes);
    Ok(status::OK)
}

fn storage(
    caller: &mut Caller<'_, GuestState>,
    addr: i32,
    slot: i32,
    out: i32,
) -> Result<i32, i32> {
    caller.data_mut().host.begin()?;
    let memory = memory(caller)?;
    let (address, slot) = {
        let mem = memory.data(&*caller);
        range(mem, out, 32)?;
        (
            read_address(mem, addr)?,
            B256::from_slice(&mem[range(mem, slot, 32)?]),
        )
    };
    let answer = caller
        .data_mut()
        .host
        .ask(&StateRequest::Storage(address, slot))?;
    let StateAnswer::Word(word) = answer else {
        return Err(mismatch(caller, "storage"));
    };
    caller.data_mut().host.charge(32)?;
    let mem = memory.data_mut(&mut *caller);
    let at = range(mem, out, 32)?;
    mem[at].copy_from_slice(word.as_slice());
    Ok(status::OK)
}

fn code(caller: &mut Caller<'_, GuestState>, addr: i32, buffer: Buffer) -> Result<i32, i32> {
    caller.data_mut().host.begin()?;
    let memory = memory(caller)?;
    let address = {
        let mem = memory.data(&*caller);
        buffer.check(mem)?;
        read_address(mem, addr)?
    };
    let answer = caller.data_mut().host.ask(&StateRequest::Code(address))?;
    let StateAnswer::Code(code) = answer else {
        return Err(mismatch(caller, "code"));
    };
    answer_into(caller, memory, buffer, &code, status::OK)
}

fn call(
    caller: &mut Caller<'_, GuestState>,
    req: i32,
    req_len: i32,
    buffer: Buffer,
) -> Result<i32, i32> {
    caller.data_mut().host.begin()?;
    let memory = memory(caller)?;
    let gas_cap = caller.data().host.limits.gas;
    let request = {
        let mem = memory.data(&*caller);
        buffer.check(mem)?;
        let bytes = &mem[range(mem, req, req_len as u32 as usize)?];
        parse_call(bytes, gas_cap)?
    };
    match caller.data_mut().host.ask(&StateRequest::Call(request))? {
        StateAnswer::Returned(output) => answer_into(caller, memory, buffer, &output, status::OK),
        StateAnswer::Reverted(data) => answer_into(caller, memory, buffer, &data, status::REVERTED),
        StateAnswer::Halted(_) => Ok(status::HALTED),
        _ => Err(mismatch(caller, "call")),
    }
}

/// A `state_call` request: to ‖ from ‖ value ‖ gas ‖ calldata. A gas of 0, or more than
/// `gas_cap`, is `gas_cap`.
fn parse_call(bytes: &[u8], gas_cap: u64) -> Result<CallRequest, i32> {
    if bytes.len() < CALL_HEADER {
        return Err(status::BAD_ARGUMENT);
    }
    let from = Address::from_slice(&bytes[20..40]);
    let gas = u64::from_be_bytes(bytes[72..80].try_into().expect("8 bytes"));
    Ok(CallRequest {
        to: Address::from_slice(&bytes[..20]),
        from: (!from.is_zero()).then_some(from),
        value: U256::from_be_slice(&bytes[40..72]),
        gas: if gas == 0 { gas_cap } else { gas.min(gas_cap) },
        data: Bytes::copy_from_slice(&bytes[CALL_HEADER..]),
    })
}

/// Writes `answer`'s length at `len_ptr`, and the answer at `out_ptr` if it fits
/// (`ok`), else only the length (`BUFFER_TOO_SMALL`).
fn answer_into(
    caller: &mut Caller<'_, GuestState>,
    memory: Memory,
    buffer: Buffer,
    answer: &[u8],
    ok: i32,
) -> Result<i32, i32> {
    let Ok(len) = u32::try_from(answer.len()) else {
        return Err(status::LIMIT_EXCEEDED);
    };
    let fits = answer.len() <= buffer.cap as u32 as usize;
    if fits {
        caller.data_mut().host.charge(answer.len())?;
    }
    let mem = memory.data_mut(&mut *caller);
    let len_at = range(mem, buffer.len, 4)?;
    mem[len_at].copy_from_slice(&len.to_le_bytes());
    if !fits {
        return Ok(status::BUFFER_TOO_SMALL);
    }
    let out_at = range(mem, buffer.out, answer.len())?;
    mem[out_at].copy_from_slice(answer);
    Ok(ok)
}

/// A backend answered a request with an answer of another kind: its bug, not the
/// guest's; the read counts as unavailable (retried, logged).
fn mismatch(caller: &mut Caller<'_, GuestState>, what: &str) -> i32 {
    let reason = format!("the state backend answered a {what} read with another kind of answer");
    tracing::error!("{reason}");
    caller.data_mut().host.unavailable.get_or_insert(reason);
    status::STATE_UNAVAILABLE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_requests_parse_and_cap_gas() {
        let mut req = vec![0u8; CALL_HEADER + 4];
        req[..20].copy_from_slice(&[0x11; 20]);
        req[59..72].copy_from_slice(&[0; 13]);
        req[71] = 5;
        req[72..80].copy_from_slice(&7u64.to_be_bytes());
        req[80..].copy_from_slice(&[0x70, 0xa0, 0x82, 0x31]);
        let call = parse_call(&req, 1_000).unwrap();
        assert_eq!(call.to, Address::repeat_byte(0x11));
        assert_eq!(call.from, None);
        assert_eq!(call.value, U256::from(5));
        assert_eq!(call.gas, 7);
        assert_eq!(call.data.as_ref(), &[0x70, 0xa0, 0x82, 0x31]);

        req[72..80].copy_from_slice(&0u64.to_be_bytes());
        assert_eq!(parse_call(&req, 1_000).unwrap().gas, 1_000);
        req[72..80].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(parse_call(&req, 1_000).unwrap().gas, 1_000);
        req[20..40].copy_from_slice(&[0x22; 20]);
        assert_eq!(
            parse_call(&req, 1_000).unwrap().from,
            Some(Address::repeat_byte(0x22))
        );
        assert_eq!(
            parse_call(&req[..79], 1_000).unwrap_err(),
            status::BAD_ARGUMENT
        );
    }

    #[test]
    fn ranges_stay_inside_memory() {
        let mem = [0u8; 64];
        assert_eq!(range(&mem, 0, 64), Ok(0..64));
        assert_eq!(range(&mem, 44, 20), Ok(44..64));
        assert_eq!(range(&mem, 45, 20), Err(status::BAD_ARGUMENT));
        assert_eq!(range(&mem, -1, 1), Err(status::BAD_ARGUMENT));
        assert_eq!(range(&mem, 64, 0), Ok(64..64));
        assert_eq!(range(&mem, 65, 0), Err(status::BAD_ARGUMENT));
    }
}
