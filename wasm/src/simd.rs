//! A 4-way WebAssembly SIMD (simd128) proof-of-work kernel.
//!
//! Same search as [`tabcoin_core::miner::MinerJob`], four nonces at a time: lane `i` of every
//! `v128` holds the SHA-256 state for nonce `n + i`. Per group of four nonces it runs the
//! header's tail-block compression (from the shared midstate of the first 64 bytes) and the
//! second SHA-256 (of the 32-byte digest, from the IV) 4-wide, then checks the lanes against
//! the target: a vector compare of the most significant hash word first (almost always a
//! miss; the other seven words are computed only for a group that passes), and a full
//! 256-bit comparison only for lanes that pass it. Per job it precomputes everything that
//! does not depend on the nonce: the midstate, the tail block's first five rounds (round 4
//! but for adding the nonce's low word), and, for both blocks, the schedule words and parts
//! of words that are fixed, folded with the round constants into per-round tables.
//!
//! SHA-256 is written here from FIPS 180-4 (section 4.1.2 functions, 4.2.2 constants,
//! 5.3.3 initial value, 6.2.2 computation). Only built with `-C target-feature=+simd128`; the
//! simd128 intrinsics used are safe functions in that configuration, so no `unsafe` is needed.

#![cfg(all(target_arch = "wasm32", target_feature = "simd128"))]

use core::arch::wasm32::{
    u32x4, u32x4_add, u32x4_extract_lane, u32x4_le, u32x4_shl, u32x4_shr, u32x4_splat, v128,
    v128_any_true, v128_bitselect, v128_or, v128_xor,
};

use tabcoin_core::miner::{MinerError, NonceRange, Step};
use tabcoin_core::primitives::{BlockHeader, HEADER_SIZE};

/// SHA-256 round constants (FIPS 180-4 §4.2.2): the first 32 bits of the fractional parts of
/// the cube roots of the first 64 primes.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 initial hash value (FIPS 180-4 §5.3.3): the first 32 bits of the fractional parts
/// of the square roots of the first 8 primes.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Rounds of the tail-block compression that do not depend on the nonce (message words 0..4
/// are the end of the merkle root, the time and the bits): done once per job.
const FIXED_ROUNDS: usize = 4;

// ----- scalar SHA-256 (per job: the midstate and the nonce-independent rounds) -----

fn s_big0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}
fn s_big1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}
fn s_small0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}
fn s_small1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// Rounds `0..rounds` of SHA-256 on `state` with message schedule words `w[0..rounds]`
/// (`rounds <= 16`), returning the working variables `a..h` (no feed-forward).
fn scalar_rounds(state: &[u32; 8], w: &[u32; 16], rounds: usize) -> [u32; 8] {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..rounds {
        let t1 = h
            .wrapping_add(s_big1(e))
            .wrapping_add((e & f) ^ (!e & g))
            .wrapping_add(K[t])
            .wrapping_add(w[t]);
        let t2 = s_big0(a).wrapping_add((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    [a, b, c, d, e, f, g, h]
}

/// The SHA-256 compression function on one 64-byte block (scalar).
fn scalar_compress(state: &mut [u32; 8], block: &[u8; 64]) {
    let mut w = [0u32; 64];
    for (t, chunk) in block.chunks_exact(4).enumerate() {
        w[t] = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    for t in 16..64 {
        w[t] = s_small1(w[t - 2])
            .wrapping_add(w[t - 7])
            .wrapping_add(s_small0(w[t - 15]))
            .wrapping_add(w[t - 16]);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for t in 0..64 {
        let t1 = h
            .wrapping_add(s_big1(e))
            .wrapping_add((e & f) ^ (!e & g))
            .wrapping_add(K[t])
            .wrapping_add(w[t]);
        let t2 = s_big0(a).wrapping_add((a & b) ^ (a & c) ^ (b & c));
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

// ----- 4-wide SHA-256 -----

#[inline(always)]
fn add(a: v128, b: v128) -> v128 {
    u32x4_add(a, b)
}

#[inline(always)]
fn splat(x: u32) -> v128 {
    u32x4_splat(x)
}

#[inline(always)]
fn rotr<const N: u32>(x: v128) -> v128 {
    v128_or(u32x4_shr(x, N), u32x4_shl(x, 32 - N))
}

#[inline(always)]
fn big0(x: v128) -> v128 {
    v128_xor(v128_xor(rotr::<2>(x), rotr::<13>(x)), rotr::<22>(x))
}

#[inline(always)]
fn big1(x: v128) -> v128 {
    v128_xor(v128_xor(rotr::<6>(x), rotr::<11>(x)), rotr::<25>(x))
}

#[inline(always)]
fn small0(x: v128) -> v128 {
    v128_xor(v128_xor(rotr::<7>(x), rotr::<18>(x)), u32x4_shr(x, 3))
}

#[inline(always)]
fn small1(x: v128) -> v128 {
    v128_xor(v128_xor(rotr::<17>(x), rotr::<19>(x)), u32x4_shr(x, 10))
}

/// Ch(e, f, g) = (e AND f) XOR (NOT e AND g): f where e is set, else g.
#[inline(always)]
fn ch(e: v128, f: v128, g: v128) -> v128 {
    v128_bitselect(f, g, e)
}

/// Maj(a, b, c): the majority bit; where a and b differ it is c, elsewhere it is b.
#[inline(always)]
fn maj(a: v128, b: v128, c: v128) -> v128 {
    v128_bitselect(c, b, v128_xor(a, b))
}

/// Whether word `t` of the second block's message schedule (the 32-byte digest, padded)
/// differs per nonce: words 0..8 are the digest, 8..16 the fixed padding, and every word from
/// 16 on reaches back to the digest.
const fn digest_word_varies(t: usize) -> bool {
    t < 8 || t >= 16
}

/// Whether word `t` of the tail block's message schedule depends on the nonce: words 4 and 5
/// are the nonce; 16, 17 and 18 are made of fixed words only; every word from 19 on reaches
/// back to word 4 or 5.
const fn tail_word_varies(t: usize) -> bool {
    t == 4 || t == 5 || t >= 19
}

/// One round at index `$t`, the working variables named in their rotated order. `$varies(t)`
/// says which schedule words differ per nonce; only those live in the 16-word ring `$w`. A
/// word that does not is folded with its round constant into `$kw[t]` (the caller's per-job
/// table); a word that does is computed from its varying terms plus `$cw[t]`, the sum of its
/// fixed terms, and `$kw[t]` is then the round constant alone. Constants come from those
/// tables in memory rather than from `v128.const`, which V8 materialises with several
/// instructions each time.
macro_rules! round {
    ($varies:ident, $kw:ident, $cw:ident, $w:ident, $t:expr, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident) => {{
        const T: usize = $t;
        let kw = if $varies(T) {
            if T >= 16 {
                let mut x = $cw[T];
                if $varies(T.wrapping_sub(2)) {
                    x = add(x, small1($w[T.wrapping_sub(2) & 15]));
                }
                if $varies(T.wrapping_sub(7)) {
                    x = add(x, $w[T.wrapping_sub(7) & 15]);
                }
                if $varies(T.wrapping_sub(15)) {
                    x = add(x, small0($w[T.wrapping_sub(15) & 15]));
                }
                if $varies(T.wrapping_sub(16)) {
                    x = add(x, $w[T.wrapping_sub(16) & 15]);
                }
                $w[T & 15] = x;
            }
            add($w[T & 15], $kw[T])
        } else {
            $kw[T]
        };
        let t1 = add(add($h, big1($e)), add(ch($e, $f, $g), kw));
        $d = add($d, t1);
        $h = add(t1, add(big0($a), maj($a, $b, $c)));
    }};
}

/// Eight rounds starting at `$t` (a multiple of 8): after them the names are back in place.
macro_rules! rounds8 {
    ($v:ident, $kw:ident, $cw:ident, $w:ident, $t:expr, $a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident) => {{
        round!($v, $kw, $cw, $w, $t, $a, $b, $c, $d, $e, $f, $g, $h);
        round!($v, $kw, $cw, $w, $t + 1, $h, $a, $b, $c, $d, $e, $f, $g);
        round!($v, $kw, $cw, $w, $t + 2, $g, $h, $a, $b, $c, $d, $e, $f);
        round!($v, $kw, $cw, $w, $t + 3, $f, $g, $h, $a, $b, $c, $d, $e);
        round!($v, $kw, $cw, $w, $t + 4, $e, $f, $g, $h, $a, $b, $c, $d);
        round!($v, $kw, $cw, $w, $t + 5, $d, $e, $f, $g, $h, $a, $b, $c);
        round!($v, $kw, $cw, $w, $t + 6, $c, $d, $e, $f, $g, $h, $a, $b);
        round!($v, $kw, $cw, $w, $t + 7, $b, $c, $d, $e, $f, $g, $h, $a);
    }};
}

/// The per-job precomputation for hashing one header at any nonce.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// SHA-256 state after the header's first 64 bytes.
    midstate: [u32; 8],
    /// The working variables after round 4 of the tail block, without the nonce: rounds 0..4
    /// do not depend on it, and round 4 only adds its low word (message word 4) to `a` and
    /// `e`.
    round4: [u32; 8],
    /// The tail block's tables for [`round!`] (see [`tables`]).
    kw: [v128; 64],
    cw: [v128; 64],
    /// The same for the second block (the digest and its padding).
    kw2: [v128; 64],
    cw2: [v128; 64],
}

/// The per-round tables of [`round!`] for a block whose schedule words `w` are known where
/// `varies` is false (`w` holds every such word): `kw[t]` is the round constant plus word `t`
/// if that is fixed, else the round constant; `cw[t]`, for a varying word from 16 on, is the
/// sum of the terms of its schedule formula (FIPS 180-4 §6.2.2 step 1) that are fixed.
fn tables(w: &[u32], varies: fn(usize) -> bool) -> ([v128; 64], [v128; 64]) {
    let mut kw = [splat(0); 64];
    let mut cw = [splat(0); 64];
    for t in 0..64 {
        kw[t] = splat(if varies(t) {
            K[t]
        } else {
            K[t].wrapping_add(w[t])
        });
        if t >= 16 && varies(t) {
            let mut fixed = 0u32;
            if !varies(t - 2) {
                fixed = fixed.wrapping_add(s_small1(w[t - 2]));
            }
            if !varies(t - 7) {
                fixed = fixed.wrapping_add(w[t - 7]);
            }
            if !varies(t - 15) {
                fixed = fixed.wrapping_add(s_small0(w[t - 15]));
            }
            if !varies(t - 16) {
                fixed = fixed.wrapping_add(w[t - 16]);
            }
            cw[t] = splat(fixed);
        }
    }
    (kw, cw)
}

impl Kernel {
    /// Prepares `header` (its nonce is ignored).
    pub fn new(header: &BlockHeader) -> Kernel {
        let bytes = header.to_bytes();
        let mut midstate = IV;
        let mut first = [0u8; 64];
        first.copy_from_slice(&bytes[..64]);
        scalar_compress(&mut midstate, &first);
        let mut block = [0u8; 64];
        block[..HEADER_SIZE - 64].copy_from_slice(&bytes[64..]);
        block[HEADER_SIZE - 64] = 0x80;
        block[56..].copy_from_slice(&((HEADER_SIZE as u64) * 8).to_be_bytes());
        // The schedule words 0..19 with the nonce words (4, 5) zero: only the words that do
        // not depend on them are read below.
        let mut w = [0u32; 19];
        for (word, chunk) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        w[4] = 0;
        w[5] = 0;
        for t in 16..19 {
            w[t] = s_small1(w[t - 2])
                .wrapping_add(w[t - 7])
                .wrapping_add(s_small0(w[t - 15]))
                .wrapping_add(w[t - 16]);
        }
        let mut tail = [0u32; 16];
        tail.copy_from_slice(&w[..16]);
        let [a, b, c, d, e, f, g, h] = scalar_rounds(&midstate, &tail, FIXED_ROUNDS);
        // Round 4 with message word 4 left out (it is added per nonce).
        let t1 = h
            .wrapping_add(s_big1(e))
            .wrapping_add((e & f) ^ (!e & g))
            .wrapping_add(K[4]);
        let t2 = s_big0(a).wrapping_add((a & b) ^ (a & c) ^ (b & c));
        let round4 = [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g];
        let (kw, cw) = tables(&w, tail_word_varies);
        let mut digest_block = [0u32; 16];
        digest_block[8] = 0x8000_0000;
        digest_block[15] = 256;
        let (kw2, cw2) = tables(&digest_block, digest_word_varies);
        Kernel {
            midstate,
            round4,
            kw,
            cw,
            kw2,
            cw2,
        }
    }

    /// The working variables after the 64 rounds of the second compression (no feed-forward)
    /// for nonces `nonce..nonce + 4`.
    #[inline(always)]
    fn rounds(&self, nonce: u64) -> [v128; 8] {
        let n = [
            nonce,
            nonce.wrapping_add(1),
            nonce.wrapping_add(2),
            nonce.wrapping_add(3),
        ];
        // The nonce is little-endian at tail bytes 16..24; message words are big-endian.
        let lo = |i: usize| (n[i] as u32).swap_bytes();
        let hi = |i: usize| ((n[i] >> 32) as u32).swap_bytes();

        // First compression: the tail block, from the midstate. Only the nonce words and the
        // words computed from them live in `w`.
        let mut w = [splat(0); 16];
        w[4] = u32x4(lo(0), lo(1), lo(2), lo(3));
        w[5] = u32x4(hi(0), hi(1), hi(2), hi(3));
        let (kw, cw) = (&self.kw, &self.cw);
        // Rounds 0..5 are in `round4` but for word 4, which round 4 adds to `a` and `e`. The
        // round macros rotate names rather than values: at round 5 the working variable `a`
        // goes by the name `d`, `b` by `e`, and so on round the ring.
        let r = &self.round4;
        let mut d = add(splat(r[0]), w[4]);
        let mut e = splat(r[1]);
        let mut f = splat(r[2]);
        let mut g = splat(r[3]);
        let mut h = add(splat(r[4]), w[4]);
        let mut a = splat(r[5]);
        let mut b = splat(r[6]);
        let mut c = splat(r[7]);
        round!(tail_word_varies, kw, cw, w, 5, d, e, f, g, h, a, b, c);
        round!(tail_word_varies, kw, cw, w, 6, c, d, e, f, g, h, a, b);
        round!(tail_word_varies, kw, cw, w, 7, b, c, d, e, f, g, h, a);
        rounds8!(tail_word_varies, kw, cw, w, 8, a, b, c, d, e, f, g, h);
        rounds8!(tail_word_varies, kw, cw, w, 16, a, b, c, d, e, f, g, h);
        rounds8!(tail_word_varies, kw, cw, w, 24, a, b, c, d, e, f, g, h);
        rounds8!(tail_word_varies, kw, cw, w, 32, a, b, c, d, e, f, g, h);
        rounds8!(tail_word_varies, kw, cw, w, 40, a, b, c, d, e, f, g, h);
        rounds8!(tail_word_varies, kw, cw, w, 48, a, b, c, d, e, f, g, h);
        rounds8!(tail_word_varies, kw, cw, w, 56, a, b, c, d, e, f, g, h);
        let m = &self.midstate;
        let digest = [
            add(a, splat(m[0])),
            add(b, splat(m[1])),
            add(c, splat(m[2])),
            add(d, splat(m[3])),
            add(e, splat(m[4])),
            add(f, splat(m[5])),
            add(g, splat(m[6])),
            add(h, splat(m[7])),
        ];

        // Second compression: the 32-byte digest plus padding, from the IV.
        let mut w = [splat(0); 16];
        w[..8].copy_from_slice(&digest);
        let (kw, cw) = (&self.kw2, &self.cw2);
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = IV.map(splat);
        round!(digest_word_varies, kw, cw, w, 0, a, b, c, d, e, f, g, h);
        round!(digest_word_varies, kw, cw, w, 1, h, a, b, c, d, e, f, g);
        round!(digest_word_varies, kw, cw, w, 2, g, h, a, b, c, d, e, f);
        round!(digest_word_varies, kw, cw, w, 3, f, g, h, a, b, c, d, e);
        round!(digest_word_varies, kw, cw, w, 4, e, f, g, h, a, b, c, d);
        round!(digest_word_varies, kw, cw, w, 5, d, e, f, g, h, a, b, c);
        round!(digest_word_varies, kw, cw, w, 6, c, d, e, f, g, h, a, b);
        round!(digest_word_varies, kw, cw, w, 7, b, c, d, e, f, g, h, a);
        rounds8!(digest_word_varies, kw, cw, w, 8, a, b, c, d, e, f, g, h);
        rounds8!(digest_word_varies, kw, cw, w, 16, a, b, c, d, e, f, g, h);
        rounds8!(digest_word_varies, kw, cw, w, 24, a, b, c, d, e, f, g, h);
        rounds8!(digest_word_varies, kw, cw, w, 32, a, b, c, d, e, f, g, h);
        rounds8!(digest_word_varies, kw, cw, w, 40, a, b, c, d, e, f, g, h);
        rounds8!(digest_word_varies, kw, cw, w, 48, a, b, c, d, e, f, g, h);
        rounds8!(digest_word_varies, kw, cw, w, 56, a, b, c, d, e, f, g, h);
        [a, b, c, d, e, f, g, h]
    }

    /// The most significant word of the SHA-256d hash, lane `i` for nonce `nonce + i`.
    #[inline(always)]
    pub fn hash4_top(&self, nonce: u64) -> v128 {
        add(self.rounds(nonce)[0], splat(IV[0]))
    }

    /// The final SHA-256d state words (lane `i`: nonce `nonce + i`, wrapping); word 0 is the
    /// hash's most significant 32 bits.
    #[inline(always)]
    pub fn hash4_words(&self, nonce: u64) -> [v128; 8] {
        let s = self.rounds(nonce);
        core::array::from_fn(|i| add(s[i], splat(IV[i])))
    }

    /// The SHA-256d hashes (big-endian bytes, as `Hash256`) of the header at nonces
    /// `nonce..nonce + 4` (wrapping).
    pub fn hash4(&self, nonce: u64) -> [[u8; 32]; 4] {
        let words = self.hash4_words(nonce);
        let mut out = [[0u8; 32]; 4];
        for (lane, hash) in out.iter_mut().enumerate() {
            for (chunk, v) in hash.chunks_exact_mut(4).zip(words) {
                chunk.copy_from_slice(&lane_of(v, lane).to_be_bytes());
            }
        }
        out
    }
}

fn lane_of(v: v128, lane: usize) -> u32 {
    match lane {
        0 => u32x4_extract_lane::<0>(v),
        1 => u32x4_extract_lane::<1>(v),
        2 => u32x4_extract_lane::<2>(v),
        _ => u32x4_extract_lane::<3>(v),
    }
}

/// [`tabcoin_core::miner::MinerJob`] on the 4-wide kernel: the same nonces in the same order,
/// the same first solution and the same hash count, for any chunking of `step`.
#[derive(Clone, Debug)]
pub struct SimdJob {
    header: BlockHeader,
    kernel: Kernel,
    /// The target as big-endian words (word 0 most significant).
    target: [u32; 8],
    next: u64,
    end: Option<u64>,
    done: bool,
    hashes: u64,
}

impl SimdJob {
    pub fn new(header: BlockHeader, range: NonceRange) -> Result<SimdJob, MinerError> {
        let target = header.bits.to_target().map_err(MinerError)?.to_be_bytes();
        let mut words = [0u32; 8];
        for (word, chunk) in words.iter_mut().zip(target.chunks_exact(4)) {
            *word = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        Ok(SimdJob {
            header,
            kernel: Kernel::new(&header),
            target: words,
            next: range.start,
            end: range.end,
            done: range.end == Some(range.start),
            hashes: 0,
        })
    }

    /// Hashes tried so far.
    pub fn hashes(&self) -> u64 {
        self.hashes
    }

    /// The next nonce to try.
    pub fn next_nonce(&self) -> u64 {
        self.next
    }

    /// Nonces left in the range from `next` (core's rule: up to `end`, or to the end of the
    /// nonce space if `end` is unset or not above `next`).
    fn remaining(&self) -> u128 {
        match self.end {
            Some(e) if e > self.next => u128::from(e - self.next),
            _ => (1u128 << 64) - u128::from(self.next),
        }
    }

    /// Marks `count` nonces from `next` as tried (`count` <= `remaining()`).
    fn advance(&mut self, count: u64, remaining: u128) {
        self.hashes += count;
        if u128::from(count) == remaining {
            // As core does, `next` stays on the last nonce tried.
            self.next = self.next.wrapping_add(count - 1);
            self.done = true;
        } else {
            self.next += count;
        }
    }

    /// Tries up to `max_nonces` nonces, four at a time.
    pub fn step(&mut self, max_nonces: u64) -> Step {
        let mut left = max_nonces;
        while left > 0 {
            if self.done {
                return Step::Exhausted;
            }
            let remaining = self.remaining();
            // 1..=4: a final partial group just ignores its extra lanes.
            let lanes = remaining.min(u128::from(left)).min(4) as u64;
            let nonce = self.next;
            // Quick test: most significant word <= target's (unsigned), any lane; the other
            // words are computed only for a group that passes it.
            let top = self.kernel.hash4_top(nonce);
            let maybe = u32x4_le(top, splat(self.target[0]));
            if v128_any_true(maybe) {
                let words = self.kernel.hash4_words(nonce);
                for lane in 0..lanes as usize {
                    if lane_of(maybe, lane) == 0 {
                        continue;
                    }
                    let hash: [u32; 8] = core::array::from_fn(|i| lane_of(words[i], lane));
                    if hash <= self.target {
                        self.advance(lane as u64 + 1, remaining);
                        let mut found = self.header;
                        found.nonce = nonce.wrapping_add(lane as u64);
                        return Step::Found(found);
                    }
                }
            }
            self.advance(lanes, remaining);
            left -= lanes;
        }
        if self.done {
            Step::Exhausted
        } else {
            Step::Continue
        }
    }
}
