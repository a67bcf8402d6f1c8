//! Capacity flags: any text parses to a size or an error, and a size
//! resolves to a block count whose token count fits, or an error.
#![no_main]

use kvbm_cli::capacity::{capacity_tokens, log_spaced, CapacitySpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 12 {
        return;
    }
    let unique = u64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
    let block_tokens = 1u32 << (data[8] % 11);
    let points = usize::from(u16::from_le_bytes([data[9], data[10]]) % 1001);
    let Ok(text) = std::str::from_utf8(&data[11..]) else {
        return;
    };
    for spec in [CapacitySpec::parse(text), CapacitySpec::parse_tokens(text)]
        .into_iter()
        .flatten()
    {
        if let Ok(blocks) = spec.blocks(unique, block_tokens) {
            assert!(blocks >= 1);
            assert!(capacity_tokens(blocks, block_tokens).is_ok());
            let spaced = log_spaced(1, blocks, points);
            assert!(spaced.iter().all(|&b| (1..=blocks).contains(&b)));
        }
    }
});
