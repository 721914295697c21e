//! The SHA-NI kernel: lane packing, message schedule, rounds, and the job that drives them.

use core::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_alignr_epi8, _mm_extract_epi32, _mm_set_epi32, _mm_setzero_si128,
    _mm_sha256msg1_epu32, _mm_sha256msg2_epu32, _mm_sha256rnds2_epu32, _mm_shuffle_epi32,
    _mm_unpackhi_epi64, _mm_unpacklo_epi64,
};

use tabcoin_core::miner::{MinerError, NonceRange, Step};
use tabcoin_core::primitives::{BlockHeader, HEADER_SIZE};

use super::LANES;

/// The instruction encoding a kernel is compiled for. The SHA instructions exist only in
/// the legacy SSE encoding, which reaches 16 registers and overwrites an operand; the
/// adds, shuffles and copies around them are shorter in AVX's three-operand form, and
/// with AVX-512VL the compiler can park message words in 16 more registers instead of
/// on the stack. Every variant computes the same thing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Encoding {
    /// SHA, SSSE3 (`PALIGNR`), SSE4.1 (`PEXTRD`).
    Sse,
    /// The same with AVX.
    Avx,
    /// The same with AVX, AVX-512F and AVX-512VL.
    Avx512,
}

impl Encoding {
    pub(super) const ALL: [Encoding; 3] = [Encoding::Sse, Encoding::Avx, Encoding::Avx512];

    /// Whether this CPU (and OS) can run kernels of this encoding.
    pub(super) fn available(self) -> bool {
        let base = std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse2")
            && std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("sse4.1");
        base && match self {
            Encoding::Sse => true,
            Encoding::Avx => std::arch::is_x86_feature_detected!("avx"),
            Encoding::Avx512 => {
                std::arch::is_x86_feature_detected!("avx")
                    && std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
            }
        }
    }

    /// The best encoding this CPU runs, if it has the SHA extensions at all.
    pub(super) fn detect() -> Option<Encoding> {
        [Encoding::Avx512, Encoding::Avx, Encoding::Sse]
            .into_iter()
            .find(|e| e.available())
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            Encoding::Sse => "sse4.1",
            Encoding::Avx => "avx",
            Encoding::Avx512 => "avx-512vl",
        }
    }
}

/// Whether this CPU has every instruction the kernel needs.
pub(super) fn available() -> bool {
    Encoding::Sse.available()
}

/// FIPS 180-4 §5.3.3.
const IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

/// FIPS 180-4 §4.2.2; one row per register of four rounds.
#[rustfmt::skip]
const K: [u32; 64] = [
    0x428a_2f98, 0x7137_4491, 0xb5c0_fbcf, 0xe9b5_dba5,
    0x3956_c25b, 0x59f1_11f1, 0x923f_82a4, 0xab1c_5ed5,
    0xd807_aa98, 0x1283_5b01, 0x2431_85be, 0x550c_7dc3,
    0x72be_5d74, 0x80de_b1fe, 0x9bdc_06a7, 0xc19b_f174,
    0xe49b_69c1, 0xefbe_4786, 0x0fc1_9dc6, 0x240c_a1cc,
    0x2de9_2c6f, 0x4a74_84aa, 0x5cb0_a9dc, 0x76f9_88da,
    0x983e_5152, 0xa831_c66d, 0xb003_27c8, 0xbf59_7fc7,
    0xc6e0_0bf3, 0xd5a7_9147, 0x06ca_6351, 0x1429_2967,
    0x27b7_0a85, 0x2e1b_2138, 0x4d2c_6dfc, 0x5338_0d13,
    0x650a_7354, 0x766a_0abb, 0x81c2_c92e, 0x9272_2c85,
    0xa2bf_e8a1, 0xa81a_664b, 0xc24b_8b70, 0xc76c_51a3,
    0xd192_e819, 0xd699_0624, 0xf40e_3585, 0x106a_a070,
    0x19a4_c116, 0x1e37_6c08, 0x2748_774c, 0x34b0_bcb5,
    0x391c_0cb3, 0x4ed8_aa4a, 0x5b9c_ca4f, 0x682e_6ff3,
    0x748f_82ee, 0x78a5_636f, 0x84c8_7814, 0x8cc7_0208,
    0x90be_fffa, 0xa450_6ceb, 0xbef9_a3f7, 0xc671_78f2,
];

/// Bits of the header (the first compression's message length).
const HEADER_BITS: u32 = (HEADER_SIZE as u32) * 8;
/// Bits of a SHA-256 digest (the second compression's message length).
const DIGEST_BITS: u32 = 256;
/// The `1` bit that ends a message (FIPS 180-4 §5.1.1).
const END_BIT: u32 = 0x8000_0000;

// The layout the job relies on: the tail block is header bytes 64..88, nonce last.
const _: () = assert!(HEADER_SIZE == 88);

/// A SHA-NI search; exists only on a CPU that runs `encoding`.
#[derive(Clone, Debug)]
pub(super) struct NiJob {
    pub(super) header: BlockHeader,
    /// Available on this CPU (checked by `NiJob::new`).
    encoding: Encoding,
    /// SHA-256 state after the header's first 64 bytes.
    midstate: [u32; 8],
    /// Big-endian words of header bytes 64..80 (the tail block's words 0..3).
    tail: [u32; 4],
    target: [u8; 32],
    /// The target's most significant 32 bits.
    target_top: u32,
    pub(super) next: u64,
    end: Option<u64>,
    done: bool,
    pub(super) hashes: u64,
}

impl NiJob {
    /// A job with the best encoding of this CPU; `Ok(None)` if it lacks the SHA
    /// extensions.
    pub(super) fn new(header: BlockHeader, range: NonceRange) -> Result<Option<NiJob>, MinerError> {
        match Encoding::detect() {
            Some(encoding) => NiJob::with_encoding(header, range, encoding),
            None => {
                header.bits.to_target().map_err(MinerError)?;
                Ok(None)
            }
        }
    }

    /// `Ok(None)` if the CPU cannot run `encoding`.
    pub(super) fn with_encoding(
        header: BlockHeader,
        range: NonceRange,
        encoding: Encoding,
    ) -> Result<Option<NiJob>, MinerError> {
        let target = header.bits.to_target().map_err(MinerError)?.to_be_bytes();
        if !encoding.available() {
            return Ok(None);
        }
        let bytes = header.to_bytes();
        let mut first = [0u32; 16];
        for (w, c) in first.iter_mut().zip(bytes[..64].chunks_exact(4)) {
            *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        let mut tail = [0u32; 4];
        for (w, c) in tail.iter_mut().zip(bytes[64..80].chunks_exact(4)) {
            *w = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
        }
        // SAFETY: `encoding.available()` just returned true, and every encoding includes
        // the features `compress` is compiled for.
        let midstate = unsafe { compress(IV, &first) };
        Ok(Some(NiJob {
            header,
            encoding,
            midstate,
            tail,
            target,
            target_top: u32::from_be_bytes([target[0], target[1], target[2], target[3]]),
            next: range.start,
            end: range.end,
            done: range.end == Some(range.start),
            hashes: 0,
        }))
    }

    #[cfg(test)]
    pub(super) fn encoding(&self) -> Encoding {
        self.encoding
    }

    pub(super) fn step(&mut self, max_nonces: u64) -> Step {
        // SAFETY (each arm): a `NiJob` is only built by `NiJob::with_encoding` after
        // `encoding.available()` returned true, so the CPU has every feature the
        // function of that encoding is compiled for.
        match self.encoding {
            Encoding::Sse => unsafe { sse::step::<LANES>(self, max_nonces) },
            Encoding::Avx => unsafe { avx::step::<LANES>(self, max_nonces) },
            Encoding::Avx512 => unsafe { avx512::step::<LANES>(self, max_nonces) },
        }
    }

    /// Nonces left in the range: up to `end`, or to `u64::MAX` inclusive when there is
    /// no end or the range wraps (as core's `MinerJob` counts).
    fn remaining(&self) -> u128 {
        match self.end {
            Some(end) if end > self.next => u128::from(end - self.next),
            _ => (1u128 << 64) - u128::from(self.next),
        }
    }

    /// Records `tried` (at least 1) more nonces as tried. As in `MinerJob`, `next` stays
    /// on the last nonce of the range once it has been tried.
    fn advance(&mut self, tried: u64, remaining: u128) {
        self.hashes += tried;
        if u128::from(tried) == remaining {
            self.done = true;
            self.next += tried - 1;
        } else {
            self.next += tried;
        }
    }

    /// The hashes of the `LANES` nonces from `first` (wrapping), as the kernel computes
    /// them (tests).
    #[cfg(test)]
    pub(super) fn kernel_hashes(&self, first: u64) -> [[u8; 32]; LANES] {
        // SAFETY (each arm): as in `step`.
        match self.encoding {
            Encoding::Sse => unsafe { sse::kernel_hashes::<LANES>(self, first) },
            Encoding::Avx => unsafe { avx::kernel_hashes::<LANES>(self, first) },
            Encoding::Avx512 => unsafe { avx512::kernel_hashes::<LANES>(self, first) },
        }
    }
}

/// Per-job constants, as vectors.
#[derive(Clone, Copy)]
struct Kernel {
    /// `K[4q..4q+4]`, `K[4q]` in the bottom lane.
    k: [__m128i; 16],
    /// The midstate in `(a, b, e, f)`, `(c, d, g, h)` form.
    mid_abef: __m128i,
    mid_cdgh: __m128i,
    /// The state after the tail block's first four rounds (which do not depend on the
    /// nonce).
    pre_abef: __m128i,
    pre_cdgh: __m128i,
    /// Words 0..3 of the tail block.
    w0: __m128i,
    /// Words 12..15 of the tail block: zeros and the header length in bits.
    w3: __m128i,
    /// Words 8..11 and 12..15 of the second block: the end bit, zeros, 256.
    pad2: __m128i,
    len2: __m128i,
    iv_abef: __m128i,
    iv_cdgh: __m128i,
}

/// Four words, `w[0]` in the bottom lane.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn words(w: [u32; 4]) -> __m128i {
    _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32)
}

/// `(a, b, e, f)` and `(c, d, g, h)` of a state `[a, b, c, d, e, f, g, h]`.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn split_state(s: [u32; 8]) -> (__m128i, __m128i) {
    (
        words([s[5], s[4], s[1], s[0]]),
        words([s[7], s[6], s[3], s[2]]),
    )
}

/// The state `[a, b, c, d, e, f, g, h]` of its two registers.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn join_state(abef: __m128i, cdgh: __m128i) -> [u32; 8] {
    [
        _mm_extract_epi32::<3>(abef) as u32,
        _mm_extract_epi32::<2>(abef) as u32,
        _mm_extract_epi32::<3>(cdgh) as u32,
        _mm_extract_epi32::<2>(cdgh) as u32,
        _mm_extract_epi32::<1>(abef) as u32,
        _mm_extract_epi32::<0>(abef) as u32,
        _mm_extract_epi32::<1>(cdgh) as u32,
        _mm_extract_epi32::<0>(cdgh) as u32,
    ]
}

/// Four rounds with `wk = W + K` of those rounds.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn rounds4(abef: &mut __m128i, cdgh: &mut __m128i, wk: __m128i) {
    // Rounds t, t+1: `cdgh` becomes the new (a, b, e, f); the old (a, b, e, f) in
    // `abef` is now (c, d, g, h).
    *cdgh = _mm_sha256rnds2_epu32(*cdgh, *abef, wk);
    // Rounds t+2, t+3 take their `W + K` from the top half.
    *abef = _mm_sha256rnds2_epu32(*abef, *cdgh, _mm_shuffle_epi32::<0b00_00_11_10>(wk));
}

/// Message words `W[t..t+4]` from `W[t-16..t-12]`, `W[t-12..]`, `W[t-8..]`, `W[t-4..]`.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn schedule(w16: __m128i, w12: __m128i, w8: __m128i, w4: __m128i) -> __m128i {
    // W[t-16+i] + σ0(W[t-15+i]) for i in 0..4.
    let s0 = _mm_sha256msg1_epu32(w16, w12);
    // W[t-7..t-3]: the top three words of `w8` and the bottom one of `w4`.
    let w7 = _mm_alignr_epi8::<4>(w4, w8);
    // Adds σ1(W[t-2+i]), computing W[t], W[t+1] first for the top two lanes.
    _mm_sha256msg2_epu32(_mm_add_epi32(s0, w7), w4)
}

/// Four rounds in each of `N` lanes, with message words `w` and constants `k`.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn quad<const N: usize>(
    abef: &mut [__m128i; N],
    cdgh: &mut [__m128i; N],
    w: &[__m128i; N],
    k: __m128i,
) {
    for i in 0..N {
        rounds4(&mut abef[i], &mut cdgh[i], _mm_add_epi32(w[i], k));
    }
}

/// [`schedule`] in each of `N` lanes.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn schedule_lanes<const N: usize>(
    w16: &[__m128i; N],
    w12: &[__m128i; N],
    w8: &[__m128i; N],
    w4: &[__m128i; N],
) -> [__m128i; N] {
    let mut out = [_mm_setzero_si128(); N];
    for i in 0..N {
        out[i] = schedule(w16[i], w12[i], w8[i], w4[i]);
    }
    out
}

/// The 64 rounds of a compression (without the first four if `$skip_first`), `N`
/// independent states (`$abef`, `$cdgh`: `[__m128i; N]`) in lockstep, message words
/// `W[0..16]` as four registers per lane (`$msg`: `[[__m128i; N]; 4]`), constants `$k`.
/// Without the final addition of the state the compression started from.
///
/// A macro, not a function: written out in the caller, every lane's registers stay in
/// place and the compiler hoists whatever does not depend on the nonce out of the
/// caller's loop (a function this large is not always inlined, and
/// `#[inline(always)]` cannot be combined with `#[target_feature]`).
macro_rules! rounds {
    ($k:expr, $abef:expr, $cdgh:expr, $msg:expr, $skip_first:expr) => {{
        let k: &[__m128i; 16] = $k;
        let (abef, cdgh) = ($abef, $cdgh);
        let [w0, w1, w2, w3] = $msg;
        if !$skip_first {
            quad(abef, cdgh, &w0, k[0]);
        }
        quad(abef, cdgh, &w1, k[1]);
        quad(abef, cdgh, &w2, k[2]);
        quad(abef, cdgh, &w3, k[3]);
        let w4 = schedule_lanes(&w0, &w1, &w2, &w3);
        quad(abef, cdgh, &w4, k[4]);
        let w5 = schedule_lanes(&w1, &w2, &w3, &w4);
        quad(abef, cdgh, &w5, k[5]);
        let w6 = schedule_lanes(&w2, &w3, &w4, &w5);
        quad(abef, cdgh, &w6, k[6]);
        let w7 = schedule_lanes(&w3, &w4, &w5, &w6);
        quad(abef, cdgh, &w7, k[7]);
        let w8 = schedule_lanes(&w4, &w5, &w6, &w7);
        quad(abef, cdgh, &w8, k[8]);
        let w9 = schedule_lanes(&w5, &w6, &w7, &w8);
        quad(abef, cdgh, &w9, k[9]);
        let w10 = schedule_lanes(&w6, &w7, &w8, &w9);
        quad(abef, cdgh, &w10, k[10]);
        let w11 = schedule_lanes(&w7, &w8, &w9, &w10);
        quad(abef, cdgh, &w11, k[11]);
        let w12 = schedule_lanes(&w8, &w9, &w10, &w11);
        quad(abef, cdgh, &w12, k[12]);
        let w13 = schedule_lanes(&w9, &w10, &w11, &w12);
        quad(abef, cdgh, &w13, k[13]);
        let w14 = schedule_lanes(&w10, &w11, &w12, &w13);
        quad(abef, cdgh, &w14, k[14]);
        let w15 = schedule_lanes(&w11, &w12, &w13, &w14);
        quad(abef, cdgh, &w15, k[15]);
    }};
}

/// SHA-256d of the header with each of the `N` nonces `$nonces: [u64; N]`, as the
/// `(a, b, e, f)` and `(c, d, g, h)` registers of each final state (digest words
/// `H0 H1 H4 H5` and `H2 H3 H6 H7`). A macro for the reasons given at `rounds!`.
macro_rules! hash_lanes {
    ($kernel:expr, $nonces:expr) => {{
        let kernel: &Kernel = $kernel;
        let nonces = $nonces;
        let zero = [_mm_setzero_si128(); N];
        // Tail block words 4..7: the nonce's 8 little-endian bytes read as two
        // big-endian words, the end bit, a zero.
        let mut w1 = zero;
        for i in 0..N {
            let n: u64 = nonces[i];
            w1[i] = words([
                (n as u32).swap_bytes(),
                ((n >> 32) as u32).swap_bytes(),
                END_BIT,
                0,
            ]);
        }
        let mut abef = [kernel.pre_abef; N];
        let mut cdgh = [kernel.pre_cdgh; N];
        let msg = [[kernel.w0; N], w1, zero, [kernel.w3; N]];
        rounds!(&kernel.k, &mut abef, &mut cdgh, msg, true);

        // The first digest H0..H7 is the second block's words 0..7.
        let (mut d0, mut d1) = (zero, zero);
        for i in 0..N {
            // (f, e, b, a) → (a, b, e, f) bottom up; likewise for (c, d, g, h).
            let x = _mm_add_epi32(abef[i], kernel.mid_abef);
            let y = _mm_add_epi32(cdgh[i], kernel.mid_cdgh);
            let x = _mm_shuffle_epi32::<0b00_01_10_11>(x);
            let y = _mm_shuffle_epi32::<0b00_01_10_11>(y);
            d0[i] = _mm_unpacklo_epi64(x, y);
            d1[i] = _mm_unpackhi_epi64(x, y);
        }
        let mut abef = [kernel.iv_abef; N];
        let mut cdgh = [kernel.iv_cdgh; N];
        let msg = [d0, d1, [kernel.pad2; N], [kernel.len2; N]];
        rounds!(&kernel.k, &mut abef, &mut cdgh, msg, false);
        for i in 0..N {
            abef[i] = _mm_add_epi32(abef[i], kernel.iv_abef);
            cdgh[i] = _mm_add_epi32(cdgh[i], kernel.iv_cdgh);
        }
        (abef, cdgh)
    }};
}

impl Kernel {
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    fn new(job: &NiJob) -> Kernel {
        let mut k = [_mm_setzero_si128(); 16];
        for (v, c) in k.iter_mut().zip(K.chunks_exact(4)) {
            *v = words([c[0], c[1], c[2], c[3]]);
        }
        let (mid_abef, mid_cdgh) = split_state(job.midstate);
        let w0 = words(job.tail);
        let (mut pre_abef, mut pre_cdgh) = (mid_abef, mid_cdgh);
        rounds4(&mut pre_abef, &mut pre_cdgh, _mm_add_epi32(w0, k[0]));
        let (iv_abef, iv_cdgh) = split_state(IV);
        Kernel {
            k,
            mid_abef,
            mid_cdgh,
            pre_abef,
            pre_cdgh,
            w0,
            w3: words([0, 0, 0, HEADER_BITS]),
            pad2: words([END_BIT, 0, 0, 0]),
            len2: words([0, 0, 0, DIGEST_BITS]),
            iv_abef,
            iv_cdgh,
        }
    }
}

/// The 32 bytes of a digest from its two registers.
#[inline]
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn digest_bytes(abef: __m128i, cdgh: __m128i) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (c, w) in out.chunks_exact_mut(4).zip(join_state(abef, cdgh)) {
        c.copy_from_slice(&w.to_be_bytes());
    }
    out
}

/// One SHA-256 compression of a block of 16 big-endian words.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
fn compress(state: [u32; 8], block: &[u32; 16]) -> [u32; 8] {
    let mut k = [_mm_setzero_si128(); 16];
    for (v, c) in k.iter_mut().zip(K.chunks_exact(4)) {
        *v = words([c[0], c[1], c[2], c[3]]);
    }
    let (a0, c0) = split_state(state);
    let mut msg = [[_mm_setzero_si128(); 1]; 4];
    for (m, c) in msg.iter_mut().zip(block.chunks_exact(4)) {
        m[0] = words([c[0], c[1], c[2], c[3]]);
    }
    let (mut abef, mut cdgh) = ([a0], [c0]);
    rounds!(&k, &mut abef, &mut cdgh, msg, false);
    join_state(_mm_add_epi32(abef[0], a0), _mm_add_epi32(cdgh[0], c0))
}

/// The kernel's entry points, compiled for one [`Encoding`] (`$features`) in module
/// `$module`: the bodies are the same, only the instructions the compiler may pick
/// differ. The hashing is written out in them by `hash_lanes!`; the small helpers they
/// call are inlined and compiled with the caller's features.
macro_rules! kernels {
    ($module:ident, $features:literal) => {
        mod $module {
            use core::arch::x86_64::{_mm_extract_epi32, _mm_setzero_si128, _mm_xor_si128};

            use super::*;

            /// [`NiJob::step`], `N` nonces per kernel call.
            #[target_feature(enable = $features)]
            pub(super) fn step<const N: usize>(job: &mut NiJob, max_nonces: u64) -> Step {
                let kernel = Kernel::new(job);
                let mut left = max_nonces;
                while left > 0 {
                    if job.done {
                        return Step::Exhausted;
                    }
                    let remaining = job.remaining();
                    // At most N; fewer at the end of the range or of this call (the
                    // other lanes' results are dropped).
                    let take = remaining.min(u128::from(left)).min(N as u128) as u64;
                    let first = job.next;
                    let mut nonces = [0u64; N];
                    for (i, n) in nonces.iter_mut().enumerate() {
                        *n = first.wrapping_add(i as u64);
                    }
                    let (abef, cdgh) = hash_lanes!(&kernel, nonces);
                    for i in 0..N {
                        if i as u64 == take {
                            break;
                        }
                        // The hash's most significant word decides unless it equals
                        // the target's.
                        let top = _mm_extract_epi32::<3>(abef[i]) as u32;
                        if top <= job.target_top && digest_bytes(abef[i], cdgh[i]) <= job.target {
                            job.advance(i as u64 + 1, remaining);
                            let mut found = job.header;
                            found.nonce = nonces[i];
                            return Step::Found(found);
                        }
                    }
                    job.advance(take, remaining);
                    left -= take;
                }
                if job.done {
                    Step::Exhausted
                } else {
                    Step::Continue
                }
            }

            #[cfg(test)]
            #[target_feature(enable = $features)]
            pub(super) fn kernel_hashes<const N: usize>(job: &NiJob, first: u64) -> [[u8; 32]; N] {
                let kernel = Kernel::new(job);
                let mut nonces = [0u64; N];
                for (i, n) in nonces.iter_mut().enumerate() {
                    *n = first.wrapping_add(i as u64);
                }
                let (abef, cdgh) = hash_lanes!(&kernel, nonces);
                let mut out = [[0u8; 32]; N];
                for i in 0..N {
                    out[i] = digest_bytes(abef[i], cdgh[i]);
                }
                out
            }

            #[target_feature(enable = $features)]
            pub(super) fn reference<const N: usize>(job: &NiJob, start: u64, batches: u64) -> u32 {
                let kernel = Kernel::new(job);
                let mut acc = _mm_setzero_si128();
                let mut nonces = [0u64; N];
                for (i, n) in nonces.iter_mut().enumerate() {
                    *n = start.wrapping_add(i as u64);
                }
                for _ in 0..batches {
                    let (abef, _) = hash_lanes!(&kernel, nonces);
                    for (v, n) in abef.iter().zip(nonces.iter_mut()) {
                        acc = _mm_xor_si128(acc, *v);
                        *n = n.wrapping_add(N as u64);
                    }
                }
                _mm_extract_epi32::<3>(acc) as u32
            }
        }
    };
}

kernels!(sse, "sha,sse2,ssse3,sse4.1");
kernels!(avx, "sha,sse2,ssse3,sse4.1,avx");
kernels!(avx512, "sha,sse2,ssse3,sse4.1,avx,avx2,avx512f,avx512vl");

/// See [`super::reference_loop`].
pub(super) fn reference_loop(
    header: &BlockHeader,
    encoding: Encoding,
    width: usize,
    start: u64,
    batches: u64,
) -> Option<u32> {
    let job = NiJob::with_encoding(*header, NonceRange::ALL, encoding).ok()??;
    macro_rules! widths {
        ($module:ident) => {
            match width {
                1 => Some($module::reference::<1>(&job, start, batches)),
                2 => Some($module::reference::<2>(&job, start, batches)),
                3 => Some($module::reference::<3>(&job, start, batches)),
                4 => Some($module::reference::<4>(&job, start, batches)),
                6 => Some($module::reference::<6>(&job, start, batches)),
                8 => Some($module::reference::<8>(&job, start, batches)),
                _ => None,
            }
        };
    }
    // SAFETY (each arm): as in `NiJob::step`: `job` exists, so the CPU runs its encoding.
    match job.encoding {
        Encoding::Sse => unsafe { widths!(sse) },
        Encoding::Avx => unsafe { widths!(avx) },
        Encoding::Avx512 => unsafe { widths!(avx512) },
    }
}
