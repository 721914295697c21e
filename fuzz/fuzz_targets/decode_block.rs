#![no_main]
// libFuzzer entry point; the harness and its invariants are in src/ (`tabcoin_fuzz::decode_block`).
libfuzzer_sys::fuzz_target!(|data: &[u8]| tabcoin_fuzz::decode_block(data));
