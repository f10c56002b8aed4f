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
//! A call runs as `eth_call` does ([`evm_call`], the same as inside reth): on the block's
//! state and environment under its hard fork's rules; `BLOCKHASH` answers the recorded
//! ancestors (up to 256 back). A call still running at the invocation's deadline stops
//! and is [`Unavailable`]: the deadline is the only thing that makes an offline answer
//! anything but exact.

use std::{collections::HashMap, convert::Infallible, path::Path, str::FromStr, time::Instant};

use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use revm::{
    DatabaseRef,
    bytecode::Bytecode,
    context::{BlockEnv, CfgEnv},
    primitives::hardfork::SpecId,
    state::AccountInfo,
};
use serde::Deserialize;

use super::{
    BlockAt, CallRequest, EMPTY_CODE_HASH, StateAnswer, StateBackend, StateRequest, Unavailable,
    evm_call,
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
        let mut cfg = CfgEnv::default();
        cfg.set_spec_and_mainnet_gas_params(block.spec);
        cfg.chain_id = env.chain_id;
        let mut block_env = BlockEnv {
            number: U256::from(env.number),
            beneficiary: env.miner,
            timestamp: U256::from(env.timestamp),
            gas_limit: env.gas_limit,
            basefee: env.base_fee_per_gas,
            difficulty: U256::ZERO,
            prevrandao: Some(env.prev_randao),
            ..Default::default()
        };
        let fraction = if block.spec.is_enabled_in(SpecId::PRAGUE) {
            revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_PRAGUE
        } else {
            revm::primitives::eip4844::BLOB_BASE_FEE_UPDATE_FRACTION_CANCUN
        };
        block_env.set_blob_excess_gas_and_price(env.excess_blob_gas, fraction);
        let db = BlockDb { state: self, block };
        evm_call(db, cfg, block_env, call, deadline)
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
            StateRequest::Account(address) => {
                StateAnswer::account(account(address).map(|a| (a.balance, a.nonce, a.code_hash)))
            }
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
            StateRequest::Call(call) => self.call(block, call, deadline)?,
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
