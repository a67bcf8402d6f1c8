//! `kvbm cluster`: report shape, flag validation, and the target on
//! the conversation trace (kv-aware ≥ 1.2x round-robin's hit rate with
//! max/mean load < 1.5).

// The helpers of the `it` test crate; this binary uses only some of them.
#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

use std::path::PathBuf;

use common::{kvbm, stderr, stdout};
use serde_json::Value;

fn results(out: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(out).expect("one JSON document");
    v["results"].as_array().expect("results").clone()
}

fn by_router<'a>(results: &'a [Value], name: &str) -> &'a Value {
    results
        .iter()
        .find(|r| r["router"] == name)
        .unwrap_or_else(|| panic!("no {name} result"))
}

#[test]
fn generator_workload_all_routers_json() {
    let o = kvbm(&[
        "cluster",
        "--requests",
        "600",
        "--workers",
        "4",
        "--capacity",
        "300",
        "--json",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rs = results(&stdout(&o));
    assert_eq!(rs.len(), 3);
    for r in &rs {
        for key in [
            "block_hit_rate",
            "load_max_over_mean",
            "events_sent",
            "events_received",
            "events_lost",
            "snapshots_requested",
        ] {
            assert!(r.get(key).is_some(), "{key} missing in {r}");
        }
        // In-process: nothing lost, everything sent is applied.
        assert_eq!(r["events_sent"], r["events_received"]);
        assert_eq!(r["events_lost"], 0);
        assert!(r["events_sent"].as_u64().unwrap() > 0);
        let hit = r["block_hit_rate"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&hit));
        assert!(r["load_max_over_mean"].as_f64().unwrap() >= 1.0);
        assert_eq!(r["requests"], 600);
    }
    let kv = by_router(&rs, "kv-aware")["block_hit_rate"]
        .as_f64()
        .unwrap();
    let rr = by_router(&rs, "round-robin")["block_hit_rate"]
        .as_f64()
        .unwrap();
    assert!(kv > rr, "kv-aware {kv} vs round-robin {rr}");
}

#[test]
fn table_output_and_single_router() {
    let o = kvbm(&[
        "cluster",
        "--requests",
        "100",
        "--workers",
        "2",
        "--router",
        "round-robin",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("round-robin") && !text.contains("kv-aware"),
        "{text}"
    );
    assert!(text.contains("hit rate"));
}

#[test]
fn bad_flags_are_refused_by_name() {
    for (args, flag) in [
        (vec!["cluster", "--workers", "0"], "--workers"),
        (vec!["cluster", "--capacity", "0"], "--capacity"),
        (vec!["cluster", "--load-weight=-1"], "--load-weight"),
        (vec!["cluster", "--nats", "http://x"], "--nats"),
    ] {
        let o = kvbm(&args);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(flag), "{}", stderr(&o));
    }
    // No server there: a clear error, not a hang.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("nats://127.0.0.1:{port}");
    let o = kvbm(&["cluster", "--requests", "10", "--nats", &url, "-q"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("NATS"), "{}", stderr(&o));
}

fn trace_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/traces/conversation_trace.jsonl")
}

#[test]
fn conversation_trace_kv_aware_beats_round_robin() {
    let path = trace_path();
    if !path.exists() {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "trace missing under CI=true: {}",
            path.display()
        );
        println!("SKIPPED: trace missing: {}", path.display());
        return;
    }
    let path = path.to_str().expect("utf-8 path");
    let run = |router: &str| {
        let o = kvbm(&[
            "cluster",
            "--trace",
            path,
            "--workers",
            "8",
            "--capacity",
            "5859",
            "--router",
            router,
            "--json",
            "-q",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        results(&stdout(&o)).remove(0)
    };
    let kv = run("kv-aware");
    let rr = run("round-robin");
    let (kv_hit, rr_hit) = (
        kv["block_hit_rate"].as_f64().unwrap(),
        rr["block_hit_rate"].as_f64().unwrap(),
    );
    assert!(
        kv_hit >= 1.2 * rr_hit,
        "kv-aware {kv_hit} vs round-robin {rr_hit}"
    );
    assert!(kv["load_max_over_mean"].as_f64().unwrap() < 1.5, "{kv}");
}

/// A `nats-server` on a free 127.0.0.1 port, killed on drop; `None` (loudly)
/// when not installed, except under `CI=true`.
struct NatsServer(std::process::Child, u16);

impl NatsServer {
    fn start() -> Option<Self> {
        let binary = [
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
            "/usr/local/bin/nats-server",
        ]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file());
        let Some(binary) = binary else {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "nats-server missing under CI=true"
            );
            eprintln!(
                "\n!!!!!!!! nats-server not found: SKIPPING kvbm cluster --nats test !!!!!!!!\n"
            );
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "nats-server did not come up"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(Self(child, port))
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn over_a_real_nats_server_the_results_equal_the_in_process_ones() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let url = format!("nats://127.0.0.1:{}", server.1);
    let args = [
        "cluster",
        "--requests",
        "300",
        "--workers",
        "3",
        "--capacity",
        "150",
        "--json",
        "-q",
    ];
    let local = kvbm(&args);
    assert!(local.status.success(), "{}", stderr(&local));
    let mut with_nats = args.to_vec();
    with_nats.extend(["--nats", &url]);
    let remote = kvbm(&with_nats);
    assert!(remote.status.success(), "{}", stderr(&remote));
    let (local, remote) = (results(&stdout(&local)), results(&stdout(&remote)));
    for (l, r) in local.iter().zip(&remote) {
        assert_eq!(l["router"], r["router"]);
        // Every request waits for its events: routing sees the same index.
        assert_eq!(l["block_hit_rate"], r["block_hit_rate"], "{l} vs {r}");
        assert_eq!(l["events_sent"], r["events_sent"]);
        // On a loaded machine a few events have been seen to go missing in
        // transit (repaired by the snapshot resync, so the index and the
        // hit rates above stay equal). Exact delivery is the business of
        // kvbm-nats' own fault tests; here a loss is reported, and it must
        // be accounted for: received plus lost is what was sent.
        let count = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
        assert_eq!(
            count("events_received").saturating_add(count("events_lost")),
            count("events_sent"),
            "{r}"
        );
        if count("events_lost") > 0 {
            eprintln!("note: events lost in transit over NATS (resynced): {r}");
        }
    }
}
