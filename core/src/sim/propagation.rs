//! Block propagation at scale (issue 14, P10): a network of relays and tabs over links of
//! fixed per-pair latency, transactions relayed first, then a block mined with them. Reports
//! the time until a share of the nodes has the block as its tip and the bytes each node
//! received for it, as a ratio to the block's size. Shared by the P10 test (small scale, in
//! debug) and the bench (full scale, in release).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::chain::Chain;
use crate::encode::Encode;
use crate::node::NodeConfig;
use crate::params::Params;
use crate::primitives::{BlockHash, OutPoint, Payload, Transaction, TxIn, TxOut};
use crate::sig::Signature;
use crate::store::ChangeSet;
use crate::testkit::{extend, wallet};
use crate::units::Amount;
use crate::wallet::Wallet;
use crate::wire::NodeKind;

use super::Sim;

/// Message types that are not part of relaying a block: discovery (`getnodes`, `nodes`)
/// and keep-alive (`ping`, `pong`). Everything else a node receives while a block spreads
/// is counted against the block.
const NOT_BLOCK_TRAFFIC: [u8; 4] = [2, 3, 11, 12];

/// The shape of the network.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    pub relays: usize,
    pub tabs: usize,
    /// Relays each relay dials (it also accepts others' dials).
    pub relay_outbound: usize,
    /// Relays each tab connects to.
    pub tab_outbound: usize,
    /// One-way link latency range, ms (each pair of nodes gets a fixed value in it).
    pub latency_ms: (u64, u64),
    /// Spendable coins prepared for payments.
    pub coins: usize,
    /// Whether nodes speak compact blocks (false: the feature bit is cleared, for the
    /// before/after comparison).
    pub compact: bool,
}

impl Shape {
    /// Issue 14's network: 100 relays, 900 tabs, 50–150 ms links.
    pub fn p10(coins: usize) -> Shape {
        Shape {
            relays: 100,
            tabs: 900,
            relay_outbound: 8,
            tab_outbound: 3,
            latency_ms: (50, 150),
            coins,
            compact: true,
        }
    }
}

/// A built network and the coins the payer can spend.
#[derive(Debug)]
pub struct Network {
    pub sim: Sim,
    pub relays: Vec<usize>,
    pub tabs: Vec<usize>,
    payer: Wallet,
    coins: Vec<(OutPoint, TxOut)>,
}

/// What one block's propagation measured.
#[derive(Clone, Copy, Debug)]
pub struct BlockFigure {
    /// Transactions in the block besides the coinbase.
    pub txs: usize,
    /// Its encoded size (the `block` message body).
    pub block_bytes: usize,
    /// Simulated ms from mining until 99% of the nodes had it as their tip (`None`: never).
    pub ms_to_99: Option<u64>,
    /// Simulated ms until every node had it.
    pub ms_to_all: Option<u64>,
    /// Mean bytes of block traffic received per node, over the block's size.
    pub bytes_ratio: f64,
    /// Mean bytes of block traffic received per node.
    pub bytes_per_node: f64,
}

fn seed_of(kind: u8, i: usize) -> [u8; 32] {
    let mut s = [kind; 32];
    s[1..9].copy_from_slice(&(i as u64).to_le_bytes());
    s
}

/// A chain whose tip lets the payer spend `coins` separate outputs: three coinbases to
/// the payer, then one transaction splitting the first of them.
fn funded_chain(
    params: &Params,
    payer: &Wallet,
    coins: usize,
) -> (ChangeSet, Vec<(OutPoint, TxOut)>) {
    let mut chain = Chain::new(params.clone());
    let mut all = ChangeSet::default();
    let key = payer.public_key();
    let mut blocks = Vec::new();
    for _ in 0..3 {
        let (b, outcome) = extend(&mut chain, &[], key, b"fund").expect("an empty block is valid");
        all.merge(outcome.changes);
        blocks.push(b);
    }
    let cb = &blocks[0].txs[0];
    let input_amount = cb.outputs[0].amount;
    let fan_fee = 50_000 + 50 * coins as u64;
    let each = (input_amount.units() - fan_fee) / coins.max(1) as u64;
    let mut fan = Transaction {
        inputs: alloc::vec![TxIn {
            prev: OutPoint {
                txid: cb.txid(),
                vout: 0
            },
            sig: Signature([0; 64]),
        }],
        outputs: (0..coins.max(1))
            .map(|_| TxOut {
                amount: Amount::from_units(each).expect("below the coinbase"),
                key,
            })
            .collect(),
        payload: Payload::None,
    };
    payer.sign_tx(&mut fan, &[cb.outputs[0]], &params.genesis_hash());
    let fan_id = fan.txid();
    let coins_out = fan
        .outputs
        .iter()
        .enumerate()
        .map(|(v, o)| {
            (
                OutPoint {
                    txid: fan_id,
                    vout: v as u32,
                },
                *o,
            )
        })
        .collect();
    let (_, outcome) = extend(&mut chain, &[fan], key, b"fan").expect("the split is valid");
    all.merge(outcome.changes);
    (all, coins_out)
}

impl Network {
    /// Builds the network on a funded chain every node starts from, and runs until every
    /// node has its links (two simulated minutes).
    pub fn build(shape: Shape) -> Network {
        let params = Params::test();
        let payer = wallet(250, &params);
        let (stored, coins) = funded_chain(&params, &payer, shape.coins);
        let mut sim = Sim::new(params);
        sim.link_latency = Some(shape.latency_ms);
        sim.jitter_ms = 0;
        let r = shape.relays;
        let mut relays = Vec::new();
        for i in 0..r {
            let mut c = NodeConfig::new(NodeKind::Relay, seed_of(1, i));
            // A ring plus a few far links: every relay can find the rest quickly.
            c.bootstrap = [1, 2, r / 3, r / 2]
                .iter()
                .map(|d| Sim::url_of((i + d) % r))
                .filter(|u| *u != Sim::url_of(i))
                .collect();
            c.target_outbound = shape.relay_outbound;
            if !shape.compact {
                c.features &= !crate::wire::FEATURE_COMPACT;
            }
            relays.push(sim.add_node(c, stored.clone()));
        }
        let mut tabs = Vec::new();
        for t in 0..shape.tabs {
            let mut c = NodeConfig::new(NodeKind::Browser, seed_of(2, t));
            c.bootstrap = (0..shape.tab_outbound)
                .map(|k| Sim::url_of((t * 7 + k * (r / 3 + 1)) % r))
                .collect();
            c.target_outbound = shape.tab_outbound;
            if !shape.compact {
                c.features &= !crate::wire::FEATURE_COMPACT;
            }
            tabs.push(sim.add_node(c, stored.clone()));
        }
        sim.run_for(2 * 60_000);
        Network {
            sim,
            relays,
            tabs,
            payer,
            coins,
        }
    }

    /// Every node's index.
    pub fn all(&self) -> Vec<usize> {
        self.relays.iter().chain(&self.tabs).copied().collect()
    }

    /// Signed payments, one per prepared coin, `n` of them (fewer if fewer coins are left).
    pub fn payments(&mut self, n: usize) -> Vec<Transaction> {
        let genesis = self.sim.params.genesis_hash();
        let to = wallet(251, &self.sim.params).public_key();
        let take = n.min(self.coins.len());
        self.coins
            .drain(..take)
            .map(|(op, out)| {
                let mut tx = Transaction {
                    inputs: alloc::vec![TxIn {
                        prev: op,
                        sig: Signature([0; 64]),
                    }],
                    outputs: alloc::vec![TxOut {
                        amount: Amount::from_units(out.amount.units() - 2_000)
                            .expect("below the coin"),
                        key: to,
                    }],
                    payload: Payload::None,
                };
                self.payer.sign_tx(&mut tx, &[out], &genesis);
                tx
            })
            .collect()
    }

    /// Submits `txs` at tabs spread over the network and runs until every node's pool has
    /// them all (at most `max_ms`); returns whether they all arrived.
    pub fn relay_txs(&mut self, txs: &[Transaction], max_ms: u64) -> bool {
        let tabs = self.tabs.clone();
        let nodes = self.all();
        for (k, tx) in txs.iter().enumerate() {
            let at = tabs.get((k * 13) % tabs.len().max(1)).copied().unwrap_or(0);
            self.sim.submit(at, tx.clone());
        }
        let ids: Vec<_> = txs.iter().map(Transaction::txid).collect();
        let end = self.sim.now_ms + max_ms;
        while self.sim.now_ms < end {
            self.sim.run_for(500);
            let all_in = nodes.iter().all(|&i| {
                let pool = self.sim.node(i).mempool();
                ids.iter().all(|t| pool.contains(t))
            });
            if all_in {
                return true;
            }
        }
        false
    }

    fn block_bytes_received(&self) -> BTreeMap<usize, u64> {
        let mut per = BTreeMap::new();
        for (&(actor, kind), &b) in &self.sim.bytes_in_by_type {
            if !NOT_BLOCK_TRAFFIC.contains(&kind) {
                *per.entry(actor).or_insert(0) += b;
            }
        }
        per
    }

    /// Relay `miner` mines a block of what its pool holds; runs until every node has it as
    /// its tip (at most `max_ms`) and two more seconds for announcements still in flight.
    pub fn mine_and_measure(&mut self, miner: usize, max_ms: u64) -> BlockFigure {
        let nodes = self.all();
        let before = self.block_bytes_received();
        let block = self.sim.mine(miner);
        let hash: BlockHash = block.hash();
        let start = self.sim.now_ms;
        let need_99 = (nodes.len() * 99).div_ceil(100);
        let (mut ms_to_99, mut ms_to_all) = (None, None);
        while self.sim.now_ms < start + max_ms {
            self.sim.run_for(5);
            let have = nodes
                .iter()
                .filter(|&&i| self.sim.node(i).chain().tip().hash == hash)
                .count();
            if have >= need_99 && ms_to_99.is_none() {
                ms_to_99 = Some(self.sim.now_ms - start);
            }
            if have == nodes.len() {
                ms_to_all = Some(self.sim.now_ms - start);
                break;
            }
        }
        self.sim.run_for(2_000);
        let after = self.block_bytes_received();
        let total: u64 = nodes
            .iter()
            .map(|i| after.get(i).unwrap_or(&0) - before.get(i).unwrap_or(&0))
            .sum();
        let block_bytes = block.encode().len();
        let per_node = total as f64 / nodes.len().max(1) as f64;
        BlockFigure {
            txs: block.txs.len() - 1,
            block_bytes,
            ms_to_99,
            ms_to_all,
            bytes_ratio: per_node / block_bytes as f64,
            bytes_per_node: per_node,
        }
    }
}

impl BlockFigure {
    /// One line for logs and the bench.
    pub fn line(&self) -> String {
        let ms = |m: Option<u64>| m.map_or(String::from("never"), |m| format!("{m} ms"));
        format!(
            "{} txs, {} B block: 99% after {}, all after {}; {:.0} B received per node = {:.3} × block",
            self.txs,
            self.block_bytes,
            ms(self.ms_to_99),
            ms(self.ms_to_all),
            self.bytes_per_node,
            self.bytes_ratio
        )
    }
}
