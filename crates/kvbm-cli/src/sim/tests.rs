//! Cross-policy properties: Belady bounds every policy, the unbounded cache
//! bounds Belady, every policy reaches the maximum prefix ratio when nothing
//! needs evicting, and the block manager's LRU agrees with the simulator's
//! reference LRU block for block.

use proptest::prelude::*;

use crate::sim::contender::{build, Contender};
use crate::sim::{self, NoObserver, ReleaseOrder, ServeConfig, SimError, SimResult, Timing};
use crate::workload::{Workload, WorkloadBuilder};

/// Requests drawn from a few "conversations": each request takes a prefix of
/// one of a few base chains and appends a few ids of its own, so prefixes
/// are shared, extended and diverge.
fn workload_strategy() -> impl Strategy<Value = Workload> {
    let request = (
        0usize..4,
        0usize..12,
        proptest::collection::vec(0u64..6, 0..5),
    );
    proptest::collection::vec(request, 1..60).prop_map(|reqs| {
        let bases: Vec<Vec<u64>> = (0..4u64)
            .map(|b| (0..12u64).map(|i| 1000 * (b + 1) + i).collect())
            .collect();
        let mut builder = WorkloadBuilder::new(16);
        for (i, (base, prefix, tail)) in reqs.into_iter().enumerate() {
            let mut ids: Vec<u64> = bases[base][..prefix].to_vec();
            ids.extend(tail);
            let input = ids.len() as u64 * 16;
            builder
                .push_block_ids(i as u64, input, 20, &ids, None)
                .unwrap();
        }
        builder.finish("proptest".into(), "generated", 0)
    })
}

fn run(w: &Workload, kind: Contender, capacity: usize, release: ReleaseOrder) -> SimResult {
    let mut p = build(kind, w, capacity, release, Timing::Instant, None).unwrap();
    sim::run(w, p.as_mut(), Timing::Instant, &mut NoObserver).unwrap()
}

/// Runs a fresh `kind` of `capacity` blocks (root-first release) under serve
/// timing `cfg`.
fn serve(
    w: &Workload,
    kind: Contender,
    capacity: usize,
    cfg: ServeConfig,
) -> Result<SimResult, SimError> {
    let timing = Timing::Serve(cfg);
    let mut p = build(kind, w, capacity, ReleaseOrder::RootFirst, timing, None).unwrap();
    sim::run(w, p.as_mut(), timing, &mut NoObserver)
}

fn others() -> Vec<Contender> {
    let mut v = Contender::all();
    v.retain(|k| *k != Contender::Belady);
    v.push(Contender::SimLru);
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn belady_bounds_every_policy(w in workload_strategy(), capacity in 1usize..40) {
        for release in [ReleaseOrder::RootFirst, ReleaseOrder::LeafFirst] {
            let belady = run(&w, Contender::Belady, capacity, release);
            let unbounded = run(&w, Contender::Unbounded, capacity, release);
            prop_assert!(belady.hits <= unbounded.hits);
            for kind in others() {
                let r = run(&w, kind, capacity, release);
                prop_assert!(
                    r.hits <= belady.hits,
                    "{} {} hits > belady {} at capacity {capacity}, {release:?}",
                    r.policy, r.hits, belady.hits
                );
                prop_assert_eq!(r.hits + r.misses, belady.hits + belady.misses);
            }
        }
    }

    #[test]
    fn manager_lru_matches_reference_lru(w in workload_strategy(), capacity in 1usize..40) {
        for release in [ReleaseOrder::RootFirst, ReleaseOrder::LeafFirst] {
            let lru = run(&w, Contender::Manager(crate::sim::manager::EvictionPolicy::Lru), capacity, release);
            let reference = run(&w, Contender::SimLru, capacity, release);
            prop_assert_eq!((lru.hits, lru.evictions, lru.allocation_failures),
                (reference.hits, reference.evictions, reference.allocation_failures));
        }
    }

    #[test]
    fn enough_capacity_reaches_the_maximum(w in workload_strategy()) {
        let max = w.unbounded_hits();
        let capacity = w.unique_prompt_blocks() as usize;
        for kind in Contender::all().into_iter().chain([Contender::SimLru]) {
            let r = run(&w, kind, capacity.max(1), ReleaseOrder::RootFirst);
            prop_assert_eq!(r.hits, max, "{}", r.policy);
            prop_assert_eq!(r.evictions, 0);
        }
    }

    #[test]
    fn serve_timing_conserves_blocks(w in workload_strategy(), capacity in 1usize..40) {
        // Every block is released at the end: nothing leaks, whatever queued.
        for kind in Contender::all().into_iter().chain([Contender::SimLru]) {
            let cfg = ServeConfig { prefill_tps: 100.0, decode_tps: 10.0 };
            let mut p = build(kind, &w, capacity, ReleaseOrder::RootFirst, Timing::Serve(cfg), None).unwrap();
            let r = sim::run(&w, p.as_mut(), Timing::Serve(cfg), &mut NoObserver).unwrap();
            prop_assert_eq!(p.available(), p.capacity(), "{}", r.policy);
            prop_assert!(p.capacity() <= capacity);
            prop_assert_eq!(r.requests, w.requests.len() as u64);
            prop_assert_eq!(r.hits + r.misses, w.prompt_blocks());
        }
    }
}

#[test]
fn oversized_requests_are_counted_not_fatal() {
    let mut b = WorkloadBuilder::new(16);
    b.push_block_ids(0, 160, 0, &(0..10).collect::<Vec<_>>(), None)
        .unwrap();
    b.push_block_ids(1, 32, 0, &[0, 1], None).unwrap();
    let w = b.finish("t".into(), "generated", 0);
    for kind in Contender::all() {
        let r = run(&w, kind, 4, ReleaseOrder::RootFirst);
        assert_eq!(r.oversized_requests, 1, "{}", r.policy);
        assert_eq!(r.hits, 0);
        assert_eq!(r.misses, 12);
        let s = serve(&w, kind, 4, ServeConfig::default()).unwrap();
        assert_eq!(s.oversized_requests, 1);
        assert_eq!(s.requests, 2);
    }
}

#[test]
fn serve_timing_queues_when_memory_is_short() {
    // Three 4-block requests arriving together, room for two at a time.
    let mut b = WorkloadBuilder::new(16);
    for i in 0..3u64 {
        b.push_block_ids(
            0,
            64,
            16,
            &[10 * i, 10 * i + 1, 10 * i + 2, 10 * i + 3],
            None,
        )
        .unwrap();
    }
    let w = b.finish("t".into(), "generated", 0);
    let cfg = ServeConfig {
        prefill_tps: 64.0,
        decode_tps: 16.0,
    };
    let r = serve(&w, Contender::SimLru, 10, cfg).unwrap();
    let s = r.serve.expect("serve stats");
    assert_eq!(s.queued_requests, 1);
    assert_eq!(s.max_running, 2);
    // Each request holds its blocks for 1 s prefill + 1 s decode.
    assert!((s.max_queue_wait_s - 2.0).abs() < 1e-3, "{s:?}");
    assert!((s.simulated_seconds - 4.0).abs() < 1e-3, "{s:?}");
}

#[test]
fn serve_timing_reuses_generated_blocks() {
    // Turn 2's prompt repeats turn 1's prompt and answer.
    let mut b = WorkloadBuilder::new(4);
    b.push_block_ids(0, 8, 8, &[1, 2], Some(&[3, 4])).unwrap();
    b.push_block_ids(60_000, 20, 4, &[1, 2, 3, 4, 5], Some(&[6]))
        .unwrap();
    let w = b.finish("t".into(), "generated", 0);
    let served = serve(&w, Contender::SimLru, 100, ServeConfig::default()).unwrap();
    assert_eq!(served.hits, 4);
    let instant = run(&w, Contender::SimLru, 100, ReleaseOrder::RootFirst);
    assert_eq!(instant.hits, 2);
}

/// Requests as Mooncake lines with 4-token blocks and any valid
/// `input_length`: the last block holds 1 to 4 tokens.
fn partial_block_workload() -> impl Strategy<Value = (Workload, Vec<(Vec<u64>, u64)>)> {
    let request = (0usize..3, 1usize..6, 1u64..=4);
    proptest::collection::vec(request, 1..40).prop_map(|reqs| {
        let mut builder = WorkloadBuilder::new(4);
        let mut lines = Vec::new();
        for (i, (base, len, last)) in reqs.into_iter().enumerate() {
            // Prefixes of one of three chains: shared, extended, repeated.
            let ids: Vec<u64> = (0..len as u64).map(|k| 100 * base as u64 + k).collect();
            let input = 4 * (len as u64 - 1) + last;
            builder
                .push_block_ids(i as u64, input, 0, &ids, None)
                .unwrap();
            lines.push((ids, input));
        }
        (builder.finish("t".into(), "mooncake", 0), lines)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The token hit rate against a calculation from the lines themselves:
    /// with nothing evicted, a request hits the longest id prefix some
    /// earlier request had, and a hit block counts its own tokens (the last
    /// one may be partial).
    #[test]
    fn token_hits_count_partial_last_blocks((w, lines) in partial_block_workload()) {
        let mut seen: Vec<Vec<u64>> = Vec::new();
        let (mut hit_tokens, mut input_tokens) = (0u64, 0u64);
        for (ids, input) in &lines {
            let hits = (0..=ids.len())
                .rev()
                .find(|&h| seen.iter().any(|s| s.len() >= h && s[..h] == ids[..h]))
                .unwrap_or(0);
            hit_tokens += (0..hits as u64).map(|b| (input - 4 * b).min(4)).sum::<u64>();
            input_tokens += input;
            seen.push(ids.clone());
        }
        for kind in [Contender::Unbounded, Contender::SimLru, Contender::Manager(crate::sim::manager::EvictionPolicy::Lru)] {
            let r = run(&w, kind, 1000, ReleaseOrder::RootFirst);
            prop_assert_eq!(r.token_hit_rate, hit_tokens as f64 / input_tokens as f64, "{}", r.policy);
        }
    }
}

#[test]
fn token_hit_rate_of_a_partial_last_block() {
    // 4-token blocks; the first two requests end in a 2-token block.
    let mut b = WorkloadBuilder::new(4);
    b.push_block_ids(0, 10, 0, &[1, 2, 3], None).unwrap();
    b.push_block_ids(1, 10, 0, &[1, 2, 3], None).unwrap();
    b.push_block_ids(2, 12, 0, &[1, 2, 9], None).unwrap();
    let w = b.finish("t".into(), "mooncake", 0);
    let r = run(&w, Contender::SimLru, 100, ReleaseOrder::RootFirst);
    // Hits: 0, then all 3 blocks (4 + 4 + 2 tokens), then 2 blocks (8).
    assert_eq!((r.hits, r.misses), (5, 4));
    assert_eq!(r.token_hit_rate, 18.0 / 32.0);
}

#[test]
fn serve_prefill_time_counts_only_missed_tokens() {
    // 4 tokens per block, 4 tokens/s for prefill and decode.
    let mut b = WorkloadBuilder::new(4);
    // t=0: 8 prompt tokens, all missed: 2 s prefill, 1 s decode → done at 3 s.
    b.push_block_ids(0, 8, 4, &[1, 2], None).unwrap();
    // t=10 s: 12 tokens, 8 of them hit: 1 s prefill → done at 11 s.
    b.push_block_ids(10_000, 12, 0, &[1, 2, 3], None).unwrap();
    // t=20 s: the same 3 blocks but a 2-token last block, all hit: no
    // prefill, 1 s decode → done at 21 s.
    b.push_block_ids(20_000, 10, 4, &[1, 2, 3], None).unwrap();
    let w = b.finish("t".into(), "mooncake", 0);
    let cfg = ServeConfig {
        prefill_tps: 4.0,
        decode_tps: 4.0,
    };
    for kind in [
        Contender::SimLru,
        Contender::Manager(crate::sim::manager::EvictionPolicy::Lru),
    ] {
        let r = serve(&w, kind, 100, cfg).unwrap();
        assert_eq!(r.hits, 5, "{}", r.policy);
        let s = r.serve.unwrap();
        assert_eq!(s.simulated_seconds, 21.0, "{}", r.policy);
        assert_eq!(s.max_running, 1);
        assert_eq!(s.max_queue_wait_s, 0.0);
    }
    // Without the hits (an empty cache every time) prefill takes 3 s and
    // 2.5 s: the last request ends at 20 + 2.5 + 1.
    let mut b = WorkloadBuilder::new(4);
    b.push_block_ids(0, 8, 4, &[1, 2], None).unwrap();
    b.push_block_ids(10_000, 12, 0, &[5, 6, 7], None).unwrap();
    b.push_block_ids(20_000, 10, 4, &[8, 9, 10], None).unwrap();
    let w = b.finish("t".into(), "mooncake", 0);
    let r = serve(&w, Contender::SimLru, 100, cfg).unwrap();
    assert_eq!(r.serve.unwrap().simulated_seconds, 23.5);
}

#[test]
fn serve_clock_overflow_is_an_error() {
    let mut b = WorkloadBuilder::new(4);
    b.push_block_ids(0, 8, 4_000_000, &[1, 2], None).unwrap();
    let w = b.finish("t".into(), "mooncake", 0);
    // No rate the command line accepts gets here; the model still refuses
    // to wrap its clock.
    let cfg = ServeConfig {
        prefill_tps: 1.0,
        decode_tps: 1e-300,
    };
    let err = serve(&w, Contender::SimLru, 2_000_000, cfg).unwrap_err();
    assert_eq!(err, SimError::ClockOverflow);
}
