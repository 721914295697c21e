use super::*;
use tabcoin_core::hash::{Hash256, sha256d};
use tabcoin_core::primitives::BlockHash;
use tabcoin_core::units::CompactTarget;

/// SplitMix64: enough randomness for test inputs; the seed is printed on failure.
struct Rng(u64);

impl Rng {
    fn seeded() -> (Rng, u64) {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).expect("the OS has randomness");
        let seed = u64::from_le_bytes(b);
        (Rng(seed), seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for c in out.chunks_exact_mut(8) {
            c.copy_from_slice(&self.next().to_le_bytes());
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

    /// A nonce, often near the ends of the space.
    fn nonce(&mut self) -> u64 {
        match self.next() % 4 {
            0 => self.next() % 64,
            1 => u64::MAX - self.next() % 64,
            _ => self.next(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn with_nonce(mut h: BlockHeader, nonce: u64) -> BlockHeader {
    h.nonce = nonce;
    h
}

#[cfg(target_arch = "x86_64")]
fn ni_available() -> bool {
    if Backend::detect() == Backend::ShaNi {
        true
    } else {
        eprintln!("this CPU lacks SHA-NI: the SHA-NI tests check nothing");
        false
    }
}

#[cfg(target_arch = "x86_64")]
/// The SHA-NI kernel's encodings this CPU runs (each is tested).
fn encodings() -> Vec<ni::Encoding> {
    let all: Vec<ni::Encoding> = ni::Encoding::ALL
        .into_iter()
        .filter(|e| e.available())
        .collect();
    eprintln!("encodings tested: {all:?}");
    all
}

#[cfg(target_arch = "x86_64")]
/// A job on the SHA-NI kernel of `encoding`.
fn ni_job(header: BlockHeader, range: NonceRange, encoding: ni::Encoding) -> FastJob {
    let job = ni::NiJob::with_encoding(header, range, encoding)
        .unwrap()
        .unwrap();
    assert_eq!(job.encoding(), encoding);
    FastJob {
        inner: Inner::ShaNi(job),
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn every_kernel_hash_equals_sha256d() {
    if !ni_available() {
        return;
    }
    let (mut rng, seed) = Rng::seeded();
    for encoding in encodings() {
        for _ in 0..2_000 {
            let header = rng.header(0x1d00_ffff);
            let job = ni::NiJob::with_encoding(header, NonceRange::ALL, encoding)
                .unwrap()
                .unwrap();
            let first = rng.nonce();
            for (i, hash) in job.kernel_hashes(first).iter().enumerate() {
                let nonce = first.wrapping_add(i as u64);
                let expect = sha256d(&with_nonce(header, nonce).to_bytes());
                assert_eq!(
                    *hash, expect.0,
                    "seed {seed:#x}, {encoding:?}, header {header:?}, nonce {nonce}"
                );
            }
        }
    }
}

/// Runs `job` in chunks of random sizes until it finds, runs out of nonces, or has tried
/// `budget` in all; returns the find and the hashes tried.
fn run(job: &mut FastJob, rng: &mut Rng, budget: u64) -> (Option<BlockHeader>, u64) {
    while job.hashes() < budget {
        let chunk = match rng.next() % 3 {
            0 => rng.next() % 8,
            1 => rng.next() % 100,
            _ => rng.next() % 2_000,
        };
        match job.step(chunk) {
            Step::Found(h) => return (Some(h), job.hashes()),
            Step::Continue => {}
            Step::Exhausted => return (None, job.hashes()),
        }
    }
    (None, job.hashes())
}

fn reference_run(header: BlockHeader, range: NonceRange, budget: u64) -> Vec<Step> {
    let mut job = MinerJob::new(header, range).unwrap();
    let mut out = Vec::new();
    while job.hashes() < budget {
        let s = job.step(budget - job.hashes());
        out.push(s);
        if s == Step::Exhausted {
            break;
        }
    }
    out
}

/// Same results as core's `MinerJob` (every found header, hash counts, exhaustion) on
/// random headers, ranges and chunk sizes, for `backend`.
fn matches_miner_job(backend: Backend, make: impl Fn(BlockHeader, NonceRange) -> FastJob) {
    let (mut rng, seed) = Rng::seeded();
    let mut finds = 0;
    for round in 0..300 {
        // About 1 in 256 hashes meets 0x2000ffff, 1 in 16 meets 0x200fffff.
        let bits = [0x2000_ffff, 0x200f_ffff, 0x207f_ffff, 0x1f00_ffff][round % 4];
        let header = rng.header(bits);
        let start = rng.nonce();
        let end = match rng.next() % 4 {
            0 => None,
            1 => Some(start.wrapping_add(rng.next() % 40)),
            2 => Some(start.wrapping_add(rng.next() % 3_000)),
            _ => Some(rng.next()),
        };
        let range = NonceRange { start, end };
        let budget = 3_000;
        let mut expect = MinerJob::new(header, range).unwrap();
        let mut job = make(header, range);
        assert_eq!(job.backend(), backend);
        assert_eq!(job.header(), expect.header());
        // Several finds in a row from the same job, like a miner that keeps going.
        for _ in 0..4 {
            let before = job.hashes();
            let (found, hashes) = run(&mut job, &mut rng, before + budget);
            // The core job over exactly as many nonces.
            let want = if hashes == expect.hashes() {
                Step::Continue
            } else {
                expect.step(hashes - expect.hashes())
            };
            let ctx = format!("seed {seed:#x}, round {round}, range {range:?}");
            assert_eq!(expect.hashes(), hashes, "{ctx}");
            assert_eq!(expect.next_nonce(), job.next_nonce(), "{ctx}");
            match found {
                Some(h) => {
                    finds += 1;
                    assert_eq!(want, Step::Found(h), "{ctx}");
                    assert!(sha256d(&h.to_bytes()).0 <= h.bits.to_target().unwrap().to_be_bytes());
                }
                None => {
                    assert!(!matches!(want, Step::Found(_)), "{ctx}: missed {want:?}");
                    // Exhausted on both sides, or both still going.
                    assert_eq!(job.step(0), expect.step(0), "{ctx}");
                    if job.step(0) == Step::Exhausted {
                        break;
                    }
                }
            }
        }
    }
    // Most rounds find blocks: the comparison covers found headers, not only misses.
    assert!(finds > 300, "seed {seed:#x}: only {finds} finds");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn sha_ni_matches_miner_job() {
    for encoding in encodings() {
        matches_miner_job(Backend::ShaNi, |h, r| ni_job(h, r, encoding));
    }
}

#[test]
fn scalar_fallback_matches_miner_job() {
    matches_miner_job(Backend::Scalar, |h, r| {
        FastJob::with_backend(h, r, Backend::Scalar).unwrap()
    });
}

#[test]
fn single_steps_match_the_reference() {
    // The same sequence of `step` results as core's MinerJob for a fixed chunk size.
    let (mut rng, seed) = Rng::seeded();
    for backend in [Backend::detect(), Backend::Scalar] {
        let header = rng.header(0x2000_ffff);
        let range = NonceRange {
            start: u64::MAX - 5_000,
            end: None,
        };
        let expect = reference_run(header, range, 10_000);
        let mut job = FastJob::with_backend(header, range, backend).unwrap();
        let mut got = Vec::new();
        while job.hashes() < 10_000 {
            let s = job.step(10_000 - job.hashes());
            got.push(s);
            if s == Step::Exhausted {
                break;
            }
        }
        assert_eq!(got, expect, "seed {seed:#x}, {backend:?}");
        assert_eq!(job.hashes(), 5_001);
    }
}

#[test]
fn ranges_are_exhausted_exactly() {
    let (mut rng, _) = Rng::seeded();
    // A target of 1: nothing is found, every nonce of the range is tried once.
    let header = rng.header(0x0300_0001);
    for backend in [Backend::detect(), Backend::Scalar] {
        for (range, max, steps, hashes) in [
            (
                NonceRange {
                    start: u64::MAX - 9,
                    end: None,
                },
                100,
                vec![Step::Exhausted],
                10,
            ),
            (
                NonceRange {
                    start: 5,
                    end: Some(8),
                },
                2,
                vec![Step::Continue, Step::Exhausted],
                3,
            ),
            (
                NonceRange {
                    start: 5,
                    end: Some(5),
                },
                2,
                vec![Step::Exhausted],
                0,
            ),
            (
                NonceRange {
                    start: 5,
                    end: Some(9),
                },
                4,
                vec![Step::Exhausted, Step::Exhausted],
                4,
            ),
            (
                NonceRange {
                    start: 7,
                    end: Some(3),
                },
                1 << 20,
                vec![Step::Continue],
                1 << 20,
            ),
            (
                NonceRange {
                    start: 0,
                    end: None,
                },
                0,
                vec![Step::Continue],
                0,
            ),
        ] {
            let mut job = FastJob::with_backend(header, range, backend).unwrap();
            let got: Vec<Step> = steps.iter().map(|_| job.step(max)).collect();
            assert_eq!(got, steps, "{backend:?} {range:?}");
            assert_eq!(job.hashes(), hashes, "{backend:?} {range:?}");
        }
    }
}

#[test]
fn bad_bits_are_refused_by_both_backends() {
    let (mut rng, _) = Rng::seeded();
    let header = rng.header(0x0400_0000); // a zero target
    assert!(MinerJob::new(header, NonceRange::ALL).is_err());
    for backend in [Backend::ShaNi, Backend::Scalar] {
        assert_eq!(
            FastJob::with_backend(header, NonceRange::ALL, backend).err(),
            MinerJob::new(header, NonceRange::ALL).err()
        );
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn reference_loop_hashes_the_same_nonces() {
    if !ni_available() {
        return;
    }
    let (mut rng, seed) = Rng::seeded();
    let header = rng.header(0x207f_ffff);
    let start = rng.nonce();
    for encoding in encodings() {
        for width in [1usize, 2, 3, 4, 6, 8] {
            let batches = 5;
            let mut expect = 0u32;
            for i in 0..(width as u64 * batches) {
                let h = sha256d(&with_nonce(header, start.wrapping_add(i)).to_bytes());
                expect ^= u32::from_be_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]);
            }
            assert_eq!(
                reference_loop(&header, Some(encoding.name()), width, start, batches),
                Some(expect),
                "seed {seed:#x}, {encoding:?}, width {width}"
            );
        }
    }
    assert_eq!(reference_loop(&header, None, 5, start, 1), None);
    assert_eq!(reference_loop(&header, Some("mmx"), 4, start, 1), None);
}

#[test]
fn backend_names() {
    assert_eq!(Backend::ShaNi.name(), "sha-ni x4");
    assert_eq!(Backend::Scalar.name(), "scalar");
    #[cfg(target_arch = "x86_64")]
    let sha = std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("sse4.1");
    #[cfg(not(target_arch = "x86_64"))]
    let sha = false;
    assert_eq!(backend(), if sha { "sha-ni x4" } else { "scalar" });
    assert_eq!(encoding().is_some(), sha);
}
