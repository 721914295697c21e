use super::*;
use crate::params::Params;
use crate::testkit::{block_with, extend, extend_empty, wallet};
use crate::wallet::Wallet;

struct Setup {
    chain: Chain,
    alice: Wallet,
    bob: Wallet,
}

/// Alice has 6 mature coinbases.
fn setup() -> Setup {
    let params = Params::test();
    let alice = wallet(1, &params);
    let bob = wallet(2, &params);
    let mut chain = Chain::new(params);
    extend_empty(&mut chain, 8, alice.public_key(), b"a");
    Setup { chain, alice, bob }
}

fn amount(u: u64) -> Amount {
    Amount::from_units(u).unwrap()
}

/// Alice pays Bob from one specific coinbase at `rate`, built by hand.
fn pay_from(s: &Setup, height: u64, units: u64, rate_fee: u64) -> Transaction {
    let hash = s.chain.hash_at(Height(height)).unwrap();
    let cb = &s.chain.block(&hash).unwrap().txs[0];
    let have = cb.outputs[0].amount.units();
    let mut tx = Transaction {
        inputs: alloc::vec![crate::primitives::TxIn {
            prev: OutPoint {
                txid: cb.txid(),
                vout: 0
            },
            sig: crate::sig::Signature([0; 64]),
        }],
        outputs: alloc::vec![
            crate::primitives::TxOut {
                amount: amount(units),
                key: s.bob.public_key()
            },
            crate::primitives::TxOut {
                amount: amount(have - units - rate_fee),
                key: s.alice.public_key()
            },
        ],
        payload: crate::primitives::Payload::None,
    };
    s.alice
        .sign_tx(&mut tx, &[cb.outputs[0]], &s.chain.genesis_hash());
    tx
}

#[test]
fn orders_by_fee_rate_and_refuses_low_fees() {
    let s = setup();
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES, 1_000);
    let low = pay_from(&s, 1, 1_000, 500);
    let high = pay_from(&s, 2, 1_000, 5_000);
    let mid = pay_from(&s, 3, 1_000, 2_000);
    for tx in [low.clone(), high.clone(), mid.clone()] {
        pool.add(tx, &s.chain).unwrap();
    }
    let order: Vec<Txid> = pool
        .select(usize::MAX, usize::MAX)
        .iter()
        .map(|e| e.txid)
        .collect();
    assert_eq!(order, [high.txid(), mid.txid(), low.txid()]);
    let cheap = pay_from(&s, 4, 1_000, 10);
    assert!(matches!(
        pool.add(cheap, &s.chain),
        Err(MempoolError::FeeTooLow { min: 1_000, .. })
    ));
    assert_eq!(pool.add(high, &s.chain), Err(MempoolError::AlreadyKnown));
}

#[test]
fn first_seen_wins_conflicts() {
    let s = setup();
    let mut pool = Mempool::default();
    let a = pay_from(&s, 1, 1_000, 1_000);
    let b = pay_from(&s, 1, 2_000, 50_000); // same coin, much higher fee
    pool.add(a.clone(), &s.chain).unwrap();
    assert_eq!(
        pool.add(b, &s.chain),
        Err(MempoolError::Conflict {
            outpoint: a.inputs[0].prev,
            with: a.txid()
        })
    );
    assert_eq!(pool.len(), 1);
}

#[test]
fn bounded_by_bytes_evicting_lowest_rate_with_descendants() {
    let s = setup();
    let size = pay_from(&s, 1, 1_000, 1_000).encoded_len();
    let mut pool = Mempool::new(size * 3, 0);
    let low = pay_from(&s, 1, 1_000, 1_000);
    pool.add(low.clone(), &s.chain).unwrap();
    // Bob spends the low-fee payment's output before it confirms: a descendant.
    let child = s
        .bob
        .pay(
            &s.chain,
            &pool,
            s.alice.public_key(),
            amount(100),
            2_000,
            None,
        )
        .unwrap();
    pool.add(child.clone(), &s.chain).unwrap();
    pool.add(pay_from(&s, 2, 1_000, 3_000), &s.chain).unwrap();
    assert!(pool.bytes() <= size * 3);
    // Full: a cheaper transaction is refused and nothing changes.
    let before = pool.len();
    assert!(matches!(
        pool.add(pay_from(&s, 3, 1_000, 100), &s.chain),
        Err(MempoolError::Full { .. })
    ));
    assert_eq!(pool.len(), before);
    // A better one evicts the lowest rate and, with it, the child that depends on it.
    let rich = pay_from(&s, 4, 1_000, 50_000);
    pool.add(rich.clone(), &s.chain).unwrap();
    assert!(!pool.contains(&low.txid()));
    assert!(!pool.contains(&child.txid()));
    assert!(pool.contains(&rich.txid()));
    assert!(pool.bytes() <= size * 3);
    assert!(pool.spender(&low.inputs[0].prev).is_none());
}

#[test]
fn parents_are_selected_before_children() {
    let s = setup();
    let mut pool = Mempool::default();
    let parent = pay_from(&s, 1, 1_000_000, 1_000);
    pool.add(parent.clone(), &s.chain).unwrap();
    let child = s
        .bob
        .pay(
            &s.chain,
            &pool,
            s.alice.public_key(),
            amount(1_000),
            50_000,
            None,
        )
        .unwrap();
    pool.add(child.clone(), &s.chain).unwrap();
    let order: Vec<Txid> = pool
        .select(usize::MAX, usize::MAX)
        .iter()
        .map(|e| e.txid)
        .collect();
    assert_eq!(order, [parent.txid(), child.txid()]);
    // The template with both is a valid block.
    let mut chain = s.chain.clone();
    let t = crate::miner::build_template(
        &chain,
        &pool,
        s.alice.public_key(),
        crate::testkit::next_time(&chain),
        b"",
    );
    let blk = crate::testkit::seal(t.block);
    let out = chain.accept_block(&blk, blk.header.time).unwrap();
    assert!(out.tip_changed() && out.invalidated.is_empty());
    pool.update(&chain, &out);
    assert!(pool.is_empty());
}

#[test]
fn mined_and_conflicting_transactions_leave_on_connect() {
    let s = setup();
    let mut chain = s.chain.clone();
    let mut pool = Mempool::default();
    let mined = pay_from(&s, 1, 1_000, 1_000);
    let doomed = pay_from(&s, 2, 1_000, 1_000);
    let kept = pay_from(&s, 3, 1_000, 1_000);
    for tx in [mined.clone(), doomed.clone(), kept.clone()] {
        pool.add(tx, &chain).unwrap();
    }
    // The block carries `mined` and a different spend of `doomed`'s coin.
    let rival = pay_from(&s, 2, 7_000, 1_000);
    let (_, out) = extend(
        &mut chain,
        &[mined.clone(), rival],
        s.alice.public_key(),
        b"b",
    )
    .unwrap();
    pool.update(&chain, &out);
    assert!(!pool.contains(&mined.txid()));
    assert!(!pool.contains(&doomed.txid()));
    assert!(pool.contains(&kept.txid()));
}

#[test]
fn reorg_returns_losing_transactions_and_drops_conflicts() {
    let s = setup();
    let mut a = s.chain.clone();
    let b_start = s.chain.clone();
    let mut pool = Mempool::default();
    let only_a = pay_from(&s, 1, 1_000, 1_000);
    let a_version = pay_from(&s, 2, 1_000, 1_000);
    let (_, out) = extend(
        &mut a,
        &[only_a.clone(), a_version.clone()],
        s.alice.public_key(),
        b"A",
    )
    .unwrap();
    pool.update(&a, &out);
    assert!(pool.is_empty());
    // Branch B spends coin 2 differently and is two blocks long.
    let b_version = pay_from(&s, 2, 9_000, 1_000);
    let mut b = b_start;
    let b1 = block_with(
        &b,
        core::slice::from_ref(&b_version),
        s.bob.public_key(),
        b"B",
    );
    b.accept_block(&b1, b1.header.time).unwrap();
    let b2 = block_with(&b, &[], s.bob.public_key(), b"B");
    a.accept_block(&b1, b1.header.time).unwrap();
    let out = a.accept_block(&b2, b2.header.time).unwrap();
    assert_eq!(out.disconnected.len(), 1);
    pool.update(&a, &out);
    // `only_a` returns; `a_version` conflicts with B's spend and stays out.
    assert!(pool.contains(&only_a.txid()));
    assert!(!pool.contains(&a_version.txid()));
    assert!(!pool.contains(&b_version.txid()));
    assert_eq!(pool.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Packages, limits and dust (issue 9, rules 5 and 6)

use crate::primitives::{Payload, Post, TxIn, TxOut};
use crate::sig::Signature;

/// A coinbase of alice's (block `height`) as a spendable (outpoint, value).
fn coinbase_coin(s: &Setup, height: u64) -> (OutPoint, u64) {
    let hash = s.chain.hash_at(Height(height)).unwrap();
    let cb = &s.chain.block(&hash).unwrap().txs[0];
    (
        OutPoint {
            txid: cb.txid(),
            vout: 0,
        },
        cb.outputs[0].amount.units(),
    )
}

/// Alice spends `prev` (worth `have`) into `outputs` equal outputs to herself, paying `fee`,
/// with an optional post of `text`.
fn split(
    s: &Setup,
    prev: (OutPoint, u64),
    outputs: usize,
    fee: u64,
    text: Option<&str>,
) -> Transaction {
    let each = (prev.1 - fee) / outputs as u64;
    let mut outs = alloc::vec![
        TxOut {
            amount: amount(each),
            key: s.alice.public_key()
        };
        outputs
    ];
    outs[0].amount = amount(prev.1 - fee - each * (outputs as u64 - 1));
    let mut tx = Transaction {
        inputs: alloc::vec![TxIn {
            prev: prev.0,
            sig: Signature([0; 64]),
        }],
        outputs: outs,
        payload: match text {
            None => Payload::None,
            Some(t) => Payload::Post(Post {
                author: s.alice.public_key(),
                text: t.into(),
            }),
        },
    };
    let spent = [TxOut {
        amount: amount(prev.1),
        key: s.alice.public_key(),
    }];
    s.alice.sign_tx(&mut tx, &spent, &s.chain.genesis_hash());
    tx
}

/// Output `vout` of `tx` as a spendable (outpoint, value).
fn out(tx: &Transaction, vout: u32) -> (OutPoint, u64) {
    (
        OutPoint {
            txid: tx.txid(),
            vout,
        },
        tx.outputs[vout as usize].amount.units(),
    )
}

/// A chain of `n` one-in one-out transactions from `root`, each paying `fee(depth)`.
fn chain_of(
    s: &Setup,
    root: (OutPoint, u64),
    n: usize,
    fee: impl Fn(usize) -> u64,
) -> Vec<Transaction> {
    let mut prev = root;
    (0..n)
        .map(|d| {
            let tx = split(s, prev, 1, fee(d), None);
            prev = out(&tx, 0);
            tx
        })
        .collect()
}

#[test]
fn the_25th_chained_transaction_is_accepted_and_the_26th_refused() {
    let s = setup();
    let mut pool = Mempool::default();
    let txs = chain_of(&s, coinbase_coin(&s, 1), 26, |_| 1_000);
    for tx in &txs[..25] {
        pool.add(tx.clone(), &s.chain).unwrap();
    }
    assert!(pool.add(txs[25].clone(), &s.chain).is_err());
    assert_eq!(pool.len(), 25);
    assert!(!pool.contains(&txs[25].txid()));
}

#[test]
fn the_24th_child_of_one_parent_is_accepted_and_the_25th_refused() {
    let s = setup();
    let mut pool = Mempool::default();
    let parent = split(&s, coinbase_coin(&s, 1), 25, 10_000, None);
    pool.add(parent.clone(), &s.chain).unwrap();
    // Parent plus 24 children: 25 in the parent's descendant set.
    for vout in 0..24 {
        pool.add(split(&s, out(&parent, vout), 1, 1_000, None), &s.chain)
            .unwrap();
    }
    let last = split(&s, out(&parent, 24), 1, 1_000, None);
    assert!(pool.add(last, &s.chain).is_err());
    assert_eq!(pool.len(), 25);
}

/// A child of `parent` whose size brings parent + child to exactly `total` bytes.
fn child_sized(s: &Setup, parent: &Transaction, total: usize) -> Transaction {
    let want = total - parent.encoded_len();
    for outputs in (1..=2_400).rev() {
        for len in 1..=crate::primitives::MAX_POST_BYTES {
            let text = "x".repeat(len);
            let tx = split(s, out(parent, 0), outputs, 200_000, Some(&text));
            if tx.encoded_len() == want {
                return tx;
            }
            if tx.encoded_len() > want {
                break;
            }
        }
    }
    panic!("no child of {want} bytes");
}

#[test]
fn ancestor_bytes_are_limited_at_exactly_101_000() {
    let s = setup();
    let parent = split(&s, coinbase_coin(&s, 1), 1_500, 100_000, None);
    let exact = child_sized(&s, &parent, 101_000);
    let over = child_sized(&s, &parent, 101_001);
    let mut pool = Mempool::default();
    pool.add(parent.clone(), &s.chain).unwrap();
    pool.add(exact, &s.chain).unwrap();
    let mut pool = Mempool::default();
    pool.add(parent, &s.chain).unwrap();
    assert!(pool.add(over, &s.chain).is_err());
    assert_eq!(pool.len(), 1);
}

/// The dust limit at the default minimum fee rate: an input (36-byte outpoint and 64-byte
/// signature) plus an output (40 bytes) at three times 1,000 units per 1,000 bytes.
const DEFAULT_DUST: u64 = (100 + 40) * 3;

#[test]
fn dust_outputs_are_refused() {
    let s = setup();
    let mut pool = Mempool::default();
    for (height, value, ok) in [
        (1, 0, false),
        (2, DEFAULT_DUST - 1, false),
        (3, DEFAULT_DUST, true),
    ] {
        let mut tx = pay_from(&s, height, 1_000, 2_000);
        tx.outputs[0].amount = amount(value);
        let change = coinbase_coin(&s, height).1 - value - 2_000;
        tx.outputs[1].amount = amount(change);
        let spent = [TxOut {
            amount: amount(coinbase_coin(&s, height).1),
            key: s.alice.public_key(),
        }];
        s.alice.sign_tx(&mut tx, &spent, &s.chain.genesis_hash());
        assert_eq!(pool.add(tx, &s.chain).is_ok(), ok, "output of {value}");
    }
    assert_eq!(pool.len(), 1);
}

#[test]
fn templates_take_the_high_fee_childs_package() {
    let s = setup();
    let mut pool = Mempool::default();
    // A parent paying the minimum, and its child paying a lot: together 40 units per byte.
    let parent = split(&s, coinbase_coin(&s, 1), 1, 200, None);
    let child = split(&s, out(&parent, 0), 1, 11_000, None);
    // Independent transactions at 20 units per byte (more than the parent, less than the
    // pair together).
    let others: Vec<Transaction> = (2..=5)
        .map(|h| split(&s, coinbase_coin(&s, h), 1, 20 * 143, None))
        .collect();
    for tx in [parent.clone(), child.clone()].iter().chain(&others) {
        pool.add(tx.clone(), &s.chain).unwrap();
    }
    let size = parent.encoded_len();
    // Room for two transactions.
    let picked: Vec<Txid> = pool
        .select(size * 2, usize::MAX)
        .iter()
        .map(|e| e.txid)
        .collect();
    assert_eq!(picked, [parent.txid(), child.txid()]);
}

#[test]
fn a_reorg_returning_a_parent_evicts_the_descendant_over_the_limit() {
    let s = setup();
    let mut a = s.chain.clone();
    let mut pool = Mempool::default();
    let root = split(&s, coinbase_coin(&s, 1), 1, 1_000, None);
    let (_, outcome) = extend(
        &mut a,
        core::slice::from_ref(&root),
        s.alice.public_key(),
        b"A",
    )
    .unwrap();
    pool.update(&a, &outcome);
    // 25 unconfirmed transactions on the confirmed root: within the limit.
    let txs = chain_of(&s, out(&root, 0), 25, |_| 1_000);
    for tx in &txs {
        pool.add(tx.clone(), &a).unwrap();
    }
    // A longer branch without the root: it comes back, and the chain would be 26 long.
    let mut b = s.chain.clone();
    let b1 = block_with(&b, &[], s.bob.public_key(), b"B");
    b.accept_block(&b1, b1.header.time).unwrap();
    let b2 = block_with(&b, &[], s.bob.public_key(), b"B");
    a.accept_block(&b1, b1.header.time).unwrap();
    let outcome = a.accept_block(&b2, b2.header.time).unwrap();
    assert_eq!(outcome.disconnected.len(), 1);
    pool.update(&a, &outcome);
    assert!(pool.contains(&root.txid()));
    for tx in &txs[..24] {
        assert!(pool.contains(&tx.txid()));
    }
    assert!(!pool.contains(&txs[24].txid()));
    assert_eq!(pool.len(), 25);
}

/// Recomputes every entry's ancestor and descendant packages from the parent links.
fn assert_consistent(pool: &Mempool) {
    let mut bytes = 0;
    for (txid, e) in &pool.entries {
        bytes += e.size;
        let mut anc = Package::one(e.fee, e.size);
        for a in pool.ancestors(&e.parents) {
            let a = &pool.entries[&a];
            anc.add(Package::one(a.fee, a.size));
        }
        assert_eq!(e.ancestors, anc, "ancestors of {txid}");
        let mut desc = Package::default();
        for d in pool.with_descendants(*txid) {
            let d = &pool.entries[&d];
            desc.add(Package::one(d.fee, d.size));
        }
        assert_eq!(e.descendants, desc, "descendants of {txid}");
        assert!(e.ancestors.count <= MAX_ANCESTORS && e.ancestors.bytes <= MAX_ANCESTOR_BYTES);
        assert!(e.descendants.count <= MAX_DESCENDANTS);
        assert!(e.descendants.bytes <= MAX_DESCENDANT_BYTES);
        for p in &e.parents {
            assert!(pool.children[p].contains(txid));
        }
    }
    assert_eq!(pool.bytes, bytes);
}

/// Alice's chain with `roots` confirmed, non-coinbase outputs of hers (one fan-out block).
fn with_roots(roots: usize) -> (Setup, Vec<(OutPoint, u64)>) {
    let mut s = setup();
    let fan = split(&s, coinbase_coin(&s, 1), roots, 100_000, None);
    extend(
        &mut s.chain,
        core::slice::from_ref(&fan),
        s.bob.public_key(),
        b"fan",
    )
    .unwrap();
    let coins = (0..roots as u32).map(|v| out(&fan, v)).collect();
    (s, coins)
}

#[test]
fn template_selection_takes_a_bounded_number_of_heap_operations() {
    // Chains at the limit: half whose fee rate rises with depth (the old quadratic case),
    // half whose rate falls (each transaction its own package, 24 descendants to update).
    let (s, roots) = with_roots(16);
    let mut pool = Mempool::new(usize::MAX, 1_000);
    for (k, root) in roots.iter().enumerate() {
        let rising = k % 2 == 0;
        let txs = chain_of(&s, *root, MAX_ANCESTORS, |d| {
            let d = if rising { d } else { MAX_ANCESTORS - d };
            200 * (d as u64 + 1)
        });
        for tx in txs {
            pool.add(tx, &s.chain).unwrap();
        }
    }
    assert_consistent(&pool);
    let n = pool.len();
    assert_eq!(n, 16 * MAX_ANCESTORS);
    for max_bytes in [usize::MAX, 20_000, 3_000] {
        let (chosen, ops) = pool.select_counted(max_bytes, usize::MAX);
        assert!(!chosen.is_empty());
        // Each selection: n to build its heap, a pop per push, and at most one push per
        // transaction (own rate) or per (package, descendant) pair (ancestor rate).
        let bound = (2 + 2 * MAX_DESCENDANTS) * n + 3 * n;
        assert!(
            ops <= bound,
            "{ops} heap operations for {n} transactions (bound {bound})"
        );
    }
    // The rising chains go first and whole, as packages.
    let all = pool.select(usize::MAX, usize::MAX);
    assert_eq!(all.len(), n);
}

#[test]
fn package_accounting_follows_blocks_and_evictions() {
    let (s, roots) = with_roots(4);
    let mut chain = s.chain.clone();
    let mut pool = Mempool::new(DEFAULT_MAX_BYTES, 1_000);
    let a = chain_of(&s, roots[0], 5, |d| 1_000 * (d as u64 + 1));
    let b = chain_of(&s, roots[1], 3, |_| 1_000);
    for tx in a.iter().chain(&b) {
        pool.add(tx.clone(), &chain).unwrap();
    }
    assert_consistent(&pool);
    assert_eq!(pool.get(&a[4].txid()).unwrap().ancestors.count, 5);
    assert_eq!(pool.get(&a[0].txid()).unwrap().descendants.count, 5);
    // Mine the first two of chain a: the rest's ancestries shrink.
    let (_, out) = extend(&mut chain, &a[..2], s.bob.public_key(), b"m").unwrap();
    pool.update(&chain, &out);
    assert_consistent(&pool);
    assert_eq!(pool.get(&a[4].txid()).unwrap().ancestors.count, 3);
    pool.remove_with_descendants(&b[1].txid());
    assert_consistent(&pool);
    assert_eq!(pool.get(&b[0].txid()).unwrap().descendants.count, 1);
    assert_eq!(pool.len(), 4);
}

/// The reference "greedy by own fee rate": repeatedly the highest-rate transaction (older
/// first at equal rates) whose pool parents are all in, if it fits; one that does not fit
/// is dropped with its descendants. Written naively, quadratic, to check the real one.
fn greedy_by_own_rate(pool: &Mempool, max_bytes: usize) -> u64 {
    let mut todo: Vec<&MempoolEntry> = pool.entries();
    let mut inc = BTreeSet::new();
    let (mut bytes, mut fees) = (0, 0);
    loop {
        let ready = todo
            .iter()
            .enumerate()
            .filter(|(_, e)| e.parents.iter().all(|p| inc.contains(p)))
            .max_by(|(_, x), (_, y)| {
                (u128::from(x.fee.units()) * y.size as u128)
                    .cmp(&(u128::from(y.fee.units()) * x.size as u128))
                    .then(y.seq.cmp(&x.seq))
            })
            .map(|(i, _)| i);
        let Some(i) = ready else { return fees };
        let e = todo.remove(i);
        if bytes + e.size <= max_bytes {
            bytes += e.size;
            fees += e.fee.units();
            inc.insert(e.txid);
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
    #[test]
    fn templates_are_valid_ordered_bounded_and_beat_greedy(
        plan in proptest::collection::vec((0usize..64, 0usize..64, 1usize..4, 0u64..40), 1..60),
        max_bytes in 150usize..6_000,
    ) {
        let (s, roots) = with_roots(6);
        let mut pool = Mempool::new(DEFAULT_MAX_BYTES, 1_000);
        let mut unspent: Vec<(OutPoint, u64)> = roots;
        for (a, b, outputs, rate) in plan {
            if unspent.is_empty() {
                break;
            }
            // One or two coins (confirmed or pool outputs), `outputs` outputs, a random rate.
            let first = unspent.remove(a % unspent.len());
            let mut ins = alloc::vec![first];
            if b % 3 == 0 && !unspent.is_empty() {
                ins.push(unspent.remove(b % unspent.len()));
            }
            let have: u64 = ins.iter().map(|c| c.1).sum();
            let size = 1 + 100 * ins.len() + 1 + 40 * outputs + 1;
            let fee = (size as u64 * (1 + rate * rate)).max(size as u64);
            // Coins split often enough cannot pay a high rate: keep them for a later step.
            let Some(left) = have.checked_sub(fee) else {
                unspent.extend(ins);
                continue;
            };
            let each = left / outputs as u64;
            let mut tx = Transaction {
                inputs: ins.iter().map(|c| TxIn { prev: c.0, sig: Signature([0; 64]) }).collect(),
                outputs: alloc::vec![TxOut { amount: amount(each), key: s.alice.public_key() }; outputs],
                payload: Payload::None,
            };
            let spent: Vec<TxOut> = ins.iter().map(|c| TxOut { amount: amount(c.1), key: s.alice.public_key() }).collect();
            s.alice.sign_tx(&mut tx, &spent, &s.chain.genesis_hash());
            match pool.add(tx.clone(), &s.chain) {
                Ok(_) => unspent.extend((0..outputs as u32).map(|v| out(&tx, v))),
                Err(_) => unspent.extend(ins),
            }
            if unspent.is_empty() {
                break;
            }
        }
        assert_consistent(&pool);
        let chosen = pool.select(max_bytes, usize::MAX);
        let mut seen = BTreeSet::new();
        let mut bytes = 0;
        for e in &chosen {
            proptest::prop_assert!(e.parents.iter().all(|p| seen.contains(p)), "parent after child");
            proptest::prop_assert!(seen.insert(e.txid), "twice");
            bytes += e.size;
        }
        proptest::prop_assert!(bytes <= max_bytes);
        let fees: u64 = chosen.iter().map(|e| e.fee.units()).sum();
        proptest::prop_assert!(fees >= greedy_by_own_rate(&pool, max_bytes));
        // The selection as a block body is valid on the chain.
        let txs: Vec<Transaction> = chosen.iter().map(|e| e.tx.clone()).collect();
        let mut chain = s.chain.clone();
        extend(&mut chain, &txs, s.bob.public_key(), b"p").unwrap();
    }
}

#[test]
fn a_full_block_takes_the_better_of_packages_and_own_rates() {
    // A big parent paying the minimum and a small child paying for both: as a package they
    // beat two big independent transactions at 10 units per byte, but in a block with room
    // for exactly those two, taking the package first leaves room for neither.
    let s = setup();
    let mut pool = Mempool::default();
    let parent = split(&s, coinbase_coin(&s, 1), 10, 503, None);
    let child = split(&s, out(&parent, 0), 1, 6_500, None);
    let q = split(&s, coinbase_coin(&s, 2), 10, 5_030, None);
    let r = split(&s, coinbase_coin(&s, 3), 10, 5_030, None);
    assert_eq!((parent.encoded_len(), child.encoded_len()), (503, 143));
    for tx in [&parent, &child, &q, &r] {
        pool.add(tx.clone(), &s.chain).unwrap();
    }
    let g = select::Graph::new(&pool);
    let packages = select::by_ancestor_rate(&g, 1_006, usize::MAX);
    assert_eq!(packages.fees, 503 + 6_500);
    let picked: Vec<Txid> = pool
        .select(1_006, usize::MAX)
        .iter()
        .map(|e| e.txid)
        .collect();
    assert_eq!(picked, [q.txid(), r.txid()]);
}
