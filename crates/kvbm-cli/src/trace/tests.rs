use super::*;
use std::io::Write;

fn opts() -> TraceOptions {
    TraceOptions::default()
}

fn tmp(name: &str, content: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("kvbm-cli-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

const MOONCAKE: &str = "{\"timestamp\": 0, \"input_length\": 1000, \"output_length\": 5, \"hash_ids\": [0, 1]}\n\n{\"timestamp\": 10, \"input_length\": 1500, \"output_length\": 5, \"hash_ids\": [0, 1, 2]}\n";

#[test]
fn reads_mooncake_and_gzip_alike() {
    let plain = tmp("m.jsonl", MOONCAKE.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(MOONCAKE.as_bytes()).unwrap();
    let zipped = tmp("m.jsonl.gz", &gz.finish().unwrap());
    let a = load(&[plain], &opts()).unwrap();
    let b = load(std::slice::from_ref(&zipped), &opts()).unwrap();
    assert_eq!(a.requests, b.requests);
    assert_eq!(a.format, "mooncake");
    assert_eq!(a.requests.len(), 2);
    assert_eq!(a.unbounded_hits(), 2);
    assert_eq!(read_all(&zipped).unwrap(), MOONCAKE.as_bytes());
}

#[test]
fn bad_line_names_file_and_line() {
    let p = tmp(
        "bad.jsonl",
        format!("{MOONCAKE}{{\"timestamp\": 1, \"input_length\": 3}}\n").as_bytes(),
    );
    let err = load(std::slice::from_ref(&p), &opts())
        .unwrap_err()
        .to_string();
    assert!(err.contains("bad.jsonl:4:"), "{err}");
    assert!(err.contains("missing field `output_length`"), "{err}");
    let skipping = TraceOptions {
        skip_bad_lines: true,
        ..opts()
    };
    let w = load(&[p], &skipping).unwrap();
    assert_eq!(w.skipped_lines, 1);
    assert_eq!(w.requests.len(), 2);
}

#[test]
fn garbage_and_empty_files_are_errors() {
    let p = tmp("garbage.jsonl", b"\xff\xfe not json\n");
    let err = load(&[p], &opts()).unwrap_err().to_string();
    assert!(err.contains("garbage.jsonl:1:"), "{err}");
    let e = tmp("empty.jsonl", b"\n\n");
    assert!(matches!(load(&[e], &opts()), Err(CliError::EmptyTrace(_))));
    let missing = load(&[PathBuf::from("/nonexistent/x.jsonl")], &opts());
    assert!(matches!(missing, Err(CliError::Io { .. })));
}

#[test]
fn token_traces_hash_full_blocks() {
    let p = tmp(
            "tok.jsonl",
            b"{\"timestamp\": 0, \"tokens\": [1,2,3,4,5,6,7,8,9], \"output_length\": 2}\n{\"timestamp\": 1, \"tokens\": [1,2,3,4,5,6,7,8], \"output_length\": 2}\n",
        );
    let o = TraceOptions {
        block_size: 4,
        ..opts()
    };
    let w = load(&[p], &o).unwrap();
    assert_eq!(w.format, "tokens");
    assert_eq!(w.requests[0].blocks.len(), 2);
    assert_eq!(w.requests[0].blocks, w.requests[1].blocks);
    assert_eq!(w.requests[0].input_tokens, 9);
}

/// Lines that look like trace records, mangled: the reader must answer
/// every one with a workload or an error, never a panic or an abort.
fn near_records() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let number = prop_oneof![
        Just("0".to_string()),
        Just("-1".to_string()),
        Just("1e300".to_string()),
        Just("18446744073709551615".to_string()),
        Just("1.5".to_string()),
        (0u64..5000).prop_map(|n| n.to_string()),
    ];
    let ids = proptest::collection::vec(0u64..4, 0..6).prop_map(|v| format!("{v:?}"));
    let line = (number.clone(), number.clone(), number, ids, any::<bool>()).prop_map(
            |(ts, input, output, ids, tokens)| {
                if tokens {
                    format!(r#"{{"timestamp": {ts}, "tokens": {ids}, "output_length": {output}}}"#)
                } else {
                    format!(
                        r#"{{"timestamp": {ts}, "input_length": {input}, "output_length": {output}, "hash_ids": {ids}}}"#
                    )
                }
            },
        );
    (proptest::collection::vec(line, 1..6), any::<u64>()).prop_map(|(lines, cut)| {
        let mut text = lines.join("\n").into_bytes();
        // Sometimes cut the text short, mid-record.
        if cut % 3 == 0 && !text.is_empty() {
            text.truncate((cut as usize) % text.len());
        }
        text
    })
}

fn gzipped(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_give_a_workload_or_an_error(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
        gzip in proptest::prelude::any::<bool>(),
        split in 0u32..3,
        skip in proptest::prelude::any::<bool>(),
        output_blocks in proptest::prelude::any::<bool>(),
    ) {
        let input = if gzip { gzipped(&bytes) } else { bytes };
        let opts = TraceOptions {
            trace_block_tokens: 512,
            block_size: 512 >> split,
            skip_bad_lines: skip,
            output_blocks,
        };
        let _ = load_reader(Box::new(std::io::Cursor::new(input)), Path::new("fuzz"), &opts);
    }

    #[test]
    fn mangled_records_give_a_workload_or_an_error(
        text in near_records(),
        gzip in proptest::prelude::any::<bool>(),
        skip in proptest::prelude::any::<bool>(),
    ) {
        let input = if gzip { gzipped(&text) } else { text };
        let opts = TraceOptions {
            trace_block_tokens: 512,
            block_size: 256,
            skip_bad_lines: skip,
            output_blocks: true,
        };
        if let Ok(w) = load_reader(Box::new(std::io::Cursor::new(input)), Path::new("fuzz"), &opts) {
            // Whatever was accepted is consistent.
            proptest::prop_assert!(!w.requests.is_empty());
            for r in &w.requests {
                proptest::prop_assert!(r.blocks.len() as u64 <= crate::workload::MAX_REQUEST_BLOCKS);
                proptest::prop_assert!(r.tokens_in_prefix(r.blocks.len(), 256) <= r.input_tokens);
            }
        }
    }
}

#[test]
fn split_trace_blocks() {
    let p = tmp("split.jsonl", MOONCAKE.as_bytes());
    let o = TraceOptions {
        block_size: 256,
        ..opts()
    };
    let w = load(std::slice::from_ref(&p), &o).unwrap();
    assert_eq!(w.requests[0].blocks.len(), 4);
    assert_eq!(w.requests[1].blocks.len(), 6);
    assert_eq!(w.requests[1].blocks[..4], w.requests[0].blocks[..]);
    let bad = TraceOptions {
        block_size: 384,
        ..opts()
    };
    assert!(load(&[p], &bad).is_err());
}
