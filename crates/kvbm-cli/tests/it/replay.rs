//! `kvbm replay` end to end: the built-in generator, trace files, output
//! formats and every error the user can cause.

use crate::common::{
    assert_every_policy_hits, block_hit_rate, json, kvbm, replay, replay_json, stderr, stdout,
    tmpdir, trace_file,
};
use serde_json::Value;

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
    let rate = |name: &str| block_hit_rate(&v, name);
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
    let a = replay_json(&plain, &["--capacity-blocks", "8"]);
    let b = replay_json(&gz, &["--capacity-blocks", "8"]);
    assert_eq!(a["results"][0]["hits"], 2);
    assert_eq!(a["results"][0]["hits"], b["results"][0]["hits"]);
    assert_eq!(a["workload"]["format"], "mooncake");

    let tok = dir.join("tok.jsonl");
    std::fs::write(
        &tok,
        "{\"timestamp\": 0, \"tokens\": [1,2,3,4,5,6,7,8,9], \"output_length\": 1}\n{\"timestamp\": 1, \"tokens\": [1,2,3,4,5,6,7,8], \"output_length\": 1}\n",
    )
    .unwrap();
    let t = replay_json(&tok, &["--block-size", "4", "--capacity-blocks", "4"]);
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
    fails_with(
        &["replay", "--trace", bad.to_str().unwrap()],
        "bad.jsonl:2: invalid Mooncake record",
    );
    let v = replay_json(&bad, &["--skip-bad-lines", "--capacity-blocks", "2"]);
    assert_eq!(v["workload"]["skipped_lines"], 2);
    assert_eq!(v["workload"]["requests"], 1);

    // Flags the run checks, each with what its message must name.
    let bad_flags: [(&[&str], &str); 11] = [
        (
            &["replay", "--trace", "/nonexistent/trace.jsonl"],
            "/nonexistent/trace.jsonl",
        ),
        (
            &["replay", "--requests", "50", "--capacity-blocks", "0"],
            "at least one block",
        ),
        (
            &["replay", "--requests", "50", "--capacity-tokens", "100"],
            "zero blocks",
        ),
        (
            &["replay", "--requests", "50", "--capacity-tokens", "lots"],
            "--capacity-tokens `lots`",
        ),
        (
            &["replay", "--requests", "50", "--policy", "lfu"],
            "unknown policy `lfu`",
        ),
        (&["replay", "--requests", "0"], "--requests"),
        (
            &["replay", "--requests", "50", "--block-size", "3"],
            "--block-size 3",
        ),
        (&["replay", "--requests", "50", "--pace", "0"], "--pace"),
        (&["replay", "--requests", "50", "--mix", "1,2"], "--mix"),
        (
            &["replay", "--metrics-addr", "nonsense", "--requests", "50"],
            "nonsense",
        ),
        (
            &["sweep", "--requests", "50", "--plot", "/tmp/x.gif", "-q"],
            ".svg or .png",
        ),
    ];
    for (args, needle) in bad_flags {
        fails_with(args, needle);
    }
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
    assert_every_policy_hits(&v["results"], max);
}

/// A trace file (see [`trace_file`]) of requests `(timestamp, input_length,
/// hash_ids)`, each with one output token.
fn requests_file(name: &str, requests: &[(u64, u64, &[u64])]) -> std::path::PathBuf {
    let lines: Vec<String> = requests
        .iter()
        .map(|(timestamp, input_length, hash_ids)| {
            format!(
                r#"{{"timestamp": {timestamp}, "input_length": {input_length}, "output_length": 1, "hash_ids": {hash_ids:?}}}"#
            )
        })
        .collect();
    trace_file(name, &lines.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn oversized_requests_are_reported() {
    let p = requests_file(
        "oversized",
        &[
            (0, 5000, &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]),
            (1, 1000, &[1, 2]),
        ],
    );
    let v = replay_json(&p, &["--capacity-blocks", "4", "--policy", "all"]);
    for r in v["results"].as_array().unwrap() {
        if r["policy"] != "unbounded" {
            assert_eq!(r["oversized_requests"], 1, "{r}");
            assert_eq!(
                r["misses"].as_u64().unwrap() + r["hits"].as_u64().unwrap(),
                12
            );
        }
    }
    let o = replay(&p, &["--capacity-blocks", "4"]);
    assert!(stdout(&o).contains("oversized"));
}

#[test]
fn pace_slows_the_replay_to_trace_time() {
    let p = requests_file("pace", &[(0, 512, &[1]), (1000, 512, &[1])]);
    let start = std::time::Instant::now();
    let o = replay(
        &p,
        &[
            "--capacity-blocks",
            "2",
            "--pace",
            "2",
            "--policy",
            "lru",
            "-q",
        ],
    );
    assert!(o.status.success());
    // 1 s of trace at 2x, for lru and for the unbounded reference.
    assert!(
        start.elapsed() >= std::time::Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

// ---- Issue 11: inputs that used to crash or mislead. The binary under test
// is the debug build, so arithmetic overflow would panic here.

const GOOD: &str =
    r#"{"timestamp": 0, "input_length": 1000, "output_length": 10, "hash_ids": [1, 2]}"#;

#[test]
fn huge_output_length_is_a_line_error_not_an_abort() {
    for output in ["18446744073709551615", "100000000000"] {
        let line = format!(
            r#"{{"timestamp": 0, "input_length": 1000, "output_length": {output}, "hash_ids": [1, 2]}}"#
        );
        let p = trace_file("huge-output", &[GOOD, &line]);
        for timing in ["instant", "serve"] {
            fails_with(
                &["replay", "--trace", p.to_str().unwrap(), "--timing", timing],
                "t.jsonl:2: the request spans",
            );
        }
    }
    // Large but allowed: instant timing builds no output blocks for it.
    let line =
        r#"{"timestamp": 1, "input_length": 1000, "output_length": 500000000, "hash_ids": [1, 2]}"#;
    let p = trace_file("big-output", &[GOOD, line]);
    let v = replay_json(&p, &[]);
    assert_eq!(v["workload"]["output_tokens"], 500_000_010u64);
}

#[test]
fn capacities_whose_token_count_overflows_are_errors() {
    for blocks in ["36028797018963968", "18446744073709551615"] {
        fails_with(
            &["replay", "--requests", "50", "--capacity-blocks", blocks],
            "more than 2^64 tokens",
        );
        fails_with(
            &[
                "sweep",
                "--requests",
                "50",
                "--capacities",
                &format!("{blocks}b"),
            ],
            "more than 2^64 tokens",
        );
    }
    // The largest size that fits is reported exactly.
    let v = json(&[
        "replay",
        "--requests",
        "50",
        "--capacity-blocks",
        "36028797018963967",
        "--policy",
        "lru",
        "--json",
        "-q",
    ]);
    assert_eq!(v["capacity_tokens"], 36_028_797_018_963_967u64 * 512);
}

#[test]
fn input_length_must_match_hash_ids() {
    let lines = [
        GOOD,
        r#"{"timestamp": 1, "input_length": 18446744073709551615, "output_length": 1, "hash_ids": [1, 2]}"#,
        r#"{"timestamp": 2, "input_length": 100000000000000, "output_length": 1, "hash_ids": [1, 2]}"#,
        r#"{"timestamp": 3, "input_length": 10, "output_length": 1, "hash_ids": [1, 2, 3, 4, 5]}"#,
        r#"{"timestamp": 4, "input_length": 512, "output_length": 1, "hash_ids": [1, 2]}"#,
        r#"{"timestamp": 5, "input_length": 0, "output_length": 1, "hash_ids": []}"#,
    ];
    for bad in 1..lines.len() {
        let p = trace_file("input-length", &[lines[0], lines[bad]]);
        fails_with(&["replay", "--trace", p.to_str().unwrap()], "t.jsonl:2: `");
    }
    let p = trace_file("input-length-all", &lines);
    let v = replay_json(&p, &["--skip-bad-lines"]);
    assert_eq!(v["workload"]["skipped_lines"], 5);
    assert_eq!(v["workload"]["input_tokens"], 1000);
    // Boundaries: 513..=1024 tokens fit two ids of 512.
    for (input, ok) in [(512, false), (513, true), (1024, true), (1025, false)] {
        let line = format!(
            r#"{{"timestamp": 0, "input_length": {input}, "output_length": 1, "hash_ids": [1, 2]}}"#
        );
        let p = trace_file("input-bounds", &[&line]);
        let o = kvbm(&["replay", "--trace", p.to_str().unwrap(), "-q"]);
        assert_eq!(o.status.success(), ok, "{input}: {}", stderr(&o));
    }
}

#[test]
fn absurd_rates_are_rejected() {
    for tps in ["1e-300", "1e-6", "1e-12"] {
        for flag in ["--decode-tps", "--prefill-tps"] {
            fails_with(
                &["replay", "--requests", "50", "--timing", "serve", flag, tps],
                &format!("{flag} must be between 0.001"),
            );
        }
    }
    // The slowest allowed rates simulate without overflowing the clock.
    let v = json(&[
        "replay",
        "--requests",
        "50",
        "--timing",
        "serve",
        "--decode-tps",
        "0.001",
        "--prefill-tps",
        "0.001",
        "--policy",
        "lru",
        "--json",
        "-q",
    ]);
    assert!(v["results"][0]["simulated_seconds"].as_f64().unwrap() > 1e6);
}

#[test]
fn flags_are_validated_before_the_workload_for_every_policy() {
    fails_with(
        &["replay", "--block-size", "3", "--policy", "belady,sim-lru"],
        "--block-size 3: the block size must be a power of two",
    );
    // A flag error is not blamed on a trace line.
    let p = trace_file("flag-vs-line", &[GOOD]);
    let o = replay(&p, &["--block-size", "3"]);
    let err = stderr(&o);
    assert!(
        err.contains("--block-size 3") && !err.contains("t.jsonl"),
        "{err}"
    );
    // Bounded counts fail at once instead of exhausting memory.
    fails_with(&["replay", "--requests", "1000000000"], "1 to 1000000");
    fails_with(
        &["sweep", "--requests", "50", "--points", "1000000"],
        "--points 1000000",
    );
}

#[test]
fn every_capacity_form_suggested_is_accepted() {
    fails_with(
        &["replay", "--requests", "50", "--capacity-tokens", "abc"],
        "--capacity-tokens `abc`: expected a token count",
    );
    let blocks = |flag: &str, value: &str| {
        json(&[
            "replay",
            "--requests",
            "300",
            flag,
            value,
            "--policy",
            "lru",
            "--json",
            "-q",
        ])["capacity_blocks"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(blocks("--capacity", "5859b"), 5859);
    assert_eq!(blocks("--capacity", "3M"), 5859);
    assert_eq!(blocks("--capacity-tokens", "3M"), 5859);
    let unique = json(&[
        "replay",
        "--requests",
        "300",
        "--policy",
        "lru",
        "--json",
        "-q",
    ])["workload"]["unique_blocks"]
        .as_u64()
        .unwrap();
    assert_eq!(
        blocks("--capacity", "10%"),
        (unique as f64 * 0.1).round() as u64
    );
}

#[test]
fn timestamp_errors_name_the_real_limit() {
    for (ts, shown) in [("1e19", "1e19"), ("1e300", "1e300"), ("-5", "-5e0")] {
        let line = format!(
            r#"{{"timestamp": {ts}, "input_length": 1000, "output_length": 1, "hash_ids": [1, 2]}}"#
        );
        let p = trace_file("timestamp", &[&line]);
        let o = kvbm(&["replay", "--trace", p.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(
            err.contains("between 0 and 1e15 ms") && err.contains(&format!("got {shown}")),
            "{ts}: {err}"
        );
        assert!(err.len() < 200, "{err}");
    }
}

#[test]
fn bad_plot_path_fails_before_the_sweep() {
    let o = kvbm(&[
        "sweep",
        "--requests",
        "50",
        "--plot",
        "/nonexistent/dir/x.png",
        "-q",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains("plot /nonexistent/dir/x.png: the directory /nonexistent/dir does not exist"),
        "{err}"
    );
    assert!(!err.contains("Os {"), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn cosmetics_bom_stdin_linger_and_plurals() {
    // A byte-order mark is skipped.
    let p = tmpdir("bom").join("bom.jsonl");
    std::fs::write(&p, format!("\u{feff}{GOOD}\n")).unwrap();
    let o = replay(&p, &["--capacity-blocks", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // One request, one block: singular nouns.
    let out = stdout(&o);
    assert!(
        out.contains("1 request over") && out.contains("cache      1 block = 512 tokens"),
        "{out}"
    );
    assert!(
        !out.contains("1 requests") && !out.contains("1 blocks"),
        "{out}"
    );
    assert!(out.contains("simulator req/s"), "{out}");

    // `--trace -` reads standard input.
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kvbm"))
        .args(["replay", "--trace", "-", "--json", "-q"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{GOOD}\n{GOOD}\n").as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["workload"]["requests"], 2);
    assert_eq!(v["workload"]["source"], "-");

    // `--linger` without an endpoint is a usage error.
    let o = kvbm(&["replay", "--requests", "50", "--linger", "5"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--metrics-addr"), "{}", stderr(&o));
}
