//! A pure, array-based prefix cache: the simulator's own model of a block
//! pool, parameterised by the order in which cached blocks are evicted.
//!
//! It holds at most `capacity` blocks. A block (a workload [`BlockKey`]) is
//! *absent*, *pinned* by one or more in-flight requests, or *cached*
//! (present, unpinned, evictable). Free slots are used before anything is
//! evicted. It implements [`SimCache`] exactly like the block manager is
//! driven: match pins the longest cached prefix, allocation is all or nothing
//! and evicts cached blocks in the [`VictimOrder`]'s order, registering a
//! key already present reuses the present block (and frees the new slot),
//! release unpins in the configured [`ReleaseOrder`].

use std::collections::HashMap;

use crate::sim::{ReleaseOrder, SimCache};
use crate::workload::{BlockKey, Request};

/// The order in which cached blocks are evicted.
pub trait VictimOrder {
    /// `key` became cached; `last_user` is the latest request that used it.
    fn insert(&mut self, key: BlockKey, last_user: usize);
    /// `key` left the cached set without being evicted (it was pinned again).
    fn remove(&mut self, key: BlockKey);
    /// Chooses, removes and returns the next victim.
    fn pop(&mut self) -> Option<BlockKey>;
}

#[derive(Debug, Default)]
struct Held {
    keys: Vec<BlockKey>,
    reserved: usize,
}

/// A prefix cache over a workload's block keys.
#[derive(Debug)]
pub struct PrefixCache<O> {
    name: String,
    capacity: usize,
    free: usize,
    cached: usize,
    present: Vec<bool>,
    pins: Vec<u32>,
    last_user: Vec<u32>,
    held: HashMap<usize, Held>,
    order: O,
    release: ReleaseOrder,
    evictions: u64,
}

impl<O: VictimOrder> PrefixCache<O> {
    /// A cache of `capacity` blocks over `keys` distinct block keys.
    pub fn new(name: &str, capacity: usize, keys: usize, order: O, release: ReleaseOrder) -> Self {
        Self {
            name: name.to_string(),
            capacity,
            free: capacity,
            cached: 0,
            present: vec![false; keys],
            pins: vec![0; keys],
            last_user: vec![0; keys],
            held: HashMap::new(),
            order,
            release,
            evictions: 0,
        }
    }

    fn pin(&mut self, r: usize, key: BlockKey) {
        let k = key as usize;
        if self.pins[k] == 0 {
            self.order.remove(key);
            self.cached -= 1;
        }
        self.pins[k] += 1;
        self.last_user[k] = self.last_user[k].max(r as u32);
        self.held.entry(r).or_default().keys.push(key);
    }

    fn unpin(&mut self, key: BlockKey) {
        let k = key as usize;
        self.pins[k] -= 1;
        if self.pins[k] == 0 {
            self.cached += 1;
            self.order.insert(key, self.last_user[k] as usize);
        }
    }
}

impl<O: VictimOrder> SimCache for PrefixCache<O> {
    fn name(&self) -> &str {
        &self.name
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn available(&self) -> usize {
        self.free + self.cached
    }

    fn match_prefix(&mut self, r: usize, req: &Request) -> usize {
        let mut n = 0;
        for &key in &req.blocks {
            if !self.present[key as usize] {
                break;
            }
            self.pin(r, key);
            n += 1;
        }
        n
    }

    fn allocate(&mut self, r: usize, n: usize) -> bool {
        if n > self.available() {
            return false;
        }
        while self.free < n {
            let Some(victim) = self.order.pop() else {
                return false;
            };
            self.present[victim as usize] = false;
            self.cached -= 1;
            self.free += 1;
            self.evictions += 1;
        }
        self.free -= n;
        self.held.entry(r).or_default().reserved += n;
        true
    }

    fn register(&mut self, r: usize, keys: &[BlockKey]) {
        for &key in keys {
            let held = self.held.entry(r).or_default();
            if held.reserved == 0 {
                // Nothing allocated for it: a caller error, ignored safely.
                continue;
            }
            held.reserved -= 1;
            let k = key as usize;
            if self.present[k] {
                // Already present: reuse that block, the new slot goes back.
                self.free += 1;
                self.pin(r, key);
            } else {
                self.present[k] = true;
                self.pins[k] = 1;
                self.last_user[k] = r as u32;
                held.keys.push(key);
            }
        }
    }

    fn release(&mut self, r: usize) {
        let Some(held) = self.held.remove(&r) else {
            return;
        };
        self.free += held.reserved;
        match self.release {
            ReleaseOrder::LeafFirst => held.keys.iter().rev().for_each(|&k| self.unpin(k)),
            ReleaseOrder::RootFirst => held.keys.iter().for_each(|&k| self.unpin(k)),
        }
    }

    fn evictions(&self) -> u64 {
        self.evictions
    }
}

/// Least recently released first: an intrusive doubly linked list over keys.
#[derive(Debug)]
pub struct LruOrder {
    prev: Vec<u32>,
    next: Vec<u32>,
}

const NIL: u32 = u32::MAX;

impl LruOrder {
    /// An empty order over `keys` keys.
    pub fn new(keys: usize) -> Self {
        // Slot `keys` is the sentinel: next = oldest, prev = newest.
        let mut prev = vec![NIL; keys + 1];
        let mut next = vec![NIL; keys + 1];
        prev[keys] = keys as u32;
        next[keys] = keys as u32;
        Self { prev, next }
    }

    fn sentinel(&self) -> u32 {
        (self.prev.len() - 1) as u32
    }
}

impl VictimOrder for LruOrder {
    fn insert(&mut self, key: BlockKey, _last_user: usize) {
        let s = self.sentinel();
        let tail = self.prev[s as usize];
        self.next[tail as usize] = key;
        self.prev[key as usize] = tail;
        self.next[key as usize] = s;
        self.prev[s as usize] = key;
    }

    fn remove(&mut self, key: BlockKey) {
        let (p, n) = (self.prev[key as usize], self.next[key as usize]);
        self.next[p as usize] = n;
        self.prev[n as usize] = p;
        self.prev[key as usize] = NIL;
        self.next[key as usize] = NIL;
    }

    fn pop(&mut self) -> Option<BlockKey> {
        let s = self.sentinel();
        let head = self.next[s as usize];
        if head == s {
            return None;
        }
        self.remove(head);
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::WorkloadBuilder;

    fn lru(cap: usize, keys: usize, release: ReleaseOrder) -> PrefixCache<LruOrder> {
        PrefixCache::new("sim-lru", cap, keys, LruOrder::new(keys), release)
    }

    #[test]
    fn lru_order_is_fifo_of_inserts() {
        let mut o = LruOrder::new(5);
        for k in [3, 1, 4] {
            o.insert(k, 0);
        }
        o.remove(1);
        o.insert(1, 0);
        assert_eq!(o.pop(), Some(3));
        assert_eq!(o.pop(), Some(4));
        assert_eq!(o.pop(), Some(1));
        assert_eq!(o.pop(), None);
    }

    #[test]
    fn match_allocate_register_release() {
        let mut b = WorkloadBuilder::new(4);
        b.push_block_ids(0, 12, 0, &[1, 2, 3], None).unwrap();
        b.push_block_ids(1, 12, 0, &[1, 2, 4], None).unwrap();
        let w = b.finish("t".into(), "mooncake", 0);
        let mut c = lru(4, w.key_count(), ReleaseOrder::LeafFirst);
        let r0 = &w.requests[0];
        assert_eq!(c.match_prefix(0, r0), 0);
        assert!(c.allocate(0, 3));
        assert_eq!(c.available(), 1);
        c.register(0, &r0.blocks);
        c.release(0);
        assert_eq!(c.available(), 4);
        let r1 = &w.requests[1];
        assert_eq!(c.match_prefix(1, r1), 2);
        assert_eq!(c.available(), 2);
        assert!(c.allocate(1, 1));
        assert_eq!(c.evictions(), 0);
        c.register(1, &r1.blocks[2..]);
        c.release(1);
        // Cache full (4 blocks); a 2-block allocation evicts the two oldest:
        // request 0's leaf (3) and then request 1's leaf (4), leaf-first.
        assert!(c.allocate(2, 2));
        assert_eq!(c.evictions(), 2);
        c.release(2);
        assert_eq!(c.match_prefix(3, r0), 2);
        c.release(3);
        assert!(!c.allocate(4, 5));
    }

    #[test]
    fn registering_a_present_key_reuses_it() {
        let mut b = WorkloadBuilder::new(4);
        b.push_block_ids(0, 4, 0, &[1], None).unwrap();
        let w = b.finish("t".into(), "mooncake", 0);
        let mut c = lru(2, w.key_count(), ReleaseOrder::RootFirst);
        assert!(c.allocate(0, 1));
        assert!(c.allocate(1, 1));
        c.register(0, &w.requests[0].blocks);
        c.register(1, &w.requests[0].blocks);
        assert_eq!(c.available(), 1);
        c.release(0);
        c.release(1);
        assert_eq!(c.available(), 2);
        assert_eq!(c.match_prefix(2, &w.requests[0]), 1);
    }
}
