//! Load: 200 concurrent clients, 20,000 requests mixing deploys, binds,
//! starts/stops and reads; no unexpected error, every acknowledged bind readable.

use std::{collections::BTreeMap, sync::Arc};

use parking_lot::Mutex;
use xxfunc_api::{BindResponse, FunctionName};

use crate::support::{Backend, Gateway, module};

const CLIENTS: u64 = 200;
const REQUESTS_PER_CLIENT: u64 = 100;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_twenty_thousand_requests() {
    let gw = Gateway::start(Backend::File).expect("gateway");
    let acked: Arc<Mutex<Vec<BindResponse>>> = Arc::default();
    let base = gw.client().upload(module(u64::MAX)).await.unwrap().hash;
    let mut tasks = Vec::new();
    for c in 0..CLIENTS {
        let client = gw.client();
        let acked = Arc::clone(&acked);
        tasks.push(tokio::spawn(async move {
            let own: FunctionName = format!("c{c}").parse().unwrap();
            let shared: FunctionName = format!("shared{}", c % 4).parse().unwrap();
            let mut sent = 0u64;
            let mut deployed = false;
            let mut seen = 0;
            let mut i = 0u64;
            while sent < REQUESTS_PER_CLIENT {
                i += 1;
                match i % 10 {
                    0 => {
                        let d = client
                            .deploy(&own, module(c * 1_000_000 + i))
                            .await
                            .expect("deploy");
                        acked.lock().push(d.bind);
                        deployed = true;
                        sent += 2;
                    }
                    1 => {
                        let b = client
                            .bind(&shared, &base.to_string())
                            .await
                            .expect("bind shared");
                        acked.lock().push(b);
                        sent += 1;
                    }
                    3 if deployed => {
                        client.start(own.as_str(), None).await.expect("start");
                        sent += 1;
                    }
                    6 if deployed => {
                        client.stop(own.as_str()).await.expect("stop");
                        sent += 1;
                    }
                    4 => {
                        client.list().await.expect("list");
                        sent += 1;
                    }
                    5 => {
                        // Follow the feed like a runner does.
                        let page = client
                            .feed(seen, std::time::Duration::ZERO)
                            .await
                            .expect("feed");
                        seen = page.entries.last().map_or(seen, |e| e.seq);
                        sent += 1;
                    }
                    _ if deployed => {
                        let view = client.function(own.as_str()).await.expect("show");
                        assert_eq!(view.name.as_ref(), Some(&own));
                        sent += 1;
                    }
                    _ => {
                        client.health().await.expect("health");
                        sent += 1;
                    }
                }
            }
            sent
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.expect("client task");
    }
    assert!(total >= CLIENTS * REQUESTS_PER_CLIENT, "{total}");

    // Every acknowledged bind is in its name's history.
    let client = gw.client();
    let acked = acked.lock().clone();
    let mut by_name: BTreeMap<FunctionName, Vec<BindResponse>> = BTreeMap::new();
    for b in acked {
        by_name.entry(b.name.clone()).or_default().push(b);
    }
    for (name, binds) in &by_name {
        let view = client.function(name.as_str()).await.unwrap();
        for b in binds {
            let entry = view
                .versions
                .iter()
                .find(|v| v.version == b.version)
                .unwrap_or_else(|| panic!("acknowledged bind {name} v{} missing", b.version));
            assert_eq!(entry.hash, b.hash);
        }
    }
    // The feed has no gap and agrees with the snapshot.
    let snapshot = client.feed_snapshot().await.unwrap();
    let mut after = 0;
    let mut last = BTreeMap::new();
    loop {
        let page = client.feed(after, std::time::Duration::ZERO).await.unwrap();
        if page.entries.is_empty() {
            break;
        }
        for e in page.entries {
            assert_eq!(e.seq, after + 1);
            after = e.seq;
            if let Some(spec) = e.spec {
                last.insert(e.id, spec);
            }
        }
    }
    assert!(after >= snapshot.seq);
    let now: BTreeMap<_, _> = client
        .feed_snapshot()
        .await
        .unwrap()
        .functions
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    assert_eq!(last, now);
}
