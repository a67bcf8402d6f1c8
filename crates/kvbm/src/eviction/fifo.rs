//! Release order (first released, first evicted).
//!
//! The order kvbm-logical's hash-map backend uses by default. Because a
//! revived block leaves the order and a re-released one joins at the back,
//! it ranks blocks exactly as [`LruBackend`](super::LruBackend) does; it is a
//! separate policy so configurations and reports can name it.

use super::InactiveBackend;
use super::LruBackend;
use crate::{BlockId, SequenceHash};

/// Evicts cached blocks in the order they were released.
///
/// ```
/// use kvbm::eviction::{FifoBackend, InactiveBackend};
/// use kvbm::SequenceHash;
///
/// let mut fifo = FifoBackend::new(8);
/// fifo.insert(5, SequenceHash::root(5));
/// fifo.insert(1, SequenceHash::root(1));
/// fifo.remove(5, SequenceHash::root(5));
/// fifo.insert(5, SequenceHash::root(5));
/// assert_eq!(fifo.pop_victim(), Some(1));
/// assert_eq!(fifo.pop_victim(), Some(5));
/// ```
#[derive(Debug, Clone)]
pub struct FifoBackend(LruBackend);

impl FifoBackend {
    /// An empty queue for block ids below `capacity`.
    ///
    /// # Panics
    /// If `capacity` ≥ `u32::MAX`.
    pub fn new(capacity: usize) -> Self {
        Self(LruBackend::new(capacity))
    }
}

// Release order is exactly the LRU order here (a revived block leaves the
// cache and re-enters at the back on release), so FIFO reuses the LRU list
// under its own name.
impl InactiveBackend for FifoBackend {
    fn name(&self) -> &'static str {
        "fifo"
    }

    fn insert(&mut self, block: BlockId, hash: SequenceHash) {
        self.0.insert(block, hash);
    }

    fn remove(&mut self, block: BlockId, hash: SequenceHash) {
        self.0.remove(block, hash);
    }

    fn pop_victim(&mut self) -> Option<BlockId> {
        self.0.pop_victim()
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        self.0.drain(sink);
    }

    fn validate(&self) -> Result<(), String> {
        self.0.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(i: u64) -> SequenceHash {
        SequenceHash::root(i)
    }

    #[test]
    fn revival_removes_and_rerelease_appends() {
        let mut fifo = FifoBackend::new(6);
        for id in [0, 3, 2, 5] {
            fifo.insert(id, h(id as u64));
        }
        fifo.remove(3, h(3));
        fifo.validate().unwrap();
        fifo.insert(3, h(3));
        fifo.remove(5, h(5));
        assert_eq!(fifo.len(), 3);
        let mut order = Vec::new();
        fifo.drain(&mut |id| order.push(id));
        assert_eq!(order, vec![0, 2, 3]);
        assert!(fifo.is_empty());
        assert_eq!(fifo.pop_victim(), None);
        fifo.validate().unwrap();
        assert_eq!(fifo.name(), "fifo");
    }
}
