//! Cache sizes as the user writes them: `12%` of the workload's unique
//! prompt blocks, a token count (`3000000`, `3M`, `512k`) or a block count
//! (`5859b`).

use crate::error::{CliError, Result};

/// A cache size before it is resolved against a workload.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CapacitySpec {
    /// A fraction of the unique prompt blocks.
    Fraction(f64),
    /// Tokens (rounded down to whole blocks).
    Tokens(u64),
    /// Blocks.
    Blocks(u64),
}

/// What every capacity flag accepts, for error messages.
pub const CAPACITY_FORMS: &str =
    "a percentage of the unique prompt blocks (`10%`), tokens (`3000000`, `3M`, `512k`) or blocks (`5859b`)";

/// Parses a token count: `3000000`, `512k`, `3M`, `1.5G`.
fn parse_tokens(t: &str) -> Option<u64> {
    let (num, mult) = match t.chars().last()? {
        'k' | 'K' => (&t[..t.len() - 1], 1e3),
        'M' | 'm' => (&t[..t.len() - 1], 1e6),
        'G' | 'g' => (&t[..t.len() - 1], 1e9),
        _ => return t.parse().ok(),
    };
    let v = num.trim().parse::<f64>().ok()? * mult;
    // `u64::MAX as f64` is 2^64, just past the largest u64.
    (v.is_finite() && v >= 0.0 && v < u64::MAX as f64).then(|| v.round() as u64)
}

impl CapacitySpec {
    /// Parses `N%`, `N`, `Nk`, `NM`, `NG` (tokens) or `Nb` (blocks).
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            CliError::InvalidArgument(format!("invalid capacity `{s}`: expected {CAPACITY_FORMS}"))
        };
        let t = s.trim();
        if let Some(p) = t.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !v.is_finite() || v <= 0.0 {
                return Err(bad());
            }
            return Ok(Self::Fraction(v / 100.0));
        }
        if let Some(b) = t.strip_suffix('b') {
            return Ok(Self::Blocks(b.trim().parse().map_err(|_| bad())?));
        }
        parse_tokens(t).map(Self::Tokens).ok_or_else(bad)
    }

    /// Parses the value of `--capacity-tokens`: a token count only, with an
    /// error that names the flag and its forms.
    pub fn parse_tokens(s: &str) -> Result<Self> {
        parse_tokens(s.trim()).map(Self::Tokens).ok_or_else(|| {
            CliError::InvalidArgument(format!(
                "--capacity-tokens `{s}`: expected a token count such as 3000000, 3M or 512k (`--capacity` also takes `10%` or `5859b`)"
            ))
        })
    }

    /// The size in blocks for a workload with `unique_blocks` distinct prompt
    /// blocks of `block_tokens` tokens. Zero is an error, and so is a size
    /// whose token count does not fit in 64 bits.
    pub fn blocks(self, unique_blocks: u64, block_tokens: u32) -> Result<u64> {
        let n = match self {
            Self::Fraction(f) => {
                let n = (f * unique_blocks as f64).round();
                if !(n.is_finite() && n < u64::MAX as f64) {
                    return Err(CliError::InvalidArgument(format!(
                        "cache capacity {self} is too large"
                    )));
                }
                n as u64
            }
            Self::Tokens(t) => t / u64::from(block_tokens.max(1)),
            Self::Blocks(b) => b,
        };
        if n == 0 {
            return Err(CliError::InvalidArgument(match self {
                Self::Blocks(_) => "cache capacity must be at least one block".to_string(),
                _ => format!(
                    "cache capacity {self} rounds to zero blocks of {block_tokens} tokens; it must be at least one block"
                ),
            }));
        }
        capacity_tokens(n, block_tokens)?;
        Ok(n)
    }
}

/// `blocks × block_tokens`, or an error when that overflows a `u64`.
pub fn capacity_tokens(blocks: u64, block_tokens: u32) -> Result<u64> {
    blocks.checked_mul(u64::from(block_tokens)).ok_or_else(|| {
        CliError::InvalidArgument(format!(
            "cache capacity {blocks} blocks of {block_tokens} tokens is more than 2^64 tokens"
        ))
    })
}

impl std::fmt::Display for CapacitySpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fraction(x) => write!(f, "{}%", x * 100.0),
            Self::Tokens(t) => write!(f, "{t} tokens"),
            Self::Blocks(b) => write!(f, "{b} blocks"),
        }
    }
}

/// `points` block counts spaced evenly on a log scale from `from` to `to`
/// (inclusive, deduplicated, ascending).
pub fn log_spaced(from: u64, to: u64, points: usize) -> Vec<u64> {
    let (lo, hi) = (from.min(to).max(1), from.max(to).max(1));
    if points <= 1 || lo == hi {
        return vec![lo];
    }
    let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
    let mut out: Vec<u64> = (0..points)
        .map(|i| (a + (b - a) * i as f64 / (points - 1) as f64).exp().round() as u64)
        .map(|x| x.clamp(lo, hi))
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests;
