//! Leaf-only eviction over the prefix tree of cached blocks.
//!
//! Cached blocks form a forest: the parent of a block at position `p > 0` is
//! the cached block at position `p - 1` whose sequence hash, cut to the
//! fragment width of position `p`, equals the block's parent fragment. Only
//! *leaves* — cached blocks without cached children — are evicted, so a
//! cached prefix is never torn out from under a cached continuation and the
//! cache keeps whole prefixes rather than prefixes with holes.
//!
//! # Which leaf goes first
//!
//! The leaf released the longest ago. Every cached block keeps the tick of
//! its release (a counter bumped per `insert`) until it leaves the cache;
//! leaves are evicted in tick order. A block becomes a leaf when it is
//! released without cached children, or when its last cached child leaves
//! the cache (evicted or revived); in the second case it takes the place its
//! own release tick gives it, not the back of the queue. A block whose
//! parent is not cached is a root and is evicted like any other leaf once it
//! has no cached children.
//!
//! Ordering by the time a block *became a leaf* would be simpler but lets
//! dead prefixes linger: evicting the tip of a stale chain of `n` blocks
//! re-queues its parent behind every fresher leaf, so the chain survives `n`
//! rounds of the queue while recently used blocks are evicted. By release
//! tick, the parent of an evicted oldest leaf was released no later than
//! it (prompts are released root first, or within the same release when
//! leaf first), so it is the next victim and the stale chain goes as a whole,
//! tip first.
//!
//! # Keeping the queue sorted
//!
//! Leaves sit in one list, linked through their records, sorted by tick
//! (ticks are 31 bits, renumbered in order when they run out). A released
//! leaf has
//! the largest tick yet and is appended. A parent that becomes a leaf is
//! placed by walking from the gap its departing child left (or, if that
//! child was not a leaf, from the list end nearer by tick) to its tick's
//! position. Chains are released in one go, so a parent's tick is next to its
//! child's and the walk is empty in the common cases: eviction re-leafs the
//! parent at the front, revival right where the child was. The walk passes
//! only leaves whose ticks lie between the parent's and the child's, so the
//! worst case — a parent released long before a child that then left — is
//! linear in the number of leaves; nothing allocates either way.
//!
//! # Structure
//!
//! Relations are never stored as links between blocks: both directions are
//! resolved through keys `(position, fragment)`. A block is filed under its
//! own key — its position and its hash cut to the fragment width its
//! children carry — and counted as a child under its parent's key. Both
//! keys are cut from the block's sequence hash, which the store keeps and
//! lends the backend on every call ([`BlockHashes`]), so the backend keeps
//! only a 12-byte record per block (release tick, and its links in the leaf
//! queue or, once it has cached children, their count; see `records.rs`).
//! Filed blocks sit in a hash table of ids whose lookups compare the key
//! with the one cut from the candidate's hash; children counted under a key
//! that no cached block is filed under
//! wait in a small map of *ghost* keys. So parents and children may be
//! inserted and removed in any order: a parent released after its children
//! takes over their count from its ghost, a parent that leaves hands its
//! count back.
//!
//! # Revived blocks stay in the tree
//!
//! A block that leaves the cache while it still has cached descendants (a
//! match revived it) leaves a ghost behind that keeps counting as a child
//! of its own parent. Otherwise reviving the middle of a cached chain would
//! make the block above it a leaf, and evicting that block would strand the
//! cached blocks below the revived one (a prefix match reaches them only
//! through their ancestors). With the ghost, the chain below is evicted tip
//! first, and the last descendant to leave removes the ghost and, if it was
//! the parent's last child, makes the parent a leaf again (kvbm-logical
//! 1.6.1 keeps revived blocks in its tree the same way). A ghost whose
//! parent was not cached when it was counted (a placeholder for a parent
//! not yet released, held or evicted) counts under nobody. A ghost does not
//! depend on what happens to its block: if the block is freed without
//! coming back (evict-on-reset, a poisoned store) the ghost goes with its
//! last descendant. So every ghost has a cached descendant, and every
//! cached subtree has a leaf.
//!
//! # Collisions
//!
//! If a block's own key is already taken by another cached block (a
//! duplicate of the same hash, or a fragment collision) it becomes a
//! *shadow*: it still counts as its parent's child, but children resolve to
//! the block that holds the key, and a shadow is always a leaf. Shadows are
//! not promoted when the key's holder leaves; the holder's children then
//! become roots. Either way no state is corrupted and every block stays
//! evictable.

mod records;

use self::records::{Node, NodeKey, Records, NO_KEY};
use super::{BlockHashes, InactiveBackend, NIL};
use crate::id_index::IdIndex;
use crate::prehashed::PrehashedMap;
use crate::{BlockId, SequenceHash};

// A `NodeKey` is a `(position, fragment)` pair packed into 64 bits: the
// fragment width a child of `position` carries and the width of `position`
// add up to 62 (see [`SequenceHash`]'s layout), so
// `[mode:2][position][fragment]` is exact.

#[inline]
fn node_key(position: u64, fragment: u64) -> NodeKey {
    let (mode, fragment_bits) = crate::tokens::lineage_fragment_layout(position + 1);
    (u64::from(mode) << 62) | (position << fragment_bits) | fragment
}

/// Positions of the first mode (below 2^8) keep their parent fragment in
/// the low 54 bits of the packed hash, the 64-bit sequence hash above it
/// and the position above that; a key of that mode is
/// `[0:2][position:8][fragment:54]` (see `SequenceHash`'s layout). The
/// fast paths below read these fields straight from the packed value: the
/// key table cuts a key from a block's hash on every probe, and most
/// blocks sit at positions below 255.
const MODE0_FRAGMENT_BITS: u32 = 54;
const MODE0_FRAGMENT: u64 = (1 << MODE0_FRAGMENT_BITS) - 1;

/// The position of a block whose packed hash is of the first mode.
#[inline]
fn mode0_position(packed: u128) -> Option<u64> {
    (packed >> 126 == 0).then_some((packed >> (64 + MODE0_FRAGMENT_BITS)) as u64 & 0xFF)
}

/// The key a block is filed under: children look for it by their parent
/// fragment, so the fragment is cut to the width a child at `position + 1`
/// stores.
#[inline]
fn own_key(hash: SequenceHash) -> NodeKey {
    let packed = hash.as_u128();
    if let Some(position) = mode0_position(packed) {
        // A child of 255 is at 256, in the next mode, with a narrower
        // fragment.
        if position < 255 {
            let current = (packed >> MODE0_FRAGMENT_BITS) as u64;
            return (position << MODE0_FRAGMENT_BITS) | (current & MODE0_FRAGMENT);
        }
    }
    let position = hash.position();
    node_key(
        position,
        hash.parent_fragment_for_child_position(position + 1),
    )
}

/// The key of the block's parent, `None` at position 0.
#[inline]
fn parent_key(hash: SequenceHash) -> Option<NodeKey> {
    let packed = hash.as_u128();
    if let Some(position) = mode0_position(packed) {
        let parent = position.checked_sub(1)?;
        return Some((parent << MODE0_FRAGMENT_BITS) | (packed as u64 & MODE0_FRAGMENT));
    }
    let position = hash.position().checked_sub(1)?;
    Some(node_key(position, hash.parent_hash_fragment()))
}

/// What validation expects under one key: the filed block (or `NIL`) and
/// the cached blocks naming the key as their parent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    node: u32,
    children: u32,
}

const VACANT: Expected = Expected {
    node: NIL,
    children: 0,
};

/// The parent key of a block at position 0, and of a ghost counted under
/// nobody.
const NO_PARENT: NodeKey = NO_KEY;

/// A key no cached block is filed under that still has cached descendants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ghost {
    /// Cached blocks and ghosts counted under this key as children.
    children: u32,
    /// The key this ghost is counted under as a child: its parent's when it
    /// is a revived block that was counted there, [`NO_PARENT`] otherwise.
    parent: NodeKey,
}

/// The key block `id` is filed under, read through its hash; [`NO_KEY`]
/// (which matches no block) if the hash cannot be read.
#[inline]
fn own_key_of(hashes: BlockHashes<'_>, id: u32) -> NodeKey {
    hashes.get(id as BlockId).map_or(NO_KEY, own_key)
}

/// A block's own and parent key ([`NO_PARENT`] at position 0).
#[inline]
fn keys(hash: SequenceHash) -> (NodeKey, NodeKey) {
    (own_key(hash), parent_key(hash).unwrap_or(NO_PARENT))
}

/// Block `id`'s own and parent key, read through its hash.
#[inline]
fn keys_of(hashes: BlockHashes<'_>, id: u32) -> (NodeKey, NodeKey) {
    match hashes.get(id as BlockId) {
        Some(hash) => keys(hash),
        None => {
            debug_assert!(false, "lineage: no hash for cached block {id}");
            (NO_KEY, NO_PARENT)
        }
    }
}

/// Evicts only leaves of the cached prefix tree, least recently released
/// leaf first.
///
/// Driven by a manager, it reads blocks' hashes from the store (the
/// `_with_hashes` methods of [`InactiveBackend`]) and keeps 12 bytes per
/// block plus its key table. Called directly through the plain methods, it
/// keeps a copy of each inserted hash itself (16 bytes more per block,
/// allocated on the first plain `insert`); use one form or the other.
///
/// ```
/// use kvbm::eviction::{InactiveBackend, LineageBackend};
/// use kvbm::SequenceHash;
///
/// let root = SequenceHash::root(10);
/// let child = root.extend(11);
/// let mut lineage = LineageBackend::new(4);
/// lineage.insert(0, root);
/// lineage.insert(1, child);
/// // The root was released first, but its child depends on it.
/// assert_eq!(lineage.pop_victim(), Some(1));
/// assert_eq!(lineage.pop_victim(), Some(0));
/// ```
#[derive(Debug, Clone)]
pub struct LineageBackend {
    tree: Tree,
    /// The hashes of blocks inserted through the plain methods, by id;
    /// empty while the backend is driven with the store's hashes.
    own_hashes: Vec<SequenceHash>,
}

/// The backend's state, which reads blocks' hashes through the
/// [`BlockHashes`] each call is given.
#[derive(Debug, Clone)]
struct Tree {
    /// Filed blocks by their own key. The table holds ids only and finds a
    /// key through the block's hash (5 bytes per bucket rather than 17
    /// for a key and two counts).
    filed: IdIndex<NodeKey>,
    /// Children counted under keys that no cached block is filed under
    /// (their parent is held, evicted or not yet released).
    ghosts: PrehashedMap<NodeKey, Ghost>,
    /// One record per block, and the leaves (sorted by ascending tick)
    /// linked through them.
    nodes: Records,
    len: usize,
    /// Victims still in `filed`, their removal put off (see
    /// [`Tree::settle`]); empty between allocations, and always in small
    /// caches.
    deferred: Vec<(NodeKey, u32)>,
    /// Whether `pop_victim` defers its key-table removals: in caches of
    /// [`PREFETCH_MIN_BLOCKS`](crate::prefetch::PREFETCH_MIN_BLOCKS) or
    /// more, where each removal is a miss.
    defers: bool,
}

/// At most this many victims' key-table removals wait for
/// [`Tree::settle`]: an allocation's worth of victims, typically.
const DEFERRED_REMOVALS: usize = 64;

impl LineageBackend {
    /// An empty backend for block ids below `capacity`.
    ///
    /// The filed-key table is sized for `capacity` blocks and never grows;
    /// the map of ghost keys starts small and grows while many cached
    /// blocks have uncached parents or ancestors (a revived block with
    /// cached descendants, or a placeholder for a parent not cached).
    ///
    /// # Panics
    /// If `capacity` ≥ `u32::MAX`.
    pub fn new(capacity: usize) -> Self {
        Self {
            tree: Tree {
                filed: IdIndex::with_capacity(capacity),
                ghosts: PrehashedMap::with_capacity_and_hasher(capacity / 64, Default::default()),
                nodes: Records::new(capacity),
                len: 0,
                deferred: Vec::with_capacity(DEFERRED_REMOVALS),
                defers: capacity >= crate::prefetch::PREFETCH_MIN_BLOCKS,
            },
            own_hashes: Vec::new(),
        }
    }

    /// [`new`](Self::new), deferring victims' key-table removals whatever
    /// the capacity (tests of the deferral on small caches).
    #[cfg(test)]
    fn deferring(capacity: usize) -> Self {
        let mut backend = Self::new(capacity);
        backend.tree.defers = true;
        backend
    }

    /// How many cached blocks are leaves (evictable now).
    pub fn leaf_count(&self) -> usize {
        self.tree.nodes.leaf_count()
    }
}

impl Tree {
    /// The block filed under `key`, if any. Forced inline: with the key
    /// cut from the candidate's hash in its comparison, the probe was
    /// otherwise left out of line on every path.
    #[inline(always)]
    fn filed_under(&self, key: NodeKey, hashes: BlockHashes<'_>) -> Option<u32> {
        self.filed.get(key, |id| own_key_of(hashes, id))
    }

    /// The filed block that `hint` names if it is the one filed under
    /// `key`: filed (so cached, and the only block filed under its own
    /// key) with `key` as its own key. A hint goes stale when its block
    /// left the tree (and its id was perhaps reused); the check reads only
    /// the hinted block's record and hash.
    #[inline]
    fn parent_by_hint(&self, key: NodeKey, hint: u32, hashes: BlockHashes<'_>) -> Option<u32> {
        (hint != NIL && self.nodes.get(hint).is_filed() && own_key_of(hashes, hint) == key)
            .then_some(hint)
    }

    /// Counts one more cached child under `key`; returns the filed parent
    /// (if there is one) and whether this was its first cached child.
    #[inline]
    fn add_child(&mut self, key: NodeKey, hashes: BlockHashes<'_>) -> Option<(u32, bool)> {
        match self.filed_under(key, hashes) {
            Some(parent) => Some((parent, self.nodes.add_child(parent))),
            None => {
                self.ghosts
                    .entry(key)
                    .or_insert(Ghost {
                        children: 0,
                        parent: NO_PARENT,
                    })
                    .children += 1;
                None
            }
        }
    }

    /// Takes cached block `id`, with keys `own` and `parent`, out of the
    /// tree and promotes its parent to a leaf if this was the parent's last
    /// cached child.
    ///
    /// With `defer`, a filed leaf's key-table removal waits for
    /// [`settle`](Self::settle), its bucket prefetched meanwhile.
    fn detach(
        &mut self,
        id: u32,
        (own, parent): (NodeKey, NodeKey),
        hashes: BlockHashes<'_>,
        defer: bool,
    ) {
        let node = *self.nodes.get(id);
        // The gap the block leaves in the queue is where its parent most
        // likely belongs (their ticks are usually adjacent).
        let gap = node.is_leaf().then(|| {
            let gap = (self.nodes.prev(id), self.nodes.next(id));
            self.nodes.unlink(id);
            gap
        });
        self.len -= 1;
        self.nodes.clear(id);
        if node.is_filed() && defer && node.children() == 0 {
            if self.deferred.len() == DEFERRED_REMOVALS {
                self.settle();
            }
            self.filed.prefetch(own);
            self.deferred.push((own, id));
        } else if node.is_filed() {
            // By id: no other block's hash needs reading.
            let removed = self.filed.remove_id(own, id);
            debug_assert!(removed, "filed block not in the key table");
            if node.children() > 0 {
                // Its cached descendants still hang below it: it stays in
                // the tree as a ghost, still its parent's child.
                self.ghosts.insert(
                    own,
                    Ghost {
                        children: node.children(),
                        parent,
                    },
                );
                return;
            }
        }
        self.release_child(parent, node.parent_hint(), gap, hashes);
    }

    /// Removes the deferred victims from the key table.
    ///
    /// Evicting a leaf removes its entry from the key table, a miss in a
    /// large cache that nothing in the eviction waits for; put off until
    /// the allocation's last victim is chosen (and prefetched when put
    /// off), the removals of one allocation overlap. Until then a deferred
    /// entry stays in the table, but no lookup can match it: it is a leaf's
    /// own key, so no cached block has it as parent key, and no block is
    /// filed under it again before an insert, which settles first (and
    /// through the store's hashes, the victim's hash is gone at once).
    fn settle(&mut self) {
        for &(key, id) in &self.deferred {
            let removed = self.filed.remove_id(key, id);
            debug_assert!(removed, "deferred block not in the key table");
        }
        self.deferred.clear();
    }

    /// Counts one child less under `key`. A filed parent left without
    /// children becomes a leaf; a ghost left without children goes, and
    /// its own parent loses a child in turn. `hint` is the child's parent
    /// hint (see [`parent_by_hint`](Self::parent_by_hint)), or [`NIL`]:
    /// checked first, it spares the key-table probe.
    fn release_child(
        &mut self,
        mut key: NodeKey,
        mut hint: u32,
        gap: Option<(u32, u32)>,
        hashes: BlockHashes<'_>,
    ) {
        while key != NO_PARENT {
            let filed = self
                .parent_by_hint(key, hint, hashes)
                .or_else(|| self.filed_under(key, hashes));
            if let Some(parent) = filed {
                if self.nodes.remove_child(parent) {
                    self.requeue(parent, gap);
                }
                return;
            }
            // A ghost's own parent is known by key only.
            hint = NIL;
            let Some(ghost) = self.ghosts.get_mut(&key) else {
                debug_assert!(false, "child of an unknown parent key");
                return;
            };
            ghost.children -= 1;
            if ghost.children > 0 {
                return;
            }
            let parent = ghost.parent;
            self.ghosts.remove(&key);
            key = parent;
        }
    }

    /// Puts a block that became a leaf again back at its tick's place,
    /// searching from `gap` — two adjacent list neighbours (`NIL` for an
    /// end) — or, without one, from the list end nearer by tick.
    fn requeue(&mut self, id: u32, gap: Option<(u32, u32)>) {
        let tick = self.nodes.get(id).tick();
        let (mut after, mut before) = gap.unwrap_or_else(|| self.nearer_end(tick));
        // The list is sorted, so at most one of the two walks moves.
        while before != NIL && self.nodes.get(before).tick() < tick {
            after = before;
            before = self.nodes.next(before);
        }
        while after != NIL && self.nodes.get(after).tick() > tick {
            before = after;
            after = self.nodes.prev(after);
        }
        match before {
            NIL => self.nodes.push_back(id),
            anchor => self.nodes.insert_before(anchor, id),
        }
    }

    /// The gap at the front or the back of the leaf list, whichever end's
    /// tick is closer to `tick`: a cheap guess at the shorter walk.
    fn nearer_end(&self, tick: u32) -> (u32, u32) {
        let (Some(front), Some(back)) = (self.nodes.front(), self.nodes.back()) else {
            return (NIL, NIL);
        };
        let from_front = tick.saturating_sub(self.nodes.get(front).tick());
        let from_back = self.nodes.get(back).tick().saturating_sub(tick);
        if from_front <= from_back {
            (NIL, front)
        } else {
            (back, NIL)
        }
    }

    /// Recomputes who is filed under each key and how many children each
    /// key has from the cached blocks and the ghosts' links, and compares
    /// with the key table, the children counts and the ghosts.
    fn validate_entries(&self, hashes: BlockHashes<'_>) -> Result<(), String> {
        let mut expected: PrehashedMap<NodeKey, Expected> = PrehashedMap::default();
        for (id, node) in self.nodes.iter() {
            if !node.is_cached() {
                continue;
            }
            let Some(hash) = hashes.get(id as BlockId) else {
                return Err(format!("lineage: cached block {id} has no hash"));
            };
            let parent = parent_key(hash).unwrap_or(NO_PARENT);
            if node.is_filed() {
                let entry = expected.entry(own_key(hash)).or_insert(VACANT);
                if entry.node != NIL {
                    return Err(format!(
                        "lineage: blocks {} and {id} share a key",
                        entry.node
                    ));
                }
                entry.node = id;
            }
            if parent != NO_PARENT {
                expected.entry(parent).or_insert(VACANT).children += 1;
            }
        }
        for (&key, ghost) in &self.ghosts {
            if ghost.children == 0 {
                return Err(format!("lineage: ghost {key:x} has no children"));
            }
            // A ghost is only kept for its children, so it appears in
            // `expected` as a key with children (checked below).
            if ghost.parent != NO_PARENT {
                expected.entry(ghost.parent).or_insert(VACANT).children += 1;
            }
        }
        let filed = expected.values().filter(|e| e.node != NIL).count();
        // Deferred victims are still in the table (see `settle`).
        if !self.deferred.is_empty() {
            let in_table: std::collections::HashSet<u32> = self.filed.ids().collect();
            for &(_, id) in &self.deferred {
                if self.nodes.get(id).is_cached() {
                    return Err(format!("lineage: deferred block {id} is cached"));
                }
                if !in_table.contains(&id) {
                    return Err(format!("lineage: deferred block {id} not in the key table"));
                }
            }
        }
        if filed + self.deferred.len() != self.filed.len() {
            return Err(format!(
                "lineage: {} filed keys, expected {filed} and {} deferred",
                self.filed.len(),
                self.deferred.len()
            ));
        }
        let ghosts = expected.len() - filed;
        if ghosts != self.ghosts.len() {
            return Err(format!(
                "lineage: {} ghost keys, expected {ghosts}",
                self.ghosts.len()
            ));
        }
        for (&key, want) in &expected {
            let have = match self.filed_under(key, hashes) {
                Some(node) => Expected {
                    node,
                    children: self.nodes.get(node).children(),
                },
                None => Expected {
                    node: NIL,
                    children: self.ghosts.get(&key).map_or(0, |g| g.children),
                },
            };
            if have != *want {
                return Err(format!(
                    "lineage: key {key:x} holds {have:?}, expected {want:?}"
                ));
            }
        }
        Ok(())
    }
}

impl Tree {
    fn insert(&mut self, block: BlockId, hash: SequenceHash, hashes: BlockHashes<'_>) {
        self.settle();
        let id = block as u32;
        if self.nodes.get(id).is_cached() {
            debug_assert!(false, "block {block} inserted twice");
            return;
        }
        let (key, parent_key) = keys(hash);
        let mut node = Node::shadow(self.nodes.take_tick());
        self.len += 1;
        // Whether the block is still counted under its parent key: it comes
        // back to its own ghost, left when it was revived with cached
        // descendants.
        let mut counted = false;
        // One probe finds a block filed under the key or files this one
        // (its hash is readable through `hashes` already).
        let filed_now = self
            .filed
            .find_or_insert(key, id, |other| own_key_of(hashes, other))
            .is_none();
        let is_leaf = if filed_now {
            node.file(0);
            // Children released before it were counted under its key.
            if let Some(ghost) = self.ghosts.remove(&key) {
                node.file(ghost.children);
                if ghost.parent == parent_key {
                    counted = ghost.parent != NO_PARENT;
                } else {
                    // Another block under the same key (a fragment
                    // collision): the ghost's link to its parent goes.
                    self.release_child(ghost.parent, NIL, None, hashes);
                }
            }
            self.nodes.set(id, node);
            node.children() == 0
        } else {
            self.nodes.set(id, node);
            true
        };
        let filed_parent = match parent_key {
            NO_PARENT => None,
            _ if counted => None,
            key => self.add_child(key, hashes),
        };
        if let Some((parent, first)) = filed_parent {
            self.nodes.set_parent_hint(id, parent);
            // A parent that got its first child left the leaf queue.
            debug_assert!(!first || !self.nodes.get(parent).is_leaf());
        }
        // The newest tick: a new leaf sorts last.
        if is_leaf {
            self.nodes.push_back(id);
        }
    }

    fn remove(&mut self, block: BlockId, hash: SequenceHash, hashes: BlockHashes<'_>) {
        self.settle();
        let id = block as u32;
        if !self.nodes.get(id).is_cached() {
            debug_assert!(false, "block {block} removed but not cached");
            return;
        }
        debug_assert_eq!(
            hashes.get(block),
            Some(hash),
            "block {block} removed under another hash"
        );
        self.detach(id, keys(hash), hashes, false);
    }

    fn pop_victim(&mut self, hashes: BlockHashes<'_>) -> Option<BlockId> {
        let id = self.nodes.front()?;
        self.detach(id, keys_of(hashes, id), hashes, self.defers);
        // The next victim is known now (in a chain it is the parent just
        // re-queued, whose hash was read to find it): start loading the
        // key-table buckets its detach will probe, so that their misses
        // overlap the caller's work on this victim and, when one
        // allocation evicts several blocks, the next call finds them.
        // Small caches stay in the CPU caches, where this is only cost.
        let large = self.nodes.capacity() >= crate::prefetch::PREFETCH_MIN_BLOCKS;
        if let Some(next) = self.nodes.front().filter(|_| large) {
            if let Some(hash) = hashes.get(next as BlockId) {
                self.filed.prefetch(own_key(hash));
                // Its parent's record and hash (to check the hint), or,
                // without a hint, the key-table bucket of its parent key.
                match self.nodes.get(next).parent_hint() {
                    NIL => {
                        if let Some(parent) = parent_key(hash) {
                            self.filed.prefetch(parent);
                        }
                    }
                    hint => {
                        self.nodes.prefetch(hint);
                        hashes.prefetch(hint as BlockId);
                    }
                }
            }
        }
        Some(id as BlockId)
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId), hashes: BlockHashes<'_>) {
        while let Some(id) = self.pop_victim(hashes) {
            sink(id);
        }
        self.settle();
    }

    fn validate(&self, hashes: BlockHashes<'_>) -> Result<(), String> {
        // The queue holds exactly the leaves (cached blocks that are
        // shadows or have no cached children), sorted by tick.
        self.nodes.validate()?;
        let cached = self.nodes.iter().filter(|(_, n)| n.is_cached()).count();
        if cached != self.len {
            return Err(format!("lineage: len {} but {cached} cached", self.len));
        }
        self.validate_entries(hashes)?;
        if cached > 0 && self.nodes.leaf_count() == 0 {
            return Err("lineage: blocks cached but no leaf".into());
        }
        Ok(())
    }
}

impl InactiveBackend for LineageBackend {
    fn name(&self) -> &'static str {
        "lineage"
    }

    fn prefetch_insert(&self, _block: BlockId, hash: SequenceHash) {
        // The key table's probe for the block's own key: the miss of a
        // large cache's insert (the parent's key is usually that of the
        // block inserted just before it).
        self.tree.filed.prefetch(own_key(hash));
    }

    fn insert(&mut self, block: BlockId, hash: SequenceHash) {
        if self.own_hashes.is_empty() {
            let capacity = self.tree.nodes.capacity();
            self.own_hashes = vec![SequenceHash::from_u128(0); capacity];
        }
        self.own_hashes[block] = hash;
        let hashes = BlockHashes::from_slice(&self.own_hashes);
        self.tree.insert(block, hash, hashes);
    }

    fn remove(&mut self, block: BlockId, hash: SequenceHash) {
        let hashes = BlockHashes::from_slice(&self.own_hashes);
        self.tree.remove(block, hash, hashes);
    }

    fn pop_victim(&mut self) -> Option<BlockId> {
        let hashes = BlockHashes::from_slice(&self.own_hashes);
        self.tree.pop_victim(hashes)
    }

    fn evictions_done(&mut self) {
        self.tree.settle();
    }

    fn len(&self) -> usize {
        self.tree.len
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        let hashes = BlockHashes::from_slice(&self.own_hashes);
        self.tree.drain(sink, hashes);
    }

    fn validate(&self) -> Result<(), String> {
        self.tree
            .validate(BlockHashes::from_slice(&self.own_hashes))
    }

    fn insert_with_hashes(&mut self, block: BlockId, hash: SequenceHash, hashes: BlockHashes<'_>) {
        self.tree.insert(block, hash, hashes);
    }

    fn remove_with_hashes(&mut self, block: BlockId, hash: SequenceHash, hashes: BlockHashes<'_>) {
        self.tree.remove(block, hash, hashes);
    }

    fn pop_victim_with_hashes(&mut self, hashes: BlockHashes<'_>) -> Option<BlockId> {
        self.tree.pop_victim(hashes)
    }

    fn drain_with_hashes(&mut self, sink: &mut dyn FnMut(BlockId), hashes: BlockHashes<'_>) {
        self.tree.drain(sink, hashes);
    }

    fn validate_with_hashes(&self, hashes: BlockHashes<'_>) -> Result<(), String> {
        self.tree.validate(hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chain root → … of `n` blocks built from `seed`.
    fn chain(seed: u64, n: usize) -> Vec<SequenceHash> {
        let mut hashes = vec![SequenceHash::root(seed)];
        for i in 1..n {
            let next = hashes[i - 1].extend(seed * 100 + i as u64);
            hashes.push(next);
        }
        hashes
    }

    fn pop_all(backend: &mut LineageBackend) -> Vec<BlockId> {
        let mut order = Vec::new();
        while let Some(id) = backend.pop_victim() {
            backend.validate().unwrap();
            order.push(id);
        }
        order
    }

    #[test]
    fn chain_evicts_from_the_tip() {
        let hashes = chain(1, 4);
        let mut backend = LineageBackend::new(8);
        for (id, &h) in hashes.iter().enumerate() {
            backend.insert(id, h);
            backend.validate().unwrap();
        }
        assert_eq!(backend.leaf_count(), 1);
        assert_eq!(pop_all(&mut backend), vec![3, 2, 1, 0]);
    }

    #[test]
    fn child_before_parent_and_revived_parent() {
        let hashes = chain(2, 3);
        let mut backend = LineageBackend::new(4);
        backend.insert(2, hashes[2]);
        backend.insert(0, hashes[0]);
        // Block 1 missing: 0 and 2 are both leaves, 2 waited longer.
        assert_eq!(backend.leaf_count(), 2);
        backend.insert(1, hashes[1]);
        backend.validate().unwrap();
        assert_eq!(backend.leaf_count(), 1, "1 links 0 and 2 into one chain");
        // Reviving the middle block leaves its ghost between 0 and 2: 0 is
        // no leaf until 2 is gone.
        backend.remove(1, hashes[1]);
        backend.validate().unwrap();
        assert_eq!(backend.leaf_count(), 1);
        assert_eq!(pop_all(&mut backend), vec![2, 0]);
    }

    #[test]
    fn branches_wait_for_all_children() {
        let root = SequenceHash::root(9);
        let (a, b) = (root.extend(1), root.extend(2));
        let mut backend = LineageBackend::new(4);
        backend.insert(0, root);
        backend.insert(1, a);
        backend.insert(2, b);
        // Evicting 1 finds the root through 1's parent hint, and counts it
        // off: the root keeps child 2, so it is no leaf yet.
        assert_eq!(backend.pop_victim(), Some(1));
        backend.validate().unwrap();
        assert_eq!(backend.leaf_count(), 1, "the root still has a child");
        backend.insert(3, a.extend(5));
        // Root still has child 2, and 3 (a root: `a` is gone) was released
        // after 2. Once 2 is evicted the root is a leaf again, and its
        // release predates 3's.
        assert_eq!(pop_all(&mut backend), vec![2, 0, 3]);
    }

    /// A child's parent hint goes stale: its parent is revived, another
    /// block takes the parent's key (and its children), and the parent's
    /// id comes back under an unrelated hash. Evicting the child must still
    /// count it off the block now filed under the parent key.
    #[test]
    fn a_stale_parent_hint_falls_back_to_the_key() {
        let hashes = chain(12, 2);
        let mut backend = LineageBackend::new(4);
        backend.insert(0, hashes[0]);
        backend.insert(1, hashes[1]); // hint: parent filed as block 0
        backend.remove(0, hashes[0]); // revived: a ghost with one child
        backend.insert(2, hashes[0]); // the parent key again, as block 2
        backend.insert(0, SequenceHash::root(900)); // block 0, unrelated
        backend.validate().unwrap();
        // Block 2 waits for its child; block 0 is a newer leaf.
        assert_eq!(pop_all(&mut backend), vec![1, 2, 0]);
    }

    #[test]
    fn a_stale_chain_goes_as_a_whole() {
        let old = chain(10, 3);
        let mut backend = LineageBackend::new(4);
        for (id, &h) in old.iter().enumerate() {
            backend.insert(id, h);
        }
        backend.insert(3, SequenceHash::root(99));
        // Each parent keeps its release tick, older than block 3's.
        assert_eq!(pop_all(&mut backend), vec![2, 1, 0, 3]);
    }

    #[test]
    fn requeued_parent_walks_forward_from_the_gap() {
        let hashes = chain(11, 2);
        let mut backend = LineageBackend::new(6);
        backend.insert(1, hashes[1]); // tick 0, released before its parent
        backend.insert(2, SequenceHash::root(200)); // tick 1
        backend.insert(3, SequenceHash::root(300)); // tick 2
        backend.insert(0, hashes[0]); // tick 3, 1's parent
        backend.insert(4, SequenceHash::root(400)); // tick 4
        backend.validate().unwrap();
        // 1 is the front leaf; reviving it re-leafs 0 between 3 and 4.
        backend.remove(1, hashes[1]);
        backend.validate().unwrap();
        assert_eq!(pop_all(&mut backend), vec![2, 3, 0, 4]);
    }

    #[test]
    fn requeued_parent_walks_from_a_descendant_gap() {
        let hashes = chain(12, 3);
        let mut backend = LineageBackend::new(6);
        backend.insert(2, hashes[2]); // tick 0
        backend.insert(3, SequenceHash::root(300)); // tick 1
        backend.insert(4, SequenceHash::root(400)); // tick 2
        backend.insert(0, hashes[0]); // tick 3
        backend.insert(1, hashes[1]); // tick 4, links 0 → 1 → 2
        backend.insert(5, SequenceHash::root(500)); // tick 5
        assert_eq!(backend.leaf_count(), 4);
        // 1 leaves a ghost, so 0 becomes a leaf only when 2 goes; it walks
        // from 2's gap at the front past 3 and 4 to its tick.
        backend.remove(1, hashes[1]);
        backend.validate().unwrap();
        assert_eq!(backend.leaf_count(), 4);
        assert_eq!(pop_all(&mut backend), vec![2, 3, 4, 0, 5]);
    }

    #[test]
    fn a_revived_middle_block_keeps_its_parent_until_the_tip_goes() {
        let hashes = chain(13, 3);
        let mut backend = LineageBackend::new(5);
        for (id, &h) in hashes.iter().enumerate() {
            backend.insert(id, h);
        }
        backend.insert(3, SequenceHash::root(300));
        backend.insert(4, SequenceHash::root(400));
        backend.remove(1, hashes[1]);
        backend.validate().unwrap();
        // 2 goes first; then 1's ghost goes and 0 (tick 0) is a leaf again,
        // older than 3 and 4.
        assert_eq!(backend.leaf_count(), 3);
        assert_eq!(pop_all(&mut backend), vec![2, 0, 3, 4]);
    }

    /// The issue 11 case: positions 2..=5 of one chain cached, 3 revived.
    /// Evicting 2 would strand 4 and 5 (a match reaches them only through
    /// 2 and 3), so the tip goes first.
    #[test]
    fn a_revived_block_does_not_strand_its_cached_descendants() {
        let hashes = chain(14, 6);
        let mut backend = LineageBackend::new(8);
        for (position, &hash) in hashes.iter().enumerate().skip(2) {
            backend.insert(position, hash);
        }
        backend.remove(3, hashes[3]);
        backend.validate().unwrap();
        assert_eq!(backend.leaf_count(), 1);
        assert_eq!(backend.pop_victim(), Some(5));
        backend.validate().unwrap();
        // The revived block is released again: it comes back under its
        // ghost, counted once under 2.
        backend.insert(3, hashes[3]);
        backend.validate().unwrap();
        assert_eq!(pop_all(&mut backend), vec![4, 3, 2]);
        assert!(backend.tree.ghosts.is_empty());
    }

    /// Revived blocks that never come back (freed on reset): their ghosts
    /// go with the last cached descendant, and the parent is a leaf again.
    #[test]
    fn ghost_chains_go_with_their_last_descendant() {
        let hashes = chain(15, 5);
        let mut backend = LineageBackend::new(8);
        for (id, &h) in hashes.iter().enumerate() {
            backend.insert(id, h);
        }
        backend.insert(5, SequenceHash::root(500));
        backend.remove(2, hashes[2]);
        backend.remove(3, hashes[3]);
        backend.validate().unwrap();
        assert_eq!(backend.tree.ghosts.len(), 2);
        assert_eq!(backend.pop_victim(), Some(4));
        backend.validate().unwrap();
        assert!(backend.tree.ghosts.is_empty());
        // 1 (tick 1) is a leaf again and older than 5.
        assert_eq!(pop_all(&mut backend), vec![1, 0, 5]);
    }

    /// Once a revived chain's ghosts are gone, releasing its blocks again
    /// links them like any blocks whose parent is not cached.
    #[test]
    fn a_block_released_again_after_its_ghost_went_is_a_root() {
        let hashes = chain(16, 4);
        let mut backend = LineageBackend::new(8);
        for (id, &h) in hashes.iter().enumerate().take(3) {
            backend.insert(id, h);
        }
        backend.remove(1, hashes[1]);
        backend.remove(2, hashes[2]);
        backend.validate().unwrap();
        // 2 had no children: gone, and with it 1's ghost; 0 is a leaf.
        assert!(backend.tree.ghosts.is_empty());
        backend.insert(2, hashes[2]);
        backend.insert(3, hashes[3]);
        backend.validate().unwrap();
        // 2's parent key is a placeholder now, counted under nobody.
        assert_eq!(backend.leaf_count(), 2);
        assert_eq!(pop_all(&mut backend), vec![0, 3, 2]);
    }

    #[test]
    fn parent_relinks_after_its_child_left() {
        let hashes = chain(3, 2);
        let mut backend = LineageBackend::new(4);
        backend.insert(0, hashes[0]);
        backend.insert(1, hashes[1]);
        backend.remove(1, hashes[1]);
        backend.insert(2, SequenceHash::root(77));
        // 0 re-became a leaf before 2 was released.
        assert_eq!(pop_all(&mut backend), vec![0, 2]);
    }

    #[test]
    fn duplicate_hash_becomes_an_evictable_shadow() {
        let hashes = chain(4, 2);
        let mut backend = LineageBackend::new(4);
        backend.insert(0, hashes[0]);
        backend.insert(2, hashes[0]);
        backend.insert(1, hashes[1]);
        backend.validate().unwrap();
        // 0 holds the key and has a child; the duplicate 2 is a leaf.
        assert_eq!(backend.pop_victim(), Some(2));
        backend.insert(2, hashes[0]);
        // Reviving the holder leaves the shadow unpromoted; 1 stays counted
        // under the holder's ghost.
        backend.remove(0, hashes[0]);
        backend.validate().unwrap();
        assert_eq!(backend.leaf_count(), 2);
        backend.insert(0, hashes[0]);
        backend.validate().unwrap();
        assert_eq!(pop_all(&mut backend), vec![1, 2, 0]);
    }

    #[test]
    fn fragment_widths_across_position_modes() {
        // Parent at 255 with hash bits above 46 set; the child at 256 keeps
        // only 46 bits of it.
        let parent = SequenceHash::new(0xFFFF_0000_1234_5678, Some(1), 255);
        let child = parent.extend(3);
        let grandchild = child.extend(4);
        assert_eq!(child.position(), 256);
        let mut backend = LineageBackend::new(4);
        backend.insert(2, grandchild);
        backend.insert(0, parent);
        backend.insert(1, child);
        backend.validate().unwrap();
        assert_eq!(backend.leaf_count(), 1);
        assert_eq!(pop_all(&mut backend), vec![2, 1, 0]);
    }

    #[test]
    fn drain_and_name() {
        let hashes = chain(5, 3);
        let mut backend = LineageBackend::new(3);
        for (id, &h) in hashes.iter().enumerate() {
            backend.insert(id, h);
        }
        let mut drained = Vec::new();
        backend.drain(&mut |id| drained.push(id));
        assert_eq!(drained, vec![2, 1, 0]);
        assert!(backend.is_empty());
        assert!(backend.tree.filed.is_empty() && backend.tree.ghosts.is_empty());
        backend.validate().unwrap();
        assert_eq!(backend.name(), "lineage");
    }

    /// Runs one mixed history (chains, a branch, revivals leaving ghosts,
    /// a re-release) on a backend whose tick clock runs out after `ticks_left` releases,
    /// and returns the eviction order.
    fn history_with_ticks_left(ticks_left: u32) -> Vec<BlockId> {
        let old = chain(17, 4);
        let young = chain(18, 3);
        let mut backend = LineageBackend::new(12);
        backend.tree.nodes.set_ticks_left(ticks_left);
        for (id, &h) in old.iter().enumerate() {
            backend.insert(id, h);
            backend.validate().unwrap();
        }
        backend.insert(4, SequenceHash::root(400));
        for (i, &h) in young.iter().enumerate() {
            backend.insert(5 + i, h);
            backend.validate().unwrap();
        }
        backend.insert(8, old[1].extend(7));
        backend.remove(2, old[2]);
        backend.remove(6, young[1]);
        backend.validate().unwrap();
        backend.insert(9, SequenceHash::root(900));
        backend.insert(6, young[1]);
        backend.insert(10, SequenceHash::root(1000));
        backend.validate().unwrap();
        pop_all(&mut backend)
    }

    /// 31-bit ticks run out after about 2 billion releases; renumbering
    /// them keeps every block's place.
    #[test]
    fn ticks_renumbered_when_they_run_out_keep_the_order() {
        let plain = history_with_ticks_left(1 << 31);
        assert_eq!(plain.len(), 10, "every cached block evicted once");
        // The clock runs out after the first three releases, then in the
        // middle of the revivals, then not again.
        for ticks_left in [3, 9, 1] {
            assert_eq!(
                history_with_ticks_left(ticks_left),
                plain,
                "{ticks_left} ticks left"
            );
        }
    }

    /// Driven with hashes lent by a store (a slice standing in for it), the
    /// backend keeps no copy of them and evicts exactly as when it keeps
    /// its own.
    #[test]
    fn lent_hashes_and_kept_hashes_agree() {
        let a = chain(20, 4);
        let b = chain(21, 3);
        let steps = [
            (true, 3, a[3]),
            (true, 0, a[0]),
            (true, 1, a[1]),
            (true, 2, a[2]),
            (true, 4, b[0]),
            (true, 5, b[1]),
            (false, 1, a[1]),
            (true, 6, b[2]),
            (true, 7, a[1].extend(9)),
            (false, 5, b[1]),
            (true, 5, b[1]),
            (true, 1, a[1]),
        ];
        let mut kept = LineageBackend::new(8);
        let mut lent = LineageBackend::new(8);
        let mut store = vec![SequenceHash::from_u128(0); 8];
        for (insert, id, hash) in steps {
            if insert {
                store[id] = hash;
                kept.insert(id, hash);
                lent.insert_with_hashes(id, hash, BlockHashes::from_slice(&store));
            } else {
                kept.remove(id, hash);
                lent.remove_with_hashes(id, hash, BlockHashes::from_slice(&store));
            }
            kept.validate().unwrap();
            lent.validate_with_hashes(BlockHashes::from_slice(&store))
                .unwrap();
            assert_eq!(lent.leaf_count(), kept.leaf_count());
        }
        assert!(lent.own_hashes.is_empty());
        // A store that cannot show a cached block's hash fails validation.
        let short = BlockHashes::from_slice(&store[..4]);
        assert!(lent
            .validate_with_hashes(short)
            .unwrap_err()
            .contains("no hash"));
        let kept_order = pop_all(&mut kept);
        let mut lent_order = Vec::new();
        while let Some(id) = lent.pop_victim_with_hashes(BlockHashes::from_slice(&store)) {
            lent.validate_with_hashes(BlockHashes::from_slice(&store))
                .unwrap();
            lent_order.push(id);
        }
        assert_eq!(kept_order.len(), 8);
        assert_eq!(lent_order, kept_order);
    }

    /// The mode-0 fast paths give the keys the general field-by-field cut
    /// gives, on both sides of every mode boundary.
    #[test]
    fn fast_keys_match_the_general_cut() {
        fn general_own(hash: SequenceHash) -> NodeKey {
            let position = hash.position();
            node_key(
                position,
                hash.parent_fragment_for_child_position(position + 1),
            )
        }
        fn general_parent(hash: SequenceHash) -> Option<NodeKey> {
            let position = hash.position().checked_sub(1)?;
            Some(node_key(position, hash.parent_hash_fragment()))
        }
        let positions = [
            0u64, 1, 2, 200, 253, 254, 255, 256, 257, 65_535, 65_536, 70_000,
        ];
        for (i, &position) in positions.iter().enumerate() {
            for seed in [
                0u64,
                1,
                0x5555_5555_5555_5555,
                u64::MAX,
                0xFFFF_0000_1234_5678,
            ] {
                let parent = (position > 0).then_some(seed.rotate_left(i as u32 * 7));
                let hash = SequenceHash::new(seed ^ position, parent, position);
                assert_eq!(own_key(hash), general_own(hash), "own key at {position}");
                assert_eq!(
                    parent_key(hash),
                    general_parent(hash),
                    "parent key at {position}"
                );
            }
        }
    }

    #[test]
    fn node_keys_are_distinct_across_mode_boundaries() {
        let mut keys = std::collections::HashSet::new();
        let mut pairs = 0;
        for position in [
            0u64,
            1,
            254,
            255,
            256,
            65_534,
            65_535,
            65_536,
            (1 << 24) - 1,
        ] {
            let (_, bits) = crate::tokens::lineage_fragment_layout(position + 1);
            for fragment in [
                0,
                1,
                (1u64 << bits) - 1,
                0x5555_5555_5555_5555 & ((1 << bits) - 1),
            ] {
                keys.insert(node_key(position, fragment));
                pairs += 1;
            }
        }
        assert_eq!(keys.len(), pairs);
    }

    /// Deferred key-table removals change nothing a caller sees: a backend
    /// that defers and one that does not, driven alike (inserts of
    /// branching chains with repeated hashes, revivals, evictions, with and
    /// without `evictions_done` between them), choose the same victims, and
    /// both validate after every step, removals pending or not.
    mod deferral {
        use proptest::prelude::*;

        use super::*;

        const IDS: usize = 12;

        #[derive(Debug, Clone)]
        enum Op {
            Insert { id: usize, hash: usize },
            Remove { id: usize },
            Pop,
            Done,
        }

        fn op() -> impl Strategy<Value = Op> {
            prop_oneof![
                4 => (0..IDS, 0..12usize).prop_map(|(id, hash)| Op::Insert { id, hash }),
                1 => (0..IDS).prop_map(|id| Op::Remove { id }),
                3 => Just(Op::Pop),
                1 => Just(Op::Done),
            ]
        }

        /// Two chains of 4 sharing their first two blocks, and a third of 4.
        fn hashes() -> Vec<SequenceHash> {
            let a = chain(40, 4);
            let b2 = a[1].extend(77);
            let b3 = b2.extend(78);
            let mut all = a;
            all.extend([b2, b3]);
            all.extend(chain(41, 4));
            all.extend([SequenceHash::root(42), SequenceHash::root(43)]);
            all
        }

        proptest! {
            #[test]
            fn deferring_chooses_the_same_victims(ops in prop::collection::vec(op(), 1..120)) {
                let hashes = hashes();
                let mut plain = LineageBackend::new(IDS);
                let mut deferring = LineageBackend::deferring(IDS);
                let mut cached: [Option<usize>; IDS] = [None; IDS];
                for op in ops {
                    match op {
                        Op::Insert { id, hash } if cached[id].is_none() => {
                            plain.insert(id, hashes[hash]);
                            deferring.insert(id, hashes[hash]);
                            cached[id] = Some(hash);
                        }
                        Op::Remove { id } => {
                            if let Some(hash) = cached[id].take() {
                                plain.remove(id, hashes[hash]);
                                deferring.remove(id, hashes[hash]);
                            }
                        }
                        Op::Pop => {
                            let victim = plain.pop_victim();
                            prop_assert_eq!(deferring.pop_victim(), victim);
                            if let Some(id) = victim {
                                cached[id] = None;
                            }
                        }
                        Op::Done => deferring.evictions_done(),
                        Op::Insert { .. } => {}
                    }
                    prop_assert_eq!(plain.validate(), Ok(()));
                    prop_assert_eq!(deferring.validate(), Ok(()));
                    prop_assert_eq!(plain.len(), deferring.len());
                }
                let mut rest = Vec::new();
                deferring.drain(&mut |id| rest.push(id));
                prop_assert_eq!(rest, pop_all(&mut plain));
                prop_assert_eq!(deferring.validate(), Ok(()));
                prop_assert_eq!(deferring.tree.filed.len(), 0);
            }
        }
    }
}
