//! The serve timing model: a discrete-event simulation on a simulated clock.
//!
//! Requests arrive at their trace timestamps and join a FIFO queue. The
//! request at the head is admitted when it can get all its blocks: it
//! matches its cached prefix (held) and allocates blocks for the rest of its
//! prompt plus the full blocks its output will fill; if the allocation
//! fails, it lets its prefix go and waits (head-of-line) until a running
//! request finishes. An admitted request
//! 1. prefills for `missed prompt tokens / prefill_tps` seconds, then
//!    registers its new prompt blocks (now matchable by others);
//! 2. decodes for `output tokens / decode_tps` seconds, then registers its
//!    generated full blocks and releases everything.
//!
//! It measures the hit rate a server with this much KV memory would see when
//! blocks stay held while requests run (less is evictable than under
//! `instant`), plus how long requests queue for memory. A request needing
//! more blocks than the whole cache is rejected and counted as oversized.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use crate::sim::{Counters, Observer, ServeConfig, ServeStats, SimCache, SimError, SimResult};
use crate::workload::Workload;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Event {
    Finish,
    PrefillDone,
}

struct Sim<'a> {
    w: &'a Workload,
    cfg: &'a ServeConfig,
    c: Counters,
    events: BinaryHeap<Reverse<(u64, Event, u32)>>,
    queue: VecDeque<usize>,
    matched: Vec<u32>,
    waited: Vec<bool>,
    running: u64,
    max_running: u64,
    queued: u64,
    admitted: u64,
    wait_total_us: u64,
    wait_max_us: u64,
    last_finish_us: u64,
}

/// Microseconds to process `tokens` at `per_sec`; `None` when that does not
/// fit the clock (the CLI bounds rates and request sizes, but the model
/// itself never wraps or saturates time).
fn micros(tokens: u64, per_sec: f64) -> Option<u64> {
    if !(per_sec.is_finite() && per_sec > 0.0) {
        return None;
    }
    let us = (tokens as f64 / per_sec * 1e6).ceil();
    // `u64::MAX as f64` rounds up to 2^64, so `<` excludes it.
    (us < u64::MAX as f64).then_some(us as u64)
}

/// `at + duration` on the simulated clock.
fn later(at: u64, duration: Option<u64>) -> Result<u64, SimError> {
    duration
        .and_then(|d| at.checked_add(d))
        .ok_or(SimError::ClockOverflow)
}

/// A request's arrival on the microsecond clock.
fn arrival_us(arrival_ms: u64) -> Result<u64, SimError> {
    arrival_ms.checked_mul(1000).ok_or(SimError::ClockOverflow)
}

impl Sim<'_> {
    fn try_admit(&mut self, now: u64, policy: &mut dyn SimCache) -> Result<(), SimError> {
        let capacity = policy.capacity();
        while let Some(&r) = self.queue.front() {
            let req = &self.w.requests[r];
            let n_prompt = req.blocks.len();
            let n = n_prompt + req.output_blocks.len();
            if n > capacity {
                self.queue.pop_front();
                self.c.requests += 1;
                self.c.oversized += 1;
                self.c.allocation_failures += 1;
                self.c.misses += n_prompt as u64;
                self.c.input_tokens += req.input_tokens;
                continue;
            }
            let hits = policy.match_prefix(r, req);
            self.c.block_ops += n_prompt as u64;
            if !policy.allocate(r, n - hits) {
                policy.release(r);
                self.c.allocation_failures += 1;
                if !self.waited[r] {
                    self.waited[r] = true;
                    self.queued += 1;
                }
                return Ok(());
            }
            self.queue.pop_front();
            self.c.requests += 1;
            self.c.hits += hits as u64;
            self.c.misses += (n_prompt - hits) as u64;
            let hit_tokens = req.tokens_in_prefix(hits, self.w.block_tokens);
            self.c.hit_tokens += hit_tokens;
            self.c.input_tokens += req.input_tokens;
            self.c.block_ops += (n - hits) as u64;
            self.matched[r] = hits as u32;
            let wait = now.saturating_sub(arrival_us(req.arrival_ms)?);
            self.wait_total_us = self.wait_total_us.saturating_add(wait);
            self.wait_max_us = self.wait_max_us.max(wait);
            self.admitted += 1;
            self.running += 1;
            self.max_running = self.max_running.max(self.running);
            let prefill = micros(req.input_tokens - hit_tokens, self.cfg.prefill_tps);
            self.events.push(Reverse((
                later(now, prefill)?,
                Event::PrefillDone,
                r as u32,
            )));
        }
        Ok(())
    }
}

/// Simulates `w` served from a cache run by `policy`.
pub fn run(
    w: &Workload,
    policy: &mut dyn SimCache,
    cfg: &ServeConfig,
    observer: &mut dyn Observer,
) -> Result<SimResult, SimError> {
    let start = Instant::now();
    let n = w.requests.len();
    let mut sim = Sim {
        w,
        cfg,
        c: Counters::default(),
        events: BinaryHeap::new(),
        queue: VecDeque::new(),
        matched: vec![0; n],
        waited: vec![false; n],
        running: 0,
        max_running: 0,
        queued: 0,
        admitted: 0,
        wait_total_us: 0,
        wait_max_us: 0,
        last_finish_us: 0,
    };
    let first_us = match w.requests.first() {
        Some(r) => arrival_us(r.arrival_ms)?,
        None => 0,
    };
    let mut next_arrival = 0;
    let mut done = 0u64;
    // Events at the same instant as an arrival run first, so blocks freed
    // then are available to whoever arrives.
    loop {
        let arrival_at = match w.requests.get(next_arrival) {
            Some(r) => Some(arrival_us(r.arrival_ms)?),
            None => None,
        };
        let event_at = sim.events.peek().map(|Reverse((t, _, _))| *t);
        if let Some(t) = arrival_at.into_iter().chain(event_at).min() {
            observer.pace(t / 1000);
        }
        let now = match (arrival_at, event_at) {
            (None, None) => break,
            (Some(a), e) if e.is_none_or(|e| a < e) => {
                sim.queue.push_back(next_arrival);
                next_arrival += 1;
                sim.try_admit(a, policy)?;
                a
            }
            _ => {
                let Some(Reverse((t, kind, r))) = sim.events.pop() else {
                    break;
                };
                let r = r as usize;
                let req = &w.requests[r];
                match kind {
                    Event::PrefillDone => {
                        let hits = sim.matched[r] as usize;
                        policy.register(r, &req.blocks[hits..]);
                        sim.c.block_ops += (req.blocks.len() - hits) as u64;
                        let decode = micros(req.output_tokens, cfg.decode_tps);
                        sim.events
                            .push(Reverse((later(t, decode)?, Event::Finish, r as u32)));
                    }
                    Event::Finish => {
                        policy.register(r, &req.output_blocks);
                        policy.release(r);
                        sim.c.block_ops += (req.output_blocks.len() + req.blocks.len()) as u64;
                        sim.running -= 1;
                        sim.last_finish_us = t;
                        done += 1;
                        sim.try_admit(t, policy)?;
                    }
                }
                t
            }
        };
        observer.progress(done + sim.c.oversized, now / 1000, &sim.c, policy);
    }
    let mean_wait = if sim.admitted > 0 {
        sim.wait_total_us as f64 / sim.admitted as f64 / 1e6
    } else {
        0.0
    };
    let stats = ServeStats {
        queued_requests: sim.queued,
        mean_queue_wait_s: mean_wait,
        max_queue_wait_s: sim.wait_max_us as f64 / 1e6,
        max_running: sim.max_running,
        simulated_seconds: sim.last_finish_us.saturating_sub(first_us) as f64 / 1e6,
    };
    Ok(SimResult::new(
        policy.name(),
        &sim.c,
        policy.evictions(),
        start.elapsed().as_secs_f64(),
        Some(stats),
    ))
}
