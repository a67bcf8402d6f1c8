//! A bounded broadcast ring: the registry writes registry changes into it
//! under its lock, subscribers read at their own pace and are told when
//! they fell so far behind that events were overwritten.
//!
//! Written by hand rather than taken from an async runtime so that the
//! synchronous core needs no runtime: a push is one uncontended lock per
//! registry operation (however many hashes it changes) and no allocation;
//! readers can block on a condition variable or wait as a future with any
//! executor.
//!
//! Each slot remembers how many announced events (those the emission
//! policy let through) came before it, so a reader that only wants
//! announced events learns exactly how many of *those* it missed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Waker;
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::protocol::{BlockEvent, BlockLineage, KvCacheEvent};

/// One registry change as the ring stores it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Record {
    pub(crate) event: KvCacheEvent,
    pub(crate) lineage: Option<BlockLineage>,
    /// Whether the emission policy announced this hash.
    pub(crate) announced: bool,
}

#[derive(Clone, Copy)]
/// One record in the ring and its place among the announced ones.
struct Entry {
    record: Record,
    /// Announced records pushed before this one.
    announced_before: u64,
}

pub(crate) struct Ring {
    state: Mutex<RingState>,
    ready: Condvar,
    /// Readers of announced events only; see [`Ring::wants`].
    filtered_readers: AtomicUsize,
    /// Readers of every event.
    block_readers: AtomicUsize,
}

struct RingState {
    slots: Box<[Entry]>,
    /// Index of the next record; also the number ever pushed.
    next: u64,
    /// Announced records ever pushed.
    announced: u64,
    closed: bool,
    /// Futures waiting for a record.
    wakers: Vec<Waker>,
    /// An empty buffer swapped with `wakers` when waking, so that waking
    /// allocates nothing.
    spare_wakers: Vec<Waker>,
    /// Threads blocked in `recv_blocking`.
    sleepers: usize,
}

const EMPTY: Entry = Entry {
    record: Record {
        event: KvCacheEvent::Remove(crate::tokens::PositionalLineageHash::from_u128(0)),
        lineage: None,
        announced: false,
    },
    announced_before: 0,
};

/// What a reader gets from one read attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read<T> {
    /// The next event.
    Event(T),
    /// This many events were overwritten before the reader got to them.
    Lagged(u64),
    /// Nothing new yet.
    Empty,
    /// Nothing new, and nothing ever will be: the manager is gone.
    Closed,
}

impl Ring {
    /// A ring of `capacity` slots (at least 1), or an error when this
    /// machine cannot hold them: the capacity is a user setting, so a huge
    /// one must not abort the process.
    pub(crate) fn try_new(capacity: usize) -> Result<Self, std::collections::TryReserveError> {
        let capacity = capacity.max(1);
        let mut slots = Vec::new();
        slots.try_reserve_exact(capacity)?;
        slots.resize(capacity, EMPTY);
        Ok(Self {
            state: Mutex::new(RingState {
                slots: slots.into_boxed_slice(),
                next: 0,
                announced: 0,
                closed: false,
                wakers: Vec::new(),
                spare_wakers: Vec::new(),
                sleepers: 0,
            }),
            ready: Condvar::new(),
            filtered_readers: AtomicUsize::new(0),
            block_readers: AtomicUsize::new(0),
        })
    }

    /// Whether a record with this announcement flag would reach any reader.
    /// Read without the lock: a reader that subscribes concurrently with a
    /// push may or may not see it, as if it had subscribed just after.
    #[inline]
    pub(crate) fn wants(&self, announced: bool) -> bool {
        self.block_readers.load(Ordering::Relaxed) > 0
            || (announced && self.filtered_readers.load(Ordering::Relaxed) > 0)
    }

    /// Starts a batch of pushes; the lock is held until the batch drops.
    pub(crate) fn writer(&self) -> RingWriter<'_> {
        RingWriter {
            ring: self,
            state: Some(self.state.lock()),
            pushed: false,
        }
    }

    /// Marks the ring closed and wakes every reader.
    pub(crate) fn close(&self) {
        let mut st = self.state.lock();
        st.closed = true;
        self.wake_all(st);
    }

    fn wake_all(&self, mut st: MutexGuard<'_, RingState>) {
        if st.sleepers > 0 {
            self.ready.notify_all();
        }
        if st.wakers.is_empty() {
            return;
        }
        let mut wakers = std::mem::take(&mut st.spare_wakers);
        std::mem::swap(&mut wakers, &mut st.wakers);
        drop(st);
        // Woken outside the lock: a waker may run arbitrary executor code.
        for waker in wakers.drain(..) {
            waker.wake();
        }
        let mut st = self.state.lock();
        if st.spare_wakers.capacity() < wakers.capacity() {
            st.spare_wakers = wakers;
        }
    }

    /// A reader positioned at the current end of the ring.
    pub(crate) fn reader(self: &std::sync::Arc<Self>, filtered: bool) -> Cursor {
        let st = self.state.lock();
        let counter = if filtered {
            &self.filtered_readers
        } else {
            &self.block_readers
        };
        counter.fetch_add(1, Ordering::Relaxed);
        Cursor {
            ring: std::sync::Arc::clone(self),
            at: Position {
                next: st.next,
                announced_seen: st.announced,
                filtered,
            },
        }
    }
}

/// Pushes records into the ring under one lock; wakes readers when dropped.
pub(crate) struct RingWriter<'a> {
    ring: &'a Ring,
    /// Always `Some` until the writer drops.
    state: Option<MutexGuard<'a, RingState>>,
    pushed: bool,
}

impl RingWriter<'_> {
    #[inline]
    pub(crate) fn push(&mut self, record: Record) {
        let Some(st) = self.state.as_deref_mut() else {
            return;
        };
        let cap = st.slots.len() as u64;
        st.slots[(st.next % cap) as usize] = Entry {
            record,
            announced_before: st.announced,
        };
        st.next += 1;
        st.announced += u64::from(record.announced);
        self.pushed = true;
    }
}

impl Drop for RingWriter<'_> {
    fn drop(&mut self) {
        let Some(st) = self.state.take() else {
            return;
        };
        if self.pushed && (st.sleepers > 0 || !st.wakers.is_empty()) {
            self.ring.wake_all(st);
        }
    }
}

/// A reader's position in the ring.
pub(crate) struct Cursor {
    ring: std::sync::Arc<Ring>,
    at: Position,
}

struct Position {
    next: u64,
    announced_seen: u64,
    filtered: bool,
}

impl Cursor {
    /// The next record for this reader, or what stands in its way.
    pub(crate) fn try_read(&mut self) -> Read<BlockEvent> {
        let st = self.ring.state.lock();
        self.at.read_locked(&st)
    }
}

impl Position {
    fn read_locked(&mut self, st: &RingState) -> Read<BlockEvent> {
        let cap = st.slots.len() as u64;
        loop {
            let oldest = st.next.saturating_sub(cap);
            if self.next < oldest {
                let first_kept = st.slots[(oldest % cap) as usize].announced_before;
                let missed = if self.filtered {
                    first_kept - self.announced_seen
                } else {
                    oldest - self.next
                };
                self.next = oldest;
                self.announced_seen = first_kept;
                if missed > 0 {
                    return Read::Lagged(missed);
                }
                continue;
            }
            if self.next == st.next {
                return if st.closed { Read::Closed } else { Read::Empty };
            }
            let slot = st.slots[(self.next % cap) as usize];
            self.next += 1;
            self.announced_seen = slot.announced_before + u64::from(slot.record.announced);
            if self.filtered && !slot.record.announced {
                continue;
            }
            return Read::Event(BlockEvent {
                event: slot.record.event,
                lineage: slot.record.lineage,
            });
        }
    }
}

impl Cursor {
    /// Blocks until something can be read or `deadline` passes (then
    /// [`Read::Empty`]).
    pub(crate) fn read_blocking(&mut self, deadline: Option<Instant>) -> Read<BlockEvent> {
        let mut st = self.ring.state.lock();
        loop {
            match self.at.read_locked(&st) {
                Read::Empty => {}
                other => return other,
            }
            st.sleepers += 1;
            let timed_out = match deadline {
                Some(d) => self.ring.ready.wait_until(&mut st, d).timed_out(),
                None => {
                    self.ring.ready.wait(&mut st);
                    false
                }
            };
            st.sleepers -= 1;
            if timed_out {
                return self.at.read_locked(&st);
            }
        }
    }

    /// Reads, or registers `waker` to be woken by the next push.
    pub(crate) fn poll_read(&mut self, waker: &Waker) -> Read<BlockEvent> {
        let mut st = self.ring.state.lock();
        let read = self.at.read_locked(&st);
        if read == Read::Empty && !st.wakers.iter().any(|w| w.will_wake(waker)) {
            st.wakers.push(waker.clone());
        }
        read
    }
}

impl Drop for Cursor {
    fn drop(&mut self) {
        let counter = if self.at.filtered {
            &self.ring.filtered_readers
        } else {
            &self.ring.block_readers
        };
        counter.fetch_sub(1, Ordering::Relaxed);
    }
}
