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
use std::sync::atomic::{AtomicU64, Ordering};
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

/// Where a table of `4 × width` packed counters keeps a key's four
/// counters. Shared by [`TinyLFUSketch`] and [`TinyLFUTracker`] so both
/// index (and therefore estimate) identically.
#[derive(Clone, Copy)]
struct Layout {
    /// Row `r` occupies words `r * row_words .. (r + 1) * row_words`.
    row_words: usize,
    /// `64 - log2(row width)`: keeps the high bits of a product as index.
    index_shift: u32,
}

impl Layout {
    /// Rows of `capacity` counters, rounded up to a power of two (at least
    /// 16) and capped at 2^30.
    fn for_capacity(capacity: usize) -> Self {
        let width = capacity
            .clamp(MIN_ROW_WIDTH, MAX_ROW_WIDTH)
            .next_power_of_two();
        Self {
            row_words: width / 16,
            index_shift: 64 - width.trailing_zeros(),
        }
    }

    /// Words in the whole table.
    fn table_words(self) -> usize {
        4 * self.row_words
    }

    /// Counters per row.
    fn width(self) -> usize {
        self.row_words * 16
    }

    /// For each row, the index of the word holding `key`'s counter and the
    /// counter's bit offset in it.
    #[inline(always)]
    fn slots<K: SketchKey>(self, key: K) -> ([usize; 4], [u32; 4]) {
        // Multiplication alone is linear, so keys that differ only in their
        // top bits would share a column in every row; the xor-shift folds
        // the top bits down first.
        let bits = key.sketch_bits();
        let mixed = bits ^ (bits >> 29);
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
}

/// The words at `indices` (fetched with `load`) and the counters at
/// `shifts` in them.
#[inline(always)]
fn read_counters(
    load: impl Fn(usize) -> u64,
    indices: &[usize; 4],
    shifts: &[u32; 4],
) -> ([u64; 4], [u64; 4]) {
    let (mut words, mut counters) = ([0; 4], [0; 4]);
    for row in 0..4 {
        words[row] = load(indices[row]);
        counters[row] = (words[row] >> shifts[row]) & 0xF;
    }
    (words, counters)
}

/// The estimate: the smallest of a key's four counters.
#[inline(always)]
fn min_counter(counters: &[u64; 4]) -> u64 {
    counters[0]
        .min(counters[1])
        .min(counters[2].min(counters[3]))
}

/// Conservative update of one key: the four words with the counters that
/// hold the minimum bumped, and the new estimate; `None` when the key is
/// saturated (nothing to write, and the decay clock must not advance).
#[inline(always)]
fn conservative_update(
    words: &[u64; 4],
    counters: &[u64; 4],
    shifts: &[u32; 4],
) -> Option<([u64; 4], u32)> {
    let min = min_counter(counters);
    if min >= u64::from(MAX_COUNT) {
        return None;
    }
    // The rows occupy disjoint words, so each word is read once and written
    // once, without branching on which counters grow.
    let bumped =
        std::array::from_fn(|row| words[row] + (u64::from(counters[row] == min) << shifts[row]));
    Some((bumped, min as u32 + 1))
}

/// Halves sixteen packed counters.
#[inline(always)]
fn halve(word: u64) -> u64 {
    (word >> 1) & HALVE_MASK
}

/// Counts increments and says when the counters are due for halving.
#[derive(Clone, Copy)]
struct DecayClock {
    additions: u64,
    sample_size: u64,
    decays: u64,
}

impl DecayClock {
    fn new(sample_size: u64) -> Self {
        Self {
            additions: 0,
            sample_size: sample_size.max(1),
            decays: 0,
        }
    }

    /// Counts one (non-saturated) increment; true when the counters must
    /// be halved now, after which the caller calls [`halved`](Self::halved).
    #[inline(always)]
    fn tick(&mut self) -> bool {
        self.additions += 1;
        self.additions >= self.sample_size
    }

    /// The counters were halved: so is the clock.
    fn halved(&mut self) {
        self.additions /= 2;
        self.decays += 1;
    }
}

/// A count-min sketch of 4-bit counters with periodic halving.
///
/// Memory: 4 rows × `capacity` (rounded up to a power of two, at least 16)
/// counters × 4 bits, i.e. 2 bytes per unit of capacity.
pub struct TinyLFUSketch<K> {
    words: Vec<u64>,
    layout: Layout,
    clock: DecayClock,
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
        let layout = Layout::for_capacity(capacity);
        Self {
            words: vec![0; layout.table_words()],
            layout,
            clock: DecayClock::new(sample_size),
            _key: PhantomData,
        }
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
        self.bump::<true>(key)
    }

    /// [`increment_and_estimate`](Self::increment_and_estimate) for an
    /// owner that halves the counters on its own schedule (by calling
    /// [`decay`](Self::decay)): the increment does not advance the decay
    /// clock, which saves the clock's bookkeeping on every call.
    pub fn increment_and_estimate_unclocked(&mut self, key: K) -> u32 {
        self.bump::<false>(key)
    }

    /// One conservative increment of `key`, counted by the decay clock if
    /// `CLOCKED`; the key's estimate afterwards.
    #[inline(always)]
    fn bump<const CLOCKED: bool>(&mut self, key: K) -> u32 {
        let (indices, shifts) = self.layout.slots(key);
        let table = self.words.as_mut_slice();
        // The table's length is a power of two (four rows of a power of
        // two), so masking with it keeps every index as it is, and shows
        // the compiler that no access needs a bounds check.
        if table.is_empty() {
            return 0;
        }
        let mask = table.len() - 1;
        let indices = indices.map(|i| i & mask);
        let (words, counters) = read_counters(|i| table[i], &indices, &shifts);
        // A saturated key adds no information, so it does not advance the
        // decay clock either.
        let Some((bumped, estimate)) = conservative_update(&words, &counters, &shifts) else {
            return MAX_COUNT;
        };
        for row in 0..4 {
            table[indices[row]] = bumped[row];
        }
        if CLOCKED && self.clock.tick() {
            self.decay();
        }
        estimate
    }

    /// The estimated number of accesses to `key` (0..=15): never below the
    /// true count since the last decay, capped at 15.
    pub fn estimate(&self, key: K) -> u32 {
        let (indices, shifts) = self.layout.slots(key);
        let (_, counters) = read_counters(|i| self.words[i], &indices, &shifts);
        min_counter(&counters) as u32
    }

    /// Halves every counter (rounding down) and the increment clock.
    pub fn decay(&mut self) {
        for word in &mut self.words {
            *word = halve(*word);
        }
        self.clock.halved();
    }

    /// Increments that trigger a decay.
    pub fn sample_size(&self) -> u64 {
        self.clock.sample_size
    }

    /// How many decays have happened.
    pub fn decays(&self) -> u64 {
        self.clock.decays
    }

    /// Counters per row.
    pub fn width(&self) -> usize {
        self.layout.width()
    }
}

impl<K> fmt::Debug for TinyLFUSketch<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(f, "TinyLFUSketch", self.layout, &self.clock)
    }
}

fn debug_fields(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    layout: Layout,
    clock: &DecayClock,
) -> fmt::Result {
    f.debug_struct(name)
        .field("width", &layout.width())
        .field("additions", &clock.additions)
        .field("sample_size", &clock.sample_size)
        .field("decays", &clock.decays)
        .finish()
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

/// A [`TinyLFUSketch`] shared between threads, with a lock-free
/// [`count`](FrequencyTracker::count).
///
/// The multi-LRU backend asks for a count on every release, so counting
/// takes no lock: the counter words are atomics read with `Relaxed` loads.
/// Touches (increments and the decays they trigger) are serialised by a
/// mutex around the decay clock, and only its holder writes counter words.
///
/// Why `Relaxed` suffices: the words carry no other data — nothing is
/// published through them, so a reader needs no ordering with any other
/// memory. A writer's loads see the previous writer's stores because the
/// mutex orders the writers. A thread that touched (or that synchronised
/// with the toucher by other means, e.g. the manager's lock) sees the touch
/// by coherence, so single-threaded and lock-sequenced use counts exactly
/// as the sketch does. A `count` racing a touch may see each of the four
/// words before or after it (after a decay, some rows halved and some not),
/// i.e. an estimate between the old and the new one — fine for a frequency
/// hint. There is no ordering protocol to check, hence no loom model.
pub struct TinyLFUTracker<K> {
    words: Box<[AtomicU64]>,
    layout: Layout,
    clock: Mutex<DecayClock>,
    _key: PhantomData<fn(K)>,
}

impl<K: SketchKey> TinyLFUTracker<K> {
    /// A tracker that counts as [`TinyLFUSketch::new(capacity)`](TinyLFUSketch::new)
    /// does.
    pub fn new(capacity: usize) -> Self {
        let layout = Layout::for_capacity(capacity);
        let sample_size = (capacity.max(1) as u64).saturating_mul(10);
        Self {
            words: (0..layout.table_words())
                .map(|_| AtomicU64::new(0))
                .collect(),
            layout,
            clock: Mutex::new(DecayClock::new(sample_size)),
            _key: PhantomData,
        }
    }

    /// A tracker that continues from a sketch built elsewhere (e.g. with a
    /// custom sample size), counters and decay clock included.
    pub fn from_sketch(sketch: TinyLFUSketch<K>) -> Self {
        Self {
            words: sketch.words.into_iter().map(AtomicU64::new).collect(),
            layout: sketch.layout,
            clock: Mutex::new(sketch.clock),
            _key: PhantomData,
        }
    }

    /// How many decays the sketch has done.
    pub fn decays(&self) -> u64 {
        self.clock.lock().decays
    }

    /// One increment; the caller holds the clock's lock.
    #[inline(always)]
    fn increment_locked(&self, clock: &mut DecayClock, key: K) {
        let (indices, shifts) = self.layout.slots(key);
        let table = &*self.words;
        let (words, counters) =
            read_counters(|i| table[i].load(Ordering::Relaxed), &indices, &shifts);
        let Some((bumped, _)) = conservative_update(&words, &counters, &shifts) else {
            return;
        };
        for row in 0..4 {
            table[indices[row]].store(bumped[row], Ordering::Relaxed);
        }
        if clock.tick() {
            for word in table {
                word.store(halve(word.load(Ordering::Relaxed)), Ordering::Relaxed);
            }
            clock.halved();
        }
    }
}

impl<K: SketchKey> FrequencyTracker<K> for TinyLFUTracker<K> {
    fn touch(&self, key: K) {
        let mut clock = self.clock.lock();
        self.increment_locked(&mut clock, key);
    }

    fn count(&self, key: K) -> u32 {
        let (indices, shifts) = self.layout.slots(key);
        let (_, counters) =
            read_counters(|i| self.words[i].load(Ordering::Relaxed), &indices, &shifts);
        min_counter(&counters) as u32
    }

    fn touch_many(&self, keys: &[K]) {
        let mut clock = self.clock.lock();
        for &key in keys {
            self.increment_locked(&mut clock, key);
        }
    }
}

impl<K> fmt::Debug for TinyLFUTracker<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_fields(f, "TinyLFUTracker", self.layout, &self.clock.lock())
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
