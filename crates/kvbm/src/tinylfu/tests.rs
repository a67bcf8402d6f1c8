use std::collections::HashMap;

use super::*;

/// Deterministic well-mixed test keys (splitmix64).
fn keys(seed: u64, n: usize) -> Vec<u64> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .collect()
}

#[test]
fn counts_exactly_at_low_load() {
    let mut sketch = TinyLFUSketch::<u64>::new(1024);
    for i in 0..5 {
        for _ in 0..=i {
            sketch.increment(i);
        }
    }
    for i in 0..5 {
        assert_eq!(sketch.estimate(i), i as u32 + 1);
    }
    assert_eq!(sketch.estimate(99), 0);
    assert_eq!(sketch.decays(), 0);
}

#[test]
fn saturates_at_fifteen_without_advancing_the_clock() {
    let mut sketch = TinyLFUSketch::<u128>::with_sample_size(64, 20);
    for _ in 0..15 {
        sketch.increment(42);
    }
    assert_eq!(sketch.estimate(42), MAX_COUNT);
    for _ in 0..100 {
        sketch.increment(42);
    }
    assert_eq!(sketch.estimate(42), MAX_COUNT);
    assert_eq!(sketch.decays(), 0, "saturated increments must not decay");
}

#[test]
fn decay_halves_every_counter() {
    let mut sketch = TinyLFUSketch::<u64>::with_sample_size(256, 20);
    for _ in 0..13 {
        sketch.increment(1);
    }
    for _ in 0..6 {
        sketch.increment(2);
    }
    assert_eq!((sketch.estimate(1), sketch.estimate(2)), (13, 6));
    // The 20th increment triggers the decay.
    sketch.increment(3);
    assert_eq!(sketch.decays(), 1);
    assert_eq!(sketch.estimate(1), 6);
    assert_eq!(sketch.estimate(2), 3);
    assert_eq!(sketch.estimate(3), 0);
    // The clock was halved too: 10 more increments reach the next decay.
    for _ in 0..9 {
        sketch.increment(4);
    }
    assert_eq!(sketch.decays(), 1);
    sketch.increment(5);
    assert_eq!(sketch.decays(), 2);
    assert_eq!(sketch.estimate(1), 3);
}

#[test]
fn manual_decay_of_saturated_counters() {
    let mut sketch = TinyLFUSketch::<u64>::new(64);
    for _ in 0..20 {
        sketch.increment(7);
    }
    sketch.decay();
    assert_eq!(sketch.estimate(7), 7);
}

#[test]
fn default_sample_size_is_ten_times_capacity() {
    let sketch = TinyLFUSketch::<u64>::new(1000);
    assert_eq!(sketch.sample_size(), 10_000);
    assert_eq!(sketch.width(), 1024);
    assert_eq!(TinyLFUSketch::<u64>::new(0).width(), 16);
}

#[test]
fn never_undercounts_before_a_decay() {
    let mut sketch = TinyLFUSketch::<u64>::new(512);
    let keys = keys(1, 600);
    let mut truth: HashMap<u64, u32> = HashMap::new();
    // Skewed: key i is touched (i % 7) + 1 times, well past the width.
    for (i, &k) in keys.iter().enumerate() {
        for _ in 0..(i % 7) + 1 {
            sketch.increment(k);
            *truth.entry(k).or_default() += 1;
        }
    }
    assert_eq!(sketch.decays(), 0);
    for (&k, &n) in &truth {
        assert!(
            sketch.estimate(k) >= n.min(MAX_COUNT),
            "key {k:x} undercounted"
        );
    }
}

#[test]
fn distinct_keys_rarely_interfere_at_low_load() {
    let mut sketch = TinyLFUSketch::<u128>::new(4096);
    let seen = keys(2, 1000);
    for &k in &seen {
        sketch.increment(k as u128);
    }
    let wrong = seen
        .iter()
        .filter(|&&k| sketch.estimate(k as u128) != 1)
        .count();
    let phantom = keys(3, 10_000)
        .iter()
        .filter(|&&k| sketch.estimate(k as u128) != 0)
        .count();
    assert!(wrong <= 10, "{wrong} of 1000 touched keys misestimated");
    assert!(phantom <= 100, "{phantom} of 10000 untouched keys nonzero");
}

#[test]
fn sequential_keys_spread_too() {
    let mut sketch = TinyLFUSketch::<u64>::new(4096);
    for k in 0..1000u64 {
        sketch.increment(k);
    }
    let phantom = (1_000_000..1_010_000u64)
        .filter(|&k| sketch.estimate(k) != 0)
        .count();
    let high_bit_keys = (0..1000u64)
        .filter(|&k| sketch.estimate(k << 40) != 0)
        .count();
    assert!(phantom <= 100, "{phantom} of 10000 untouched keys nonzero");
    assert!(high_bit_keys <= 10, "{high_bit_keys} shifted keys nonzero");
}

#[test]
fn tracker_batches_and_agrees_across_key_types() {
    let tracker = TinyLFUTracker::<u128>::new(256);
    let hash = SequenceHash::root(77);
    tracker.touch(hash.as_u128());
    tracker.touch_many(&[hash.as_u128(), 5, 5]);
    assert_eq!(tracker.count(hash.as_u128()), 2);
    assert_eq!(tracker.count(5), 2);
    assert_eq!(tracker.decays(), 0);
    assert_eq!(hash.sketch_bits(), hash.as_u128().sketch_bits());

    let typed = TinyLFUTracker::<SequenceHash>::new(256);
    typed.touch(hash);
    assert_eq!(typed.count(hash), 1);
}

#[test]
fn tracker_is_shareable_as_trait_object() {
    let tracker: Arc<dyn FrequencyTracker<u128>> = Arc::new(TinyLFUTracker::from_sketch(
        TinyLFUSketch::with_sample_size(64, 4),
    ));
    std::thread::scope(|s| {
        for t in 0..2u128 {
            let tracker = &tracker;
            s.spawn(move || tracker.touch_many(&[t, t]));
        }
    });
    // Four increments reached the sample size of 4: one decay halved both.
    assert_eq!(tracker.count(0), 1);
    assert_eq!(tracker.count(1), 1);
}

#[test]
fn noop_counts_nothing() {
    let tracker = NoOpTracker::<u64>::default();
    tracker.touch(1);
    tracker.touch_many(&[1, 1]);
    assert_eq!(tracker.count(1), 0);
    assert_eq!(format!("{:?}", NoOpTracker::<u128>::new()), "NoOpTracker");
}

#[test]
fn capacity_presets() {
    assert_eq!(
        FrequencyTrackingCapacity::default(),
        FrequencyTrackingCapacity::Medium
    );
    assert_eq!(FrequencyTrackingCapacity::Small.size(), 1 << 18);
    assert_eq!(FrequencyTrackingCapacity::Medium.size(), 1 << 21);
    assert_eq!(FrequencyTrackingCapacity::Large.size(), 1 << 24);
    let tracker = FrequencyTrackingCapacity::Small.create_tracker();
    tracker.touch(3);
    assert_eq!(tracker.count(3), 1);
}

mod props {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// The estimate never falls below an exact counter that saturates at
        /// 15 and is halved whenever the sketch decays — collisions and
        /// decays included.
        #[test]
        fn estimate_bounds_exact_halving_model(
            width in 16usize..128,
            sample in 1u64..200,
            touches in prop::collection::vec(0u64..300, 1..600),
        ) {
            let mut sketch = TinyLFUSketch::<u64>::with_sample_size(width, sample);
            let mut exact: HashMap<u64, u32> = HashMap::new();
            for key in touches {
                let decays = sketch.decays();
                sketch.increment(key);
                let count = exact.entry(key).or_default();
                *count = (*count + 1).min(MAX_COUNT);
                if sketch.decays() != decays {
                    exact.values_mut().for_each(|c| *c /= 2);
                }
                for (&k, &c) in &exact {
                    prop_assert!(sketch.estimate(k) >= c, "key {} below {}", k, c);
                }
                prop_assert!(sketch.estimate(key) <= MAX_COUNT);
            }
        }
    }
}

#[test]
fn increment_and_estimate_returns_the_new_estimate() {
    // Sample size large enough that no decay interferes.
    let mut sketch = TinyLFUSketch::<u64>::with_sample_size(64, u64::MAX);
    let ks = keys(3, 200);
    for (i, &k) in ks.iter().cycle().take(1000).enumerate() {
        let got = sketch.increment_and_estimate(k);
        assert_eq!(got, sketch.estimate(k), "step {i}");
    }
    for _ in 0..MAX_COUNT {
        sketch.increment_and_estimate(ks[0]);
    }
    assert_eq!(sketch.increment_and_estimate(ks[0]), MAX_COUNT, "saturated");
}

#[test]
fn unclocked_increments_count_alike_and_never_decay() {
    // A sample size of 16 would halve a clocked sketch many times over.
    let mut clocked = TinyLFUSketch::<u64>::with_sample_size(64, u64::MAX);
    let mut unclocked = TinyLFUSketch::<u64>::with_sample_size(64, 16);
    let ks = keys(5, 100);
    for (i, &k) in ks.iter().cycle().take(1000).enumerate() {
        let expected = clocked.increment_and_estimate(k);
        assert_eq!(
            unclocked.increment_and_estimate_unclocked(k),
            expected,
            "step {i}"
        );
    }
    assert_eq!(unclocked.decays(), 0);
    unclocked.decay();
    clocked.decay();
    for &k in &ks {
        assert_eq!(unclocked.estimate(k), clocked.estimate(k));
    }
}

mod reference {
    use proptest::prelude::*;

    use super::*;

    /// The sketch written plainly: one byte per counter, four rows indexed
    /// as `TinyLFUSketch` indexes them, conservative update, halving.
    struct Plain {
        rows: Vec<Vec<u8>>,
        shift: u32,
    }

    impl Plain {
        fn columns(&self, key: u64) -> [usize; 4] {
            let mixed = key ^ (key >> 29);
            std::array::from_fn(|row| {
                (mixed.wrapping_mul(ROW_MULTIPLIERS[row]) >> self.shift) as usize
            })
        }

        fn estimate(&self, key: u64) -> u8 {
            let columns = self.columns(key);
            (0..4).map(|r| self.rows[r][columns[r]]).min().unwrap()
        }

        fn increment(&mut self, key: u64) -> u8 {
            let min = self.estimate(key);
            if min >= 15 {
                return 15;
            }
            let columns = self.columns(key);
            for (row, &column) in self.rows.iter_mut().zip(&columns) {
                if row[column] == min {
                    row[column] += 1;
                }
            }
            min + 1
        }
    }

    proptest! {
        /// The packed sketch holds exactly the plain sketch's counters:
        /// same estimates after every increment and halving.
        #[test]
        fn packed_counters_match_plain_ones(
            width in 16usize..256,
            sample in 1u64..100,
            touches in prop::collection::vec(0u64..64, 1..400),
        ) {
            let mut sketch = TinyLFUSketch::<u64>::with_sample_size(width, sample);
            let mut plain = Plain {
                rows: vec![vec![0; sketch.width()]; 4],
                shift: 64 - sketch.width().trailing_zeros(),
            };
            let keys = keys(9, 64);
            for touch in touches {
                let key = keys[touch as usize];
                let decays = sketch.decays();
                let got = sketch.increment_and_estimate(key);
                prop_assert_eq!(got, u32::from(plain.increment(key)));
                if sketch.decays() != decays {
                    plain.rows.iter_mut().flatten().for_each(|c| *c /= 2);
                }
                for &k in &keys {
                    prop_assert_eq!(sketch.estimate(k), u32::from(plain.estimate(k)));
                }
            }
        }
    }
}

mod lock_free_tracker {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Used from one thread, the tracker counts exactly as a sketch fed
        /// the same touches: same estimates for every key after every
        /// touch or batch, decays (small sample sizes) and saturation
        /// included, also when continuing from a pre-filled sketch.
        #[test]
        fn tracker_counts_exactly_as_the_sketch(
            width in 16usize..256,
            sample in 1u64..120,
            prefill in prop::collection::vec(0u64..48, 0..60),
            batches in prop::collection::vec(prop::collection::vec(0u64..48, 1..6), 1..120),
        ) {
            let keys = keys(11, 48);
            let mut sketch = TinyLFUSketch::<u64>::with_sample_size(width, sample);
            let mut seed = TinyLFUSketch::<u64>::with_sample_size(width, sample);
            for &i in &prefill {
                sketch.increment(keys[i as usize]);
                seed.increment(keys[i as usize]);
            }
            let tracker = TinyLFUTracker::from_sketch(seed);
            for (n, batch) in batches.iter().enumerate() {
                let batch: Vec<u64> = batch.iter().map(|&i| keys[i as usize]).collect();
                if n % 2 == 0 {
                    tracker.touch_many(&batch);
                } else {
                    batch.iter().for_each(|&k| tracker.touch(k));
                }
                batch.iter().for_each(|&k| sketch.increment(k));
                prop_assert_eq!(tracker.decays(), sketch.decays());
                for &k in &keys {
                    prop_assert_eq!(tracker.count(k), sketch.estimate(k), "key {}", k);
                }
            }
            prop_assert_eq!(format!("{tracker:?}"), format!("{sketch:?}").replace("Sketch", "Tracker"));
        }
    }

    #[test]
    fn new_tracker_matches_new_sketch() {
        let tracker = TinyLFUTracker::<u64>::new(32);
        let mut sketch = TinyLFUSketch::<u64>::new(32);
        // 1000 touches over 40 keys reach the sample size (320) several
        // times (the clock is halved at each decay).
        for &k in keys(5, 40).iter().cycle().take(1000) {
            tracker.touch(k);
            sketch.increment(k);
        }
        assert!(sketch.decays() >= 3);
        assert_eq!(tracker.decays(), sketch.decays());
        for k in keys(5, 40) {
            assert_eq!(tracker.count(k), sketch.estimate(k));
        }
    }

    /// Without decays counters only grow, so a count racing touches on
    /// other threads never goes down, never exceeds 15, and every touch is
    /// counted once all touching threads are done.
    #[test]
    fn racing_counts_grow_monotonically() {
        let tracker =
            TinyLFUTracker::<u64>::from_sketch(TinyLFUSketch::with_sample_size(1 << 12, u64::MAX));
        let ks = keys(21, 4);
        std::thread::scope(|s| {
            for &k in &ks {
                let tracker = &tracker;
                s.spawn(move || {
                    for _ in 0..12 {
                        tracker.touch_many(&[k]);
                    }
                });
            }
            let tracker = &tracker;
            let ks = &ks;
            s.spawn(move || {
                let mut last = [0; 4];
                for _ in 0..2000 {
                    for (k, seen) in ks.iter().zip(&mut last) {
                        let now = tracker.count(*k);
                        assert!(now >= *seen && now <= MAX_COUNT, "{now} after {seen}");
                        *seen = now;
                    }
                }
            });
        });
        // 4 keys in 4096 columns: no collisions, so the counts are exact.
        for k in ks {
            assert_eq!(tracker.count(k), 12);
        }
    }
}
