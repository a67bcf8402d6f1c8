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

/// Asserts that every entry of a report's `results` array has a block hit
/// rate of exactly `rate` (as when the cache never has to evict).
pub fn assert_every_policy_hits(results: &Value, rate: f64) {
    for r in results.as_array().expect("a results array") {
        let got = r["block_hit_rate"].as_f64().expect("a block hit rate");
        assert_eq!(got, rate, "{}", r["policy"]);
    }
}

/// Runs `kvbm` with these arguments, which must succeed and print one JSON
/// document, and parses it.
pub fn json(args: &[&str]) -> Value {
    let o = kvbm(args);
    assert!(o.status.success(), "kvbm {args:?} failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

/// `kvbm replay --trace <trace> <flags> --json -q`, parsed.
pub fn replay_json(trace: &Path, flags: &[&str]) -> Value {
    let trace = trace.to_str().expect("a UTF-8 path");
    json(&[&["replay", "--trace", trace], flags, &["--json", "-q"]].concat())
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
