//! The wallet never builds a transaction the pool refuses: fee rate, dust, size and the
//! unconfirmed-chain limits (issue 9, rules 5 and 6).

use super::*;
use crate::chain::Chain;
use crate::mempool::{MAX_ANCESTORS, MempoolError};
use crate::params::Params;
use crate::testkit::{child_of, extend, extend_empty, wallet};
use crate::units::Height;

fn amount(u: u64) -> Amount {
    Amount::from_units(u).unwrap()
}

/// A chain where alice has 6 mature coinbases and carol confirmed coins of `values`.
fn setup(values: &[u64]) -> (Chain, Wallet, Wallet, Wallet) {
    let params = Params::test();
    let (alice, bob, carol) = (wallet(1, &params), wallet(2, &params), wallet(3, &params));
    let mut chain = Chain::new(params);
    extend_empty(&mut chain, 8, alice.public_key(), b"");
    if !values.is_empty() {
        let to = carol.public_key();
        let pay: Vec<(PublicKey, u64)> = values.iter().map(|&v| (to, v)).collect();
        let tx = spend_coinbase(&chain, &alice, 1, &pay, 200_000);
        extend(&mut chain, &[tx], alice.public_key(), b"fan").unwrap();
    }
    (chain, alice, bob, carol)
}

#[test]
fn payments_below_the_dust_limit_are_refused() {
    let (chain, alice, bob, _) = setup(&[]);
    let pool = Mempool::default();
    let min = pool.dust_limit();
    let below = amount(min.units() - 1);
    assert_eq!(
        alice.pay(&chain, &pool, bob.public_key(), below, 1_000, None),
        Err(WalletError::Dust { amount: below, min })
    );
    let tx = alice
        .pay(&chain, &pool, bob.public_key(), min, 1_000, None)
        .unwrap();
    Mempool::default().add(tx, &chain).unwrap();
}

#[test]
fn a_stricter_pool_gets_its_fee_rate_and_no_dust_change() {
    // A pool at 5,000 units per kB: dust is below 2,100 units. Carol's one coin leaves about
    // 1,500 units of change at that rate: it goes to the fee instead of a dust output.
    let (chain, _, bob, carol) = setup(&[100_000]);
    let mut pool = Mempool::new(crate::mempool::DEFAULT_MAX_BYTES, 5_000);
    assert_eq!(pool.dust_limit().units(), 2_100);
    let size_one_output = 1 + 100 + 1 + 40 + 1;
    let pay = 100_000 - 5 * size_one_output as u64 - 1_500;
    let tx = carol
        .pay(&chain, &pool, bob.public_key(), amount(pay), 1_000, None)
        .unwrap();
    assert_eq!(tx.outputs.len(), 1);
    pool.add(tx, &chain).unwrap();
}

#[test]
fn a_payment_needing_a_transaction_over_the_size_limit_is_refused() {
    // 1,200 coins of 10,000 units: spending them all takes 120 kB, over the 100 kB limit.
    let (chain, _, bob, carol) = setup(&[10_000; 1_200]);
    let pool = Mempool::default();
    let all = 1_200 * (10_000 - 100) - 1_000;
    assert!(matches!(
        carol.pay(&chain, &pool, bob.public_key(), amount(all), 1_000, None),
        Err(WalletError::TooLarge { .. })
    ));
    // What fits in 100 kB (about 990 inputs) is paid.
    let tx = carol
        .pay(
            &chain,
            &pool,
            bob.public_key(),
            amount(900 * 9_000),
            1_000,
            None,
        )
        .unwrap();
    assert!(tx.encoded_len() <= chain.params().max_tx_size);
    Mempool::default().add(tx, &chain).unwrap();
}

#[test]
fn unconfirmed_chains_stop_at_the_ancestor_limit() {
    let (chain, _, bob, carol) = setup(&[10_000_000, 5_000_000]);
    let mut pool = Mempool::default();
    let pay =
        |pool: &Mempool| carol.pay(&chain, pool, bob.public_key(), amount(1_000), 1_000, None);
    // Carol spends her two confirmed coins first, then pays from change to change, the larger
    // change first: its chain reaches the limit, then the wallet takes the other change.
    for i in 0..2 * MAX_ANCESTORS {
        let tx = pay(&pool).unwrap();
        assert_eq!(tx.inputs.len(), 1);
        assert_eq!(
            pool.contains(&tx.inputs[0].prev.txid),
            i >= 2,
            "payment {i}"
        );
        pool.add(tx, &chain).unwrap();
    }
    // Both chains at the limit and no confirmed coin left: refused, saying why.
    assert_eq!(
        pay(&pool),
        Err(WalletError::Policy(MempoolError::TooManyAncestors {
            max: MAX_ANCESTORS
        }))
    );

    // A wallet whose only coin is at the end of a chain at the limit refuses, saying why,
    // instead of building what the pool refuses.
    let (chain, _, bob, dave) = setup(&[10_000_000]);
    let mut pool = Mempool::default();
    for _ in 0..MAX_ANCESTORS {
        let tx = dave
            .pay(&chain, &pool, bob.public_key(), amount(1_000), 1_000, None)
            .unwrap();
        pool.add(tx, &chain).unwrap();
    }
    assert_eq!(
        dave.pay(&chain, &pool, bob.public_key(), amount(1_000), 1_000, None),
        Err(WalletError::Policy(MempoolError::TooManyAncestors {
            max: MAX_ANCESTORS
        }))
    );
}

/// Spends the coinbase output of block `height` (`from`'s): `pay` (key, units) outputs, the
/// change back to `from` after `fee`.
fn spend_coinbase(
    chain: &Chain,
    from: &Wallet,
    height: u64,
    pay: &[(PublicKey, u64)],
    fee: u64,
) -> Transaction {
    let hash = chain.hash_at(Height(height)).unwrap();
    let cb = &chain.block(&hash).unwrap().txs[0];
    let paid: u64 = pay.iter().map(|(_, v)| v).sum();
    let change = cb.outputs[0].amount.units() - paid - fee;
    let mut tx = Transaction {
        inputs: alloc::vec![TxIn {
            prev: OutPoint {
                txid: cb.txid(),
                vout: 0,
            },
            sig: Signature([0; 64]),
        }],
        outputs: pay
            .iter()
            .chain([&(from.public_key(), change)])
            .map(|&(key, v)| TxOut {
                amount: amount(v),
                key,
            })
            .collect(),
        payload: Payload::None,
    };
    from.sign_tx(&mut tx, &[cb.outputs[0]], &chain.genesis_hash());
    tx
}

#[test]
fn settled_coins_are_spent_before_a_fresh_coinbase() {
    // Alice's coinbases at heights 1..=8, then one at 9 that also collects a fee: her largest
    // coin, mature (the test network's maturity is 2) once the tip is 10, one block deep.
    let (mut chain, alice, bob, _) = setup(&[]);
    let tx = spend_coinbase(&chain, &alice, 2, &[(bob.public_key(), 1_000_000)], 500_000);
    extend(&mut chain, &[tx], alice.public_key(), b"fee").unwrap();
    extend_empty(&mut chain, 1, bob.public_key(), b"");
    let fresh = chain.block(&chain.hash_at(Height(9)).unwrap()).unwrap().txs[0].txid();
    let pool = Mempool::default();
    assert_eq!(
        alice
            .spendable(&chain, &pool, Order::LargestFirst)
            .first()
            .map(|c| c.outpoint.txid),
        Some(fresh),
        "the fresh coinbase is the largest coin"
    );
    // A reorganisation of one or two blocks would remove it, and with it any transaction
    // spending it: the wallet pays from coins at least six blocks deep (heights 1..=5 at
    // first), and the shallower coins its payments leave stay behind the settled ones.
    for _ in 0..3 {
        let settled = |h: Height| h.0 + SETTLED_CONFIRMATIONS <= chain.height().0 + 1;
        let tx = alice
            .pay(&chain, &pool, bob.public_key(), amount(1_000), 1_000, None)
            .unwrap();
        let spent: Vec<Height> = tx
            .inputs
            .iter()
            .map(|i| chain.utxo().coin(&i.prev).unwrap().height)
            .collect();
        assert!(
            spent.iter().all(|&h| settled(h) && h != Height(9)),
            "spent coins of heights {spent:?} at tip {}",
            chain.height().0
        );
        let post = alice.post(&chain, &pool, "hello", 1_000).unwrap();
        assert!(settled(
            chain.utxo().coin(&post.inputs[0].prev).unwrap().height
        ));
        extend(&mut chain, &[tx], bob.public_key(), b"").unwrap();
    }
}

#[test]
fn when_settled_coins_need_too_many_inputs_a_shallow_coin_pays() {
    // Carol: 1,200 settled coins of 10,000 units and one of 20,000,000 confirmed in the tip.
    let (mut chain, alice, bob, carol) = setup(&[10_000; 1_200]);
    extend_empty(&mut chain, 5, bob.public_key(), b"");
    let big = spend_coinbase(
        &chain,
        &alice,
        3,
        &[(carol.public_key(), 20_000_000)],
        100_000,
    );
    extend(
        &mut chain,
        core::slice::from_ref(&big),
        bob.public_key(),
        b"big",
    )
    .unwrap();
    let pool = Mempool::default();
    // 12,000,000 from the small coins alone would take about 1,200 inputs (120 kB).
    let tx = carol
        .pay(
            &chain,
            &pool,
            bob.public_key(),
            amount(12_000_000),
            1_000,
            None,
        )
        .unwrap();
    assert_eq!(tx.inputs.len(), 1);
    assert_eq!(tx.inputs[0].prev.txid, big.txid());
    Mempool::default().add(tx, &chain).unwrap();
    // A small payment still comes from the settled coins.
    let tx = carol
        .pay(
            &chain,
            &pool,
            bob.public_key(),
            amount(100_000),
            1_000,
            None,
        )
        .unwrap();
    assert!(tx.inputs.iter().all(|i| i.prev.txid != big.txid()));
}

#[test]
fn a_payment_made_one_block_after_a_race_survives_the_reorganisation() {
    // Alice mined blocks 1..=10; her coinbase of block 9 (with a fee) is her largest coin,
    // mature at tip 10. Bob's branch from block 8 then overtakes hers with three blocks.
    let (mut chain, alice, bob, _) = setup(&[]);
    let params = chain.params().clone();
    let fork = chain
        .block(&chain.hash_at(Height(8)).unwrap())
        .unwrap()
        .clone();
    let tx = spend_coinbase(&chain, &alice, 2, &[(bob.public_key(), 1_000_000)], 500_000);
    extend(&mut chain, &[tx], alice.public_key(), b"fee").unwrap();
    extend_empty(&mut chain, 1, alice.public_key(), b"");
    let mut pool = Mempool::default();
    let paid = alice
        .pay(&chain, &pool, bob.public_key(), amount(1_000), 1_000, None)
        .unwrap();
    pool.add(paid.clone(), &chain).unwrap();
    let posted = alice.post(&chain, &pool, "hello", 1_000).unwrap();
    // What the largest coin would have paid: it spends the coinbase of block 9.
    let fresh = spend_coinbase(&chain, &alice, 9, &[(bob.public_key(), 1_000)], 1_000);
    Mempool::default().add(fresh.clone(), &chain).unwrap();

    let mut parent = (fork, Height(8));
    for i in 0..3u8 {
        let block = child_of(&params, &parent.0, parent.1, bob.public_key(), &[b'b', i]);
        chain.accept_block(&block, block.header.time).unwrap();
        parent = (block, parent.1.next());
    }
    assert_eq!(chain.height(), Height(11));
    assert_eq!(
        chain.hash_at(Height(11)),
        Some(parent.0.hash()),
        "bob's branch won"
    );
    // The wallet's transactions still confirm; the one spending the orphaned coinbase cannot.
    let mut pool = Mempool::default();
    pool.add(paid, &chain).unwrap();
    pool.add(posted, &chain).unwrap();
    assert!(pool.add(fresh, &chain).is_err());
}
