//! The wallet key at rest: plain (`meta/wallet`, the 32-byte seed) or sealed with a
//! passphrase (`meta/wallet-sealed` = the 32-byte public key ‖ the page keystore's sealed
//! blob; `meta/wallet` then empty). The page (web/keystore.js) derives the key and encrypts
//! (PBKDF2-SHA-256 + AES-GCM through WebCrypto); this side only stores the blob, never the
//! passphrase, and holds the seed in memory only while the session has unlocked it.
//!
//! Writes are ordered so a crash between two of them never loses the key: the sealed value
//! (one write: public key and blob together) is written before the plain seed is cleared, and
//! the plain seed is written back before the sealed value is cleared; at start a sealed value
//! wins and a leftover plain seed next to it is cleared.

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

use tabcoin_core::sig::PublicKey;
use tabcoin_core::wallet::Wallet;

use crate::idb::IdbStore;
use crate::{BrowserNode, Inner, random_seed};

const PLAIN: &str = "wallet";
const SEALED: &str = "wallet-sealed";

fn store_err(e: impl core::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// The unlocked wallet, or the error every spending call gives while it is locked.
pub(crate) fn unlocked(w: &Option<Wallet>) -> Result<&Wallet, JsError> {
    w.as_ref()
        .ok_or_else(|| JsError::new("the wallet is locked: unlock it with its passphrase"))
}

/// The stored wallet at start: `(wallet if not sealed, public key, sealed value)`. A store
/// without a key gets a new random one, stored plain.
pub(crate) async fn load_wallet(
    store: &IdbStore,
    prefix: &'static str,
) -> Result<(Option<Wallet>, PublicKey, Option<Vec<u8>>), JsError> {
    if let Some(sealed) = store.meta(SEALED).await.map_err(store_err)?
        && sealed.len() > 32
    {
        let key: [u8; 32] = sealed[..32]
            .try_into()
            .expect("a slice of 32 bytes is 32 bytes");
        if store
            .meta(PLAIN)
            .await
            .map_err(store_err)?
            .is_some_and(|p| !p.is_empty())
        {
            // A passphrase was being set when the tab died: finish it.
            store.put_meta(PLAIN, &[]).await.map_err(store_err)?;
        }
        return Ok((None, PublicKey(key), Some(sealed)));
    }
    let seed: [u8; 32] = match store.meta(PLAIN).await.map_err(store_err)? {
        Some(s) if s.len() == 32 => s.try_into().map_err(|_| JsError::new("bad wallet seed"))?,
        _ => {
            let s = random_seed()?;
            store.put_meta(PLAIN, &s).await.map_err(store_err)?;
            s
        }
    };
    let wallet = Wallet::from_seed(seed, prefix);
    let key = wallet.public_key();
    Ok((Some(wallet), key, None))
}

/// Replaces the key (import): sealed with `sealed` if the wallet has a passphrase, else plain.
pub(crate) async fn replace_key(
    inner: &Rc<RefCell<Inner>>,
    seed: [u8; 32],
    sealed: Option<Vec<u8>>,
) -> Result<(), JsError> {
    let (store, prefix, protected) = {
        let i = inner.borrow();
        let prefix = i.node.chain().params().address_prefix;
        (i.store.clone(), prefix, i.sealed.is_some())
    };
    let wallet = Wallet::from_seed(seed, prefix);
    let key = wallet.public_key();
    let value = match (protected, sealed) {
        (true, None) => {
            return Err(JsError::new(
                "the wallet has a passphrase: the new key must be sealed with it",
            ));
        }
        (_, Some(blob)) => {
            let value = sealed_value(&key, &blob)?;
            store.put_meta(SEALED, &value).await.map_err(store_err)?;
            store.put_meta(PLAIN, &[]).await.map_err(store_err)?;
            Some(value)
        }
        (false, None) => {
            store.put_meta(PLAIN, &seed).await.map_err(store_err)?;
            None
        }
    };
    let mut i = inner.borrow_mut();
    i.wallet = Some(wallet);
    i.wallet_key = key;
    i.sealed = value;
    if i.mining {
        i.node.set_mining_key(Some(key));
    }
    Ok(())
}

fn sealed_value(key: &PublicKey, blob: &[u8]) -> Result<Vec<u8>, JsError> {
    if blob.is_empty() || blob.len() > 4096 {
        return Err(JsError::new("sealed key: expected 1 to 4096 bytes"));
    }
    let mut v = Vec::with_capacity(32 + blob.len());
    v.extend_from_slice(&key.0);
    v.extend_from_slice(blob);
    Ok(v)
}

#[wasm_bindgen]
impl BrowserNode {
    /// The sealed key blob as the page's keystore made it (without the public key), or null
    /// when the key has no passphrase. Available while locked (it is the encrypted export).
    #[wasm_bindgen(js_name = sealedKey)]
    pub fn sealed_key(&self) -> Option<Vec<u8>> {
        self.inner
            .borrow()
            .sealed
            .as_ref()
            .map(|v| v[32..].to_vec())
    }

    /// Unlocks with the seed the page's keystore opened; refuses a seed of another wallet.
    pub fn unlock(&self, seed: Vec<u8>) -> Result<String, JsError> {
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| JsError::new("key: expected 32 bytes"))?;
        let mut i = self.inner.borrow_mut();
        let wallet = Wallet::from_seed(seed, i.node.chain().params().address_prefix);
        if wallet.public_key() != i.wallet_key {
            return Err(JsError::new("this key does not belong to this wallet"));
        }
        let address = wallet.address();
        i.wallet = Some(wallet);
        Ok(address)
    }

    /// Forgets the seed until the next unlock (only for a key with a passphrase).
    pub fn lock(&self) -> Result<(), JsError> {
        let mut i = self.inner.borrow_mut();
        if i.sealed.is_none() {
            return Err(JsError::new(
                "the wallet has no passphrase: set one before locking",
            ));
        }
        i.wallet = None;
        Ok(())
    }

    /// Stores the key only sealed (`blob`, made by the page's keystore from `exportKey()`):
    /// sets or changes the passphrase. Needs the wallet unlocked.
    pub async fn protect(&self, blob: Vec<u8>) -> Result<(), JsError> {
        let (store, value) = {
            let i = self.inner.borrow();
            unlocked(&i.wallet)?;
            (i.store.clone(), sealed_value(&i.wallet_key, &blob)?)
        };
        store.put_meta(SEALED, &value).await.map_err(store_err)?;
        store.put_meta(PLAIN, &[]).await.map_err(store_err)?;
        self.inner.borrow_mut().sealed = Some(value);
        Ok(())
    }

    /// Removes the passphrase: the key is stored plain again. Needs the wallet unlocked.
    pub async fn unprotect(&self) -> Result<(), JsError> {
        let (store, seed) = {
            let i = self.inner.borrow();
            (i.store.clone(), *unlocked(&i.wallet)?.seed())
        };
        store.put_meta(PLAIN, &seed).await.map_err(store_err)?;
        store.put_meta(SEALED, &[]).await.map_err(store_err)?;
        self.inner.borrow_mut().sealed = None;
        Ok(())
    }
}
