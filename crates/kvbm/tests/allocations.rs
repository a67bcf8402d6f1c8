//! Hot paths allocate per call (the `Vec`s the API returns), never per
//! block, once the pool is warm. Counted with a global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use kvbm::events::EventsManager;
use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::testing::{builder, chain, registry_with_events};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the
// counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BLOCKS_PER_REQUEST: usize = 32;

/// One request: match the prefix, allocate and register the rest, release.
fn request(m: &kvbm::BlockManager<kvbm::testing::Device>, hashes: &[kvbm::SequenceHash]) {
    let hits = m.match_blocks(hashes);
    let rest = &hashes[hits.len()..];
    let blocks = m.allocate_blocks(rest.len()).expect("capacity");
    let complete: Vec<_> = blocks
        .into_iter()
        .zip(rest)
        .map(|(b, h)| b.stage(*h, 16).unwrap())
        .collect();
    let registered = m.register_blocks(complete);
    drop((hits, registered));
}

/// Allocations per request at steady state; with `events`, the registry
/// reports to an events manager whose one subscriber reads every event.
fn allocations_per_request(backend: Backend, events: bool) -> f64 {
    let mut builder = builder(backend).block_count(256).block_size(16);
    let mut subscriber = None;
    if events {
        let manager = Arc::new(EventsManager::builder().channel_capacity(1024).build());
        subscriber = Some(manager.subscribe());
        builder = builder.registry(registry_with_events(backend, manager));
    }
    let m = builder.build().unwrap();
    let mut request = |seq: &[kvbm::SequenceHash]| {
        request(&m, seq);
        if let Some(stream) = &mut subscriber {
            while stream.try_recv().is_some() {}
        }
    };
    // 64 distinct sequences sharing an 8-block prefix: far more blocks than
    // the pool holds, so every request evicts.
    let shared = chain(1, 8);
    let workload: Vec<Vec<kvbm::SequenceHash>> = (0..64u64)
        .map(|i| {
            let mut seq = shared.clone();
            let mut h = seq[7];
            for j in 0..(BLOCKS_PER_REQUEST - 8) as u64 {
                h = h.extend(1_000_000 * (i + 1) + j);
                seq.push(h);
            }
            seq
        })
        .collect();
    for seq in workload.iter().cycle().take(512) {
        request(seq);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let rounds = 1024;
    for seq in workload.iter().cycle().take(rounds) {
        request(seq);
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert!(m.metrics().snapshot().evictions > 0);
    (after - before) as f64 / rounds as f64
}

#[test]
fn steady_state_allocations_do_not_grow_with_blocks() {
    for backend in Backend::ALL {
        for events in [false, true] {
            let per_request = allocations_per_request(backend, events);
            // match Vec + allocate Vec + staged Vec + registered Vec = 4 per
            // request; anything per block would be ≥ 24 (the blocks filled).
            assert!(
                per_request <= 4.0,
                "{backend:?}, events {events}: {per_request} allocations per request \
                 of {BLOCKS_PER_REQUEST} blocks"
            );
        }
    }
}
