//! [`ClusterIndex`]: which instance holds which sequence hash, fed by the
//! instances' event batches.

use std::collections::HashMap;

use kvbm::events::{InstanceId, KvCacheEvents, KvbmCacheEvents};
use kvbm::{PrehashedBuildHasher, SequenceHash};

use crate::holders::{bit, AfterRemove, HolderSlab, Holders, MAX_SLOTS};
use crate::matches::Matches;
use crate::table::HashTable;

/// Batches kept per instance while it waits for a snapshot; past this the
/// oldest are dropped and the snapshot that arrives must be newer than them.
const MAX_PENDING_BATCHES: usize = 4096;

/// Distance, in query blocks, between the slot being compared and the one
/// being loaded ahead ([`HashTable::touch`]).
const LOOKAHEAD: usize = 8;

/// A lineage hash as the table's two key words.
#[inline]
fn split(hash: SequenceHash) -> (u64, u64) {
    let v = hash.as_u128();
    ((v >> 64) as u64, v as u64)
}

#[inline]
fn join(hi: u64, lo: u64) -> SequenceHash {
    SequenceHash::from_u128(((hi as u128) << 64) | lo as u128)
}

/// What [`ClusterIndex::apply`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The batch was the next one expected from its instance.
    InSync,
    /// The batch was already covered (a duplicate, or older than the
    /// snapshot applied); ignored.
    Stale,
    /// `missed` batches of the instance were lost before this one. The batch
    /// was applied; the instance's entries may lack creates and keep stale
    /// hashes until a snapshot replaces them.
    Gap {
        /// How many batches are missing.
        missed: u64,
    },
    /// The instance was heard for the first time, mid-stream (its sequence
    /// numbers do not start at 1): what it announced before is unknown.
    FirstHeard,
    /// The batch carried no sequence number (a kvbm-logical sender): gaps
    /// cannot be seen.
    Unsequenced,
    /// `Shutdown`: the instance and all its entries were dropped.
    Dropped,
}

impl Applied {
    /// Whether the instance's entries are in doubt until a snapshot
    /// ([`ClusterIndex::apply_snapshot`]) replaces them.
    pub fn needs_snapshot(&self) -> bool {
        matches!(self, Applied::Gap { .. } | Applied::FirstHeard)
    }
}

/// What [`ClusterIndex::apply_snapshot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotOutcome {
    /// The instance's entries were replaced, then the batches numbered above
    /// the snapshot that arrived meanwhile were applied again: the instance
    /// is in sync.
    Resynced,
    /// Batches between the snapshot and the oldest one kept are missing (the
    /// snapshot is too old): the entries were replaced but the instance still
    /// needs a newer snapshot.
    StillBehind,
}

#[derive(Debug)]
struct Instance {
    id: InstanceId,
    /// Sequence number of the last batch applied (0: none yet).
    last_sequence: u64,
    /// Set from a gap or a mid-stream first batch until a snapshot lands.
    awaiting_snapshot: bool,
    /// Batches applied while awaiting a snapshot, replayed on top of it.
    pending: Vec<(u64, KvCacheEvents)>,
    /// Hashes this instance holds in the index.
    hashes: usize,
}

/// Memory held by a [`ClusterIndex`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexMemory {
    /// Distinct hashes indexed.
    pub hashes: usize,
    /// Bytes of the hash table (entries and control bytes, at capacity).
    pub table_bytes: usize,
    /// Bytes of the shared-holder bitsets.
    pub holder_bytes: usize,
    /// Bytes of everything else (instances, position bitmap, pending
    /// batches).
    pub other_bytes: usize,
}

impl IndexMemory {
    /// All bytes divided by the indexed hashes.
    pub fn bytes_per_hash(&self) -> f64 {
        (self.table_bytes + self.holder_bytes + self.other_bytes) as f64 / self.hashes.max(1) as f64
    }
}

/// A bad argument to a [`ClusterIndex`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum IndexError {
    /// More instances than the holder encoding can address.
    #[error("too many instances (at most {MAX_SLOTS})")]
    TooManyInstances,
}

/// The prefix index of a cluster: for every sequence hash some instance
/// announced, the set of instances holding it.
///
/// Feed it every instance's batches with [`apply`](Self::apply) (in each
/// instance's order; instances may interleave freely) and, when a batch
/// reports [`Applied::needs_snapshot`], the instance's full set of hashes
/// with [`apply_snapshot`](Self::apply_snapshot). Ask it with
/// [`find_matches`](Self::find_matches).
///
/// # Layout
/// One open-addressing hash table from the 128-bit lineage hash to a
/// 32-bit holder word (24-byte slots, at most 3/4 full): an instance slot inline when one instance holds the
/// hash, else the index of a bitset in a slab. Instances are numbered by
/// dense slots reused after a `Shutdown`. Memory grows with the number of
/// distinct indexed hashes (see [`memory`](Self::memory)); nothing is
/// allocated per entry.
///
/// # Match resolution
/// A lineage hash names a whole prefix, so an instance that holds the hash
/// at query index `i` has (had) computed the first `i + 1` blocks. The index
/// also remembers at which block positions events ever arrived (all of them
/// with `AllEventsPolicy`; 16, 32, 64, … with `PowerOfTwoPolicy`).
/// [`find_matches`](Self::find_matches) walks the query from the root over
/// those *indexed positions* only, and an instance scores `i + 1` for the
/// deepest indexed position `i` up to which it held every indexed position
/// of the query. With full events that is exactly the number of leading
/// blocks it holds; with power-of-two events it is the deepest power of two
/// it holds, a lower bound accurate to within a factor of two (an instance
/// holding 40 leading blocks scores 33). Instances should share one policy:
/// an instance that does not announce a position others announce scores no
/// deeper than that position.
#[derive(Debug)]
pub struct ClusterIndex {
    table: HashTable,
    holders: HolderSlab,
    slots: Vec<Option<Instance>>,
    free_slots: Vec<u32>,
    by_id: HashMap<InstanceId, u32, PrehashedBuildHasher>,
    /// Bit `p` is set once an event at block position `p` arrived.
    positions: Vec<u64>,
}

impl Default for ClusterIndex {
    fn default() -> Self {
        Self::new()
    }
}

impl ClusterIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            table: HashTable::new(),
            holders: HolderSlab::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            by_id: HashMap::default(),
            positions: Vec::new(),
        }
    }

    /// An empty index with room for `hashes` distinct hashes.
    pub fn with_capacity(hashes: usize) -> Self {
        let mut index = Self::new();
        index.table.reserve(hashes);
        index
    }

    /// Applies one batch of `batch.instance_id`, numbered `sequence` by its
    /// sender (`None` for senders that do not number batches).
    ///
    /// A batch numbered 1 from an instance already known means the instance
    /// restarted: its old entries are dropped first.
    pub fn apply(
        &mut self,
        batch: &KvbmCacheEvents,
        sequence: Option<u64>,
    ) -> Result<Applied, IndexError> {
        if let KvCacheEvents::Shutdown = batch.events {
            self.drop_instance(batch.instance_id);
            return Ok(Applied::Dropped);
        }
        let known = self.by_id.contains_key(&batch.instance_id);
        if known && sequence == Some(1) {
            // A restarted sender begins its numbering again.
            self.drop_instance(batch.instance_id);
        }
        let (slot, fresh) = match self.by_id.get(&batch.instance_id) {
            Some(&slot) => (slot, false),
            None => (self.add_instance(batch.instance_id)?, true),
        };
        let outcome = {
            let inst = self.instance_mut(slot);
            match sequence {
                None => Applied::Unsequenced,
                Some(s) if fresh => {
                    inst.last_sequence = s;
                    if s == 1 {
                        Applied::InSync
                    } else {
                        inst.awaiting_snapshot = true;
                        Applied::FirstHeard
                    }
                }
                Some(s) if s <= inst.last_sequence => return Ok(Applied::Stale),
                Some(s) => {
                    let missed = s - inst.last_sequence - 1;
                    inst.last_sequence = s;
                    if missed == 0 {
                        Applied::InSync
                    } else {
                        inst.awaiting_snapshot = true;
                        Applied::Gap { missed }
                    }
                }
            }
        };
        let inst = self.instance_mut(slot);
        if inst.awaiting_snapshot {
            if let Some(s) = sequence {
                if inst.pending.len() == MAX_PENDING_BATCHES {
                    inst.pending.remove(0);
                }
                inst.pending.push((s, batch.events.clone()));
            }
        }
        self.apply_events(slot, &batch.events);
        Ok(outcome)
    }

    /// Replaces the entries of `instance` by `hashes`, its registry as of
    /// its batch number `sequence`, then re-applies the batches numbered
    /// above `sequence` that arrived while it was awaited.
    pub fn apply_snapshot(
        &mut self,
        instance: InstanceId,
        sequence: u64,
        hashes: &[SequenceHash],
    ) -> Result<SnapshotOutcome, IndexError> {
        let slot = match self.by_id.get(&instance) {
            Some(&slot) => slot,
            None => self.add_instance(instance)?,
        };
        self.clear_slot(slot);
        for &h in hashes {
            self.insert(slot, h);
        }
        let pending = std::mem::take(&mut self.instance_mut(slot).pending);
        let mut last = sequence;
        let mut behind = false;
        for (s, events) in pending.iter().filter(|(s, _)| *s > sequence) {
            if *s != last + 1 {
                behind = true;
            }
            last = *s;
            self.apply_events(slot, events);
        }
        let inst = self.instance_mut(slot);
        inst.last_sequence = inst.last_sequence.max(last);
        if behind {
            inst.pending = pending;
            inst.pending.retain(|(s, _)| *s > sequence);
            Ok(SnapshotOutcome::StillBehind)
        } else {
            inst.awaiting_snapshot = false;
            Ok(SnapshotOutcome::Resynced)
        }
    }

    /// Marks `instance` as in doubt, as a gap would (a transport does this
    /// when it was disconnected and may have missed anything): from now on
    /// its batches are kept for replay until a snapshot lands. Returns
    /// whether the instance is known.
    pub fn mark_stale(&mut self, instance: InstanceId) -> bool {
        match self.by_id.get(&instance) {
            Some(&slot) => {
                self.instance_mut(slot).awaiting_snapshot = true;
                true
            }
            None => false,
        }
    }

    /// Whether `instance` waits for a snapshot.
    pub fn is_awaiting_snapshot(&self, instance: InstanceId) -> bool {
        self.by_id
            .get(&instance)
            .is_some_and(|&s| self.instance(s).awaiting_snapshot)
    }

    /// Forgets `instance` and every hash it held. Returns whether it was
    /// known.
    pub fn drop_instance(&mut self, instance: InstanceId) -> bool {
        let Some(slot) = self.by_id.remove(&instance) else {
            return false;
        };
        self.clear_slot(slot);
        self.slots[slot as usize] = None;
        self.free_slots.push(slot);
        true
    }

    /// The instances known, in slot order.
    pub fn instances(&self) -> impl Iterator<Item = InstanceId> + '_ {
        self.slots.iter().flatten().map(|i| i.id)
    }

    /// The instances whose entries are in doubt (a gap or a mid-stream first
    /// batch, no snapshot since): a transport retries its snapshot requests
    /// for these.
    pub fn awaiting_snapshot(&self) -> impl Iterator<Item = InstanceId> + '_ {
        self.slots
            .iter()
            .flatten()
            .filter(|i| i.awaiting_snapshot)
            .map(|i| i.id)
    }

    /// Sequence number of the last batch applied from `instance`.
    pub fn last_sequence(&self, instance: InstanceId) -> Option<u64> {
        self.by_id
            .get(&instance)
            .map(|&s| self.instance(s).last_sequence)
    }

    /// How many hashes `instance` holds in the index.
    pub fn instance_len(&self, instance: InstanceId) -> usize {
        self.by_id
            .get(&instance)
            .map_or(0, |&s| self.instance(s).hashes)
    }

    /// Every hash `instance` holds, in no particular order (walks the whole
    /// table: for checks and tests, not for hot paths).
    pub fn instance_hashes(&self, instance: InstanceId) -> Vec<SequenceHash> {
        let Some(&slot) = self.by_id.get(&instance) else {
            return Vec::new();
        };
        self.table
            .iter()
            .filter(|&(_, _, w)| self.holders.contains(w, slot))
            .map(|(hi, lo, _)| join(hi, lo))
            .collect()
    }

    /// Whether `instance` holds `hash`.
    pub fn holds(&self, instance: InstanceId, hash: SequenceHash) -> bool {
        let (hi, lo) = split(hash);
        match (self.by_id.get(&instance), self.table.get(hi, lo)) {
            (Some(&slot), Some(w)) => self.holders.contains(w, slot),
            _ => false,
        }
    }

    /// Distinct hashes indexed.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.table.len() == 0
    }

    /// Memory held, for the bytes-per-hash figure.
    pub fn memory(&self) -> IndexMemory {
        let pending: usize = self
            .slots
            .iter()
            .flatten()
            .map(|i| i.pending.capacity() * std::mem::size_of::<(u64, KvCacheEvents)>())
            .sum();
        IndexMemory {
            hashes: self.table.len(),
            table_bytes: self.table.heap_bytes(),
            holder_bytes: self.holders.heap_bytes(),
            other_bytes: self.slots.capacity() * std::mem::size_of::<Option<Instance>>()
                + self.positions.capacity() * 8
                + self.by_id.capacity() * 24
                + pending,
        }
    }

    /// Per instance, how many leading blocks of `query` it holds (see the
    /// type's docs for how sparse events resolve). Instances that hold none
    /// are left out.
    pub fn find_matches(&self, query: &[SequenceHash]) -> Matches {
        let mut out = Matches::default();
        self.find_matches_into(query, &mut out);
        out
    }

    /// [`find_matches`](Self::find_matches) into a reused buffer: allocates
    /// nothing once `out` has grown to the cluster's size.
    pub fn find_matches_into(&self, query: &[SequenceHash], out: &mut Matches) {
        out.clear();
        let width = self.holders.width();
        out.alive.clear();
        out.alive.resize(width, 0);
        let mut started = false;
        let mut depth = 0usize;
        for &hash in query.iter().take(LOOKAHEAD) {
            let (hi, lo) = split(hash);
            self.table.touch(hi, lo);
        }
        for (i, &hash) in query.iter().enumerate() {
            if let Some(&ahead) = query.get(i + LOOKAHEAD) {
                let (hi, lo) = split(ahead);
                self.table.touch(hi, lo);
            }
            if !self.position_indexed(hash.position()) {
                continue;
            }
            let (hi, lo) = split(hash);
            let Some(word) = self.table.get(hi, lo) else {
                break;
            };
            match Holders::decode(word) {
                Holders::One(slot) => {
                    let w = slot as usize / 64;
                    if started {
                        if out.alive[w] & bit(slot) == 0 {
                            break;
                        }
                        for (j, a) in out.alive.iter_mut().enumerate() {
                            let keep = if j == w { bit(slot) } else { 0 };
                            let lost = *a & !keep;
                            if lost != 0 {
                                push_bits(&mut out.scores, &self.slots, j, lost, depth);
                            }
                            *a = keep;
                        }
                    } else {
                        out.alive[w] = bit(slot);
                    }
                }
                Holders::Many(set) => {
                    let bits = self.holders.set(set);
                    if started {
                        let mut any = 0;
                        for (j, (a, &b)) in out.alive.iter_mut().zip(bits).enumerate() {
                            let lost = *a & !b;
                            if lost != 0 {
                                push_bits(&mut out.scores, &self.slots, j, lost, depth);
                            }
                            *a &= b;
                            any |= *a;
                        }
                        if any == 0 {
                            break;
                        }
                    } else {
                        out.alive.copy_from_slice(bits);
                    }
                }
            }
            started = true;
            depth = i + 1;
        }
        if started {
            for j in 0..width {
                let alive = out.alive[j];
                if alive != 0 {
                    push_bits(&mut out.scores, &self.slots, j, alive, depth);
                }
            }
        }
    }

    #[inline]
    fn position_indexed(&self, position: u64) -> bool {
        let word = (position / 64) as usize;
        word < self.positions.len() && self.positions[word] & (1 << (position % 64)) != 0
    }

    fn mark_position(&mut self, position: u64) {
        let word = (position / 64) as usize;
        if word >= self.positions.len() {
            self.positions.resize(word + 1, 0);
        }
        self.positions[word] |= 1 << (position % 64);
    }

    fn apply_events(&mut self, slot: u32, events: &KvCacheEvents) {
        match events {
            KvCacheEvents::Create(hashes) => {
                self.table.reserve(hashes.len());
                for (i, &h) in hashes.iter().enumerate() {
                    if let Some(&ahead) = hashes.get(i + LOOKAHEAD) {
                        let (hi, lo) = split(ahead);
                        self.table.touch(hi, lo);
                    }
                    self.insert(slot, h);
                }
            }
            KvCacheEvents::Remove(hashes) => {
                for (i, &h) in hashes.iter().enumerate() {
                    if let Some(&ahead) = hashes.get(i + LOOKAHEAD) {
                        let (hi, lo) = split(ahead);
                        self.table.touch(hi, lo);
                    }
                    self.remove(slot, h);
                }
            }
            KvCacheEvents::Shutdown => {}
        }
    }

    #[inline]
    fn insert(&mut self, slot: u32, hash: SequenceHash) {
        self.mark_position(hash.position());
        let (hi, lo) = split(hash);
        let holders = &mut self.holders;
        let mut added = true;
        self.table.upsert(hi, lo, |word| match word {
            None => Holders::One(slot).encode(),
            Some(w) if holders.contains(w, slot) => {
                added = false;
                w
            }
            Some(w) => holders.insert(w, slot),
        });
        if added {
            self.instance_mut(slot).hashes += 1;
        }
    }

    #[inline]
    fn remove(&mut self, slot: u32, hash: SequenceHash) {
        let (hi, lo) = split(hash);
        let holders = &mut self.holders;
        let mut removed = true;
        self.table
            .update(hi, lo, |w| match holders.remove(w, slot) {
                AfterRemove::Absent => {
                    removed = false;
                    Some(w)
                }
                AfterRemove::Empty => None,
                AfterRemove::Holders(n) => Some(n),
            })
            .map(|_| ())
            .unwrap_or_else(|| removed = false);
        if removed {
            self.instance_mut(slot).hashes -= 1;
        }
    }

    /// Removes `slot` from every entry.
    fn clear_slot(&mut self, slot: u32) {
        if self.instance(slot).hashes == 0 {
            return;
        }
        let holders = &mut self.holders;
        self.table.retain_map(|w| match holders.remove(w, slot) {
            AfterRemove::Absent => Some(w),
            AfterRemove::Empty => None,
            AfterRemove::Holders(n) => Some(n),
        });
        self.instance_mut(slot).hashes = 0;
    }

    fn add_instance(&mut self, id: InstanceId) -> Result<u32, IndexError> {
        let slot = match self.free_slots.pop() {
            Some(slot) => slot,
            None => {
                if self.slots.len() >= MAX_SLOTS {
                    return Err(IndexError::TooManyInstances);
                }
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.holders.ensure_slots(self.slots.len());
        self.slots[slot as usize] = Some(Instance {
            id,
            last_sequence: 0,
            awaiting_snapshot: false,
            pending: Vec::new(),
            hashes: 0,
        });
        self.by_id.insert(id, slot);
        Ok(slot)
    }

    #[inline]
    fn instance(&self, slot: u32) -> &Instance {
        self.slots[slot as usize]
            .as_ref()
            .expect("slot of a known instance")
    }

    #[inline]
    fn instance_mut(&mut self, slot: u32) -> &mut Instance {
        self.slots[slot as usize]
            .as_mut()
            .expect("slot of a known instance")
    }
}

/// Appends `(instance, depth)` for every slot set in `bits` (word `word`).
#[inline]
fn push_bits(
    scores: &mut Vec<(InstanceId, usize)>,
    slots: &[Option<Instance>],
    word: usize,
    mut bits: u64,
    depth: usize,
) {
    while bits != 0 {
        let slot = word * 64 + bits.trailing_zeros() as usize;
        bits &= bits - 1;
        if let Some(Some(inst)) = slots.get(slot) {
            scores.push((inst.id, depth));
        }
    }
}
