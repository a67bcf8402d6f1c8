//! A hash index that stores block ids only.
//!
//! Whoever indexes blocks by a key derived from their hash (the store by the
//! hash itself, the lineage backend by a block's `(position, fragment)` key)
//! already keeps each block's hash in a per-block array, so the index need
//! not keep a second copy of the key: the table holds `u32` ids, and a
//! lookup compares the key with the key of the block an id names (a block
//! the caller reads next anyway).
//!
//! The table is sized once, for the most ids it will hold (a store's or
//! backend's block count), and is laid out for that: groups of twelve
//! slots, each group one cache line holding its ids, a tag byte per slot
//! and an overflow count ([`group`]). Its group count is the smallest
//! prime that keeps the load at 4/5 or less (1/2 for tables under 2^19
//! ids, see [`ROOMY_BELOW`]), not a power of two, so a
//! table of 1M ids takes about 6.7 bytes per id where hashbrown's
//! power-of-two table (load at most 7/8) took 10: 1M ids need 2^21
//! five-byte buckets there.
//! A key's mixed hash picks its home group by a multiply ("fastrange": the
//! high half of `mixed × groups`), its tag by its low byte and, should the
//! home group be full, a step between groups (double hashing; any step
//! visits every group, since their count is prime).
//!
//! Every method takes `key_of`, the key of the block an id names; it must
//! return, for every id in the index, the key the id was inserted under.

mod group;

use std::collections::TryReserveError;
use std::fmt;
use std::marker::PhantomData;

use self::group::{class, tag, Group, SLOTS};
use crate::prehashed::mix128;
use crate::SequenceHash;

/// A key an [`IdIndex`] files ids under.
pub(crate) trait IndexKey: Copy + Eq {
    /// The key, mixed (see [`crate::prehashed`]).
    fn mixed(self) -> u64;
}

impl IndexKey for SequenceHash {
    #[inline]
    fn mixed(self) -> u64 {
        mix128(self.as_u128())
    }
}

impl IndexKey for u64 {
    #[inline]
    fn mixed(self) -> u64 {
        mix128(u128::from(self))
    }
}

/// Tables for fewer ids than this are sized for a load of 1/2 instead of
/// 4/5. At 1/2 a lookup under churn visits one group, at 4/5 about 1.2 (a
/// hit) or 1.3 (a miss); while a table fits in the CPU's last-level cache
/// a probe's cost is the groups it visits, and churn at 100K–400K blocks
/// measured 20–27% slower at 4/5 (about as fast as hashbrown at 1/2). From
/// 2^19 ids on, where a table at 1/2 would take over 5 MB and every group
/// is a miss to memory that prefetching overlaps, the bytes count more:
/// 4/5 saves 4 bytes per id.
const ROOMY_BELOW: usize = 1 << 19;

/// The groups a table sized for `capacity` ids has: enough slots for a
/// load of at most 4/5 (1/2 below [`ROOMY_BELOW`] ids), rounded up to a
/// prime count of at least 2.
fn groups_for(capacity: usize) -> usize {
    groups_at_load(capacity, capacity >= ROOMY_BELOW)
}

/// The groups for `capacity` ids at a load of at most 4/5 if `dense`, 1/2
/// otherwise. Why 4/5 and not 7/8, which would save 0.6 bytes per id:
/// under churn at 7/8 a third of the ids sit past their home group, and
/// at 4M blocks those second groups are cache misses; at 4/5 about one in
/// five does. Churn at 4M chain blocks measured 15% slower than with
/// hashbrown at 7/8 and 10% faster at 4/5.
fn groups_at_load(capacity: usize, dense: bool) -> usize {
    let slots = if dense {
        capacity.saturating_mul(5).div_ceil(4)
    } else {
        capacity.saturating_mul(2)
    };
    next_prime(slots.div_ceil(SLOTS).max(2))
}

/// The smallest prime at or above `n` (`n` ≥ 2), by trial division: run
/// once per table, and a table of 4G ids has about 2^29 groups, so at
/// most 2^14.5 divisions per candidate.
fn next_prime(n: usize) -> usize {
    let is_prime = |n: usize| {
        n >= 2
            && (n < 4 || n % 2 != 0)
            && (3..)
                .step_by(2)
                .take_while(|d| d * d <= n)
                .all(|d| n % d != 0)
    };
    (n..).find(|&c| is_prime(c)).unwrap_or(n)
}

/// The ids a table of `groups` groups holds before it grows: 4/5 of its
/// slots, never all of them, so an insertion always finds an empty slot.
fn max_len(groups: usize) -> usize {
    groups * SLOTS * 4 / 5
}

/// The groups a key's probe visits: its home group, then a fixed step on,
/// wrapping around; every group once in `groups` visits.
#[derive(Clone, Copy)]
struct Probe {
    at: usize,
    mixed: u64,
    groups: usize,
}

impl Probe {
    #[inline(always)]
    fn new(mixed: u64, groups: usize) -> Self {
        Probe {
            at: home(mixed, groups),
            mixed,
            groups,
        }
    }

    /// On to the next group. The step is computed here, not up front: most
    /// probes end in their home group.
    #[inline(always)]
    fn advance(&mut self) {
        // 32 bits of the hash that neither the home group (the high bits)
        // nor the tag (the low byte) is taken from, scaled onto 1..groups.
        let step =
            1 + ((((self.mixed >> 8) & 0xFFFF_FFFF) * (self.groups as u64 - 1)) >> 32) as usize;
        self.at += step;
        if self.at >= self.groups {
            self.at -= self.groups;
        }
    }
}

/// The home group of a key: `mixed / 2^64` of the way through the table.
#[inline(always)]
fn home(mixed: u64, groups: usize) -> usize {
    ((u128::from(mixed) * groups as u128) >> 64) as usize
}

/// Block ids, found by key through the blocks they name.
pub(crate) struct IdIndex<K> {
    groups: Box<[Group]>,
    len: usize,
    /// Ids held before an insertion grows the table (see [`max_len`]).
    max_len: usize,
    _key: PhantomData<fn(K)>,
}

impl<K> Clone for IdIndex<K> {
    fn clone(&self) -> Self {
        IdIndex {
            groups: self.groups.clone(),
            len: self.len,
            max_len: self.max_len,
            _key: PhantomData,
        }
    }
}

impl<K> fmt::Debug for IdIndex<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IdIndex")
            .field("len", &self.len)
            .field("groups", &self.groups.len())
            .finish()
    }
}

impl<K: IndexKey> IdIndex<K> {
    /// An index that holds `capacity` ids without growing, or the
    /// allocation error.
    pub(crate) fn try_with_capacity(capacity: usize) -> Result<Self, TryReserveError> {
        let count = groups_for(capacity);
        // Probed at random: backed by huge pages where the kernel allows
        // (see `huge_pages`).
        let mut groups = crate::huge_pages::try_reserve_huge(count)?;
        groups.resize(count, Group::EMPTY);
        Ok(IdIndex {
            groups: groups.into_boxed_slice(),
            len: 0,
            max_len: max_len(count),
            _key: PhantomData,
        })
    }

    /// An index that holds `capacity` ids without growing.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self::with_groups(groups_for(capacity))
    }

    /// An index of `count` groups.
    fn with_groups(count: usize) -> Self {
        IdIndex {
            groups: crate::huge_pages::filled_huge(Group::EMPTY, count).into_boxed_slice(),
            len: 0,
            max_len: max_len(count),
            _key: PhantomData,
        }
    }

    /// The number of ids in the index.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the index is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The id filed under `key`.
    #[inline(always)]
    pub(crate) fn get(&self, key: K, key_of: impl Fn(u32) -> K) -> Option<u32> {
        self.find(key, key.mixed(), &key_of)
    }

    /// The id filed under `key`, whose mixed hash is `mixed`. The home
    /// group inline, the rest of the probe (rare) out of line: that kept
    /// the lookups of small caches as fast as before the table was ours.
    #[inline(always)]
    fn find(&self, key: K, mixed: u64, key_of: &impl Fn(u32) -> K) -> Option<u32> {
        let group = self.groups.get(home(mixed, self.groups.len()))?;
        for slot in group.matching(tag(mixed)) {
            let id = group.id(slot);
            if key_of(id) == key {
                return Some(id);
            }
        }
        if group.overflow(class(mixed)) == 0 {
            return None;
        }
        self.find_past_home(key, mixed, key_of)
    }

    /// [`find`](Self::find) in the groups after the home group.
    #[inline(never)]
    fn find_past_home(&self, key: K, mixed: u64, key_of: &impl Fn(u32) -> K) -> Option<u32> {
        let (tag, class) = (tag(mixed), class(mixed));
        let mut probe = Probe::new(mixed, self.groups.len());
        // A probe ends at a group no filed id of the key's class passed
        // through; the bound only matters should every group on the way
        // count one.
        for _ in 1..self.groups.len() {
            probe.advance();
            let group = &self.groups[probe.at];
            for slot in group.matching(tag) {
                let id = group.id(slot);
                if key_of(id) == key {
                    return Some(id);
                }
            }
            if group.overflow(class) == 0 {
                return None;
            }
        }
        None
    }

    /// Files `id` under `key`, which must not be in the index yet.
    #[inline]
    pub(crate) fn insert(&mut self, key: K, id: u32, key_of: impl Fn(u32) -> K) {
        debug_assert!(self.get(key, &key_of).is_none(), "key indexed twice");
        self.file(key.mixed(), id, &key_of);
    }

    /// The id filed under `key`, or, if there is none, files `id` under it
    /// and returns `None`: one walk, which remembers the first empty slot
    /// it passes. `key_of(id)` must already return `key`.
    #[inline]
    pub(crate) fn find_or_insert(
        &mut self,
        key: K,
        id: u32,
        key_of: impl Fn(u32) -> K,
    ) -> Option<u32> {
        let mixed = key.mixed();
        let (tag, class) = (tag(mixed), class(mixed));
        let start = Probe::new(mixed, self.groups.len());
        let mut probe = start;
        // The first empty slot on the way: groups passed before it, group
        // and slot.
        let mut free = None;
        for passed in 0..self.groups.len() {
            let group = &self.groups[probe.at];
            for slot in group.matching(tag) {
                let other = group.id(slot);
                if key_of(other) == key {
                    return Some(other);
                }
            }
            if free.is_none() {
                free = group.first_empty().map(|slot| (passed, probe.at, slot));
            }
            if group.overflow(class) == 0 {
                break;
            }
            probe.advance();
        }
        match free {
            Some((passed, at, slot)) if self.len < self.max_len => {
                self.groups[at].fill(slot, tag, id);
                self.len += 1;
                let mut back = start;
                for _ in 0..passed {
                    self.groups[back.at].add_overflow(class);
                    back.advance();
                }
            }
            // Full groups all the way (or a table to grow): file it anew.
            _ => self.file(mixed, id, &key_of),
        }
        None
    }

    /// Files `id` in the first group along its probe with an empty slot,
    /// counting it as overflow in each full group it passes.
    #[inline(always)]
    fn file(&mut self, mixed: u64, id: u32, key_of: &impl Fn(u32) -> K) {
        let at = home(mixed, self.groups.len());
        if self.len < self.max_len {
            if let Some(group) = self.groups.get_mut(at) {
                if let Some(slot) = group.first_empty() {
                    group.fill(slot, tag(mixed), id);
                    self.len += 1;
                    return;
                }
            }
        }
        self.file_past_home(mixed, id, key_of);
    }

    /// [`file`](Self::file) when the home group is full (or the table
    /// must grow first).
    #[inline(never)]
    fn file_past_home(&mut self, mixed: u64, id: u32, key_of: &impl Fn(u32) -> K) {
        if self.len >= self.max_len {
            self.grow(key_of);
        }
        let (tag, class) = (tag(mixed), class(mixed));
        let mut probe = Probe::new(mixed, self.groups.len());
        // Ends: fewer ids than slots are filed (`max_len`), and the probe
        // visits every group (their count is prime).
        loop {
            let group = &mut self.groups[probe.at];
            if let Some(slot) = group.first_empty() {
                group.fill(slot, tag, id);
                self.len += 1;
                return;
            }
            group.add_overflow(class);
            probe.advance();
        }
    }

    /// Refiles every id in a table twice the size. Only reached when more
    /// ids are filed than the index was sized for, which the store and the
    /// lineage backend never do (a block is filed at most once).
    #[cold]
    #[inline(never)]
    fn grow(&mut self, key_of: &impl Fn(u32) -> K) {
        let dense = self.groups.len() >= groups_at_load(ROOMY_BELOW, true);
        let capacity = self.max_len.saturating_mul(2).max(SLOTS);
        let mut bigger = Self::with_groups(groups_at_load(capacity, dense));
        for id in self.ids() {
            bigger.file(key_of(id).mixed(), id, key_of);
        }
        *self = bigger;
    }

    /// Hints that `key` will be looked up, filed or removed soon: starts
    /// loading the cache lines of the first two groups of its probe (tags
    /// and ids), so that a batch of keys prefetched first overlaps their
    /// misses (see [`crate::prefetch`]). The second group is the one a
    /// probe goes on to when the home group is full, which in a table
    /// near its load of 4/5 under churn is about one probe in five.
    #[inline]
    pub(crate) fn prefetch(&self, key: K) {
        let mut probe = Probe::new(key.mixed(), self.groups.len());
        if let Some(group) = self.groups.get(probe.at) {
            crate::prefetch::prefetch(group);
        }
        probe.advance();
        if let Some(group) = self.groups.get(probe.at) {
            crate::prefetch::prefetch(group);
        }
    }

    /// Removes `id`, filed under `key`; whether it was there.
    #[inline]
    pub(crate) fn remove_id(&mut self, key: K, id: u32) -> bool {
        let mixed = key.mixed();
        let at = home(mixed, self.groups.len());
        let Some(group) = self.groups.get_mut(at) else {
            return false;
        };
        if let Some(slot) = group
            .matching(tag(mixed))
            .find(|&slot| group.id(slot) == id)
        {
            group.clear(slot);
            self.len -= 1;
            return true;
        }
        if group.overflow(class(mixed)) == 0 {
            return false;
        }
        self.remove_past_home(mixed, id)
    }

    /// [`remove_id`](Self::remove_id) in the groups after the home group.
    #[inline(never)]
    fn remove_past_home(&mut self, mixed: u64, id: u32) -> bool {
        let (tag, class) = (tag(mixed), class(mixed));
        let start = Probe::new(mixed, self.groups.len());
        let mut probe = start;
        for passed in 1..self.groups.len() {
            probe.advance();
            let group = &mut self.groups[probe.at];
            if let Some(slot) = group.matching(tag).find(|&slot| group.id(slot) == id) {
                group.clear(slot);
                self.len -= 1;
                // Take back the overflow its insertion counted in the
                // groups before this one.
                let mut back = start;
                for _ in 0..passed {
                    self.groups[back.at].sub_overflow(class);
                    back.advance();
                }
                return true;
            }
            if group.overflow(class) == 0 {
                return false;
            }
        }
        false
    }

    /// Every id in the index, in no particular order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups
            .iter()
            .flat_map(|group| group.filed().map(|slot| group.id(slot)))
    }

    /// Bytes the table holds on the heap.
    #[cfg(test)]
    pub(crate) fn allocation_size(&self) -> usize {
        std::mem::size_of_val(&*self.groups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cell::Cell;
    use std::collections::HashMap;

    impl<K: IndexKey> IdIndex<K> {
        /// Checks the table's bookkeeping against its contents: the
        /// length, every id reachable by its key, and every group's
        /// overflow count equal to the ids whose probe passed it.
        fn check(&self, key_of: impl Fn(u32) -> K) {
            let groups = self.groups.len();
            let mut overflow = vec![[0u32; 8]; groups];
            let mut len = 0;
            for (at, group) in self.groups.iter().enumerate() {
                for slot in group.filed() {
                    let id = group.id(slot);
                    len += 1;
                    let mixed = key_of(id).mixed();
                    let mut probe = Probe::new(mixed, groups);
                    let mut steps = 0;
                    while probe.at != at {
                        overflow[probe.at][class(mixed) as usize] += 1;
                        probe.advance();
                        steps += 1;
                        assert!(steps < groups, "id {id} off its probe");
                    }
                    assert!(
                        group.matching(tag(mixed)).any(|s| s == slot),
                        "id {id} untagged"
                    );
                    assert_eq!(self.get(key_of(id), &key_of), Some(id));
                }
            }
            assert_eq!(len, self.len, "length");
            for (at, group) in self.groups.iter().enumerate() {
                for (class, &count) in overflow[at].iter().enumerate() {
                    // A saturated count stays (see `Group`).
                    if !group.stuck(class as u32) {
                        assert_eq!(
                            group.overflow(class as u32),
                            count,
                            "group {at}, class {class}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn group_counts_are_prime_and_keep_the_load_in_bounds() {
        for capacity in [
            0,
            1,
            11,
            12,
            100,
            4096,
            65_536,
            (1 << 19) - 1,
            1 << 19,
            1 << 20,
            3_000_001,
        ] {
            let groups = groups_for(capacity);
            let dense = capacity >= ROOMY_BELOW;
            assert_eq!(groups, groups_at_load(capacity, dense));
            assert!(groups >= 2);
            assert!((2..groups)
                .take_while(|d| d * d <= groups)
                .all(|d| groups % d != 0));
            assert!(max_len(groups) >= capacity, "capacity {capacity}");
            assert!(max_len(groups) < groups * SLOTS);
            // The smallest such prime: a few groups more than needed.
            let slots = if dense {
                (capacity * 5).div_ceil(4)
            } else {
                capacity * 2
            };
            let needed = slots.div_ceil(SLOTS).max(2);
            assert!(groups - needed < 200, "{groups} groups for {needed}");
        }
        assert_eq!(next_prime(2), 2);
        assert_eq!(next_prime(8), 11);
        assert_eq!(next_prime(95_326), 95_327);
    }

    #[test]
    fn an_entry_costs_about_six_bytes() {
        let index = IdIndex::<SequenceHash>::with_capacity(1 << 20);
        // 64-byte groups of 12 slots, at most 4/5 full: 6.7 bytes per id.
        let per_block = index.allocation_size() as f64 / (1 << 20) as f64;
        assert!(per_block < 6.7, "{per_block} bytes per block");
    }

    #[test]
    fn filling_to_capacity_keeps_the_table() {
        let n = 1000;
        let slots: Vec<SequenceHash> = (0..n as u64).map(SequenceHash::root).collect();
        let key_of = |id: u32| slots[id as usize];
        let mut index = IdIndex::<SequenceHash>::with_capacity(n);
        let table = index.groups.as_ptr();
        for id in 0..n as u32 {
            index.insert(slots[id as usize], id, key_of);
        }
        assert_eq!(index.groups.as_ptr(), table, "grew within its capacity");
        assert_eq!(index.len(), n);
        index.check(key_of);
    }

    /// Each key family spreads over the groups of a table sized for it
    /// as random keys would: at a load of 4/5 about nine in ten ids sit
    /// in their home group (the one `prefetch` loads), and a lookup
    /// compares about one key (tags rule out the others).
    fn assert_spreads(family: &str, keys: Vec<SequenceHash>) {
        let n = keys.len();
        let key_of = |id: u32| keys[id as usize];
        // Dense whatever `n`: the load of a large table.
        let mut index = IdIndex::<SequenceHash>::with_groups(groups_at_load(n, true));
        for id in 0..n as u32 {
            index.insert(keys[id as usize], id, key_of);
        }
        let groups = index.groups.len();
        let mut at_home = 0;
        for (at, group) in index.groups.iter().enumerate() {
            for slot in group.filed() {
                let id = group.id(slot);
                if home(keys[id as usize].mixed(), groups) == at {
                    at_home += 1;
                }
            }
        }
        let share = at_home as f64 / n as f64;
        assert!(
            share > 0.9,
            "{family}: {share:.3} of ids in their home group"
        );
        let compares = Cell::new(0usize);
        let counting = |id: u32| {
            compares.set(compares.get() + 1);
            keys[id as usize]
        };
        for (id, &key) in keys.iter().enumerate() {
            assert_eq!(index.get(key, counting), Some(id as u32));
        }
        let per_lookup = compares.get() as f64 / n as f64;
        assert!(
            per_lookup < 1.04,
            "{family}: {per_lookup:.3} compares per lookup"
        );
    }

    const KEYS: usize = if cfg!(miri) { 1 << 8 } else { 1 << 18 };

    #[test]
    fn first_blocks_spread_over_groups() {
        assert_spreads(
            "first blocks",
            (0..KEYS as u64).map(SequenceHash::root).collect(),
        );
    }

    #[test]
    fn chains_spread_over_groups() {
        let chains = (0..(KEYS / 32) as u64)
            .flat_map(|c| {
                (0..32u64).scan(None::<SequenceHash>, move |last, i| {
                    let next = match *last {
                        None => SequenceHash::root(c << 8 | i),
                        Some(parent) => parent.extend(c << 8 | i),
                    };
                    *last = Some(next);
                    Some(next)
                })
            })
            .collect();
        assert_spreads("short chains", chains);
        let long = (0..KEYS as u64)
            .scan(None::<SequenceHash>, |last, i| {
                let next = last.map_or(SequenceHash::root(i), |p: SequenceHash| p.extend(i));
                *last = Some(next);
                Some(next)
            })
            .collect();
        assert_spreads("one long chain", long);
    }

    /// `prefetch` loads the group a key's probe starts at, the one that
    /// holds it at this load (or, in a full group, the first of its
    /// probe). Run under miri by `cargo +nightly miri test -p kvbm --lib
    /// id_index`, which checks the prefetch hints are plain addresses.
    #[test]
    fn prefetch_loads_the_home_group() {
        let n = if cfg!(miri) { 64 } else { 4096 };
        let slots: Vec<SequenceHash> = (0..n as u64).map(SequenceHash::root).collect();
        let key_of = |id: u32| slots[id as usize];
        let mut index = IdIndex::<SequenceHash>::with_capacity(n);
        index.prefetch(slots[0]);
        for id in 0..n as u32 {
            index.prefetch(slots[id as usize]);
            if id % 2 == 0 {
                index.insert(slots[id as usize], id, key_of);
            } else {
                assert_eq!(index.find_or_insert(slots[id as usize], id, key_of), None);
            }
        }
        let groups = index.groups.len();
        let mut at_home = 0;
        for (id, &key) in slots.iter().enumerate() {
            index.prefetch(key);
            let first = Probe::new(key.mixed(), groups).at;
            assert_eq!(first, home(key.mixed(), groups));
            if index.groups[first]
                .filed()
                .any(|s| index.groups[first].id(s) == id as u32)
            {
                at_home += 1;
            }
            assert_eq!(index.get(key, key_of), Some(id as u32));
        }
        assert!(
            at_home * 10 >= n * 8,
            "{at_home} of {n} keys in their home group"
        );
        let clone = index.clone();
        assert_eq!(clone.get(slots[5], key_of), Some(5));
        clone.check(key_of);
    }

    /// A key whose mixed hash the test chooses: `Crowded(k)` lands in one
    /// of three home groups with one of four tags and one of two overflow
    /// classes, so groups overflow (their counts saturate), probes run long
    /// and tags collide all the time.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    struct Crowded(u16);

    impl IndexKey for Crowded {
        fn mixed(self) -> u64 {
            let k = u64::from(self.0);
            (k % 3) << 62 | (k % 2) << 40 | (k % 7) << 37 | (k % 5)
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        FindOrInsert(u8),
        Remove(u8),
        Get(u8),
    }

    impl Op {
        /// The same operation on key `k % n`.
        fn key_below(self, n: u8) -> Op {
            match self {
                Op::Insert(k) => Op::Insert(k % n),
                Op::FindOrInsert(k) => Op::FindOrInsert(k % n),
                Op::Remove(k) => Op::Remove(k % n),
                Op::Get(k) => Op::Get(k % n),
            }
        }
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Insert),
            any::<u8>().prop_map(Op::FindOrInsert),
            any::<u8>().prop_map(Op::Remove),
            any::<u8>().prop_map(Op::Get),
        ]
    }

    /// Applies `ops` to `index` and to a map from key to id, checking
    /// that they agree after each; key `k` is `keys(k)`, its id `k`.
    fn run_against_a_map<K: IndexKey + std::hash::Hash + std::fmt::Debug>(
        index: &mut IdIndex<K>,
        keys: impl Fn(u32) -> K,
        ops: &[Op],
        check_every: usize,
    ) -> Result<(), TestCaseError> {
        let mut model: HashMap<K, u32> = HashMap::new();
        for (n, op) in ops.iter().enumerate() {
            match *op {
                Op::Insert(k) => {
                    let key = keys(k.into());
                    if let std::collections::hash_map::Entry::Vacant(e) = model.entry(key) {
                        e.insert(k.into());
                        index.insert(key, k.into(), &keys);
                    }
                }
                Op::FindOrInsert(k) => {
                    let key = keys(k.into());
                    let before = model.get(&key).copied();
                    model.entry(key).or_insert(k.into());
                    prop_assert_eq!(index.find_or_insert(key, k.into(), &keys), before);
                }
                Op::Remove(k) => {
                    let key = keys(k.into());
                    let filed = index.get(key, &keys);
                    if let Some(id) = filed {
                        prop_assert!(index.remove_id(key, id));
                        prop_assert!(!index.remove_id(key, id));
                    } else {
                        prop_assert!(!index.remove_id(key, k.into()));
                    }
                    prop_assert_eq!(filed, model.remove(&key));
                }
                Op::Get(k) => {
                    let key = keys(k.into());
                    prop_assert_eq!(index.get(key, &keys), model.get(&key).copied());
                }
            }
            prop_assert_eq!(index.len(), model.len());
            if n % check_every == 0 {
                index.check(&keys);
            }
        }
        index.check(&keys);
        let mut ids: Vec<u32> = index.ids().collect();
        ids.sort_unstable();
        let mut expected: Vec<u32> = model.values().copied().collect();
        expected.sort_unstable();
        prop_assert_eq!(ids, expected);
        Ok(())
    }

    /// Mostly deletes and inserts on a table sized for all 256 keys, so
    /// that it runs near full and every overflow count goes up and down.
    fn churn() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => any::<u8>().prop_map(Op::Insert),
            2 => any::<u8>().prop_map(Op::FindOrInsert),
            4 => any::<u8>().prop_map(Op::Remove),
            1 => any::<u8>().prop_map(Op::Get),
        ]
    }

    proptest! {
        /// Slot `i` of 256 holds the hash of key `i`; the index must agree
        /// with a map from hash to id through any sequence of operations,
        /// including growth past its initial capacity.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec(op(), 1..400)) {
            let slots: Vec<SequenceHash> = (0..256u64)
                .map(|k| if k % 2 == 0 { SequenceHash::root(k) } else { SequenceHash::root(k / 2).extend(k) })
                .collect();
            let mut index = IdIndex::<SequenceHash>::with_capacity(4);
            run_against_a_map(&mut index, |id| slots[id as usize], &ops, 1)?;
        }
    }

    proptest! {
        // Long runs, each checked often: fewer of them.
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// Keys crowded into three home groups with colliding tags: long
        /// probes, overflow counts in every group, and thousands of
        /// deletions that must leave no trace (no tombstones, counts back
        /// to what the remaining ids need).
        #[test]
        fn crowded_keys_agree_with_a_map(ops in proptest::collection::vec(churn(), 1..2000)) {
            let mut index = IdIndex::<Crowded>::with_capacity(256);
            run_against_a_map(&mut index, |id| Crowded(id as u16), &ops, 16)?;
        }

        /// The same churn on 220 hashed keys in a table sized for them at
        /// the load of large tables (23 groups, a prime, hold 220 ids at
        /// 4/5), so that it runs at every load up to that.
        #[test]
        fn churn_near_capacity_agrees_with_a_map(ops in proptest::collection::vec(churn(), 1..3000)) {
            let slots: Vec<SequenceHash> = (0..220u64).map(SequenceHash::root).collect();
            let mut index = IdIndex::<SequenceHash>::with_groups(groups_at_load(220, true));
            prop_assert_eq!((index.groups.len(), index.max_len), (23, 220));
            let ops: Vec<Op> = ops.into_iter().map(|op| op.key_below(220)).collect();
            let table = index.groups.as_ptr();
            run_against_a_map(&mut index, |id| slots[id as usize], &ops, 16)?;
            prop_assert_eq!(index.groups.as_ptr(), table, "grew within its capacity");
        }
    }

    /// Removing every id leaves every group as it started.
    #[test]
    fn removing_everything_leaves_an_empty_table() {
        let mut index = IdIndex::<Crowded>::with_capacity(200);
        let key_of = |id: u32| Crowded(id as u16);
        for round in 0..3u32 {
            for id in 0..200 {
                index.insert(Crowded(id as u16), id, key_of);
            }
            index.check(key_of);
            for id in (0..200).rev().filter(|id| (id + round) % 2 == 0) {
                assert!(index.remove_id(Crowded(id as u16), id));
            }
            for id in (0..200).filter(|id| (id + round) % 2 == 1) {
                assert!(index.remove_id(Crowded(id as u16), id));
            }
            assert!(index.is_empty());
            for group in index.groups.iter() {
                assert!((0..8).all(|class| group.overflow(class) == 0 || group.stuck(class)));
                assert_eq!(group.filed().count(), 0);
            }
        }
    }
}
