//! The published aserti3-2d test vectors (tests/data/aserti3-2d, see its README) with their own
//! parameters: 600 s blocks, a two-day half-life and a limit of 0x1d00ffff.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;

use tabcoin_core::pow::{AsertAnchor, AsertParams, next_target};
use tabcoin_core::units::CompactTarget;

struct Row {
    line: usize,
    iteration: u64,
    height: u64,
    time: i64,
    bits: CompactTarget,
}

struct Run {
    anchor: AsertAnchor,
    start_height: u64,
    start_time: i64,
    iterations: usize,
    rows: Vec<Row>,
}

/// Parses a number, panicking with the file position (helpers are not `#[test]` functions, so
/// they avoid `unwrap` for clippy's sake and give better messages anyway).
fn num<T: std::str::FromStr>(at: &str, s: &str) -> T {
    s.parse()
        .unwrap_or_else(|_| panic!("{at}: not a number: {s:?}"))
}

fn parse_bits(at: &str, s: &str) -> CompactTarget {
    let hex = s
        .strip_prefix("0x")
        .unwrap_or_else(|| panic!("{at}: bits without 0x: {s}"));
    CompactTarget(u32::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("{at}: bad bits {s:?}")))
}

fn parse(name: &str, text: &str) -> Run {
    let mut anchor_height = None;
    let mut anchor_time = None;
    let mut anchor_bits = None;
    let mut start_height = None;
    let mut start_time = None;
    let mut iterations = None;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let at = format!("{name}:{line_no}");
        let at = at.as_str();
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(header) = line.strip_prefix("##") {
            let Some((key, value)) = header.split_once(':') else {
                panic!("{name}:{line_no}: header without ':'");
            };
            let value = value.trim();
            match key.trim() {
                "description" => {}
                "anchor height" => anchor_height = Some(num(at, value)),
                // run01–run10 say "ancestor", run11–run12 say "parent": the same field.
                "anchor ancestor time" | "anchor parent time" => anchor_time = Some(num(at, value)),
                "anchor nBits" => anchor_bits = Some(parse_bits(at, value)),
                "start height" => start_height = Some(num(at, value)),
                "start time" => start_time = Some(num(at, value)),
                "iterations" => iterations = Some(num(at, value)),
                other => panic!("{name}:{line_no}: unknown header {other:?}"),
            }
            continue;
        }
        if line.starts_with('#') {
            continue; // column names
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 4, "{name}:{line_no}: {line:?}");
        rows.push(Row {
            line: line_no,
            iteration: num(at, fields[0]),
            height: num(at, fields[1]),
            time: num(at, fields[2]),
            bits: parse_bits(at, fields[3]),
        });
    }
    Run {
        anchor: AsertAnchor {
            height: anchor_height.expect("anchor height"),
            parent_time: anchor_time.expect("anchor time"),
            bits: anchor_bits.expect("anchor nBits"),
        },
        start_height: start_height.expect("start height"),
        start_time: start_time.expect("start time"),
        iterations: iterations.expect("iterations"),
        rows,
    }
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/aserti3-2d")
}

fn params() -> AsertParams {
    AsertParams {
        target_block_time: 600,
        half_life: 2 * 24 * 3600,
        pow_limit: CompactTarget(0x1d00ffff)
            .to_target()
            .expect("0x1d00ffff is a valid target"),
    }
}

fn check_run(name: &str) -> usize {
    let path = data_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let run = parse(name, &text);
    assert_eq!(run.rows.len(), run.iterations, "{name}: row count");
    let first = &run.rows[0];
    assert_eq!(
        (first.height, first.time),
        (run.start_height, run.start_time),
        "{name}"
    );
    let params = params();
    let mut failures = Vec::new();
    for (i, row) in run.rows.iter().enumerate() {
        assert_eq!(
            row.iteration,
            i as u64 + 1,
            "{name}:{}: iteration",
            row.line
        );
        let got = next_target(&params, &run.anchor, row.height, row.time);
        if got != row.bits {
            failures.push(format!(
                "{name}:{} height {} time {}: expected {}, got {}",
                row.line, row.height, row.time, row.bits, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows differ, first ones:\n{}",
        failures.len(),
        run.rows.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    run.rows.len()
}

macro_rules! runs {
    ($($test:ident => $file:literal, $rows:literal;)*) => {
        $(
            #[test]
            fn $test() {
                assert_eq!(check_run($file), $rows);
            }
        )*

        /// Every file in the data directory is one of the runs tested above.
        #[test]
        fn all_run_files_are_tested() {
            let mut files: Vec<String> = std::fs::read_dir(data_dir())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .filter(|n| n.starts_with("run"))
                .collect();
            files.sort();
            let tested: Vec<&str> = vec![$($file),*];
            assert_eq!(files, tested);
        }
    };
}

runs! {
    run01_steady_at_limit => "run01", 10;
    run02_steady_arbitrary_target => "run02", 10;
    run03_steady_minimum_target => "run03", 10;
    run04_doubling_from_minimum => "run04", 225;
    run05_halving_from_limit => "run05", 225;
    run06_random_stable_hashrate => "run06", 1000;
    run07_random_rising_hashrate => "run07", 1000;
    run08_random_falling_hashrate => "run08", 500;
    run09_across_i32_max_height => "run09", 10;
    run10_across_i64_max_height => "run10", 10;
    run11_negative_solve_times => "run11", 1000;
    run12_each_block_one_second_earlier => "run12", 10000;
}

/// run01 checked by hand: anchor height 1, anchor parent time 0. The tip at height 2 and time
/// 1200 is exactly on schedule (time_delta 1200 = 600 * (height_delta 1 + 1)), so the exponent
/// is 0, the factor 2^16, and the next block keeps the anchor's bits.
#[test]
fn run01_first_row_by_hand() {
    let anchor = AsertAnchor {
        height: 1,
        parent_time: 0,
        bits: CompactTarget(0x1d00ffff),
    };
    assert_eq!(
        next_target(&params(), &anchor, 2, 1200),
        CompactTarget(0x1d00ffff)
    );
    // Had the rows meant "(height, time) of the new block", the tip would be at height 1 and
    // the chain 600 s behind schedule, raising the target (run02's anchor is below the limit,
    // so the rise shows): the vectors' unchanged bits rule that reading out.
    let run02_anchor = AsertAnchor {
        bits: CompactTarget(0x1a2b3c4d),
        ..anchor
    };
    assert_eq!(
        next_target(&params(), &run02_anchor, 2, 1200),
        CompactTarget(0x1a2b3c4d)
    );
    assert_ne!(
        next_target(&params(), &run02_anchor, 1, 1200),
        CompactTarget(0x1a2b3c4d)
    );
}

/// The exponent's division truncates toward zero. With floor division (Python's `//`) most
/// rows with a negative exponent would be off by one to three mantissa units; run09's first
/// row is one: exponent = -300 * 65536 / 172800 = -113.78, truncated to -113.
#[test]
fn run09_first_row_needs_truncating_division() {
    let anchor = AsertAnchor {
        height: 2_147_483_642,
        parent_time: 1_234_567_290,
        bits: CompactTarget(0x1802aee8),
    };
    assert_eq!(
        next_target(&params(), &anchor, 2_147_483_643, 1_234_568_190),
        CompactTarget(0x1802ae16)
    );
}

/// Issue 9, rule 2: the miner of block 1 must not choose the difficulty anchor. On a network
/// that really starts a day after its genesis timestamp, a block-1 miner stamps
/// `genesis_time + 1` (the earliest time the median-time rule allows), then everyone mines on
/// schedule from the real start. No block may come easier than the genesis target.
mod launch {
    use tabcoin_core::chain::Chain;
    use tabcoin_core::mempool::Mempool;
    use tabcoin_core::miner::build_template;
    use tabcoin_core::params::Params;
    use tabcoin_core::testkit::{seal, wallet};
    use tabcoin_core::units::CompactTarget;

    const DAY: u64 = 86_400;

    /// Main-network difficulty rules (30 s blocks, 600 s half-life) with targets cheap enough
    /// to mine in a test: genesis target ≈ 2^248 (about 256 hashes), limit ≈ 2^255. The
    /// network launches a day after its genesis timestamp.
    fn params() -> Params {
        let test = Params::test();
        Params {
            half_life: 600,
            genesis_bits: CompactTarget(0x2000_ffff),
            launch_time: test.genesis_time + DAY,
            ..test
        }
    }

    /// Mines a block on the tip stamped `time` and returns whether the chain took it.
    fn mine_at(chain: &mut Chain, time: u64) -> Result<(), String> {
        let key = wallet(1, chain.params()).public_key();
        let mut t = build_template(chain, &Mempool::new(usize::MAX, 0), key, time, b"");
        t.block.header.time = time;
        let block = seal(t.block);
        chain
            .accept_block(&block, time)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn stamping_block_one_early_buys_no_easy_blocks() {
        let params = params();
        let genesis_target = params.genesis_bits.to_target().unwrap();
        let launch = params.genesis_time + DAY;
        let mut chain = Chain::new(params.clone());
        // The attacker's block 1, as early as the median-time rule alone would allow: refused,
        // block 1 must come after the launch time.
        let early = mine_at(&mut chain, params.genesis_time + 1);
        assert!(early.unwrap_err().contains("median time past"));
        // The earliest block 1 allowed puts the chain ahead of schedule: harder, not easier.
        mine_at(&mut chain, launch + 1).unwrap();
        let next = params.next_bits(chain.height(), launch + 1);
        assert!(next.to_target().unwrap() < genesis_target);
        // Then honest mining on schedule from the real start.
        let first = chain.height().0 + 1;
        let mut easy = 0;
        for h in first..first + 200 {
            mine_at(&mut chain, launch + 30 * h).unwrap();
            let bits = chain.tip().header.bits;
            if bits.to_target().unwrap() > genesis_target {
                easy += 1;
            }
        }
        assert_eq!(easy, 0, "blocks easier than the genesis target");
    }
}
