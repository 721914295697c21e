//! Signature jobs in the browser. `verifyChunk` is the entry point a Web Worker runs on a
//! chunk of a job (`VerifyChunk::encode` bytes in, `ChunkResult::encode` bytes out), so
//! chunks can be verified on several workers; `answer_in_place` is the page node's answer
//! to `Output::VerifySigs` while it verifies on its own thread (the page's node leaves
//! `parallel_verify` off, so this only runs if a host turns it on).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use tabcoin_core::node::Input;
use tabcoin_core::sig::{VerifyChunk, VerifyJob, VerifyMode};
use wasm_bindgen::prelude::*;

use crate::Inner;

/// Verifies one encoded chunk with the signature rule and returns the encoded result.
#[wasm_bindgen(js_name = verifyChunk)]
pub fn verify_chunk(chunk: &[u8]) -> Result<Vec<u8>, JsError> {
    let chunk = VerifyChunk::decode(chunk).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(chunk.verify(VerifyMode::Single).encode().to_vec())
}

/// Verifies each job here and feeds its results back to the node.
pub(crate) fn answer_in_place(inner: &Rc<RefCell<Inner>>, jobs: Vec<(u64, Arc<VerifyJob>)>) {
    for (ticket, job) in jobs {
        for result in job.results_in_place(1, VerifyMode::Single) {
            crate::driver::feed(inner, Input::SigsVerified { ticket, result });
        }
    }
}
