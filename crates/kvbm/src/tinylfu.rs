//! Approximate access frequencies for frequency-aware eviction (TinyLFU).
//!
//! A [`TinyLFUSketch`] is a count-min sketch: 4 rows of 4-bit saturating
//! counters (0..=15). A key bumps one counter per row and its estimate is
//! the smallest of its 4 counters, so an estimate never falls below the true
//! number of increments (capped at 15) — collisions can only inflate it.
//! To let old popularity fade, every counter is halved ("decay") once the
//! sketch has recorded [`sample_size`](TinyLFUSketch::sample_size)
//! increments, by default 10 × the capacity it was built for.
//!
//! Keys are already hashes (sequence hashes), so rows are chosen by
//! multiplying the key's bits with one odd constant per row and keeping the
//! high bits, instead of hashing the key again.
//!
//! ```
//! use kvbm::tinylfu::{FrequencyTracker, TinyLFUTracker};
//!
//! let tracker = TinyLFUTracker::<u128>::new(1024);
//! tracker.touch_many(&[7, 7, 9]);
//! assert_eq!(tracker.count(7), 2);
//! assert_eq!(tracker.count(9), 1);
//! ```

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::SequenceHash;

/// A key the sketch can count: anything that reduces to 64 bits that are
/// already well mixed (a hash, or a value derived from one).
pub trait SketchKey: Copy + Send + Sync + 'static {
    /// The 64 bits that stand for this key in the sketch.
    fn sketch_bits(self) -> u64;
}

impl SketchKey for u64 {
    #[inline]
    fn sketch_bits(self) -> u64 {
        self
    }
}

impl SketchKey for u128 {
    #[inline]
    fn sketch_bits(self) -> u64 {
        (self as u64) ^ ((self >> 64) as u64)
    }
}

impl SketchKey for SequenceHash {
    /// The same bits as the hash's [`as_u128`](SequenceHash::as_u128), so a
    /// tracker keyed by `u128` and one keyed by `SequenceHash` agree.
    #[inline]
    fn sketch_bits(self) -> u64 {
        self.as_u128().sketch_bits()
    }
}

/// Largest value a counter holds.
pub const MAX_COUNT: u32 = 15;

/// Counters per row are capped so `capacity` from configuration cannot ask
/// for an absurd allocation (2^30 counters per row is 2 GiB in total).
const MAX_ROW_WIDTH: usize = 1 << 30;

/// A row must fill at least one 64-bit word of 16 counters.
const MIN_ROW_WIDTH: usize = 16;

/// One odd multiplier per row; distinct so that two keys colliding in one
/// row rarely collide in the others.
const ROW_MULTIPLIERS: [u64; 4] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0xD6E8_FEB8_6659_FD93,
];

/// Halves sixteen 4-bit counters packed in a word: the shift moves each
/// counter's low bit into its neighbour's top bit, the mask clears it.
const HALVE_MASK: u64 = 0x7777_7777_7777_7777;

/// A count-min sketch of 4-bit counters with periodic halving.
///
/// Memory: 4 rows × `capacity` (rounded up to a power of two, at least 16)
/// counters × 4 bits, i.e. 2 bytes per unit of capacity.
pub struct TinyLFUSketch<K> {
    /// Row `r` occupies words `r * row_words .. (r + 1) * row_words`.
    words: Vec<u64>,
    row_words: usize,
    /// `64 - log2(row width)`: keeps the high bits of a product as index.
    index_shift: u32,
    additions: u64,
    sample_size: u64,
    decays: u64,
    _key: PhantomData<fn(K)>,
}

impl<K: SketchKey> TinyLFUSketch<K> {
    /// A sketch sized for about `capacity` distinct keys that decays after
    /// 10 × `capacity` increments.
    ///
    /// `capacity` is rounded up to a power of two (at least 16) and capped
    /// at 2^30.
    pub fn new(capacity: usize) -> Self {
        let sample_size = (capacity.max(1) as u64).saturating_mul(10);
        Self::with_sample_size(capacity, sample_size)
    }

    /// A sketch sized for about `capacity` distinct keys that decays after
    /// `sample_size` increments (at least 1).
    pub fn with_sample_size(capacity: usize, sample_size: u64) -> Self {
        let width = capacity
            .clamp(MIN_ROW_WIDTH, MAX_ROW_WIDTH)
            .next_power_of_two();
        let row_words = width / 16;
        Self {
            words: vec![0; 4 * row_words],
            row_words,
            index_shift: 64 - width.trailing_zeros(),
            additions: 0,
            sample_size: sample_size.max(1),
            decays: 0,
            _key: PhantomData,
        }
    }

    /// Multiplication alone is linear, so keys that differ only in their
    /// top bits would share a column in every row; the xor-shift folds the
    /// top bits down first.
    #[inline]
    fn mix(key: K) -> u64 {
        let bits = key.sketch_bits();
        bits ^ (bits >> 29)
    }

    /// For each row, the index of the word holding `key`'s counter and the
    /// counter's bit offset in it.
    #[inline(always)]
    fn slots(&self, key: K) -> ([usize; 4], [u32; 4]) {
        let mixed = Self::mix(key);
        let (mut words, mut shifts) = ([0; 4], [0; 4]);
        let mut base = 0;
        for (row, multiplier) in ROW_MULTIPLIERS.iter().enumerate() {
            let column = (mixed.wrapping_mul(*multiplier) >> self.index_shift) as usize;
            words[row] = base + column / 16;
            shifts[row] = (column % 16) as u32 * 4;
            base += self.row_words;
        }
        (words, shifts)
    }

    /// The words at `indices` and the counters at `shifts` in them.
    #[inline(always)]
    fn read(table: &[u64], indices: &[usize; 4], shifts: &[u32; 4]) -> ([u64; 4], [u64; 4]) {
        let (mut words, mut counters) = ([0; 4], [0; 4]);
        for row in 0..4 {
            words[row] = table[indices[row]];
            counters[row] = (words[row] >> shifts[row]) & 0xF;
        }
        (words, counters)
    }

    /// Records one access to `key`.
    ///
    /// Only the counters that hold the key's current minimum are bumped
    /// ("conservative update"): the estimate grows by exactly one while
    /// collisions inflate the other keys less than with a plain update.
    pub fn increment(&mut self, key: K) {
        self.increment_and_estimate(key);
    }

    /// [`increment`](Self::increment), returning the key's estimate
    /// afterwards (what [`estimate`](Self::estimate) would return, before
    /// any decay the increment triggers) without probing the rows twice.
    pub fn increment_and_estimate(&mut self, key: K) -> u32 {
        let (indices, shifts) = self.slots(key);
        // A local slice: its length stays in a register, so the writes
        // below reuse the reads' bounds checks.
        let table = self.words.as_mut_slice();
        let (words, counters) = Self::read(table, &indices, &shifts);
        let min = counters[0]
            .min(counters[1])
            .min(counters[2].min(counters[3]));
        if min >= u64::from(MAX_COUNT) {
            // A saturated key adds no information, so it does not advance
            // the decay clock either.
            return MAX_COUNT;
        }
        // The rows occupy disjoint words, so each word is read once above
        // and written once here, without branching on which counters grow.
        for row in 0..4 {
            table[indices[row]] = words[row] + (u64::from(counters[row] == min) << shifts[row]);
        }
        self.additions += 1;
        if self.additions >= self.sample_size {
            self.decay();
        }
        min as u32 + 1
    }

    /// The estimated number of accesses to `key` (0..=15): never below the
    /// true count since the last decay, capped at 15.
    pub fn estimate(&self, key: K) -> u32 {
        let (indices, shifts) = self.slots(key);
        let (_, counters) = Self::read(&self.words, &indices, &shifts);
        counters[0]
            .min(counters[1])
            .min(counters[2].min(counters[3])) as u32
    }

    /// Halves every counter (rounding down) and the increment clock.
    pub fn decay(&mut self) {
        for word in &mut self.words {
            *word = (*word >> 1) & HALVE_MASK;
        }
        self.additions /= 2;
        self.decays += 1;
    }

    /// Increments that trigger a decay.
    pub fn sample_size(&self) -> u64 {
        self.sample_size
    }

    /// How many decays have happened.
    pub fn decays(&self) -> u64 {
        self.decays
    }

    /// Counters per row.
    pub fn width(&self) -> usize {
        self.row_words * 16
    }
}

impl<K> fmt::Debug for TinyLFUSketch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TinyLFUSketch")
            .field("width", &(self.row_words * 16))
            .field("additions", &self.additions)
            .field("sample_size", &self.sample_size)
            .field("decays", &self.decays)
            .finish()
    }
}

/// Counts accesses to keys, approximately and thread-safely.
///
/// The multi-LRU backend calls [`count`](Self::count) under its manager's
/// lock, so an implementation must not call back into that manager (doing
/// so panics with a message saying so). A panic in `count` poisons the
/// manager (see [`BlockManager::poisoned`](crate::manager::BlockManager::poisoned));
/// `touch` runs outside every lock.
pub trait FrequencyTracker<K: SketchKey>: Send + Sync {
    /// Records one access to `key`.
    fn touch(&self, key: K);

    /// The (estimated) number of recent accesses to `key`.
    fn count(&self, key: K) -> u32;

    /// Records one access to each key; implementations that lock override
    /// it to lock once per batch.
    fn touch_many(&self, keys: &[K]) {
        for &key in keys {
            self.touch(key);
        }
    }
}

/// A [`TinyLFUSketch`] behind a mutex.
pub struct TinyLFUTracker<K> {
    sketch: Mutex<TinyLFUSketch<K>>,
}

impl<K: SketchKey> TinyLFUTracker<K> {
    /// A tracker over [`TinyLFUSketch::new(capacity)`](TinyLFUSketch::new).
    pub fn new(capacity: usize) -> Self {
        Self::from_sketch(TinyLFUSketch::new(capacity))
    }

    /// A tracker over a sketch built elsewhere (e.g. with a custom sample
    /// size).
    pub fn from_sketch(sketch: TinyLFUSketch<K>) -> Self {
        Self {
            sketch: Mutex::new(sketch),
        }
    }

    /// How many decays the sketch has done.
    pub fn decays(&self) -> u64 {
        self.sketch.lock().decays()
    }
}

impl<K: SketchKey> FrequencyTracker<K> for TinyLFUTracker<K> {
    fn touch(&self, key: K) {
        self.sketch.lock().increment(key);
    }

    fn count(&self, key: K) -> u32 {
        self.sketch.lock().estimate(key)
    }

    fn touch_many(&self, keys: &[K]) {
        let mut sketch = self.sketch.lock();
        for &key in keys {
            sketch.increment(key);
        }
    }
}

impl<K> fmt::Debug for TinyLFUTracker<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("TinyLFUTracker")
            .field(&*self.sketch.lock())
            .finish()
    }
}

/// A tracker that records nothing: every count is 0.
pub struct NoOpTracker<K> {
    _key: PhantomData<fn(K)>,
}

impl<K: SketchKey> NoOpTracker<K> {
    /// The no-op tracker.
    pub fn new() -> Self {
        Self { _key: PhantomData }
    }
}

impl<K: SketchKey> Default for NoOpTracker<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K> fmt::Debug for NoOpTracker<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoOpTracker")
    }
}

impl<K: SketchKey> FrequencyTracker<K> for NoOpTracker<K> {
    fn touch(&self, _key: K) {}

    fn count(&self, _key: K) -> u32 {
        0
    }

    fn touch_many(&self, _keys: &[K]) {}
}

/// Preset sizes for the block manager's frequency tracker.
///
/// Sketch memory is 2 bytes per entry: 512 KiB, 4 MiB and 32 MiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FrequencyTrackingCapacity {
    /// 2^18 entries.
    Small,
    /// 2^21 entries.
    #[default]
    Medium,
    /// 2^24 entries.
    Large,
}

impl FrequencyTrackingCapacity {
    /// The number of entries (counters per sketch row).
    pub fn size(&self) -> usize {
        match self {
            Self::Small => 1 << 18,
            Self::Medium => 1 << 21,
            Self::Large => 1 << 24,
        }
    }

    /// A tracker of this size keyed by packed sequence hashes
    /// ([`SequenceHash::as_u128`]).
    pub fn create_tracker(&self) -> Arc<TinyLFUTracker<u128>> {
        Arc::new(TinyLFUTracker::new(self.size()))
    }
}

#[cfg(test)]
mod tests;
