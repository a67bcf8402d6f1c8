//! Cost of cache events on registration: registering 128 new blocks (and
//! the full allocate → register → release cycle around it, whose
//! allocation evicts the previous 128 and so emits as many Removes) with no
//! events manager, and with `AllEventsPolicy` and one subscriber.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use kvbm::events::{AllEventsPolicy, EventStream, EventsManager};
use kvbm::manager::BlockManager;
use kvbm::{BlockRegistry, SequenceHash};

const BLOCKS: usize = 128;

struct Device;
impl Clone for Device {
    fn clone(&self) -> Self {
        Device
    }
}

struct Setup {
    manager: BlockManager<Device>,
    subscriber: Option<EventStream>,
    chains: [Vec<SequenceHash>; 2],
    turn: usize,
}

fn chain(seed: u64) -> Vec<SequenceHash> {
    let mut h = SequenceHash::root(seed);
    let mut out = vec![h];
    for i in 1..BLOCKS as u64 {
        h = h.extend(seed.wrapping_mul(31) + i);
        out.push(h);
    }
    out
}

impl Setup {
    fn new(events: bool) -> Self {
        let (registry, subscriber) = if events {
            let manager = Arc::new(
                EventsManager::builder()
                    .policy(Arc::new(AllEventsPolicy))
                    .channel_capacity(4 * BLOCKS)
                    .build(),
            );
            let sub = manager.subscribe();
            (
                BlockRegistry::builder().event_manager(manager).build(),
                Some(sub),
            )
        } else {
            (BlockRegistry::new(), None)
        };
        let manager = BlockManager::<Device>::builder()
            .block_count(BLOCKS)
            .block_size(16)
            .registry(registry)
            .build()
            .expect("valid settings");
        Self {
            manager,
            subscriber,
            chains: [chain(1), chain(2)],
            turn: 0,
        }
    }

    /// One cycle; returns the time spent in (register, whole cycle).
    fn cycle(&mut self) -> (Duration, Duration) {
        let chain = &self.chains[self.turn % 2];
        self.turn += 1;
        let start = Instant::now();
        let blocks = self.manager.allocate_blocks(BLOCKS).expect("pool");
        let staged = blocks
            .into_iter()
            .zip(chain)
            .map(|(b, &h)| b.stage(h, 16).expect("size"))
            .collect();
        let before_register = Instant::now();
        let held = self.manager.register_blocks(staged);
        let registered = before_register.elapsed();
        drop(held);
        let total = start.elapsed();
        // The subscriber keeps up, outside the timed region.
        if let Some(sub) = &mut self.subscriber {
            while sub.try_recv().is_some() {}
        }
        (registered, total)
    }
}

fn events(c: &mut Criterion) {
    for events in [false, true] {
        let label = if events {
            "all_events_1_sub"
        } else {
            "no_events"
        };
        let mut setup = Setup::new(events);
        c.bench_function(&format!("register_128/{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| setup.cycle().0).sum())
        });
        let mut setup = Setup::new(events);
        c.bench_function(&format!("alloc_register_release_128/{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| setup.cycle().1).sum())
        });
    }
}

/// On a shared machine, criterion's runs of one variant after the other
/// see different loads. With `EVENTS_INTERLEAVED=1` this bench instead
/// alternates the two variants in short rounds and prints the median over
/// rounds of each round's median cycle: the figures quoted in the README.
fn interleaved() {
    let mut plain = Setup::new(false);
    let mut with_events = Setup::new(true);
    let (mut reg, mut total) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
    for _ in 0..3 {
        plain.cycle();
        with_events.cycle();
    }
    for _round in 0..60 {
        for (i, setup) in [&mut plain, &mut with_events].into_iter().enumerate() {
            let mut cycles: Vec<(Duration, Duration)> = (0..200).map(|_| setup.cycle()).collect();
            cycles.sort_by_key(|c| c.0);
            reg[i].push(cycles[cycles.len() / 2].0);
            cycles.sort_by_key(|c| c.1);
            total[i].push(cycles[cycles.len() / 2].1);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    for (name, figures) in [
        ("register_128", &mut reg),
        ("alloc_register_release_128", &mut total),
    ] {
        let off = median(&mut figures[0]);
        let on = median(&mut figures[1]);
        println!(
            "{name}: no events {off:?}, AllEventsPolicy + 1 subscriber {on:?} ({:.2}x)",
            on.as_secs_f64() / off.as_secs_f64()
        );
    }
}

criterion_group!(benches, events);

fn main() {
    if std::env::var_os("EVENTS_INTERLEAVED").is_some() {
        interleaved();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
