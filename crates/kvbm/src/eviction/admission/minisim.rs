//! Miniature simulations that choose the credit scale.
//!
//! Each miniature replays a fixed sample of the released hashes (those
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
//! still caches is a hit.
//!
//! All miniatures see the same sampled releases and differ only in what
//! they evict, so they share one table of sampled hashes ([`Miniatures`]):
//! a release probes once, not once per miniature, and a hash leaves the
//! table only when the last miniature holding it evicts it. A hash's tick
//! and class are those of its last release in every miniature that holds
//! it (each release requeues it in all of them), so they are stored once;
//! only the list links are per miniature. Nothing allocates after
//! construction.

use super::{CLASSES, EMPTY_HEAD};
use crate::eviction::NIL;
use crate::SequenceHash;

/// How many miniatures share a table: one per candidate scale.
pub(super) const MINIS: usize = super::SCALES.len();

/// Mixes a hash's 128 bits into 64 (multiply-fold): the sample and the
/// table slot take different bits of it.
#[inline]
pub(super) fn mix(hash: SequenceHash) -> u64 {
    let h = hash.as_u128();
    let folded = (h as u64) ^ ((h >> 64) as u64).rotate_left(29);
    folded.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Whether `hash` is in the sample kept by miniatures of sampling `rate`
/// (a power of two), and its mixed bits.
#[inline]
pub(super) fn sampled(hash: SequenceHash, rate_mask: u64) -> Option<u64> {
    let mixed = mix(hash);
    ((mixed >> 32) & rate_mask == 0).then_some(mixed)
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

/// Neighbours of an entry in one miniature's class list (`NIL` at the
/// ends).
#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
};

/// One sampled hash held by at least one miniature.
#[derive(Debug, Clone, Copy)]
struct Entry {
    /// The hash, mixed to 64 bits: a miniature only estimates a hit rate,
    /// and two sampled hashes share a mix with odds of 2^-64.
    key: u64,
    /// Tick of its last release.
    tick: i64,
    /// Its links in each miniature's list of its class (meaningful where
    /// its bit in `members` is set). A free entry keeps the next free
    /// entry in `links[0].next`.
    links: [Link; MINIS],
    /// Its position in the table, so an evicted entry is found without
    /// probing for it.
    position: u32,
    /// Class of its last release.
    class: u8,
    /// Bit `m` set while miniature `m` holds it.
    members: u8,
}

// Key, tick, five pairs of links, position, class and members: one
// 64-byte line.
const _: () = assert!(std::mem::size_of::<Entry>() == 64);
const _: () = assert!(MINIS <= 8, "members is a byte");

const FREE: Entry = Entry {
    key: 0,
    tick: 0,
    links: [UNLINKED; MINIS],
    position: 0,
    class: 0,
    members: 0,
};

/// One miniature's class lists, credits and hits.
#[derive(Debug, Clone, Copy)]
struct Mini {
    /// Oldest and newest entry of each class list (`NIL` when empty).
    fronts: [u32; CLASSES],
    backs: [u32; CLASSES],
    /// Each list's eviction priority: its front's release tick plus the
    /// class credit ([`EMPTY_HEAD`] plus the credit when empty), kept
    /// summed so a victim search reads eight numbers, not sixteen.
    priorities: [i64; CLASSES],
    /// Each class's credit in ticks at this miniature's scale.
    offsets: [i64; CLASSES],
    /// Entries it holds.
    len: u32,
    /// Hits since the last [`Miniatures::take_hits`].
    hits: u64,
}

/// [`MINIS`] miniature caches of equal size over one table of hashes.
#[derive(Debug, Clone)]
pub(super) struct Miniatures {
    entries: Vec<Entry>,
    /// Open addressing, linear probing: entry id or `NIL`.
    table: Vec<u32>,
    table_bits: u32,
    /// Entries handed out so far (reused through `free` once all are).
    used: u32,
    /// First free entry that was handed out before (`NIL` if none).
    free: u32,
    /// Blocks each miniature holds at most.
    slots: u32,
    minis: [Mini; MINIS],
}

impl Miniatures {
    /// Empty miniatures of `slots` blocks each (at least one).
    ///
    /// # Panics
    /// If the entries do not fit 32-bit links (a configuration error).
    pub(super) fn new(slots: usize) -> Self {
        let slots = slots.max(1);
        // Every miniature may hold different hashes, and a release adds
        // its hash before any miniature evicts.
        let entries = slots * MINIS + 1;
        assert!(entries < NIL as usize, "miniatures of {slots} slots");
        let table_bits = (entries * 2).next_power_of_two().trailing_zeros().max(1);
        Self {
            entries: vec![FREE; entries],
            table: vec![NIL; 1 << table_bits],
            table_bits,
            used: 0,
            free: NIL,
            slots: slots as u32,
            minis: [Mini {
                fronts: [NIL; CLASSES],
                backs: [NIL; CLASSES],
                priorities: [EMPTY_HEAD; CLASSES],
                offsets: [0; CLASSES],
                len: 0,
                hits: 0,
            }; MINIS],
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
                id if self.entries[id as usize].key == key => return (at, Some(id)),
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
            let home = self.home(self.entries[id as usize].key);
            // Move the entry back if its home is not in (at, next].
            let distance_here = next.wrapping_sub(home) & mask;
            let distance_gap = next.wrapping_sub(at) & mask;
            if distance_here >= distance_gap {
                self.table[at] = id;
                self.entries[id as usize].position = at as u32;
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.table[at] = NIL;
    }

    /// Takes entry `id` out of miniature `m`'s list of its class.
    #[inline]
    fn unlink(&mut self, m: usize, id: u32) {
        let entry = &self.entries[id as usize];
        let Link { prev, next } = entry.links[m];
        let class = entry.class as usize;
        let mini = &mut self.minis[m];
        if prev == NIL {
            mini.fronts[class] = next;
            mini.priorities[class] = mini.offsets[class]
                + match next {
                    NIL => EMPTY_HEAD,
                    next => self.entries[next as usize].tick,
                };
        } else {
            self.entries[prev as usize].links[m].next = next;
        }
        if next == NIL {
            mini.backs[class] = prev;
        } else {
            self.entries[next as usize].links[m].prev = prev;
        }
    }

    /// Miniature `m` evicts its victim: the front of the list with the
    /// smallest priority. The entry leaves the table when no other
    /// miniature holds it.
    #[inline]
    fn evict(&mut self, m: usize) {
        let mini = &mut self.minis[m];
        let class = lowest(&mini.priorities);
        // A full miniature has a listed entry, and an empty list never
        // wins (its head is `EMPTY_HEAD`).
        let id = mini.fronts[class];
        if id == NIL {
            return;
        }
        let next = self.entries[id as usize].links[m].next;
        mini.fronts[class] = next;
        mini.priorities[class] = mini.offsets[class]
            + if next == NIL {
                mini.backs[class] = NIL;
                EMPTY_HEAD
            } else {
                let next = &mut self.entries[next as usize];
                next.links[m].prev = NIL;
                next.tick
            };
        mini.len -= 1;
        let victim = &mut self.entries[id as usize];
        victim.members &= !(1 << m);
        if victim.members == 0 {
            let position = victim.position as usize;
            victim.links[0].next = self.free;
            self.free = id;
            self.erase(position);
        }
    }

    /// Appends entry `id` (its tick and class already set) to miniature
    /// `m`'s list of its class.
    #[inline]
    fn push_back(&mut self, m: usize, id: u32) {
        let entry = &mut self.entries[id as usize];
        let (class, tick) = (entry.class as usize, entry.tick);
        let mini = &mut self.minis[m];
        let back = mini.backs[class];
        entry.links[m] = Link {
            prev: back,
            next: NIL,
        };
        entry.members |= 1 << m;
        if back == NIL {
            mini.fronts[class] = id;
            mini.priorities[class] = tick + mini.offsets[class];
        } else {
            self.entries[back as usize].links[m].next = id;
        }
        mini.backs[class] = id;
        mini.len += 1;
    }

    /// Sets miniature `m`'s credit of each class in ticks.
    pub(super) fn set_offsets(&mut self, m: usize, offsets: [i64; CLASSES]) {
        let mini = &mut self.minis[m];
        for (priority, (new, old)) in mini
            .priorities
            .iter_mut()
            .zip(offsets.iter().zip(&mini.offsets))
        {
            *priority += new - old;
        }
        mini.offsets = offsets;
    }

    /// Miniature `m`'s hits since the last call.
    pub(super) fn take_hits(&mut self, m: usize) -> u64 {
        std::mem::take(&mut self.minis[m].hits)
    }

    /// A sampled release of the hash mixed to `key` in `class` at `tick`:
    /// a hit in each miniature that still holds it, after which every
    /// miniature holds it at the back of its list (a miniature that did
    /// not, and is full, evicts first).
    pub(super) fn release(&mut self, key: u64, class: usize, tick: i64) {
        let id = match self.probe(key) {
            (_, Some(id)) => {
                let members = self.entries[id as usize].members;
                for m in 0..MINIS {
                    if members & (1 << m) != 0 {
                        self.minis[m].hits += 1;
                        self.unlink(m, id);
                        self.minis[m].len -= 1;
                    }
                }
                id
            }
            (at, None) => {
                let id = if self.free != NIL {
                    let id = self.free;
                    self.free = self.entries[id as usize].links[0].next;
                    id
                } else {
                    self.used += 1;
                    self.used - 1
                };
                let entry = &mut self.entries[id as usize];
                entry.key = key;
                entry.position = at as u32;
                entry.members = 0;
                self.table[at] = id;
                id
            }
        };
        let entry = &mut self.entries[id as usize];
        entry.tick = tick;
        entry.class = class as u8;
        // Every miniature now takes it: one that no longer held it makes
        // room first (never by evicting it, since it is not listed there).
        let members = entry.members;
        for m in 0..MINIS {
            if members & (1 << m) == 0 && self.minis[m].len == self.slots {
                self.evict(m);
            }
            self.push_back(m, id);
        }
    }

    /// Every miniature lists each entry it holds once, in its class, in
    /// release order, with current head priorities and at most `slots`
    /// entries; every held entry is found by its hash at its recorded
    /// position; free entries are neither held nor in the table.
    pub(super) fn validate(&self) -> Result<(), String> {
        let mut held = vec![0u8; self.entries.len()];
        for (m, mini) in self.minis.iter().enumerate() {
            let mut listed = 0u32;
            for class in 0..CLASSES {
                let (mut prev, mut cur) = (NIL, mini.fronts[class]);
                let mut last = i64::MIN;
                while cur != NIL {
                    let Some(entry) = self.entries.get(cur as usize) else {
                        return Err(format!("admission miniature {m}: link to entry {cur}"));
                    };
                    listed += 1;
                    if cur >= self.used || listed > mini.len || held[cur as usize] & (1 << m) != 0 {
                        return Err(format!(
                            "admission miniature {m}: entry {cur} listed wrongly"
                        ));
                    }
                    held[cur as usize] |= 1 << m;
                    if entry.class as usize != class || entry.links[m].prev != prev {
                        return Err(format!("admission miniature {m}: entry {cur} badly linked"));
                    }
                    if entry.tick < last {
                        return Err(format!("admission miniature {m}: list out of order"));
                    }
                    last = entry.tick;
                    (prev, cur) = (cur, entry.links[m].next);
                }
                if mini.backs[class] != prev {
                    return Err(format!("admission miniature {m}: stale list back"));
                }
                let head = match mini.fronts[class] {
                    NIL => EMPTY_HEAD,
                    front => self.entries[front as usize].tick,
                };
                if mini.priorities[class] != head + mini.offsets[class] {
                    return Err(format!("admission miniature {m}: stale head tick"));
                }
            }
            if listed != mini.len || mini.len > self.slots {
                return Err(format!("admission miniature {m}: count mismatch"));
            }
        }
        let mut live = 0usize;
        for id in 0..self.used {
            let entry = &self.entries[id as usize];
            if entry.members != held[id as usize] {
                return Err(format!("admission miniatures: entry {id} members mismatch"));
            }
            if entry.members == 0 {
                continue;
            }
            live += 1;
            if self.probe(entry.key).1 != Some(id) {
                return Err(format!("admission miniatures: entry {id} not in the table"));
            }
            if self.table[entry.position as usize] != id {
                return Err(format!(
                    "admission miniatures: entry {id} has a stale position"
                ));
            }
        }
        let mut free = 0usize;
        let mut cur = self.free;
        while cur != NIL {
            free += 1;
            if free > self.used as usize || self.entries[cur as usize].members != 0 {
                return Err("admission miniatures: bad free list".into());
            }
            cur = self.entries[cur as usize].links[0].next;
        }
        if live + free != self.used as usize {
            return Err("admission miniatures: entries lost".into());
        }
        let in_table = self.table.iter().filter(|&&id| id != NIL).count();
        if in_table != live {
            return Err("admission miniatures: table entry count mismatch".into());
        }
        Ok(())
    }
}
