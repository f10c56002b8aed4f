//! What a guest can see: the per-invocation WASI context (stdin = envelope,
//! capped stdout/stderr, no env, no args beyond `argv[0]`, no preopens, no
//! sockets), a virtual clock that reads the block timestamp, a random source
//! seeded from block hash and module hash, a memory limiter, and a
//! `poll_oneoff` that answers clock subscriptions at once on the virtual clock.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::Bytes;
use wasmtime::{Caller, Extern, Linker, ResourceLimiter};

use crate::state::{StateLimits, StateScope, host::HostCalls};
use wasmtime_wasi::{
    HostMonotonicClock, HostWallClock, WasiCtxBuilder,
    p1::WasiP1Ctx,
    p2::pipe::{MemoryInputPipe, MemoryOutputPipe},
};

/// Per-`Store` data of one invocation.
pub(crate) struct GuestState {
    pub(crate) wasi: WasiP1Ctx,
    /// Nanoseconds the guest has slept on the virtual clock.
    slept: Arc<AtomicU64>,
    memory_cap: usize,
    /// Set when the guest asked for more linear memory than its cap.
    pub(crate) memory_denied: bool,
    /// Calls to each of [`UNIMPLEMENTED`], in order.
    pub(crate) unimplemented_calls: [u64; UNIMPLEMENTED.len()],
    /// The `xxfunc.state_*` host calls' state (see [`crate::state`]).
    pub(crate) host: HostCalls,
}

/// WASI preview-1 functions the sandbox does not implement (there are no sockets). The
/// runner answers them itself, silently: `ENOTSOCK` for a stdio descriptor, `EBADF` for
/// any other, which is what wasmtime-wasi answers too, minus its WARN line per call.
/// The calls are counted per invocation and logged per module at most once per
/// interval ([`crate::host_calls`]).
pub(crate) const UNIMPLEMENTED: [&str; 4] =
    ["sock_accept", "sock_recv", "sock_send", "sock_shutdown"];

/// The captured output pipes of one invocation. Each pipe holds one byte more
/// than its cap, so "more than the cap was written" is observable.
pub(crate) struct Captured {
    pub(crate) stdout: MemoryOutputPipe,
    pub(crate) stderr: MemoryOutputPipe,
}

/// Inputs that determine what a guest sees besides its envelope.
pub(crate) struct GuestContext<'a> {
    pub(crate) envelope: Bytes,
    pub(crate) timestamp: u64,
    pub(crate) block_hash: &'a [u8; 32],
    pub(crate) module_hash: &'a [u8; 32],
    pub(crate) memory_cap: usize,
    pub(crate) stdout_cap: usize,
    pub(crate) stderr_cap: usize,
    /// Where state reads go (`None`: the runner has no state backend).
    pub(crate) state: Option<StateScope>,
    pub(crate) state_limits: StateLimits,
    /// When the invocation's wall time is up: no host call waits past it.
    pub(crate) deadline: Instant,
}

impl GuestState {
    pub(crate) fn new(cx: GuestContext<'_>) -> (Self, Captured) {
        let stdout = MemoryOutputPipe::new(cx.stdout_cap.saturating_add(1));
        let stderr = MemoryOutputPipe::new(cx.stderr_cap.saturating_add(1));
        let slept = Arc::new(AtomicU64::new(0));
        let mut seed = blake3::Hasher::new();
        seed.update(cx.block_hash).update(cx.module_hash);
        let seed = seed.finalize();
        let insecure_seed = u128::from_le_bytes(
            seed.as_bytes()[..16]
                .try_into()
                .expect("a blake3 hash has 32 bytes"),
        );
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdin(MemoryInputPipe::new(cx.envelope))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg("main")
            .wall_clock(VirtualClock {
                timestamp: cx.timestamp,
                slept: slept.clone(),
            })
            .monotonic_clock(VirtualClock {
                timestamp: cx.timestamp,
                slept: slept.clone(),
            })
            .secure_random(SeededRandom::new(seed.as_bytes(), b"secure"))
            .insecure_random(SeededRandom::new(seed.as_bytes(), b"insecure"))
            .insecure_random_seed(insecure_seed)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let state = Self {
            wasi: builder.build_p1(),
            slept,
            memory_cap: cx.memory_cap,
            memory_denied: false,
            unimplemented_calls: [0; UNIMPLEMENTED.len()],
            host: HostCalls::new(cx.state, cx.state_limits, cx.deadline),
        };
        (state, Captured { stdout, stderr })
    }
}

impl ResourceLimiter for GuestState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_cap {
            // `memory.grow` answers -1; a guest that cannot cope traps, and the
            // invocation is then reported as a memory-limit breach.
            self.memory_denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Wall clock = block timestamp + virtual sleeps; monotonic clock = virtual
/// sleeps since the invocation began. Neither reads the host's time.
struct VirtualClock {
    timestamp: u64,
    slept: Arc<AtomicU64>,
}

impl HostWallClock for VirtualClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(self.timestamp)
            + Duration::from_nanos(self.slept.load(Ordering::Relaxed))
    }
}

impl HostMonotonicClock for VirtualClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        self.slept.load(Ordering::Relaxed)
    }
}

/// A deterministic generator: the blake3 XOF keyed by the invocation seed.
struct SeededRandom(blake3::OutputReader);

impl SeededRandom {
    fn new(seed: &[u8; 32], domain: &[u8]) -> Self {
        let mut hasher = blake3::Hasher::new_keyed(seed);
        hasher.update(domain);
        Self(hasher.finalize_xof())
    }
}

impl rand_core::TryRng for SeededRandom {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut b = [0u8; 4];
        self.0.fill(&mut b);
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut b = [0u8; 8];
        self.0.fill(&mut b);
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

/// WASI preview-1 errno values used by [`poll_oneoff`].
mod errno {
    pub(super) const SUCCESS: i32 = 0;
    pub(super) const BADF: u16 = 8;
    pub(super) const FAULT: i32 = 21;
    pub(super) const INVAL: i32 = 28;
    pub(super) const NOTSOCK: i32 = 57;
}

const SUBSCRIPTION_SIZE: usize = 48;
const EVENT_SIZE: usize = 32;
const TAG_CLOCK: u8 = 0;
const TAG_FD_READ: u8 = 1;
const TAG_FD_WRITE: u8 = 2;
/// `subclockflags::subscription_clock_abstime`.
const ABSTIME: u16 = 1;

/// Replaces wasmtime-wasi's `poll_oneoff`, which sleeps the calling thread in
/// real time for clock subscriptions. Here every subscription is ready at once:
/// clocks fire immediately and advance the virtual clock by the requested
/// timeout (the longest one of the call); stdio descriptors are reported ready;
/// any other descriptor gets `EBADF` in its event. Also replaces the
/// [`UNIMPLEMENTED`] functions, which wasmtime-wasi logs at WARN on every call.
pub(crate) fn shadow_wasi(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |mut caller: Caller<'_, GuestState>,
         subs: i32,
         events: i32,
         nsubs: i32,
         nevents: i32|
         -> i32 {
            poll_oneoff(
                &mut caller,
                subs as u32,
                events as u32,
                nsubs as u32,
                nevents as u32,
            )
        },
    )?;
    shadow_unimplemented(linker)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Replaces wasmtime-wasi's `sock_*` functions (see [`UNIMPLEMENTED`]) with the same
/// signatures and answers, counted instead of logged.
fn shadow_unimplemented(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    const WASI: &str = "wasi_snapshot_preview1";
    fn answer(caller: &mut Caller<'_, GuestState>, which: usize, fd: i32) -> i32 {
        let calls = &mut caller.data_mut().unimplemented_calls[which];
        *calls = calls.saturating_add(1);
        // The sandbox's only descriptors are stdin, stdout and stderr (no preopens).
        if (0..=2).contains(&fd) {
            errno::NOTSOCK
        } else {
            i32::from(errno::BADF)
        }
    }
    linker.func_wrap(
        WASI,
        UNIMPLEMENTED[0],
        |mut caller: Caller<'_, GuestState>, fd: i32, _flags: i32, _fd_out: i32| -> i32 {
            answer(&mut caller, 0, fd)
        },
    )?;
    linker.func_wrap(
        WASI,
        UNIMPLEMENTED[1],
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         _ri_data: i32,
         _ri_data_len: i32,
         _ri_flags: i32,
         _ro_datalen: i32,
         _ro_flags: i32|
         -> i32 { answer(&mut caller, 1, fd) },
    )?;
    linker.func_wrap(
        WASI,
        UNIMPLEMENTED[2],
        |mut caller: Caller<'_, GuestState>,
         fd: i32,
         _si_data: i32,
         _si_data_len: i32,
         _si_flags: i32,
         _so_datalen: i32|
         -> i32 { answer(&mut caller, 2, fd) },
    )?;
    linker.func_wrap(
        WASI,
        UNIMPLEMENTED[3],
        |mut caller: Caller<'_, GuestState>, fd: i32, _how: i32| -> i32 {
            answer(&mut caller, 3, fd)
        },
    )?;
    Ok(())
}

fn poll_oneoff(
    caller: &mut Caller<'_, GuestState>,
    subs: u32,
    events: u32,
    nsubs: u32,
    nevents_ptr: u32,
) -> i32 {
    if nsubs == 0 {
        return errno::INVAL;
    }
    let Some(Extern::Memory(memory)) = caller.get_export("memory") else {
        return errno::FAULT;
    };
    let (mem, state) = memory.data_and_store_mut(caller);
    let n = nsubs as usize;
    let subs = subs as usize;
    let events = events as usize;
    let in_range =
        |start: usize, len: usize| start.checked_add(len).is_some_and(|end| end <= mem.len());
    let Some(sub_bytes) = n.checked_mul(SUBSCRIPTION_SIZE) else {
        return errno::FAULT;
    };
    let Some(event_bytes) = n.checked_mul(EVENT_SIZE) else {
        return errno::FAULT;
    };
    if !in_range(subs, sub_bytes)
        || !in_range(events, event_bytes)
        || !in_range(nevents_ptr as usize, 4)
    {
        return errno::FAULT;
    }
    let read_u64 =
        |m: &[u8], at: usize| u64::from_le_bytes(m[at..at + 8].try_into().expect("8 bytes"));
    let mut advance = 0u64;
    let now = state.slept.load(Ordering::Relaxed);
    for i in 0..n {
        let sub = subs + i * SUBSCRIPTION_SIZE;
        let userdata = read_u64(mem, sub);
        let tag = mem[sub + 8];
        let (error, kind, nbytes) = match tag {
            TAG_CLOCK => {
                let timeout = read_u64(mem, sub + 24);
                let flags = u16::from_le_bytes([mem[sub + 40], mem[sub + 41]]);
                let wait = if flags & ABSTIME != 0 {
                    timeout.saturating_sub(now)
                } else {
                    timeout
                };
                advance = advance.max(wait);
                (0u16, TAG_CLOCK, 0u64)
            }
            TAG_FD_READ | TAG_FD_WRITE => {
                let fd = u32::from_le_bytes(mem[sub + 16..sub + 20].try_into().expect("4 bytes"));
                if fd <= 2 {
                    (0, tag, 1)
                } else {
                    (errno::BADF, tag, 0)
                }
            }
            _ => return errno::INVAL,
        };
        let ev = events + i * EVENT_SIZE;
        mem[ev..ev + EVENT_SIZE].fill(0);
        mem[ev..ev + 8].copy_from_slice(&userdata.to_le_bytes());
        mem[ev + 8..ev + 10].copy_from_slice(&error.to_le_bytes());
        mem[ev + 10] = kind;
        mem[ev + 16..ev + 24].copy_from_slice(&nbytes.to_le_bytes());
    }
    state.slept.fetch_add(advance, Ordering::Relaxed);
    let out = nevents_ptr as usize;
    mem[out..out + 4].copy_from_slice(&nsubs.to_le_bytes());
    errno::SUCCESS
}
