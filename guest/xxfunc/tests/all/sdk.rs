//! The SDK's typed accessors on the recorded anvil chain, natively.

use std::collections::BTreeSet;
use xxfunc::erc20::{TRANSFER_TOPIC, Transfer};
use xxfunc::primitives::keccak256;
use xxfunc::{Error, Event, EventKind, LogFilter, Status, U256};
use xxfunc_guest_modules::fixture_events;

fn events() -> Vec<(String, Event)> {
    let files = fixture_events();
    assert!(
        !files.is_empty(),
        "no fixture events; run scripts/record-fixtures"
    );
    files
        .into_iter()
        .map(|path| {
            let name = path
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path).expect("readable");
            let event = Event::from_bytes(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            (name, event)
        })
        .collect()
}

#[test]
fn fixture_chain_has_what_the_tests_need() -> xxfunc::Result<()> {
    let mut transfers = 0;
    let mut biggest = 0;
    let mut empty_blocks = 0;
    let mut tx_types = BTreeSet::new();
    let mut creates = 0;
    let mut eth_transfers = 0;
    let mut failed = 0;
    let mut reverts = Vec::new();
    for (name, event) in events() {
        assert_eq!(event.chain_id(), 31337, "{name}");
        assert!(
            name.contains(&format!("-{}-{}.bin", event.kind(), event.number())),
            "{name}"
        );
        let header = event.header()?;
        assert_eq!(header.number, event.number());
        assert_eq!(header.timestamp, event.timestamp());
        assert_eq!(header.hash_slow(), event.hash());
        if event.is_revert() {
            reverts.push(event.number());
            continue;
        }
        biggest = biggest.max(event.transaction_count());
        empty_blocks += usize::from(event.transaction_count() == 0);
        let txs = event.transactions()?;
        let receipts = event.receipts()?;
        assert_eq!(txs.len(), receipts.len());
        for (tx, receipt) in txs.iter().zip(receipts) {
            assert_eq!(tx.hash, receipt.tx_hash);
            assert_eq!(
                tx.hash,
                keccak256(
                    event
                        .envelope()
                        .transactions()
                        .nth(tx.index)
                        .expect("tx")
                        .encoded
                )
            );
            tx_types.insert(tx.tx_type);
            creates += usize::from(tx.is_create());
            eth_transfers += usize::from(tx.value() > U256::ZERO && tx.input().is_empty());
            assert_eq!(tx.chain_id(), Some(31337));
            failed += usize::from(receipt.status == Status::Failure);
            if receipt.status == Status::Failure {
                assert!(receipt.logs.is_empty());
            }
            assert!(
                receipt.gas_used >= 21_000,
                "{name}: tx {} gas {}",
                tx.index,
                receipt.gas_used
            );
        }
        transfers += Transfer::all(&event)?.len();
    }
    assert!(transfers >= 200, "hundreds of transfers, got {transfers}");
    assert!(
        biggest >= 100,
        "a block of at least 100 transactions, biggest {biggest}"
    );
    assert!(empty_blocks >= 2, "empty blocks: {empty_blocks}");
    assert_eq!(tx_types, BTreeSet::from([0, 1, 2]));
    assert!(creates >= 1 && eth_transfers >= 1 && failed >= 1);
    assert!(reverts.len() >= 4, "reverts: {reverts:?}");
    Ok(())
}

#[test]
fn reorgs_are_delivered_newest_first_then_new_branch_oldest_first() {
    let events = events();
    let mut seen = BTreeSet::new();
    let mut i = 0;
    let mut depths = Vec::new();
    while i < events.len() {
        let (name, event) = &events[i];
        assert!(
            seen.insert((event.kind(), event.hash())),
            "{name}: delivered twice"
        );
        if event.is_revert() {
            let start = i;
            while i + 1 < events.len() && events[i + 1].1.is_revert() {
                assert_eq!(
                    events[i + 1].1.number() + 1,
                    events[i].1.number(),
                    "newest first"
                );
                assert_eq!(events[i].1.parent_hash(), events[i + 1].1.hash());
                i += 1;
                assert!(seen.insert((EventKind::Revert, events[i].1.hash())));
            }
            depths.push(i - start + 1);
            let (_, first_new) = &events[i + 1];
            assert!(first_new.is_commit());
            assert_eq!(
                first_new.number(),
                events[i].1.number(),
                "new branch starts at the fork"
            );
            assert_eq!(first_new.parent_hash(), events[i].1.parent_hash());
            assert_ne!(first_new.hash(), events[i].1.hash());
        } else if let Some((_, previous)) = i.checked_sub(1).map(|p| &events[p])
            && previous.is_commit()
        {
            assert_eq!(
                event.parent_hash(),
                previous.hash(),
                "{name}: commits chain by parent hash"
            );
        }
        i += 1;
    }
    assert!(
        depths.contains(&1) && depths.iter().any(|&d| d >= 3),
        "reorg depths {depths:?}"
    );
}

#[test]
fn log_filters_select_by_address_and_topic() -> xxfunc::Result<()> {
    let events = events();
    let (_, funding) = events
        .iter()
        .find(|(_, e)| e.is_commit() && e.transaction_count() == 9)
        .expect("the funding block with 9 transfers");
    let token = funding.logs()?.next().expect("a log").address;
    let all = funding.logs()?.count();
    assert_eq!(all, 9);
    let by_token = LogFilter::new().address(token).topic0(TRANSFER_TOPIC);
    assert_eq!(funding.logs_matching(&by_token)?.count(), 9);
    let first = Transfer::all(funding)?.remove(0);
    let from_deployer = by_token.clone().topic1(first.from.into_word());
    assert_eq!(funding.logs_matching(&from_deployer)?.count(), 9);
    let to_one = by_token.clone().topic2(first.to.into_word());
    assert_eq!(funding.logs_matching(&to_one)?.count(), 1);
    let other_token = LogFilter::new().address(xxfunc::Address::ZERO);
    assert_eq!(funding.logs_matching(&other_token)?.count(), 0);
    let approval = LogFilter::new().topic0(keccak256("Approval(address,address,uint256)"));
    let approvals: usize = events
        .iter()
        .map(|(_, e)| e.logs_matching(&approval).map(|l| l.count()))
        .sum::<Result<usize, _>>()?;
    assert!(approvals >= 1);
    // Log indexes count across the block and name their transaction.
    for (i, log) in funding.logs()?.enumerate() {
        assert_eq!(log.log_index, i);
        assert_eq!(log.tx_index, i);
        assert_eq!(log.tx_hash, funding.transactions()?[i].hash);
    }
    Ok(())
}

#[test]
fn bad_envelopes_are_typed_errors() {
    assert!(matches!(Event::from_bytes(Vec::new()), Err(Error::Abi(_))));
    assert!(matches!(
        Event::from_bytes(b"not an envelope at all".to_vec()),
        Err(Error::Abi(_))
    ));
    let (_, event) = events()
        .into_iter()
        .find(|(_, e)| e.transaction_count() > 0)
        .expect("a block with txs");
    let mut bytes = event.envelope().to_envelope().block;
    bytes.receipts[0] = vec![0xc2, 0x01, 0x02].into();
    let envelope = xxfunc::abi::encode(EventKind::Commit, &bytes).expect("encodes");
    let broken = Event::from_bytes(envelope).expect("framing is valid");
    assert!(matches!(broken.receipts(), Err(Error::Abi(_))));
    assert!(broken.transactions().is_ok(), "transactions still decode");
}
