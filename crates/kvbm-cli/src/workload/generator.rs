//! The built-in, seeded workload generator.
//!
//! # Model
//! Work arrives as a Poisson process (`rate` arrivals per second). Each
//! arrival is, with weights `mix = (chat, agent, document)`:
//! - **a chat session**: a system prompt (one of `system_prompts`, each 2–8
//!   blocks, picked with Zipf-like popularity 1/rank), then a number of turns
//!   (geometric, mean 4, at most 16). Turn *k*'s prompt is the whole history —
//!   system prompt, every earlier user message and every earlier answer's full
//!   blocks — plus a new user message of 1–3 blocks; it generates 64–1024
//!   tokens. Turns are separated by an exponential think time (mean 30 s).
//!   Sessions therefore grow turn by turn and share their system prompts.
//! - **an agent/tool call**: one of `tool_prompts` long shared prompts (16–40
//!   blocks, Zipf-like popularity) followed by 1–4 blocks of call-specific
//!   context; generates 16–256 tokens.
//! - **a one-off document**: 16–64 blocks that no other request shares;
//!   generates 128–512 tokens.
//!
//! Every block is a whole block of the configured size. A chat answer's full
//! blocks get the ids its next turn's prompt repeats, so under `--timing
//! serve` (which registers generated blocks) the next turn can hit them; under
//! `--timing instant` (prompts only) they are first seen as misses.
//!
//! The first `requests` arrivals are kept. Equal seeds give equal workloads.

use crate::rng::Rng;
use crate::workload::{Workload, WorkloadBuilder};

/// Size and shape of a generated workload.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratorConfig {
    /// Number of requests to produce.
    pub requests: usize,
    /// Seed of the random stream.
    pub seed: u64,
    /// New sessions / calls / documents per second (Poisson).
    pub rate: f64,
    /// Relative weights of chat sessions, agent calls and documents.
    pub mix: [f64; 3],
    /// Number of distinct chat system prompts.
    pub system_prompts: usize,
    /// Number of distinct agent tool prompts.
    pub tool_prompts: usize,
    /// Tokens per block.
    pub block_tokens: u32,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            requests: 3000,
            seed: 42,
            rate: 2.0,
            mix: [0.6, 0.25, 0.15],
            system_prompts: 4,
            tool_prompts: 3,
            block_tokens: 512,
        }
    }
}

struct Pending {
    arrival_ms: u64,
    prompt: Vec<u64>,
    output_tokens: u64,
    output_ids: Vec<u64>,
}

struct State {
    rng: Rng,
    next_id: u64,
    block_tokens: u64,
}

impl State {
    fn fresh(&mut self, n: u64) -> Vec<u64> {
        let ids = (self.next_id..self.next_id + n).collect();
        self.next_id += n;
        ids
    }

    fn zipf(&mut self, n: usize) -> usize {
        let weights: Vec<f64> = (0..n).map(|i| 1.0 / (i + 1) as f64).collect();
        self.rng.weighted(&weights)
    }
}

/// Generates a workload.
pub fn generate(config: &GeneratorConfig) -> Workload {
    let mut st = State {
        rng: Rng::new(config.seed),
        next_id: 1,
        block_tokens: config.block_tokens as u64,
    };
    let system: Vec<Vec<u64>> = (0..config.system_prompts.max(1))
        .map(|_| {
            let n = st.rng.range(2, 8);
            st.fresh(n)
        })
        .collect();
    let tools: Vec<Vec<u64>> = (0..config.tool_prompts.max(1))
        .map(|_| {
            let n = st.rng.range(16, 40);
            st.fresh(n)
        })
        .collect();

    let rate = if config.rate > 0.0 { config.rate } else { 1.0 };
    let mut pending: Vec<Pending> = Vec::new();
    let mut now_s = 0.0f64;
    let target = config.requests;
    // Requests arriving before the latest start are final: later starts only
    // add later arrivals. Generate until enough of those exist.
    let mut starts = 0u64;
    while pending.len() < target || starts % 64 != 0 || !enough(&pending, now_s, target) {
        starts += 1;
        now_s += st.rng.exp(1.0 / rate);
        match st.rng.weighted(&config.mix) {
            0 => chat_session(&mut st, &system, now_s, &mut pending),
            1 => {
                let t = st.zipf(tools.len());
                let suffix_len = st.rng.range(1, 4);
                let mut prompt = tools[t].clone();
                prompt.extend(st.fresh(suffix_len));
                let out = st.rng.range(16, 256);
                push(&mut st, &mut pending, now_s, prompt, out);
            }
            _ => {
                let len = st.rng.range(16, 64);
                let prompt = st.fresh(len);
                let out = st.rng.range(128, 512);
                push(&mut st, &mut pending, now_s, prompt, out);
            }
        }
    }
    pending.sort_by_key(|p| p.arrival_ms);
    pending.truncate(target);

    let mut builder = WorkloadBuilder::new(config.block_tokens);
    for p in &pending {
        let input = p.prompt.len() as u64 * st.block_tokens;
        builder
            .push_block_ids(
                p.arrival_ms,
                input,
                p.output_tokens,
                &p.prompt,
                Some(&p.output_ids),
            )
            .expect("generated prompts stay far below the lineage position limit");
    }
    builder.finish(
        format!(
            "generator(seed={}, requests={}, rate={})",
            config.seed, config.requests, config.rate
        ),
        "generated",
        0,
    )
}

/// Whether `target` requests arrived by `now_s` (all of them final).
fn enough(pending: &[Pending], now_s: f64, target: usize) -> bool {
    let cutoff = (now_s * 1000.0) as u64;
    pending.iter().filter(|p| p.arrival_ms <= cutoff).count() >= target
}

fn push(st: &mut State, pending: &mut Vec<Pending>, at_s: f64, prompt: Vec<u64>, out: u64) {
    let output_ids = st.fresh(out / st.block_tokens);
    pending.push(Pending {
        arrival_ms: (at_s * 1000.0) as u64,
        prompt,
        output_tokens: out,
        output_ids,
    });
}

fn chat_session(st: &mut State, system: &[Vec<u64>], start_s: f64, pending: &mut Vec<Pending>) {
    let s = st.zipf(system.len());
    let mut history = system[s].clone();
    let turns = st.rng.geometric(4.0).min(16);
    let mut at = start_s;
    for _ in 0..turns {
        let user = st.rng.range(1, 3);
        history.extend(st.fresh(user));
        let out = st.rng.range(64, 1024);
        push(st, pending, at, history.clone(), out);
        let answer = pending
            .last()
            .map(|p| p.output_ids.clone())
            .unwrap_or_default();
        history.extend(answer);
        at += st.rng.exp(30.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(seed: u64) -> Workload {
        generate(&GeneratorConfig {
            requests: 400,
            seed,
            ..GeneratorConfig::default()
        })
    }

    #[test]
    fn deterministic_per_seed() {
        assert_eq!(small(1).requests, small(1).requests);
        assert_ne!(small(1).requests, small(2).requests);
    }

    #[test]
    fn size_order_and_sharing() {
        let w = small(5);
        assert_eq!(w.requests.len(), 400);
        assert!(w
            .requests
            .windows(2)
            .all(|p| p[0].arrival_ms <= p[1].arrival_ms));
        let s = w.summary();
        // Shared system/tool prompts and growing sessions give real reuse,
        // one-off documents keep it well below 1.
        assert!(
            s.max_prefix_ratio > 0.3 && s.max_prefix_ratio < 0.95,
            "{s:?}"
        );
        assert_eq!(s.input_tokens, s.prompt_blocks * 512);
    }

    #[test]
    fn chat_turns_extend_previous_turn_with_its_answer() {
        let w = small(9);
        // Some request's prompt starts with another's prompt + output blocks.
        let found = w.requests.iter().any(|a| {
            !a.output_blocks.is_empty()
                && w.requests.iter().any(|b| {
                    b.blocks.len() > a.blocks.len() + a.output_blocks.len()
                        && b.blocks[..a.blocks.len()] == a.blocks[..]
                        && b.blocks[a.blocks.len()..a.blocks.len() + a.output_blocks.len()]
                            == a.output_blocks[..]
                })
        });
        assert!(found);
    }
}
