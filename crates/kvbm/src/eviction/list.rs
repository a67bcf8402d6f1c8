//! `N` intrusive doubly linked lists over one set of per-block link arrays.
//!
//! Every backend keeps its order as lists of block ids. A block is in at most
//! one list at a time, so the lists can share the `prev`/`next` arrays and a
//! per-block tag that names the list (or none). All operations are O(1) and
//! never allocate after construction.

use super::NIL;

/// Tag of a block that is in no list.
const UNLISTED: u8 = u8::MAX;

#[derive(Debug, Clone, Copy)]
struct Link {
    prev: u32,
    next: u32,
}

const DETACHED: Link = Link {
    prev: NIL,
    next: NIL,
};

#[derive(Debug, Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
    len: usize,
}

const EMPTY: Ends = Ends {
    head: NIL,
    tail: NIL,
    len: 0,
};

/// `N` lists of block ids below a fixed capacity; front = oldest push.
#[derive(Debug, Clone)]
pub(crate) struct IndexLists<const N: usize> {
    links: Vec<Link>,
    tags: Vec<u8>,
    ends: [Ends; N],
}

impl<const N: usize> IndexLists<N> {
    /// Empty lists for ids below `capacity`.
    ///
    /// Panics if `capacity` does not leave room for the `NIL` sentinel in a
    /// `u32`, or if `N` does not fit the tag byte: both are programming
    /// errors in the pool configuration, not runtime input.
    pub(crate) fn new(capacity: usize) -> Self {
        assert!(
            capacity < NIL as usize,
            "block capacity {capacity} does not fit 32-bit block links"
        );
        assert!(N < UNLISTED as usize, "too many lists");
        Self {
            links: crate::huge_pages::filled_huge(DETACHED, capacity),
            tags: crate::huge_pages::filled_huge(UNLISTED, capacity),
            ends: [EMPTY; N],
        }
    }

    /// The list `id` is in, if any.
    #[inline]
    pub(crate) fn list_of(&self, id: u32) -> Option<usize> {
        match self.tags[id as usize] {
            UNLISTED => None,
            tag => Some(tag as usize),
        }
    }

    /// Whether `id` is in any list.
    #[inline]
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.tags[id as usize] != UNLISTED
    }

    /// The number of ids in `list`.
    #[inline]
    pub(crate) fn len(&self, list: usize) -> usize {
        self.ends[list].len
    }

    /// The number of ids in all lists.
    pub(crate) fn total_len(&self) -> usize {
        self.ends.iter().map(|e| e.len).sum()
    }

    /// The oldest id in `list`.
    #[inline]
    pub(crate) fn front(&self, list: usize) -> Option<u32> {
        match self.ends[list].head {
            NIL => None,
            head => Some(head),
        }
    }

    /// The id after `id` in its list, `NIL` at the back (or when unlisted).
    #[inline]
    pub(crate) fn next(&self, id: u32) -> u32 {
        self.links[id as usize].next
    }

    /// Appends `id`, which must be in no list, at the back of `list`.
    #[inline]
    pub(crate) fn push_back(&mut self, list: usize, id: u32) {
        debug_assert!(!self.contains(id), "block {id} is already listed");
        let ends = &mut self.ends[list];
        self.links[id as usize] = Link {
            prev: ends.tail,
            next: NIL,
        };
        match ends.tail {
            NIL => ends.head = id,
            tail => self.links[tail as usize].next = id,
        }
        ends.tail = id;
        ends.len += 1;
        self.tags[id as usize] = list as u8;
    }

    /// Takes `id` out of whichever list holds it and returns that list, or
    /// `None` (and changes nothing) when it is in none.
    #[inline]
    pub(crate) fn remove(&mut self, id: u32) -> Option<usize> {
        let list = self.list_of(id)?;
        let Link { prev, next } = self.links[id as usize];
        let ends = &mut self.ends[list];
        match prev {
            NIL => ends.head = next,
            p => self.links[p as usize].next = next,
        }
        match next {
            NIL => ends.tail = prev,
            n => self.links[n as usize].prev = prev,
        }
        ends.len -= 1;
        self.links[id as usize] = DETACHED;
        self.tags[id as usize] = UNLISTED;
        Some(list)
    }

    /// Takes `id`, which must be the front of `list`, out of it and returns
    /// the new front (`NIL` when the list is now empty): a cheaper
    /// [`remove`](Self::remove) for a caller that already knows both.
    #[inline]
    pub(crate) fn remove_front(&mut self, list: usize, id: u32) -> u32 {
        debug_assert_eq!(self.front(list), Some(id), "block {id} is not the front");
        let next = self.links[id as usize].next;
        let ends = &mut self.ends[list];
        ends.head = next;
        match next {
            NIL => ends.tail = NIL,
            n => self.links[n as usize].prev = NIL,
        }
        ends.len -= 1;
        self.links[id as usize] = DETACHED;
        self.tags[id as usize] = UNLISTED;
        next
    }

    /// Removes and returns the oldest id in `list`.
    #[inline]
    pub(crate) fn pop_front(&mut self, list: usize) -> Option<u32> {
        let head = self.front(list)?;
        self.remove(head);
        Some(head)
    }

    /// The ids of `list`, oldest first.
    #[cfg(test)]
    pub(crate) fn iter(&self, list: usize) -> impl Iterator<Item = u32> + '_ {
        let mut cur = self.ends[list].head;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let id = cur;
            cur = self.links[id as usize].next;
            Some(id)
        })
    }

    /// Walks every list and checks links, tags, ends and lengths; `what`
    /// prefixes error messages.
    pub(crate) fn validate(&self, what: &str) -> Result<(), String> {
        let mut reachable = 0usize;
        for (list, ends) in self.ends.iter().enumerate() {
            let mut count = 0usize;
            let mut prev = NIL;
            let mut cur = ends.head;
            while cur != NIL {
                let Some(link) = self.links.get(cur as usize) else {
                    return Err(format!(
                        "{what}: list {list} links to id {cur} out of range"
                    ));
                };
                if self.tags[cur as usize] as usize != list {
                    return Err(format!(
                        "{what}: id {cur} in list {list} carries another tag"
                    ));
                }
                if link.prev != prev {
                    return Err(format!("{what}: id {cur} in list {list} has a wrong prev"));
                }
                count += 1;
                if count > self.links.len() {
                    return Err(format!("{what}: cycle in list {list}"));
                }
                prev = cur;
                cur = link.next;
            }
            if prev != ends.tail {
                return Err(format!("{what}: tail of list {list} does not end it"));
            }
            if count != ends.len {
                return Err(format!(
                    "{what}: list {list} has len {} but {count} reachable ids",
                    ends.len
                ));
            }
            reachable += count;
        }
        let tagged = self.tags.iter().filter(|&&t| t != UNLISTED).count();
        if tagged != reachable {
            return Err(format!(
                "{what}: {tagged} ids tagged as listed but {reachable} reachable"
            ));
        }
        if let Some(bad) = self
            .tags
            .iter()
            .find(|&&t| t != UNLISTED && t as usize >= N)
        {
            return Err(format!("{what}: tag {bad} names no list"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_share_links_without_interference() {
        let mut lists = IndexLists::<2>::new(6);
        for id in [4, 0, 2] {
            lists.push_back(0, id);
        }
        for id in [1, 5] {
            lists.push_back(1, id);
        }
        lists.validate("t").unwrap();
        assert_eq!(lists.remove(0), Some(0));
        assert_eq!(lists.remove(0), None);
        assert_eq!(lists.list_of(5), Some(1));
        assert_eq!(lists.iter(0).collect::<Vec<_>>(), vec![4, 2]);
        assert_eq!(lists.pop_front(1), Some(1));
        assert_eq!(lists.total_len(), 3);
        lists.validate("t").unwrap();
        lists.push_back(1, 0);
        assert_eq!(lists.iter(1).collect::<Vec<_>>(), vec![5, 0]);
        assert_eq!(lists.pop_front(0), Some(4));
        assert_eq!(lists.pop_front(0), Some(2));
        assert_eq!(lists.pop_front(0), None);
        assert_eq!(lists.front(1), Some(5));
        lists.validate("t").unwrap();
        assert_eq!(lists.remove_front(1, 5), 0);
        lists.validate("t").unwrap();
        assert_eq!(lists.remove_front(1, 0), NIL);
        assert_eq!(lists.len(1), 0);
        assert_eq!(lists.front(1), None);
        lists.validate("t").unwrap();
    }
}
