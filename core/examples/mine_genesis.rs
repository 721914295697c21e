//! Finds the genesis nonce of each network (the constants in `params.rs`) and prints it.
//! Run: `cargo run --release -p tabcoin-core --example mine_genesis`

use tabcoin_core::miner::{MinerJob, NonceRange, Step};
use tabcoin_core::params::Params;

fn main() {
    for params in [Params::main(), Params::test()] {
        let mut header = params.genesis_block().header;
        header.nonce = 0;
        let start = std::time::Instant::now();
        let mut job = MinerJob::new(header, NonceRange::ALL).expect("genesis bits are valid");
        let found = loop {
            match job.step(1 << 20) {
                Step::Found(h) => break h,
                Step::Continue => {}
                Step::Exhausted => panic!("no nonce in the whole range"),
            }
        };
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{}: nonce {} hash {} ({} hashes, {:.1} s, {:.1} MH/s)",
            params.name,
            found.nonce,
            found.hash(),
            job.hashes(),
            secs,
            job.hashes() as f64 / secs / 1e6
        );
    }
}
