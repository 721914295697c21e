//! Addresses and spending: round trips, typed errors, balances and signed payments.

use super::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn address_round_trip(key: [u8; 32]) {
        let key = PublicKey(key);
        let a = encode_address("tab", &key);
        prop_assert_eq!(a.len(), 4 + ADDRESS_BODY_LEN);
        prop_assert_eq!(decode_address("tab", &a), Ok(key));
        prop_assert_eq!(decode_address("tab", &a.to_uppercase()), Ok(key));
    }

    #[test]
    fn any_single_character_change_is_caught(key: [u8; 32], pos in 4usize..62, c in 0usize..32) {
        let a = encode_address("tab", &PublicKey(key));
        let mut b = a.clone().into_bytes();
        prop_assume!(b[pos] != BASE32[c]);
        b[pos] = BASE32[c];
        let b = String::from_utf8(b).unwrap();
        prop_assert!(decode_address("tab", &b).is_err());
    }
}

#[test]
fn address_errors_are_typed() {
    let key = PublicKey([7; 32]);
    let a = encode_address("tab", &key);
    assert_eq!(
        decode_address("ttab", &a),
        Err(AddressError::WrongNetwork {
            expected: "ttab".into()
        })
    );
    assert_eq!(
        decode_address("tab", "tab_abc"),
        Err(AddressError::BadLength { len: 3 })
    );
    let mut bad = a.clone();
    bad.replace_range(10..11, "1");
    assert_eq!(
        decode_address("tab", &bad),
        Err(AddressError::BadCharacter { position: 10 })
    );
    assert_eq!(
        decode_address("tab", ""),
        Err(AddressError::WrongNetwork {
            expected: "tab".into()
        })
    );
}

mod spending {
    use super::super::*;
    use crate::chain::Chain;
    use crate::params::Params;
    use crate::primitives::MAX_POST_BYTES;
    use crate::testkit::{extend, extend_empty, wallet};
    use crate::units::Height;
    use crate::validation::validate_tx;

    fn amount(u: u64) -> Amount {
        Amount::from_units(u).unwrap()
    }

    #[test]
    fn balance_splits_confirmed_immature_pending_and_spending() {
        let params = Params::test();
        let (alice, bob) = (wallet(1, &params), wallet(2, &params));
        let mut chain = Chain::new(params.clone());
        extend_empty(&mut chain, 3, alice.public_key(), b"");
        let pool = Mempool::default();
        let b = alice.balance(&chain, &pool);
        let subsidy = params.subsidy(Height(1));
        // Blocks 1 and 2 are spendable in block 4; block 3 is not.
        assert_eq!(b.confirmed, amount(subsidy.units() * 2));
        assert_eq!(b.immature, subsidy);
        let mut pool = Mempool::default();
        let tx = alice
            .pay(&chain, &pool, bob.public_key(), amount(10_000), 1_000, None)
            .unwrap();
        pool.add(tx.clone(), &chain).unwrap();
        let after = alice.balance(&chain, &pool);
        assert_eq!(after.spending, subsidy);
        assert_eq!(after.confirmed, subsidy);
        let change = tx.outputs[1].amount;
        assert_eq!(after.pending, change);
        assert_eq!(bob.balance(&chain, &pool).pending, amount(10_000));
        let fee = subsidy
            .checked_sub(change)
            .unwrap()
            .checked_sub(amount(10_000))
            .unwrap();
        assert_eq!(fee.units(), (tx.encoded_len() as u64).div_ceil(1));
    }

    #[test]
    fn payments_pick_coins_add_change_and_validate() {
        let params = Params::test();
        let (alice, bob) = (wallet(1, &params), wallet(2, &params));
        let mut chain = Chain::new(params.clone());
        extend_empty(&mut chain, 5, alice.public_key(), b"");
        let pool = Mempool::default();
        let subsidy = params.subsidy(Height(1)).units();
        // More than one coin is needed: two inputs, change back to alice.
        let tx = alice
            .pay(
                &chain,
                &pool,
                bob.public_key(),
                amount(subsidy + 1),
                1_000,
                None,
            )
            .unwrap();
        assert_eq!(tx.inputs.len(), 2);
        assert_eq!(tx.outputs.len(), 2);
        assert_eq!(tx.outputs[1].key, alice.public_key());
        let fee = validate_tx(
            &tx,
            chain.utxo(),
            chain.height().next(),
            &params,
            &chain.genesis_hash(),
        )
        .unwrap();
        assert!(crate::mempool::fee_rate(fee, tx.encoded_len()) >= 1_000);
        // Exactly everything but the fee would leave dust change: no change output.
        let all = alice.balance(&chain, &pool).confirmed.units();
        assert!(matches!(
            alice.pay(&chain, &pool, bob.public_key(), amount(all), 1_000, None),
            Err(WalletError::InsufficientFunds { .. })
        ));
        assert_eq!(
            alice.pay(&chain, &pool, bob.public_key(), Amount::ZERO, 1_000, None),
            Err(WalletError::ZeroAmount)
        );
        let (_, _) = extend(&mut chain, &[tx], alice.public_key(), b"").unwrap();
        assert_eq!(
            bob.balance(&chain, &Mempool::default()).confirmed,
            amount(subsidy + 1)
        );
    }

    #[test]
    fn posts_are_signed_by_the_author_and_checked() {
        let params = Params::test();
        let alice = wallet(1, &params);
        let mut chain = Chain::new(params.clone());
        extend_empty(&mut chain, 3, alice.public_key(), b"");
        let pool = Mempool::default();
        let tx = alice
            .post(&chain, &pool, "gm from a browser tab", 1_000)
            .unwrap();
        assert_eq!(tx.post().unwrap().author, alice.public_key());
        assert_eq!(tx.outputs.len(), 1);
        validate_tx(
            &tx,
            chain.utxo(),
            chain.height().next(),
            &params,
            &chain.genesis_hash(),
        )
        .unwrap();
        assert_eq!(
            alice.post(&chain, &pool, "  ", 1_000),
            Err(WalletError::EmptyPost)
        );
        let long = "x".repeat(MAX_POST_BYTES + 1);
        assert_eq!(
            alice.post(&chain, &pool, &long, 1_000),
            Err(WalletError::PostTooLong {
                len: MAX_POST_BYTES + 1,
                max: MAX_POST_BYTES
            })
        );
        // Nothing to spend: a clear error, not a panic.
        let broke = wallet(9, &params);
        assert!(matches!(
            broke.post(&chain, &pool, "hi", 1_000),
            Err(WalletError::InsufficientFunds { .. })
        ));
    }
}
