//! The index's hash table: open addressing with linear probing over one
//! flat array of 24-byte slots (128-bit key, 32-bit holder word, zero when
//! empty), keyed by
//! hashes that are already hashes.
//!
//! Why not `std::collections::HashMap`: lookups here are random accesses
//! into a table far larger than the caches, one per query block. Knowing
//! where a key's probe starts lets [`HashTable::touch`] load the next
//! blocks' slots while the current one is compared (the loads overlap
//! instead of queueing), which the standard map cannot offer. Deletion
//! shifts the following run back (no tombstones), so probe runs stay short
//! under churn.

use std::hash::BuildHasher;

use kvbm::PrehashedBuildHasher;

/// Set in a slot's third word when the slot is taken. An empty slot is all
/// zeros, so a new array comes from zeroed memory (pages the system hands
/// out lazily) instead of being written through when the table grows.
const TAKEN: u64 = 1 << 32;

/// `[key hi, key lo, TAKEN | holder word]`.
type Slot = [u64; 3];

#[inline]
fn taken(s: &Slot) -> bool {
    s[2] != 0
}

#[inline]
fn word(s: &Slot) -> u32 {
    s[2] as u32
}

#[inline]
fn slot(hi: u64, lo: u64, word: u32) -> Slot {
    [hi, lo, TAKEN | word as u64]
}

/// Keys `(hi, lo)` to holder words.
#[derive(Debug)]
pub(crate) struct HashTable {
    slots: Vec<Slot>,
    /// `64 − log2(slots.len())`.
    shift: u32,
    len: usize,
}

impl HashTable {
    pub(crate) fn new() -> Self {
        Self::with_slots(16)
    }

    fn with_slots(n: usize) -> Self {
        let n = n.next_power_of_two().max(16);
        Self {
            slots: vec![[0u64; 3]; n],
            shift: 64 - n.trailing_zeros(),
            len: 0,
        }
    }

    #[inline]
    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot a key's probe starts at: the top bits of kvbm's hash of the
    /// key (the hasher of every map keyed by hashes), which depend on every
    /// key bit.
    #[inline]
    fn home(&self, hi: u64, lo: u64) -> usize {
        let key = u128::from(hi) << 64 | u128::from(lo);
        (PrehashedBuildHasher::default().hash_one(key) >> self.shift) as usize
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Bytes of the slot array.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot>()
    }

    /// Loads the first slot of `key`'s probe so that a lookup of it soon
    /// finds it in cache.
    #[inline]
    pub(crate) fn touch(&self, hi: u64, lo: u64) {
        let slot: *const Slot = &self.slots[self.home(hi, lo)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults and reads nothing
        // into the program; the pointer comes from a live, in-bounds slot
        // reference anyway. Exercised under miri by
        // `table::tests::matches_a_map_under_inserts_updates_and_removals`
        // (`cargo +nightly miri test -p kvbm-router --lib table`).
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(slot.cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        std::hint::black_box(slot);
    }

    #[inline]
    fn find(&self, hi: u64, lo: u64) -> Result<usize, usize> {
        let mask = self.mask();
        let mut i = self.home(hi, lo);
        loop {
            let s = &self.slots[i];
            if !taken(s) {
                return Err(i);
            }
            if s[0] == hi && s[1] == lo {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub(crate) fn get(&self, hi: u64, lo: u64) -> Option<u32> {
        self.find(hi, lo).ok().map(|i| word(&self.slots[i]))
    }

    /// Sets `key`'s word to `f(current word)`, inserting it when absent.
    /// Returns whether it was inserted.
    #[inline]
    pub(crate) fn upsert(&mut self, hi: u64, lo: u64, f: impl FnOnce(Option<u32>) -> u32) -> bool {
        match self.find(hi, lo) {
            Ok(i) => {
                let s = &mut self.slots[i];
                *s = slot(hi, lo, f(Some(word(s))));
                false
            }
            Err(mut i) => {
                if (self.len + 1) * 4 > self.slots.len() * 3 {
                    self.grow(self.slots.len() * 2);
                    i = match self.find(hi, lo) {
                        Ok(i) | Err(i) => i,
                    };
                }
                self.slots[i] = slot(hi, lo, f(None));
                self.len += 1;
                true
            }
        }
    }

    /// Makes room for `additional` more keys without growing on the way.
    pub(crate) fn reserve(&mut self, additional: usize) {
        let needed = (self.len + additional) * 4 / 3 + 1;
        if needed > self.slots.len() {
            self.grow(needed.next_power_of_two());
        }
    }

    /// Replaces `key`'s word with `f(word)`: `Some(w)` keeps it with word
    /// `w`, `None` removes it. Returns the old word, `None` when absent.
    #[inline]
    pub(crate) fn update(
        &mut self,
        hi: u64,
        lo: u64,
        f: impl FnOnce(u32) -> Option<u32>,
    ) -> Option<u32> {
        let i = self.find(hi, lo).ok()?;
        let old = word(&self.slots[i]);
        match f(old) {
            Some(w) => self.slots[i] = slot(hi, lo, w),
            None => self.remove_at(i),
        }
        Some(old)
    }

    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            let s = self.slots[j];
            if !taken(&s) {
                break;
            }
            let home = self.home(s[0], s[1]);
            // `s` may fill the hole if its probe started at or before it
            // (cyclically): its distance from home covers the hole.
            if (j.wrapping_sub(home) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.slots[hole] = s;
                hole = j;
            }
        }
        self.slots[hole] = [0; 3];
        self.len -= 1;
    }

    /// Applies `f` to every word; `None` removes the key. Rebuilds the
    /// table (rare: a whole instance leaving).
    pub(crate) fn retain_map(&mut self, mut f: impl FnMut(u32) -> Option<u32>) {
        let old = std::mem::replace(self, Self::with_slots(self.slots.len()));
        for s in old.slots.into_iter().filter(taken) {
            if let Some(w) = f(word(&s)) {
                let i = match self.find(s[0], s[1]) {
                    Ok(i) | Err(i) => i,
                };
                self.slots[i] = slot(s[0], s[1], w);
                self.len += 1;
            }
        }
    }

    /// `(hi, lo, word)` of every key.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u64, u32)> + '_ {
        self.slots
            .iter()
            .filter(|s| taken(s))
            .map(|s| (s[0], s[1], word(s)))
    }

    fn grow(&mut self, slots: usize) {
        let old = std::mem::replace(self, Self::with_slots(slots));
        for s in old.slots.into_iter().filter(taken) {
            let Err(i) = self.find(s[0], s[1]) else {
                continue;
            };
            self.slots[i] = s;
            self.len += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Distinct home slots of `keys` in a table of 1024 slots.
    #[cfg(not(miri))]
    fn homes(keys: impl Iterator<Item = kvbm::SequenceHash>) -> usize {
        let t = HashTable::with_slots(1024);
        keys.map(|k| t.home((k.as_u128() >> 64) as u64, k.as_u128() as u64))
            .collect::<std::collections::HashSet<_>>()
            .len()
    }

    // Safe code only: the CI's miri step (`--lib table`) would just be slower.
    #[cfg(not(miri))]
    #[test]
    fn lineage_hashes_spread_over_home_slots() {
        // 4096 random keys hit ~1005 of 1024 slots.
        use kvbm::SequenceHash;
        let chain = (0..4096u64).scan(SequenceHash::root(7), |h, i| {
            *h = h.extend(i * 31 + 5);
            Some(*h)
        });
        assert!(homes(chain) > 950, "one long chain");
        let roots = (0..4096u64).map(SequenceHash::root);
        assert!(homes(roots) > 950, "first blocks");
    }

    #[test]
    fn matches_a_map_under_inserts_updates_and_removals() {
        let mut t = HashTable::new();
        let mut m: HashMap<(u64, u64), u32> = HashMap::new();
        let mut x = 1u64;
        // Fewer steps under miri (which checks the prefetch's `unsafe`).
        let steps = if cfg!(miri) { 400 } else { 20_000u32 };
        for step in 0..steps {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Few distinct keys so that removals hit; some colliding homes.
            let key = ((x >> 50) % 7, (x >> 40) % (steps as u64 / 6));
            match step % 3 {
                0 | 1 => {
                    let inserted = t.upsert(key.0, key.1, |_| step);
                    assert_eq!(inserted, m.insert(key, step).is_none());
                }
                _ => {
                    assert_eq!(t.update(key.0, key.1, |_| None), m.remove(&key));
                }
            }
            assert_eq!(t.len(), m.len());
        }
        for (&(hi, lo), &w) in &m {
            t.touch(hi, lo);
            assert_eq!(t.get(hi, lo), Some(w));
        }
        assert_eq!(t.iter().count(), m.len());
        t.retain_map(|w| (w % 2 == 0).then_some(w + 2));
        m.retain(|_, w| *w % 2 == 0);
        for (&(hi, lo), &w) in &m {
            assert_eq!(t.get(hi, lo), Some(w + 2));
        }
        assert_eq!(t.len(), m.len());
    }
}
