//! Which instances hold a hash: one `u32` per indexed hash.
//!
//! Most hashes are held by one instance, so the common case is the slot
//! number itself, stored inline. A hash held by two or more instances points
//! into a slab of fixed-width bitsets (one bit per instance slot), recycled
//! through a free list; no per-entry allocation, no `Arc`.

/// Set in a holder word that refers to a bitset in the slab.
const SHARED: u32 = 1 << 31;

/// The largest number of instance slots a [`HolderSlab`] can address.
pub(crate) const MAX_SLOTS: usize = SHARED as usize;

/// A holder word: an inline single slot or a slab bitset index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holders {
    /// Held by exactly this slot.
    One(u32),
    /// Held by the slots set in this slab bitset (at least two).
    Many(u32),
}

impl Holders {
    #[inline]
    pub(crate) fn decode(word: u32) -> Self {
        if word & SHARED == 0 {
            Holders::One(word)
        } else {
            Holders::Many(word & !SHARED)
        }
    }

    #[inline]
    pub(crate) fn encode(self) -> u32 {
        match self {
            Holders::One(slot) => slot,
            Holders::Many(set) => set | SHARED,
        }
    }
}

/// Bitsets of instance slots, `width` 64-bit words each.
#[derive(Debug, Default)]
pub(crate) struct HolderSlab {
    width: usize,
    words: Vec<u64>,
    free: Vec<u32>,
}

/// What removing a slot from a holder word left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRemove {
    /// The slot did not hold the hash; the word is unchanged.
    Absent,
    /// Nobody holds the hash any more: drop the entry.
    Empty,
    /// The new holder word.
    Holders(u32),
}

impl HolderSlab {
    pub(crate) fn new() -> Self {
        Self {
            width: 1,
            words: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Words per bitset.
    #[inline]
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// Widens every bitset so that `slots` slots fit.
    pub(crate) fn ensure_slots(&mut self, slots: usize) {
        let needed = slots.div_ceil(64).max(1);
        if needed <= self.width {
            return;
        }
        let sets = self.words.len() / self.width;
        let mut words = vec![0u64; sets * needed];
        for (set, old) in self.words.chunks_exact(self.width).enumerate() {
            words[set * needed..set * needed + self.width].copy_from_slice(old);
        }
        self.words = words;
        self.width = needed;
    }

    /// The bitset behind a shared holder word.
    #[inline]
    pub(crate) fn set(&self, set: u32) -> &[u64] {
        let start = set as usize * self.width;
        &self.words[start..start + self.width]
    }

    fn alloc(&mut self) -> u32 {
        if let Some(set) = self.free.pop() {
            return set;
        }
        let set = (self.words.len() / self.width) as u32;
        self.words.resize(self.words.len() + self.width, 0);
        set
    }

    fn release(&mut self, set: u32) {
        let start = set as usize * self.width;
        self.words[start..start + self.width].fill(0);
        self.free.push(set);
    }

    /// Whether `slot` is among the holders in `word`.
    #[inline]
    pub(crate) fn contains(&self, word: u32, slot: u32) -> bool {
        match Holders::decode(word) {
            Holders::One(s) => s == slot,
            Holders::Many(set) => self.set(set)[slot as usize / 64] & bit(slot) != 0,
        }
    }

    /// `word` with `slot` added.
    pub(crate) fn insert(&mut self, word: u32, slot: u32) -> u32 {
        match Holders::decode(word) {
            Holders::One(s) if s == slot => word,
            Holders::One(s) => {
                let set = self.alloc();
                let start = set as usize * self.width;
                self.words[start + s as usize / 64] |= bit(s);
                self.words[start + slot as usize / 64] |= bit(slot);
                Holders::Many(set).encode()
            }
            Holders::Many(set) => {
                self.words[set as usize * self.width + slot as usize / 64] |= bit(slot);
                word
            }
        }
    }

    /// `word` without `slot`.
    pub(crate) fn remove(&mut self, word: u32, slot: u32) -> AfterRemove {
        match Holders::decode(word) {
            Holders::One(s) if s == slot => AfterRemove::Empty,
            Holders::One(_) => AfterRemove::Absent,
            Holders::Many(set) => {
                let start = set as usize * self.width;
                let w = &mut self.words[start + slot as usize / 64];
                if *w & bit(slot) == 0 {
                    return AfterRemove::Absent;
                }
                *w &= !bit(slot);
                let bits = &self.words[start..start + self.width];
                let count: u32 = bits.iter().map(|w| w.count_ones()).sum();
                if count == 1 {
                    let (i, w) = bits
                        .iter()
                        .enumerate()
                        .find(|(_, w)| **w != 0)
                        .unwrap_or((0, &0));
                    let last = (i * 64) as u32 + w.trailing_zeros();
                    self.release(set);
                    AfterRemove::Holders(Holders::One(last).encode())
                } else {
                    AfterRemove::Holders(word)
                }
            }
        }
    }

    /// Bytes held by the slab.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8 + self.free.capacity() * 4
    }
}

#[inline]
pub(crate) fn bit(slot: u32) -> u64 {
    1u64 << (slot % 64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_from_one_to_many_and_back() {
        let mut slab = HolderSlab::new();
        slab.ensure_slots(130);
        let w = Holders::One(3).encode();
        let w = slab.insert(w, 129);
        assert!(matches!(Holders::decode(w), Holders::Many(_)));
        assert!(slab.contains(w, 3) && slab.contains(w, 129) && !slab.contains(w, 4));
        let w = slab.insert(w, 70);
        assert_eq!(slab.remove(w, 5), AfterRemove::Absent);
        let AfterRemove::Holders(w) = slab.remove(w, 3) else {
            panic!()
        };
        let AfterRemove::Holders(w) = slab.remove(w, 129) else {
            panic!()
        };
        assert_eq!(Holders::decode(w), Holders::One(70));
        assert_eq!(slab.remove(w, 70), AfterRemove::Empty);
        // The released bitset is reused and clean.
        let w2 = slab.insert(Holders::One(1).encode(), 2);
        assert!(!slab.contains(w2, 129));
    }

    #[test]
    fn widening_keeps_members() {
        let mut slab = HolderSlab::new();
        let w = slab.insert(Holders::One(1).encode(), 63);
        slab.ensure_slots(200);
        assert_eq!(slab.width(), 4);
        assert!(slab.contains(w, 1) && slab.contains(w, 63));
        let w = slab.insert(w, 199);
        assert!(slab.contains(w, 199));
    }
}
