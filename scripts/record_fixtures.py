#!/usr/bin/env python3
"""Drives a running anvil to build the fixture chain and records what a follower sees.

Used by scripts/record-fixtures, which starts and stops anvil. Standard library only.

The chain: an ERC-20 deployment, hundreds of token transfers over blocks of varied size
(empty blocks, a block of 120 transactions), legacy / EIP-2930 / EIP-1559 transactions, a
plain ETH transfer, a failing transfer, approve + transferFrom, then two reorgs made with
anvil_reorg (depth 1 and depth 3) whose new branches carry different transactions.

After every step the recorder syncs like the runner's JSON-RPC follower: it walks back
from the head by parent hash until it meets a block it already delivered, emits `revert`
for the orphaned blocks newest first and `commit` for the new branch oldest first.

Output, under the directory given as the first argument (fixtures/rpc):
  chain.json                        raw eth_chainId response
  blocks/<number>-<hash8>.json      raw eth_getBlockByNumber(n, true) and
                                    eth_getBlockReceipts(n) responses, one file per block
  events.json                       the delivery order: [{kind, number, hash, rpc}]

and under the directory given as the second argument (fixtures/state), the whole state of
the chain after every block a commit delivers (orphaned blocks included, recorded while
anvil still has them), which the runner's offline state backend answers reads from:
  <number>-<hash8>.json             {"block": the block's execution environment,
                                     "accounts": {address: {balance, nonce, codeHash?,
                                     storage?}}}; accounts that are empty (no balance, nonce,
                                     code or storage) and zero storage words are left out
  codes.json                        {codeHash: code} for every code hash above

With a third argument (a directory; tests use it, scripts/record-fixtures does not), the
recorder also writes there what anvil's own eth_call answers, while it still has the block:
  balances.json                     {blockHash: {token: {owner: balanceOf, decimal}}} for
                                    the sender and receiver of every Transfer log

Which accounts and slots: those of anvil_dumpState at the head after each step (the whole
state there), and those of the parent block's recorded state. Their values at each new
block come from eth_getProof by block hash (EIP-1898), checked against the dump at the
head. A slot written and cleared again inside one multi-block step (only anvil_reorg mines
several blocks at once here) would be missed; the chain below has none: its reorgs only
move tokens between funded accounts.
"""

import gzip

import json
import os
import sys
import urllib.request

GENESIS_TIMESTAMP = 1_700_000_000
BLOCK_TIME = 12
TOKEN_SUPPLY = 10**24

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
BALANCE_OF = "70a08231"  # balanceOf(address)

# Function selectors of fixtures/contracts/Token.sol.
TRANSFER = "a9059cbb"  # transfer(address,uint256)
APPROVE = "095ea7b3"  # approve(address,uint256)
TRANSFER_FROM = "23b872dd"  # transferFrom(address,address,uint256)


def word(value):
    if isinstance(value, str):
        return value[2:].lower().rjust(64, "0")
    return format(value, "064x")


class Rpc:
    def __init__(self, url):
        self.url = url
        self.next_id = 1
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def raw(self, method, params):
        body = json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        self.next_id += 1
        request = urllib.request.Request(
            self.url, data=body.encode(), headers={"Content-Type": "application/json"}
        )
        with self.opener.open(request, timeout=60) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            raise SystemExit(f"{method} {params}: {reply['error']}")
        return reply

    def __call__(self, method, *params):
        return self.raw(method, list(params))["result"]


def quantity(value):
    return hex(int(value, 16))


def slot_key(key):
    return "0x" + key[2:].lower().rjust(64, "0")


def is_empty(account):
    return account["balance"] == "0x0" and account["nonce"] == 0 and "codeHash" not in account and "storage" not in account


class StateRecorder:
    """The whole state after every committed block, read from anvil while it has it."""

    EMPTY_CODE_HASH = "0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"

    def __init__(self, rpc, out_dir, chain_id, hard_fork):
        self.rpc = rpc
        self.out_dir = out_dir
        self.chain_id = chain_id
        self.hard_fork = hard_fork
        self.by_hash = {}  # block hash -> accounts
        self.codes = {}
        os.makedirs(out_dir, exist_ok=True)

    def dump(self):
        raw = self.rpc("anvil_dumpState")
        dumped = json.loads(gzip.decompress(bytes.fromhex(raw[2:])))
        accounts = {}
        for address, a in dumped["accounts"].items():
            account = {"balance": quantity(a["balance"]), "nonce": int(a["nonce"])}
            code = a.get("code") or "0x"
            if code != "0x":
                account["codeHash"] = None  # filled from eth_getProof, compared by presence
            storage = {slot_key(k): quantity(v) for k, v in (a.get("storage") or {}).items() if int(v, 16)}
            if storage:
                account["storage"] = storage
            if not is_empty(account):
                accounts[address.lower()] = account
        return accounts

    def read(self, block_hash, keys):
        accounts = {}
        for address in sorted(keys):
            slots = sorted(keys[address])
            proof = self.rpc("eth_getProof", address, slots, {"blockHash": block_hash})
            account = {"balance": quantity(proof["balance"]), "nonce": int(proof["nonce"], 16)}
            if proof["codeHash"] != self.EMPTY_CODE_HASH:
                account["codeHash"] = proof["codeHash"]
                if proof["codeHash"] not in self.codes:
                    self.codes[proof["codeHash"]] = self.rpc("eth_getCode", address, {"blockHash": block_hash})
            storage = {slot_key(s["key"]): quantity(s["value"]) for s in proof["storageProof"] if int(s["value"], 16)}
            if storage:
                account["storage"] = storage
            if not is_empty(account):
                accounts[address] = account
        return accounts

    def record(self, blocks, head_hash):
        """Records the state after each of `blocks` (oldest first; the last is the head)."""
        head = self.dump()
        for block in blocks:
            keys = {}
            for source in (head, self.by_hash.get(block["parentHash"], {})):
                for address, account in source.items():
                    keys.setdefault(address, set()).update(account.get("storage", {}))
            accounts = self.read(block["hash"], keys)
            if block["hash"] == head_hash:
                assert {a: dict(v, codeHash=None) if "codeHash" in v else v for a, v in accounts.items()} == head, (
                    f"block {block['number']}: eth_getProof disagrees with anvil_dumpState"
                )
            self.by_hash[block["hash"]] = accounts
            number = int(block["number"], 16)
            env = {
                "number": number,
                "hash": block["hash"],
                "parentHash": block["parentHash"],
                "timestamp": int(block["timestamp"], 16),
                "miner": block["miner"],
                "gasLimit": int(block["gasLimit"], 16),
                "baseFeePerGas": int(block.get("baseFeePerGas") or "0x0", 16),
                "excessBlobGas": int(block.get("excessBlobGas") or "0x0", 16),
                "prevRandao": block["mixHash"],
                "chainId": self.chain_id,
                "hardFork": self.hard_fork,
            }
            path = os.path.join(self.out_dir, f"{number}-{block['hash'][2:10]}.json")
            with open(path, "w") as f:
                json.dump({"block": env, "accounts": accounts}, f, sort_keys=True, indent=1)
                f.write("\n")

    def finish(self):
        with open(os.path.join(self.out_dir, "codes.json"), "w") as f:
            json.dump(self.codes, f, sort_keys=True, indent=1)
            f.write("\n")


class BalanceChecks:
    """anvil's eth_call balanceOf for both sides of every Transfer, at each block's hash."""

    def __init__(self, rpc, out_dir):
        self.rpc = rpc
        self.out_dir = out_dir
        self.balances = {}
        os.makedirs(out_dir, exist_ok=True)

    def record(self, block, receipts):
        at = {}
        for receipt in receipts:
            for log in receipt["logs"]:
                topics = log["topics"]
                if len(topics) != 3 or topics[0] != TRANSFER_TOPIC:
                    continue
                owners = at.setdefault(log["address"], {})
                for topic in topics[1:]:
                    owner = "0x" + topic[-40:]
                    if owner not in owners:
                        data = "0x" + BALANCE_OF + word(owner)
                        answer = self.rpc("eth_call", {"to": log["address"], "data": data}, {"blockHash": block["hash"]})
                        owners[owner] = str(int(answer, 16))
        self.balances[block["hash"]] = at

    def finish(self):
        with open(os.path.join(self.out_dir, "balances.json"), "w") as f:
            json.dump(self.balances, f, sort_keys=True, indent=1)
            f.write("\n")


class Recorder:
    def __init__(self, rpc, out_dir, state_dir, checks_dir=None):
        self.rpc = rpc
        self.out_dir = out_dir
        self.canonical = {}  # number -> (hash, rpc file)
        self.events = []
        self.timestamp = GENESIS_TIMESTAMP
        os.makedirs(os.path.join(out_dir, "blocks"), exist_ok=True)
        chain = rpc.raw("eth_chainId", [])
        self.write("chain.json", chain)
        # The state reads go through their own client so the chain's responses keep their ids.
        state_rpc = Rpc(rpc.url)
        hard_fork = state_rpc("anvil_nodeInfo")["hardFork"]
        self.state = StateRecorder(state_rpc, state_dir, int(chain["result"], 16), hard_fork)
        self.checks = BalanceChecks(state_rpc, checks_dir) if checks_dir else None
        self.receipts = {}  # block hash -> receipts
        # The genesis block is the starting point, not an event.
        genesis = rpc("eth_getBlockByNumber", "0x0", False)
        self.canonical[0] = (genesis["hash"], None)

    def write(self, name, value):
        with open(os.path.join(self.out_dir, name), "w") as f:
            json.dump(value, f, separators=(",", ":"))
            f.write("\n")

    def record_block(self, number):
        block = self.rpc.raw("eth_getBlockByNumber", [hex(number), True])
        receipts = self.rpc.raw("eth_getBlockReceipts", [hex(number)])
        result = block["result"]
        assert len(result["transactions"]) == len(receipts["result"]), number
        self.receipts[result["hash"]] = receipts["result"]
        name = f"blocks/{number}-{result['hash'][2:10]}.json"
        self.write(name, {"eth_getBlockByNumber": block, "eth_getBlockReceipts": receipts})
        return result, name

    def sync(self):
        """Delivers what changed since the last sync, exactly like a follower would."""
        head = int(self.rpc("eth_blockNumber"), 16)
        new_branch = []
        number = head
        blocks = []
        while True:
            block, name = self.record_block(number)
            new_branch.append((number, block["hash"], name))
            blocks.append(block)
            known = self.canonical.get(number - 1)
            if known is not None and known[0] == block["parentHash"]:
                break
            number -= 1
            assert number > 0, "walked back to genesis without meeting the known chain"
        fork_point = number - 1
        for orphan in sorted((n for n in self.canonical if n > fork_point), reverse=True):
            hash_, name = self.canonical.pop(orphan)
            self.events.append({"kind": "revert", "number": orphan, "hash": hash_, "rpc": name})
        for number, hash_, name in reversed(new_branch):
            self.canonical[number] = (hash_, name)
            self.events.append({"kind": "commit", "number": number, "hash": hash_, "rpc": name})
        self.state.record(list(reversed(blocks)), blocks[0]["hash"])
        if self.checks:
            for block in reversed(blocks):
                self.checks.record(block, self.receipts[block["hash"]])

    def mine(self, expect_txs):
        self.timestamp += BLOCK_TIME
        self.rpc("evm_setNextBlockTimestamp", self.timestamp)
        self.rpc("evm_mine")
        head = self.rpc("eth_getBlockByNumber", "latest", False)
        got = len(head["transactions"])
        assert got == expect_txs, f"block {int(head['number'], 16)}: {got} txs, expected {expect_txs}"
        self.sync()
        return head

    def finish(self):
        self.write("events.json", self.events)
        self.state.finish()
        if self.checks:
            self.checks.finish()


class Chain:
    def __init__(self, rpc, accounts, token=None):
        self.rpc = rpc
        self.accounts = accounts
        self.token = token
        self.nonces = {a: int(rpc("eth_getTransactionCount", a, "pending"), 16) for a in accounts}
        self.seed = 0x5EED

    def rand(self, n):
        # A small LCG keeps the recorded chain identical across re-recordings.
        self.seed = (self.seed * 6364136223846793005 + 1442695040888963407) % 2**64
        return (self.seed >> 33) % n

    def send(self, tx):
        sender = tx["from"]
        tx = dict(tx, nonce=hex(self.nonces[sender]))
        self.nonces[sender] += 1
        return self.rpc("eth_sendTransaction", tx)

    def token_call(self, sender, selector, *args, **extra):
        data = "0x" + selector + "".join(word(a) for a in args)
        return self.send(dict({"from": sender, "to": self.token, "data": data, "gas": hex(120_000)}, **extra))

    def transfer(self, sender, to, amount, **extra):
        return self.token_call(sender, TRANSFER, to, amount, **extra)

    def random_transfers(self, count):
        for _ in range(count):
            sender = self.accounts[1 + self.rand(9)]
            to = self.accounts[self.rand(10)]
            self.transfer(sender, to, 1 + self.rand(10**18))

    def transfer_request(self, sender, to, amount):
        """A transaction request for anvil_reorg (anvil signs it and fills the nonce)."""
        data = "0x" + TRANSFER + word(to) + word(amount)
        return {"from": sender, "to": self.token, "data": data, "gas": hex(120_000)}


def main():
    out_dir, state_dir = sys.argv[1], sys.argv[2]
    checks_dir = sys.argv[3] if len(sys.argv) > 3 else None
    url = os.environ.get("ANVIL_URL", "http://127.0.0.1:8545")
    rpc = Rpc(url)
    rec = Recorder(rpc, out_dir, state_dir, checks_dir)
    accounts = rpc("eth_accounts")[:10]
    chain = Chain(rpc, accounts)
    a = accounts

    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "fixtures", "contracts", "Token.bin")) as f:
        bytecode = f.read().strip()

    # 1: contract creation (EIP-1559).
    chain.send({"from": a[0], "data": "0x" + bytecode + word(TOKEN_SUPPLY), "gas": hex(1_000_000)})
    head = rec.mine(1)
    receipt = rpc("eth_getTransactionReceipt", head["transactions"][0])
    chain.token = receipt["contractAddress"]
    assert chain.token, "token deployment failed"

    # 2: fund accounts 1..9 with tokens.
    for to in a[1:]:
        chain.transfer(a[0], to, 10**22)
    rec.mine(9)

    # 3: empty.
    rec.mine(0)

    # 4: one of each: legacy ETH transfer, EIP-2930 token transfer, EIP-1559 token transfer.
    chain.send({"from": a[1], "to": a[2], "value": hex(10**18), "gasPrice": hex(3 * 10**9), "gas": hex(21_000)})
    chain.transfer(a[2], a[3], 5 * 10**18, gasPrice=hex(3 * 10**9), accessList=[{"address": chain.token, "storageKeys": []}])
    chain.transfer(a[3], a[4], 7 * 10**18, maxFeePerGas=hex(5 * 10**9), maxPriorityFeePerGas=hex(10**9))
    rec.mine(3)

    # 5: approve, transferFrom, and a transfer that reverts (status 0, no logs).
    chain.token_call(a[5], APPROVE, a[6], 10**20)
    chain.token_call(a[6], TRANSFER_FROM, a[5], a[7], 3 * 10**19)
    chain.transfer(a[8], a[9], 10**30)
    rec.mine(3)

    # Blocks of varied size, including empty ones and one of 120 transactions.
    for size in [0, 1, 5, 0, 12, 3, 120, 0, 2, 30, 7, 0, 1, 25, 4, 40, 0, 6]:
        chain.random_transfers(size)
        rec.mine(size)

    # Reorg of depth 1: the head block is replaced by one with other transfers.
    rpc("anvil_reorg", 1, [[chain.transfer_request(a[4], a[5], 111), 0], [chain.transfer_request(a[6], a[7], 222), 0]])
    rec.sync()
    chain.nonces = {x: int(rpc("eth_getTransactionCount", x, "pending"), 16) for x in a}
    for size in [3, 0, 8]:
        chain.random_transfers(size)
        rec.mine(size)

    # Reorg of depth 3: the last three blocks are replaced; the new ones differ.
    rpc(
        "anvil_reorg",
        3,
        [
            [chain.transfer_request(a[1], a[2], 333), 0],
            [chain.transfer_request(a[3], a[4], 444), 1],
            [chain.transfer_request(a[5], a[6], 555), 1],
            [chain.transfer_request(a[7], a[8], 666), 2],
        ],
    )
    rec.sync()
    chain.nonces = {x: int(rpc("eth_getTransactionCount", x, "pending"), 16) for x in a}
    for size in [2, 0, 5]:
        chain.random_transfers(size)
        rec.mine(size)

    rec.finish()
    kinds = [e["kind"] for e in rec.events]
    print(
        f"recorded {len(rec.events)} events ({kinds.count('commit')} commits, "
        f"{kinds.count('revert')} reverts), head {max(rec.canonical)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
