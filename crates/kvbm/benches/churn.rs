//! The serving-like churn mix (shared system prompts, random suffixes,
//! eviction pressure) per eviction backend, and from two threads sharing one
//! manager.

use criterion::{criterion_group, criterion_main, Criterion};

mod workloads;
use workloads::{Kvbm, Spec};

fn churn(c: &mut Criterion) {
    let specs = Spec::all()
        .into_iter()
        .filter(|s| matches!(s, Spec::Churn(_) | Spec::ChurnThreads(_)));
    for spec in specs {
        let mut workload = spec.make::<Kvbm>();
        c.bench_function(&spec.name(), |b| b.iter_custom(|iters| workload.run(iters)));
    }
}

criterion_group!(benches, churn);
criterion_main!(benches);
