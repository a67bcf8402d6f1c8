//! Regression figures on the shared conversation trace: the numbers the
//! READMEs show.
//!
//! This test binary has its own `main` (`harness = false`) so that a missing
//! trace is never silent: with `CI=true` it fails; elsewhere it prints a
//! `SKIPPED` line that `cargo test` shows in its summary (a harness-less
//! binary's output is not captured).

// The helpers of the `it` test crate; this binary uses only some of them.
#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use common::{block_hit_rate, policy_result, replay_json};
use serde_json::Value;

/// `<repo>/../shared/traces/conversation_trace.jsonl`, or the file named by
/// `KVBM_CONVERSATION_TRACE`.
fn trace_path() -> PathBuf {
    match std::env::var_os("KVBM_CONVERSATION_TRACE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/traces/conversation_trace.jsonl"),
    }
}

fn pct(v: &Value, policy: &str, key: &str) -> String {
    format!(
        "{:.2}%",
        policy_result(v, policy)[key].as_f64().unwrap() * 100.0
    )
}

/// The cache size and timing of the READMEs' reference figures.
const README_SETTING: [&str; 4] = ["--capacity-tokens", "3M", "--timing", "instant"];

/// The README's reference table at 3M tokens (5859 blocks), instant timing,
/// every policy; plus the counts behind the LRU figure.
fn readme_table_at_3m_tokens(trace: &Path) {
    let v = replay_json(
        trace,
        &[&README_SETTING[..], &["--policy", "all,sim-lru"]].concat(),
    );
    assert_eq!(v["capacity_blocks"], 5859);
    assert_eq!(v["workload"]["requests"], 12031);
    assert_eq!(v["workload"]["prompt_blocks"], 288500);
    assert_eq!(v["workload"]["unique_blocks"], 182790);
    let table = [
        ("lru", "13.55%", "13.82%", 39101),
        ("multi-lru", "15.83%", "16.15%", 45671),
        ("lineage", "13.61%", "13.87%", 39258),
        ("fifo", "13.55%", "13.82%", 39101),
        ("belady", "35.16%", "35.85%", 101431),
        ("unbounded", "36.64%", "37.36%", 105710),
    ];
    for (policy, block, token, hits) in table {
        assert_eq!(pct(&v, policy, "block_hit_rate"), block, "{policy}");
        assert_eq!(pct(&v, policy, "token_hit_rate"), token, "{policy}");
        assert_eq!(policy_result(&v, policy)["hits"], hits, "{policy}");
    }
    assert_eq!(policy_result(&v, "lru")["evictions"], 243540);
    // The reference LRU agrees with the manager's, block for block.
    assert_eq!(policy_result(&v, "sim-lru")["hits"], 39101);
    assert_eq!(
        format!("{:.4}", v["workload"]["max_prefix_ratio"].as_f64().unwrap()),
        "0.3664"
    );
    // Leaf-first release, the figure the LRU methodology paragraph quotes.
    let leaf = replay_json(
        trace,
        &[
            "--capacity-tokens",
            "3M",
            "--policy",
            "lru",
            "--release-order",
            "leaf-first",
        ],
    );
    assert_eq!(pct(&leaf, "lru", "block_hit_rate"), "13.61%");
}

/// With room for every unique block, every policy reaches the maximum.
fn every_policy_reaches_the_maximum_when_nothing_is_evicted(trace: &Path) {
    let v = replay_json(trace, &["--capacity-blocks", "182790", "--policy", "all"]);
    for r in v["results"].as_array().unwrap() {
        assert_eq!(r["hits"], 105710, "{}", r["policy"]);
        assert_eq!(r["evictions"], 0, "{}", r["policy"]);
    }
}

/// The admission backend's hit-rate pin at the README's 3M-token setting.
fn admission_beats_multi_lru_at_3m_tokens(trace: &Path) {
    let policies = ["--policy", "lru,multi-lru,admission"];
    let v = replay_json(trace, &[&README_SETTING[..], &policies].concat());
    let rate = |policy| block_hit_rate(&v, policy);
    let admission = rate("admission");
    // Measured 18.58% (LRU 13.55%, multi-LRU 15.83%, Belady 35.16%).
    assert!(admission >= 0.185, "admission {admission} below its pin");
    assert!(admission > rate("multi-lru") + 0.02, "{v}");
}

/// One named check over the trace.
type TraceCheck = fn(&Path);

fn main() -> ExitCode {
    let trace = trace_path();
    let tests: [(&str, TraceCheck); 3] = [
        ("readme_table_at_3m_tokens", readme_table_at_3m_tokens),
        (
            "admission_beats_multi_lru_at_3m_tokens",
            admission_beats_multi_lru_at_3m_tokens,
        ),
        (
            "every_policy_reaches_the_maximum_when_nothing_is_evicted",
            every_policy_reaches_the_maximum_when_nothing_is_evicted,
        ),
    ];
    if !trace.exists() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            eprintln!(
                "error: CI=true but the conversation trace is missing at {}",
                trace.display()
            );
            return ExitCode::FAILURE;
        }
        for (name, _) in &tests {
            println!(
                "test {name} ... SKIPPED: trace missing at {}",
                trace.display()
            );
        }
        println!(
            "\ntest result: SKIPPED. 0 passed; {} skipped (trace missing)",
            tests.len()
        );
        return ExitCode::SUCCESS;
    }
    // Each check panics on failure, which fails this binary.
    for (name, test) in &tests {
        test(&trace);
        println!("test {name} ... ok");
    }
    println!("\ntest result: ok. {} passed", tests.len());
    ExitCode::SUCCESS
}
