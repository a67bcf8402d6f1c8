//! The instant timing model: requests in arrival order, each one matching,
//! allocating, registering and releasing before the next starts.
//!
//! This is the capacity-analysis methodology of the Mooncake paper: it
//! measures how much of each prompt a cache of the given size still holds
//! from earlier requests, independent of load and timing. Only prompt blocks
//! are cached (nothing is generated). A request's matched prefix is held
//! while its missing blocks are allocated, so it cannot evict its own prefix;
//! a request with more blocks than the whole cache is counted as oversized
//! (all its blocks are misses) and touches nothing.

use std::time::Instant;

use crate::sim::{Counters, Observer, SimCache, SimResult};
use crate::workload::Workload;

/// Replays `w` through `policy` one request at a time.
pub fn run(w: &Workload, policy: &mut dyn SimCache, observer: &mut dyn Observer) -> SimResult {
    let start = Instant::now();
    let mut c = Counters::default();
    let capacity = policy.capacity();
    for (r, req) in w.requests.iter().enumerate() {
        observer.pace(req.arrival_ms);
        let n = req.blocks.len();
        c.requests += 1;
        c.input_tokens += req.input_tokens;
        if n > capacity {
            c.oversized += 1;
            c.allocation_failures += 1;
            c.misses += n as u64;
        } else {
            let hits = policy.match_prefix(r, req);
            c.hits += hits as u64;
            c.misses += (n - hits) as u64;
            c.hit_tokens += req.tokens_in_prefix(hits, w.block_tokens);
            c.block_ops += n as u64;
            if policy.allocate(r, n - hits) {
                policy.register(r, &req.blocks[hits..]);
                c.block_ops += 2 * (n - hits) as u64;
            } else {
                c.allocation_failures += 1;
            }
            policy.release(r);
            c.block_ops += n as u64;
        }
        observer.progress(c.requests, req.arrival_ms, &c, policy);
    }
    SimResult::new(
        policy.name(),
        &c,
        policy.evictions(),
        start.elapsed().as_secs_f64(),
        None,
    )
}
