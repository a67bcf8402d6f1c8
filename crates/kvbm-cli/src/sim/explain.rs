//! Miss attribution for `kvbm replay --explain`: why each prompt block a
//! policy missed was not in the cache.
//!
//! Every miss gets exactly one cause, judged against two reference runs of
//! the same workload with the same timing and release order:
//! - **compulsory**: the unbounded cache misses it too — the block is used
//!   for the first time, or sits behind such a block in its prompt (a prefix
//!   cache matches only up to the first block it never saw). No cache size
//!   or policy avoids it.
//! - **capacity**: the unbounded cache hits it but Belady's offline optimum
//!   at the same size misses it. Only more memory avoids it.
//! - **policy**: Belady at the same size hits it. A better eviction policy
//!   could have avoided it.
//!
//! Prefix caches hit a prompt's blocks as one prefix, so each run is
//! summarised by how many leading blocks of each request it hit; a miss at
//! position `i` of request `r` is compulsory if `i` is past the unbounded
//! cache's prefix, capacity if it is past Belady's, policy otherwise.
//! Belady hits more blocks than any policy in total, not necessarily on
//! every request; positions a policy hits are never counted, so the three
//! causes always add up to the policy's misses.
//!
//! The runs are recorded by wrapping a policy in a [`Recorder`], which
//! forwards every operation and notes what `match_prefix` returned.

use serde::Serialize;

use crate::error::Result;
use crate::sim::contender::{build, Contender};
use crate::sim::{self, NoObserver, Observer, ReleaseOrder, SimCache, SimError, SimResult, Timing};
use crate::workload::{BlockKey, Request, Workload};

/// A policy's misses split by cause.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MissCauses {
    /// Misses the unbounded cache has too (first use, or behind one).
    pub compulsory: u64,
    /// Misses Belady at the same capacity has too.
    pub capacity: u64,
    /// Misses Belady at the same capacity would have hit.
    pub policy: u64,
}

impl MissCauses {
    /// All misses.
    pub fn total(&self) -> u64 {
        self.compulsory + self.capacity + self.policy
    }
}

/// Leading prompt blocks hit, per request (0 for requests never matched).
pub type PrefixHits = Vec<u32>;

/// Forwards to a policy and records the prefix length each request hit.
pub struct Recorder<'p> {
    inner: &'p mut dyn SimCache,
    hits: PrefixHits,
}

impl<'p> Recorder<'p> {
    /// Records `inner` over a workload of `requests` requests.
    pub fn new(inner: &'p mut dyn SimCache, requests: usize) -> Self {
        Self {
            inner,
            hits: vec![0; requests],
        }
    }

    /// The recorded prefix hits.
    pub fn into_hits(self) -> PrefixHits {
        self.hits
    }
}

impl SimCache for Recorder<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }
    fn available(&self) -> usize {
        self.inner.available()
    }
    fn match_prefix(&mut self, r: usize, req: &Request) -> usize {
        let n = self.inner.match_prefix(r, req);
        if let Some(slot) = self.hits.get_mut(r) {
            *slot = u32::try_from(n).unwrap_or(u32::MAX);
        }
        n
    }
    fn allocate(&mut self, r: usize, n: usize) -> bool {
        self.inner.allocate(r, n)
    }
    fn register(&mut self, r: usize, keys: &[BlockKey]) {
        self.inner.register(r, keys)
    }
    fn release(&mut self, r: usize) {
        self.inner.release(r)
    }
    fn evictions(&self) -> u64 {
        self.inner.evictions()
    }
    fn pool_metrics(&self) -> Option<std::sync::Arc<kvbm::metrics::BlockPoolMetrics>> {
        self.inner.pool_metrics()
    }
}

/// Runs a policy like [`sim::run`]; with `record`, also returns the prefix
/// each request hit, for [`attribute`].
pub fn run(
    w: &Workload,
    policy: &mut dyn SimCache,
    timing: Timing,
    observer: &mut dyn Observer,
    record: bool,
) -> std::result::Result<(SimResult, Option<PrefixHits>), SimError> {
    if !record {
        return Ok((sim::run(w, policy, timing, observer)?, None));
    }
    let mut recorder = Recorder::new(policy, w.requests.len());
    let result = sim::run(w, &mut recorder, timing, observer)?;
    Ok((result, Some(recorder.into_hits())))
}

/// Splits the misses of a run whose prefix hits are `hits`, given the
/// reference runs' prefix hits.
pub fn split_misses(w: &Workload, hits: &[u32], belady: &[u32], unbounded: &[u32]) -> MissCauses {
    let mut causes = MissCauses::default();
    for (r, req) in w.requests.iter().enumerate() {
        let at = |v: &[u32]| v.get(r).copied().unwrap_or(0) as u64;
        let n = req.blocks.len() as u64;
        let (hit, best, reachable) = (at(hits).min(n), at(belady).min(n), at(unbounded).min(n));
        // Misses are positions hit..n; split them at `upper` (past it
        // nothing could hit) and `mid` (past it Belady misses too).
        let upper = reachable.max(hit);
        let mid = best.max(hit).min(upper);
        causes.compulsory += n - upper;
        causes.capacity += upper - mid;
        causes.policy += mid - hit;
    }
    causes
}

/// Runs Belady and the unbounded cache at `capacity` and fills in
/// `miss_causes` of every result that has recorded prefix hits.
pub fn attribute(
    w: &Workload,
    capacity: usize,
    release: ReleaseOrder,
    timing: Timing,
    results: &mut [SimResult],
    hits: &[Option<PrefixHits>],
) -> Result<()> {
    let reference = |kind: Contender| -> Result<PrefixHits> {
        let mut policy = build(kind, w, capacity, release, timing, None)?;
        let (_, hits) = run(w, policy.as_mut(), timing, &mut NoObserver, true)?;
        Ok(hits.unwrap_or_default())
    };
    let belady = reference(Contender::Belady)?;
    let unbounded = reference(Contender::Unbounded)?;
    for (result, hits) in results.iter_mut().zip(hits) {
        if let Some(hits) = hits {
            result.miss_causes = Some(split_misses(w, hits, &belady, &unbounded));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadBuilder;

    /// Three requests over a shared prefix and a cache of 2 blocks.
    fn workload(prompts: &[&[u64]]) -> Workload {
        let mut b = WorkloadBuilder::new(16);
        for (i, ids) in prompts.iter().enumerate() {
            b.push_block_ids(i as u64, ids.len() as u64 * 16, 1, ids, None)
                .unwrap();
        }
        b.finish("test".into(), "generated", 0)
    }

    #[test]
    fn causes_split_each_request_at_the_reference_prefixes() {
        let w = workload(&[&[1, 2, 3], &[1, 2, 4], &[1, 2, 3]]);
        // Hypothetical runs: the policy hits 0, 1, 0 blocks; Belady 0, 2, 2;
        // the unbounded cache 0, 2, 3.
        let causes = split_misses(&w, &[0, 1, 0], &[0, 2, 2], &[0, 2, 3]);
        // Request 0: 3 compulsory. Request 1: position 1 policy, 2
        // compulsory. Request 2: positions 0, 1 policy, 2 capacity.
        assert_eq!(
            causes,
            MissCauses {
                compulsory: 4,
                capacity: 1,
                policy: 3
            }
        );
        assert_eq!(causes.total(), 8);
    }

    #[test]
    fn a_policy_beating_belady_on_one_request_is_not_blamed() {
        let w = workload(&[&[1, 2], &[1, 2]]);
        let causes = split_misses(&w, &[0, 2], &[0, 1], &[0, 2]);
        assert_eq!(causes.total(), 2, "only request 0 misses");
        assert_eq!(causes.compulsory, 2);
    }

    #[test]
    fn attribution_adds_up_for_every_policy() {
        let prompts: Vec<Vec<u64>> = (0..40u64)
            .map(|i| {
                let mut p = vec![100 + i % 3, 200 + i % 5];
                p.extend([1000 + i, 2000 + i % 7]);
                p
            })
            .collect();
        let refs: Vec<&[u64]> = prompts.iter().map(Vec::as_slice).collect();
        let w = workload(&refs);
        let release = ReleaseOrder::LeafFirst;
        let mut results = Vec::new();
        let mut hits = Vec::new();
        for kind in Contender::all() {
            let mut p = build(kind, &w, 6, release, Timing::Instant, None).unwrap();
            let (r, h) = run(&w, p.as_mut(), Timing::Instant, &mut NoObserver, true)
                .expect("instant timing has no clock to overflow");
            results.push(r);
            hits.push(h);
        }
        attribute(&w, 6, release, Timing::Instant, &mut results, &hits).unwrap();
        for r in &results {
            let causes = r.miss_causes.expect("attributed");
            assert_eq!(causes.total(), r.misses, "{}", r.policy);
            if r.policy == "belady" {
                assert_eq!(causes.policy, 0, "Belady cannot beat itself");
            }
        }
        let lru = results.iter().find(|r| r.policy == "lru").unwrap();
        assert!(lru.miss_causes.unwrap().compulsory > 0);
    }
}
