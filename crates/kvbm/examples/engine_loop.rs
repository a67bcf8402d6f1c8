//! A toy continuous-batching engine on top of `SchedulableSequence`.
//!
//! A fake model (the next token is a hash of the request and position)
//! serves a few dozen requests that share four system prompts, on a pool
//! too small to hold them all. Each step admits waiting requests (prefix
//! match, then a chunk of prefill within the step's token budget), decodes
//! one token for every running request, and preempts the youngest request
//! when the pool runs dry; preempted requests resume later from whatever
//! of their prefix is still cached.
//!
//! Run with `cargo run -p kvbm --example engine_loop`.

use std::collections::VecDeque;

use kvbm::integrations::{DecodeOutcome, SchedulableSequence, ScheduleError};
use kvbm::manager::BlockManager;
use kvbm::tokens::Token;

#[derive(Clone)]
struct Gpu;

const BLOCK_SIZE: usize = 4;
const BLOCKS: usize = 48;
const REQUESTS: usize = 36;
const MAX_BATCH: usize = 8;
/// Prompt tokens (new prefill plus recompute) a step may process.
const PREFILL_BUDGET: usize = 48;

struct Request {
    id: usize,
    seq: SchedulableSequence<Gpu>,
    preempted: bool,
}

/// Deterministic pseudo-random numbers, so that runs are reproducible.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// The fake model: a token that depends only on the request and position.
fn model(id: usize, position: usize) -> Token {
    ((id as u64 * 1_000_003 + position as u64 * 7919) % 32_000) as Token
}

fn make_requests() -> VecDeque<Request> {
    let mut rng = Lcg(42);
    let system_prompts: Vec<Vec<Token>> = (0..4)
        .map(|p| (0..12 + 4 * p).map(|t| 10_000 + p * 100 + t).collect())
        .collect();
    (0..REQUESTS)
        .map(|id| {
            let mut tokens = system_prompts[rng.next(4) as usize].clone();
            let user = 3 + rng.next(8) as usize;
            tokens.extend((0..user).map(|_| 20_000 + rng.next(5_000) as Token));
            let seq = SchedulableSequence::<Gpu>::builder()
                .tokens(tokens)
                .max_output_tokens(6 + rng.next(15) as usize)
                .block_size(BLOCK_SIZE as u32)
                .build()
                .expect("valid request");
            Request {
                id,
                seq,
                preempted: false,
            }
        })
        .collect()
}

#[derive(Default)]
struct Totals {
    steps: usize,
    finished: usize,
    generated: usize,
    prompt_blocks: usize,
    prefix_hit_blocks: usize,
    prefill_tokens: usize,
    recompute_tokens: usize,
    preemptions: usize,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let manager = BlockManager::<Gpu>::builder()
        .block_count(BLOCKS)
        .block_size(BLOCK_SIZE)
        .with_lineage_backend()
        .build()?;
    let mut waiting = make_requests();
    let mut running: Vec<Request> = Vec::new();
    let mut totals = Totals::default();

    while !waiting.is_empty() || !running.is_empty() {
        totals.steps += 1;
        let mut budget = PREFILL_BUDGET;
        let mut step_hits = 0;
        let mut step_preempted = 0;

        // Admit: resume preempted requests, start new ones, continue
        // chunked prefills — within the batch size and the token budget.
        while running.len() < MAX_BATCH && budget > 0 {
            let Some(mut req) = waiting.pop_front() else {
                break;
            };
            if req.preempted {
                if !req.seq.reacquire(&manager)? {
                    waiting.push_front(req);
                    break;
                }
                // Blocks not found in the cache must be recomputed.
                let cached = req.seq.prefix_matched_blocks() * BLOCK_SIZE;
                let recompute = (req.seq.kv_position() / BLOCK_SIZE) * BLOCK_SIZE - cached;
                totals.recompute_tokens += recompute;
                budget = budget.saturating_sub(recompute);
                step_hits += req.seq.prefix_matched_blocks();
                req.preempted = false;
            } else if req.seq.prefill_position() == 0 {
                let hits = req.seq.match_and_add_prefix(&manager)?;
                step_hits += hits;
                totals.prefix_hit_blocks += hits;
                totals.prompt_blocks += req.seq.num_input_tokens() / BLOCK_SIZE;
            }
            running.push(req);
        }

        // Schedule one step for every running request; preempt the
        // youngest when the pool cannot cover a step.
        let mut scheduled: Vec<Request> = Vec::new();
        while let Some(mut req) = running.pop() {
            let result = if req.seq.is_prefill_complete() {
                req.seq.schedule_decode(&manager)
            } else {
                let chunk = (req.seq.num_input_tokens() - req.seq.prefill_position()).min(budget);
                if chunk == 0 {
                    scheduled.push(req); // no budget left: wait a step
                    continue;
                }
                let scheduled = req.seq.schedule_prefill(chunk, &manager);
                if scheduled.is_ok() {
                    budget -= chunk;
                    totals.prefill_tokens += chunk;
                }
                scheduled
            };
            match result {
                Ok(()) => scheduled.push(req),
                Err(ScheduleError::AllocationFailed { .. }) => {
                    // Preempt the youngest other request, or this one.
                    let victim_at = (0..running.len()).max_by_key(|&i| running[i].id);
                    let victim = match victim_at {
                        Some(i) if running[i].id > req.id => {
                            running.push(req);
                            running.swap_remove(i)
                        }
                        _ => req,
                    };
                    let mut victim = victim;
                    victim.seq.release()?;
                    victim.preempted = true;
                    step_preempted += 1;
                    waiting.push_front(victim);
                }
                Err(e) => return Err(e.into()),
            }
        }

        // Run the model and apply what it produced.
        let batch = scheduled
            .iter()
            .filter(|r| r.seq.state() != kvbm::SequenceState::Idle)
            .count();
        for mut req in scheduled {
            use kvbm::SequenceState::*;
            match req.seq.state() {
                Idle => {}
                PrefillScheduled { num_tokens, .. } => {
                    let done =
                        req.seq.prefill_position() + num_tokens >= req.seq.num_input_tokens();
                    let token = done.then(|| model(req.id, req.seq.total_tokens()));
                    req.seq.apply_prefill(token, &manager)?;
                    totals.generated += usize::from(done);
                }
                DecodeScheduled { .. } | SpeculativeScheduled { .. } => {
                    let token = model(req.id, req.seq.total_tokens());
                    totals.generated += 1;
                    if let DecodeOutcome::MaxLength | DecodeOutcome::BlockCompletedAndMaxLength =
                        req.seq.apply_decode(token, &manager)?
                    {
                        totals.finished += 1;
                        continue; // dropped: its registered blocks stay cached
                    }
                }
            }
            if req.seq.is_prefill_complete() && req.seq.is_complete() {
                totals.finished += 1;
                continue;
            }
            running.push(req);
        }
        running.sort_by_key(|r| r.id);
        totals.preemptions += step_preempted;

        println!(
            "step {:3}: batch {:2}  prompt {:2} tok  prefix hits {:2} blk  preempted {}  free {:2}/{}  running {:2}  waiting {:2}",
            totals.steps,
            batch,
            PREFILL_BUDGET - budget,
            step_hits,
            step_preempted,
            manager.available_blocks(),
            BLOCKS,
            running.len(),
            waiting.len(),
        );
        manager.validate()?;
        if totals.steps > 10_000 {
            return Err("the engine made no progress".into());
        }
    }

    manager.validate()?;
    assert_eq!(manager.available_blocks(), BLOCKS, "every block came back");
    println!(
        "summary: {} requests finished in {} steps, {} tokens generated, prefix hits {}/{} prompt blocks ({:.0}%), {} prefill + {} recompute tokens, {} preemptions, pool intact",
        totals.finished,
        totals.steps,
        totals.generated,
        totals.prefix_hit_blocks,
        totals.prompt_blocks,
        100.0 * totals.prefix_hit_blocks as f64 / totals.prompt_blocks.max(1) as f64,
        totals.prefill_tokens,
        totals.recompute_tokens,
        totals.preemptions,
    );
    Ok(())
}
