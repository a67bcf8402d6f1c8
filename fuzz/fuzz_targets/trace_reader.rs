//! Trace files: any bytes, plain or gzip-compressed, in either format, under
//! any block split; a workload or an error, never a panic or an abort.
#![no_main]

use std::io::Write;
use std::path::Path;

use kvbm_cli::trace::{load_reader, TraceOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the options; the rest is the file.
    let Some((&knobs, text)) = data.split_first() else {
        return;
    };
    let opts = TraceOptions {
        trace_block_tokens: 512,
        block_size: 512 >> (knobs & 3),
        skip_bad_lines: knobs & 4 != 0,
        output_blocks: knobs & 8 != 0,
    };
    let bytes = if knobs & 16 != 0 {
        // A valid gzip stream around the text, so the decoder's output is
        // fuzzed too and not only its header check.
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(text).expect("in memory");
        gz.finish().expect("in memory")
    } else {
        text.to_vec()
    };
    let _ = load_reader(
        Box::new(std::io::Cursor::new(bytes)),
        Path::new("fuzz"),
        &opts,
    );
});
