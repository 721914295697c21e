//! `tabcoin-core`: every consensus rule of Tabcoin, with no IO, no clock and no randomness.
//!
//! Hosts (the relay and the browser node) feed it bytes, time and seeds; it answers with
//! decisions and [`store::ChangeSet`]s to persist. See `docs/CONSENSUS.md` for the rules.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod addrman;
pub mod chain;
pub mod dial;
pub mod encode;
pub mod hash;
pub mod mempool;
pub mod merkle;
pub mod miner;
pub mod node;
pub mod params;
pub mod pow;
pub mod primitives;
pub mod record;
pub mod sig;
#[cfg(any(test, feature = "test-utils"))]
pub mod sim;
pub mod store;
#[cfg(any(test, feature = "test-utils"))]
pub mod testkit;
pub mod units;
pub mod utxo;
pub mod validation;
pub mod wallet;
pub mod wire;
