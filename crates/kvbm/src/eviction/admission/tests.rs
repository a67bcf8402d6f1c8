use super::*;

fn chain(seed: u64, n: usize) -> Vec<SequenceHash> {
    let mut out = vec![SequenceHash::root(seed)];
    for i in 1..n {
        let next = out[i - 1].extend(seed + i as u64);
        out.push(next);
    }
    out
}

fn pop_all(backend: &mut AdmissionBackend) -> Vec<BlockId> {
    std::iter::from_fn(|| backend.pop_victim()).collect()
}

#[test]
fn first_sightings_leave_in_release_order() {
    let mut backend = AdmissionBackend::new(8);
    for id in [3, 1, 4, 5] {
        backend.insert(id, SequenceHash::root(id as u64));
        backend.validate().unwrap();
    }
    // Unrelated roots are all tails: plain release order.
    assert_eq!(backend.class_lens()[TAIL], 4);
    assert_eq!(pop_all(&mut backend), vec![3, 1, 4, 5]);
    backend.validate().unwrap();
}

#[test]
fn reuse_earns_time_and_tails_lose_it() {
    let blocks = 16;
    let mut backend = AdmissionBackend::new(blocks);
    // Block 0's hash was released four times, each time recomputed after
    // its block had been evicted: reuse the cache missed.
    let popular = SequenceHash::root(99);
    for _ in 0..3 {
        backend.insert(0, popular);
        assert_eq!(backend.pop_victim(), Some(0));
    }
    backend.insert(0, popular);
    // A chain released deepest first: block 5 is its tail.
    let hashes = chain(1, 5);
    for (i, h) in hashes.iter().enumerate().rev() {
        backend.insert(i + 1, *h);
    }
    backend.validate().unwrap();
    let lens = backend.class_lens();
    // Seen four times: class `seen 4`, after tail, deep new, new, 2, 3.
    assert_eq!((lens[TAIL], lens[NEW], lens[5]), (1, 4, 1), "{lens:?}");
    // Tail first, then the chain deepest first, the reused block last.
    assert_eq!(pop_all(&mut backend), vec![5, 4, 3, 2, 1, 0]);
}

#[test]
fn root_first_release_finds_the_tail_too() {
    let mut backend = AdmissionBackend::new(8);
    for (i, h) in chain(7, 4).into_iter().enumerate() {
        backend.insert(i, h);
    }
    backend.validate().unwrap();
    let lens = backend.class_lens();
    assert_eq!((lens[TAIL], lens[NEW]), (1, 3), "{lens:?}");
    assert_eq!(backend.pop_victim(), Some(3));
}

#[test]
fn deep_first_sightings_count_as_unlikely() {
    let hashes = chain(3, DEEP_POSITION as usize + 2);
    let mut backend = AdmissionBackend::new(hashes.len());
    for (i, h) in hashes.iter().enumerate().rev() {
        backend.insert(i, *h);
    }
    let lens = backend.class_lens();
    // Positions 0..8 are new, 8 is deep, 9 (deepest) is the tail.
    assert_eq!((lens[TAIL], lens[DEEP_NEW], lens[NEW]), (1, 1, 8));
    backend.validate().unwrap();
    let mut drained = Vec::new();
    backend.drain(&mut |id| drained.push(id));
    drained.sort_unstable();
    assert_eq!(drained, (0..hashes.len()).collect::<Vec<_>>());
    assert!(backend.is_empty());
    assert_eq!(backend.name(), "admission");
}

#[test]
fn climber_reverses_when_the_hit_rate_drops() {
    let mut climber = HillClimber::new(64);
    let period = climber.period;
    let run_period = |c: &mut HillClimber, hits: u64| {
        for i in 0..period {
            if i < hits {
                c.record_hit();
            }
            c.record_access();
        }
    };
    run_period(&mut climber, 100);
    assert_eq!(climber.scale, SCALE_ONE, "starts at full credit");
    run_period(&mut climber, 50); // worse: reverse, step down
    assert!(climber.scale < SCALE_ONE);
    let lowered = climber.scale;
    run_period(&mut climber, 80); // better: keep going down
    assert!(climber.scale < lowered);
    for _ in 0..100 {
        run_period(&mut climber, 0);
        assert!((0..=SCALE_ONE).contains(&climber.scale));
    }
}

#[test]
fn the_unit_follows_the_age_of_hits() {
    let blocks = 64;
    let mut backend = AdmissionBackend::new(blocks);
    assert_eq!(backend.unit, blocks as i64, "starts at the capacity");
    // Every block is revived 10 releases after its release.
    for i in 0..20_000u64 {
        let id = (i % 10) as usize;
        let hash = SequenceHash::root(i);
        if backend.lists.contains(id as u32) {
            let old = backend.ticks[id];
            assert_eq!(backend.next_tick - old, 10);
            backend.remove(id, hash);
        }
        backend.insert(id, hash);
    }
    assert!(
        (9..=11).contains(&backend.time_scale),
        "time scale {}",
        backend.time_scale
    );
    backend.validate().unwrap();
}

#[test]
fn credits_fade_when_recency_catches_the_reuse() {
    let blocks = 64;
    let mut backend = AdmissionBackend::new(blocks);
    let h = SequenceHash::root(5);
    // Released once, then revived and released again many times: every
    // re-reference hits, so the credits fade to nothing.
    backend.insert(0, h);
    for _ in 0..100 {
        backend.remove(0, h);
        backend.insert(0, h);
    }
    assert_eq!(backend.unit, 1, "all reuse hits: no credit");
    // Re-references that miss (the hash comes back on fresh blocks
    // after its block was evicted) bring the credit back.
    for _ in 0..300 {
        let victim = backend.pop_victim().expect("one block cached");
        backend.insert(victim, h);
    }
    assert_eq!(backend.unit, backend.time_scale, "most reuse misses");
    backend.validate().unwrap();
}

#[test]
fn zero_credit_scale_is_lru() {
    let mut backend = AdmissionBackend::new(8);
    backend.climber.scale = 0;
    backend.refresh_offsets();
    let popular = SequenceHash::root(1);
    backend.insert(0, popular);
    backend.remove(0, popular);
    backend.insert(0, popular);
    backend.insert(1, SequenceHash::root(2));
    assert_eq!(backend.pop_victim(), Some(0));
    assert_eq!(backend.credit_scale(), 0.0);
}
