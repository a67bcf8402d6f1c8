//! Parsing of single trace records.

use serde::Deserialize;

use kvbm::tokens::TokenBlockSequence;

use crate::rng::mix64;
use crate::trace::TraceOptions;
use crate::workload::{WorkloadBuilder, MAX_REQUEST_BLOCKS};

/// A trace file's record format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `timestamp`, `input_length`, `output_length`, `hash_ids`.
    Mooncake,
    /// `timestamp`, `tokens`, `output_length`.
    Tokens,
}

impl Format {
    /// The format's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Format::Mooncake => "mooncake",
            Format::Tokens => "tokens",
        }
    }
}

#[derive(Debug, Deserialize)]
struct MooncakeLine {
    timestamp: f64,
    input_length: u64,
    output_length: u64,
    hash_ids: Vec<u64>,
}

#[derive(Debug, Deserialize)]
struct TokensLine {
    timestamp: f64,
    tokens: Vec<u32>,
    output_length: u64,
}

/// One parsed trace record.
#[derive(Debug)]
pub enum Record {
    /// A Mooncake record.
    Mooncake {
        /// Arrival in ms.
        timestamp_ms: u64,
        /// Prompt tokens.
        input_length: u64,
        /// Generated tokens.
        output_length: u64,
        /// One id per trace block.
        hash_ids: Vec<u64>,
    },
    /// A token-level record.
    Tokens {
        /// Arrival in ms.
        timestamp_ms: u64,
        /// The prompt.
        tokens: Vec<u32>,
        /// Generated tokens.
        output_length: u64,
    },
}

/// The latest arrival a trace may name, in ms (about 31,700 years): the
/// serve timing model counts microseconds in a `u64` and needs headroom
/// above the last arrival for prefill and decode.
pub const MAX_TIMESTAMP_MS: f64 = 1e15;

fn timestamp(t: f64) -> Result<u64, String> {
    if (0.0..=MAX_TIMESTAMP_MS).contains(&t) {
        Ok(t as u64)
    } else {
        // `{:e}` keeps 1e300 short; NaN cannot come out of JSON.
        Err(format!(
            "`timestamp` must be between 0 and {MAX_TIMESTAMP_MS:e} ms (about 31,700 years), got {t:e}"
        ))
    }
}

/// Checks a Mooncake line's `input_length` against its `hash_ids`: `n` ids
/// of `unit` tokens cover more than `unit·(n−1)` and at most `unit·n` tokens.
fn check_input_length(input_length: u64, ids: usize, unit: u32) -> Result<(), String> {
    let n = ids as u64;
    let unit = u64::from(unit);
    if n == 0 {
        return Err("`hash_ids` is empty: a request needs at least one block".into());
    }
    let low = (n - 1).checked_mul(unit);
    let high = n.checked_mul(unit);
    match (low, high) {
        (Some(low), Some(high)) if low < input_length && input_length <= high => Ok(()),
        (Some(low), high) => Err(format!(
            "`input_length` {input_length} does not match {n} `hash_ids` of {unit} tokens: expected more than {low} and at most {}",
            high.map_or_else(|| "2^64".to_string(), |h| h.to_string())
        )),
        (None, _) => Err(format!("{n} `hash_ids` of {unit} tokens overflow a token count")),
    }
}

/// Parses one non-blank line. With `expected` set (the format of the file's
/// first record), the line must be of that format.
pub fn parse_line(text: &str, expected: Option<Format>) -> Result<Record, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "not a JSON object".to_string())?;
    let format = match expected {
        Some(f) => f,
        None if obj.contains_key("hash_ids") => Format::Mooncake,
        None if obj.contains_key("tokens") => Format::Tokens,
        None => {
            return Err(
                "unknown record format: expected Mooncake fields (timestamp, input_length, output_length, hash_ids) or token fields (timestamp, tokens, output_length)"
                    .into(),
            )
        }
    };
    match format {
        Format::Mooncake => {
            let l: MooncakeLine = serde_json::from_value(value)
                .map_err(|e| format!("invalid Mooncake record: {e}"))?;
            Ok(Record::Mooncake {
                timestamp_ms: timestamp(l.timestamp)?,
                input_length: l.input_length,
                output_length: l.output_length,
                hash_ids: l.hash_ids,
            })
        }
        Format::Tokens => {
            let l: TokensLine =
                serde_json::from_value(value).map_err(|e| format!("invalid token record: {e}"))?;
            Ok(Record::Tokens {
                timestamp_ms: timestamp(l.timestamp)?,
                tokens: l.tokens,
                output_length: l.output_length,
            })
        }
    }
}

impl Record {
    /// The record's format.
    pub fn format(&self) -> Format {
        match self {
            Record::Mooncake { .. } => Format::Mooncake,
            Record::Tokens { .. } => Format::Tokens,
        }
    }

    /// Hashes the record and adds it to `builder`.
    pub fn push_into(
        self,
        builder: &mut WorkloadBuilder,
        opts: &TraceOptions,
    ) -> Result<(), String> {
        match self {
            Record::Mooncake {
                timestamp_ms,
                input_length,
                output_length,
                hash_ids,
            } => {
                let tbt = opts.trace_block_tokens;
                let bs = opts.block_size;
                // The command line checks this up front; the check here keeps
                // the function safe on its own.
                if tbt == 0 || bs == 0 || tbt % bs != 0 {
                    return Err(format!(
                        "--block-size {bs} must divide --trace-block-tokens {tbt}"
                    ));
                }
                check_input_length(input_length, hash_ids.len(), tbt)?;
                let k = (tbt / bs) as u64;
                if k == 1 {
                    return builder.push_block_ids(
                        timestamp_ms,
                        input_length,
                        output_length,
                        &hash_ids,
                        None,
                    );
                }
                // Each trace block becomes k sub-blocks; the last trace block
                // keeps only the sub-blocks its tokens reach.
                let n = hash_ids.len() as u64;
                let reach = input_length.div_ceil(bs as u64);
                // n ≥ 1 and input_length ≤ tbt·n were checked, so this
                // is within ((n−1)·k, n·k].
                let count = reach.clamp(
                    (n - 1).saturating_mul(k).saturating_add(1),
                    n.saturating_mul(k),
                );
                if count > MAX_REQUEST_BLOCKS {
                    return Err(format!(
                        "the prompt spans {count} blocks of {bs} tokens; at most {MAX_REQUEST_BLOCKS} are supported"
                    ));
                }
                let ids: Vec<u64> = (0..count)
                    .map(|i| mix64(hash_ids[(i / k) as usize] ^ ((i % k) << 52) ^ 0x5b17))
                    .collect();
                builder.push_block_ids(timestamp_ms, input_length, output_length, &ids, None)
            }
            Record::Tokens {
                timestamp_ms,
                tokens,
                output_length,
            } => {
                let sequence = TokenBlockSequence::try_from_slice(&tokens, opts.block_size, None)
                    .map_err(|e| format!("cannot hash the tokens: {e}"))?;
                let chain = sequence
                    .blocks()
                    .iter()
                    .map(|b| b.positional_lineage_hash())
                    .collect();
                builder.push_hashes(
                    timestamp_ms,
                    tokens.len() as u64,
                    output_length,
                    chain,
                    None,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kvbm::tokens::{compute_block_hash_for_tokens, PositionalLineageHash};

    #[test]
    fn token_records_hash_like_a_manual_chain() {
        let tokens: Vec<u32> = (0..10).collect();
        let mut b = WorkloadBuilder::new(4);
        let opts = TraceOptions {
            block_size: 4,
            ..TraceOptions::default()
        };
        Record::Tokens {
            timestamp_ms: 0,
            tokens: tokens.clone(),
            output_length: 0,
        }
        .push_into(&mut b, &opts)
        .unwrap();
        let w = b.finish("t".into(), "tokens", 0);
        let root = PositionalLineageHash::root(compute_block_hash_for_tokens(&tokens[..4], 0));
        let second = root.extend(compute_block_hash_for_tokens(&tokens[4..8], 0));
        let got: Vec<_> = w.requests[0]
            .blocks
            .iter()
            .map(|&k| w.hashes[k as usize])
            .collect();
        assert_eq!(got, vec![root, second]);
    }

    #[test]
    fn format_detection_and_mismatch() {
        assert!(matches!(
            parse_line(
                r#"{"timestamp": 1, "tokens": [1], "output_length": 0}"#,
                None
            ),
            Ok(Record::Tokens { .. })
        ));
        let err = parse_line(
            r#"{"timestamp": 1, "tokens": [1], "output_length": 0}"#,
            Some(Format::Mooncake),
        )
        .unwrap_err();
        assert!(err.contains("missing field"), "{err}");
        assert!(parse_line("[1, 2]", None)
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(parse_line(r#"{"a": 1}"#, None)
            .unwrap_err()
            .contains("unknown record format"));
        let neg = parse_line(
            r#"{"timestamp": -5, "input_length": 1, "output_length": 0, "hash_ids": [1]}"#,
            None,
        )
        .unwrap_err();
        assert!(neg.contains("timestamp"), "{neg}");
        let big = parse_line(
            r#"{"timestamp": 0, "input_length": 1, "output_length": 0, "hash_ids": [-1]}"#,
            None,
        )
        .unwrap_err();
        assert!(big.contains("invalid Mooncake record"), "{big}");
    }
}
