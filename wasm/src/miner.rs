//! The mining entry for Web Workers: each worker runs a [`MinerJob`] over its nonce slice.

use tabcoin_core::miner::{NonceRange, Step};
use tabcoin_core::primitives::{BlockHeader, HEADER_SIZE};
use wasm_bindgen::prelude::*;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
use crate::simd;

/// The proof-of-work search a Web Worker runs: one nonce slice of a template header.
#[wasm_bindgen]
#[derive(Debug)]
pub struct MinerJob {
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    job: tabcoin_core::miner::MinerJob,
    /// With simd128 (`-C target-feature=+simd128`): the 4-wide kernel, same semantics.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    job: simd::SimdJob,
}

#[wasm_bindgen]
impl MinerJob {
    #[wasm_bindgen(constructor)]
    pub fn new(header: &[u8], worker: u32, workers: u32) -> Result<MinerJob, JsError> {
        let bytes: [u8; HEADER_SIZE] = header
            .try_into()
            .map_err(|_| JsError::new("a header has 88 bytes"))?;
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        use simd::SimdJob as Job;
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        use tabcoin_core::miner::MinerJob as Job;
        let job = Job::new(
            BlockHeader::from_bytes(&bytes),
            NonceRange::slice(worker, workers),
        )
        .map_err(|e| JsError::new(&e.to_string()))?;
        Ok(MinerJob { job })
    }

    /// Tries up to `nonces` nonces; the solved 88-byte header, or undefined.
    pub fn step(&mut self, nonces: u32) -> Option<Vec<u8>> {
        match self.job.step(u64::from(nonces)) {
            Step::Found(h) => Some(h.to_bytes().to_vec()),
            Step::Continue | Step::Exhausted => None,
        }
    }

    #[wasm_bindgen(getter)]
    pub fn hashes(&self) -> f64 {
        self.job.hashes() as f64
    }
}
