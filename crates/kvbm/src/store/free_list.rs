//! The free blocks, a stack threaded through the free slots themselves.
//!
//! A free slot holds no hash, so its hash words hold the id of the next
//! free block: the free list costs no memory per block (a `Vec<u32>` beside
//! the slots took 4 bytes per block). Last freed, first handed out, as
//! with the `Vec` it replaces, so allocation order is unchanged.

use crate::block_slot::{Slot, SlotState};
use crate::eviction::NIL;

/// The head of the stack of free blocks and its length; the links live in
/// the slots (see [`Slot::next_free`]).
#[derive(Debug)]
pub(crate) struct FreeList {
    /// The block handed out next, `NIL` when none is free.
    head: u32,
    len: usize,
}

impl FreeList {
    /// Threads every one of `slots` (all free) into the list, block 0 on
    /// top, so that blocks are first handed out in id order.
    pub(crate) fn all(slots: &mut [Slot]) -> Self {
        let n = slots.len() as u32;
        for (id, slot) in (0..n).zip(slots.iter_mut()) {
            debug_assert_eq!(slot.state, SlotState::Free);
            slot.set_next_free(if id + 1 < n { id + 1 } else { NIL });
        }
        FreeList {
            head: if n > 0 { 0 } else { NIL },
            len: slots.len(),
        }
    }

    /// The number of free blocks.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Puts block `id`, whose slot is `slot` and already `Free`, on top.
    /// Overwrites the slot's hash: read it first.
    #[inline]
    pub(crate) fn push(&mut self, slot: &mut Slot, id: u32) {
        debug_assert_eq!(slot.state, SlotState::Free);
        slot.set_next_free(self.head);
        self.head = id;
        self.len += 1;
    }

    /// Takes the block on top, if any; its slot is still `Free`.
    #[inline]
    pub(crate) fn pop(&mut self, slots: &[Slot]) -> Option<u32> {
        if self.head == NIL {
            return None;
        }
        let id = self.head;
        self.head = slots[id as usize].next_free();
        self.len -= 1;
        Some(id)
    }

    /// Walks the list and checks that it holds exactly `len` blocks, each
    /// free and each once (so no cycle either), and ends in `NIL`;
    /// `Err` describes the first break.
    pub(crate) fn validate(&self, slots: &[Slot]) -> Result<(), String> {
        let mut seen = vec![false; slots.len()];
        let mut walked = 0;
        let mut cur = self.head;
        while cur != NIL {
            let Some(slot) = slots.get(cur as usize) else {
                return Err(format!("free list holds unknown block {cur}"));
            };
            if std::mem::replace(&mut seen[cur as usize], true) {
                return Err(format!("block {cur} is in the free list twice"));
            }
            if slot.state != SlotState::Free {
                return Err(format!("free-listed block {cur} is {:?}", slot.state));
            }
            walked += 1;
            cur = slot.next_free();
        }
        if walked != self.len {
            return Err(format!(
                "free list links {walked} blocks but counts {}",
                self.len
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free_slots(n: usize) -> Vec<Slot> {
        vec![Slot::FREE; n]
    }

    #[test]
    fn hands_out_in_id_order_then_last_freed_first() {
        let mut slots = free_slots(4);
        let mut free = FreeList::all(&mut slots);
        free.validate(&slots).unwrap();
        let taken: Vec<u32> = (0..3).map(|_| free.pop(&slots).unwrap()).collect();
        assert_eq!(taken, [0, 1, 2]);
        for &id in &taken {
            slots[id as usize].state = SlotState::Held;
        }
        assert_eq!(free.len(), 1);
        free.validate(&slots).unwrap();
        for id in [2, 0] {
            slots[id].state = SlotState::Free;
            free.push(&mut slots[id], id as u32);
        }
        free.validate(&slots).unwrap();
        let order: Vec<u32> = std::iter::from_fn(|| free.pop(&slots)).collect();
        assert_eq!(order, [0, 2, 3]);
        assert_eq!(free.len(), 0);
        free.validate(&slots).unwrap();
    }

    #[test]
    fn an_empty_store_has_an_empty_list() {
        let mut slots = free_slots(0);
        let mut free = FreeList::all(&mut slots);
        assert_eq!(free.pop(&slots), None);
        free.validate(&slots).unwrap();
    }

    #[test]
    fn validate_finds_broken_threads() {
        let mut slots = free_slots(3);
        let free = FreeList::all(&mut slots);
        // A listed block that is not free.
        slots[1].state = SlotState::CheckedOut;
        assert!(free.validate(&slots).unwrap_err().contains("block 1 is"));
        slots[1].state = SlotState::Free;
        // A cycle.
        slots[2].set_next_free(0);
        assert!(free.validate(&slots).unwrap_err().contains("twice"));
        // A link out of range.
        slots[2].set_next_free(7);
        assert!(free
            .validate(&slots)
            .unwrap_err()
            .contains("unknown block 7"));
        // A list cut short.
        slots[1].set_next_free(NIL);
        assert!(free
            .validate(&slots)
            .unwrap_err()
            .contains("links 2 blocks"));
    }
}
