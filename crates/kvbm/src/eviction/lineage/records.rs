//! The lineage backend's per-block records, and its leaf queue threaded
//! through them.
//!
//! One 32-byte record per block holds everything the backend keeps about
//! it — its own and its parent's key, release tick, cached children and its
//! links in the leaf queue — so handling a block touches one cache line and
//! nothing else is allocated per block. The record has no state byte: an
//! absent block has a key no block is filed under, and a shadow (see the
//! parent module) a child count no filed block reaches. Whether a block is
//! in the leaf queue follows from the rest (a cached block without cached
//! children), so no tag is stored for it either.

use crate::eviction::NIL;

/// A `(position, fragment)` pair packed into 64 bits (see the parent
/// module); the two mode bits are never both set.
pub(super) type NodeKey = u64;

/// Mode bits 3 are never produced, so no block's key equals this: the key
/// of an absent block, and the parent key of a block at position 0.
pub(super) const NO_KEY: NodeKey = u64::MAX;

/// The child count of a shadow. Shadows count no children (their key's
/// children are counted at the block filed under it), and no filed block
/// has `u32::MAX` children: every child is a cached block or a ghost with
/// cached descendants, far fewer than 2^32.
const SHADOW: u32 = u32::MAX;

/// What the backend keeps per block.
#[derive(Debug, Clone, Copy)]
pub(super) struct Node {
    /// The key the block is filed (or shadowed) under; [`NO_KEY`] while
    /// the block is not cached.
    pub(super) own: NodeKey,
    /// Its parent's key; [`NO_KEY`] at position 0. Stale for absent blocks.
    pub(super) parent: NodeKey,
    /// Release tick; stale for absent blocks.
    pub(super) tick: u32,
    /// Cached children (and ghosts) counted under its key while filed;
    /// [`SHADOW`] for a shadow; stale for absent blocks.
    children: u32,
    /// Neighbours in the leaf queue, valid while the block is a leaf.
    prev: u32,
    next: u32,
}

const _: () = assert!(std::mem::size_of::<Node>() == 32);

const ABSENT_NODE: Node = Node {
    own: NO_KEY,
    parent: NO_KEY,
    tick: 0,
    children: 0,
    prev: NIL,
    next: NIL,
};

impl Node {
    /// A cached block's record: a shadow until [`file`](Self::file)d.
    #[inline]
    pub(super) fn shadow(own: NodeKey, parent: NodeKey, tick: u32) -> Self {
        Node {
            own,
            parent,
            tick,
            children: SHADOW,
            prev: NIL,
            next: NIL,
        }
    }

    /// Makes the record a filed block's, with `children` counted under its
    /// key.
    #[inline]
    pub(super) fn file(&mut self, children: u32) {
        debug_assert_ne!(children, SHADOW, "child count overflow");
        self.children = children;
    }

    #[inline]
    pub(super) fn is_cached(&self) -> bool {
        self.own != NO_KEY
    }

    #[inline]
    pub(super) fn is_filed(&self) -> bool {
        self.is_cached() && self.children != SHADOW
    }

    /// The children counted under a filed block's key (0 for a shadow).
    #[inline]
    pub(super) fn children(&self) -> u32 {
        if self.children == SHADOW {
            0
        } else {
            self.children
        }
    }

    /// Whether the block belongs in the leaf queue: cached, and a shadow or
    /// without cached children.
    #[inline]
    pub(super) fn is_leaf(&self) -> bool {
        self.is_cached() && (self.children == 0 || self.children == SHADOW)
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
            nodes: vec![ABSENT_NODE; capacity],
            head: NIL,
            tail: NIL,
            leaves: 0,
            next_tick: 0,
        }
    }

    #[inline]
    pub(super) fn get(&self, id: u32) -> &Node {
        &self.nodes[id as usize]
    }

    #[inline]
    pub(super) fn get_mut(&mut self, id: u32) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    /// Stores a block's record; the block must not be in the leaf queue.
    #[inline]
    pub(super) fn set(&mut self, id: u32, node: Node) {
        self.nodes[id as usize] = node;
    }

    /// Marks a block absent (after taking it out of the leaf queue).
    #[inline]
    pub(super) fn clear(&mut self, id: u32) {
        self.nodes[id as usize].own = NO_KEY;
    }

    /// Every record by id.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &Node)> + '_ {
        self.nodes.iter().enumerate().map(|(id, n)| (id as u32, n))
    }

    /// A tick for a block released now: larger than every tick handed out
    /// before.
    ///
    /// Ticks are 32 bits to keep the record at 32 bytes. When they run out
    /// (after about 4 billion releases) the cached blocks' ticks are
    /// renumbered `0..` in their order — one sort of the cached blocks, the
    /// only allocation outside construction, that rare.
    #[inline]
    pub(super) fn take_tick(&mut self) -> u32 {
        if self.next_tick == u32::MAX {
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
            .map(|(id, n)| (n.tick, id))
            .collect();
        order.sort_unstable();
        for (rank, &(_, id)) in order.iter().enumerate() {
            // Fewer cached blocks than ids, and ids fit a `u32`.
            self.nodes[id as usize].tick = rank as u32;
        }
        self.next_tick = order.len() as u32;
    }

    /// Sets the tick clock (tests that cross the renumbering).
    #[cfg(test)]
    pub(super) fn set_next_tick(&mut self, tick: u32) {
        self.next_tick = tick;
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
        self.nodes[id as usize].prev
    }

    /// Appends `id`, which is not queued, at the back.
    #[inline]
    pub(super) fn push_back(&mut self, id: u32) {
        let tail = self.tail;
        let node = &mut self.nodes[id as usize];
        node.prev = tail;
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
        let prev = self.nodes[anchor as usize].prev;
        let node = &mut self.nodes[id as usize];
        node.prev = prev;
        node.next = anchor;
        self.nodes[anchor as usize].prev = id;
        match prev {
            NIL => self.head = id,
            prev => self.nodes[prev as usize].next = id,
        }
        self.leaves += 1;
    }

    /// Takes the queued `id` out of the leaf queue.
    #[inline]
    pub(super) fn unlink(&mut self, id: u32) {
        let Node { prev, next, .. } = self.nodes[id as usize];
        match prev {
            NIL => self.head = next,
            prev => self.nodes[prev as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            next => self.nodes[next as usize].prev = prev,
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
            if node.prev != prev {
                return Err(format!("lineage: leaf {cur} has a broken back link"));
            }
            if prev != NIL && self.nodes[prev as usize].tick >= node.tick {
                return Err(format!("lineage: leaf {cur} out of tick order"));
            }
            if node.tick >= self.next_tick {
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
