//! Regression pins for the admission backend's hit rate: on the built-in
//! workload (always) and on the Mooncake conversation trace (when the shared
//! trace directory is present next to the repository).

use std::path::PathBuf;

use crate::common::{kvbm, stderr};
use serde_json::Value;

fn rates(args: &[&str]) -> Vec<(String, f64)> {
    let o = kvbm(args);
    assert!(o.status.success(), "kvbm {args:?} failed: {}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            let name = r["policy"].as_str().expect("policy").to_string();
            (name, r["block_hit_rate"].as_f64().expect("rate"))
        })
        .collect()
}

fn rate(results: &[(String, f64)], policy: &str) -> f64 {
    results
        .iter()
        .find(|(name, _)| name == policy)
        .unwrap_or_else(|| panic!("no {policy} in {results:?}"))
        .1
}

#[test]
fn admission_on_the_built_in_workload() {
    let r = rates(&[
        "replay",
        "--json",
        "-q",
        "--policy",
        "lru,multi-lru,admission",
    ]);
    let admission = rate(&r, "admission");
    // Measured 59.99% (LRU 58.35%, multi-LRU 56.35%).
    assert!(admission >= 0.597, "admission {admission} below its pin");
    assert!(admission > rate(&r, "lru"), "{r:?}");
    assert!(admission > rate(&r, "multi-lru"), "{r:?}");
}

#[test]
fn admission_on_the_conversation_trace() {
    let trace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/conversation_trace.jsonl");
    if !trace.exists() {
        eprintln!(
            "SKIPPED admission_on_the_conversation_trace: {} not found",
            trace.display()
        );
        return;
    }
    let trace = trace.to_str().expect("utf-8 path");
    let r = rates(&[
        "replay",
        "--json",
        "-q",
        "--trace",
        trace,
        "--capacity-tokens",
        "3M",
        "--timing",
        "instant",
        "--policy",
        "lru,multi-lru,admission",
    ]);
    let admission = rate(&r, "admission");
    // Measured 18.56% (LRU 13.55%, multi-LRU 15.83%, Belady 35.16%).
    assert!(admission >= 0.185, "admission {admission} below its pin");
    assert!(admission > rate(&r, "multi-lru") + 0.02, "{r:?}");
}
