//! Several threads share one manager for tens of thousands of mixed
//! operations; blocks are conserved throughout and all come back at the end.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use kvbm::eviction::EvictionPolicy as Backend;
use kvbm::manager::BlockManager;
use kvbm::pools::BlockDuplicationPolicy;
use kvbm::testing::{builder, chain, Device};
use kvbm::{ImmutableBlock, SequenceHash};

const THREADS: usize = 4;
const ROUNDS: usize = 6_000;
const BLOCKS: usize = 64;

/// A tiny deterministic generator so each thread's mix is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn worker(m: &BlockManager<Device>, prefixes: &[Vec<SequenceHash>], seed: u64) -> usize {
    let mut rng = Rng(seed);
    let mut kept: Vec<ImmutableBlock<Device>> = Vec::new();
    let mut weak = Vec::new();
    let mut ops = 0;
    for _ in 0..ROUNDS {
        let seq = &prefixes[rng.below(prefixes.len())];
        let want = 1 + rng.below(seq.len());
        let query = &seq[..want];
        match rng.below(8) {
            // A request: reuse the cached prefix, fill the rest, register.
            0..=3 => {
                let hits = m.match_blocks(query);
                let missing = want - hits.len();
                if let Some(blocks) = m.allocate_blocks(missing) {
                    let complete: Vec<_> = blocks
                        .into_iter()
                        .zip(&query[hits.len()..])
                        .map(|(b, h)| b.stage(*h, m.block_size()).unwrap())
                        .collect();
                    let registered = m.register_blocks(complete);
                    if rng.below(4) == 0 {
                        kept.extend(registered);
                    }
                }
                if rng.below(4) == 0 {
                    kept.extend(hits);
                }
            }
            4 => {
                let found = m.scan_matches(query, true);
                if let Some(b) = found.into_values().next() {
                    weak.push(b.downgrade());
                }
            }
            5 => {
                if let Some(w) = weak.pop() {
                    if let Some(b) = w.upgrade() {
                        kept.push(b.clone());
                    }
                }
            }
            6 => {
                // Allocate and abandon: blocks go straight back.
                let _ = m.allocate_blocks(1 + rng.below(3));
            }
            _ => {
                let n = kept.len();
                if n > 0 {
                    kept.swap_remove(rng.below(n));
                }
            }
        }
        if kept.len() > 8 {
            kept.drain(..4);
        }
        ops += 1;
    }
    ops
}

fn stress(backend: Backend, policy: BlockDuplicationPolicy) {
    let m = Arc::new(
        builder(backend)
            .block_count(BLOCKS)
            .block_size(16)
            .duplication_policy(policy)
            .build()
            .unwrap(),
    );
    let prefixes: Arc<Vec<_>> = Arc::new((0..12).map(|i| chain(1000 * i, 12)).collect());
    let done = Arc::new(AtomicBool::new(false));

    // A watcher checks conservation while the workers run.
    let watcher = {
        let m = Arc::clone(&m);
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut checks = 0;
            while !done.load(Ordering::Acquire) {
                if let Err(e) = m.validate() {
                    panic!("while running: {e}");
                }
                checks += 1;
                std::thread::yield_now();
            }
            checks
        })
    };
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let m = Arc::clone(&m);
            let prefixes = Arc::clone(&prefixes);
            std::thread::spawn(move || worker(&m, &prefixes, 0x9E37_79B9 + t as u64))
        })
        .collect();
    let ops: usize = workers.into_iter().map(|w| w.join().unwrap()).sum();
    done.store(true, Ordering::Release);
    let checks = watcher.join().unwrap();
    assert_eq!(ops, THREADS * ROUNDS);
    assert!(checks > 0);

    m.validate().unwrap();
    let s = m.metrics().snapshot();
    assert_eq!(s.inflight_mutable, 0);
    assert_eq!(s.inflight_immutable, 0);
    assert_eq!(m.available_blocks(), BLOCKS, "every block is back");
    assert!(s.match_blocks_returned > 0 && s.evictions > 0, "{s:?}");
    m.reset_inactive_pool().unwrap();
    assert_eq!(m.metrics().snapshot().reset_pool_size, BLOCKS as i64);
    assert_eq!(m.block_registry().registered_count(), 0);
}

#[test]
fn threads_share_a_manager_with_duplicates_allowed() {
    for backend in Backend::ALL {
        stress(backend, BlockDuplicationPolicy::Allow);
    }
}

#[test]
fn threads_share_a_manager_with_duplicates_rejected() {
    for backend in Backend::ALL {
        stress(backend, BlockDuplicationPolicy::Reject);
    }
}
