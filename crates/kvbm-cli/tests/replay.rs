//! `kvbm replay` end to end: the built-in generator, trace files, output
//! formats and every error the user can cause.

mod common;

use common::{kvbm, stderr, stdout, tmpdir};
use serde_json::Value;

fn json(args: &[&str]) -> Value {
    let o = kvbm(args);
    assert!(o.status.success(), "kvbm {args:?} failed: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

#[test]
fn default_replay_needs_no_files() {
    let o = kvbm(&["replay", "--requests", "400"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("generator(seed=42"), "{out}");
    assert!(out.contains("lru") && out.contains("unbounded"), "{out}");
}

#[test]
fn json_document_shape() {
    let v = json(&[
        "replay",
        "--requests",
        "500",
        "--seed",
        "3",
        "--policy",
        "all",
        "--capacity-blocks",
        "300",
        "--json",
        "-q",
    ]);
    assert_eq!(v["capacity_blocks"], 300);
    assert_eq!(v["block_tokens"], 512);
    assert_eq!(v["timing"], "instant");
    assert_eq!(v["workload"]["requests"], 500);
    let results = v["results"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["policy"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "lru",
            "multi-lru",
            "lineage",
            "fifo",
            "admission",
            "belady",
            "unbounded"
        ]
    );
    let rate = |name: &str| {
        results.iter().find(|r| r["policy"] == name).unwrap()["block_hit_rate"]
            .as_f64()
            .unwrap()
    };
    for r in results {
        let rate = r["block_hit_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&rate));
        let (h, m) = (r["hits"].as_u64().unwrap(), r["misses"].as_u64().unwrap());
        assert!((rate - h as f64 / (h + m) as f64).abs() < 1e-12);
        for key in [
            "token_hit_rate",
            "evictions",
            "allocation_failures",
            "seconds",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
    }
    for p in ["lru", "multi-lru", "lineage", "fifo", "admission"] {
        assert!(rate(p) <= rate("belady") + 1e-12, "{p}");
    }
    assert!(rate("belady") <= rate("unbounded") + 1e-12);
    assert!(
        (rate("unbounded") - v["workload"]["max_prefix_ratio"].as_f64().unwrap()).abs() < 1e-12
    );
}

#[test]
fn same_seed_same_numbers_and_seed_matters() {
    let args = |seed: &'static str| {
        vec![
            "replay",
            "--requests",
            "300",
            "--seed",
            seed,
            "--policy",
            "lru",
            "--json",
            "-q",
        ]
    };
    let strip = |mut v: Value| {
        for r in v["results"].as_array_mut().unwrap() {
            for k in ["seconds", "requests_per_sec", "block_ops_per_sec"] {
                r.as_object_mut().unwrap().remove(k);
            }
        }
        v
    };
    assert_eq!(strip(json(&args("7"))), strip(json(&args("7"))));
    assert_ne!(
        strip(json(&args("7")))["workload"],
        strip(json(&args("8")))["workload"]
    );
}

#[test]
fn csv_output() {
    let o = kvbm(&[
        "replay",
        "--requests",
        "200",
        "--policy",
        "lru,belady",
        "--csv",
    ]);
    assert!(o.status.success());
    let out = stdout(&o);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("policy,block_hit_rate,token_hit_rate,hits,misses,evictions"));
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[1].starts_with("lru,") && lines[3].starts_with("unbounded,"));
}

#[test]
fn serve_timing_reports_queueing() {
    let v = json(&[
        "replay",
        "--requests",
        "300",
        "--timing",
        "serve",
        "--capacity-blocks",
        "200",
        "--decode-tps",
        "5",
        "--json",
        "-q",
    ]);
    assert_eq!(v["timing"], "serve");
    let lru = &v["results"][0];
    assert!(lru["queued_requests"].as_u64().unwrap() > 0, "{lru}");
    assert!(lru["max_queue_wait_s"].as_f64().unwrap() > 0.0);
    assert!(lru["simulated_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn mooncake_trace_gzip_and_token_trace() {
    let dir = tmpdir("traces");
    let plain = dir.join("t.jsonl");
    let lines = "{\"timestamp\": 0, \"input_length\": 1024, \"output_length\": 10, \"hash_ids\": [1, 2]}\n{\"timestamp\": 5, \"input_length\": 1500, \"output_length\": 10, \"hash_ids\": [1, 2, 3]}\n";
    std::fs::write(&plain, lines).unwrap();
    let gz = dir.join("t.jsonl.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut enc, lines.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let a = json(&[
        "replay",
        "--trace",
        plain.to_str().unwrap(),
        "--capacity-blocks",
        "8",
        "--json",
    ]);
    let b = json(&[
        "replay",
        "--trace",
        gz.to_str().unwrap(),
        "--capacity-blocks",
        "8",
        "--json",
    ]);
    assert_eq!(a["results"][0]["hits"], 2);
    assert_eq!(a["results"][0]["hits"], b["results"][0]["hits"]);
    assert_eq!(a["workload"]["format"], "mooncake");

    let tok = dir.join("tok.jsonl");
    std::fs::write(
        &tok,
        "{\"timestamp\": 0, \"tokens\": [1,2,3,4,5,6,7,8,9], \"output_length\": 1}\n{\"timestamp\": 1, \"tokens\": [1,2,3,4,5,6,7,8], \"output_length\": 1}\n",
    )
    .unwrap();
    let t = json(&[
        "replay",
        "--trace",
        tok.to_str().unwrap(),
        "--block-size",
        "4",
        "--capacity-blocks",
        "4",
        "--json",
    ]);
    assert_eq!(t["workload"]["format"], "tokens");
    assert_eq!(t["results"][0]["hits"], 2);
}

fn fails_with(args: &[&str], needle: &str) {
    let o = kvbm(args);
    assert!(!o.status.success(), "kvbm {args:?} should fail");
    assert_eq!(o.status.code(), Some(1).or(o.status.code()));
    let err = stderr(&o);
    assert!(
        err.contains(needle),
        "kvbm {args:?}: expected `{needle}` in: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn user_errors_are_clear_and_never_panic() {
    let dir = tmpdir("errors");
    let empty = dir.join("empty.jsonl");
    std::fs::write(&empty, "\n").unwrap();
    fails_with(
        &["replay", "--trace", empty.to_str().unwrap()],
        "holds no request",
    );

    let bad = dir.join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"timestamp\": 0, \"input_length\": 512, \"output_length\": 1, \"hash_ids\": [1]}\n{\"timestamp\": 1, \"input_length\": \"x\", \"output_length\": 1, \"hash_ids\": [1]}\n{broken\n",
    )
    .unwrap();
    let bad_s = bad.to_str().unwrap();
    fails_with(
        &["replay", "--trace", bad_s],
        "bad.jsonl:2: invalid Mooncake record",
    );
    let o = kvbm(&[
        "replay",
        "--trace",
        bad_s,
        "--skip-bad-lines",
        "--capacity-blocks",
        "2",
        "--json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["workload"]["skipped_lines"], 2);
    assert_eq!(v["workload"]["requests"], 1);

    fails_with(
        &["replay", "--trace", "/nonexistent/trace.jsonl"],
        "/nonexistent/trace.jsonl",
    );
    fails_with(
        &["replay", "--requests", "50", "--capacity-blocks", "0"],
        "at least one block",
    );
    fails_with(
        &["replay", "--requests", "50", "--capacity-tokens", "100"],
        "zero blocks",
    );
    fails_with(
        &["replay", "--requests", "50", "--capacity-tokens", "lots"],
        "invalid capacity",
    );
    fails_with(
        &["replay", "--requests", "50", "--policy", "lfu"],
        "unknown policy `lfu`",
    );
    fails_with(&["replay", "--requests", "0"], "--requests");
    fails_with(
        &["replay", "--requests", "50", "--block-size", "3"],
        "block size",
    );
    fails_with(&["replay", "--requests", "50", "--pace", "0"], "--pace");
    fails_with(&["replay", "--requests", "50", "--mix", "1,2"], "--mix");
    fails_with(
        &["replay", "--metrics-addr", "nonsense", "--requests", "50"],
        "nonsense",
    );
    fails_with(
        &["sweep", "--requests", "50", "--plot", "/tmp/x.gif", "-q"],
        ".svg or .png",
    );
    // clap's own errors exit with 2 and a usage message.
    let o = kvbm(&["replay", "--json", "--csv"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn huge_capacity_is_fine() {
    let v = json(&[
        "replay",
        "--requests",
        "200",
        "--capacity-blocks",
        "100000000000",
        "--policy",
        "all",
        "--json",
        "-q",
    ]);
    assert_eq!(v["capacity_blocks"], 100_000_000_000u64);
    let max = v["workload"]["max_prefix_ratio"].as_f64().unwrap();
    for r in v["results"].as_array().unwrap() {
        assert_eq!(
            r["block_hit_rate"].as_f64().unwrap(),
            max,
            "{}",
            r["policy"]
        );
    }
}

#[test]
fn oversized_requests_are_reported() {
    let dir = tmpdir("oversized");
    let p = dir.join("big.jsonl");
    std::fs::write(
        &p,
        "{\"timestamp\": 0, \"input_length\": 5000, \"output_length\": 1, \"hash_ids\": [1,2,3,4,5,6,7,8,9,10]}\n{\"timestamp\": 1, \"input_length\": 1000, \"output_length\": 1, \"hash_ids\": [1,2]}\n",
    )
    .unwrap();
    let v = json(&[
        "replay",
        "--trace",
        p.to_str().unwrap(),
        "--capacity-blocks",
        "4",
        "--policy",
        "all",
        "--json",
    ]);
    for r in v["results"].as_array().unwrap() {
        if r["policy"] != "unbounded" {
            assert_eq!(r["oversized_requests"], 1, "{r}");
            assert_eq!(
                r["misses"].as_u64().unwrap() + r["hits"].as_u64().unwrap(),
                12
            );
        }
    }
    let o = kvbm(&[
        "replay",
        "--trace",
        p.to_str().unwrap(),
        "--capacity-blocks",
        "4",
    ]);
    assert!(stdout(&o).contains("oversized"));
}

#[test]
fn pace_slows_the_replay_to_trace_time() {
    let dir = tmpdir("pace");
    let p = dir.join("paced.jsonl");
    std::fs::write(
        &p,
        "{\"timestamp\": 0, \"input_length\": 512, \"output_length\": 1, \"hash_ids\": [1]}\n{\"timestamp\": 1000, \"input_length\": 512, \"output_length\": 1, \"hash_ids\": [1]}\n",
    )
    .unwrap();
    let start = std::time::Instant::now();
    let o = kvbm(&[
        "replay",
        "--trace",
        p.to_str().unwrap(),
        "--capacity-blocks",
        "2",
        "--pace",
        "2",
        "--policy",
        "lru",
        "-q",
    ]);
    assert!(o.status.success());
    // 1 s of trace at 2x, for lru and for the unbounded reference.
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}
