//! Turns the recorded JSON-RPC responses in `fixtures/rpc/` into the event envelopes in
//! `fixtures/events/`, through the same `ChainBlock::from_rpc_json` conversion the
//! runner's JSON-RPC follower uses. Run by `scripts/record-fixtures`:
//!
//! ```text
//! cargo run -p xxfunc-abi --features rpc --example fixture-envelopes -- fixtures
//! ```

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use std::path::Path;
use xxfunc_abi::{ChainBlock, EventKind, decode, encode};

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn result(response: &Value, what: &str, path: &Path) -> anyhow::Result<Value> {
    match response.get("result") {
        Some(value) => Ok(value.clone()),
        None => bail!(
            "{}: {what} response has no result: {response}",
            path.display()
        ),
    }
}

fn main() -> anyhow::Result<()> {
    let fixtures = std::env::args().nth(1).unwrap_or_else(|| "fixtures".into());
    let fixtures = Path::new(&fixtures);
    let rpc_dir = fixtures.join("rpc");
    let events_dir = fixtures.join("events");

    let chain = read_json(&rpc_dir.join("chain.json"))?;
    let chain_id_hex = chain["result"]
        .as_str()
        .context("eth_chainId result is not a string")?;
    let chain_id = u64::from_str_radix(chain_id_hex.trim_start_matches("0x"), 16)
        .with_context(|| format!("chain id {chain_id_hex}"))?;
    let events = read_json(&rpc_dir.join("events.json"))?;
    let events = events.as_array().context("events.json is not a list")?;

    std::fs::create_dir_all(&events_dir)?;
    for entry in std::fs::read_dir(&events_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "bin") {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }

    let mut index = Vec::new();
    let mut envelope = Vec::new();
    for (seq, event) in events.iter().enumerate() {
        let kind: EventKind = event["kind"]
            .as_str()
            .context("event without kind")?
            .parse()
            .map_err(anyhow::Error::msg)?;
        let rpc_file = rpc_dir.join(event["rpc"].as_str().context("event without rpc file")?);
        let responses = read_json(&rpc_file)?;
        let block_json = result(
            &responses["eth_getBlockByNumber"],
            "eth_getBlockByNumber",
            &rpc_file,
        )?;
        let receipts_json = result(
            &responses["eth_getBlockReceipts"],
            "eth_getBlockReceipts",
            &rpc_file,
        )?;
        let block = ChainBlock::from_rpc_json(chain_id, block_json, receipts_json)
            .with_context(|| format!("converting {}", rpc_file.display()))?;
        ensure!(
            block.hash.to_string() == event["hash"].as_str().unwrap_or_default(),
            "{}: hash differs from events.json",
            rpc_file.display()
        );

        envelope.clear();
        xxfunc_abi::encode_into(kind, &block, &mut envelope)?;
        decode(&envelope)?.verify()?;
        ensure!(encode(kind, &block)? == envelope);

        let name = format!("{:04}-{kind}-{}.bin", seq + 1, block.number);
        std::fs::write(events_dir.join(&name), &envelope)?;
        index.push(json!({
            "file": name,
            "kind": kind.as_str(),
            "number": block.number,
            "hash": block.hash,
            "parent_hash": block.parent_hash,
            "timestamp": block.timestamp,
            "transactions": block.transactions.len(),
            "bytes": envelope.len(),
        }));
    }
    let text = serde_json::to_string_pretty(&json!({ "chain_id": chain_id, "events": index }))?;
    std::fs::write(events_dir.join("index.json"), text + "\n")?;
    eprintln!(
        "wrote {} envelopes to {}",
        index.len(),
        events_dir.display()
    );
    Ok(())
}
