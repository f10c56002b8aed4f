//! The outcome push (`POST /v1/runners/{runner}/outcomes`) and the outputs stream
//! (`GET /v1/functions/{name}/outputs`, JSON long poll and Server-Sent Events).

use alloy_primitives::B256;
use xxfunc_api::{
    BlockRef, EventKind, FunctionId, InvocationStatus, ModuleHash, codes,
    outputs::{Bytes64, OutcomeEntry, OutcomesAck, OutcomesPage},
};

use crate::support::{Backend, Gateway, TOKEN, error_code, module, raw};

/// A runner's outcome log of one function, numbered as the runner numbers it.
pub struct Log {
    pub id: FunctionId,
    pub hash: ModuleHash,
    pub outcomes: Vec<OutcomeEntry>,
    next_item: u64,
}

impl Log {
    pub fn new(id: FunctionId, hash: ModuleHash) -> Self {
        Self {
            id,
            hash,
            outcomes: Vec::new(),
            next_item: 1,
        }
    }

    pub fn push(&mut self, kind: EventKind, n: u64, branch: u8, stdout: &[u8]) {
        let mut o = OutcomeEntry {
            seq: self.outcomes.len() as u64 + 1,
            kind,
            block: block(n, branch),
            hash: self.hash,
            status: InvocationStatus::Ok,
            duration_us: 3,
            at_ms: n,
            stdout: Bytes64(stdout.to_vec()),
            stderr: Bytes64::default(),
            first_item: self.next_item,
            item_count: 0,
        };
        o.item_count = o.count_records();
        self.next_item += u64::from(o.item_count);
        self.outcomes.push(o);
    }

    /// A commit of block `n` with `records` JSON lines.
    pub fn commit(&mut self, n: u64, branch: u8, records: usize) {
        let out: String = (0..records)
            .map(|i| format!("{{\"n\":{n},\"b\":{branch},\"i\":{i}}}\n"))
            .collect();
        self.push(EventKind::Commit, n, branch, out.as_bytes());
    }

    #[allow(dead_code)]
    pub fn revert(&mut self, n: u64, branch: u8, records: usize) {
        let out: String = (0..records)
            .map(|i| format!("{{\"undo\":{n},\"b\":{branch},\"i\":{i}}}\n"))
            .collect();
        self.push(EventKind::Revert, n, branch, out.as_bytes());
    }

    pub fn page(&self, seqs: std::ops::RangeInclusive<u64>) -> OutcomesPage {
        OutcomesPage {
            id: self.id.clone(),
            outcomes: self
                .outcomes
                .iter()
                .filter(|o| seqs.contains(&o.seq))
                .cloned()
                .collect(),
        }
    }
}

pub fn block(n: u64, branch: u8) -> BlockRef {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h[8] = branch;
    BlockRef {
        number: n,
        hash: B256::from(h),
    }
}

/// A gateway with function `f` deployed, and an empty log of it.
pub async fn deployed() -> (Gateway, Log) {
    deployed_with(&[]).await
}

#[allow(dead_code)]
pub async fn deployed_with(args: &[&str]) -> (Gateway, Log) {
    let gw = Gateway::start_with(Backend::File, args).expect("file gateway");
    let deployed = gw
        .client()
        .deploy(&"f".parse().unwrap(), module(1))
        .await
        .unwrap();
    let log = Log::new(FunctionId::Name("f".parse().unwrap()), deployed.bind.hash);
    (gw, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcome_pushes_are_idempotent_and_checked() {
    let (gw, mut log) = deployed().await;
    let client = gw.client();
    for n in 1..=5 {
        log.commit(n, 0, 2);
    }
    let ack = client.push_outcomes("r1", &log.page(1..=3)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 0,
            head: 3
        }
    );
    let ack = client.push_outcomes("r1", &log.page(2..=5)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 3,
            head: 5
        }
    );
    let ack = client.push_outcomes("r1", &log.page(9..=8)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 5,
            head: 5
        }
    );

    // The write token is needed.
    let err = gw
        .anonymous()
        .push_outcomes("r1", &log.page(1..=1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::UNAUTHORIZED), "{err}");
    // A page that breaks the log's rules, a bad runner id, a bad body: 400 JSON.
    let mut bad = log.page(1..=2);
    bad.outcomes[0].item_count = 9;
    let err = client.push_outcomes("r1", &bad).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::BAD_REQUEST), "{err}");
    assert!(err.to_string().contains("item_count"), "{err}");
    let err = client
        .push_outcomes("bad runner", &log.page(1..=1))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::BAD_REQUEST), "{err}");
    let auth = format!("Bearer {TOKEN}");
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, body) = raw(
        gw.addr(),
        "POST",
        "/v1/runners/r1/outcomes",
        &headers,
        b"{\"id\":",
    );
    assert_eq!(
        (status, error_code(&body).as_str()),
        (400, codes::BAD_REQUEST)
    );
    // Larger than the report limit: 413 before anything is parsed.
    let big = vec![b' '; 17 * 1024 * 1024];
    let (status, body) = raw(gw.addr(), "POST", "/v1/runners/r1/outcomes", &headers, &big);
    assert_eq!(
        (status, error_code(&body).as_str()),
        (413, codes::TOO_LARGE)
    );
    // Still exactly what was pushed.
    let ack = client.push_outcomes("r1", &log.page(1..=5)).await.unwrap();
    assert_eq!(
        ack,
        OutcomesAck {
            head_before: 5,
            head: 5
        }
    );
}
