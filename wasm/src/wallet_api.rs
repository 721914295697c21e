//! The wallet as the page uses it: balances, payments, posts, key export and import.

use serde::Serialize;
use tabcoin_core::hash::{decode_hex, to_hex};
use tabcoin_core::primitives::Transaction;
use tabcoin_core::units::Amount;
use tabcoin_core::wallet::{Wallet, decode_address, encode_address};
use tsify::Tsify;
use wasm_bindgen::prelude::*;

use crate::driver::pump;
use crate::views::fee_rate_units;
use crate::{BrowserNode, keyguard, to_js};

#[wasm_bindgen]
impl BrowserNode {
    /// Address and balances.
    #[wasm_bindgen(unchecked_return_type = "WalletView")]
    pub fn wallet(&self) -> JsValue {
        let i = self.inner.borrow();
        // Locked: the address is known, the balances are not computed (they need the wallet).
        let b = i
            .wallet
            .as_ref()
            .map(|w| w.balance(i.node.chain(), i.node.mempool()));
        #[derive(Serialize, Tsify)]
        #[tsify(missing_as_null)]
        struct WalletView {
            address: String,
            confirmed: Option<String>,
            immature: Option<String>,
            pending: Option<String>,
            spending: Option<String>,
            locked: bool,
            protected: bool,
        }
        to_js(&WalletView {
            address: encode_address(i.node.chain().params().address_prefix, &i.wallet_key),
            confirmed: b.as_ref().map(|b| b.confirmed.to_string()),
            immature: b.as_ref().map(|b| b.immature.to_string()),
            pending: b.as_ref().map(|b| b.pending.to_string()),
            spending: b.as_ref().map(|b| b.spending.to_string()),
            locked: i.wallet.is_none(),
            protected: i.sealed.is_some(),
        })
    }

    /// Pays `amount` coins to `to`; returns the txid or throws a readable error.
    pub fn send(&self, to: &str, amount: &str, fee_rate: f64) -> Result<String, JsError> {
        let tx = {
            let i = self.inner.borrow();
            let prefix = i.node.chain().params().address_prefix;
            let key =
                decode_address(prefix, to).map_err(|e| JsError::new(&format!("address: {e}")))?;
            let amount = Amount::parse_coins(amount.trim()).ok_or_else(|| {
                JsError::new("amount: enter a number of coins with at most 8 decimals")
            })?;
            keyguard::unlocked(&i.wallet)?
                .pay(
                    i.node.chain(),
                    i.node.mempool(),
                    key,
                    amount,
                    fee_rate_units(fee_rate)?,
                    None,
                )
                .map_err(|e| JsError::new(&e.to_string()))?
        };
        self.submit(tx)
    }

    /// Publishes a signed post; returns the txid or throws.
    pub fn post(&self, text: &str, fee_rate: f64) -> Result<String, JsError> {
        let tx = {
            let i = self.inner.borrow();
            keyguard::unlocked(&i.wallet)?
                .post(
                    i.node.chain(),
                    i.node.mempool(),
                    text,
                    fee_rate_units(fee_rate)?,
                )
                .map_err(|e| JsError::new(&e.to_string()))?
        };
        self.submit(tx)
    }

    fn submit(&self, tx: Transaction) -> Result<String, JsError> {
        let result = self.inner.borrow_mut().node.submit_tx(tx);
        pump(&self.inner);
        result
            .map(|t| t.to_hex())
            .map_err(|e| JsError::new(&e.to_string()))
    }

    /// The wallet seed as 64 hex digits (throws while the wallet is locked).
    #[wasm_bindgen(js_name = exportKey)]
    pub fn export_key(&self) -> Result<String, JsError> {
        Ok(to_hex(
            keyguard::unlocked(&self.inner.borrow().wallet)?.seed(),
        ))
    }

    /// Replaces the wallet key with `hex` (64 hex digits) and keeps it; returns the address.
    /// While the wallet has a passphrase, `sealed` is the new key sealed with it (the page's
    /// keystore): the new key is stored only that way.
    #[wasm_bindgen(js_name = importKey)]
    pub async fn import_key(
        &self,
        hex: String,
        sealed: Option<Vec<u8>>,
    ) -> Result<String, JsError> {
        let bytes = decode_hex(hex.trim()).map_err(|e| JsError::new(&format!("key: {e}")))?;
        let seed: [u8; 32] = bytes
            .try_into()
            .map_err(|_| JsError::new("key: expected 64 hex digits"))?;
        keyguard::replace_key(&self.inner, seed, sealed).await?;
        pump(&self.inner);
        Ok(self
            .inner
            .borrow()
            .wallet
            .as_ref()
            .map(Wallet::address)
            .unwrap_or_default())
    }
}
