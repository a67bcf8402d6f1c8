//! Routers: kv-aware picks by cost, baselines rotate or draw.

use kvbm::events::{KvCacheEvents, KvbmCacheEvents};
use kvbm::tokens::PositionalLineageHash as H;
use kvbm_router::{
    Candidate, ClusterIndex, KvAwareRouter, PrefillLoadCost, RandomRouter, RoundRobinRouter,
    Router, WorkerLoad,
};

fn chain(root: u64, n: usize) -> Vec<H> {
    let mut out = vec![H::root(root)];
    while out.len() < n {
        let next = out[out.len() - 1].extend(out.len() as u64);
        out.push(next);
    }
    out
}

fn workers(loads: &[f64]) -> Vec<WorkerLoad> {
    loads
        .iter()
        .enumerate()
        .map(|(i, &load)| WorkerLoad {
            instance: i as u128,
            load,
        })
        .collect()
}

#[test]
fn kv_aware_prefers_the_cached_prefix_until_load_outweighs_it() {
    let q = chain(3, 10);
    let mut index = ClusterIndex::new();
    let b = KvbmCacheEvents {
        events: KvCacheEvents::Create(q[..8].to_vec()),
        instance_id: 2,
    };
    index.apply(&b, Some(1)).unwrap();
    let mut router = KvAwareRouter::new(PrefillLoadCost { load_weight: 1.0 });
    assert_eq!(
        router.route(&index, &q, &workers(&[0.0, 0.0, 0.0])),
        Some(2)
    );
    // Worker 2 is 5 blocks busier: 2 + 5 < 10, still worth it.
    assert_eq!(
        router.route(&index, &q, &workers(&[0.0, 0.0, 5.0])),
        Some(2)
    );
    // 9 blocks busier: 2 + 9 > 10, go elsewhere.
    assert_ne!(
        router.route(&index, &q, &workers(&[0.0, 0.0, 9.0])),
        Some(2)
    );
    assert_eq!(router.route(&index, &q, &[]), None);
}

#[test]
fn kv_aware_spreads_ties_and_takes_custom_costs() {
    let index = ClusterIndex::new();
    let q = chain(4, 3);
    let mut router = KvAwareRouter::new(PrefillLoadCost::default());
    let picks: Vec<_> = (0..6)
        .map(|_| {
            router
                .route(&index, &q, &workers(&[1.0, 1.0, 1.0]))
                .unwrap()
        })
        .collect();
    assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
    // A cost that only looks at load.
    let mut by_load = KvAwareRouter::new(|c: &Candidate| c.excess_load);
    assert_eq!(
        by_load.route(&index, &q, &workers(&[3.0, 0.5, 2.0])),
        Some(1)
    );
}

#[test]
fn baselines() {
    let index = ClusterIndex::new();
    let q = chain(5, 2);
    let w = workers(&[0.0; 4]);
    let mut rr = RoundRobinRouter::default();
    let picks: Vec<_> = (0..5).map(|_| rr.route(&index, &q, &w).unwrap()).collect();
    assert_eq!(picks, vec![0, 1, 2, 3, 0]);
    let mut rnd = RandomRouter::new(42);
    let mut seen = [0usize; 4];
    for _ in 0..4000 {
        seen[rnd.route(&index, &q, &w).unwrap()] += 1;
    }
    assert!(seen.iter().all(|&n| (800..1200).contains(&n)), "{seen:?}");
    assert_eq!(rnd.route(&index, &q, &[]), None);
    assert_eq!((rr.name(), rnd.name()), ("round-robin", "random"));
}
