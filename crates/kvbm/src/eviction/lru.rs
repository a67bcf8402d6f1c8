//! Least-recently-released first.
//!
//! One intrusive list over arrays indexed by block id: O(1) insert, remove
//! and victim selection, no allocation after construction.

use super::list::IndexLists;
use super::InactiveBackend;
use crate::{BlockId, SequenceHash};

/// Evicts the cached block that was released longest ago.
///
/// ```
/// use kvbm::eviction::{InactiveBackend, LruBackend};
/// use kvbm::SequenceHash;
///
/// let mut lru = LruBackend::new(4);
/// lru.insert(2, SequenceHash::root(2));
/// lru.insert(0, SequenceHash::root(0));
/// assert_eq!(lru.pop_victim(), Some(2));
/// ```
#[derive(Debug, Clone)]
pub struct LruBackend {
    order: IndexLists<1>,
}

impl LruBackend {
    /// An empty LRU order for block ids below `capacity`.
    ///
    /// # Panics
    /// If `capacity` ≥ `u32::MAX`.
    pub fn new(capacity: usize) -> Self {
        Self {
            order: IndexLists::new(capacity),
        }
    }
}

impl InactiveBackend for LruBackend {
    fn name(&self) -> &'static str {
        "lru"
    }

    fn insert(&mut self, block: BlockId, _hash: SequenceHash) {
        self.order.push_back(0, block as u32);
    }

    fn remove(&mut self, block: BlockId, _hash: SequenceHash) {
        let was_listed = self.order.remove(block as u32);
        debug_assert!(was_listed.is_some(), "block {block} removed but not cached");
    }

    fn pop_victim(&mut self) -> Option<BlockId> {
        self.order.pop_front(0).map(|id| id as BlockId)
    }

    fn len(&self) -> usize {
        self.order.len(0)
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        while let Some(id) = self.order.pop_front(0) {
            sink(id as BlockId);
        }
    }

    fn validate(&self) -> Result<(), String> {
        self.order.validate("lru")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u64) -> SequenceHash {
        SequenceHash::root(i)
    }

    #[test]
    fn evicts_in_release_order_and_skips_revived() {
        let mut lru = LruBackend::new(8);
        for id in [3, 1, 4, 5] {
            lru.insert(id, h(id as u64));
            lru.validate().unwrap();
        }
        lru.remove(1, h(1));
        lru.validate().unwrap();
        lru.insert(1, h(1));
        assert_eq!(lru.len(), 4);
        let order: Vec<_> = std::iter::from_fn(|| lru.pop_victim()).collect();
        assert_eq!(order, vec![3, 4, 5, 1]);
        assert!(lru.is_empty());
        lru.validate().unwrap();
    }

    #[test]
    fn drain_empties() {
        let mut lru = LruBackend::new(4);
        lru.insert(0, h(0));
        lru.insert(2, h(2));
        let mut seen = Vec::new();
        lru.drain(&mut |id| seen.push(id));
        assert_eq!(seen, vec![0, 2]);
        assert_eq!(lru.len(), 0);
        lru.validate().unwrap();
    }
}
