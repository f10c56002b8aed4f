//! [`FixtureState`]: state offline, from a recorded chain's `fixtures/state/` (written by
//! `scripts/record-fixtures`), with calls run on a local EVM (`revm`).
//!
//! The directory holds one file per committed block, `<number>-<hash8>.json`:
//!
//! ```json
//! {"block": {"number": 5, "hash": "0x…", "parentHash": "0x…", "timestamp": 1700000060,
//!            "miner": "0x…", "gasLimit": 30000000, "baseFeePerGas": 591534124,
//!            "excessBlobGas": 0, "prevRandao": "0x…", "chainId": 31337, "hardFork": "Prague"},
//!  "accounts": {"0x…": {"balance": "0x…", "nonce": 1, "codeHash": "0x…",
//!                       "storage": {"0x<32 bytes>": "0x…"}}}}
//! ```
//!
//! — the whole state after that block (accounts absent from it are empty, slots absent
//! are zero) — and `codes.json`, every contract's code by its hash. A read at a block the
//! directory does not have is [`Unavailable`], as a pruned block is for a node.
//!
//! A call runs as `eth_call` does: on the block's state and environment, without the
//! base fee, the nonce check, the balance check or EIP-3607, with gas up to the runner's
//! per-call cap; `BLOCKHASH` answers the recorded ancestors (up to 256 back). A call
//! that is still running at the invocation's deadline stops and is [`Unavailable`]:
//! the deadline is the only thing that makes an offline answer anything but exact.

use std::{collections::HashMap, convert::Infallible, path::Path, str::FromStr, time::Instant};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use revm::{
    Context, DatabaseRef, InspectEvm, Inspector, MainContext,
    bytecode::Bytecode,
    context::{
        TxEnv,
        result::{EVMError, ExecutionResult, Output},
    },
    database_interface::WrapDatabaseRef,
    handler::MainBuilder,
    interpreter::{InstructionResult, Interpreter, interpreter_types::InterpreterTypes},
    primitives::{TxKind, hardfork::SpecId},
    state::AccountInfo,
};
use serde::Deserialize;

use super::{
    BlockAt, CallRequest, EMPTY_CODE_HASH, StateAnswer, StateBackend, StateRequest, Unavailable,
};
use crate::error::{Result, RunnerError};

/// State offline: every recorded block's state, in memory.
pub struct FixtureState {
    describe: String,
    blocks: HashMap<B256, BlockState>,
    codes: HashMap<B256, Bytecode>,
}

impl std::fmt::Debug for FixtureState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FixtureState")
            .field("dir", &self.describe)
            .field("blocks", &self.blocks.len())
            .finish_non_exhaustive()
    }
}

/// One block's recorded environment and state.
struct BlockState {
    env: BlockEnvFile,
    spec: SpecId,
    accounts: HashMap<Address, AccountFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    block: BlockEnvFile,
    accounts: HashMap<Address, AccountFile>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct BlockEnvFile {
    number: u64,
    hash: B256,
    parent_hash: B256,
    timestamp: u64,
    miner: Address,
    gas_limit: u64,
    base_fee_per_gas: u64,
    #[serde(default)]
    excess_blob_gas: u64,
    prev_randao: B256,
    chain_id: u64,
    hard_fork: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AccountFile {
    balance: U256,
    nonce: u64,
    #[serde(default)]
    code_hash: Option<B256>,
    #[serde(default)]
    storage: HashMap<B256, U256>,
}

/// The EVM rules of a recorded hard-fork name (case does not matter). Blob-parameter-only
/// forks (`Bpo1`, ...) change no EVM rule and run as the fork before them.
fn spec_of(name: &str) -> Option<SpecId> {
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("bpo") {
        return Some(SpecId::OSAKA);
    }
    let mut canonical = lower;
    if let Some(first) = canonical.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    SpecId::from_str(&canonical).ok()
}

impl FixtureState {
    /// Loads every block of the recorded state in `dir`.
    ///
    /// # Errors
    /// [`RunnerError::Fixture`] when `dir` or a file in it cannot be read,
    /// [`RunnerError::StateFixture`] naming the file when one does not parse, names an
    /// unknown hard fork, or refers to code `codes.json` lacks.
    pub fn open(dir: &Path) -> Result<Self> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| RunnerError::Fixture { path, source }
        };
        let bad = |path: &Path, reason: String| RunnerError::StateFixture {
            path: path.to_path_buf(),
            reason,
        };
        let entries = std::fs::read_dir(dir).map_err(io(dir))?;
        let codes_path = dir.join("codes.json");
        let bytes = std::fs::read(&codes_path).map_err(io(&codes_path))?;
        let codes: HashMap<B256, Bytes> =
            serde_json::from_slice(&bytes).map_err(|e| bad(&codes_path, e.to_string()))?;
        let mut codes_by_hash = HashMap::with_capacity(codes.len());
        for (hash, code) in codes {
            if keccak256(&code) != hash {
                let reason = format!("the code under {hash} does not hash to it");
                return Err(bad(&codes_path, reason));
            }
            codes_by_hash.insert(hash, Bytecode::new_raw(code));
        }
        let mut blocks = HashMap::new();
        for entry in entries {
            let path = entry.map_err(io(dir))?.path();
            let is_block = path.extension().is_some_and(|e| e == "json")
                && path.file_name().is_some_and(|n| n != "codes.json");
            if !is_block {
                continue;
            }
            let bytes = std::fs::read(&path).map_err(io(&path))?;
            let file: StateFile =
                serde_json::from_slice(&bytes).map_err(|e| bad(&path, e.to_string()))?;
            let spec = spec_of(&file.block.hard_fork).ok_or_else(|| {
                bad(
                    &path,
                    format!("unknown hard fork {:?}", file.block.hard_fork),
                )
            })?;
            if let Some((address, _)) = file.accounts.iter().find(|(_, a)| {
                a.code_hash
                    .is_some_and(|h| h != EMPTY_CODE_HASH && !codes_by_hash.contains_key(&h))
            }) {
                let reason = format!("the code of {address} is not in codes.json");
                return Err(bad(&path, reason));
            }
            blocks.insert(
                file.block.hash,
                BlockState {
                    env: file.block,
                    spec,
                    accounts: file.accounts,
                },
            );
        }
        Ok(Self {
            describe: format!("offline {} ({} blocks)", dir.display(), blocks.len()),
            blocks,
            codes: codes_by_hash,
        })
    }

    /// How many blocks it has the state of.
    pub fn blocks(&self) -> usize {
        self.blocks.len()
    }

    fn call(
        &self,
        block: &BlockState,
        call: &CallRequest,
        deadline: Instant,
    ) -> Result<StateAnswer, Unavailable> {
        let env = &block.env;
        let db = WrapDatabaseRef(BlockDb { state: self, block });
        let chain_id = env.chain_id;
        let mut evm = Context::mainnet()
            .with_db(db)
            .modify_cfg_chained(|cfg| {
                cfg.spec = block.spec;
                cfg.chain_id = chain_id;
                // eth_call's settings.
                cfg.disable_nonce_check = true;
                cfg.disable_base_fee = true;
                cfg.disable_balance_check = true;
                cfg.disable_eip3607 = true;
                cfg.disable_block_gas_limit = true;
                cfg.tx_gas_limit_cap = Some(u64::MAX);
            })
            .modify_block_chained(|b| {
                b.number = U256::from(env.number);
                b.beneficiary = env.miner;
                b.timestamp = U256::from(env.timestamp);
                b.gas_limit = env.gas_limit;
                b.basefee = env.base_fee_per_gas;
                b.difficulty = U256::ZERO;
                b.prevrandao = Some(env.prev_randao);
                let fraction = if block.spec.is_enabled_in(SpecId::PRAGUE) {
                    revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE
                } else {
                    revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN
                };
                b.set_blob_excess_gas_and_price(env.excess_blob_gas, fraction);
            })
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
            .map_err(|e| Unavailable(format!("offline call: {e:?}")))?;
        let outcome = evm.inspect_tx(tx);
        if evm.inspector.late {
            return Err(Unavailable::deadline());
        }
        let result = match outcome {
            Ok(outcome) => outcome.result,
            // Fees, nonces and the block's gas limit are off, so what the transaction
            // checks still refuse (gas below the intrinsic cost) is the request's own
            // deterministic failure, as a node's eth_call answers it.
            Err(EVMError::Transaction(e)) => return Ok(StateAnswer::Halted(e.to_string())),
            Err(e) => return Err(Unavailable(format!("offline call: {e}"))),
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
}

impl StateBackend for FixtureState {
    fn describe(&self) -> String {
        self.describe.clone()
    }

    fn read(
        &self,
        at: &BlockAt,
        request: &StateRequest,
        deadline: Instant,
    ) -> Result<StateAnswer, Unavailable> {
        let block = self.blocks.get(&at.hash).ok_or_else(|| {
            Unavailable(format!(
                "offline state has no block {} {}",
                at.number, at.hash
            ))
        })?;
        let account = |address: &Address| block.accounts.get(address);
        Ok(match request {
            StateRequest::Account(address) => match account(address) {
                Some(a) => StateAnswer::Account {
                    balance: a.balance,
                    nonce: a.nonce,
                    code_hash: a.code_hash.unwrap_or(EMPTY_CODE_HASH),
                },
                None => StateAnswer::Account {
                    balance: U256::ZERO,
                    nonce: 0,
                    code_hash: EMPTY_CODE_HASH,
                },
            },
            StateRequest::Storage(address, slot) => StateAnswer::Word(
                account(address)
                    .and_then(|a| a.storage.get(slot))
                    .map_or(B256::ZERO, |v| B256::from(*v)),
            ),
            StateRequest::Code(address) => StateAnswer::Code(
                account(address)
                    .and_then(|a| a.code_hash)
                    .and_then(|h| self.codes.get(&h))
                    .map_or_else(Bytes::new, |c| c.original_bytes()),
            ),
            StateRequest::Call(call) => {
                if Instant::now() >= deadline {
                    return Err(Unavailable::deadline());
                }
                self.call(block, call, deadline)?
            }
        })
    }
}

/// One block's state as the EVM reads it.
struct BlockDb<'a> {
    state: &'a FixtureState,
    block: &'a BlockState,
}

impl DatabaseRef for BlockDb<'_> {
    type Error = Infallible;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Infallible> {
        Ok(self.block.accounts.get(&address).map(|a| {
            let code_hash = a.code_hash.unwrap_or(EMPTY_CODE_HASH);
            AccountInfo {
                balance: a.balance,
                nonce: a.nonce,
                code_hash,
                code: self.state.codes.get(&code_hash).cloned(),
                ..Default::default()
            }
        }))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Infallible> {
        Ok(self
            .state
            .codes
            .get(&code_hash)
            .cloned()
            .unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Infallible> {
        Ok(self
            .block
            .accounts
            .get(&address)
            .and_then(|a| a.storage.get(&B256::from(index)))
            .copied()
            .unwrap_or_default())
    }

    /// The recorded ancestor at `number` (zero when it is not recorded, the block itself or
    /// later, or more than 256 back: what `BLOCKHASH` answers for those).
    fn block_hash_ref(&self, number: u64) -> Result<B256, Infallible> {
        let mut block = self.block;
        if number >= block.env.number || block.env.number - number > 256 {
            return Ok(B256::ZERO);
        }
        while block.env.number > number + 1 {
            match self.state.blocks.get(&block.env.parent_hash) {
                Some(parent) => block = parent,
                None => return Ok(B256::ZERO),
            }
        }
        Ok(block.env.parent_hash)
    }
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
