//! Crash: `kill -9` during a deploy storm; after a restart every acknowledged
//! deploy and bind is there and the change feed has no gap.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use parking_lot::Mutex;
use xxfunc_api::{FunctionName, client::DeployResponse};

use crate::support::{Backend, Gateway, module};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_a_deploy_storm_loses_nothing_acknowledged() {
    let mut gw = Gateway::start(Backend::File).expect("gateway");
    let acked: Arc<Mutex<Vec<DeployResponse>>> = Arc::default();
    let killed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for t in 0..32u64 {
        let client = gw.client();
        let (acked, killed) = (Arc::clone(&acked), Arc::clone(&killed));
        tasks.push(tokio::spawn(async move {
            let name: FunctionName = format!("storm{}", t % 8).parse().unwrap();
            for i in 0.. {
                match client.deploy(&name, module(t * 1_000_000 + i)).await {
                    Ok(d) => acked.lock().push(d),
                    // The gateway died mid-request: that deploy was never acknowledged.
                    Err(e) => {
                        assert!(killed.load(Ordering::SeqCst), "error before the kill: {e}");
                        break;
                    }
                }
            }
        }));
    }
    // Let the storm run, then kill the process without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while acked.lock().len() < 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the storm made no progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    killed.store(true, Ordering::SeqCst);
    gw.kill9();
    for t in tasks {
        t.await.expect("storm task");
    }
    let acked = acked.lock().clone();
    assert!(acked.len() >= 200);

    gw.spawn("127.0.0.1:0");
    let client = gw.client();
    let mut by_name: BTreeMap<FunctionName, Vec<DeployResponse>> = BTreeMap::new();
    for d in &acked {
        by_name
            .entry(d.bind.name.clone())
            .or_default()
            .push(d.clone());
    }
    for (name, deploys) in &by_name {
        let view = client.function(name.as_str()).await.unwrap();
        for d in deploys {
            let v = view
                .versions
                .iter()
                .find(|v| v.version == d.bind.version)
                .expect("acknowledged version present");
            assert_eq!(v.hash, d.upload.hash);
        }
        // Versions are numbered 1..=n without gaps.
        let numbers: Vec<u64> = view.versions.iter().map(|v| v.version).collect();
        assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    }
    for d in acked.iter().step_by(7) {
        let (hash, _) = client.download(&d.upload.hash.to_string()).await.unwrap();
        assert_eq!(hash, d.upload.hash);
    }

    // The feed is gapless and replaying it gives the snapshot.
    let snapshot = client.feed_snapshot().await.unwrap();
    let page = client.feed(0, Duration::ZERO).await.unwrap();
    assert_eq!(page.head, snapshot.seq);
    let mut state = BTreeMap::new();
    for (i, e) in page.entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        if let Some(spec) = &e.spec {
            state.insert(e.id.clone(), spec.clone());
        }
    }
    assert_eq!(page.entries.len() as u64, snapshot.seq);
    let now: BTreeMap<_, _> = snapshot
        .functions
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    assert_eq!(state, now);
    // And it keeps going from there.
    let next = client
        .deploy(&"after-crash".parse().unwrap(), module(u64::MAX - 1))
        .await
        .unwrap();
    assert_eq!(next.bind.version, 1);
    assert_eq!(client.health().await.unwrap().feed_head, snapshot.seq + 1);
}
