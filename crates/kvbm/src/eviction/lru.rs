//! Least-recently-released first.
//!
//! An intrusive doubly linked list over two arrays indexed by block id:
//! O(1) insert, remove and victim selection, no allocation after
//! construction.

use super::{InactiveBackend, NIL};
use crate::{BlockId, SequenceHash};

/// Evicts the cached block that was released longest ago.
#[derive(Debug, Clone)]
pub struct LruBackend {
    links: Vec<Link>,
    /// Oldest release: the next victim.
    head: u32,
    /// Newest release.
    tail: u32,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
    linked: bool,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    linked: false,
};

impl LruBackend {
    /// An empty LRU order for block ids below `capacity`.
    pub fn new(capacity: usize) -> Self {
        Self {
            links: vec![UNLINKED; capacity],
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    fn push_back(&mut self, id: u32) {
        let link = &mut self.links[id as usize];
        debug_assert!(!link.linked, "block {id} inserted twice");
        *link = Link {
            prev: self.tail,
            next: NIL,
            linked: true,
        };
        match self.tail {
            NIL => self.head = id,
            tail => self.links[tail as usize].next = id,
        }
        self.tail = id;
        self.len += 1;
    }

    fn unlink(&mut self, id: u32) {
        let Link { prev, next, linked } = self.links[id as usize];
        debug_assert!(linked, "block {id} removed but not cached");
        match prev {
            NIL => self.head = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.links[n as usize].prev = prev,
        }
        self.links[id as usize] = UNLINKED;
        self.len -= 1;
    }
}

impl InactiveBackend for LruBackend {
    fn name(&self) -> &'static str {
        "lru"
    }

    fn insert(&mut self, block: BlockId, _hash: SequenceHash) {
        self.push_back(block as u32);
    }

    fn remove(&mut self, block: BlockId, _hash: SequenceHash) {
        self.unlink(block as u32);
    }

    fn pop_victim(&mut self) -> Option<BlockId> {
        let head = self.head;
        if head == NIL {
            return None;
        }
        self.unlink(head);
        Some(head as BlockId)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn drain(&mut self, sink: &mut dyn FnMut(BlockId)) {
        while let Some(id) = self.pop_victim() {
            sink(id);
        }
    }

    fn validate(&self) -> Result<(), String> {
        let mut count = 0;
        let mut prev = NIL;
        let mut cur = self.head;
        while cur != NIL {
            let link = self.links[cur as usize];
            if !link.linked || link.prev != prev {
                return Err(format!("lru: broken link at block {cur}"));
            }
            count += 1;
            if count > self.links.len() {
                return Err("lru: cycle in list".into());
            }
            prev = cur;
            cur = link.next;
        }
        if prev != self.tail {
            return Err("lru: tail does not end the list".into());
        }
        let linked = self.links.iter().filter(|l| l.linked).count();
        if count != self.len || linked != self.len {
            return Err(format!(
                "lru: len {} but {count} reachable and {linked} linked",
                self.len
            ));
        }
        Ok(())
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
