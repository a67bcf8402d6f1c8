//! A hash index that stores block ids only.
//!
//! Whoever indexes blocks by a key derived from their hash (the store by the
//! hash itself, the lineage backend by a block's `(position, fragment)` key)
//! already keeps each block's hash in a per-block array, so the index need
//! not keep a second copy of the key: the table holds `u32` ids, and a
//! lookup compares the key with the key of the block an id names (a block
//! the caller reads next anyway). With hashbrown's one control byte per
//! bucket, an entry costs 5 bytes per bucket instead of 33 for a
//! `HashMap<SequenceHash, u32>`, whose `u128` key pads each entry to 32.
//!
//! Every method takes `key_of`, the key of the block an id names; it must
//! return, for every id in the index, the key the id was inserted under.

use std::marker::PhantomData;

use hashbrown::HashTable;

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

/// Block ids, found by key through the blocks they name.
#[derive(Debug)]
pub(crate) struct IdIndex<K> {
    table: HashTable<u32>,
    /// Where a key's probe starts in memory, for [`prefetch`](Self::prefetch).
    probe: ProbeHint,
    _key: PhantomData<fn(K)>,
}

/// The address of the table's control bytes and its bucket mask, learned
/// from the last insert: hashbrown keeps a table's control bytes (one per
/// bucket) in one run and its buckets just below them, bucket `i` at
/// `i + 1` entries below the control bytes' start, and a key's probe
/// starts at bucket `hash & mask`. Only ever used as a prefetch hint: the
/// addresses are computed, never dereferenced, so a hint that is stale (the
/// table moved) or wrong (hashbrown changed its layout) costs a useless
/// prefetch and nothing else. `probe_addresses_follow_the_table_layout`
/// checks the layout against the hashbrown in use.
#[derive(Debug, Clone, Copy, Default)]
struct ProbeHint {
    /// Address of control byte 0; 0 while unknown.
    ctrl: usize,
    mask: usize,
}

impl ProbeHint {
    /// The hint after an insert filed an entry at `addr` in bucket `index`.
    #[inline]
    fn learn(table: &HashTable<u32>, index: usize, addr: *const u32) -> Self {
        ProbeHint {
            ctrl: (addr as usize).wrapping_add((index + 1) * std::mem::size_of::<u32>()),
            mask: table.num_buckets().wrapping_sub(1),
        }
    }

    /// The control byte and the bucket where the probe for `mixed` starts.
    #[inline]
    fn start(self, mixed: u64) -> (usize, usize) {
        let index = mixed as usize & self.mask;
        (
            self.ctrl.wrapping_add(index),
            self.ctrl
                .wrapping_sub((index + 1) * std::mem::size_of::<u32>()),
        )
    }
}

impl<K> Clone for IdIndex<K> {
    fn clone(&self) -> Self {
        IdIndex {
            table: self.table.clone(),
            // The clone's table lives elsewhere: learned at its first insert.
            probe: ProbeHint::default(),
            _key: PhantomData,
        }
    }
}

impl<K: IndexKey> IdIndex<K> {
    /// An index that holds `capacity` ids without growing, or the
    /// allocation error.
    pub(crate) fn try_with_capacity(capacity: usize) -> Result<Self, hashbrown::TryReserveError> {
        let mut table = HashTable::new();
        table.try_reserve(capacity, |&_| 0)?;
        Ok(IdIndex {
            table,
            probe: ProbeHint::default(),
            _key: PhantomData,
        })
    }

    /// An index that holds `capacity` ids without growing.
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        IdIndex {
            table: HashTable::with_capacity(capacity),
            probe: ProbeHint::default(),
            _key: PhantomData,
        }
    }

    /// The number of ids in the index.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether the index is empty.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The id filed under `key`.
    #[inline(always)]
    pub(crate) fn get(&self, key: K, key_of: impl Fn(u32) -> K) -> Option<u32> {
        self.table
            .find(key.mixed(), |&id| key_of(id) == key)
            .copied()
    }

    /// Files `id` under `key`, which must not be in the index yet.
    #[inline]
    pub(crate) fn insert(&mut self, key: K, id: u32, key_of: impl Fn(u32) -> K) {
        debug_assert!(self.get(key, &key_of).is_none(), "key indexed twice");
        let entry = self
            .table
            .insert_unique(key.mixed(), id, |&other| key_of(other).mixed());
        let (index, addr) = (entry.bucket_index(), entry.get() as *const u32);
        self.probe = ProbeHint::learn(&self.table, index, addr);
    }

    /// The id filed under `key`, or, if there is none, files `id` under it
    /// and returns `None`: one probe where `get` then `insert` take two.
    /// `key_of(id)` must already return `key`.
    #[inline]
    pub(crate) fn find_or_insert(
        &mut self,
        key: K,
        id: u32,
        key_of: impl Fn(u32) -> K,
    ) -> Option<u32> {
        let entry = self.table.entry(
            key.mixed(),
            |&other| key_of(other) == key,
            |&other| key_of(other).mixed(),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => Some(*found.get()),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let entry = vacant.insert(id);
                let (index, addr) = (entry.bucket_index(), entry.get() as *const u32);
                self.probe = ProbeHint::learn(&self.table, index, addr);
                None
            }
        }
    }

    /// Hints that `key` will be looked up, filed or removed soon: starts
    /// loading the control bytes and the buckets where its probe begins,
    /// so that a batch of keys prefetched first overlaps their misses (see
    /// [`crate::prefetch`]). Does nothing before the first insert.
    #[inline]
    pub(crate) fn prefetch(&self, key: K) {
        if self.probe.ctrl == 0 {
            return;
        }
        let (ctrl, bucket) = self.probe.start(key.mixed());
        crate::prefetch::prefetch(ctrl as *const u8);
        crate::prefetch::prefetch(bucket as *const u8);
    }

    /// Removes `id`, filed under `key`; whether it was there.
    #[inline]
    pub(crate) fn remove_id(&mut self, key: K, id: u32) -> bool {
        match self.table.find_entry(key.mixed(), |&other| other == id) {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    /// Every id in the index, in no particular order.
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.table.iter().copied()
    }

    /// Bytes the table holds on the heap.
    #[cfg(test)]
    pub(crate) fn allocation_size(&self) -> usize {
        self.table.allocation_size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// The prefetch hint's addresses are those of the table: a key's
    /// bucket lies in the group its probe starts at (or, in a crowded
    /// group, after it), at the address the hint computes for that bucket.
    #[test]
    fn probe_addresses_follow_the_table_layout() {
        let n = if cfg!(miri) { 64 } else { 4096 };
        let slots: Vec<SequenceHash> = (0..n as u64).map(SequenceHash::root).collect();
        let key_of = |id: u32| slots[id as usize];
        let mut index = IdIndex::<SequenceHash>::with_capacity(n);
        assert_eq!(index.probe.ctrl, 0, "nothing learned before an insert");
        index.prefetch(slots[0]);
        for id in 0..n as u32 {
            if id % 2 == 0 {
                index.insert(slots[id as usize], id, key_of);
            } else {
                assert_eq!(index.find_or_insert(slots[id as usize], id, key_of), None);
            }
        }
        let (mut at_home, buckets) = (0, index.table.num_buckets());
        for (id, &key) in slots.iter().enumerate() {
            index.prefetch(key);
            let bucket = index
                .table
                .find_bucket_index(key.mixed(), |&other| other == id as u32)
                .unwrap();
            let addr = index.table.get_bucket(bucket).unwrap() as *const u32 as usize;
            let home = key.mixed() as usize & (buckets - 1);
            // Where the hint puts the key's home bucket, and its bucket.
            let (_, home_bucket) = index.probe.start(key.mixed());
            assert_eq!(
                home_bucket,
                index.probe.ctrl - (home + 1) * 4,
                "home bucket of key {id}"
            );
            assert_eq!(
                addr,
                index.probe.ctrl - (bucket + 1) * 4,
                "bucket {bucket} of key {id} is not where the layout puts it"
            );
            let offset = bucket.wrapping_sub(home) & (buckets - 1);
            if offset < 16 {
                at_home += 1;
            }
        }
        // At this load nearly every key sits in its home group.
        assert!(
            at_home * 10 >= n * 9,
            "{at_home} of {n} keys in their home group"
        );
        // A clone learns its own table's address anew.
        let clone = index.clone();
        assert_eq!(clone.probe.ctrl, 0);
        assert_eq!(clone.get(slots[5], key_of), Some(5));
    }

    #[test]
    fn an_entry_costs_five_bytes_per_bucket() {
        let index = IdIndex::<SequenceHash>::with_capacity(1 << 20);
        // 2^21 buckets (load at most 7/8) of a u32 and a control byte.
        let per_block = index.allocation_size() as f64 / (1 << 20) as f64;
        assert!(per_block < 10.5, "{per_block} bytes per block");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u8),
        FindOrInsert(u8),
        Remove(u8),
        Get(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            any::<u8>().prop_map(Op::Insert),
            any::<u8>().prop_map(Op::FindOrInsert),
            any::<u8>().prop_map(Op::Remove),
            any::<u8>().prop_map(Op::Get),
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
            let key_of = |id: u32| slots[id as usize];
            let mut index = IdIndex::<SequenceHash>::with_capacity(4);
            let mut model: HashMap<SequenceHash, u32> = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k) => {
                        let h = slots[k as usize];
                        if let std::collections::hash_map::Entry::Vacant(e) = model.entry(h) {
                            e.insert(k as u32);
                            index.insert(h, k as u32, key_of);
                        }
                    }
                    Op::FindOrInsert(k) => {
                        let h = slots[k as usize];
                        let before = model.get(&h).copied();
                        model.entry(h).or_insert(k as u32);
                        prop_assert_eq!(index.find_or_insert(h, k as u32, key_of), before);
                    }
                    Op::Remove(k) => {
                        let h = slots[k as usize];
                        let filed = index.get(h, key_of);
                        if let Some(id) = filed {
                            prop_assert!(index.remove_id(h, id));
                            prop_assert!(!index.remove_id(h, id));
                        }
                        prop_assert_eq!(filed, model.remove(&h));
                    }
                    Op::Get(k) => {
                        let h = slots[k as usize];
                        prop_assert_eq!(index.get(h, key_of), model.get(&h).copied());
                    }
                }
                prop_assert_eq!(index.len(), model.len());
            }
            let mut ids: Vec<u32> = index.ids().collect();
            ids.sort_unstable();
            let mut expected: Vec<u32> = model.values().copied().collect();
            expected.sort_unstable();
            prop_assert_eq!(ids, expected);
        }
    }
}
