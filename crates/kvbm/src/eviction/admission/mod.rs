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
//! On release a block joins one of eight LRU lists by class:
//! - *tail*: seen once and never extended — the last block of a prompt,
//!   which a later prompt shares only if it repeats this one exactly;
//! - *deep new*: seen once, at position [`DEEP_POSITION`] or deeper (blocks
//!   near the root are shared by more requests);
//! - *new*: seen once, nearer the root;
//! - *seen 2*, *seen 3*, *seen 4*, *hot* (5 to 14) by sketch count;
//! - *saturated*: the sketch's ceiling, 15 (see below).
//!
//! Each class has an age credit ([`CREDITS`], in quarter units): tail and
//! deep new −1, new +½, seen 2 +2½, seen 3 or 4 +4½, hot +6, saturated
//! +7½. Credit grows roughly with the logarithm of the count: each doubling
//! of the evidence buys about as much time, so a block that was hot long
//! ago does not outlive steady reuse by a wide margin. The victim is the
//! block with the smallest `release tick + scale × credit × unit`, where
//! the tick counts releases. Within a list ticks increase, so only the
//! eight list fronts are compared. With `scale` 0 this is exactly LRU.
//!
//! The *unit* is the workload's own reuse time scale: a moving average of
//! the age (in releases) at which cached blocks are revived, capped at the
//! capacity. A small cache (unit = capacity) gives reused blocks several
//! cache lifetimes; a large cache, where LRU already keeps blocks longer
//! than they take to come back, gives them only a few reuse intervals. The
//! sketch is halved every [`SAMPLE_FACTOR`] capacities of releases: its
//! width is a multiple of the capacity, so this bounds how full it gets.
//! (Halving on the hit-age time scale instead forgot popular prefixes
//! within a few cache-fulls on workloads that reuse quickly, where
//! multi-LRU's never-halved counts then won.) Popularity is a property of
//! the workload, not of the cache, though: a small cache halving every 32
//! capacities forgot within a few thousand releases which prefixes are
//! popular for good, where multi-LRU's never-halved counts won again. So
//! the sketch remembers at least [`MIN_SKETCH_MEMORY`] releases, and is at
//! least that wide. With that memory the counts of recurring conversation
//! turns reach *hot* too, so the prefixes that saturate the sketch (stable
//! system and tool prompts) get a class of their own above it, as
//! multi-LRU's top tier (15 accesses) separates them.
//!
//! A block is a tail when the block released just before it is not its
//! child (requests release their blocks deepest first) — and, for callers
//! that release root first, a tail is reclassified as new when its child is
//! released right after it.
//!
//! # Choosing the scale
//!
//! How much frequency should outweigh recency depends on the workload:
//! with stable popular prefixes (documents, system prompts) near-strict
//! frequency order wins, with conversations that move on it loses to plain
//! recency. So `scale` is chosen among [`SCALES`] (0 = LRU … 16 = nearly
//! strict frequency classes) by miniature simulation: beside the real
//! order, one small cache per candidate replays a fixed spatial sample of
//! the released hashes (one in `rate`, `rate` a power of two up to 64 that
//! leaves each miniature at least [`MINI_SLOTS`] blocks) with that
//! candidate's credits. Every [`CHOICE_PERIOD`] capacities of releases the
//! backend applies the candidate whose miniature hit the most (hits fade
//! by [`SCORE_FADE_SHIFT`] each period, so the choice follows the recent
//! past of about 2^[`SCORE_FADE_SHIFT`] periods; ties go to the smaller
//! scale). Comparing candidates on the same stream at the same time
//! is what makes this robust: a hill climber comparing one scale's hit rate
//! across consecutive periods, as an earlier version did, mostly measures
//! how the workload itself changed.
//!
//! # Cost
//!
//! `insert` and `remove` are O(1): a list splice, one sketch update (four
//! counters) and a parent/child check against the previous release; one
//! release in `rate` also updates the miniatures (one probe of their
//! shared table, then in each a list splice, and an eviction comparing
//! eight fronts when it is full).
//! `pop_victim` compares eight list fronts. Memory, fixed at construction:
//! per block id 8 bytes of links, 1 tag byte and an 8-byte tick (17 bytes);
//! the sketch (the ghost history) has [`SKETCH_FACTOR`] × capacity 4-bit
//! counters (rounded up to a power of two, at least
//! [`MIN_SKETCH_MEMORY`]) in each of 4 rows, i.e. 2 × [`SKETCH_FACTOR`] =
//! 64 bytes per block, up to 128 after rounding; at least 128 KiB (the
//! floor decides below 2,048 blocks).
//! It must be that wide: it sees up to [`SAMPLE_FACTOR`] releases per
//! cached block between two halvings, most of them distinct hashes, and a
//! narrower sketch mistakes first sightings for reuse. The five
//! miniatures share a table of up to 5 × `slots` + 1 entries of 64 bytes
//! (64-bit mixed hash, tick, class, membership, table position and each
//! miniature's links) and 2 to 4 four-byte table positions per entry:
//! 360 to 400 bytes per miniature slot, so 360 to 400 / `rate` bytes per
//! block of capacity: about 6 at `rate` 64 (from 8,192 blocks), up to 400
//! for pools under 256 blocks (`rate` 1, where the miniatures are
//! full-size copies). Nothing allocates after construction.

mod minisim;

use super::list::IndexLists;
use super::{InactiveBackend, NIL};
use crate::tinylfu::{TinyLFUSketch, MAX_COUNT};
use crate::{BlockId, SequenceHash};
use minisim::Miniatures;

const TAIL: usize = 0;
const DEEP_NEW: usize = 1;
const NEW: usize = 2;
/// Blocks whose sketch count is at its ceiling.
const SATURATED: usize = 7;
const CLASSES: usize = 8;

/// The head tick of an empty list: far above any release tick plus credit,
/// so the victim search compares all eight fronts without testing which
/// lists are empty.
const EMPTY_HEAD: i64 = i64::MAX / 4;

/// Age credit of each class in quarter units: tail, deep new, new, seen 2,
/// 3, 4, hot, saturated.
pub const CREDITS: [i64; CLASSES] = [-4, -4, 2, 10, 18, 18, 24, 30];

/// Blocks at this position or deeper count as deep when new.
pub const DEEP_POSITION: u64 = 8;

/// Sketch counters per row, per block of capacity: the sketch must remember
/// hashes of blocks evicted several capacities ago.
pub const SKETCH_FACTOR: usize = 32;

/// Releases between two halvings of the sketch, in capacities (see the
/// module docs).
pub const SAMPLE_FACTOR: u64 = 32;

/// Fewest releases between two halvings of the sketch, and fewest counters
/// per row, whatever the capacity: how popular a prefix is does not depend
/// on the cache size, and small caches forgot it too soon. A floor of
/// 2^16 counters per row is 128 KiB of sketch.
pub const MIN_SKETCH_MEMORY: u64 = 1 << 16;

/// Operations between two recomputations of the credit unit.
const REFRESH_EVENTS: u32 = 32;

/// Hits over which the hit age is averaged.
const HIT_AGE_WINDOW: f64 = 1024.0;

/// `scale` is kept in 1/`SCALE_ONE`.
const SCALE_ONE: i64 = 256;

/// The candidate credit scales, in 1/`SCALE_ONE`: plain LRU, full credit,
/// and credits stretched towards strict frequency order.
pub const SCALES: [i64; 5] = [0, SCALE_ONE, 2 * SCALE_ONE, 4 * SCALE_ONE, 16 * SCALE_ONE];

/// Fewest blocks a miniature cache holds (the sampling rate is lowered
/// until it holds this many, or is 1).
pub const MINI_SLOTS: usize = 128;

/// Highest sampling rate: one hash in 64.
const MAX_SAMPLE_RATE: usize = 64;

/// Releases between two choices of the scale, in capacities.
pub const CHOICE_PERIOD: u64 = 2;

/// Each choice period a miniature's score loses 1/2^`SCORE_FADE_SHIFT` of
/// itself before its new hits are added: the choice averages about
/// 2^`SCORE_FADE_SHIFT` periods. A small miniature hits a few hundred
/// times per period, too few to rank candidates that differ by a percent
/// or two; halving every period (shift 1) let the choice flip between
/// candidates on noise on caches of about 1% of a workload.
pub const SCORE_FADE_SHIFT: u32 = 3;

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
    /// The block released last, its hash decoded, for tail detection
    /// (id `NIL` before the first release).
    last_release: Released,
    /// The block released last, when it is a tail so far: it stays out of
    /// the lists until the next release says whether it has a child (a
    /// root-first caller would otherwise move nearly every block from the
    /// tail list to a new one). It counts as the back of the tail list.
    pending_tail: Option<u32>,
    credits: [i64; CLASSES],
    /// Each class's credit in ticks at the current unit and scale.
    offsets: [i64; CLASSES],
    /// Each list's eviction priority: its front's release tick
    /// ([`EMPTY_HEAD`] for an empty list) plus its class's offset, kept
    /// summed so the victim search reads eight numbers, not sixteen.
    priorities: [i64; CLASSES],
    capacity: i64,
    /// Moving average of the age (in ticks) at which cached blocks are
    /// revived: the time scale on which this workload reuses blocks.
    hit_age: f64,
    /// One credit, in ticks: the hit age, at most the capacity.
    unit: i64,
    /// Operations counted towards the next unit refresh (as of the last
    /// [`sync_counters`](Self::sync_counters)).
    since_refresh: u32,
    sketch: TinyLFUSketch<SequenceHash>,
    /// Sketch increments since its last halving (as of the last sync).
    since_decay: u64,
    /// Releases between two halvings of the sketch.
    decay_period: u64,
    /// The share of the class credits applied, in 1/`SCALE_ONE`: one of
    /// [`SCALES`].
    scale: i64,
    /// One miniature cache per candidate in [`SCALES`].
    minis: Miniatures,
    /// A hash is sampled when these bits of its mix are 0.
    sample_mask: u64,
    /// Each miniature's hits, faded every choice period.
    scores: [u64; SCALES.len()],
    choice_period: u64,
    /// Releases since the last choice (as of the last sync).
    since_choice: u64,
    /// Releases left until the next housekeeping: the nearest of the
    /// sketch halving, the scale choice and the unit refresh. One
    /// countdown instead of three counters, each compared on every
    /// release.
    countdown: u32,
    /// The countdown's value when last set: `span - countdown` releases
    /// are not yet added to the three counters.
    span: u32,
}

/// What tail detection needs of a released block's hash, decoded once.
#[derive(Debug, Clone, Copy)]
struct Released {
    id: u32,
    /// Position in its sequence.
    position: u64,
    /// Its own 64-bit sequence hash.
    current: u64,
    /// The low bits of its parent's sequence hash that it carries.
    fragment: u64,
}

impl Released {
    /// Decodes `hash` as [`SequenceHash::position`],
    /// [`current_sequence_hash`](SequenceHash::current_sequence_hash) and
    /// [`parent_hash_fragment`](SequenceHash::parent_hash_fragment) do,
    /// with 64-bit shifts and no branch on the mode.
    #[inline]
    fn decode(id: u32, hash: SequenceHash) -> Self {
        let packed = hash.as_u128();
        let (high, low) = ((packed >> 64) as u64, packed as u64);
        // Modes 0, 1 and 2 keep 54, 46 and 38 parent bits; mode 3 (never
        // produced) reads as 2.
        let mode = ((high >> 62) as u32).min(2);
        let parent_bits = 54 - 8 * mode;
        let position_bits = 62 - parent_bits;
        Self {
            id,
            position: (high >> parent_bits) & ((1 << position_bits) - 1),
            current: (high << (64 - parent_bits)) | (low >> parent_bits),
            fragment: low & ((1 << parent_bits) - 1),
        }
    }
}

/// Whether `child` names `parent` as its parent block (as
/// [`SequenceHash::parent_fragment_for_child_position`] defines it).
#[inline]
fn is_child(child: &Released, parent: &Released) -> bool {
    child.position == parent.position + 1 && {
        let (_, bits) = crate::tokens::lineage_fragment_layout(child.position);
        child.fragment == parent.current & ((1 << bits) - 1)
    }
}

/// The class with the smallest priority, the lowest class on ties. Every
/// class takes part: an empty one has an [`EMPTY_HEAD`] and so loses to
/// any listed front.
#[inline]
fn best_front(priorities: &[i64; CLASSES]) -> usize {
    let mut best = 0;
    for class in 1..CLASSES {
        if priorities[class] < priorities[best] {
            best = class;
        }
    }
    best
}

impl AdmissionBackend {
    /// An empty backend for block ids below `capacity`.
    ///
    /// # Panics
    /// If `capacity` ≥ `u32::MAX`.
    pub fn new(capacity: usize) -> Self {
        let blocks = capacity.max(1) as i64;
        // The highest power-of-two sampling rate that leaves each
        // miniature `MINI_SLOTS` blocks.
        let mut rate = 1usize;
        while rate * 2 <= MAX_SAMPLE_RATE && capacity / (rate * 2) >= MINI_SLOTS {
            rate *= 2;
        }
        let mut backend = Self {
            lists: IndexLists::new(capacity),
            ticks: crate::huge_pages::filled_huge(0, capacity),
            next_tick: 0,
            last_release: Released {
                id: NIL,
                position: 0,
                current: 0,
                fragment: 0,
            },
            pending_tail: None,
            credits: CREDITS,
            offsets: [0; CLASSES],
            priorities: [EMPTY_HEAD; CLASSES],
            capacity: blocks,
            hit_age: blocks as f64,
            unit: blocks,
            since_refresh: 0,
            // Halved by `insert` on its own schedule instead.
            sketch: TinyLFUSketch::with_sample_size(
                capacity
                    .saturating_mul(SKETCH_FACTOR)
                    .max(MIN_SKETCH_MEMORY as usize),
                u64::MAX,
            ),
            since_decay: 0,
            decay_period: (SAMPLE_FACTOR * blocks as u64).max(MIN_SKETCH_MEMORY),
            scale: SCALE_ONE,
            minis: Miniatures::new(capacity / rate),
            sample_mask: rate as u64 - 1,
            scores: [0; SCALES.len()],
            choice_period: (blocks as u64).saturating_mul(CHOICE_PERIOD).max(256),
            since_choice: 0,
            countdown: 0,
            span: 0,
        };
        backend.schedule();
        backend.refresh_offsets();
        backend
    }

    /// Applies the candidate scale whose miniature hit the most.
    fn choose_scale(&mut self) {
        let mut best = 0;
        for k in 0..SCALES.len() {
            self.scores[k] =
                self.scores[k] - (self.scores[k] >> SCORE_FADE_SHIFT) + self.minis.take_hits(k);
            if self.scores[k] > self.scores[best] {
                best = k;
            }
        }
        self.scale = SCALES[best];
        self.refresh_offsets();
    }

    /// Cached blocks per class: tail, deep new, new, seen 2, seen 3, seen
    /// 4, hot, saturated.
    pub fn class_lens(&self) -> [usize; CLASSES] {
        let mut lens: [usize; CLASSES] = std::array::from_fn(|c| self.lists.len(c));
        lens[TAIL] += usize::from(self.pending_tail.is_some());
        lens
    }

    /// The head tick of `class` when its list is empty: the pending tail's
    /// tick for the tail class, else [`EMPTY_HEAD`].
    #[inline]
    fn empty_head(&self, class: usize) -> i64 {
        match self.pending_tail {
            Some(id) if class == TAIL => self.ticks[id as usize],
            _ => EMPTY_HEAD,
        }
    }

    /// The share of the class credits currently applied (0 = plain LRU,
    /// 1 = full credits, up to 16).
    pub fn credit_scale(&self) -> f64 {
        self.scale as f64 / SCALE_ONE as f64
    }

    /// Adds the releases counted down since the countdown was set to the
    /// three counters.
    #[inline]
    fn sync_counters(&mut self) {
        let elapsed = self.span - self.countdown;
        self.since_decay += u64::from(elapsed);
        self.since_choice += u64::from(elapsed);
        self.since_refresh += elapsed;
        self.span = self.countdown;
    }

    /// Sets the countdown to the nearest due event. Every counter is
    /// below its threshold, so it is at least 1 (and at most
    /// `REFRESH_EVENTS`).
    fn schedule(&mut self) {
        let due = (self.decay_period - self.since_decay)
            .min(self.choice_period - self.since_choice)
            .min(u64::from(REFRESH_EVENTS - self.since_refresh));
        self.countdown = due as u32;
        self.span = self.countdown;
    }

    /// The countdown reached 0: halves the sketch, chooses the scale and
    /// refreshes the unit, each when due (in this order, as if each
    /// counted every release itself).
    fn housekeeping(&mut self) {
        self.sync_counters();
        if self.since_decay >= self.decay_period {
            self.sketch.decay();
            self.since_decay /= 2;
        }
        if self.since_choice >= self.choice_period {
            self.since_choice = 0;
            self.choose_scale();
        }
        // The unit follows moving averages, so recomputing it (a division)
        // on every operation would buy nothing.
        if self.since_refresh >= REFRESH_EVENTS {
            self.since_refresh = 0;
            self.refresh_unit();
        }
        self.schedule();
    }

    /// Recomputes the credit unit from the hit age.
    #[inline]
    fn refresh_unit(&mut self) {
        let unit = (self.hit_age as i64).clamp(1, self.capacity);
        if unit != self.unit {
            self.unit = unit;
            self.refresh_offsets();
        }
    }

    /// Recomputes each class's credit in ticks from the unit and the scale.
    fn refresh_offsets(&mut self) {
        let (unit, credits) = (self.unit, self.credits);
        let offsets = |scale: i64| credits.map(|c| c * unit * scale / (4 * SCALE_ONE));
        let new = offsets(self.scale);
        for ((priority, new), old) in self.priorities.iter_mut().zip(&new).zip(&self.offsets) {
            *priority += new - old;
        }
        self.offsets = new;
        for (k, &scale) in SCALES.iter().enumerate() {
            self.minis.set_offsets(k, offsets(scale));
        }
    }

    /// The priority of `class` whose front was released at `head`.
    #[inline]
    fn priority(&self, class: usize, head: i64) -> i64 {
        head + self.offsets[class]
    }

    /// Appends `id`, released at `tick`, to `class`.
    #[inline]
    fn push(&mut self, class: usize, id: u32, tick: i64) {
        if self.lists.len(class) == 0 {
            self.priorities[class] = self.priority(class, tick);
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
            let head = match self.lists.front(class) {
                Some(front) => self.ticks[front as usize],
                None => self.empty_head(class),
            };
            self.priorities[class] = self.priority(class, head);
        }
        Some(class)
    }

    /// Takes the pending tail out of the cache, if there is one.
    #[inline]
    fn take_pending_tail(&mut self) -> Option<u32> {
        let id = self.pending_tail.take()?;
        if self.lists.len(TAIL) == 0 {
            self.priorities[TAIL] = self.priority(TAIL, EMPTY_HEAD);
        }
        Some(id)
    }

    /// The class of a block at `position` whose hash the sketch counts
    /// `count` times.
    #[inline]
    fn class_for(count: u32, position: u64) -> usize {
        match count {
            0 | 1 if position >= DEEP_POSITION => DEEP_NEW,
            0 | 1 => NEW,
            MAX_COUNT.. => SATURATED,
            n => (n as usize + 1).min(SATURATED - 1),
        }
    }
}

impl InactiveBackend for AdmissionBackend {
    fn name(&self) -> &'static str {
        "admission"
    }

    fn insert(&mut self, block: BlockId, hash: SequenceHash) {
        let id = block as u32;
        // The sketch is halved below, on the capacity's schedule.
        let count = self.sketch.increment_and_estimate_unclocked(hash);
        self.countdown -= 1;
        if self.countdown == 0 {
            self.housekeeping();
        }
        let released = Released::decode(id, hash);
        let mut class = Self::class_for(count, released.position);
        let previous = self.last_release;
        if previous.id != NIL {
            if matches!(class, NEW | DEEP_NEW) && !is_child(&previous, &released) {
                class = TAIL;
            }
            // The pending tail joins its list now: a tail, unless (released
            // root first) this block is its child after all.
            if self.pending_tail == Some(previous.id) {
                self.pending_tail = None;
                let tick = self.ticks[previous.id as usize];
                if is_child(&released, &previous) {
                    if self.lists.len(TAIL) == 0 {
                        self.priorities[TAIL] = self.priority(TAIL, EMPTY_HEAD);
                    }
                    self.push(Self::class_for(1, previous.position), previous.id, tick);
                } else {
                    self.push(TAIL, previous.id, tick);
                }
            }
        } else if matches!(class, NEW | DEEP_NEW) {
            class = TAIL;
        }
        self.last_release = released;
        let tick = self.next_tick;
        if let Some(mixed) = minisim::sampled(hash, self.sample_mask) {
            self.minis.release(mixed, class, tick);
        }
        self.ticks[block] = tick;
        self.next_tick += 1;
        if class == TAIL {
            if self.lists.len(TAIL) == 0 {
                self.priorities[TAIL] = self.priority(TAIL, tick);
            }
            self.pending_tail = Some(id);
        } else {
            self.push(class, id, tick);
        }
    }

    fn remove(&mut self, block: BlockId, _hash: SequenceHash) {
        let age = (self.next_tick - self.ticks[block]) as f64;
        self.hit_age += (age - self.hit_age) / HIT_AGE_WINDOW;
        self.sync_counters();
        self.since_refresh += 1;
        if self.since_refresh >= REFRESH_EVENTS {
            self.since_refresh = 0;
            self.refresh_unit();
        }
        self.schedule();
        let id = block as u32;
        if self.pending_tail == Some(id) {
            self.take_pending_tail();
        } else {
            let list = self.unlink(id);
            debug_assert!(list.is_some(), "block {block} removed but not cached");
        }
    }

    fn pop_victim(&mut self) -> Option<BlockId> {
        // Ticks increase along each list, so the smallest priority is at
        // one of the fronts; their priorities are cached, and empty lists
        // never win (ties go to the lower class).
        let class = best_front(&self.priorities);
        let Some(id) = self.lists.front(class) else {
            // An empty tail list wins only through its pending block.
            return self.take_pending_tail().map(|id| id as BlockId);
        };
        // The victim is its list's front: no need for `unlink`'s search.
        let head = match self.lists.remove_front(class, id) {
            NIL => self.empty_head(class),
            front => self.ticks[front as usize],
        };
        self.priorities[class] = self.priority(class, head);
        Some(id as BlockId)
    }

    fn len(&self) -> usize {
        self.lists.total_len() + usize::from(self.pending_tail.is_some())
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        while let Some(id) = self.pop_victim() {
            sink(id);
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.lists.validate("admission")?;
        for class in 0..CLASSES {
            let head = match self.lists.front(class) {
                Some(front) => self.ticks[front as usize],
                None => self.empty_head(class),
            };
            if self.priorities[class] != self.priority(class, head) {
                return Err(format!("admission: stale head tick of class {class}"));
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
                    NIL => None,
                    next => Some(next),
                };
            }
        }
        if let Some(id) = self.pending_tail {
            if self.lists.list_of(id).is_some() {
                return Err(format!("admission: pending tail {id} is also listed"));
            }
            if self.last_release.id != id {
                return Err(format!(
                    "admission: pending tail {id} is not the last release"
                ));
            }
        }
        if self.countdown == 0 || self.countdown > self.span || self.span > REFRESH_EVENTS {
            return Err(format!(
                "admission: countdown {} of {} out of range",
                self.countdown, self.span
            ));
        }
        if !SCALES.contains(&self.scale) {
            return Err(format!(
                "admission: credit scale {} is no candidate",
                self.scale
            ));
        }
        self.minis.validate()
    }
}

#[cfg(test)]
mod tests;
