//! The native miner's hashing kernel: SHA-256d of block headers with the x86-64 SHA
//! extensions (SHA-NI), several nonces at a time.
//!
//! [`FastJob`] has the semantics of core's [`MinerJob`]: a resumable search over a
//! [`NonceRange`], nonces tried in increasing order, [`FastJob::step`] returning the first
//! header that meets the target, [`FastJob::hashes`] counting the nonces tried (up to and
//! including a found one). Only the speed differs.
//!
//! Each nonce costs two SHA-256 compressions, as in core: the SHA-256 state after the
//! header's first 64 bytes (the midstate) is computed once per job; per nonce the kernel
//! compresses the header's padded 24-byte tail block and then the padded 32-byte digest.
//! The tail block's first four words (the end of the merkle root, the time, the bits) do not
//! depend on the nonce, so its first four rounds are done once per [`FastJob::step`] call.
//!
//! `SHA256RNDS2` does two rounds and has a latency of several cycles, and each pair of
//! rounds needs the result of the previous pair: one hash alone leaves the CPU's SHA unit
//! idle most of the time. The kernel therefore hashes [`LANES`] nonces in lockstep, as
//! independent streams whose instructions interleave, so one stream's rounds issue while
//! another's wait (see `docs/BENCHMARKS.md`, section `shani`, for the measurements behind
//! the width).
//!
//! The SHA extensions are detected at run time, and the kernel is compiled three times: for
//! SSE4.1 only, with AVX, and with AVX-512VL (see [`encoding`]); the best the CPU runs is
//! used. Without SHA-NI (or on other architectures) [`FastJob`] runs core's [`MinerJob`]
//! unchanged.
//!
//! Register layout used below (Intel's definition of `SHA256RNDS2`): with the working
//! variables `a..h` of FIPS 180-4 §6.2.2, one register holds `(a, b, e, f)` — `a` in the top
//! 32 bits, `f` in the bottom — and another `(c, d, g, h)`, `c` on top. `SHA256RNDS2` takes
//! both and, in the low 64 bits of a third, `W[t] + K[t]` and `W[t+1] + K[t+1]`, and returns
//! the new `(a, b, e, f)`; after those two rounds the old `(a, b, e, f)` is the new
//! `(c, d, g, h)`. Message words are kept four to a register, `W[t]` in the bottom lane.
//! `SHA256MSG1` and `SHA256MSG2` split the message schedule
//! `W[t] = σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16]` into its `σ0` and `σ1` halves.

#![allow(unsafe_code)]

use tabcoin_core::miner::{MinerError, MinerJob, NonceRange, Step};
use tabcoin_core::primitives::BlockHeader;

/// Nonces hashed together by the SHA-NI kernel.
pub const LANES: usize = 4;
const SHA_NI_NAME: &str = "sha-ni x4";
const _: () = assert!(SHA_NI_NAME.as_bytes()[8] == b'0' + LANES as u8);

/// Which code hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The SHA extensions, [`LANES`] nonces interleaved.
    ShaNi,
    /// Core's [`MinerJob`] (the `sha2` crate, one nonce at a time).
    Scalar,
}

impl Backend {
    /// The fastest backend this CPU supports.
    pub fn detect() -> Backend {
        #[cfg(target_arch = "x86_64")]
        if ni::available() {
            return Backend::ShaNi;
        }
        Backend::Scalar
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::ShaNi => SHA_NI_NAME,
            Backend::Scalar => "scalar",
        }
    }
}

/// The name of the backend [`FastJob::new`] uses on this machine: `"sha-ni x4"` or
/// `"scalar"`.
pub fn backend() -> &'static str {
    Backend::detect().name()
}

/// A resumable nonce search over one header, like core's [`MinerJob`], on the fastest
/// backend available.
#[derive(Clone, Debug)]
pub struct FastJob {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Scalar(MinerJob),
    #[cfg(target_arch = "x86_64")]
    ShaNi(ni::NiJob),
}

impl FastJob {
    /// A job on [`Backend::detect`]'s backend.
    pub fn new(header: BlockHeader, range: NonceRange) -> Result<FastJob, MinerError> {
        FastJob::with_backend(header, range, Backend::detect())
    }

    /// A job on `backend`, or on [`Backend::Scalar`] if this CPU cannot run it.
    pub fn with_backend(
        header: BlockHeader,
        range: NonceRange,
        backend: Backend,
    ) -> Result<FastJob, MinerError> {
        let inner = match backend {
            #[cfg(target_arch = "x86_64")]
            Backend::ShaNi => match ni::NiJob::new(header, range)? {
                Some(job) => Inner::ShaNi(job),
                None => Inner::Scalar(MinerJob::new(header, range)?),
            },
            _ => Inner::Scalar(MinerJob::new(header, range)?),
        };
        Ok(FastJob { inner })
    }

    /// The backend this job runs on.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Scalar(_) => Backend::Scalar,
            #[cfg(target_arch = "x86_64")]
            Inner::ShaNi(_) => Backend::ShaNi,
        }
    }

    /// Hashes tried so far.
    pub fn hashes(&self) -> u64 {
        match &self.inner {
            Inner::Scalar(j) => j.hashes(),
            #[cfg(target_arch = "x86_64")]
            Inner::ShaNi(j) => j.hashes,
        }
    }

    /// The next nonce to try.
    pub fn next_nonce(&self) -> u64 {
        match &self.inner {
            Inner::Scalar(j) => j.next_nonce(),
            #[cfg(target_arch = "x86_64")]
            Inner::ShaNi(j) => j.next,
        }
    }

    pub fn header(&self) -> &BlockHeader {
        match &self.inner {
            Inner::Scalar(j) => j.header(),
            #[cfg(target_arch = "x86_64")]
            Inner::ShaNi(j) => &j.header,
        }
    }

    /// Tries up to `max_nonces` nonces, in increasing order, and stops at the first header
    /// that meets the target. Same results as [`MinerJob::step`].
    pub fn step(&mut self, max_nonces: u64) -> Step {
        match &mut self.inner {
            Inner::Scalar(j) => j.step(max_nonces),
            #[cfg(target_arch = "x86_64")]
            Inner::ShaNi(j) => j.step(max_nonces),
        }
    }
}

/// The instruction encoding of the SHA-NI kernel on this CPU (`"avx-512vl"`, `"avx"` or
/// `"sse4.1"`: which instructions may surround the SHA ones), or `None` without SHA-NI.
pub fn encoding() -> Option<&'static str> {
    #[cfg(target_arch = "x86_64")]
    {
        ni::Encoding::detect().map(ni::Encoding::name)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        None
    }
}

/// The benchmark's ceiling: hashes the `batches × width` nonces from `start` with the SHA-NI
/// kernel `width` nonces at a time, with no target check and no bookkeeping, and returns the
/// XOR of the hashes' first words (so nothing is optimised away). `encoding` is one of the
/// names [`encoding`] returns, or `None` for this CPU's. `None` if the CPU cannot run that
/// encoding or `width` is not one of 1, 2, 3, 4, 6, 8.
#[doc(hidden)]
pub fn reference_loop(
    header: &BlockHeader,
    encoding: Option<&str>,
    width: usize,
    start: u64,
    batches: u64,
) -> Option<u32> {
    #[cfg(target_arch = "x86_64")]
    {
        let encoding = match encoding {
            None => ni::Encoding::detect()?,
            Some(name) => ni::Encoding::ALL.into_iter().find(|e| e.name() == name)?,
        };
        ni::reference_loop(header, encoding, width, start, batches)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (header, encoding, width, start, batches);
        None
    }
}

#[cfg(target_arch = "x86_64")]
mod ni;

#[cfg(test)]
mod tests;
