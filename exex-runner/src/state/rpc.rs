//! [`RpcState`]: state from a node's JSON-RPC, at the event's block by hash (EIP-1898
//! block parameters: `{"blockHash": ..., "requireCanonical": false}`, so a reverted
//! block's state is still asked for by its own hash).
//!
//! | request | JSON-RPC |
//! |---|---|
//! | account | `eth_getBalance`, `eth_getTransactionCount`, `eth_getCode` (hashed), at once |
//! | storage | `eth_getStorageAt` |
//! | code | `eth_getCode` |
//! | call | `eth_call` with `to`, `from`, `value`, `gas`, `input` |
//!
//! A node's error is sorted into the deterministic answers (a call that reverted, with
//! its data; one that halted: out of gas, invalid opcode, ...) and everything else, which
//! is [`Unavailable`]: an unknown or pruned block, a node that is down or slow, an answer
//! that does not parse. Unavailable is retried; a deterministic answer is final, so only
//! errors that say so are taken as one.

use std::time::Instant;

use alloy_primitives::{B256, Bytes, U256, keccak256};
use serde_json::{Value, json};

use super::{
    BlockAt, CallRequest, EMPTY_CODE_HASH, StateAnswer, StateBackend, StateRequest, Unavailable,
};
use crate::{
    error::Result,
    source::{Deadline, RpcClient},
};

/// State over a node's JSON-RPC.
///
/// A thread's first read goes through one shared client (its pooled connections outlive
/// the invocation threads of a batch); from its second read on, a thread asks through a
/// client of its own, driven on that thread, since a shared runtime's worker costs two
/// thread wake-ups per read (see `state.storage.rpc` in BENCHMARKS.md).
pub struct RpcState {
    client: RpcClient,
}

thread_local! {
    /// This thread's clients, by URL (`None`: one read made, through the shared client).
    static CLIENTS: std::cell::RefCell<Vec<(String, Option<std::rc::Rc<RpcClient>>)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl std::fmt::Debug for RpcState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcState")
            .field("url", &self.client.url())
            .finish_non_exhaustive()
    }
}

impl RpcState {
    /// A backend asking the node at `url` (nothing is sent until the first read).
    ///
    /// # Errors
    /// When the HTTP client or its runtime cannot be built.
    pub fn new(url: &str) -> Result<Self> {
        Ok(Self {
            client: RpcClient::new(url)?,
        })
    }
}

impl RpcState {
    /// The calling thread's own client for this node, from its second read on (`None`:
    /// use the shared one).
    fn local(&self) -> Option<std::rc::Rc<RpcClient>> {
        let url = self.client.url();
        CLIENTS.with(|clients| {
            let mut clients = clients.borrow_mut();
            let Some((_, client)) = clients.iter_mut().find(|(u, _)| u == url) else {
                clients.push((url.to_string(), None));
                return None;
            };
            if client.is_none() {
                *client = RpcClient::on_this_thread(url).ok().map(std::rc::Rc::new);
            }
            client.clone()
        })
    }
}

impl From<Deadline> for Unavailable {
    fn from(_: Deadline) -> Self {
        Unavailable::deadline()
    }
}

impl StateBackend for RpcState {
    fn describe(&self) -> String {
        format!("json-rpc {}", self.client.url())
    }

    fn read(
        &self,
        at: &BlockAt,
        request: &StateRequest,
        deadline: Instant,
    ) -> Result<StateAnswer, Unavailable> {
        let block = json!({"blockHash": at.hash, "requireCanonical": false});
        let local = self.local();
        let c = local.as_deref().unwrap_or(&self.client);
        match request {
            StateRequest::Account(address) => {
                let (balance, nonce, code) = c.until(deadline, async {
                    tokio::join!(
                        c.request("eth_getBalance", json!([address, block])),
                        c.request("eth_getTransactionCount", json!([address, block])),
                        c.request("eth_getCode", json!([address, block])),
                    )
                })?;
                let code = data("eth_getCode", answer("eth_getCode", at, code)?)?;
                Ok(StateAnswer::Account {
                    balance: quantity("eth_getBalance", answer("eth_getBalance", at, balance)?)?,
                    nonce: quantity(
                        "eth_getTransactionCount",
                        answer("eth_getTransactionCount", at, nonce)?,
                    )?
                    .try_into()
                    .map_err(|_| Unavailable("eth_getTransactionCount: nonce past u64".into()))?,
                    code_hash: if code.is_empty() {
                        EMPTY_CODE_HASH
                    } else {
                        keccak256(&code)
                    },
                })
            }
            StateRequest::Storage(address, slot) => {
                let reply = c.until(
                    deadline,
                    c.request("eth_getStorageAt", json!([address, slot, block])),
                )?;
                let word = data("eth_getStorageAt", answer("eth_getStorageAt", at, reply)?)?;
                if word.len() > 32 {
                    return Err(Unavailable(format!(
                        "eth_getStorageAt answered {} bytes",
                        word.len()
                    )));
                }
                let mut out = B256::ZERO;
                out[32 - word.len()..].copy_from_slice(&word);
                Ok(StateAnswer::Word(out))
            }
            StateRequest::Code(address) => {
                let reply = c.until(deadline, c.request("eth_getCode", json!([address, block])))?;
                Ok(StateAnswer::Code(data(
                    "eth_getCode",
                    answer("eth_getCode", at, reply)?,
                )?))
            }
            StateRequest::Call(call) => {
                let reply = c.until(
                    deadline,
                    c.request("eth_call", json!([call_object(call), block])),
                )?;
                match reply.map_err(|e| Unavailable(format!("eth_call: {e}")))? {
                    Ok(output) => Ok(StateAnswer::Returned(data("eth_call", output)?)),
                    Err(error) => call_error(at, &error),
                }
            }
        }
    }
}

fn call_object(call: &CallRequest) -> Value {
    let mut object = json!({
        "to": call.to,
        "gas": format!("{:#x}", call.gas),
        "input": call.data,
    });
    if let Some(from) = call.from {
        object["from"] = json!(from);
    }
    if !call.value.is_zero() {
        object["value"] = json!(call.value);
    }
    object
}

/// A reply's result, or [`Unavailable`] for a transport failure or any node error (outside
/// `eth_call`, a node error is never a deterministic answer).
fn answer(
    method: &str,
    at: &BlockAt,
    reply: std::result::Result<std::result::Result<Value, Value>, String>,
) -> Result<Value, Unavailable> {
    match reply {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Unavailable(format!(
            "{method} at block {} ({}): {}",
            at.number,
            at.hash,
            message(&error)
        ))),
        Err(transport) => Err(Unavailable(transport)),
    }
}

fn message(error: &Value) -> String {
    error
        .get("message")
        .and_then(Value::as_str)
        .map_or_else(|| error.to_string(), str::to_string)
}

fn data(method: &str, value: Value) -> Result<Bytes, Unavailable> {
    serde_json::from_value::<Bytes>(value.clone())
        .map_err(|_| Unavailable(format!("{method}: {value} is not hex data")))
}

fn quantity(method: &str, value: Value) -> Result<U256, Unavailable> {
    serde_json::from_value::<U256>(value.clone())
        .map_err(|_| Unavailable(format!("{method}: {value} is not a quantity")))
}

/// Substrings of an `eth_call` error message that mean the call itself failed without
/// revert data, deterministically (geth, reth and anvil spell these).
const HALTS: &[&str] = &[
    "out of gas",
    "outofgas",
    "intrinsic gas",
    "gas too low",
    "gasfloormorethangaslimit",
    "gas uint64 overflow",
    "invalid opcode",
    "invalidfeopcode",
    "opcodenotfound",
    "stack overflow",
    "stack underflow",
    "stackoverflow",
    "stackunderflow",
    "invalid jump",
    "invalidjump",
    "write protection",
    "statechangeduringstaticcall",
    "precompile",
    "return data out of bounds",
    "outofoffset",
    "max code size",
    "create collision",
    "createcollision",
    "nonce overflow",
    "call too deep",
    "calltoodeep",
    "insufficient funds",
    "insufficient balance",
    "lackoffundforgaslimit",
];

/// An `eth_call` error: reverted (with data), halted, or [`Unavailable`].
fn call_error(at: &BlockAt, error: &Value) -> Result<StateAnswer, Unavailable> {
    let text = message(error);
    let lower = text.to_ascii_lowercase();
    // geth, reth and anvil answer a revert with code 3 and the revert data; a revert
    // without data is "execution reverted" with no data (or "0x").
    let code = error.get("code").and_then(Value::as_i64);
    if code == Some(3) || lower.contains("revert") {
        let data = match error.get("data") {
            Some(Value::String(hex)) => hex.parse::<Bytes>().unwrap_or_default(),
            _ => Bytes::new(),
        };
        return Ok(StateAnswer::Reverted(data));
    }
    if HALTS.iter().any(|h| lower.contains(h)) {
        return Ok(StateAnswer::Halted(text));
    }
    Err(Unavailable(format!(
        "eth_call at block {} ({}): {text}",
        at.number, at.hash
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> BlockAt {
        BlockAt {
            number: 7,
            hash: B256::repeat_byte(7),
        }
    }

    #[test]
    fn call_errors_are_sorted() {
        assert_eq!(
            call_error(
                &at(),
                &json!({"code": 3, "message": "execution reverted: no", "data": "0x08c379a0"})
            ),
            Ok(StateAnswer::Reverted(Bytes::from_static(&[
                0x08, 0xc3, 0x79, 0xa0
            ])))
        );
        assert_eq!(
            call_error(
                &at(),
                &json!({"code": -32000, "message": "execution reverted"})
            ),
            Ok(StateAnswer::Reverted(Bytes::new()))
        );
        assert!(matches!(
            call_error(
                &at(),
                &json!({"code": -32003, "message": "Out of gas: gas required exceeds allowance: 21000"})
            ),
            Ok(StateAnswer::Halted(_))
        ));
        assert!(matches!(
            call_error(
                &at(),
                &json!({"code": -32000, "message": "EVM error InvalidFEOpcode"})
            ),
            Ok(StateAnswer::Halted(_))
        ));
        let unknown = call_error(
            &at(),
            &json!({"code": -32001, "message": "block not found"}),
        );
        assert!(
            matches!(&unknown, Err(Unavailable(m)) if m.contains("block 7") && m.contains("block not found")),
            "{unknown:?}"
        );
    }

    #[test]
    fn a_url_that_is_not_http_is_refused_at_once() {
        for url in ["not a url", "ftp://127.0.0.1/", "127.0.0.1:8545"] {
            let err = RpcState::new(url).unwrap_err().to_string();
            assert!(
                err.contains("not an http:// or https:// URL"),
                "{url}: {err}"
            );
        }
        assert!(RpcState::new("http://127.0.0.1:8545").is_ok());
    }

    #[test]
    fn call_objects_name_only_what_is_set() {
        let call = CallRequest {
            to: alloy_primitives::Address::repeat_byte(1),
            from: None,
            value: U256::ZERO,
            gas: 50_000_000,
            data: Bytes::from_static(&[1, 2]),
        };
        let object = call_object(&call);
        assert_eq!(object["gas"], "0x2faf080");
        assert_eq!(object["input"], "0x0102");
        assert!(object.get("from").is_none() && object.get("value").is_none());
    }
}
