use std::{sync::Arc, thread, time::Duration};

use xxfunc_api::{ChangeKind, DesiredState, FunctionId, StartFrom};

use crate::{hash, name, named, open};

#[test]
fn every_change_is_one_feed_entry_with_the_new_spec() {
    let (_dir, reg) = open();
    reg.bind(&name("f"), hash("1")).unwrap();
    reg.start(&named("f"), StartFrom::Head).unwrap();
    reg.bind(&name("f"), hash("2")).unwrap();
    reg.pin(&named("f")).unwrap();
    reg.unpin(&named("f")).unwrap();
    reg.stop(&named("f")).unwrap();
    // No-ops add nothing.
    reg.bind(&name("f"), hash("2")).unwrap();
    reg.stop(&named("f")).unwrap();

    let page = reg.feed_after(0, 100).unwrap();
    assert_eq!(page.head, 6);
    let kinds: Vec<_> = page.entries.iter().map(|e| e.change.clone()).collect();
    assert_eq!(
        kinds,
        [
            ChangeKind::Deployed,
            ChangeKind::Started,
            ChangeKind::Deployed,
            ChangeKind::Pinned,
            ChangeKind::Unpinned,
            ChangeKind::Stopped
        ]
    );
    let seqs: Vec<_> = page.entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    let third = page.entries[2].spec.clone().unwrap();
    assert_eq!(
        (third.hash, third.desired),
        (hash("2"), DesiredState::Started)
    );
    assert_eq!(
        page.entries[5].spec.as_ref().unwrap().desired,
        DesiredState::Stopped
    );

    // Paging.
    let page = reg.feed_after(2, 2).unwrap();
    assert_eq!(
        page.entries.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4]
    );
    assert_eq!(page.head, 6);
    assert!(reg.feed_after(6, 10).unwrap().entries.is_empty());
    assert!(reg.feed_after(100, 10).unwrap().entries.is_empty());

    // A pin of a hash that is not a function carries no spec.
    reg.pin(&FunctionId::Hash(hash("loose"))).unwrap();
    let last = reg.feed_after(6, 10).unwrap().entries;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].spec, None);
}

#[test]
fn snapshot_plus_feed_reconstructs_state() {
    let (_dir, reg) = open();
    reg.bind(&name("a"), hash("a")).unwrap();
    reg.start(&named("a"), StartFrom::Head).unwrap();
    let snap = reg.snapshot().unwrap();
    assert_eq!(snap.seq, 2);
    assert_eq!(snap.functions.len(), 1);
    reg.bind(&name("b"), hash("b")).unwrap();
    reg.start(&FunctionId::Hash(hash("c")), StartFrom::Block(1))
        .unwrap();

    let mut state: std::collections::BTreeMap<_, _> = snap
        .functions
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    for entry in reg.feed_after(snap.seq, 100).unwrap().entries {
        if let Some(spec) = entry.spec {
            state.insert(entry.id, spec);
        }
    }
    let now: std::collections::BTreeMap<_, _> = reg
        .snapshot()
        .unwrap()
        .functions
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect();
    assert_eq!(state, now);
    assert_eq!(now.len(), 3);
}

#[test]
fn wait_feed_wakes_on_commit_and_times_out() {
    let (_dir, reg) = open();
    // Timeout with nothing to read.
    let page = reg.wait_feed(0, Duration::from_millis(20)).unwrap();
    assert!(page.entries.is_empty());
    assert_eq!(page.head, 0);

    let reg = Arc::new(reg);
    let waiter = {
        let reg = Arc::clone(&reg);
        thread::spawn(move || reg.wait_feed(0, Duration::from_secs(30)).unwrap())
    };
    // Whether the waiter is already asleep or not, it must see the entry.
    reg.bind(&name("w"), hash("w")).unwrap();
    let page = waiter.join().unwrap();
    assert_eq!(page.entries.len(), 1);
    assert_eq!(page.entries[0].id, named("w"));
}

#[test]
fn concurrent_writers_produce_a_gapless_feed() {
    let (_dir, reg) = open();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let reg = reg.clone();
            thread::spawn(move || {
                for i in 0..25 {
                    reg.bind(&name(&format!("t{t}")), hash(&format!("{t}-{i}")))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let page = reg.feed_after(0, 1000).unwrap();
    assert_eq!(page.head, 200);
    for (i, e) in page.entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
    }
    for t in 0..8 {
        assert_eq!(
            reg.lookup_name(&name(&format!("t{t}")))
                .unwrap()
                .unwrap()
                .version,
            25
        );
    }
}

#[test]
fn the_epoch_is_kept_for_the_registrys_life_and_carried_by_the_feed() {
    let (dir, reg) = open();
    let epoch = reg.epoch().to_string();
    assert_eq!(epoch.len(), 16, "{epoch:?}");
    reg.bind(&name("e"), hash("e")).unwrap();
    assert_eq!(reg.snapshot().unwrap().epoch, epoch);
    assert_eq!(reg.feed_after(0, 10).unwrap().epoch, epoch);
    let path = reg.path().to_path_buf();
    drop(reg);

    // Reopened: the same registry, the same epoch and feed.
    let reg = xxfunc_registry::Registry::open(&path).unwrap();
    assert_eq!(reg.epoch(), epoch);
    assert_eq!(reg.feed_head(), 1);
    drop(reg);
    drop(dir);

    // Another registry (a reset) has another epoch.
    let (_other_dir, other) = open();
    assert_ne!(other.epoch(), epoch);
}

#[test]
fn listeners_and_waiters_see_an_entry_only_once_it_is_readable() {
    let (_dir, reg) = open();
    let reg = Arc::new(reg);
    let seen = Arc::new(parking_lot::Mutex::new(Vec::new()));
    {
        let (reg2, seen) = (Arc::clone(&reg), Arc::clone(&seen));
        reg.on_commit(move |head| {
            // Called after the sync: the head and its entry are what readers get.
            let page = reg2.feed_after(head - 1, 10).unwrap();
            seen.lock().push((head, page.head, page.entries.len()));
        });
    }
    reg.bind(&name("a"), hash("a")).unwrap();
    reg.start(&named("a"), StartFrom::Head).unwrap();
    assert_eq!(*seen.lock(), vec![(1, 1, 1), (2, 2, 1)]);
}

#[test]
fn listeners_see_the_head_only_grow_under_concurrent_writers() {
    let (_dir, reg) = open();
    let reg = Arc::new(reg);
    let heads = Arc::new(parking_lot::Mutex::new(Vec::new()));
    {
        let heads = Arc::clone(&heads);
        reg.on_commit(move |head| heads.lock().push(head));
    }
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let reg = Arc::clone(&reg);
            thread::spawn(move || {
                for i in 0..25 {
                    let n = format!("w{w}-{i}");
                    reg.bind(&name(&n), hash(&n)).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let heads = heads.lock();
    assert!(heads.windows(2).all(|p| p[0] < p[1]), "{heads:?}");
    assert_eq!(
        heads.last(),
        Some(&100),
        "the last publish covers every entry"
    );
    assert_eq!(reg.feed_head(), 100);
}
