//! Single block-manager operations: prefix match of held blocks, match that
//! revives cached blocks, and dropping held blocks (per eviction backend).

use criterion::{criterion_group, criterion_main, Criterion};

mod workloads;
use workloads::{Kvbm, Spec};

fn block_ops(c: &mut Criterion) {
    let specs = Spec::all().into_iter().filter(|s| {
        matches!(
            s,
            Spec::MatchHeld(_) | Spec::MatchRevive(..) | Spec::DropHeld(..)
        )
    });
    for spec in specs {
        let mut workload = spec.make::<Kvbm>();
        c.bench_function(&spec.name(), |b| b.iter_custom(|iters| workload.run(iters)));
    }
}

criterion_group!(benches, block_ops);
criterion_main!(benches);
