//! Replays every committed corpus file through its harness without libFuzzer (stable
//! `cargo test`): the seeds and every input a fuzzing run saved must pass the invariants.

use std::fs;
use std::path::Path;

use tabcoin_fuzz::TARGETS;

fn run(target: &str, data: &[u8]) {
    match target {
        "decode_header" => tabcoin_fuzz::decode_header(data),
        "decode_tx" => tabcoin_fuzz::decode_tx(data),
        "decode_block" => tabcoin_fuzz::decode_block(data),
        "decode_message" => tabcoin_fuzz::decode_message(data),
        "decode_changeset" => tabcoin_fuzz::decode_changeset(data),
        "decode_node_records" => tabcoin_fuzz::decode_node_records(data),
        "validate_block" => tabcoin_fuzz::validate_block(data),
        "validate_tx" => tabcoin_fuzz::validate_tx(data),
        "node_stream" => tabcoin_fuzz::node_stream(data),
        other => panic!("no harness for target {other}"),
    }
}

#[test]
fn every_target_has_a_corpus_and_passes_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for target in TARGETS {
        let dir = root.join(target);
        let mut files: Vec<_> = fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no corpus for {target}");
        for file in files {
            let data = fs::read(&file).expect("read corpus file");
            run(target, &data);
        }
    }
}
