//! A local demonstration of the consensus core on the test network: mines a short chain,
//! sends a payment and a signed post through the mempool, survives a reorg, persists to a
//! store and reloads. `npm start` runs this until the relay exists.
//!
//! Run: `cargo run --release -p tabcoin-core --features test-utils --example devnet`

use tabcoin_core::chain::Chain;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::miner::{build_template, mine};
use tabcoin_core::params::Params;
use tabcoin_core::store::{MemStore, Store};
use tabcoin_core::testkit::{child_of, next_time, wallet};
use tabcoin_core::units::Amount;

fn main() {
    let params = Params::test();
    let alice = wallet(1, &params);
    let bob = wallet(2, &params);
    let mut chain = Chain::new(params.clone());
    let mut pool = Mempool::default();
    let mut store = MemStore::new();
    println!("network {} genesis {}", params.name, chain.genesis_hash());
    println!("alice {}\nbob   {}", alice.address(), bob.address());

    let mine_one = |chain: &mut Chain, pool: &mut Mempool, store: &mut MemStore, who: &str| {
        let key = if who == "alice" {
            alice.public_key()
        } else {
            bob.public_key()
        };
        let t = build_template(chain, pool, key, next_time(chain), who.as_bytes());
        let block = mine(t.block).expect("test bits are valid");
        let out = chain
            .accept_block(&block, block.header.time)
            .expect("own block is valid");
        store.persist(&out.changes).expect("memory store");
        pool.update(chain, &out);
        println!(
            "  block {:>3} {} txs={} reward={} (mined by {who})",
            chain.height(),
            block.hash(),
            block.txs.len(),
            t.reward
        );
    };

    println!("mining 4 blocks for alice");
    for _ in 0..4 {
        mine_one(&mut chain, &mut pool, &mut store, "alice");
    }
    let pay = alice
        .pay(
            &chain,
            &pool,
            bob.public_key(),
            Amount::parse_coins("12.5").expect("literal"),
            1_000,
            None,
        )
        .expect("alice has mature coins");
    println!(
        "alice pays bob 12.5: tx {}",
        pool.add(pay, &chain).expect("valid payment")
    );
    let post = alice
        .post(&chain, &pool, "hello from the devnet", 1_000)
        .expect("alice can post");
    println!(
        "alice posts: tx {}",
        pool.add(post, &chain).expect("valid post")
    );
    println!("mempool: {} txs, {} bytes", pool.len(), pool.bytes());
    mine_one(&mut chain, &mut pool, &mut store, "bob");

    // A competing two-block branch from the parent of the tip forces a reorg: the payment
    // and the post return to the mempool.
    let fork_height = tabcoin_core::units::Height(chain.height().0 - 1);
    let fork = chain
        .block(&chain.hash_at(fork_height).expect("active"))
        .expect("stored")
        .clone();
    let b1 = child_of(&params, &fork, fork_height, bob.public_key(), b"rival-1");
    let b2 = child_of(
        &params,
        &b1,
        fork_height.next(),
        bob.public_key(),
        b"rival-2",
    );
    for b in [&b1, &b2] {
        let out = chain
            .accept_block(b, b.header.time)
            .expect("rival block is valid");
        store.persist(&out.changes).expect("memory store");
        pool.update(&chain, &out);
        if !out.disconnected.is_empty() {
            println!(
                "reorg: {} block(s) disconnected, tip now {}",
                out.disconnected.len(),
                chain.tip().hash
            );
        }
    }
    println!(
        "mempool after reorg: {} txs (payment and post returned)",
        pool.len()
    );
    mine_one(&mut chain, &mut pool, &mut store, "alice");

    for (name, w) in [("alice", &alice), ("bob", &bob)] {
        let b = w.balance(&chain, &pool);
        println!(
            "{name}: confirmed {} immature {} pending {}",
            b.confirmed, b.immature, b.pending
        );
    }
    let reloaded = Chain::load(params.clone(), store.load().expect("memory store"))
        .expect("store is consistent");
    assert_eq!(reloaded.tip().hash, chain.tip().hash);
    assert_eq!(reloaded.utxo(), chain.utxo());
    println!(
        "reloaded from store ({} writes): tip {} height {} utxo digest {}",
        store.writes,
        reloaded.tip().hash,
        reloaded.height(),
        reloaded.utxo().digest()
    );
    assert_eq!(chain.utxo().total_value(), chain.issued());
    println!(
        "supply check: unspent value {} = issued",
        chain.utxo().total_value()
    );
}
