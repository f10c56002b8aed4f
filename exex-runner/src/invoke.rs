//! One invocation: a fresh instance from a cached `InstancePre`, `_start`
//! with the envelope on stdin, captured output, and a failure reason when the
//! guest trapped, exited non-zero, ran out of time, memory or fuel, or wrote
//! past an output cap.

use std::time::{Duration, Instant};

use bytes::Bytes;
use wasmtime::{Store, Trap};
use wasmtime_wasi::I32Exit;
use xxfunc_api::InvocationStatus;

use crate::{
    config::Limits,
    engine::WasmEngine,
    host_calls::UNSUPPORTED_CALLS,
    module_cache::LoadedModule,
    sandbox::{GuestContext, GuestState, UNIMPLEMENTED},
    state::{StateAnswer, StateRequest, StateScope},
};

/// What one invocation produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Ok, or failed with a reason.
    pub status: InvocationStatus,
    /// The guest's stdout (at most the cap).
    pub stdout: Vec<u8>,
    /// The guest's stderr (at most the cap).
    pub stderr: Vec<u8>,
    /// Wall time of the whole invocation (context, instantiation, run, capture).
    pub duration: Duration,
    /// Of which inside `_start` (guest code and the WASI calls it makes).
    pub guest: Duration,
    /// Set when a state read could not be answered (backend down, pruned state,
    /// deadline): whatever the status says, the outcome is not the function's, and the
    /// runner runs the event again later instead of recording it.
    pub unavailable: Option<String>,
    /// The distinct state reads answered, with their answers: stored with a commit's
    /// outcome, so a later revert of the block answers them identically.
    pub reads: Vec<(StateRequest, StateAnswer)>,
}

impl Outcome {
    /// Whether the invocation succeeded.
    pub fn is_ok(&self) -> bool {
        matches!(self.status, InvocationStatus::Ok)
    }

    /// The failure reason, if it failed.
    pub fn reason(&self) -> Option<&str> {
        match &self.status {
            InvocationStatus::Ok => None,
            InvocationStatus::Failed { reason } => Some(reason),
        }
    }
}

/// The per-event inputs of an invocation.
#[derive(Clone, Copy, Debug)]
pub struct EventInput<'a> {
    /// The encoded envelope (stdin).
    pub envelope: &'a Bytes,
    /// Block timestamp (the guest's clock).
    pub timestamp: u64,
    /// Block hash (seeds the guest's random source together with the module hash).
    pub block_hash: &'a [u8; 32],
    /// Where its state reads go, at which block (`None`: they answer
    /// `STATE_UNAVAILABLE`).
    pub state: Option<&'a StateScope>,
}

impl WasmEngine {
    /// Runs `module` once on a fresh instance with `input`. Never fails: every
    /// problem is a failed [`Outcome`] with its reason.
    pub fn invoke(&self, module: &LoadedModule, input: EventInput<'_>) -> Outcome {
        let started = Instant::now();
        let limits = self.limits();
        let (state, captured) = GuestState::new(GuestContext {
            envelope: input.envelope.clone(),
            timestamp: input.timestamp,
            block_hash: input.block_hash,
            module_hash: module.hash().as_bytes(),
            memory_cap: limits.memory_bytes,
            stdout_cap: limits.stdout_bytes,
            stderr_cap: limits.stderr_bytes,
            state: input.state.cloned(),
            state_limits: limits.state,
            deadline: started + limits.wall_time,
        });
        let mut store = Store::new(self.engine(), state);
        store.limiter(|s| s as &mut dyn wasmtime::ResourceLimiter);
        store.set_epoch_deadline(deadline_ticks(limits.wall_time));
        store.epoch_deadline_trap();
        if let Some(fuel) = limits.fuel {
            store
                .set_fuel(fuel)
                .expect("fuel is enabled on the engine whenever a fuel limit is set");
        }
        let mut guest = Duration::ZERO;
        let result = module.pre().instantiate(&mut store).and_then(|instance| {
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            let t = Instant::now();
            let r = start.call(&mut store, ());
            guest = t.elapsed();
            r
        });
        let memory_denied = store.data().memory_denied;
        let unimplemented = store.data().unimplemented_calls;
        let unavailable = store.data_mut().host.unavailable.take();
        let reads = std::mem::take(&mut store.data_mut().host.reads);
        drop(store);
        let calls: [(&'static str, u64); UNIMPLEMENTED.len()] =
            std::array::from_fn(|i| (UNIMPLEMENTED[i], unimplemented[i]));
        UNSUPPORTED_CALLS.record_and_log(module.hash(), &calls);
        let stdout = captured.stdout.contents();
        let stderr = captured.stderr.contents();
        let status = classify(result, memory_denied, stdout.len(), stderr.len(), limits);
        let stdout = stdout[..stdout.len().min(limits.stdout_bytes)].to_vec();
        let stderr = stderr[..stderr.len().min(limits.stderr_bytes)].to_vec();
        Outcome {
            status,
            stdout,
            stderr,
            duration: started.elapsed(),
            guest,
            unavailable,
            reads,
        }
    }
}

fn deadline_ticks(wall: Duration) -> u64 {
    let tick = Limits::EPOCH_TICK.as_nanos().max(1);
    // +1: the deadline counts ticks from now, and the first may come at once.
    u64::try_from(wall.as_nanos().div_ceil(tick))
        .unwrap_or(u64::MAX)
        .saturating_add(1)
}

fn classify(
    result: wasmtime::Result<()>,
    memory_denied: bool,
    stdout_len: usize,
    stderr_len: usize,
    limits: &Limits,
) -> InvocationStatus {
    let failed = |reason: String| InvocationStatus::Failed { reason };
    if stdout_len > limits.stdout_bytes {
        return failed(format!(
            "stdout exceeded {} cap",
            human_bytes(limits.stdout_bytes)
        ));
    }
    if stderr_len > limits.stderr_bytes {
        return failed(format!(
            "stderr exceeded {} cap",
            human_bytes(limits.stderr_bytes)
        ));
    }
    let err = match result {
        Ok(()) => return InvocationStatus::Ok,
        Err(err) => err,
    };
    if let Some(exit) = err.downcast_ref::<I32Exit>() {
        return match exit.0 {
            0 => InvocationStatus::Ok,
            code => failed(format!("exited with code {code}")),
        };
    }
    if memory_denied {
        return failed(format!(
            "memory limit of {} exceeded",
            human_bytes(limits.memory_bytes)
        ));
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => failed(format!(
            "wall-time limit of {} exceeded",
            human_duration(limits.wall_time)
        )),
        Some(Trap::OutOfFuel) => failed(format!(
            "fuel limit of {} exhausted",
            limits.fuel.unwrap_or_default()
        )),
        Some(trap) => failed(format!("trapped: {trap}")),
        None => failed(format!("failed: {}", err.root_cause())),
    }
}

/// `1 MiB`, `256 KiB`, `100 B`.
pub(crate) fn human_bytes(n: usize) -> String {
    if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
        format!("{} MiB", n >> 20)
    } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

/// `1s`, `250ms`.
pub(crate) fn human_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_well() {
        assert_eq!(human_bytes(1 << 20), "1 MiB");
        assert_eq!(human_bytes(256 << 10), "256 KiB");
        assert_eq!(human_bytes(100), "100 B");
        assert_eq!(human_duration(Duration::from_secs(1)), "1s");
        assert_eq!(human_duration(Duration::from_millis(250)), "250ms");
        assert!(deadline_ticks(Duration::from_secs(1)) >= 200);
    }
}
