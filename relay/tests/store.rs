#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The redb store on real files: round trips through `Chain::load`, network and identity
//! checks, corrupt records, and crash safety under SIGKILL.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redb::{Database, TableDefinition};
use tabcoin_core::addrman::AddrMeta;
use tabcoin_core::chain::{BlockOutcome, Chain};
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, BlockHash};
use tabcoin_core::sig::Keypair;
use tabcoin_core::store::{ChangeSet, Store};
use tabcoin_core::testkit::{block_with, child_of, extend, extend_empty, wallet};
use tabcoin_core::units::{Amount, COIN, Height};
use tabcoin_core::wire::NodeRecord;
use tabcoin_relay::store::{RedbStore, StoreError};

/// Set (to the store directory) only in the child process of the crash test.
const WRITER_DIR_VAR: &str = "TABCOIN_STORE_WRITER_DIR";

fn genesis(params: &Params) -> BlockHash {
    params.genesis_block().hash()
}

fn accept(chain: &mut Chain, block: &Block) -> BlockOutcome {
    chain.accept_block(block, block.header.time).unwrap()
}

/// Reopens the store in `dir` and rebuilds the chain it holds. `load` returns headers only;
/// for checking, every body and undo record is then read back with `load_block` and the
/// chain is loaded with them (so it holds every body in memory, like before bodies moved
/// to the store).
fn reload(dir: &Path, params: &Params) -> (ChangeSet, Chain) {
    let mut store = RedbStore::open(dir, genesis(params)).unwrap();
    load_full(&mut store, params)
}

/// What [`reload`] does, on an open store.
fn load_full(store: &mut RedbStore, params: &Params) -> (ChangeSet, Chain) {
    let mut stored = store.load().unwrap();
    assert!(stored.blocks.is_empty() && stored.undo.is_empty());
    for header in std::mem::take(&mut stored.headers) {
        let (block, undo) = store.load_block(&header.hash()).unwrap();
        stored
            .blocks
            .push(block.expect("a stored header has its body"));
        if let Some(undo) = undo {
            stored.undo.insert(header.hash(), Some(undo));
        }
    }
    let chain = Chain::load_with_cache(params.clone(), stored.clone(), usize::MAX).unwrap();
    (stored, chain)
}

fn assert_same_chain(loaded: &Chain, expected: &Chain) {
    assert_eq!(loaded.tip().hash, expected.tip().hash);
    assert_eq!(loaded.active_chain(), expected.active_chain());
    assert_eq!(loaded.utxo(), expected.utxo());
    for h in &expected.active_chain()[1..] {
        assert_eq!(loaded.undo_data(h), expected.undo_data(h));
    }
}

/// Every stored block comes after its parent (or has genesis as its parent).
fn assert_parents_first(stored: &ChangeSet, genesis: BlockHash) {
    let mut seen = BTreeSet::from([genesis]);
    for b in &stored.blocks {
        assert!(
            seen.contains(&b.header.prev),
            "block {} before its parent",
            b.hash()
        );
        seen.insert(b.hash());
    }
}

fn node(i: u8, last_seen: u64) -> (String, NodeRecord) {
    let url = format!("wss://relay{i}.example/ws");
    let key = Keypair::from_seed(&[i; 32]);
    let rec = NodeRecord::sign(&key, &Params::test().genesis_hash(), url.clone(), last_seen);
    (url, rec)
}

/// A relay record of the layout from before records were signed (id and time, 40 bytes) is
/// skipped on load, not an error: the node relearns the relay signed.
#[test]
fn an_unsigned_record_of_the_old_layout_is_skipped() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    let (url, rec) = node(3, 1_000);
    let mut cs = ChangeSet::default();
    cs.nodes.insert(url.clone(), Some(rec.clone()));
    store.persist(&cs).unwrap();
    drop(store);
    const NODES: TableDefinition<&str, &[u8]> = TableDefinition::new("nodes");
    {
        let db = Database::open(dir.path().join("chain.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut nodes = tx.open_table(NODES).unwrap();
            let mut old = vec![7u8; 32];
            old.extend_from_slice(&5u64.to_le_bytes());
            nodes
                .insert("wss://old.example/ws", old.as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    let loaded = store.load().unwrap();
    assert_eq!(loaded.nodes.len(), 1);
    assert_eq!(loaded.nodes[&url], Some(rec));
}

#[test]
fn chain_reorg_and_nodes_round_trip() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    assert_eq!(store.load().unwrap(), ChangeSet::default());

    let alice = wallet(1, &params);
    let bob = wallet(2, &params);
    let mut chain = Chain::new(params.clone());
    for _ in 0..4 {
        let (_, outcome) = extend(&mut chain, &[], alice.public_key(), b"").unwrap();
        store.persist(&outcome.changes).unwrap();
    }
    // Two blocks merged into one ChangeSet, persisted in one transaction.
    let mut merged = ChangeSet::default();
    for _ in 0..2 {
        merged.merge(
            extend(&mut chain, &[], alice.public_key(), b"")
                .unwrap()
                .1
                .changes,
        );
    }
    store.persist(&merged).unwrap();
    // A payment with a post, so the UTXO set has spends and the undo data is not empty.
    let pay = alice
        .pay(
            &chain,
            &Mempool::new(usize::MAX, 0),
            bob.public_key(),
            Amount::from_units(3 * COIN).unwrap(),
            1_000,
            Some("stored"),
        )
        .unwrap();
    let paid = block_with(&chain, &[pay], bob.public_key(), b"");
    store.persist(&accept(&mut chain, &paid).changes).unwrap();
    assert!(!chain.undo_data(&paid.hash()).unwrap().spent.is_empty());

    drop(store);
    let (stored, loaded) = reload(dir.path(), &params);
    assert_parents_first(&stored, chain.genesis_hash());
    assert_eq!(stored.blocks.len(), 7);
    assert_same_chain(&loaded, &chain);
    assert_eq!(loaded.height(), Height(7));

    // A longer side branch forking below the payment block: the reorg undoes it.
    let fork_hash = chain.hash_at(Height(5)).unwrap();
    let mut parent = chain.block(&fork_hash).unwrap().clone();
    let mut height = Height(5);
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    // A block stored again (merged ChangeSets may repeat one) keeps its place and count.
    store
        .persist(&ChangeSet {
            blocks: vec![paid.clone()],
            ..ChangeSet::default()
        })
        .unwrap();
    let mut disconnected = Vec::new();
    for _ in 0..3 {
        let b = child_of(&params, &parent, height, bob.public_key(), b"side");
        let outcome = accept(&mut chain, &b);
        disconnected.extend(outcome.disconnected.iter().copied());
        store.persist(&outcome.changes).unwrap();
        parent = b;
        height = height.next();
    }
    assert_eq!(chain.tip().hash, parent.hash());
    assert_eq!(
        disconnected,
        vec![paid.hash(), loaded.hash_at(Height(6)).unwrap()]
    );

    // Known relays: add two, then forget one and update the other.
    let (url1, rec1) = node(1, 100);
    let (url2, rec2) = node(2, 200);
    let mut nodes = ChangeSet::default();
    nodes.nodes.insert(url1.clone(), Some(rec1));
    nodes.nodes.insert(url2.clone(), Some(rec2));
    store.persist(&nodes).unwrap();
    let (url3, rec3) = node(3, 300);
    let (_, rec2_later) = node(2, 250);
    let mut nodes = ChangeSet::default();
    nodes.nodes.insert(url1.clone(), None);
    nodes.nodes.insert(url2.clone(), Some(rec2_later.clone()));
    nodes.nodes.insert(url3.clone(), Some(rec3.clone()));
    store.persist(&nodes).unwrap();
    drop(store);

    let (stored, loaded) = reload(dir.path(), &params);
    assert_parents_first(&stored, chain.genesis_hash());
    assert_eq!(stored.blocks.len(), 10);
    assert_same_chain(&loaded, &chain);
    // Undo data of the disconnected blocks was deleted.
    let undo_keys: BTreeSet<BlockHash> = stored.undo.keys().copied().collect();
    let active: BTreeSet<BlockHash> = chain.active_chain()[1..].iter().copied().collect();
    assert_eq!(undo_keys, active);
    // The payment is gone with its block: Bob holds only the side branch's coinbases.
    assert_eq!(loaded.utxo().coins_of(&bob.public_key()).count(), 3);
    let expected_nodes: BTreeMap<String, Option<NodeRecord>> =
        BTreeMap::from([(url2, Some(rec2_later)), (url3, Some(rec3))]);
    assert_eq!(stored.nodes, expected_nodes);
}

#[test]
fn bans_survive_a_reopen_and_lifted_ones_are_gone() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    let mut bans = ChangeSet::default();
    bans.bans.insert("2001:db8::/64".into(), Some(1_000));
    bans.bans.insert("127.0.0.9".into(), Some(2_000));
    store.persist(&bans).unwrap();
    let mut lift = ChangeSet::default();
    lift.bans.insert("127.0.0.9".into(), None);
    store.persist(&lift).unwrap();
    drop(store);
    let (stored, _) = reload(dir.path(), &params);
    assert_eq!(
        stored.bans,
        BTreeMap::from([("2001:db8::/64".to_string(), Some(1_000))])
    );
}

#[test]
fn relay_provenance_survives_a_reopen_beside_its_record() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    let url = String::from("wss://relay.example.org/ws");
    let meta = AddrMeta {
        source: "203.0.113.9".into(),
        tried: true,
        last_success_s: 1_700_000_000,
        failures: 2,
    };
    let mut cs = ChangeSet::default();
    let rec = NodeRecord::sign(
        &Keypair::from_seed(&[4; 32]),
        &params.genesis_hash(),
        url.clone(),
        9,
    );
    cs.nodes.insert(url.clone(), Some(rec.clone()));
    cs.node_meta.insert(url.clone(), Some(meta.clone()));
    cs.node_meta
        .insert("ws://gone.example/".into(), Some(AddrMeta::default()));
    store.persist(&cs).unwrap();
    let mut forget = ChangeSet::default();
    forget.node_meta.insert("ws://gone.example/".into(), None);
    store.persist(&forget).unwrap();
    drop(store);
    let (stored, _) = reload(dir.path(), &params);
    assert_eq!(stored.nodes, BTreeMap::from([(url.clone(), Some(rec))]));
    assert_eq!(stored.node_meta, BTreeMap::from([(url, Some(meta))]));
}

#[test]
fn refuses_a_store_of_another_network() {
    let dir = tempfile::tempdir().unwrap();
    let test = genesis(&Params::test());
    let main = genesis(&Params::main());
    drop(RedbStore::open(dir.path(), test).unwrap());
    match RedbStore::open(dir.path(), main) {
        Err(StoreError::WrongNetwork { stored, expected }) => {
            assert_eq!(stored, test);
            assert_eq!(expected, main);
        }
        other => panic!("expected WrongNetwork, got {other:?}"),
    }
    // The refusal changed nothing: the right network still opens.
    drop(RedbStore::open(dir.path(), test).unwrap());
}

#[test]
fn identity_seed_is_generated_once() {
    let dir = tempfile::tempdir().unwrap();
    let g = genesis(&Params::test());
    let mut store = RedbStore::open(&dir.path().join("nested/dir"), g).unwrap();
    let seed = store.identity_seed(|| [9; 32]).unwrap();
    assert_eq!(seed, [9; 32]);
    let again = store
        .identity_seed(|| panic!("the seed is already stored"))
        .unwrap();
    assert_eq!(again, seed);
    drop(store);
    let mut store = RedbStore::open(&dir.path().join("nested/dir"), g).unwrap();
    assert_eq!(store.identity_seed(|| [1; 32]).unwrap(), seed);
}

#[test]
fn corrupt_record_is_an_error_not_a_panic() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    // Blocks made by one chain, connected by another whose outcomes are persisted.
    let mut miner = Chain::new(params.clone());
    let blocks = extend_empty(&mut miner, 3, wallet(1, &params).public_key(), b"");
    let mut chain = Chain::new(params.clone());
    for b in &blocks {
        store.persist(&accept(&mut chain, b).changes).unwrap();
    }
    assert_eq!(store.load().unwrap().utxo.len(), 3);
    drop(store);

    // Damage the file as another program would: a utxo record that is not a coin.
    const UTXO: TableDefinition<&[u8; 36], &[u8]> = TableDefinition::new("utxo");
    {
        let db = Database::open(dir.path().join("chain.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut utxo = tx.open_table(UTXO).unwrap();
            utxo.insert(&[0xab; 36], [0xff, 0x00, 0x13].as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }

    let mut store = RedbStore::open(dir.path(), genesis(&params)).unwrap();
    match store.load() {
        Err(StoreError::Corrupt(msg)) => {
            assert!(msg.contains("utxo"), "{msg}");
            assert!(msg.contains(&"ab".repeat(36)), "{msg}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Builds the next block: every third one pays Bob, every seventh starts a one-block reorg.
/// Accepts each block and hands its outcome to `commit` before building the next one, so the
/// caller can persist every ChangeSet (and report the tip it stored) in order.
fn next_changes(
    chain: &mut Chain,
    params: &Params,
    round: u64,
    mut commit: impl FnMut(&Chain, BlockOutcome),
) {
    let alice = wallet(1, params);
    let bob = wallet(2, params);
    let tip = chain.tip().clone();
    if round % 7 == 6 && tip.height.0 >= 2 {
        // Two blocks on the tip's parent: the second outweighs the tip.
        let parent_hash = tip.header.prev;
        let mut parent = chain.block(&parent_hash).unwrap().clone();
        let mut height = Height(tip.height.0 - 1);
        for _ in 0..2 {
            let extra = round.to_le_bytes();
            let b = child_of(params, &parent, height, bob.public_key(), &extra);
            let outcome = accept(chain, &b);
            commit(chain, outcome);
            parent = b;
            height = height.next();
        }
        return;
    }
    let txs = if round.is_multiple_of(3) {
        alice
            .pay(
                chain,
                &Mempool::new(usize::MAX, 0),
                bob.public_key(),
                Amount::from_units(COIN).unwrap(),
                1_000,
                None,
            )
            .ok()
            .into_iter()
            .collect()
    } else {
        Vec::new()
    };
    let b = block_with(chain, &txs, alice.public_key(), b"");
    let outcome = accept(chain, &b);
    commit(chain, outcome);
}

/// The child process of `crash_safety_under_sigkill`: resumes the chain stored in the
/// directory and persists block after block until killed (or 30 s pass).
#[test]
#[ignore = "run by crash_safety_under_sigkill in a child process"]
fn writer_child() {
    let Some(dir) = std::env::var_os(WRITER_DIR_VAR) else {
        return;
    };
    let params = Params::test();
    let mut store = RedbStore::open(Path::new(&dir), genesis(&params)).unwrap();
    let (_, mut chain) = load_full(&mut store, &params);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut round = chain.height().0;
    while Instant::now() < deadline {
        // Report a commit only once its ChangeSet is stored, and report the tip that the
        // stored ChangeSet leaves (not a later one still in memory).
        next_changes(&mut chain, &params, round, |chain, outcome| {
            store.persist(&outcome.changes).unwrap();
            let tip = chain.tip();
            println!("committed {} {}", tip.height.0, tip.hash);
        });
        round += 1;
    }
}

#[test]
fn crash_safety_under_sigkill() {
    let params = Params::test();
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut height_before = 0;
    for delay_ms in [1_000u64, 1_250, 1_500] {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "writer_child",
                "--nocapture",
                "--include-ignored",
            ])
            .env(WRITER_DIR_VAR, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("committed ") {
                    let (height, hash) = rest.split_once(' ').unwrap();
                    let commit = (
                        height.parse::<u64>().unwrap(),
                        BlockHash::from_hex(hash).unwrap(),
                    );
                    if lines_tx.send(commit).is_err() {
                        break;
                    }
                }
            }
        });
        // Start the clock at the first commit, so a slow start does not make the test vacuous.
        let first = lines.recv_timeout(Duration::from_secs(60));
        assert!(first.is_ok(), "the writer never committed");
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let mut reported: Vec<(u64, BlockHash)> = first.into_iter().collect();
        reported.extend(lines.try_iter());
        let last_reported = *reported.last().unwrap();

        let (stored, chain) = reload(dir.path(), &params);
        assert_parents_first(&stored, chain.genesis_hash());
        // Every commit the writer saw return is in the store.
        assert!(
            chain.height().0 >= last_reported.0 && chain.entry(&last_reported.1).is_some(),
            "killed {delay_ms} ms after the first commit: reloaded height {} (tip {}), but the \
             writer had reported commits {:?}",
            chain.height().0,
            chain.tip().hash,
            &reported[reported.len().saturating_sub(3)..],
        );
        // The stored UTXO set and undo data are exactly what replaying the active chain gives.
        let mut replay = Chain::new(params.clone());
        for h in &chain.active_chain()[1..] {
            let b = chain.block(h).unwrap().clone();
            let outcome = accept(&mut replay, &b);
            assert_eq!(outcome.connected, vec![*h]);
        }
        assert_same_chain(&chain, &replay);
        assert_eq!(replay.utxo().digest(), chain.utxo().digest());
        let blocks = chain.height().0 - height_before;
        eprintln!(
            "killed {delay_ms} ms after the first commit: {} commits reported, height {} -> {} \
             ({blocks} blocks), {} blocks stored in all, last reported commit at height {}",
            reported.len(),
            height_before,
            chain.height().0,
            stored.blocks.len(),
            last_reported.0
        );
        assert!(blocks > 0);
        height_before = chain.height().0;
    }
}
