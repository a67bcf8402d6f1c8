//! Frequency-aged eviction: blocks earn extra time in the cache with each
//! reuse, blocks that end a prompt get less, and how much the earned time
//! counts against plain recency is tuned online.
//!
//! # Why
//!
//! In a prefix cache most blocks are used once: a fresh prompt suffix is
//! computed, cached and never asked for again. Under LRU every such block
//! walks the whole queue before it leaves, pushing out shared prefixes
//! (system prompts, earlier conversation turns) that later requests would
//! hit. And reuse comes late: a conversation's next turn typically returns
//! after one to a few cache-fulls of other traffic, so a block needs a
//! lifetime longer than LRU gives it to be hit at all. The only way to give
//! some blocks that time is to take it from blocks less likely to come back.
//!
//! # How
//!
//! Every release counts one access to the block's hash in a private
//! count-min sketch ([`TinyLFUSketch`]). The sketch remembers hashes long
//! after their blocks were evicted, so a prompt that comes back after its
//! blocks were thrown out is recognised: it is the bounded ghost history.
//!
//! On release a block joins one of seven LRU lists by class:
//! - *tail*: seen once and never extended — the last block of a prompt,
//!   which a later prompt shares only if it repeats this one exactly;
//! - *deep new*: seen once, at position [`DEEP_POSITION`] or deeper (blocks
//!   near the root are shared by more requests);
//! - *new*: seen once, nearer the root;
//! - *seen 2*, *seen 3*, *seen 4*, *hot* (5 or more) by sketch count.
//!
//! Each class has an age credit ([`CREDITS`], in quarter units): tail and
//! deep new −1, new +½, seen 2 +2½, seen 3 or 4 +4½, hot +6. Credit grows
//! roughly with the logarithm of the count: each doubling of the evidence
//! buys about as much time, so a block that was hot long ago does not
//! outlive steady reuse by a wide margin. The victim is the block
//! with the smallest `release tick + scale × credit × unit`, where the tick
//! counts releases. Within a list ticks increase, so only the seven list
//! fronts are compared. With `scale` 0 this is exactly LRU.
//!
//! The *unit* is the workload's own reuse time scale: a moving average of
//! the age (in releases) at which cached blocks are revived, capped at the
//! capacity. A small cache (unit = capacity) gives reused blocks several
//! cache lifetimes; a large cache, where LRU already keeps blocks longer
//! than they take to come back, gives them only a few reuse intervals. The
//! sketch is halved every [`SAMPLE_FACTOR`] time scales of releases. The
//! unit is further scaled by three times the share of re-references (blocks
//! released whose hash the sketch already knew) that missed, capped at one:
//! when recency alone already catches over two thirds of the reuse, as in a
//! cache large enough for the workload, credits fade towards plain LRU
//! instead of letting formerly hot blocks linger.
//!
//! A block is a tail when the block released just before it is not its
//! child (requests release their blocks deepest first) — and, for callers
//! that release root first, a tail is reclassified as new when its child is
//! released right after it.
//!
//! `scale` adapts by hill climbing: every sample period (a few capacities in
//! releases) the backend compares its hit rate — revivals per release —
//! with the previous period's, keeps stepping `scale` in the direction that
//! helped and reverses when it hurt, with a step that shrinks but never
//! vanishes. On a workload where recency is all that matters it drifts
//! towards plain LRU.
//!
//! # Cost
//!
//! `insert` and `remove` are O(1): a list splice, one sketch update (four
//! counters) and a parent/child check against the previous release.
//! `pop_victim` compares seven list fronts. Memory, fixed at construction:
//! per block id 8 bytes of links, 1 tag byte and an 8-byte tick (17 bytes);
//! the sketch (the ghost history) has [`SKETCH_FACTOR`] × capacity 4-bit
//! counters (rounded up to a power of two) in each of 4 rows, i.e.
//! 2 × [`SKETCH_FACTOR`] = 64 bytes per block, up to 128 after rounding.
//! It must be that wide: it sees about a dozen distinct hashes per cached
//! block between two halvings, and a narrower sketch mistakes first
//! sightings for reuse. Nothing allocates after construction.

use super::list::IndexLists;
use super::InactiveBackend;
use crate::tinylfu::TinyLFUSketch;
use crate::{BlockId, SequenceHash};

const TAIL: usize = 0;
const DEEP_NEW: usize = 1;
const NEW: usize = 2;
const CLASSES: usize = 7;

/// Age credit of each class in quarter units: tail, deep new, new, seen 2,
/// 3, 4, hot.
pub const CREDITS: [i64; CLASSES] = [-4, -4, 2, 10, 18, 18, 24];

/// Blocks at this position or deeper count as deep when new.
pub const DEEP_POSITION: u64 = 8;

/// Sketch counters per row, per block of capacity: the sketch must remember
/// hashes of blocks evicted several capacities ago.
pub const SKETCH_FACTOR: usize = 32;

/// Releases between two halvings of the sketch, in units (see the module
/// docs).
pub const SAMPLE_FACTOR: u64 = 32;

/// Credits are scaled by `MISSED_REUSE_GAIN` × the share of re-references
/// that miss, capped at 1.
const MISSED_REUSE_GAIN: u64 = 3;

/// Operations between two recomputations of the credit unit.
const REFRESH_EVENTS: u32 = 32;

/// Hits over which the hit age is averaged.
const HIT_AGE_WINDOW: f64 = 1024.0;

/// `scale` is kept in 1/`SCALE_ONE`.
const SCALE_ONE: i64 = 256;

/// Evicts the block whose release tick plus its class's age credit is
/// smallest; `docs/eviction.md` in the repository explains the design.
///
/// ```
/// use kvbm::eviction::{AdmissionBackend, InactiveBackend};
/// use kvbm::SequenceHash;
///
/// let mut backend = AdmissionBackend::new(64);
/// let popular = SequenceHash::root(1);
/// // Released, evicted, and computed and released again: reuse that LRU
/// // missed, so the hash earns credit.
/// backend.insert(0, popular);
/// assert_eq!(backend.pop_victim(), Some(0));
/// backend.insert(0, popular);
/// for id in 1..40 {
///     backend.insert(id, SequenceHash::root(100 + id as u64));
/// }
/// // Blocks seen once leave before the reused one.
/// let victims: Vec<_> = std::iter::from_fn(|| backend.pop_victim()).take(39).collect();
/// assert!(!victims.contains(&0));
/// ```
#[derive(Debug)]
pub struct AdmissionBackend {
    lists: IndexLists<CLASSES>,
    /// Release tick of each cached block.
    ticks: Vec<i64>,
    next_tick: i64,
    /// The block released last and its hash, for tail detection.
    last_release: Option<(u32, SequenceHash)>,
    credits: [i64; CLASSES],
    /// Each class's credit in ticks at the current unit and scale.
    offsets: [i64; CLASSES],
    /// Release tick of each list's front (stale for empty lists).
    heads: [i64; CLASSES],
    capacity: i64,
    /// Moving average of the age (in ticks) at which cached blocks are
    /// revived: the time scale on which this workload reuses blocks.
    hit_age: f64,
    /// The hit age, at most the capacity.
    time_scale: i64,
    /// One credit, in ticks: the time scale, scaled down when recency alone
    /// already catches most reuse.
    unit: i64,
    /// Releases of blocks seen before (hits and misses) and revivals (hits)
    /// among them, halved every `reuse_window` releases.
    reuse_refs: u64,
    reuse_hits: u64,
    reuse_window: u64,
    since_refresh: u32,
    sketch: TinyLFUSketch<SequenceHash>,
    /// Sketch increments since its last halving.
    since_decay: u64,
    climber: HillClimber,
}

/// Tunes `scale` to the observed hit rate.
#[derive(Debug, Clone)]
struct HillClimber {
    /// Share of the class credits applied, in 1/`SCALE_ONE`.
    scale: i64,
    step: i64,
    period: u64,
    hits: u64,
    accesses: u64,
    previous_rate: Option<f64>,
}

impl HillClimber {
    fn new(capacity: usize) -> Self {
        Self {
            scale: SCALE_ONE,
            // Starts at full credit; the first move only happens after two
            // periods were compared.
            step: SCALE_ONE / 8,
            period: (capacity as u64).saturating_mul(4).max(256),
            hits: 0,
            accesses: 0,
            previous_rate: None,
        }
    }

    #[inline]
    fn record_hit(&mut self) {
        self.hits += 1;
    }

    /// Counts a release; `true` when this ended a period and moved the
    /// scale.
    #[inline]
    fn record_access(&mut self) -> bool {
        self.accesses += 1;
        if self.accesses >= self.period {
            self.adjust();
            return true;
        }
        false
    }

    fn adjust(&mut self) {
        let rate = self.hits as f64 / self.accesses as f64;
        if let Some(previous) = self.previous_rate {
            if rate < previous {
                self.step = -self.step;
            }
            // Shrink the step so the scale settles, but keep it large enough
            // to follow a workload that changes.
            let magnitude = (self.step.abs() * 7 / 8).max(SCALE_ONE / 32);
            self.step = magnitude * self.step.signum();
        }
        self.scale = (self.scale + self.step).clamp(0, SCALE_ONE);
        self.previous_rate = Some(rate);
        self.hits = 0;
        self.accesses = 0;
    }
}

/// Whether `child` names `parent` as its parent block.
#[inline]
fn is_child(child: SequenceHash, parent: SequenceHash) -> bool {
    let position = child.position();
    position == parent.position() + 1
        && child.parent_hash_fragment() == parent.parent_fragment_for_child_position(position)
}

impl AdmissionBackend {
    /// An empty backend for block ids below `capacity`.
    ///
    /// # Panics
    /// If `capacity` ≥ `u32::MAX`.
    pub fn new(capacity: usize) -> Self {
        let blocks = capacity.max(1) as i64;
        Self {
            lists: IndexLists::new(capacity),
            ticks: vec![0; capacity],
            next_tick: 0,
            last_release: None,
            credits: CREDITS,
            offsets: CREDITS.map(|c| c * blocks / 4),
            heads: [0; CLASSES],
            capacity: blocks,
            hit_age: blocks as f64,
            time_scale: blocks,
            unit: blocks,
            reuse_refs: 0,
            reuse_hits: 0,
            reuse_window: (blocks as u64 * 2).max(4096),
            since_refresh: 0,
            // Halved by `insert` on the hit-age time scale instead.
            sketch: TinyLFUSketch::with_sample_size(
                capacity.saturating_mul(SKETCH_FACTOR),
                u64::MAX,
            ),
            since_decay: 0,
            climber: HillClimber::new(capacity),
        }
    }

    /// Cached blocks per class: tail, new, seen 2, seen 3, seen 4, hot.
    pub fn class_lens(&self) -> [usize; CLASSES] {
        std::array::from_fn(|c| self.lists.len(c))
    }

    /// The share of the class credits currently applied (0 = plain LRU,
    /// 1 = full credits).
    pub fn credit_scale(&self) -> f64 {
        self.climber.scale as f64 / SCALE_ONE as f64
    }

    /// Counts an event and refreshes the unit every `REFRESH_EVENTS`: it
    /// follows moving averages, so recomputing it (a division) on every
    /// operation would buy nothing.
    #[inline]
    fn tick_refresh(&mut self) {
        self.since_refresh += 1;
        if self.since_refresh >= REFRESH_EVENTS {
            self.since_refresh = 0;
            self.refresh_unit();
        }
    }

    /// Recomputes the credit unit from the hit age and the share of reuse
    /// the cache misses.
    #[inline]
    fn refresh_unit(&mut self) {
        self.time_scale = (self.hit_age as i64).clamp(1, self.capacity);
        let missed = self.reuse_refs.saturating_sub(self.reuse_hits);
        let scale = self.time_scale as u64;
        // Full credit while at least a third of all re-references miss;
        // less as recency alone catches more of them.
        let unit = ((scale * missed * MISSED_REUSE_GAIN / self.reuse_refs.max(1)).min(scale)
            as i64)
            .max(1);
        if unit != self.unit {
            self.unit = unit;
            self.refresh_offsets();
        }
    }

    /// Recomputes each class's credit in ticks from the unit and the scale.
    fn refresh_offsets(&mut self) {
        let (unit, scale) = (self.unit, self.climber.scale);
        self.offsets = self.credits.map(|c| c * unit * scale / (4 * SCALE_ONE));
    }

    /// Appends `id`, released at `tick`, to `class`.
    #[inline]
    fn push(&mut self, class: usize, id: u32, tick: i64) {
        if self.lists.len(class) == 0 {
            self.heads[class] = tick;
        }
        self.lists.push_back(class, id);
    }

    /// Takes `id` out of its list, keeping that list's head tick; returns
    /// the list.
    #[inline]
    fn unlink(&mut self, id: u32) -> Option<usize> {
        let class = self.lists.list_of(id)?;
        let was_front = self.lists.front(class) == Some(id);
        self.lists.remove(id);
        if was_front {
            if let Some(front) = self.lists.front(class) {
                self.heads[class] = self.ticks[front as usize];
            }
        }
        Some(class)
    }

    #[inline]
    fn class_for(count: u32, hash: SequenceHash) -> usize {
        match count {
            0 | 1 if hash.position() >= DEEP_POSITION => DEEP_NEW,
            0 | 1 => NEW,
            n => (n as usize + 1).min(CLASSES - 1),
        }
    }
}

impl InactiveBackend for AdmissionBackend {
    fn name(&self) -> &'static str {
        "admission"
    }

    fn insert(&mut self, block: BlockId, hash: SequenceHash) {
        let id = block as u32;
        let count = self.sketch.increment_and_estimate(hash);
        self.since_decay += 1;
        if self.since_decay >= SAMPLE_FACTOR * self.time_scale as u64 {
            self.sketch.decay();
            self.since_decay /= 2;
        }
        if self.climber.record_access() {
            self.refresh_offsets();
        }
        if count >= 2 {
            self.reuse_refs += 1;
            if self.reuse_refs >= self.reuse_window {
                self.reuse_refs /= 2;
                self.reuse_hits /= 2;
            }
        }
        self.tick_refresh();
        let mut class = Self::class_for(count, hash);
        if let Some((previous, previous_hash)) = self.last_release {
            if matches!(class, NEW | DEEP_NEW) && !is_child(previous_hash, hash) {
                class = TAIL;
            }
            // Released root first: the previous block has a child after all.
            if is_child(hash, previous_hash) && self.lists.list_of(previous) == Some(TAIL) {
                self.unlink(previous);
                let tick = self.ticks[previous as usize];
                self.push(Self::class_for(1, previous_hash), previous, tick);
            }
        } else if matches!(class, NEW | DEEP_NEW) {
            class = TAIL;
        }
        self.last_release = Some((id, hash));
        let tick = self.next_tick;
        self.ticks[block] = tick;
        self.next_tick += 1;
        self.push(class, id, tick);
    }

    fn remove(&mut self, block: BlockId, _hash: SequenceHash) {
        let age = (self.next_tick - self.ticks[block]) as f64;
        self.hit_age += (age - self.hit_age) / HIT_AGE_WINDOW;
        self.reuse_hits += 1;
        self.tick_refresh();
        let list = self.unlink(block as u32);
        debug_assert!(list.is_some(), "block {block} removed but not cached");
        self.climber.record_hit();
    }

    fn pop_victim(&mut self) -> Option<BlockId> {
        // Ticks increase along each list, so the smallest priority is at
        // one of the fronts; their ticks are cached in `heads`.
        let mut best: Option<(i64, usize)> = None;
        for class in 0..CLASSES {
            if self.lists.len(class) > 0 {
                let priority = self.heads[class] + self.offsets[class];
                if best.is_none_or(|(p, _)| priority < p) {
                    best = Some((priority, class));
                }
            }
        }
        let (_, class) = best?;
        let id = self.lists.front(class)?;
        self.unlink(id);
        Some(id as BlockId)
    }

    fn len(&self) -> usize {
        self.lists.total_len()
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        while let Some(id) = self.pop_victim() {
            sink(id);
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.lists.validate("admission")?;
        for class in 0..CLASSES {
            if let Some(front) = self.lists.front(class) {
                if self.heads[class] != self.ticks[front as usize] {
                    return Err(format!("admission: stale head tick of class {class}"));
                }
            }
            let mut cur = self.lists.front(class);
            let mut last = i64::MIN;
            while let Some(id) = cur {
                let tick = self.ticks[id as usize];
                if tick < last || tick >= self.next_tick {
                    return Err(format!(
                        "admission: class {class} is not in release order at block {id}"
                    ));
                }
                last = tick;
                cur = match self.lists.next(id) {
                    super::NIL => None,
                    next => Some(next),
                };
            }
        }
        if !(0..=SCALE_ONE).contains(&self.climber.scale) {
            return Err(format!(
                "admission: credit scale {} out of bounds",
                self.climber.scale
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
