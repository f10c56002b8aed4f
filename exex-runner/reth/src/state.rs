//! [`NodeState`]: functions' chain-state reads (`event.state()`, docs/abi.md §8) answered
//! from the node's own database, without JSON-RPC: accounts, storage and code from the
//! state provider at the event's block hash, calls on the core's EVM call
//! ([`xxfunc_runner::state::evm_call`]) over that state provider, in the block's
//! environment as the node's EVM configuration builds it.
//!
//! A block the node cannot give the state of (pruned history, an orphaned block no longer
//! held in memory, a database error) answers [`Unavailable`]: the core then keeps the
//! function at its cursor and retries; nothing is recorded.

use std::time::Instant;

use alloy_primitives::{B256, Bytes};
use reth_ethereum::{
    chainspec::ChainSpec,
    evm::{EthEvmConfig, primitives::ConfigureEvm, revm::database::StateProviderDatabase},
    provider::{HeaderProvider, ProviderError, StateProviderFactory},
};
use xxfunc_runner::state::{
    BlockAt, StateAnswer, StateBackend, StateRequest, Unavailable, evm_call,
};

/// State reads from the node's provider.
#[derive(Debug)]
pub(crate) struct NodeState<P> {
    provider: P,
    evm: EthEvmConfig<ChainSpec>,
}

impl<P> NodeState<P> {
    /// Reads through `provider`, with block environments from `evm`.
    pub(crate) fn new(provider: P, evm: EthEvmConfig<ChainSpec>) -> Self {
        Self { provider, evm }
    }
}

/// Why the node could not answer at `at`.
fn unavailable(at: &BlockAt, e: impl std::fmt::Display) -> Unavailable {
    Unavailable(format!(
        "node state at block {} {}: {e}",
        at.number, at.hash
    ))
}

impl<P> StateBackend for NodeState<P>
where
    P: StateProviderFactory
        + HeaderProvider<Header = alloy_consensus::Header>
        + Send
        + Sync
        + std::fmt::Debug
        + 'static,
{
    fn describe(&self) -> String {
        "node (reth provider)".into()
    }

    fn read(
        &self,
        at: &BlockAt,
        request: &StateRequest,
        deadline: Instant,
    ) -> Result<StateAnswer, Unavailable> {
        if Instant::now() >= deadline {
            return Err(Unavailable::deadline());
        }
        let read = |e: ProviderError| unavailable(at, e);
        let state = self.provider.state_by_block_hash(at.hash).map_err(read)?;
        Ok(match request {
            StateRequest::Account(address) => StateAnswer::account(
                state
                    .basic_account(address)
                    .map_err(read)?
                    .map(|a| (a.balance, a.nonce, a.bytecode_hash)),
            ),
            StateRequest::Storage(address, slot) => StateAnswer::Word(B256::from(
                state
                    .storage(*address, *slot)
                    .map_err(read)?
                    .unwrap_or_default(),
            )),
            StateRequest::Code(address) => StateAnswer::Code(
                state
                    .account_code(address)
                    .map_err(read)?
                    .map_or_else(Bytes::new, |code| code.original_bytes()),
            ),
            StateRequest::Call(call) => {
                let header = self
                    .provider
                    .header(at.hash)
                    .map_err(read)?
                    .ok_or_else(|| unavailable(at, "no header"))?;
                let env = self.evm.evm_env(&header).map_err(|e| unavailable(at, e))?;
                let db = StateProviderDatabase::new(state);
                evm_call(db, env.cfg_env, env.block_env, call, deadline)?
            }
        })
    }
}
