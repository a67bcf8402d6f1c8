//! Belady's offline optimum for a prefix cache.
//!
//! On every eviction it drops the cached block whose next use lies farthest
//! in the future; blocks no later request uses go first. A block's next use
//! is the first later request whose prompt contains it. Every request that
//! contains a block also contains that block's parent, so a parent's next use
//! never comes after its child's; ties are broken deepest block first, so the
//! cache stays prefix-closed and no block is ever kept without its parent.
//! Requests too large for the whole cache never touch it and are not uses.
//! That makes farthest-next-use an exact bound for the hit rate of any
//! eviction policy under the instant timing model (a property test checks
//! it against every backend); under serve timing, where requests overlap, it
//! is the same rule applied online, a near-optimal reference rather than a
//! proven bound.

use std::collections::BinaryHeap;

use crate::sim::prefix_cache::VictimOrder;
use crate::workload::{BlockKey, Request, Workload};

/// For each block key, the ascending indices of the requests whose prompt
/// contains it (compressed rows).
#[derive(Debug)]
pub struct NextUse {
    start: Vec<u32>,
    uses: Vec<u32>,
}

impl NextUse {
    /// Indexes a workload's prompt blocks. Requests for which `skip` is true
    /// never touch the cache (they are oversized) and are not uses.
    pub fn new(w: &Workload, skip: impl Fn(&Request) -> bool) -> Self {
        let keys = w.key_count();
        let mut count = vec![0u32; keys + 1];
        for r in w.requests.iter().filter(|r| !skip(r)) {
            for &b in &r.blocks {
                count[b as usize + 1] += 1;
            }
        }
        for i in 0..keys {
            count[i + 1] += count[i];
        }
        let start = count.clone();
        let mut fill = count;
        let mut uses = vec![0u32; *start.last().unwrap_or(&0) as usize];
        for (i, r) in w.requests.iter().enumerate().filter(|(_, r)| !skip(r)) {
            for &b in &r.blocks {
                uses[fill[b as usize] as usize] = i as u32;
                fill[b as usize] += 1;
            }
        }
        Self { start, uses }
    }

    /// The first request after `after` whose prompt contains `key`
    /// (`u32::MAX` when none does).
    pub fn after(&self, key: BlockKey, after: usize) -> u32 {
        let row =
            &self.uses[self.start[key as usize] as usize..self.start[key as usize + 1] as usize];
        let i = row.partition_point(|&x| x as usize <= after);
        row.get(i).copied().unwrap_or(u32::MAX)
    }
}

/// Farthest-next-use first, deepest first among equals.
#[derive(Debug)]
pub struct BeladyOrder {
    next_use: NextUse,
    position: Vec<u32>,
    generation: Vec<u32>,
    active: Vec<bool>,
    heap: BinaryHeap<(u32, u32, u32, BlockKey)>,
}

impl BeladyOrder {
    /// An empty order for a workload replayed with a cache of `capacity`
    /// blocks; `with_output` when requests also need blocks for their output
    /// (serve timing), which makes more requests oversized.
    pub fn new(w: &Workload, capacity: usize, with_output: bool) -> Self {
        let keys = w.key_count();
        let oversized = |r: &Request| {
            r.blocks.len()
                + if with_output {
                    r.output_blocks.len()
                } else {
                    0
                }
                > capacity
        };
        Self {
            next_use: NextUse::new(w, oversized),
            position: w.hashes.iter().map(|h| h.position() as u32).collect(),
            generation: vec![0; keys],
            active: vec![false; keys],
            heap: BinaryHeap::new(),
        }
    }
}

impl VictimOrder for BeladyOrder {
    fn insert(&mut self, key: BlockKey, last_user: usize) {
        let k = key as usize;
        self.generation[k] = self.generation[k].wrapping_add(1);
        self.active[k] = true;
        let next = self.next_use.after(key, last_user);
        self.heap
            .push((next, self.position[k], self.generation[k], key));
        // Keep stale entries from piling up without bound.
        if self.heap.len() > 4 * self.active.len() + 1024 {
            let (active, generation) = (&self.active, &self.generation);
            self.heap
                .retain(|&(_, _, g, key)| active[key as usize] && generation[key as usize] == g);
        }
    }

    fn remove(&mut self, key: BlockKey) {
        self.active[key as usize] = false;
    }

    fn pop(&mut self) -> Option<BlockKey> {
        while let Some((_, _, g, key)) = self.heap.pop() {
            let k = key as usize;
            if self.active[k] && self.generation[k] == g {
                self.active[k] = false;
                return Some(key);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadBuilder;

    #[test]
    fn next_use_index() {
        let mut b = WorkloadBuilder::new(4);
        b.push_block_ids(0, 8, 0, &[1, 2], None).unwrap();
        b.push_block_ids(1, 4, 0, &[7], None).unwrap();
        b.push_block_ids(2, 8, 0, &[1, 3], None).unwrap();
        let w = b.finish("t".into(), "mooncake", 0);
        let nu = NextUse::new(&w, |_| false);
        let root = w.requests[0].blocks[0];
        assert_eq!(nu.after(root, 0), 2);
        assert_eq!(nu.after(root, 2), u32::MAX);
        assert_eq!(nu.after(w.requests[0].blocks[1], 0), u32::MAX);
    }

    #[test]
    fn evicts_farthest_then_deepest() {
        let mut b = WorkloadBuilder::new(4);
        b.push_block_ids(0, 8, 0, &[1, 2], None).unwrap(); // r0
        b.push_block_ids(1, 4, 0, &[5], None).unwrap(); // r1
        b.push_block_ids(2, 4, 0, &[5], None).unwrap(); // r2
        b.push_block_ids(3, 8, 0, &[1, 2], None).unwrap(); // r3
        let w = b.finish("t".into(), "mooncake", 0);
        let mut o = BeladyOrder::new(&w, 100, false);
        let (a, c) = (w.requests[0].blocks[0], w.requests[0].blocks[1]);
        let x = w.requests[1].blocks[0];
        o.insert(a, 0);
        o.insert(c, 0);
        o.insert(x, 1);
        // x is used next by r2, a and c by r3: c (deeper) goes first, then a.
        assert_eq!(o.pop(), Some(c));
        o.remove(x);
        o.insert(x, 2); // never used again now
        assert_eq!(o.pop(), Some(x));
        assert_eq!(o.pop(), Some(a));
        assert_eq!(o.pop(), None);
    }
}
