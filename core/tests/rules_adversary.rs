//! Consensus rules that hold against an adversary (issue 9): limits every decoder shares,
//! posts that cannot lie, signatures that commit to what they spend.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod rules_common;

use rules_common::{Setup, setup, setup_with};
use tabcoin_core::chain::ChainError;
use tabcoin_core::encode::{Decode, Encode};
use tabcoin_core::params::Params;
use tabcoin_core::primitives::{Block, OutPoint, Payload, Post, Transaction, TxOut, Txid};
use tabcoin_core::testkit::{next_time, seal};
use tabcoin_core::units::Amount;
use tabcoin_core::utxo::UtxoView;
use tabcoin_core::validation::{BlockError, TxError, check_tx};

/// Rule 1: a coinbase may not carry more outputs than any node can decode. Before, the
/// chain accepted such a block, which no peer could receive and no store could read back.
#[test]
fn rule_coinbase_outputs_within_the_decode_limit() {
    use tabcoin_core::primitives::MAX_TX_OUTPUTS;
    let mut s = setup();
    let mut blk = s.template(&[]);
    let key = s.alice.public_key();
    blk.txs[0].outputs = vec![
        TxOut {
            amount: Amount::from_units(1).unwrap(),
            key,
        };
        MAX_TX_OUTPUTS + 1
    ];
    let blk = seal(blk);
    assert!(Block::decode(&blk.encode()).is_err(), "undecodable block");
    assert_eq!(
        s.reject(&blk),
        BlockError::CoinbaseTooManyOutputs {
            count: MAX_TX_OUTPUTS + 1,
            max: MAX_TX_OUTPUTS
        }
    );
    // At the limit it is valid, and decodes.
    let mut blk = s.template(&[]);
    blk.txs[0].outputs = vec![
        TxOut {
            amount: Amount::from_units(1).unwrap(),
            key,
        };
        MAX_TX_OUTPUTS
    ];
    let blk = seal(blk);
    assert_eq!(Block::decode(&blk.encode()).unwrap(), blk);
    assert!(
        s.chain
            .accept_block(&blk, blk.header.time)
            .unwrap()
            .tip_changed()
    );
}

/// Rule 1 for loose transactions: the input and output counts are validation rules whatever
/// the network's size limit.
#[test]
fn rule_tx_counts_within_the_decode_limit() {
    use tabcoin_core::primitives::{MAX_TX_INPUTS, MAX_TX_OUTPUTS};
    let params = Params {
        max_tx_size: usize::MAX,
        ..Params::test()
    };
    let s = setup_with(params);
    let tx = s.tx(
        &[s.coinbase_of(1)],
        vec![s.pay_bob(1); MAX_TX_OUTPUTS + 1],
        Payload::None,
    );
    assert_eq!(
        check_tx(&tx, &s.params),
        Err(TxError::TooManyOutputs {
            count: MAX_TX_OUTPUTS + 1,
            max: MAX_TX_OUTPUTS
        })
    );
    let inputs: Vec<OutPoint> = (0..=MAX_TX_INPUTS as u32)
        .map(|vout| OutPoint {
            txid: Txid::from_bytes([3; 32]),
            vout,
        })
        .collect();
    let tx = s.tx(&inputs, vec![s.pay_bob(1)], Payload::None);
    assert_eq!(
        check_tx(&tx, &s.params),
        Err(TxError::TooManyInputs {
            count: MAX_TX_INPUTS + 1,
            max: MAX_TX_INPUTS
        })
    );
}

/// Rule 3: a body that matches its header (merkle root) and breaks a body rule makes the
/// header invalid for good; before, the header stayed the best header forever.
#[test]
fn rule_body_over_a_limit_marks_its_header_invalid() {
    type Body = fn(&Setup) -> Vec<Transaction>;
    let cases: [(Params, Body); 3] = [
        (
            Params {
                max_block_txs: 2,
                ..Params::test()
            },
            |s| {
                (1..=2)
                    .map(|h| s.tx(&[s.coinbase_of(h)], vec![s.pay_bob(1_000)], Payload::None))
                    .collect()
            },
        ),
        (
            Params {
                max_block_size: 200,
                ..Params::test()
            },
            |s| vec![s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1_000)], Payload::None)],
        ),
        (Params::test(), |_| Vec::new()),
    ];
    for (params, txs) in cases {
        let mut s = setup_with(params);
        let txs = txs(&s);
        let mut blk = s.template(&txs);
        if txs.is_empty() {
            blk.txs.clear();
        }
        let blk = seal(blk);
        let hash = blk.hash();
        let now = next_time(&s.chain);
        s.chain.accept_header(&blk.header, now).unwrap();
        assert_eq!(s.chain.best_header().hash, hash);
        let err = match s.chain.accept_block(&blk, now) {
            Err(ChainError::Block(e)) => e,
            other => panic!("accepted: {other:?}"),
        };
        assert!(
            matches!(
                err,
                BlockError::TooManyTransactions { .. }
                    | BlockError::TooLarge { .. }
                    | BlockError::NoTransactions
            ),
            "{err:?}"
        );
        assert_eq!(
            s.chain.entry(&hash).unwrap().status,
            tabcoin_core::chain::Status::Invalid,
            "{err:?} must mark the header invalid"
        );
        assert_ne!(s.chain.best_header().hash, hash);
        assert!(matches!(
            s.chain.accept_block(&blk, now),
            Err(ChainError::KnownInvalid { .. })
        ));
    }
}

/// Rule 7: a post may not carry bidirectional formatting controls (U+202E turns "evil" into
/// "live" on screen) nor consist of invisible characters only.
#[test]
fn rule_posts_cannot_lie_about_their_text() {
    let s = setup();
    let post = |text: &str| {
        let p = Payload::Post(Post {
            author: s.alice.public_key(),
            text: text.into(),
        });
        check_tx(&s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1)], p), &s.params)
    };
    for (text, offset, ch) in [
        ("\u{202e}evil", 0, 0x202e),
        ("pay \u{2066}me\u{2069}", 4, 0x2066),
        ("a\u{200f}b", 1, 0x200f),
        ("x\u{61c}", 1, 0x61c),
    ] {
        assert_eq!(
            post(text),
            Err(TxError::PostBidiControl {
                offset,
                code_point: ch
            }),
            "{text:?}"
        );
    }
    for invisible in [
        "\u{200b}",
        "\u{a0}\u{3000}",
        "\u{feff}\u{2060}",
        "\u{115f}",
        " \u{200d} ",
    ] {
        assert_eq!(post(invisible), Err(TxError::EmptyPost), "{invisible:?}");
    }
    // Visible text with invisible or right-to-left characters inside is fine.
    for ok in [
        "\u{5e9}\u{5dc}\u{5d5}\u{5dd}",
        "a\u{200b}b",
        "\u{1f600}",
        "evil",
    ] {
        assert_eq!(post(ok), Ok(()), "{ok:?}");
    }
}

/// Rule 4: the signature commits to the amounts and keys being spent, so a signer told a
/// wrong amount (an offline or hardware signer that cannot see the chain) makes a signature
/// the network rejects, never one that pays an unintended fee.
#[test]
fn rule_signature_commits_to_spent_amounts_and_keys() {
    let s = setup();
    let op = s.coinbase_of(1);
    let real = s.chain.utxo().coin(&op).unwrap().output;
    let mut tx = s.tx(&[op], vec![s.pay_bob(1_000)], Payload::None);
    assert!(s.validate(&tx).is_ok());
    let genesis = s.chain.genesis_hash();
    for lie in [
        TxOut {
            amount: Amount::from_units(real.amount.units() - 1).unwrap(),
            ..real
        },
        TxOut {
            key: s.bob.public_key(),
            ..real
        },
    ] {
        assert_ne!(tx.sighash(&genesis, &[lie]), tx.sighash(&genesis, &[real]));
        s.alice.sign_tx(&mut tx, &[lie], &genesis);
        assert_eq!(s.validate(&tx), Err(TxError::BadSignature { input: 0 }));
    }
}
