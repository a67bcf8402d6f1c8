//! Token hashing: `TokenBlockSequence::from_slice` of 4096 tokens in blocks
//! of 16, which every request pays before it can match a prefix.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod workloads;
use workloads::{Kvbm, Spec, HASH_TOKENS};

fn hashing(c: &mut Criterion) {
    let spec = Spec::Hashing;
    let mut workload = spec.make::<Kvbm>();
    let mut group = c.benchmark_group(spec.group());
    group.throughput(Throughput::Elements(HASH_TOKENS as u64));
    group.bench_function(spec.param(), |b| b.iter_custom(|iters| workload.run(iters)));
    group.finish();
}

criterion_group!(benches, hashing);
criterion_main!(benches);
