//! `kvbm_cli::run_command`: the embedding entry point prints what the binary
//! prints, and reports usage errors as values instead of exiting.

use std::process::Command;

fn binary_json(args: &[&str]) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_kvbm"))
        .args(args)
        .output()
        .expect("run kvbm");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// The deterministic part of a replay document: everything but wall-clock figures.
fn figures(v: &serde_json::Value) -> Vec<(String, u64, u64, u64)> {
    v["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["policy"].as_str().unwrap_or_default().to_string(),
                r["hits"].as_u64().unwrap_or(u64::MAX),
                r["misses"].as_u64().unwrap_or(u64::MAX),
                r["evictions"].as_u64().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[test]
fn replay_through_run_command_matches_the_binary() {
    let args = [
        "replay",
        "--requests",
        "300",
        "--block-size",
        "64",
        "--capacity-blocks",
        "200",
        "--json",
        "-q",
    ];
    let mut out = Vec::new();
    kvbm_cli::run_command(args, &mut out).expect("replay runs");
    let embedded: serde_json::Value = serde_json::from_slice(&out).expect("JSON");
    let binary = binary_json(&args);
    assert_eq!(figures(&embedded), figures(&binary));
    assert_eq!(embedded["workload"], binary["workload"]);
    let policies: Vec<String> = figures(&embedded).into_iter().map(|f| f.0).collect();
    for p in ["lru", "multi-lru", "lineage", "fifo", "unbounded"] {
        assert!(
            policies.iter().any(|x| x == p),
            "{p} missing from {policies:?}"
        );
    }
}

#[test]
fn usage_errors_are_returned_not_exits() {
    let mut out = Vec::new();
    let err = kvbm_cli::run_command(["replay", "--no-such-flag"], &mut out).unwrap_err();
    assert!(err.to_string().contains("--no-such-flag"), "{err}");
    let err = kvbm_cli::run_command(["replay", "--policy", "lfu", "-q"], &mut out).unwrap_err();
    assert!(err.to_string().contains("lfu"), "{err}");
    assert!(out.is_empty());
}
