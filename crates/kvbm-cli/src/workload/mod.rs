//! Workloads: the request streams the simulator replays.
//!
//! A [`Workload`] is a list of [`Request`]s sorted by arrival. Each request
//! carries its prompt as a chain of block keys (its lineage hashes, interned
//! into dense `u32` ids so the simulator can index arrays by block) and the
//! keys of the full blocks its generated output will fill. Equal prompt
//! prefixes give equal key prefixes, which is all prefix caching needs.
//!
//! Workloads come from a trace file ([`crate::trace`]) or from the built-in
//! generator ([`generator`]).

pub mod generator;

use std::collections::HashMap;

use kvbm::tokens::PositionalLineageHash;
use kvbm::SequenceHash;
use serde::Serialize;

use crate::rng::mix64;

/// Dense id of a distinct block (lineage hash) in a workload.
pub type BlockKey = u32;

/// The most blocks one request may span, prompt and generated output
/// together: 2^20 (half a billion tokens at 512 tokens per block). Trace
/// lines asking for more are rejected before anything is allocated for them.
pub const MAX_REQUEST_BLOCKS: u64 = 1 << 20;

/// One inference request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Arrival time in milliseconds since the start of the trace.
    pub arrival_ms: u64,
    /// Prompt length in tokens.
    pub input_tokens: u64,
    /// Number of tokens generated.
    pub output_tokens: u64,
    /// The prompt's blocks, root first.
    pub blocks: Vec<BlockKey>,
    /// Tokens in the last prompt block (a trace's last block may be partial).
    pub last_block_tokens: u32,
    /// The full blocks the generated output fills, continuing the prompt's chain.
    pub output_blocks: Vec<BlockKey>,
}

impl Request {
    /// Tokens covered by the first `hits` prompt blocks.
    pub fn tokens_in_prefix(&self, hits: usize, block_tokens: u32) -> u64 {
        if hits == 0 {
            0
        } else if hits >= self.blocks.len() {
            // Saturating: a hand-built request could hold anything.
            (self.blocks.len() as u64 - 1)
                .saturating_mul(u64::from(block_tokens))
                .saturating_add(u64::from(self.last_block_tokens))
        } else {
            (hits as u64).saturating_mul(u64::from(block_tokens))
        }
    }
}

/// A request stream plus the table of its distinct blocks.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Where the workload came from (a path or `generator(seed=…)`).
    pub source: String,
    /// `mooncake`, `tokens` or `generated`.
    pub format: String,
    /// Tokens per block.
    pub block_tokens: u32,
    /// Requests sorted by arrival time.
    pub requests: Vec<Request>,
    /// `hashes[key]` is the lineage hash of block `key`.
    pub hashes: Vec<SequenceHash>,
    /// Lines skipped by `--skip-bad-lines`.
    pub skipped_lines: u64,
}

/// Figures that describe a workload, printed in reports.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WorkloadSummary {
    /// Where the workload came from.
    pub source: String,
    /// `mooncake`, `tokens` or `generated`.
    pub format: String,
    /// Number of requests.
    pub requests: usize,
    /// Prompt blocks over all requests (block lookups).
    pub prompt_blocks: u64,
    /// Distinct prompt blocks.
    pub unique_blocks: u64,
    /// Prompt tokens over all requests.
    pub input_tokens: u64,
    /// Generated tokens over all requests.
    pub output_tokens: u64,
    /// Time from the first to the last arrival, in seconds.
    pub duration_s: f64,
    /// Largest prompt, in blocks.
    pub max_request_blocks: usize,
    /// Lines skipped by `--skip-bad-lines`.
    pub skipped_lines: u64,
    /// Fraction of prompt blocks an unbounded prefix cache hits: the ceiling
    /// of every policy.
    pub max_prefix_ratio: f64,
}

impl Workload {
    /// Number of distinct blocks (prompt and output).
    pub fn key_count(&self) -> usize {
        self.hashes.len()
    }

    /// Total prompt blocks over all requests.
    pub fn prompt_blocks(&self) -> u64 {
        self.requests.iter().map(|r| r.blocks.len() as u64).sum()
    }

    /// Distinct prompt blocks.
    pub fn unique_prompt_blocks(&self) -> u64 {
        let mut seen = vec![false; self.hashes.len()];
        let mut n = 0;
        for r in &self.requests {
            for &b in &r.blocks {
                if !seen[b as usize] {
                    seen[b as usize] = true;
                    n += 1;
                }
            }
        }
        n
    }

    /// Prompt hits of an unbounded prefix cache: each request hits the longest
    /// prefix some earlier request already had.
    pub fn unbounded_hits(&self) -> u64 {
        let mut seen = vec![false; self.hashes.len()];
        let mut hits = 0;
        for r in &self.requests {
            hits += r.blocks.iter().take_while(|&&b| seen[b as usize]).count() as u64;
            for &b in &r.blocks {
                seen[b as usize] = true;
            }
        }
        hits
    }

    /// The workload's summary figures.
    pub fn summary(&self) -> WorkloadSummary {
        let prompt_blocks = self.prompt_blocks();
        let first = self.requests.first().map_or(0, |r| r.arrival_ms);
        let last = self.requests.last().map_or(0, |r| r.arrival_ms);
        WorkloadSummary {
            source: self.source.clone(),
            format: self.format.clone(),
            requests: self.requests.len(),
            prompt_blocks,
            unique_blocks: self.unique_prompt_blocks(),
            input_tokens: self.requests.iter().map(|r| r.input_tokens).sum(),
            output_tokens: self.requests.iter().map(|r| r.output_tokens).sum(),
            duration_s: (last - first) as f64 / 1000.0,
            max_request_blocks: self
                .requests
                .iter()
                .map(|r| r.blocks.len())
                .max()
                .unwrap_or(0),
            skipped_lines: self.skipped_lines,
            max_prefix_ratio: ratio(self.unbounded_hits(), prompt_blocks),
        }
    }
}

/// `num / den`, 0 when `den` is 0.
pub fn ratio(num: u64, den: u64) -> f64 {
    if den == 0 {
        0.0
    } else {
        num as f64 / den as f64
    }
}

/// Builds a [`Workload`], interning lineage hashes into dense keys.
#[derive(Debug)]
pub struct WorkloadBuilder {
    block_tokens: u32,
    output_blocks: bool,
    keys: HashMap<SequenceHash, BlockKey>,
    hashes: Vec<SequenceHash>,
    requests: Vec<Request>,
}

impl WorkloadBuilder {
    /// An empty builder for blocks of `block_tokens` tokens.
    pub fn new(block_tokens: u32) -> Self {
        Self {
            block_tokens,
            output_blocks: true,
            keys: HashMap::new(),
            hashes: Vec::new(),
            requests: Vec::new(),
        }
    }

    /// Whether requests get the keys of the blocks their output fills.
    /// Only serve timing uses them; without them a huge `output_length`
    /// costs nothing (it is still bounded by [`MAX_REQUEST_BLOCKS`]).
    pub fn with_output_blocks(mut self, output_blocks: bool) -> Self {
        self.output_blocks = output_blocks;
        self
    }

    /// Requests added so far.
    pub fn len(&self) -> usize {
        self.requests.len()
    }

    /// Whether no request was added.
    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    fn key(&mut self, hash: SequenceHash) -> BlockKey {
        let next = self.hashes.len() as BlockKey;
        *self.keys.entry(hash).or_insert_with(|| {
            self.hashes.push(hash);
            next
        })
    }

    /// Adds a request whose prompt blocks have the given block hashes (as a
    /// Mooncake trace's `hash_ids`): the first is the chain's root, each next
    /// one extends it. `output_ids` are the block hashes of the generated
    /// full blocks; `None` derives unique ones from the request's index.
    pub fn push_block_ids(
        &mut self,
        arrival_ms: u64,
        input_tokens: u64,
        output_tokens: u64,
        ids: &[u64],
        output_ids: Option<&[u64]>,
    ) -> Result<(), String> {
        let mut chain = Vec::with_capacity(ids.len());
        let mut last: Option<PositionalLineageHash> = None;
        for &id in ids {
            let next = match last {
                None => PositionalLineageHash::root(id),
                Some(parent) => parent.try_extend(id).map_err(|e| e.to_string())?,
            };
            chain.push(next);
            last = Some(next);
        }
        self.push_hashes(arrival_ms, input_tokens, output_tokens, chain, output_ids)
    }

    /// Adds a request whose prompt blocks have the given lineage hashes.
    pub fn push_hashes(
        &mut self,
        arrival_ms: u64,
        input_tokens: u64,
        output_tokens: u64,
        chain: Vec<SequenceHash>,
        output_ids: Option<&[u64]>,
    ) -> Result<(), String> {
        let b = u64::from(self.block_tokens.max(1));
        let n = chain.len() as u64;
        let out_count = match output_ids {
            Some(ids) => ids.len() as u64,
            None => output_tokens / b,
        };
        // Checked before anything proportional to the request is allocated.
        let span = n.saturating_add(out_count);
        if span > MAX_REQUEST_BLOCKS {
            return Err(format!(
                "the request spans {span} blocks of {b} tokens (prompt + output); at most {MAX_REQUEST_BLOCKS} are supported"
            ));
        }
        let last_block_tokens = if n == 0 {
            0
        } else {
            input_tokens.saturating_sub((n - 1) * b).clamp(1, b) as u32
        };
        let synthetic;
        let out_ids: &[u64] = match output_ids {
            _ if !self.output_blocks => &[],
            Some(ids) => ids,
            None => {
                // Generated blocks are new content: unique per request.
                let count = out_count;
                let index = self.requests.len() as u64;
                synthetic = (0..count)
                    .map(|k| mix64(0x6f75_7470_7574 ^ (index << 20) ^ k) | 1 << 63)
                    .collect::<Vec<_>>();
                &synthetic
            }
        };
        let mut output_chain = Vec::with_capacity(out_ids.len());
        let mut last = chain.last().copied();
        for &id in out_ids {
            let next = match last {
                None => PositionalLineageHash::root(id),
                Some(parent) => parent.try_extend(id).map_err(|e| e.to_string())?,
            };
            output_chain.push(next);
            last = Some(next);
        }
        let blocks = chain.into_iter().map(|h| self.key(h)).collect();
        let output_blocks = output_chain.into_iter().map(|h| self.key(h)).collect();
        self.requests.push(Request {
            arrival_ms,
            input_tokens,
            output_tokens,
            blocks,
            last_block_tokens,
            output_blocks,
        });
        Ok(())
    }

    /// The finished workload, requests sorted (stably) by arrival.
    pub fn finish(mut self, source: String, format: &str, skipped_lines: u64) -> Workload {
        self.requests.sort_by_key(|r| r.arrival_ms);
        Workload {
            source,
            format: format.to_string(),
            block_tokens: self.block_tokens,
            requests: self.requests,
            hashes: self.hashes,
            skipped_lines,
        }
    }
}

#[cfg(test)]
mod tests;
