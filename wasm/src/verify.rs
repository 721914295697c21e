//! Signature jobs in the browser (`docs/PROTOCOL.md` §7, "Signature jobs"). The page passes
//! `onVerify` and `verifyWorkers` to `BrowserNode.start` (web/verify-pool.js: a pool of module
//! workers, web/verify-worker.js, each running [`verify_chunk`]); the node then runs with
//! `parallel_verify` on and [`answer`] hands each `Output::VerifySigs` job to the pool as
//! encoded chunks. The pool returns every chunk's encoded result with
//! `BrowserNode.sigsVerified`, which feeds them to the node. Without a pool the node verifies
//! in place, as before.
//!
//! Fail-safe: small jobs (fewer than 2 × [`MIN_CHUNK`] signatures), jobs beyond the bound on
//! work out ([`MAX_JOBS_OUT`], [`MAX_BYTES_OUT`]) and jobs the pool refuses are verified here,
//! on the page's thread; results that are malformed or do not cover the job exactly are
//! dropped and the job is verified here too. A block is never connected on anything but
//! results of [`verify_chunk`] (or the core's own verification).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use js_sys::{Array, Function, Reflect, Uint8Array};
use serde::Serialize;
use tabcoin_core::node::Input;
use tabcoin_core::sig::{ChunkResult, VerifyChunk, VerifyJob, VerifyMode};
use wasm_bindgen::prelude::*;

use crate::{BrowserNode, Inner, to_js};

/// Fewest signatures in a chunk: a round trip to a worker costs a few hundred microseconds
/// on a busy machine, one signature about 100 µs in wasm.
pub const MIN_CHUNK: usize = 16;
/// Most chunks per worker: a worker scheduled late leaves its share to the others.
pub const CHUNKS_PER_WORKER: usize = 4;
/// Most jobs handed to the pool and not yet answered; more are verified in place.
pub const MAX_JOBS_OUT: usize = 8;
/// Most signature bytes (128 per signature) handed out and not yet answered.
pub const MAX_BYTES_OUT: usize = 8 << 20;

/// Verifies one encoded chunk with the signature rule and returns the encoded result.
#[wasm_bindgen(js_name = verifyChunk)]
pub fn verify_chunk(chunk: &[u8]) -> Result<Vec<u8>, JsError> {
    let chunk = VerifyChunk::decode(chunk).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(chunk.verify(VerifyMode::Single).encode().to_vec())
}

/// Counters for the page and tests (`BrowserNode.verifyStats`).
#[derive(Clone, Copy, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Stats {
    /// Jobs handed to the pool.
    handed: u64,
    /// Jobs answered by the pool with results that cover them.
    answered: u64,
    /// Jobs verified on the page's thread (small, over the bound, refused, or no pool).
    in_place: u64,
    /// Jobs whose pool results were unusable, verified again here.
    redone: u64,
    /// Jobs answered whose verdict was a failure (a bad signature found by the pool).
    failed: u64,
}

/// The page's verification pool as the node sees it.
#[derive(Debug, Default)]
pub(crate) struct Verifier {
    /// `onVerify(ticket, chunks: Uint8Array[]) → bool` (false: verify in place).
    hook: Option<Function>,
    workers: usize,
    out: HashMap<u64, Arc<VerifyJob>>,
    bytes_out: usize,
    stats: Stats,
}

impl Verifier {
    /// From `BrowserNode.start`'s options: a pool only with `onVerify` and `verifyWorkers` ≥ 1.
    pub(crate) fn from_opts(opts: &JsValue) -> Verifier {
        let workers = Reflect::get(opts, &JsValue::from_str("verifyWorkers"))
            .ok()
            .and_then(|v| v.as_f64())
            .filter(|n| n.is_finite() && *n >= 1.0)
            .map_or(0, |n| n.min(64.0) as usize);
        let hook = crate::get_fn(opts, "onVerify").filter(|_| workers > 0);
        Verifier {
            hook,
            workers,
            ..Verifier::default()
        }
    }

    /// Whether the node should hand its jobs out (`NodeConfig::parallel_verify`).
    pub(crate) fn enabled(&self) -> bool {
        self.hook.is_some()
    }

    /// Chunks a job of `len` signatures is split into (1: verify in place).
    fn parts(&self, len: usize) -> usize {
        if self.hook.is_none() {
            return 1;
        }
        parts_for(len, self.workers)
    }
}

/// Chunks a job of `len` signatures is split into for a pool of `workers` (1: in place).
fn parts_for(len: usize, workers: usize) -> usize {
    (len / MIN_CHUNK).min(CHUNKS_PER_WORKER * workers).max(1)
}

/// For the benchmark (P5 browser row): a job of `n` valid signatures by 16 keys (seeds
/// `[k + 1; 32]`), message i = SHA-256d of i as a u64 LE, split as the node splits a job of
/// `n` signatures for a pool of `workers`; returns the encoded chunks.
#[wasm_bindgen(js_name = benchVerifyChunks)]
pub fn bench_verify_chunks(n: usize, workers: usize) -> Array {
    let keys: Vec<tabcoin_core::sig::Keypair> = (0..16u8)
        .map(|k| tabcoin_core::sig::Keypair::from_seed(&[k + 1; 32]))
        .collect();
    let mut job = VerifyJob::new();
    for i in 0..n {
        let msg = tabcoin_core::hash::sha256d(&(i as u64).to_le_bytes()).0;
        let key = &keys[i % keys.len()];
        job.push(key.public_key(), msg, key.sign(&msg));
    }
    job.chunks(parts_for(n, workers))
        .iter()
        .map(|c| JsValue::from(Uint8Array::from(&c.encode()[..])))
        .collect()
}

fn job_bytes(job: &VerifyJob) -> usize {
    job.len() * tabcoin_core::sig::job::ITEM_BYTES
}

/// Answers the node's `Output::VerifySigs`: each job to the pool, or in place.
pub(crate) fn answer(inner: &Rc<RefCell<Inner>>, jobs: Vec<(u64, Arc<VerifyJob>)>) {
    for (ticket, job) in jobs {
        if !hand_off(inner, ticket, &job) {
            in_place(inner, ticket, &job);
        }
    }
}

/// Hands `job` to the pool; false when it must be verified here.
fn hand_off(inner: &Rc<RefCell<Inner>>, ticket: u64, job: &Arc<VerifyJob>) -> bool {
    let (hook, parts) = {
        let mut i = inner.borrow_mut();
        let v = &mut i.verifier;
        let parts = v.parts(job.len());
        let bytes = job_bytes(job);
        if parts < 2
            || v.out.len() >= MAX_JOBS_OUT
            || v.bytes_out + bytes > MAX_BYTES_OUT
            || v.out.contains_key(&ticket)
        {
            return false;
        }
        let Some(hook) = v.hook.clone() else {
            return false;
        };
        v.out.insert(ticket, Arc::clone(job));
        v.bytes_out += bytes;
        (hook, parts)
    };
    let chunks: Array = job
        .chunks(parts)
        .iter()
        .map(|c| JsValue::from(Uint8Array::from(&c.encode()[..])))
        .collect();
    // Called with nothing borrowed: the pool may call back into the node.
    let taken = hook
        .call2(&JsValue::NULL, &JsValue::from_f64(ticket as f64), &chunks)
        .is_ok_and(|r| r.as_bool() != Some(false));
    let mut i = inner.borrow_mut();
    if taken {
        i.verifier.stats.handed += 1;
    } else {
        take(&mut i.verifier, ticket);
    }
    taken
}

/// Forgets a job handed out; returns it if it was out.
fn take(v: &mut Verifier, ticket: u64) -> Option<Arc<VerifyJob>> {
    let job = v.out.remove(&ticket)?;
    v.bytes_out = v.bytes_out.saturating_sub(job_bytes(&job));
    Some(job)
}

/// Verifies `job` on this thread and feeds its result to the node.
fn in_place(inner: &Rc<RefCell<Inner>>, ticket: u64, job: &VerifyJob) {
    inner.borrow_mut().verifier.stats.in_place += 1;
    for result in job.results_in_place(1, VerifyMode::Single) {
        crate::driver::feed(inner, Input::SigsVerified { ticket, result });
    }
}

/// Decodes the pool's results for `job`: `None` unless they are well formed and cover the job
/// exactly once.
fn decode_results(job: &VerifyJob, results: &Array) -> Option<(Vec<ChunkResult>, bool)> {
    let mut out = Vec::with_capacity(results.length() as usize);
    for r in results.iter() {
        let bytes: Uint8Array = r.dyn_into().ok()?;
        out.push(ChunkResult::decode(&bytes.to_vec()).ok()?);
    }
    match job.finish(&out) {
        Ok(Some(verdict)) => Some((out, verdict.is_err())),
        _ => None,
    }
}

#[wasm_bindgen]
impl BrowserNode {
    /// The pool's results (`ChunkResult` bytes, one per chunk) for the job `ticket` that
    /// `onVerify` took. Returns false for a ticket not handed out (unknown or answered).
    /// Results that are malformed or do not cover the job exactly are dropped and the job is
    /// verified on this thread instead.
    #[wasm_bindgen(js_name = sigsVerified)]
    pub fn sigs_verified(&self, ticket: f64, results: Array) -> bool {
        let job = {
            let mut i = self.inner.borrow_mut();
            if !(ticket.is_finite() && ticket >= 0.0) {
                return false;
            }
            take(&mut i.verifier, ticket as u64)
        };
        let Some(job) = job else {
            return false;
        };
        let ticket = ticket as u64;
        match decode_results(&job, &results) {
            Some((decoded, failed)) => {
                {
                    let mut i = self.inner.borrow_mut();
                    i.verifier.stats.answered += 1;
                    i.verifier.stats.failed += u64::from(failed);
                }
                for result in decoded {
                    crate::driver::feed(&self.inner, Input::SigsVerified { ticket, result });
                }
            }
            None => {
                web_sys::console::warn_1(
                    &format!(
                        "tabcoin: unusable verification results for job {ticket}: verifying it here"
                    )
                    .into(),
                );
                self.inner.borrow_mut().verifier.stats.redone += 1;
                in_place(&self.inner, ticket, &job);
            }
        }
        true
    }

    /// What the node did with its signature jobs: `{handed, answered, inPlace, redone, failed,
    /// out, workers}` (jobs; `out`: handed and not yet answered).
    #[wasm_bindgen(js_name = verifyStats)]
    pub fn verify_stats(&self) -> JsValue {
        let i = self.inner.borrow();
        let v = &i.verifier;
        let obj = to_js(&v.stats);
        let _ = Reflect::set(&obj, &"out".into(), &JsValue::from_f64(v.out.len() as f64));
        let _ = Reflect::set(
            &obj,
            &"workers".into(),
            &JsValue::from_f64(v.workers as f64),
        );
        obj
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tabcoin_core::sig::Keypair;
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    wasm_bindgen_test_configure!(run_in_browser);

    /// A job of `n` signatures by 4 keys; the signature of item `bad` (if any) has a bit flipped.
    fn job(n: usize, bad: Option<usize>) -> VerifyJob {
        let keys: Vec<Keypair> = (1..=4u8).map(|k| Keypair::from_seed(&[k; 32])).collect();
        let mut job = VerifyJob::new();
        for i in 0..n {
            let msg = [i as u8; 32];
            let key = &keys[i % keys.len()];
            let mut sig = key.sign(&msg);
            if bad == Some(i) {
                sig.0[9] ^= 1;
            }
            job.push(key.public_key(), msg, sig);
        }
        job
    }

    /// What a worker returns for each chunk: `verifyChunk` on the encoded chunk.
    fn worker_results(job: &VerifyJob, parts: usize) -> Vec<Uint8Array> {
        job.chunks(parts)
            .iter()
            .map(|c| Uint8Array::from(&verify_chunk(&c.encode()).expect("a chunk")[..]))
            .collect()
    }

    fn array(items: &[Uint8Array]) -> Array {
        items.iter().map(JsValue::from).collect()
    }

    #[wasm_bindgen_test]
    fn jobs_are_split_as_the_relay_does_with_four_chunks_per_worker() {
        assert_eq!(
            parts_for(2 * MIN_CHUNK - 1, 2),
            1,
            "small jobs stay in place"
        );
        assert_eq!(parts_for(2 * MIN_CHUNK, 2), 2);
        assert_eq!(parts_for(300, 1), 4);
        assert_eq!(parts_for(300, 2), 8);
        assert_eq!(parts_for(300, 4), 16);
        assert_eq!(parts_for(300, 8), 300 / MIN_CHUNK);
    }

    #[wasm_bindgen_test]
    fn worker_results_give_the_job_verdict_and_find_a_bad_signature() {
        let good = job(40, None);
        let results = worker_results(&good, 3);
        let (decoded, failed) = decode_results(&good, &array(&results)).expect("usable");
        assert_eq!(decoded.len(), 3);
        assert!(!failed);
        assert_eq!(good.finish(&decoded), Ok(Some(Ok(()))));

        let bad = job(40, Some(27));
        let results = worker_results(&bad, 3);
        let (decoded, failed) = decode_results(&bad, &array(&results)).expect("usable");
        assert!(failed);
        assert!(matches!(bad.finish(&decoded), Ok(Some(Err((27, _))))));
    }

    /// Results that do not cover the job exactly once, or are not results at all, are unusable:
    /// the node then verifies the job itself (`sigsVerified`).
    #[wasm_bindgen_test]
    fn missing_repeated_or_malformed_results_are_unusable() {
        let job = job(40, Some(5));
        let results = worker_results(&job, 3);
        assert!(
            decode_results(&job, &array(&results[1..])).is_none(),
            "a chunk missing"
        );
        let twice = [
            results[0].clone(),
            results[0].clone(),
            results[1].clone(),
            results[2].clone(),
        ];
        assert!(
            decode_results(&job, &array(&twice)).is_none(),
            "a chunk twice"
        );
        let short = Uint8Array::from(&results[0].to_vec()[..12]);
        let malformed = [short, results[1].clone(), results[2].clone()];
        assert!(
            decode_results(&job, &array(&malformed)).is_none(),
            "a result cut short"
        );
        let not_bytes: Array = [
            JsValue::from_str("ok"),
            results[1].clone().into(),
            results[2].clone().into(),
        ]
        .iter()
        .collect();
        assert!(decode_results(&job, &not_bytes).is_none(), "not bytes");
        // Results of another job: they claim items this job does not have.
        let other = worker_results(&super::tests::job(80, None), 3);
        assert!(
            decode_results(&job, &array(&other)).is_none(),
            "another job's results"
        );
        assert!(decode_results(&job, &Array::new()).is_none(), "no result");
    }
}
