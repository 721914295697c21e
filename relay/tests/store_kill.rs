#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A writer on the redb store, with bodies read back through `load_block` (headers-only
//! start-up), SIGKILLed at 50 pseudo-random points during sync, reorgs and bodies arriving
//! before their parents': every restart loads, is consistent, and equals a replay of its
//! active chain from genesis.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tabcoin_core::chain::{BlockOutcome, Chain};
use tabcoin_core::params::Params;
use tabcoin_core::store::Store;
use tabcoin_core::testkit::{block_with, child_of, wallet};
use tabcoin_core::units::Height;
use tabcoin_relay::store::RedbStore;

const DIR_VAR: &str = "TABCOIN_STORE_KILL_DIR";

/// Persists `out` and answers what the chain asks for from the store until it asks nothing.
fn settle(chain: &mut Chain, store: &mut RedbStore, mut out: BlockOutcome) {
    loop {
        store.persist(&out.changes).unwrap();
        let Some(hash) = out.need.pop() else { return };
        let rest = out.need;
        let (block, undo) = store.load_block(&hash).unwrap();
        out = chain.provide(hash, block, undo);
        out.need.extend(rest);
    }
}

fn open(dir: &Path, params: &Params) -> (RedbStore, Chain) {
    let mut store = RedbStore::open(dir, params.genesis_hash()).unwrap();
    let stored = store.load().unwrap();
    assert!(stored.blocks.is_empty(), "start-up reads no body");
    // A tiny cache: every reorg reads undo data and bodies from the store.
    let chain = Chain::load_with_cache(params.clone(), stored, 0).unwrap();
    (store, chain)
}

#[test]
#[ignore = "run by a_killed_writer_restarts_equal_to_a_replay in a child process"]
fn kill_writer_child() {
    let Some(dir) = std::env::var_os(DIR_VAR) else {
        return;
    };
    let params = Params::test();
    let (mut store, mut chain) = open(Path::new(&dir), &params);
    let alice = wallet(1, &params).public_key();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = chain.height().0;
    while Instant::now() < deadline {
        round += 1;
        let tip = chain.tip().clone();
        if round % 5 == 0 && tip.height.0 >= 3 {
            // Three blocks on the tip's grandparent: a two-block reorg.
            let base_hash = chain.hash_at(Height(tip.height.0 - 2)).unwrap();
            let (base, _) = store.load_block(&base_hash).unwrap();
            let mut parent = base.unwrap_or_else(|| chain.block(&base_hash).unwrap().clone());
            let mut height = Height(tip.height.0 - 2);
            for _ in 0..3 {
                let b = child_of(&params, &parent, height, alice, &round.to_le_bytes());
                let out = chain.accept_block(&b, b.header.time).unwrap();
                settle(&mut chain, &mut store, out);
                parent = b;
                height = height.next();
            }
        } else if round % 7 == 3 {
            // Out of order, as from several peers: both headers, then the child's body
            // (stored while its parent is only a header), a moment, then the parent's. A
            // kill in between leaves a stored body that does not link.
            let b1 = block_with(&chain, &[], alice, &round.to_le_bytes());
            let b2 = child_of(&params, &b1, chain.height().next(), alice, b"late parent");
            for h in [&b1.header, &b2.header] {
                chain.accept_header(h, h.time).unwrap();
            }
            let early = chain.accept_block(&b2, b2.header.time).unwrap();
            assert!(early.connected.is_empty());
            settle(&mut chain, &mut store, early);
            std::thread::sleep(Duration::from_millis(5));
            let out = chain.accept_block(&b1, b1.header.time).unwrap();
            settle(&mut chain, &mut store, out);
        } else {
            let b = block_with(&chain, &[], alice, b"");
            let out = chain.accept_block(&b, b.header.time).unwrap();
            settle(&mut chain, &mut store, out);
        }
        println!("committed {}", chain.height().0);
    }
}

#[test]
fn a_killed_writer_restarts_equal_to_a_replay() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
    // Kills after which the store held more bodies that do not link than before.
    let (mut unlinked, mut kills_between) = (0, 0);
    for kill in 0..50 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "kill_writer_child",
                "--nocapture",
                "--include-ignored",
            ])
            .env(DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("committed") && tx.send(()).is_err() {
                    return;
                }
            }
        });
        assert!(
            rx.recv_timeout(Duration::from_secs(60)).is_ok(),
            "kill {kill}: the writer never committed"
        );
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        std::thread::sleep(Duration::from_millis(rng % 200));
        child.kill().unwrap();
        child.wait().unwrap();
        drop(rx);
        reader.join().unwrap();

        let (mut store, chain) = open(dir.path(), &params);
        let now = store
            .load()
            .unwrap()
            .headers
            .iter()
            .filter(|h| chain.entry(&h.hash()).is_none())
            .count();
        if now > unlinked {
            kills_between += 1;
            unlinked = now;
        }
        let mut replay = Chain::new(params.clone());
        for h in &chain.active_chain()[1..] {
            let (b, undo) = store.load_block(h).unwrap();
            assert!(
                undo.is_some(),
                "kill {kill}: active block {h} has undo data"
            );
            let b = b.unwrap();
            let out = replay.accept_block(&b, b.header.time).unwrap();
            assert_eq!(out.connected, vec![*h], "kill {kill}");
        }
        assert_eq!(replay.tip().hash, chain.tip().hash, "kill {kill}");
        assert_eq!(replay.utxo().digest(), chain.utxo().digest(), "kill {kill}");
    }
    // Some kills landed between a child's body and its parent's: those restarts left the
    // unlinked body out (and loaded) instead of refusing the store.
    assert!(kills_between >= 1, "no kill landed between the two bodies");
}
