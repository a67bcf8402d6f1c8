//! ClusterIndex against dynamo-kv-router 1.6.1's `RadixTree` on the same
//! events and queries, one core.
//!
//! Workloads:
//! - `trace`: the conversation trace (`<repo>/../shared/traces/`), request
//!   `k` stored in full by worker `k mod 8`; each worker announces only the
//!   blocks it did not hold yet (as a registry would). Queries: every
//!   request's full chain.
//! - `64x100k`: 64 workers, each storing 1,250 chains of 80 own blocks after
//!   one of 200 shared 20-block prefixes (≈ 100k hashes per worker).
//!
//! Ingest is timed from an empty structure over all events (best of
//! `--reps`), find_matches over all queries; both libraries answer every
//! query identically (checked on a sample before timing).
//!
//! `cargo bench -p kvbm-router --bench vs_dynamo [-- --reps N] [--no-dynamo]`

use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};

use dynamo_kv_router::indexer::RadixTree;
use dynamo_kv_router::protocols::{
    ExternalSequenceBlockHash, KvCacheEvent, KvCacheEventData, KvCacheStoreData,
    KvCacheStoredBlockData, LocalBlockHash, RouterEvent, WorkerWithDpRank,
};
use kvbm::events::{KvCacheEvents, KvbmCacheEvents};
use kvbm::SequenceHash;
use kvbm_router::{ClusterIndex, Matches};

/// One request: its block ids (token-content ids) and lineage chain.
struct Request {
    ids: Vec<u64>,
    chain: Vec<SequenceHash>,
}

fn request(ids: Vec<u64>) -> Request {
    let mut chain = Vec::with_capacity(ids.len());
    let mut h = SequenceHash::root(ids[0]);
    chain.push(h);
    for &id in &ids[1..] {
        h = h.extend(id);
        chain.push(h);
    }
    Request { ids, chain }
}

fn trace_requests() -> Vec<Request> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/traces/conversation_trace.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("conversation trace");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            let ids = v["hash_ids"]
                .as_array()
                .expect("hash_ids")
                .iter()
                .map(|x| x.as_u64().expect("id"))
                .collect::<Vec<u64>>();
            ids
        })
        .filter(|ids| !ids.is_empty())
        .map(request)
        .collect()
}

fn synthetic_requests(workers: usize) -> Vec<(usize, Request)> {
    let mut out = Vec::new();
    let mut next_id = 1_000_000u64;
    for w in 0..workers {
        for c in 0..1250u64 {
            let prefix = (c * 7 + w as u64 * 13) % 200;
            let mut ids: Vec<u64> = (0..20).map(|i| prefix * 100 + i).collect();
            for _ in 0..80 {
                ids.push(next_id);
                next_id += 1;
            }
            out.push((w, request(ids)));
        }
    }
    out
}

/// The same stream of stores for both libraries.
struct Events {
    ours: Vec<(KvbmCacheEvents, u64)>,
    theirs: Vec<RouterEvent>,
    blocks: usize,
}

fn events(assignments: &[(usize, &Request)]) -> Events {
    let mut held: HashMap<usize, HashSet<u128>> = HashMap::new();
    let mut seq: HashMap<usize, u64> = HashMap::new();
    let mut ev = Events {
        ours: Vec::new(),
        theirs: Vec::new(),
        blocks: 0,
    };
    for &(w, r) in assignments {
        let set = held.entry(w).or_default();
        let first_new = r.chain.iter().position(|h| !set.contains(&h.as_u128()));
        let Some(start) = first_new else { continue };
        set.extend(r.chain[start..].iter().map(|h| h.as_u128()));
        let s = seq.entry(w).or_insert(0);
        *s += 1;
        ev.blocks += r.chain.len() - start;
        ev.ours.push((
            KvbmCacheEvents {
                events: KvCacheEvents::Create(r.chain[start..].to_vec()),
                instance_id: w as u128,
            },
            *s,
        ));
        let blocks = (start..r.chain.len())
            .map(|i| KvCacheStoredBlockData {
                block_hash: ExternalSequenceBlockHash(r.chain[i].current_sequence_hash()),
                tokens_hash: LocalBlockHash(r.ids[i]),
                mm_extra_info: None,
            })
            .collect();
        ev.theirs.push(RouterEvent::new(
            w as u64,
            KvCacheEvent {
                event_id: *s,
                data: KvCacheEventData::Stored(KvCacheStoreData {
                    parent_hash: (start > 0).then(|| {
                        ExternalSequenceBlockHash(r.chain[start - 1].current_sequence_hash())
                    }),
                    start_position: Some(start as u32),
                    blocks,
                }),
                dp_rank: 0,
            },
        ));
    }
    ev
}

fn best<F: FnMut() -> Duration>(reps: usize, mut f: F) -> Duration {
    (0..reps).map(|_| f()).min().unwrap_or_default()
}

fn run(name: &str, assignments: &[(usize, &Request)], reps: usize, with_dynamo: bool) {
    let ev = events(assignments);
    let query_blocks: usize = assignments.iter().map(|(_, r)| r.chain.len()).sum();
    println!(
        "\n## {name}: {} store events, {} stored blocks, {} queries, {} query blocks",
        ev.ours.len(),
        ev.blocks,
        assignments.len(),
        query_blocks
    );

    // Ours.
    let ingest_ours = best(reps, || {
        let mut index = ClusterIndex::new();
        let t = Instant::now();
        for (b, s) in &ev.ours {
            index.apply(b, Some(*s)).expect("slots");
        }
        let d = t.elapsed();
        black_box(&index);
        d
    });
    let ingest_sized = best(reps, || {
        let mut index = ClusterIndex::with_capacity(ev.blocks);
        let t = Instant::now();
        for (b, s) in &ev.ours {
            index.apply(b, Some(*s)).expect("slots");
        }
        let d = t.elapsed();
        black_box(&index);
        d
    });
    let mut index = ClusterIndex::new();
    for (b, s) in &ev.ours {
        index.apply(b, Some(*s)).expect("slots");
    }
    let mut m = Matches::default();
    let find_ours = best(reps, || {
        let t = Instant::now();
        for (_, r) in assignments {
            index.find_matches_into(&r.chain, &mut m);
            black_box(m.scores());
        }
        t.elapsed()
    });
    let mem = index.memory();
    let ours_ingest = ev.blocks as f64 / ingest_ours.as_secs_f64();
    let ours_ns = find_ours.as_nanos() as f64 / query_blocks as f64;
    println!(
        "kvbm-router ClusterIndex: ingest {:.1} M blocks/s ({:.1} M/s pre-sized), find_matches {:.1} ns/query block, {} hashes, {:.1} B/hash",
        ours_ingest / 1e6,
        ev.blocks as f64 / ingest_sized.as_secs_f64() / 1e6,
        ours_ns,
        mem.hashes,
        mem.bytes_per_hash()
    );
    if !with_dynamo {
        return;
    }

    // Theirs.
    let ingest_theirs = best(reps, || {
        let mut tree = RadixTree::new();
        let events = ev.theirs.clone();
        let t = Instant::now();
        for e in events {
            tree.apply_event(e).expect("store applies");
        }
        let d = t.elapsed();
        black_box(&tree);
        d
    });
    let mut tree = RadixTree::new();
    for e in ev.theirs.clone() {
        tree.apply_event(e).expect("store applies");
    }
    // Same answers on a sample.
    for (_, r) in assignments.iter().step_by(97) {
        let theirs = tree.find_matches(r.ids.iter().map(|&i| LocalBlockHash(i)).collect(), false);
        let ours = index.find_matches(&r.chain);
        for (&w, &score) in &theirs.scores {
            assert_eq!(
                ours.get(w.worker_id as u128),
                score as usize,
                "worker {w:?}"
            );
        }
        assert_eq!(ours.scores().len(), theirs.scores.len());
    }
    let find_theirs = best(reps, || {
        let queries: Vec<Vec<LocalBlockHash>> = assignments
            .iter()
            .map(|(_, r)| r.ids.iter().map(|&i| LocalBlockHash(i)).collect())
            .collect();
        let t = Instant::now();
        for q in queries {
            black_box(tree.find_matches(q, false));
        }
        t.elapsed()
    });
    let theirs_ingest = ev.blocks as f64 / ingest_theirs.as_secs_f64();
    let theirs_ns = find_theirs.as_nanos() as f64 / query_blocks as f64;
    println!(
        "dynamo-kv-router RadixTree: ingest {:.1} M blocks/s, find_matches {:.1} ns/query block",
        theirs_ingest / 1e6,
        theirs_ns
    );
    println!(
        "speedup: ingest {:.2}x, find_matches {:.2}x",
        ours_ingest / theirs_ingest,
        theirs_ns / ours_ns
    );
    let _ = WorkerWithDpRank::new(0, 0);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps = args
        .iter()
        .position(|a| a == "--reps")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let with_dynamo = !args.iter().any(|a| a == "--no-dynamo");
    let trace = trace_requests();
    let assignments: Vec<(usize, &Request)> =
        trace.iter().enumerate().map(|(k, r)| (k % 8, r)).collect();
    run(
        "conversation trace, 8 workers",
        &assignments,
        reps,
        with_dynamo,
    );
    let synthetic = synthetic_requests(64);
    let assignments: Vec<(usize, &Request)> = synthetic.iter().map(|(w, r)| (*w, r)).collect();
    run(
        "64 workers x 100k hashes",
        &assignments,
        reps.min(3),
        with_dynamo,
    );
}
