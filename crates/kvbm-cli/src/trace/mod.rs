//! Trace files: reading, format detection and hashing into a [`Workload`].
//!
//! Two JSON-lines formats are read, detected per file from its first record:
//! - **Mooncake** (`timestamp` ms, `input_length`, `output_length`,
//!   `hash_ids`): each id stands for one block of `trace_block_tokens`
//!   tokens. A request's ids become a chain of lineage hashes — the root from
//!   the first id, each next id extending it — so equal id prefixes give
//!   equal hashes. With a `block_size` that divides `trace_block_tokens`, each
//!   id is split into that many derived sub-blocks.
//! - **tokens** (`timestamp` ms, `tokens` [u32…], `output_length`): the
//!   prompt is cut into blocks of `block_size` tokens and hashed with
//!   `kvbm::tokens` (a partial last block is not a block and never hits).
//!
//! Files starting with the gzip magic bytes are decompressed on the fly.
//! The path `-` reads standard input. A UTF-8 byte-order mark at the start
//! of a file is skipped. Blank lines are ignored. A malformed line is an error naming `file:line`,
//! or, with `skip_bad_lines`, is skipped and counted.

mod formats;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::{CliError, Result};
use crate::workload::{Workload, WorkloadBuilder};

pub use formats::{parse_line, Format, Record};

/// How to read trace files.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// Tokens per Mooncake `hash_ids` entry.
    pub trace_block_tokens: u32,
    /// Tokens per simulated KV block.
    pub block_size: u32,
    /// Skip and count malformed lines instead of failing.
    pub skip_bad_lines: bool,
    /// Give requests the keys of their generated blocks (serve timing needs
    /// them; instant timing does not, and then skips building them).
    pub output_blocks: bool,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            trace_block_tokens: 512,
            block_size: 512,
            skip_bad_lines: false,
            output_blocks: true,
        }
    }
}

/// The path that stands for standard input.
pub const STDIN: &str = "-";

/// Reads one or more trace files into a workload (requests merged by arrival).
pub fn load(paths: &[PathBuf], opts: &TraceOptions) -> Result<Workload> {
    if opts.block_size == 0 {
        return Err(CliError::InvalidArgument(
            "--block-size must be positive".into(),
        ));
    }
    let mut builder = WorkloadBuilder::new(opts.block_size).with_output_blocks(opts.output_blocks);
    let mut skipped = 0;
    let mut formats = Vec::new();
    for path in paths {
        let before = builder.len();
        let (format, s) = load_file(path, opts, &mut builder)?;
        skipped += s;
        if builder.len() == before {
            return Err(CliError::EmptyTrace(path.clone()));
        }
        if let Some(f) = format {
            if !formats.contains(&f.name()) {
                formats.push(f.name());
            }
        }
    }
    let source = paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    Ok(builder.finish(source, &formats.join(","), skipped))
}

/// Reads one trace stream (plain or gzip) into a workload; `name` is what
/// errors call it. The entry point of the fuzz targets.
pub fn load_reader(source: Box<dyn Read>, name: &Path, opts: &TraceOptions) -> Result<Workload> {
    if opts.block_size == 0 {
        return Err(CliError::InvalidArgument(
            "--block-size must be positive".into(),
        ));
    }
    let reader = decompressed(source).map_err(|source| CliError::Io {
        path: name.to_path_buf(),
        source,
    })?;
    let mut builder = WorkloadBuilder::new(opts.block_size).with_output_blocks(opts.output_blocks);
    let (format, skipped) = read_records(reader, name, opts, &mut builder)?;
    if builder.is_empty() {
        return Err(CliError::EmptyTrace(name.to_path_buf()));
    }
    let format = format.map_or("", Format::name);
    Ok(builder.finish(name.display().to_string(), format, skipped))
}

fn open(path: &Path) -> Result<Box<dyn BufRead>> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    let source: Box<dyn Read> = if path.as_os_str() == STDIN {
        Box::new(std::io::stdin())
    } else {
        Box::new(File::open(path).map_err(io)?)
    };
    decompressed(source).map_err(io)
}

/// Wraps a byte stream in a line reader, decompressing it when it starts
/// with the gzip magic bytes.
pub fn decompressed(source: Box<dyn Read>) -> std::io::Result<Box<dyn BufRead>> {
    let mut file = BufReader::with_capacity(1 << 16, source);
    let head = file.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let decoder = flate2::bufread::MultiGzDecoder::new(file);
        Ok(Box::new(BufReader::with_capacity(1 << 16, decoder)))
    } else {
        Ok(Box::new(file))
    }
}

fn load_file(
    path: &Path,
    opts: &TraceOptions,
    builder: &mut WorkloadBuilder,
) -> Result<(Option<Format>, u64)> {
    read_records(open(path)?, path, opts, builder)
}

/// Reads the records of one (already decompressed) stream into `builder`;
/// errors name `path` and the line. Returns the stream's format and the
/// number of skipped lines.
pub fn read_records(
    mut reader: Box<dyn BufRead>,
    path: &Path,
    opts: &TraceOptions,
    builder: &mut WorkloadBuilder,
) -> Result<(Option<Format>, u64)> {
    let mut format: Option<Format> = None;
    let mut skipped = 0u64;
    let mut bytes = Vec::new();
    let mut line_no = 0usize;
    loop {
        bytes.clear();
        let n = reader
            .read_until(b'\n', &mut bytes)
            .map_err(|source| CliError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let fail = |message: String| CliError::Parse {
            path: path.to_path_buf(),
            line: line_no,
            message,
        };
        let result = std::str::from_utf8(&bytes)
            .map_err(|e| format!("not UTF-8 text: {e}"))
            .and_then(|text| {
                // Editors on some systems start files with a byte-order mark.
                let text = if line_no == 1 {
                    text.strip_prefix('\u{feff}').unwrap_or(text)
                } else {
                    text
                };
                let text = text.trim();
                if text.is_empty() {
                    return Ok(None);
                }
                parse_line(text, format).map(Some)
            })
            .and_then(|record| match record {
                None => Ok(()),
                Some(record) => {
                    format.get_or_insert(record.format());
                    record.push_into(builder, opts)
                }
            });
        if let Err(message) = result {
            if opts.skip_bad_lines {
                skipped += 1;
            } else {
                return Err(fail(message));
            }
        }
    }
    Ok((format, skipped))
}

/// Reads a whole stream into memory (helper for tests of gzip input).
pub fn read_all(path: &Path) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    open(path)?
        .read_to_end(&mut out)
        .map_err(|source| CliError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
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
}
