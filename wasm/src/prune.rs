//! Pruning in the browser (`docs/STORAGE.md`): the tab keeps block bodies within a byte
//! budget sized from the origin's storage quota; the core decides what to delete
//! (`ChangeSet::pruned`) and this module executes it in IndexedDB, inside the ChangeSet's
//! one transaction. The header of each pruned body stays in the `headers` store: the set's
//! chunk lists it again with size 0 (a pruned body weighs nothing; see `IdbStore::persist`),
//! and the lowest kept height is kept in `meta` under `prune_height`: start-up reads it back
//! with the rest of `meta`.

use js_sys::{Reflect, Uint8Array};
use tabcoin_core::store::ChangeSet;
use tabcoin_core::units::Height;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::IdbTransaction;

use crate::idb::StoreError;

/// Smallest default budget: 64 MiB. The core keeps the prune depth's bodies whatever the
/// budget (`DEFAULT_PRUNE_DEPTH` blocks), so full blocks may take more.
pub const MIN_DEFAULT_BUDGET: u64 = 64 << 20;
/// Largest default budget: 1 GiB, so a tab never claims much of a shared disk by default.
pub const MAX_DEFAULT_BUDGET: u64 = 1 << 30;
/// Share of the origin's quota the bodies may use by default (the UTXO set, undo data,
/// headers and other origins' data need the rest): a tenth.
pub const QUOTA_SHARE: u64 = 10;
/// Budget when the browser does not say its quota.
pub const FALLBACK_BUDGET: u64 = 256 << 20;

const PRUNE_HEIGHT_KEY: &str = "prune_height";

/// The default byte budget for a quota of `quota` bytes (`None`: unknown): a tenth of it,
/// within [`MIN_DEFAULT_BUDGET`] and [`MAX_DEFAULT_BUDGET`].
pub fn budget_for_quota(quota: Option<f64>) -> u64 {
    match quota {
        Some(q) if q.is_finite() && q > 0.0 => {
            ((q as u64) / QUOTA_SHARE).clamp(MIN_DEFAULT_BUDGET, MAX_DEFAULT_BUDGET)
        }
        _ => FALLBACK_BUDGET,
    }
}

/// The origin's storage quota from `navigator.storage.estimate()`, if the browser says it.
pub async fn storage_quota() -> Option<f64> {
    let global = js_sys::global();
    let storage = if let Some(w) = global.dyn_ref::<web_sys::Window>() {
        w.navigator().storage()
    } else if let Some(w) = global.dyn_ref::<web_sys::WorkerGlobalScope>() {
        w.navigator().storage()
    } else {
        return None;
    };
    let estimate = JsFuture::from(storage.estimate().ok()?).await.ok()?;
    Reflect::get(&estimate, &JsValue::from_str("quota"))
        .ok()?
        .as_f64()
}

/// The budget a tab prunes to: `pruneBytes` from the start options when given (a number of
/// bytes; `0` keeps every body), else [`budget_for_quota`] of the origin's quota.
pub async fn budget(opts: &JsValue) -> Option<u64> {
    let given = Reflect::get(opts, &JsValue::from_str("pruneBytes"))
        .ok()
        .and_then(|v| v.as_f64());
    match given {
        Some(b) if b.is_finite() && b >= 1.0 => Some(b as u64),
        Some(_) => None,
        None => Some(budget_for_quota(storage_quota().await)),
    }
}

/// Executes the pruning part of a ChangeSet inside its transaction, after its bodies and
/// undo data were written: deletes each pruned body (with the undo data its record carries)
/// and its undo record, and records the new lowest kept height. (The set's `headers` chunk
/// marks each pruned header bodiless.)
pub fn write(tx: &IdbTransaction, cs: &ChangeSet) -> Result<(), JsValue> {
    if cs.pruned.is_empty() && cs.prune_height.is_none() {
        return Ok(());
    }
    let blocks = tx.object_store("blocks")?;
    let undo = tx.object_store("undo")?;
    let meta = tx.object_store("meta")?;
    for h in &cs.pruned {
        let key = JsValue::from_str(&h.to_hex());
        blocks.delete(&key)?;
        undo.delete(&key)?;
    }
    if let Some(h) = cs.prune_height {
        meta.put_with_key(
            &Uint8Array::from(&h.0.to_le_bytes()[..]).into(),
            &JsValue::from_str(PRUNE_HEIGHT_KEY),
        )?;
    }
    Ok(())
}

/// Reads back the lowest kept height [`write`] recorded, from every `(key, value)` of the
/// `meta` store.
pub fn load(cs: &mut ChangeSet, meta: Vec<(String, JsValue)>) -> Result<(), StoreError> {
    let corrupt = |key: &str, why: String| StoreError::Corrupt(format!("meta {key}: {why}"));
    for (key, v) in meta {
        if key == PRUNE_HEIGHT_KEY {
            let b: [u8; 8] = Uint8Array::new(&v)
                .to_vec()
                .try_into()
                .map_err(|_| corrupt(&key, "bad length".into()))?;
            cs.prune_height = Some(Height(u64::from_le_bytes(b)));
        }
    }
    Ok(())
}

/// What the page shows of pruning: bodies kept from `kept_from` to the tip, `kept_bytes` of
/// a `budget` (`None`: every body is kept).
#[derive(serde::Serialize, tsify::Tsify, Clone, Debug)]
#[tsify(missing_as_null)]
#[serde(rename_all = "camelCase")]
pub struct PruneView {
    pub budget: Option<u64>,
    pub kept_from: u64,
    pub kept_bytes: u64,
    pub depth: u64,
}

impl PruneView {
    pub fn of(chain: &tabcoin_core::chain::Chain) -> PruneView {
        let p = chain.prune_status();
        PruneView {
            budget: p.budget,
            kept_from: p.kept_from.0,
            kept_bytes: p.kept_bytes,
            depth: p.depth,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_is_a_tenth_of_the_quota_within_bounds() {
        assert_eq!(budget_for_quota(None), FALLBACK_BUDGET);
        assert_eq!(budget_for_quota(Some(0.0)), FALLBACK_BUDGET);
        assert_eq!(budget_for_quota(Some(f64::NAN)), FALLBACK_BUDGET);
        assert_eq!(budget_for_quota(Some(10e6)), MIN_DEFAULT_BUDGET);
        assert_eq!(budget_for_quota(Some(5e9)), 500_000_000);
        assert_eq!(budget_for_quota(Some(100e9)), MAX_DEFAULT_BUDGET);
    }
}
