//! Long polls: a start reaches a waiting follower within a second.

use std::time::{Duration, Instant};

use xxfunc_api::{ChangeKind, DesiredState};

use crate::support::{Backend, Gateway, module};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_wakes_on_change_and_times_out() {
    let gw = Gateway::start(Backend::File).expect("gateway");
    let client = gw.client();
    client
        .deploy(&"f".parse().unwrap(), module(1))
        .await
        .unwrap();
    let head = client.feed_snapshot().await.unwrap().seq;

    // Nothing new: the poll waits about wait_ms and answers empty.
    let t = Instant::now();
    let page = client.feed(head, Duration::from_millis(300)).await.unwrap();
    assert!(page.entries.is_empty());
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );

    // A follower waiting 30 s sees a start as soon as it is committed.
    let follower = {
        let client = client.clone();
        tokio::spawn(async move {
            let page = client.feed(head, Duration::from_secs(30)).await.unwrap();
            (page, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started_at = Instant::now();
    client.start("f", None).await.unwrap();
    let (page, seen_at) = follower.await.unwrap();
    assert!(seen_at.duration_since(started_at) < Duration::from_secs(1));
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].change, ChangeKind::Started);
    assert_eq!(
        page.entries[0].spec.as_ref().unwrap().desired,
        DesiredState::Started
    );

    // A poll behind the head answers at once, however long it may wait.
    let t = Instant::now();
    let page = client.feed(0, Duration::from_secs(30)).await.unwrap();
    assert_eq!(page.entries.len() as u64, page.head);
    assert!(t.elapsed() < Duration::from_secs(5));
}
