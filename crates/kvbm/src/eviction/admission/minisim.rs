//! Miniature simulations that choose the credit scale.
//!
//! Each [`MiniSim`] replays a fixed sample of the released hashes (those
//! whose mixed bits fall in one residue class, about one in `rate`) through
//! the admission ordering at one candidate credit scale, in a cache of
//! capacity / `rate` blocks. Spatial sampling keeps each hash's whole
//! history, so a miniature cache sees the same reuse pattern at a fraction
//! of the cost (Waldspurger et al., "Cache Modeling and Optimization using
//! Miniature Simulations", USENIX ATC 2017). The backend then applies the
//! scale whose miniature hit the most recently: comparing candidates on the
//! same stream at the same moment is far less noisy than a hill climber
//! comparing one scale's hit rate across consecutive periods, in which the
//! workload itself changes.
//!
//! A miniature works in the backend's release ticks (a release counts as
//! one tick whether sampled or not), so the backend's credit offsets apply
//! to it unchanged: it turns over about once per capacity of releases,
//! like the full cache. A release of a sampled hash that the miniature
//! still caches is a hit. Nothing allocates after construction.

use super::{best_front, CLASSES, EMPTY_HEAD};
use crate::eviction::list::IndexLists;
use crate::eviction::NIL;
use crate::SequenceHash;

/// Mixes a hash's 128 bits into 64 (multiply-fold): the sample and the
/// table slot take different bits of it.
#[inline]
pub(super) fn mix(hash: SequenceHash) -> u64 {
    let h = hash.as_u128();
    let folded = (h as u64) ^ ((h >> 64) as u64).rotate_left(29);
    folded.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// One miniature cache at one credit scale.
#[derive(Debug, Clone)]
pub(super) struct MiniSim {
    lists: IndexLists<CLASSES>,
    ticks: Vec<i64>,
    /// Each slot's hash, mixed to 64 bits: a miniature only estimates a
    /// hit rate, and two sampled hashes share a mix with odds of 2^-64.
    keys: Vec<u64>,
    /// Open addressing, linear probing: slot id or `NIL`.
    table: Vec<u32>,
    table_bits: u32,
    /// Slots handed out so far (they are reused once all are).
    used: u32,
    heads: [i64; CLASSES],
    /// Each class's credit in ticks at this miniature's scale.
    pub(super) offsets: [i64; CLASSES],
    /// Hits since the last [`take_hits`](Self::take_hits).
    hits: u64,
}

impl MiniSim {
    /// An empty miniature of `slots` blocks (at least one).
    pub(super) fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        let table_bits = (slots * 2).next_power_of_two().trailing_zeros().max(1);
        Self {
            lists: IndexLists::new(slots),
            ticks: vec![0; slots],
            keys: vec![0; slots],
            table: vec![NIL; 1 << table_bits],
            table_bits,
            used: 0,
            heads: [EMPTY_HEAD; CLASSES],
            offsets: [0; CLASSES],
            hits: 0,
        }
    }

    #[inline]
    fn home(&self, mixed: u64) -> usize {
        // Bits from 32 up chose the sample; the slot comes from the top.
        (mixed >> (64 - self.table_bits)) as usize
    }

    /// The table position of `key`, or of the empty slot that ends its
    /// probe sequence.
    #[inline]
    fn probe(&self, key: u64) -> (usize, Option<u32>) {
        let mask = self.table.len() - 1;
        let mut at = self.home(key);
        loop {
            match self.table[at] {
                NIL => return (at, None),
                id if self.keys[id as usize] == key => return (at, Some(id)),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Empties table position `at`, shifting later entries of the probe
    /// run back so lookups never stop early.
    fn erase(&mut self, mut at: usize) {
        let mask = self.table.len() - 1;
        let mut next = (at + 1) & mask;
        loop {
            let id = self.table[next];
            if id == NIL {
                break;
            }
            let home = self.home(self.keys[id as usize]);
            // Move the entry back if its home is not in (at, next].
            let distance_here = next.wrapping_sub(home) & mask;
            let distance_gap = next.wrapping_sub(at) & mask;
            if distance_here >= distance_gap {
                self.table[at] = id;
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.table[at] = NIL;
    }

    fn unlink(&mut self, id: u32) {
        let Some(class) = self.lists.list_of(id) else {
            return;
        };
        let was_front = self.lists.front(class) == Some(id);
        self.lists.remove(id);
        if was_front {
            self.heads[class] = match self.lists.front(class) {
                Some(front) => self.ticks[front as usize],
                None => EMPTY_HEAD,
            };
        }
    }

    /// Hits since the last call.
    pub(super) fn take_hits(&mut self) -> u64 {
        std::mem::take(&mut self.hits)
    }

    /// Every slot handed out is listed and found by its hash; the lists
    /// are in release order and their head ticks are current.
    pub(super) fn validate(&self) -> Result<(), String> {
        self.lists.validate("admission miniature")?;
        if self.lists.total_len() != self.used as usize {
            return Err("admission miniature: slot count mismatch".into());
        }
        for id in 0..self.used {
            if self.probe(self.keys[id as usize]).1 != Some(id) {
                return Err(format!("admission miniature: slot {id} not in its table"));
            }
        }
        for class in 0..CLASSES {
            let mut last = i64::MIN;
            let mut cur = self.lists.front(class).unwrap_or(NIL);
            while cur != NIL {
                let tick = self.ticks[cur as usize];
                if tick < last {
                    return Err("admission miniature: list out of order".into());
                }
                last = tick;
                cur = self.lists.next(cur);
            }
            let head = match self.lists.front(class) {
                Some(front) => self.ticks[front as usize],
                None => EMPTY_HEAD,
            };
            if self.heads[class] != head {
                return Err("admission miniature: stale head tick".into());
            }
        }
        Ok(())
    }

    /// The slot to evict: the smallest release tick plus class credit.
    fn victim(&self) -> Option<u32> {
        self.lists.front(best_front(&self.heads, &self.offsets))
    }

    /// A sampled release of the hash mixed to `key` in `class` at `tick`:
    /// a hit if the miniature still caches it, then it is (re)queued at the
    /// back.
    pub(super) fn release(&mut self, key: u64, class: usize, tick: i64) {
        let (at, found) = self.probe(key);
        let id = match found {
            Some(id) => {
                self.hits += 1;
                self.unlink(id);
                id
            }
            None => {
                let (id, at) = if (self.used as usize) < self.ticks.len() {
                    self.used += 1;
                    (self.used - 1, at)
                } else {
                    let Some(victim) = self.victim() else {
                        return;
                    };
                    self.unlink(victim);
                    let (old_at, _) = self.probe(self.keys[victim as usize]);
                    self.erase(old_at);
                    // The erase may have opened a nearer empty position.
                    (victim, self.probe(key).0)
                };
                self.keys[id as usize] = key;
                self.table[at] = id;
                id
            }
        };
        if self.lists.len(class) == 0 {
            self.heads[class] = tick;
        }
        self.ticks[id as usize] = tick;
        self.lists.push_back(class, id);
    }
}

/// Whether `hash` is in the sample kept by miniatures of sampling `rate`
/// (a power of two), and its mixed bits.
#[inline]
pub(super) fn sampled(hash: SequenceHash, rate_mask: u64) -> Option<u64> {
    let mixed = mix(hash);
    ((mixed >> 32) & rate_mask == 0).then_some(mixed)
}
