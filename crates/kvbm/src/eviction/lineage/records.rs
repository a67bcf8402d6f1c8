//! The lineage backend's per-block records, and its leaf queue threaded
//! through them.
//!
//! One 16-byte record per block holds everything the backend keeps about
//! it — its release tick, either its links in the leaf queue or its count
//! of cached children, and where its parent was last seen — so handling a
//! block touches one record and nothing else is allocated per block. The
//! block's own and parent keys are not kept: both are cut from its
//! sequence hash, which the store holds
//! (see [`BlockHashes`](crate::eviction::BlockHashes)). A block is a leaf
//! exactly when it has no cached children, so a record never needs both
//! links and count: an *inner* block (one with cached children) keeps its
//! count where a leaf keeps its back link, and a marker where a leaf keeps
//! its forward link. There is no state byte either: an absent block has a
//! tick no block gets, and a shadow (see the parent module) carries a flag
//! in its tick's top bit.

use crate::eviction::NIL;

/// A `(position, fragment)` pair packed into 64 bits (see the parent
/// module); the two mode bits are never both set.
pub(super) type NodeKey = u64;

/// Mode bits 3 are never produced, so no block's key equals this: the
/// parent key of a block at position 0, and the key of a block whose hash
/// cannot be read.
pub(super) const NO_KEY: NodeKey = u64::MAX;

/// The forward link of an inner block. Block ids stay below `NIL`
/// (= `u32::MAX`), and the capacity is below `NIL` too, so no id is
/// `NIL - 1`.
const INNER: u32 = NIL - 1;

/// The tick bit that marks a shadow.
const SHADOW: u32 = 1 << 31;

/// Ticks stay below this, so that no shadow's tick field is [`ABSENT`].
const TICK_LIMIT: u32 = SHADOW - 1;

/// The tick field of a block that is not cached.
const ABSENT: u32 = u32::MAX;

/// What the backend keeps per block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// Release tick, with [`SHADOW`] set for a shadow; [`ABSENT`] while
    /// the block is not cached.
    tick: u32,
    /// A leaf's back link in the queue; an inner block's cached children
    /// (and ghosts) counted under its key.
    prev_or_children: u32,
    /// A leaf's forward link in the queue; [`INNER`] for an inner block.
    next: u32,
    /// The block its parent was filed as when it was inserted, or [`NIL`]:
    /// a hint, checked before use (see `Tree::parent_by_hint`). Evicting a
    /// block finds its parent here instead of probing the key table with
    /// the parent key, whose bucket and candidate's hash are two misses in
    /// a row in a large cache; the hint's record and hash can be loaded a
    /// victim ahead.
    parent: u32,
}

const _: () = assert!(std::mem::size_of::<Node>() == 16);

const ABSENT_NODE: Node = Node {
    tick: ABSENT,
    prev_or_children: NIL,
    next: NIL,
    parent: NIL,
};

impl Node {
    /// A cached block's record: a shadow (always a leaf) until
    /// [`file`](Self::file)d.
    #[inline]
    pub(super) fn shadow(tick: u32) -> Self {
        debug_assert!(tick < TICK_LIMIT);
        Node {
            tick: tick | SHADOW,
            prev_or_children: NIL,
            next: NIL,
            parent: NIL,
        }
    }

    /// Makes a record not yet stored a filed block's, with `children`
    /// counted under its key (a leaf if 0).
    #[inline]
    pub(super) fn file(&mut self, children: u32) {
        self.tick &= !SHADOW;
        if children == 0 {
            self.prev_or_children = NIL;
            self.next = NIL;
        } else {
            self.prev_or_children = children;
            self.next = INNER;
        }
    }

    /// The block its parent was filed as at its insert ([`NIL`] if none
    /// was): a hint only.
    #[inline]
    pub(super) fn parent_hint(&self) -> u32 {
        self.parent
    }

    /// Its release tick.
    #[inline]
    pub(super) fn tick(&self) -> u32 {
        self.tick & !SHADOW
    }

    #[inline]
    pub(super) fn is_cached(&self) -> bool {
        self.tick != ABSENT
    }

    #[inline]
    pub(super) fn is_filed(&self) -> bool {
        self.is_cached() && self.tick & SHADOW == 0
    }

    /// The children counted under a filed block's key (0 for a leaf or a
    /// shadow).
    #[inline]
    pub(super) fn children(&self) -> u32 {
        if self.next == INNER {
            self.prev_or_children
        } else {
            0
        }
    }

    /// Whether the block belongs in the leaf queue: cached, and a shadow or
    /// without cached children.
    #[inline]
    pub(super) fn is_leaf(&self) -> bool {
        self.is_cached() && self.next != INNER
    }
}

/// The records of all blocks and the queue of leaves through their links,
/// sorted by tick (front = oldest), plus the tick clock.
#[derive(Debug, Clone)]
pub(super) struct Records {
    nodes: Vec<Node>,
    head: u32,
    tail: u32,
    leaves: usize,
    /// The tick the next released block gets.
    next_tick: u32,
}

impl Records {
    /// Absent records for ids below `capacity`.
    ///
    /// # Panics
    /// If `capacity` ≥ `u32::MAX` (ids must leave room for `NIL`).
    pub(super) fn new(capacity: usize) -> Self {
        assert!(
            capacity < NIL as usize,
            "block capacity {capacity} does not fit 32-bit block links"
        );
        Records {
            nodes: crate::huge_pages::filled_huge(ABSENT_NODE, capacity),
            head: NIL,
            tail: NIL,
            leaves: 0,
            next_tick: 0,
        }
    }

    /// The number of records (ids below it have one).
    pub(super) fn capacity(&self) -> usize {
        self.nodes.len()
    }

    #[inline]
    pub(super) fn get(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    /// Stores a block's record; the block must not be in the leaf queue.
    #[inline]
    pub(super) fn set(&mut self, id: u32, node: Node) {
        self.nodes[id as usize] = node;
    }

    /// Records where a cached block's parent is filed (see
    /// [`Node::parent_hint`]).
    #[inline]
    pub(super) fn set_parent_hint(&mut self, id: u32, parent: u32) {
        self.nodes[id as usize].parent = parent;
    }

    /// Hints that block `id`'s record will be read soon.
    #[inline]
    pub(super) fn prefetch(&self, id: u32) {
        if let Some(node) = self.nodes.get(id as usize) {
            crate::prefetch::prefetch(node);
        }
    }

    /// Marks a block absent (after taking it out of the leaf queue).
    #[inline]
    pub(super) fn clear(&mut self, id: u32) {
        self.nodes[id as usize] = ABSENT_NODE;
    }

    /// Counts one more child under the filed block `id`; a leaf leaves the
    /// queue. Returns whether it was its first.
    #[inline]
    pub(super) fn add_child(&mut self, id: u32) -> bool {
        let node = self.nodes[id as usize];
        debug_assert!(node.is_filed(), "child counted under a shadow");
        if node.next == INNER {
            debug_assert!(node.prev_or_children < INNER, "child count overflow");
            self.nodes[id as usize].prev_or_children += 1;
            false
        } else {
            self.unlink(id);
            let node = &mut self.nodes[id as usize];
            node.prev_or_children = 1;
            node.next = INNER;
            true
        }
    }

    /// Counts one child less under the inner block `id`; returns whether
    /// that was its last, in which case it is a leaf that the caller must
    /// queue.
    #[inline]
    pub(super) fn remove_child(&mut self, id: u32) -> bool {
        let node = &mut self.nodes[id as usize];
        debug_assert_eq!(node.next, INNER, "child removed from a leaf");
        node.prev_or_children -= 1;
        if node.prev_or_children > 0 {
            return false;
        }
        node.prev_or_children = NIL;
        node.next = NIL;
        true
    }

    /// Every record by id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &Node)> + '_ {
        self.nodes.iter().enumerate().map(|(id, n)| (id as u32, n))
    }

    /// A tick for a block released now: larger than every tick handed out
    /// before.
    ///
    /// Ticks are 31 bits, to leave room for the shadow flag in the same
    /// word. When they run out (after about 2 billion releases) the cached
    /// blocks' ticks are renumbered `0..` in their order — one sort of the
    /// cached blocks, the only allocation outside construction, that rare.
    #[inline]
    pub(super) fn take_tick(&mut self) -> u32 {
        if self.next_tick == TICK_LIMIT {
            self.renumber_ticks();
        }
        let tick = self.next_tick;
        self.next_tick += 1;
        tick
    }

    #[cold]
    fn renumber_ticks(&mut self) {
        let mut order: Vec<(u32, u32)> = self
            .iter()
            .filter(|(_, n)| n.is_cached())
            .map(|(id, n)| (n.tick(), id))
            .collect();
        order.sort_unstable();
        for (rank, &(_, id)) in order.iter().enumerate() {
            // Fewer cached blocks than ids (below `NIL`), but possibly more
            // than 2^31: then the last ticks repeat and run out again at
            // once — a capacity no real pool has.
            let node = &mut self.nodes[id as usize];
            node.tick = (node.tick & SHADOW) | (rank.min(TICK_LIMIT as usize - 1) as u32);
        }
        self.next_tick = order.len().min(TICK_LIMIT as usize - 1) as u32;
    }

    /// Sets the tick clock `left` ticks before it runs out (tests that
    /// cross the renumbering).
    #[cfg(test)]
    pub(super) fn set_ticks_left(&mut self, left: u32) {
        self.next_tick = TICK_LIMIT.saturating_sub(left);
    }

    /// The number of leaves.
    #[inline]
    pub(super) fn leaf_count(&self) -> usize {
        self.leaves
    }

    /// The oldest leaf.
    #[inline]
    pub(super) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The newest leaf.
    #[inline]
    pub(super) fn back(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// The leaf after `id`, `NIL` at the back.
    #[inline]
    pub(super) fn next(&self, id: u32) -> u32 {
        self.nodes[id as usize].next
    }

    /// The leaf before `id`, `NIL` at the front.
    #[inline]
    pub(super) fn prev(&self, id: u32) -> u32 {
        self.nodes[id as usize].prev_or_children
    }

    /// Appends `id`, which is not queued, at the back.
    #[inline]
    pub(super) fn push_back(&mut self, id: u32) {
        let tail = self.tail;
        let node = &mut self.nodes[id as usize];
        node.prev_or_children = tail;
        node.next = NIL;
        match tail {
            NIL => self.head = id,
            tail => self.nodes[tail as usize].next = id,
        }
        self.tail = id;
        self.leaves += 1;
    }

    /// Queues `id`, which is not queued, right before the queued `anchor`.
    #[inline]
    pub(super) fn insert_before(&mut self, anchor: u32, id: u32) {
        let prev = self.nodes[anchor as usize].prev_or_children;
        let node = &mut self.nodes[id as usize];
        node.prev_or_children = prev;
        node.next = anchor;
        self.nodes[anchor as usize].prev_or_children = id;
        match prev {
            NIL => self.head = id,
            prev => self.nodes[prev as usize].next = id,
        }
        self.leaves += 1;
    }

    /// Takes the queued `id` out of the leaf queue.
    #[inline]
    pub(super) fn unlink(&mut self, id: u32) {
        let Node {
            prev_or_children: prev,
            next,
            ..
        } = self.nodes[id as usize];
        match prev {
            NIL => self.head = next,
            prev => self.nodes[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.nodes[next as usize].prev_or_children = prev,
        }
        self.leaves -= 1;
    }

    /// Checks that the queue holds exactly the leaves, linked both ways, in
    /// strictly ascending tick order, all older than the clock.
    pub(super) fn validate(&self) -> Result<(), String> {
        let mut walked = 0;
        let mut prev = NIL;
        let mut cur = self.head;
        while cur != NIL {
            if walked >= self.leaves {
                return Err("lineage: leaf queue longer than its count (cycle?)".into());
            }
            let node = self.nodes[cur as usize];
            if !node.is_leaf() {
                return Err(format!("lineage: queued block {cur} is not a leaf"));
            }
            if node.prev_or_children != prev {
                return Err(format!("lineage: leaf {cur} has a broken back link"));
            }
            if prev != NIL && self.nodes[prev as usize].tick() >= node.tick() {
                return Err(format!("lineage: leaf {cur} out of tick order"));
            }
            if node.tick() >= self.next_tick {
                return Err(format!("lineage: leaf {cur} has a future tick"));
            }
            walked += 1;
            prev = cur;
            cur = node.next;
        }
        if prev != self.tail || walked != self.leaves {
            return Err(format!(
                "lineage: leaf queue ends at {prev} after {walked}, expected {} after {}",
                self.tail, self.leaves
            ));
        }
        if let Some(id) = self.nodes.iter().position(|n| {
            n.is_cached() && n.next == INNER && (n.prev_or_children == 0 || n.tick & SHADOW != 0)
        }) {
            return Err(format!(
                "lineage: inner block {id} is a shadow or has no children"
            ));
        }
        let leaves = self.nodes.iter().filter(|n| n.is_leaf()).count();
        if leaves != self.leaves {
            return Err(format!(
                "lineage: {leaves} leaves but {} queued",
                self.leaves
            ));
        }
        Ok(())
    }
}
