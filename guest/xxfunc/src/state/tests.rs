//! The SDK's side of the state ABI, natively: the length protocol, decoding and error
//! mapping, over hosts that speak the byte protocol of `docs/abi.md`.

use super::*;
use alloy_primitives::{address, b256, bytes};
use alloy_sol_types::SolError;
use std::collections::BTreeMap;
use std::sync::Mutex;

/// A host over a small in-memory chain state that follows the protocol exactly: fixed
/// answers, BUFFER_TOO_SMALL with the needed length when `out` is short, a log of every
/// call it answered.
#[derive(Default)]
struct TableHost {
    accounts: BTreeMap<[u8; 20], [u8; ACCOUNT_LEN]>,
    storage: BTreeMap<([u8; 20], [u8; 32]), [u8; 32]>,
    code: BTreeMap<[u8; 20], Vec<u8>>,
    /// request bytes → (status, answer)
    calls: BTreeMap<Vec<u8>, (i32, Vec<u8>)>,
    log: Mutex<Vec<String>>,
}

impl TableHost {
    fn record(&self, entry: String) {
        self.log.lock().expect("log lock").push(entry);
    }

    fn variable(&self, status: i32, answer: &[u8], out: &mut [u8], len: &mut u32) -> i32 {
        *len = u32::try_from(answer.len()).expect("test answers are small");
        if answer.len() > out.len() {
            return status::BUFFER_TOO_SMALL;
        }
        out[..answer.len()].copy_from_slice(answer);
        status
    }
}

impl Host for TableHost {
    fn account(&self, address: &[u8; 20], out: &mut [u8; ACCOUNT_LEN]) -> i32 {
        self.record("account".into());
        let mut absent = [0u8; ACCOUNT_LEN];
        absent[40..].copy_from_slice(EMPTY_CODE_HASH.as_slice());
        *out = *self.accounts.get(address).unwrap_or(&absent);
        status::OK
    }

    fn storage(&self, address: &[u8; 20], slot: &[u8; 32], out: &mut [u8; 32]) -> i32 {
        self.record("storage".into());
        *out = self
            .storage
            .get(&(*address, *slot))
            .copied()
            .unwrap_or_default();
        status::OK
    }

    fn code(&self, address: &[u8; 20], out: &mut [u8], len: &mut u32) -> i32 {
        self.record(format!("code cap {}", out.len()));
        let code = self.code.get(address).cloned().unwrap_or_default();
        self.variable(status::OK, &code, out, len)
    }

    fn call(&self, request: &[u8], out: &mut [u8], len: &mut u32) -> i32 {
        self.record(format!("call cap {}", out.len()));
        match self.calls.get(request) {
            Some((status, answer)) => self.variable(*status, answer, out, len),
            // An account without code: success, no data.
            None => self.variable(status::OK, &[], out, len),
        }
    }
}

/// A host that answers every call with one status and length, whatever is asked.
struct FixedHost {
    status: i32,
    len: u32,
}

impl Host for FixedHost {
    fn account(&self, _: &[u8; 20], _: &mut [u8; ACCOUNT_LEN]) -> i32 {
        self.status
    }
    fn storage(&self, _: &[u8; 20], _: &[u8; 32], _: &mut [u8; 32]) -> i32 {
        self.status
    }
    fn code(&self, _: &[u8; 20], _: &mut [u8], len: &mut u32) -> i32 {
        *len = self.len;
        self.status
    }
    fn call(&self, _: &[u8], _: &mut [u8], len: &mut u32) -> i32 {
        *len = self.len;
        self.status
    }
}

const TOKEN: Address = address!("0x5FbDB2315678afecb367f032d93F642f64180aa3");
const ALICE: Address = address!("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");

fn account_bytes(balance: U256, nonce: u64, code_hash: B256) -> [u8; ACCOUNT_LEN] {
    let mut out = [0u8; ACCOUNT_LEN];
    out[..32].copy_from_slice(&balance.to_be_bytes::<32>());
    out[32..40].copy_from_slice(&nonce.to_be_bytes());
    out[40..].copy_from_slice(code_hash.as_slice());
    out
}

fn calls(host: &Arc<TableHost>) -> Vec<String> {
    host.log.lock().expect("log lock").clone()
}

fn state_over(host: TableHost) -> (State, Arc<TableHost>) {
    let host = Arc::new(host);
    (State::with_host(host.clone()), host)
}

#[test]
fn account_fields_decode_big_endian() -> Result<(), StateError> {
    let hash = b256!("0x1111111111111111111111111111111111111111111111111111111111111111");
    let balance = U256::from(0x0102_0304_0506_0708_u64) << 128;
    let mut host = TableHost::default();
    host.accounts
        .insert(ALICE.0.0, account_bytes(balance, 0x0a0b_0c0d, hash));
    let (state, _) = state_over(host);
    let account = state.account(ALICE)?;
    assert_eq!(
        account,
        Account {
            balance,
            nonce: 0x0a0b_0c0d,
            code_hash: hash
        }
    );
    assert!(account.has_code());
    assert_eq!(state.balance(ALICE)?, balance);
    assert_eq!(state.nonce(ALICE)?, 0x0a0b_0c0d);
    assert_eq!(state.code_hash(ALICE)?, hash);
    let absent = state.account(TOKEN)?;
    assert_eq!(
        (absent.balance, absent.nonce, absent.code_hash),
        (U256::ZERO, 0, EMPTY_CODE_HASH)
    );
    assert!(!absent.has_code());
    Ok(())
}

#[test]
fn storage_takes_b256_or_u256_slots() -> Result<(), StateError> {
    let mut host = TableHost::default();
    let word = [7u8; 32];
    host.storage
        .insert((TOKEN.0.0, U256::from(2).to_be_bytes::<32>()), word);
    let (state, _) = state_over(host);
    assert_eq!(state.storage(TOKEN, U256::from(2))?, B256::from(word));
    assert_eq!(
        state.storage(TOKEN, B256::with_last_byte(2))?,
        B256::from(word)
    );
    assert_eq!(state.storage(TOKEN, U256::from(3))?, B256::ZERO);
    Ok(())
}

#[test]
fn short_answers_take_one_call_and_long_ones_one_retry_of_the_needed_size() -> Result<(), StateError>
{
    let small: Vec<u8> = (0..100u8).collect();
    let large: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    let exact = vec![0xfe; INITIAL_BUFFER];
    let mut host = TableHost::default();
    host.code.insert(TOKEN.0.0, small.clone());
    host.code.insert(ALICE.0.0, large.clone());
    host.code.insert([9; 20], exact.clone());
    let (state, host) = state_over(host);
    assert_eq!(state.code(TOKEN)?, Bytes::from(small));
    assert_eq!(calls(&host), ["code cap 4096"]);
    assert_eq!(state.code(ALICE)?, Bytes::from(large));
    assert_eq!(
        calls(&host)[1..],
        ["code cap 4096", "code cap 10000"],
        "one retry with exactly the length the host asked for"
    );
    assert_eq!(state.code(Address::repeat_byte(9))?, Bytes::from(exact));
    assert_eq!(state.code(Address::repeat_byte(8))?, Bytes::new());
    assert_eq!(calls(&host).len(), 5);
    Ok(())
}

#[test]
fn call_requests_encode_the_documented_layout() {
    let request = CallRequest::new(TOKEN, bytes!("70a08231"))
        .from(ALICE)
        .value(U256::from(0x0102))
        .gas(0x0304);
    let encoded = request.encode();
    assert_eq!(encoded.len(), CallRequest::FIXED_LEN + 4);
    assert_eq!(&encoded[..20], TOKEN.as_slice());
    assert_eq!(&encoded[20..40], ALICE.as_slice());
    assert_eq!(&encoded[40..70], &[0u8; 30]);
    assert_eq!(&encoded[70..72], &[0x01, 0x02]);
    assert_eq!(&encoded[72..80], &0x0304u64.to_be_bytes());
    assert_eq!(&encoded[80..], &[0x70, 0xa0, 0x82, 0x31]);
    let plain = CallRequest::new(TOKEN, Bytes::new()).encode();
    assert_eq!(plain.len(), CallRequest::FIXED_LEN);
    assert!(
        plain[20..].iter().all(|&b| b == 0),
        "no sender, value or gas"
    );
}

#[test]
fn calls_return_data_or_revert_data() {
    let revert_data = alloy_sol_types::Revert::from("balance").abi_encode();
    let big_revert = vec![0xab; 5000];
    let mut host = TableHost::default();
    host.calls.insert(
        CallRequest::new(TOKEN, bytes!("01")).encode(),
        (status::OK, vec![1, 2, 3]),
    );
    host.calls.insert(
        CallRequest::new(TOKEN, bytes!("02")).encode(),
        (status::REVERTED, revert_data.clone()),
    );
    host.calls.insert(
        CallRequest::new(TOKEN, bytes!("03")).from(ALICE).encode(),
        (status::REVERTED, big_revert.clone()),
    );
    host.calls.insert(
        CallRequest::new(TOKEN, bytes!("04")).encode(),
        (status::REVERTED, Vec::new()),
    );
    let (state, host) = state_over(host);
    assert_eq!(
        state.call(TOKEN, bytes!("01")),
        Ok(Bytes::from(vec![1, 2, 3]))
    );
    let err = state.call(TOKEN, bytes!("02")).expect_err("reverts");
    assert_eq!(err, StateError::Reverted(revert_data.into()));
    assert_eq!(err.revert_reason().as_deref(), Some("revert: balance"));
    assert_eq!(err.to_string(), "the call reverted (revert: balance)");
    let err = state
        .call_with(&CallRequest::new(TOKEN, bytes!("03")).from(ALICE))
        .expect_err("reverts");
    assert_eq!(err, StateError::Reverted(big_revert.into()));
    assert!(
        err.to_string()
            .starts_with("the call reverted with 5000 bytes of data starting 0xabab"),
        "{err}"
    );
    assert_eq!(err.revert_reason(), None);
    let err = state.call(TOKEN, bytes!("04")).expect_err("reverts");
    assert_eq!(err.to_string(), "the call reverted without revert data");
    let panic = StateError::Reverted(
        alloy_sol_types::Panic::from(U256::from(0x11))
            .abi_encode()
            .into(),
    );
    assert_eq!(panic.to_string(), "the call reverted (panic: code 0x11)");
    assert_eq!(
        panic.revert_reason().as_deref(),
        Some("panic: arithmetic underflow or overflow (0x11)")
    );
    let short = StateError::Reverted(bytes!("deadbeef"));
    assert_eq!(short.to_string(), "the call reverted with data 0xdeadbeef");
    // A truncated Error(string) shows as data, not as a reason.
    let mut truncated = alloy_sol_types::Revert::from("balance").abi_encode();
    truncated.truncate(70);
    let truncated = StateError::Reverted(truncated.into());
    assert!(
        truncated
            .to_string()
            .starts_with("the call reverted with 70 bytes"),
        "{truncated}"
    );
    // The 5000-byte revert took a retry with the needed length, like return data.
    assert_eq!(
        calls(&host),
        [
            "call cap 4096",
            "call cap 4096",
            "call cap 4096",
            "call cap 5000",
            "call cap 4096"
        ]
    );
    // An account without code answers with nothing.
    assert_eq!(state.call(ALICE, Bytes::new()), Ok(Bytes::new()));
}

#[test]
fn error_statuses_map_to_typed_errors() {
    let cases = [
        (status::STATE_UNAVAILABLE, StateError::Unavailable),
        (status::LIMIT_EXCEEDED, StateError::LimitExceeded),
        (status::BAD_ARGUMENT, StateError::BadArgument),
    ];
    for (code, expected) in cases {
        let state = State::with_host(FixedHost {
            status: code,
            len: 0,
        });
        assert_eq!(state.account(ALICE), Err(expected.clone()), "status {code}");
        assert_eq!(state.storage(ALICE, B256::ZERO), Err(expected.clone()));
        assert_eq!(state.code(ALICE), Err(expected.clone()));
        assert_eq!(state.call(ALICE, Bytes::new()), Err(expected));
    }
    let halted = State::with_host(FixedHost {
        status: status::HALTED,
        len: 0,
    });
    assert_eq!(halted.call(ALICE, Bytes::new()), Err(StateError::Halted));
    assert!(
        matches!(
            halted.code(ALICE),
            Err(StateError::Protocol {
                import: "state_code",
                ..
            })
        ),
        "HALTED is a call's answer only"
    );
    let reverted = State::with_host(FixedHost {
        status: status::REVERTED,
        len: 0,
    });
    assert!(matches!(
        reverted.account(ALICE),
        Err(StateError::Protocol {
            import: "state_account",
            ..
        })
    ));
    let unknown = State::with_host(FixedHost { status: 7, len: 0 });
    let err = unknown
        .storage(ALICE, B256::ZERO)
        .expect_err("unknown status");
    assert_eq!(
        err.to_string(),
        "the runner broke the state ABI in state_storage: status 7 is not an answer this import gives"
    );
    assert!(
        StateError::Unavailable
            .to_string()
            .contains("not the function's fault")
    );
}

#[test]
fn lengths_outside_the_protocol_are_protocol_errors() {
    // OK with a length past the buffer offered.
    let past = State::with_host(FixedHost {
        status: status::OK,
        len: INITIAL_BUFFER as u32 + 1,
    });
    assert_eq!(
        past.code(ALICE)
            .expect_err("length past the buffer")
            .to_string(),
        "the runner broke the state ABI in state_code: answered 4097 bytes into a buffer of 4096"
    );
    // BUFFER_TOO_SMALL for a length that fits.
    let fits = State::with_host(FixedHost {
        status: status::BUFFER_TOO_SMALL,
        len: 10,
    });
    assert!(matches!(
        fits.call(ALICE, Bytes::new()),
        Err(StateError::Protocol {
            import: "state_call",
            ..
        })
    ));
    // BUFFER_TOO_SMALL on a fixed-size answer.
    let fixed = State::with_host(FixedHost {
        status: status::BUFFER_TOO_SMALL,
        len: 100,
    });
    assert!(matches!(
        fixed.account(ALICE),
        Err(StateError::Protocol { .. })
    ));
    // (A length the allocator refuses is `TooLarge`; natively a 64-bit test machine would
    // allocate and zero 4 GiB to show it, so only wasm32 meets that path.)
}

/// A host that asks for more on every attempt: the SDK gives up after a bounded number of
/// calls instead of looping.
#[test]
fn an_ever_growing_length_stops_after_three_attempts() {
    struct Growing(Mutex<u32>);
    impl Host for Growing {
        fn account(&self, _: &[u8; 20], _: &mut [u8; ACCOUNT_LEN]) -> i32 {
            status::OK
        }
        fn storage(&self, _: &[u8; 20], _: &[u8; 32], _: &mut [u8; 32]) -> i32 {
            status::OK
        }
        fn code(&self, _: &[u8; 20], out: &mut [u8], len: &mut u32) -> i32 {
            *self.0.lock().expect("lock") += 1;
            *len = u32::try_from(out.len()).expect("small") + 1;
            status::BUFFER_TOO_SMALL
        }
        fn call(&self, _: &[u8], out: &mut [u8], len: &mut u32) -> i32 {
            self.code(&[0; 20], out, len)
        }
    }
    let host = Arc::new(Growing(Mutex::new(0)));
    let state = State::with_host(host.clone());
    let err = state.code(ALICE).expect_err("never settles");
    assert!(matches!(err, StateError::Protocol { .. }), "{err}");
    assert_eq!(*host.0.lock().expect("lock"), 3);
}

#[test]
fn without_a_host_every_read_says_so() {
    let state = State::imports();
    assert_eq!(state.balance(ALICE), Err(StateError::NoHost));
    assert_eq!(state.storage(ALICE, B256::ZERO), Err(StateError::NoHost));
    assert_eq!(state.code(ALICE), Err(StateError::NoHost));
    assert_eq!(state.call(ALICE, Bytes::new()), Err(StateError::NoHost));
    assert!(format!("{state:?}").contains("no host"));
}
