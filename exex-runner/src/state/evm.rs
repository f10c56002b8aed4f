//! One read-only call on a local EVM (`revm`), run the way `eth_call` runs it, over any
//! `revm` database: the recorded state offline ([`super::FixtureState`]) and a node's own
//! state provider inside reth (the ExEx adapter's backend) both call [`evm_call`], so a call
//! answers the same on either.
//!
//! `eth_call`'s settings: no base fee, nonce, balance, block-gas-limit or EIP-3607 checks,
//! a gas price of zero, gas up to the runner's per-call cap. The invocation's deadline is
//! checked every 1,024 instructions; a call still running then stops and is
//! [`Unavailable`] (never recorded, retried), the only way its answer is not exact.

use std::{fmt::Display, time::Instant};

use alloy_primitives::Address;
use revm::{
    Context, DatabaseRef, InspectEvm, Inspector, MainContext,
    context::{
        BlockEnv, CfgEnv, TxEnv,
        result::{EVMError, ExecutionResult, Output},
    },
    database_interface::WrapDatabaseRef,
    handler::MainBuilder,
    interpreter::{InstructionResult, Interpreter, interpreter_types::InterpreterTypes},
    primitives::TxKind,
};

use super::{CallRequest, StateAnswer, Unavailable};

/// Runs `call` on `db` in the block environment `block` under the rules of `cfg` (its
/// spec and chain id; the checks `eth_call` skips are switched off here), stopping at
/// `deadline`.
///
/// # Errors
/// [`Unavailable`] when the deadline passes first or `db` fails (a read error is not
/// the function's fault). A call that reverts, halts or asks for less gas than its
/// intrinsic cost is an answer ([`StateAnswer::Reverted`], [`StateAnswer::Halted`]).
pub fn evm_call<DB>(
    db: DB,
    mut cfg: CfgEnv,
    block: BlockEnv,
    call: &CallRequest,
    deadline: Instant,
) -> Result<StateAnswer, Unavailable>
where
    DB: DatabaseRef,
    DB::Error: Display,
{
    if Instant::now() >= deadline {
        return Err(Unavailable::deadline());
    }
    cfg.disable_nonce_check = true;
    cfg.disable_base_fee = true;
    cfg.disable_balance_check = true;
    cfg.disable_eip3607 = true;
    cfg.disable_block_gas_limit = true;
    cfg.tx_gas_limit_cap = Some(u64::MAX);
    let chain_id = cfg.chain_id;
    let mut evm = Context::mainnet()
        .with_db(WrapDatabaseRef(db))
        .with_cfg(cfg)
        .with_block(block)
        .build_mainnet_with_inspector(Deadline::new(deadline));
    let tx = TxEnv::builder()
        .caller(call.from.unwrap_or(Address::ZERO))
        .kind(TxKind::Call(call.to))
        .data(call.data.clone())
        .value(call.value)
        .gas_limit(call.gas)
        .gas_price(0)
        .chain_id(Some(chain_id))
        .build()
        .map_err(|e| Unavailable(format!("call: {e:?}")))?;
    let outcome = evm.inspect_tx(tx);
    if evm.inspector.late {
        return Err(Unavailable::deadline());
    }
    let result = match outcome {
        Ok(outcome) => outcome.result,
        // Fees, nonces and the block's gas limit are off, so what the transaction checks
        // still refuse (gas below the intrinsic cost) is the request's own deterministic
        // failure, as a node's eth_call answers it.
        Err(EVMError::Transaction(e)) => return Ok(StateAnswer::Halted(e.to_string())),
        Err(e) => return Err(Unavailable(format!("call: {e}"))),
    };
    Ok(match result {
        ExecutionResult::Success { output, .. } => StateAnswer::Returned(match output {
            Output::Call(bytes) => bytes,
            Output::Create(bytes, _) => bytes,
        }),
        ExecutionResult::Revert { output, .. } => StateAnswer::Reverted(output),
        ExecutionResult::Halt { reason, .. } => StateAnswer::Halted(format!("{reason:?}")),
    })
}

/// Stops a call at the invocation's deadline (checked every 1,024 instructions).
struct Deadline {
    at: Instant,
    steps: u32,
    late: bool,
}

impl Deadline {
    fn new(at: Instant) -> Self {
        Self {
            at,
            steps: 0,
            late: false,
        }
    }
}

impl<CTX, INTR: InterpreterTypes> Inspector<CTX, INTR> for Deadline {
    fn step(&mut self, interp: &mut Interpreter<INTR>, _context: &mut CTX) {
        self.steps = self.steps.wrapping_add(1);
        if self.steps.is_multiple_of(1024) && Instant::now() >= self.at {
            self.late = true;
            // Any halt ends the call; `late` turns its answer into "unavailable".
            interp.halt(InstructionResult::OutOfGas);
        }
    }
}
