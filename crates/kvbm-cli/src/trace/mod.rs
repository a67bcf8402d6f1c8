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
mod tests;
