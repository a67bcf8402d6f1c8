//! Regression figures on the shared conversation trace (skipped, with a
//! message, when the trace is absent).

mod common;

use common::{conversation_trace, kvbm, stderr};
use serde_json::Value;

fn rate(v: &Value, policy: &str) -> f64 {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["policy"] == policy)
        .unwrap_or_else(|| panic!("no {policy} in {v}"))["block_hit_rate"]
        .as_f64()
        .unwrap()
}

#[test]
fn lru_and_belady_at_3m_tokens() {
    let Some(trace) = conversation_trace() else {
        return;
    };
    let o = kvbm(&[
        "replay",
        "--trace",
        trace.to_str().unwrap(),
        "--capacity-tokens",
        "3M",
        "--timing",
        "instant",
        "--policy",
        "lru,belady,sim-lru",
        "--json",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["capacity_blocks"], 5859);
    assert_eq!(v["workload"]["requests"], 12031);
    assert_eq!(v["workload"]["prompt_blocks"], 288500);
    // The trace's maximum prefix ratio: every policy's ceiling.
    assert_eq!(format!("{:.4}", rate(&v, "unbounded")), "0.3664");
    assert_eq!(
        format!("{:.4}", v["workload"]["max_prefix_ratio"].as_f64().unwrap()),
        "0.3664"
    );
    // LRU, root-first release (the natural drop order of a request's handles).
    assert_eq!(format!("{:.4}", rate(&v, "lru")), "0.1355");
    assert_eq!(rate(&v, "lru"), rate(&v, "sim-lru"));
    let belady = rate(&v, "belady");
    assert!((0.345..0.355).contains(&belady), "belady {belady}");
    assert_eq!(v["results"][0]["hits"], 39101);
}

#[test]
fn every_policy_reaches_the_maximum_when_nothing_is_evicted() {
    let Some(trace) = conversation_trace() else {
        return;
    };
    let o = kvbm(&[
        "replay",
        "--trace",
        trace.to_str().unwrap(),
        "--capacity-blocks",
        "182790",
        "--policy",
        "all",
        "--json",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["hits"], 105710, "{}", r["policy"]);
        assert_eq!(r["evictions"], 0, "{}", r["policy"]);
    }
}
