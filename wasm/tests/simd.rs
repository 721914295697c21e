//! The simd128 miner kernel against core's scalar miner. Run with
//! `RUSTFLAGS="-C target-feature=+simd128" cargo test -p tabcoin-wasm
//! --target wasm32-unknown-unknown --test simd` (wasm-bindgen-test-runner as the runner).

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use tabcoin_core::hash::{Hash256, sha256d};
use tabcoin_core::miner::{self, NonceRange, Step};
use tabcoin_core::primitives::{BlockHash, BlockHeader};
use tabcoin_core::units::CompactTarget;
use tabcoin_wasm::MinerJob;
use tabcoin_wasm::simd::{Kernel, SimdJob};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

/// A deterministic generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_exact_mut(8) {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        out
    }

    fn header(&mut self, bits: u32) -> BlockHeader {
        BlockHeader {
            version: self.next() as u32,
            prev: BlockHash::from_bytes(self.bytes32()),
            merkle_root: Hash256(self.bytes32()),
            time: self.next(),
            bits: CompactTarget(bits),
            nonce: self.next(),
        }
    }
}

#[wasm_bindgen_test]
fn kernel_hashes_equal_sha256d_nonce_for_nonce() {
    let mut rng = Rng(0x7ab_c01d);
    for i in 0..300 {
        let bits = rng.next() as u32;
        let mut h = rng.header(bits);
        // Random nonces, plus the ends of the nonce space (lanes wrap past u64::MAX).
        let base = match i % 3 {
            0 => rng.next(),
            1 => u64::MAX - (rng.next() % 8),
            _ => rng.next() % 8,
        };
        let kernel = Kernel::new(&h);
        let got = kernel.hash4(base);
        for (lane, hash) in got.iter().enumerate() {
            h.nonce = base.wrapping_add(lane as u64);
            assert_eq!(
                *hash,
                sha256d(&h.to_bytes()).0,
                "header {i}, nonce {}",
                h.nonce
            );
            assert_eq!(*hash, *h.hash().as_bytes());
        }
    }
}

/// Groups whose four nonces straddle a carry into the nonce's high 32 bits: the lanes then
/// differ in message word 5 too, which the kernel must not take as shared by all lanes. The
/// quick-test word (`hash4_top`) is the hash's most significant word in every lane.
#[wasm_bindgen_test]
fn kernel_is_exact_where_lanes_cross_a_carry_into_the_high_word() {
    let mut rng = Rng(0x0ca7_71e5);
    for i in 0..120u64 {
        let bits = rng.next() as u32;
        let mut h = rng.header(bits);
        let high = match i % 4 {
            0 => 0,
            1 => u64::from(u32::MAX) - 1,
            _ => rng.next() >> 32,
        };
        // Low word at 2^32 - 1, - 2 or - 3: one to three lanes carry into the high word.
        let base = (high << 32) | u64::from(u32::MAX - (i % 3) as u32);
        let kernel = Kernel::new(&h);
        let got = kernel.hash4(base);
        let top = kernel.hash4_top(base);
        for (lane, hash) in got.iter().enumerate() {
            h.nonce = base.wrapping_add(lane as u64);
            let want = sha256d(&h.to_bytes()).0;
            assert_eq!(*hash, want, "header {i}, nonce {:#x}", h.nonce);
            let top_word = u32::from_be_bytes([want[0], want[1], want[2], want[3]]);
            let lane_top = match lane {
                0 => core::arch::wasm32::u32x4_extract_lane::<0>(top),
                1 => core::arch::wasm32::u32x4_extract_lane::<1>(top),
                2 => core::arch::wasm32::u32x4_extract_lane::<2>(top),
                _ => core::arch::wasm32::u32x4_extract_lane::<3>(top),
            };
            assert_eq!(lane_top, top_word, "header {i}, nonce {:#x}", h.nonce);
        }
    }
}

/// Runs a job to its first solution (or exhaustion) in chunks from `chunks`.
fn run<F: FnMut(u64) -> Step>(mut step: F, chunks: &[u64]) -> Step {
    for i in 0..100_000 {
        match step(chunks[i % chunks.len()]) {
            Step::Continue => {}
            done => return done,
        }
    }
    panic!("no solution and no exhaustion");
}

#[wasm_bindgen_test]
fn simd_job_matches_core_job_at_an_easy_target() {
    let mut rng = Rng(42);
    for i in 0..40 {
        // About 1 in 256 hashes meets 0x2000ffff; 0x2100ffff is easier, 0x1f00ffff harder.
        let bits = [0x2000_ffff, 0x2100_ffff, 0x1f00_ffff][i % 3];
        let h = rng.header(bits);
        let start = rng.next() >> (i % 64);
        let range = NonceRange { start, end: None };
        let chunks: &[u64] = match i % 4 {
            0 => &[1 << 20],
            1 => &[7],
            2 => &[1, 2, 3, 5],
            _ => &[4, 4, 9],
        };
        let mut core_job = miner::MinerJob::new(h, range).unwrap();
        let mut simd_job = SimdJob::new(h, range).unwrap();
        let a = run(|n| core_job.step(n), &[1 << 20]);
        let b = run(|n| simd_job.step(n), chunks);
        assert!(matches!(a, Step::Found(_)), "header {i}");
        assert_eq!(a, b, "header {i}");
        assert_eq!(core_job.hashes(), simd_job.hashes(), "header {i}");
        assert_eq!(core_job.next_nonce(), simd_job.next_nonce(), "header {i}");
        // And the search resumes identically after the solution.
        let a2 = run(|n| core_job.step(n), &[1 << 20]);
        let b2 = run(|n| simd_job.step(n), chunks);
        assert_eq!(a2, b2, "header {i}, second solution");
        assert_eq!(core_job.hashes(), simd_job.hashes());
    }
}

#[wasm_bindgen_test]
fn range_ends_that_are_not_multiples_of_four() {
    let mut rng = Rng(7);
    for bits in [0x0300_0001u32, 0x2000_ffff, 0x207f_ffff] {
        let h = rng.header(bits);
        for (start, end) in [
            (u64::MAX - 9, None),
            (u64::MAX, None),
            (u64::MAX - 2, None),
            (5, Some(8)),
            (5, Some(6)),
            (5, Some(5)),
            (100, Some(1_103)),
            (0, Some(2)),
            (u64::MAX - 6, Some(u64::MAX)),
        ] {
            for chunks in [&[100u64][..], &[1], &[2], &[3], &[5, 4]] {
                let range = NonceRange { start, end };
                let mut core_job = miner::MinerJob::new(h, range).unwrap();
                let mut simd_job = SimdJob::new(h, range).unwrap();
                for i in 0..2_000 {
                    let n = chunks[i % chunks.len()];
                    let a = core_job.step(n);
                    let b = simd_job.step(n);
                    let ctx = format!("bits {bits:#x} range {start}..{end:?} chunk {n}");
                    assert_eq!(a, b, "{ctx}");
                    assert_eq!(core_job.hashes(), simd_job.hashes(), "{ctx}");
                    assert_eq!(core_job.next_nonce(), simd_job.next_nonce(), "{ctx}");
                    if a == Step::Exhausted {
                        break;
                    }
                }
                assert_eq!(core_job.step(10), Step::Exhausted);
                assert_eq!(simd_job.step(10), Step::Exhausted);
            }
        }
    }
}

#[wasm_bindgen_test]
fn exported_miner_job_finds_what_core_finds() {
    let mut rng = Rng(2026);
    for i in 0..12u32 {
        let h = rng.header(0x2000_ffff);
        let bytes = h.to_bytes();
        let workers = 1 + i % 4;
        let worker = i % workers;
        let mut core_job = miner::MinerJob::new(h, NonceRange::slice(worker, workers)).unwrap();
        let Step::Found(expect) = run(|n| core_job.step(n), &[1 << 20]) else {
            panic!("no block at easy difficulty");
        };
        let mut job = MinerJob::new(&bytes, worker, workers).unwrap();
        let mut found = None;
        for _ in 0..10_000 {
            if let Some(f) = job.step(13) {
                found = Some(f);
                break;
            }
        }
        let found = BlockHeader::from_bytes(&found.expect("a block").try_into().unwrap());
        assert_eq!(found, expect);
        assert_eq!(job.hashes(), core_job.hashes() as f64);
        let target = CompactTarget(0x2000_ffff).to_target().unwrap();
        assert!(target.is_met_by(found.hash().as_hash()));
    }
    assert!(MinerJob::new(&[0u8; 10], 0, 1).is_err());
}
