//! Views of transactions as the page shows them, and the checks of what the page asks for
//! (fee rates).

use serde::Serialize;
use tabcoin_core::primitives::{Payload, Transaction};
use tabcoin_core::units::Amount;
use tabcoin_core::wallet::encode_address;
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::MAX_FEE_RATE;

/// A pool transaction with its size and fee rate.
#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoolTx {
    #[serde(flatten)]
    pub(crate) tx: TxView,
    pub(crate) size: usize,
    pub(crate) fee_rate: u64,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct InputView {
    txid: String,
    vout: u32,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct OutputView {
    address: String,
    amount: String,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
struct PostView {
    author: String,
    text: String,
}

#[derive(Serialize, Tsify)]
#[tsify(missing_as_null)]
pub(crate) struct TxView {
    txid: String,
    coinbase: bool,
    inputs: Vec<InputView>,
    outputs: Vec<OutputView>,
    post: Option<PostView>,
    fee: Option<String>,
}

pub(crate) fn tx_view(t: &Transaction, prefix: &str, fee: Option<String>) -> TxView {
    TxView {
        txid: t.txid().to_hex(),
        coinbase: t.is_coinbase(),
        inputs: t
            .inputs
            .iter()
            .map(|i| InputView {
                txid: i.prev.txid.to_hex(),
                vout: i.prev.vout,
            })
            .collect(),
        outputs: t
            .outputs
            .iter()
            .map(|o| OutputView {
                address: encode_address(prefix, &o.key),
                amount: o.amount.to_string(),
            })
            .collect(),
        post: match &t.payload {
            Payload::Post(p) => Some(PostView {
                author: encode_address(prefix, &p.author),
                text: p.text.clone(),
            }),
            _ => None,
        },
        fee,
    }
}

pub(crate) fn coins(units: u64) -> String {
    Amount::from_units(units).unwrap_or(Amount::MAX).to_string()
}

/// The fee rate the page asks for, checked: a whole number of base units per 1000 bytes
/// from the pool's minimum relay rate up to [`MAX_FEE_RATE`].
pub(crate) fn fee_rate_units(rate: f64) -> Result<u64, JsError> {
    let min = tabcoin_core::mempool::DEFAULT_MIN_FEE_RATE;
    if !(rate.is_finite() && rate.fract() == 0.0) {
        return Err(JsError::new(
            "fee rate: a whole number of base units per 1000 bytes",
        ));
    }
    if rate < min as f64 {
        return Err(JsError::new(&format!(
            "fee rate: at least {min} base units per 1000 bytes (the minimum relays accept)"
        )));
    }
    if rate > MAX_FEE_RATE as f64 {
        return Err(JsError::new(&format!(
            "fee rate: at most {MAX_FEE_RATE} base units per 1000 bytes (1 coin per 1000 bytes)"
        )));
    }
    Ok(rate as u64)
}
