//! Simulator speed: one instant-timing replay per policy over the shared
//! conversation trace (12k requests, 288k block lookups), or over a
//! generated workload of the same size when the trace is absent.
//!
//! `cargo bench -p kvbm-cli --bench replay`

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kvbm_cli::sim::contender::{build, Contender};
use kvbm_cli::sim::{self, NoObserver, ReleaseOrder, Timing};
use kvbm_cli::trace::{self, TraceOptions};
use kvbm_cli::workload::generator::{generate, GeneratorConfig};
use kvbm_cli::workload::Workload;

fn workload() -> (Workload, PathBuf) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/conversation_trace.jsonl");
    let opts = TraceOptions {
        output_blocks: false,
        ..TraceOptions::default()
    };
    match trace::load(std::slice::from_ref(&path), &opts) {
        Ok(w) => (w, path),
        Err(e) => {
            eprintln!("{e}; benchmarking a generated workload instead");
            let w = generate(&GeneratorConfig {
                requests: 12_000,
                ..GeneratorConfig::default()
            });
            (w, path)
        }
    }
}

fn replay(c: &mut Criterion) {
    let (w, path) = workload();
    let capacity = 5859;
    let mut group = c.benchmark_group("instant_replay_5859_blocks");
    group.sample_size(10);
    group.throughput(Throughput::Elements(w.requests.len() as u64));
    let mut kinds = Contender::all();
    kinds.extend([Contender::SimLru, Contender::Unbounded]);
    for kind in kinds {
        group.bench_function(kind.name(), |b| {
            b.iter(|| {
                let mut p = build(
                    kind,
                    &w,
                    capacity,
                    ReleaseOrder::RootFirst,
                    Timing::Instant,
                    None,
                )
                .expect("policy");
                sim::run(&w, p.as_mut(), Timing::Instant, &mut NoObserver).expect("instant timing")
            })
        });
    }
    group.finish();

    if path.exists() {
        let mut load = c.benchmark_group("trace");
        load.sample_size(10);
        load.bench_function("load_conversation_trace", |b| {
            b.iter(|| {
                trace::load(
                    std::slice::from_ref(&path),
                    &TraceOptions {
                        output_blocks: false,
                        ..TraceOptions::default()
                    },
                )
                .expect("trace")
            })
        });
        load.finish();
    }
}

criterion_group!(benches, replay);
criterion_main!(benches);
