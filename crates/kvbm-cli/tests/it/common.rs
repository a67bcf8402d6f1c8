//! Helpers shared by the integration tests: run the `kvbm` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// Runs `kvbm` with these arguments.
pub fn kvbm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvbm"))
        .args(args)
        .output()
        .expect("run kvbm")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh temporary directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kvbm-cli-it-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The block hit rate of `policy` in a report.
pub fn block_hit_rate(report: &Value, policy: &str) -> f64 {
    policy_result(report, policy)["block_hit_rate"]
        .as_f64()
        .expect("a block hit rate")
}

/// Asserts that every entry of a report's `results` array has a block hit
/// rate of exactly `rate` (as when the cache never has to evict).
pub fn assert_every_policy_hits(results: &Value, rate: f64) {
    for r in results.as_array().expect("a results array") {
        let got = r["block_hit_rate"].as_f64().expect("a block hit rate");
        assert_eq!(got, rate, "{}", r["policy"]);
    }
}

/// A trace file `t.jsonl` with these lines, in a fresh directory `name`.
pub fn trace_file(name: &str, lines: &[&str]) -> PathBuf {
    let p = tmpdir(name).join("t.jsonl");
    std::fs::write(&p, lines.join("\n")).expect("write the trace");
    p
}

/// Runs `kvbm` with these arguments, which must succeed and print one JSON
/// document, and parses it.
pub fn json(args: &[&str]) -> Value {
    let o = kvbm(args);
    assert!(o.status.success(), "kvbm {args:?} failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// Runs `kvbm replay --trace <trace> <flags>`.
pub fn replay(trace: &Path, flags: &[&str]) -> Output {
    let trace = trace.to_str().expect("a UTF-8 path");
    kvbm(&[&["replay", "--trace", trace], flags].concat())
}

/// `kvbm replay --trace <trace> <flags> --json -q`, which must succeed,
/// parsed.
pub fn replay_json(trace: &Path, flags: &[&str]) -> Value {
    let o = replay(trace, &[flags, &["--json", "-q"]].concat());
    assert!(
        o.status.success(),
        "replay {flags:?} failed: {}",
        stderr(&o)
    );
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// The entry of `policy` in a report's `results` array.
pub fn policy_result<'a>(report: &'a Value, policy: &str) -> &'a Value {
    report["results"]
        .as_array()
        .expect("a results array")
        .iter()
        .find(|r| r["policy"] == policy)
        .unwrap_or_else(|| panic!("no {policy} in {report}"))
}
