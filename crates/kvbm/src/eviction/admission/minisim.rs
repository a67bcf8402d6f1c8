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

use super::{CLASSES, EMPTY_HEAD};
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

/// The class whose list has the smallest priority, the lowest class on
/// ties (as the backend's own victim search).
#[inline]
fn lowest(priorities: &[i64; CLASSES]) -> usize {
    let mut best = 0;
    for class in 1..CLASSES {
        if priorities[class] < priorities[best] {
            best = class;
        }
    }
    best
}

/// One cached block of a miniature. Everything a release touches sits in
/// one place, so it costs one bounds check and about one cache line.
#[derive(Debug, Clone, Copy)]
struct Slot {
    /// The hash, mixed to 64 bits: a miniature only estimates a hit rate,
    /// and two sampled hashes share a mix with odds of 2^-64.
    key: u64,
    /// Release tick.
    tick: i64,
    /// Neighbours in its class list (`NIL` at the ends).
    prev: u32,
    next: u32,
    /// Its position in the table, so an evicted slot's entry is found
    /// without probing for it.
    position: u32,
    class: u8,
}

// Hash, tick, links, position and class fill 32 bytes (the class's
// padding would be there anyway, so the position costs nothing).
const _: () = assert!(std::mem::size_of::<Slot>() == 32);

const FREE: Slot = Slot {
    key: 0,
    tick: 0,
    prev: NIL,
    next: NIL,
    position: 0,
    class: 0,
};

/// One miniature cache at one credit scale.
#[derive(Debug, Clone)]
pub(super) struct MiniSim {
    slots: Vec<Slot>,
    /// Open addressing, linear probing: slot id or `NIL`.
    table: Vec<u32>,
    table_bits: u32,
    /// Slots handed out so far (they are reused once all are).
    used: u32,
    /// Oldest and newest slot of each class list (`NIL` when empty).
    fronts: [u32; CLASSES],
    backs: [u32; CLASSES],
    /// Each list's eviction priority: its front's release tick plus the
    /// class credit ([`EMPTY_HEAD`] plus the credit when empty), kept
    /// summed so a victim search reads seven numbers, not fourteen.
    priorities: [i64; CLASSES],
    /// Each class's credit in ticks at this miniature's scale.
    offsets: [i64; CLASSES],
    /// Hits since the last [`take_hits`](Self::take_hits).
    hits: u64,
}

impl MiniSim {
    /// An empty miniature of `slots` blocks (at least one).
    ///
    /// # Panics
    /// If `slots` does not fit 32-bit slot links (a configuration error).
    pub(super) fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        assert!(slots < NIL as usize, "miniature of {slots} slots");
        let table_bits = (slots * 2).next_power_of_two().trailing_zeros().max(1);
        Self {
            slots: vec![FREE; slots],
            table: vec![NIL; 1 << table_bits],
            table_bits,
            used: 0,
            fronts: [NIL; CLASSES],
            backs: [NIL; CLASSES],
            priorities: [EMPTY_HEAD; CLASSES],
            offsets: [0; CLASSES],
            hits: 0,
        }
    }

    #[inline]
    fn home(&self, mixed: u64) -> usize {
        // Bits from 32 up chose the sample; the slot comes from the top.
        (mixed >> (64 - self.table_bits)) as usize
    }

    /// The table position of `key`, or of the empty position that ends its
    /// probe sequence.
    #[inline]
    fn probe(&self, key: u64) -> (usize, Option<u32>) {
        let mask = self.table.len() - 1;
        let mut at = self.home(key);
        loop {
            match self.table[at] {
                NIL => return (at, None),
                id if self.slots[id as usize].key == key => return (at, Some(id)),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// Empties table position `at`, shifting later entries of the probe
    /// run back so lookups never stop early; returns the position left
    /// empty.
    fn erase(&mut self, mut at: usize) -> usize {
        let mask = self.table.len() - 1;
        let mut next = (at + 1) & mask;
        loop {
            let id = self.table[next];
            if id == NIL {
                break;
            }
            let home = self.home(self.slots[id as usize].key);
            // Move the entry back if its home is not in (at, next].
            let distance_here = next.wrapping_sub(home) & mask;
            let distance_gap = next.wrapping_sub(at) & mask;
            if distance_here >= distance_gap {
                self.table[at] = id;
                self.slots[id as usize].position = at as u32;
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.table[at] = NIL;
        at
    }

    /// Takes slot `id` out of its class list, refreshing the list's head
    /// tick when it was the front.
    #[inline]
    fn unlink(&mut self, id: u32) {
        let Slot {
            prev, next, class, ..
        } = self.slots[id as usize];
        let class = class as usize;
        if prev == NIL {
            self.fronts[class] = next;
            self.priorities[class] = self.offsets[class]
                + match next {
                    NIL => EMPTY_HEAD,
                    next => self.slots[next as usize].tick,
                };
        } else {
            self.slots[prev as usize].next = next;
        }
        if next == NIL {
            self.backs[class] = prev;
        } else {
            self.slots[next as usize].prev = prev;
        }
    }

    /// Takes the front of `class` out of it, if there is one.
    #[inline]
    fn pop_front(&mut self, class: usize) -> Option<u32> {
        let id = self.fronts[class];
        if id == NIL {
            return None;
        }
        let next = self.slots[id as usize].next;
        self.fronts[class] = next;
        self.priorities[class] = self.offsets[class]
            + if next == NIL {
                self.backs[class] = NIL;
                EMPTY_HEAD
            } else {
                let next = &mut self.slots[next as usize];
                next.prev = NIL;
                next.tick
            };
        Some(id)
    }

    /// Appends slot `id`, released at `tick`, to `class`.
    #[inline]
    fn push_back(&mut self, class: usize, id: u32, tick: i64) {
        let back = self.backs[class];
        let slot = &mut self.slots[id as usize];
        slot.prev = back;
        slot.next = NIL;
        slot.tick = tick;
        slot.class = class as u8;
        if back == NIL {
            self.fronts[class] = id;
            self.priorities[class] = tick + self.offsets[class];
        } else {
            self.slots[back as usize].next = id;
        }
        self.backs[class] = id;
    }

    /// Sets each class's credit in ticks (this miniature's scale applied).
    pub(super) fn set_offsets(&mut self, offsets: [i64; CLASSES]) {
        for (priority, (new, old)) in self
            .priorities
            .iter_mut()
            .zip(offsets.iter().zip(&self.offsets))
        {
            *priority += new - old;
        }
        self.offsets = offsets;
    }

    /// Hits since the last call.
    pub(super) fn take_hits(&mut self) -> u64 {
        std::mem::take(&mut self.hits)
    }

    /// Every slot handed out is listed once, in its class, and found by
    /// its hash at its recorded position; the lists are in release order
    /// and their head ticks are current.
    pub(super) fn validate(&self) -> Result<(), String> {
        let mut listed = 0usize;
        for class in 0..CLASSES {
            let (mut prev, mut cur) = (NIL, self.fronts[class]);
            let mut last = i64::MIN;
            while cur != NIL {
                let Some(slot) = self.slots.get(cur as usize) else {
                    return Err(format!("admission miniature: link to slot {cur}"));
                };
                listed += 1;
                if cur >= self.used || listed > self.used as usize {
                    return Err(format!("admission miniature: slot {cur} listed wrongly"));
                }
                if slot.class as usize != class || slot.prev != prev {
                    return Err(format!("admission miniature: slot {cur} badly linked"));
                }
                if slot.tick < last {
                    return Err("admission miniature: list out of order".into());
                }
                last = slot.tick;
                (prev, cur) = (cur, slot.next);
            }
            if self.backs[class] != prev {
                return Err("admission miniature: stale list back".into());
            }
            let head = match self.fronts[class] {
                NIL => EMPTY_HEAD,
                front => self.slots[front as usize].tick,
            };
            if self.priorities[class] != head + self.offsets[class] {
                return Err("admission miniature: stale head tick".into());
            }
        }
        if listed != self.used as usize {
            return Err("admission miniature: slot count mismatch".into());
        }
        for id in 0..self.used {
            let slot = &self.slots[id as usize];
            if self.probe(slot.key).1 != Some(id) {
                return Err(format!("admission miniature: slot {id} not in its table"));
            }
            if self.table[slot.position as usize] != id {
                return Err(format!(
                    "admission miniature: slot {id} has a stale position"
                ));
            }
        }
        let entries = self.table.iter().filter(|&&id| id != NIL).count();
        if entries != self.used as usize {
            return Err("admission miniature: table entry count mismatch".into());
        }
        Ok(())
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
                let (id, at) = if (self.used as usize) < self.slots.len() {
                    self.used += 1;
                    (self.used - 1, at)
                } else {
                    // Full: some list is non-empty, and an empty one never
                    // wins (its head is `EMPTY_HEAD`).
                    let Some(victim) = self.pop_front(lowest(&self.priorities)) else {
                        return;
                    };
                    let emptied = self.erase(self.slots[victim as usize].position as usize);
                    // The erase empties one position: the key's probe run
                    // now ends there if it comes before `at` on that run.
                    let mask = self.table.len() - 1;
                    let home = self.home(key);
                    if emptied.wrapping_sub(home) & mask < at.wrapping_sub(home) & mask {
                        (victim, emptied)
                    } else {
                        (victim, at)
                    }
                };
                let slot = &mut self.slots[id as usize];
                slot.key = key;
                slot.position = at as u32;
                self.table[at] = id;
                id
            }
        };
        self.push_back(class, id, tick);
    }
}

/// Whether `hash` is in the sample kept by miniatures of sampling `rate`
/// (a power of two), and its mixed bits.
#[inline]
pub(super) fn sampled(hash: SequenceHash, rate_mask: u64) -> Option<u64> {
    let mixed = mix(hash);
    ((mixed >> 32) & rate_mask == 0).then_some(mixed)
}
