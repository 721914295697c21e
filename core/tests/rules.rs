//! One test per consensus rejection rule, each asserting the exact error.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod rules_common;

use rules_common::{reseal_no_merkle, setup, setup_with};
use tabcoin_core::hash::Hash256;
use tabcoin_core::mempool::Mempool;
use tabcoin_core::params::{Network, Params};
use tabcoin_core::pow::PowError;
use tabcoin_core::primitives::{OutPoint, Payload, Post, Transaction, Txid};
use tabcoin_core::testkit::{next_time, seal};
use tabcoin_core::units::{Amount, CompactTarget, Height, MAX_MONEY};
use tabcoin_core::validation::{BlockError, TxError, check_tx};

#[test]
fn rule_no_inputs() {
    let s = setup();
    let tx = Transaction {
        inputs: vec![],
        outputs: vec![s.pay_bob(1)],
        payload: Payload::None,
    };
    assert_eq!(check_tx(&tx, &s.params), Err(TxError::NoInputs));
}

#[test]
fn rule_no_outputs() {
    let s = setup();
    let tx = s.tx(&[s.coinbase_of(1)], vec![], Payload::None);
    assert_eq!(check_tx(&tx, &s.params), Err(TxError::NoOutputs));
}

#[test]
fn rule_value_overflow() {
    let s = setup();
    let tx = s.tx(
        &[s.coinbase_of(1)],
        vec![s.pay_bob(MAX_MONEY), s.pay_bob(1)],
        Payload::None,
    );
    assert_eq!(check_tx(&tx, &s.params), Err(TxError::ValueOverflow));
}

#[test]
fn rule_duplicate_input() {
    let s = setup();
    let op = s.coinbase_of(1);
    let tx = s.tx(&[op, op], vec![s.pay_bob(1)], Payload::None);
    assert_eq!(
        check_tx(&tx, &s.params),
        Err(TxError::DuplicateInput { outpoint: op })
    );
}

#[test]
fn rule_missing_input() {
    let s = setup();
    let op = OutPoint {
        txid: Txid::from_bytes([0xab; 32]),
        vout: 0,
    };
    let tx = s.tx(&[op], vec![s.pay_bob(1)], Payload::None);
    assert_eq!(s.validate(&tx), Err(TxError::MissingInput { outpoint: op }));
}

#[test]
fn rule_spent_input() {
    let mut s = setup();
    let op = s.coinbase_of(1);
    let tx = s.tx(&[op], vec![s.pay_bob(1_000)], Payload::None);
    let blk = s.template(&[tx]);
    s.chain.accept_block(&blk, blk.header.time).unwrap();
    let again = s.tx(&[op], vec![s.pay_bob(2_000)], Payload::None);
    assert_eq!(
        s.validate(&again),
        Err(TxError::MissingInput { outpoint: op })
    );
}

#[test]
fn rule_outputs_exceed_inputs() {
    let s = setup();
    let op = s.coinbase_of(1);
    let have = s.amount(&op);
    let tx = s.tx(&[op], vec![s.pay_bob(have.units() + 1)], Payload::None);
    assert_eq!(
        s.validate(&tx),
        Err(TxError::OutputsExceedInputs {
            inputs: have,
            outputs: Amount::from_units(have.units() + 1).unwrap()
        })
    );
}

#[test]
fn rule_immature_coinbase() {
    let s = setup();
    let op = s.coinbase_of(4);
    let tx = s.tx(&[op], vec![s.pay_bob(1)], Payload::None);
    assert_eq!(
        s.validate(&tx),
        Err(TxError::ImmatureCoinbase {
            outpoint: op,
            spendable_at: Height(6)
        })
    );
}

#[test]
fn rule_bad_signature() {
    let s = setup();
    let mut tx = s.tx(
        &[s.coinbase_of(1), s.coinbase_of(2)],
        vec![s.pay_bob(1)],
        Payload::None,
    );
    tx.inputs[1].sig.0[40] ^= 0x10;
    assert_eq!(s.validate(&tx), Err(TxError::BadSignature { input: 1 }));
    // Signed by someone else's key.
    let mut tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1)], Payload::None);
    let spent = s.spent(&tx);
    s.bob.sign_tx(&mut tx, &spent, &s.chain.genesis_hash());
    assert_eq!(s.validate(&tx), Err(TxError::BadSignature { input: 0 }));
}

#[test]
fn rule_wrong_sighash_network() {
    let s = setup();
    let mut tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1)], Payload::None);
    let spent = s.spent(&tx);
    s.alice
        .sign_tx(&mut tx, &spent, &Params::main().genesis_hash());
    assert_eq!(
        s.validate(&tx),
        Err(TxError::WrongNetwork {
            input: 0,
            network: Network::Main
        })
    );
}

#[test]
fn rule_post_author_must_own_first_input() {
    let s = setup();
    let post = Payload::Post(Post {
        author: s.bob.public_key(),
        text: "hi".into(),
    });
    let tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1)], post);
    assert_eq!(s.validate(&tx), Err(TxError::PostAuthorMismatch));
}

#[test]
fn rule_pow_above_target() {
    let mut s = setup();
    let mut blk = s.template(&[]);
    let target = blk.header.bits.to_target().unwrap();
    while target.is_met_by(blk.hash().as_hash()) {
        blk.header.nonce = blk.header.nonce.wrapping_add(1);
    }
    assert_eq!(s.reject(&blk), BlockError::Pow(PowError::HashAboveTarget));
}

#[test]
fn rule_wrong_bits() {
    let mut s = setup();
    let mut blk = s.template(&[]);
    let expected = blk.header.bits;
    blk.header.bits = CompactTarget(0x2000_ffff);
    let blk = seal(blk);
    assert_eq!(
        s.reject(&blk),
        BlockError::WrongBits {
            expected,
            got: CompactTarget(0x2000_ffff)
        }
    );
}

#[test]
fn rule_merkle_mismatch() {
    let mut s = setup();
    let mut blk = s.template(&[]);
    blk.header.merkle_root = Hash256([1; 32]);
    let blk = reseal_no_merkle(blk);
    assert_eq!(s.reject(&blk), BlockError::MerkleMismatch);
}

#[test]
fn rule_missing_coinbase() {
    let mut s = setup();
    let tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1_000)], Payload::None);
    let mut blk = s.template(&[tx]);
    blk.txs.remove(0);
    assert_eq!(s.reject(&seal(blk)), BlockError::MissingCoinbase);
}

#[test]
fn rule_extra_coinbase() {
    let mut s = setup();
    let mut blk = s.template(&[]);
    let mut second = blk.txs[0].clone();
    second.payload = Payload::Coinbase {
        height: Height(5),
        extra: b"again".to_vec(),
    };
    blk.txs.push(second);
    assert_eq!(s.reject(&seal(blk)), BlockError::ExtraCoinbase { index: 1 });
}

#[test]
fn rule_coinbase_overpay() {
    let mut s = setup();
    let mut blk = s.template(&[]);
    let max = blk.txs[0].outputs[0].amount;
    let got = Amount::from_units(max.units() + 1).unwrap();
    blk.txs[0].outputs[0].amount = got;
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::CoinbaseOverpay { max, got }
    );
}

#[test]
fn rule_coinbase_overpay_counts_fees() {
    let mut s = setup();
    let tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1_000)], Payload::None);
    let fee = s.validate(&tx).unwrap();
    let mut blk = s.template(&[tx]);
    let max = s.params.subsidy(Height(5)).checked_add(fee).unwrap();
    assert_eq!(blk.txs[0].outputs[0].amount, max);
    let got = Amount::from_units(max.units() + 1).unwrap();
    blk.txs[0].outputs[0].amount = got;
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::CoinbaseOverpay { max, got }
    );
}

#[test]
fn rule_coinbase_height() {
    let mut s = setup();
    let mut blk = s.template(&[]);
    blk.txs[0].payload = Payload::Coinbase {
        height: Height(4),
        extra: vec![],
    };
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::CoinbaseHeight {
            expected: Height(5),
            got: Height(4)
        }
    );
}

#[test]
fn rule_time_not_after_median_time_past() {
    let mut s = setup();
    let mtp = s.chain.tip().median_time_past;
    let mut blk = s.template(&[]);
    blk.header.time = mtp;
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::TimeTooOld {
            time: mtp,
            median_time_past: mtp
        }
    );
}

#[test]
fn rule_time_too_far_ahead() {
    let mut s = setup();
    let now = next_time(&s.chain);
    let max = now + s.params.max_future_drift;
    let mut blk = s.template(&[]);
    blk.header.time = max + 1;
    let blk = seal(blk);
    assert_eq!(
        s.reject(&blk),
        BlockError::TimeTooNew { time: max + 1, max }
    );
    // Not banned for it, and accepted once our clock catches up.
    assert_eq!(
        BlockError::TimeTooNew { time: 0, max: 0 }.conduct(),
        tabcoin_core::validation::Conduct::Ignore
    );
    assert!(s.chain.accept_block(&blk, max + 1).unwrap().tip_changed());
}

#[test]
fn rule_block_too_large() {
    let params = Params {
        max_block_size: 400,
        ..Params::test()
    };
    let mut s = setup_with(params);
    let txs: Vec<_> = (1..=2)
        .map(|h| s.tx(&[s.coinbase_of(h)], vec![s.pay_bob(1_000)], Payload::None))
        .collect();
    let blk = s.template(&txs);
    let size = tabcoin_core::encode::Encode::encoded_len(&blk);
    assert!(size > 400);
    assert_eq!(s.reject(&blk), BlockError::TooLarge { size, max: 400 });
}

#[test]
fn rule_intra_block_double_spend() {
    let mut s = setup();
    let op = s.coinbase_of(1);
    let a = s.tx(&[op], vec![s.pay_bob(1_000)], Payload::None);
    let b = s.tx(&[op], vec![s.pay_bob(2_000)], Payload::None);
    let mut blk = s.template(&[a]);
    blk.txs.push(b);
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::DoubleSpend { outpoint: op }
    );
}

#[test]
fn rule_bad_signature_in_block() {
    let mut s = setup();
    let mut tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1_000)], Payload::None);
    let mut blk = s.template(&[tx.clone()]);
    tx.inputs[0].sig.0[0] ^= 1;
    blk.txs[1] = tx;
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::Tx {
            index: 1,
            error: TxError::BadSignature { input: 0 }
        }
    );
}

#[test]
fn rule_immature_coinbase_in_block() {
    let mut s = setup();
    let op = s.coinbase_of(4);
    let tx = s.tx(&[op], vec![s.pay_bob(1_000)], Payload::None);
    let mut blk = s.template(&[]);
    blk.txs.push(tx);
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::Tx {
            index: 1,
            error: TxError::ImmatureCoinbase {
                outpoint: op,
                spendable_at: Height(6)
            }
        }
    );
}

#[test]
fn wallet_payment_and_post_are_accepted_by_pool_and_chain() {
    let mut s = setup();
    let mut pool = Mempool::default();
    let pay = s
        .alice
        .pay(
            &s.chain,
            &pool,
            s.bob.public_key(),
            Amount::from_units(12_345).unwrap(),
            2_000,
            None,
        )
        .unwrap();
    pool.add(pay.clone(), &s.chain).unwrap();
    // A post spending the unconfirmed change of the payment.
    let post = s
        .alice
        .post(&s.chain, &pool, "hello from a tab", 2_000)
        .unwrap();
    pool.add(post.clone(), &s.chain).unwrap();
    assert_eq!(pool.len(), 2);
    let t = tabcoin_core::miner::build_template(
        &s.chain,
        &pool,
        s.alice.public_key(),
        next_time(&s.chain),
        b"",
    );
    let blk = seal(t.block);
    assert_eq!(blk.txs.len(), 3);
    let out = s.chain.accept_block(&blk, blk.header.time).unwrap();
    assert!(out.tip_changed());
    pool.update(&s.chain, &out);
    assert!(pool.is_empty());
    assert_eq!(s.bob.balance(&s.chain, &pool).confirmed.units(), 12_345);
}

#[test]
fn rule_post_limits_hold_for_transactions_built_in_memory() {
    let s = setup();
    let long = Payload::Post(Post {
        author: s.alice.public_key(),
        text: "x".repeat(321),
    });
    let tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1)], long);
    assert_eq!(
        check_tx(&tx, &s.params),
        Err(TxError::PostTooLong { len: 321, max: 320 })
    );
    let blank = Payload::Post(Post {
        author: s.alice.public_key(),
        text: " \t\r\n".into(),
    });
    let tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1)], blank);
    assert_eq!(check_tx(&tx, &s.params), Err(TxError::EmptyPost));
    // Non-ASCII blanks are invisible too (issue 9, rule 7): no post of blanks only.
    let nbsp = Payload::Post(Post {
        author: s.alice.public_key(),
        text: "\u{a0}".into(),
    });
    let tx = s.tx(&[s.coinbase_of(1)], vec![s.pay_bob(1)], nbsp);
    assert_eq!(check_tx(&tx, &s.params), Err(TxError::EmptyPost));
}

#[test]
fn rule_coinbase_extra_limit_holds_for_blocks_built_in_memory() {
    let mut s = setup();
    let mut blk = s.template(&[]);
    blk.txs[0].payload = Payload::Coinbase {
        height: Height(5),
        extra: vec![0; 65],
    };
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::CoinbaseExtraTooLong { len: 65, max: 64 }
    );
}

#[test]
fn identical_signatures_are_checked_once_without_changing_which_input_fails() {
    let mut s = setup();
    // Two inputs, one key: both carry the same signature over the same sighash.
    let tx = s.tx(
        &[s.coinbase_of(1), s.coinbase_of(2)],
        vec![s.pay_bob(1_000)],
        Payload::None,
    );
    assert_eq!(tx.inputs[0].sig, tx.inputs[1].sig);
    let mut bad_second = tx.clone();
    bad_second.inputs[1].sig.0[3] ^= 1;
    let mut blk = s.template(std::slice::from_ref(&tx));
    blk.txs[1] = bad_second;
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::Tx {
            index: 1,
            error: TxError::BadSignature { input: 1 }
        }
    );
    let mut both_bad = tx;
    both_bad.inputs[0].sig.0[3] ^= 1;
    both_bad.inputs[1].sig.0[3] ^= 1;
    let mut blk = s.template(&[]);
    blk.txs.push(both_bad);
    assert_eq!(
        s.reject(&seal(blk)),
        BlockError::Tx {
            index: 1,
            error: TxError::BadSignature { input: 0 }
        }
    );
}
