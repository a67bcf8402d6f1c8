//! The Prometheus endpoint, scraped over real HTTP on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn scrape(addr: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect to the metrics endpoint");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Parses the text exposition into (name, labels, value) samples.
fn parse(body: &str) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for line in body.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("`series value`");
        let value: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("bad value in `{line}`"));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n.to_string(), l.trim_end_matches('}').to_string()),
            None => (series.to_string(), String::new()),
        };
        out.push((name, labels, value));
    }
    out
}

#[test]
fn serves_library_and_replay_metrics_while_replaying() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvbm"))
        .args([
            "replay",
            "--requests",
            "600",
            "--policy",
            "lru,belady",
            "--capacity-blocks",
            "500",
            "--metrics-addr",
            "127.0.0.1:0",
            "--linger",
            "20",
            "-q",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kvbm");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut addr = None;
    let mut finished = false;
    let mut line = String::new();
    while Instant::now() < deadline && !(addr.is_some() && finished) {
        line.clear();
        if err.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(rest) = line.split("http://").nth(1) {
            addr = Some(rest.split('/').next().unwrap().to_string());
        }
        finished |= line.contains("replay finished");
    }
    let addr = addr.expect("the endpoint address on stderr");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    assert!(finished, "replay should finish and linger");

    let response = scrape(&addr);
    let _ = child.kill();
    let _ = child.wait();
    let (head, body) = response.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("text/plain"), "{head}");
    let samples = parse(body);
    let get = |name: &str, label: &str| {
        samples
            .iter()
            .find(|(n, l, _)| n == name && l.contains(label))
            .map(|s| s.2)
            .unwrap_or_else(|| panic!("no {name}{{{label}}} in:\n{body}"))
    };
    // The library's metrics, from the manager of the lru run.
    assert!(
        samples.iter().any(|(n, _, _)| n.starts_with("kvbm_")
            && !n.starts_with("kvbm_replay")
            && !n.starts_with("kvbm_stats")),
        "{body}"
    );
    assert!(get("kvbm_allocations_total", "pool=\"Lru\"") > 0.0);
    // The replay's own figures, per policy.
    assert_eq!(get("kvbm_replay_requests_total", "policy=\"lru\""), 600.0);
    assert_eq!(
        get("kvbm_replay_requests_total", "policy=\"belady\""),
        600.0
    );
    // What only grows is a counter; the rest are gauges.
    for counter in [
        "kvbm_replay_requests_total",
        "kvbm_replay_block_hits_total",
        "kvbm_replay_block_misses_total",
        "kvbm_replay_evictions_total",
    ] {
        assert!(
            body.contains(&format!("# TYPE {counter} counter")),
            "{counter}:\n{body}"
        );
    }
    assert!(body.contains("# TYPE kvbm_replay_available_blocks gauge"));
    let hits = get("kvbm_replay_block_hits_total", "policy=\"lru\"");
    let misses = get("kvbm_replay_block_misses_total", "policy=\"lru\"");
    let rate = get("kvbm_replay_block_hit_rate", "policy=\"lru\"");
    assert!((rate - hits / (hits + misses)).abs() < 1e-9);
    let hit = get("kvbm_replay_block_hit_rate", "policy=\"lru\"");
    assert!((0.0..=1.0).contains(&hit) && hit > 0.0);
    assert!(get("kvbm_replay_block_hit_rate", "policy=\"belady\"") >= hit);
    // StatsCollector gauges for the manager-backed policy.
    let ratio = get("kvbm_stats_match_hit_ratio", "policy=\"lru\"");
    assert!((0.0..=1.0).contains(&ratio));
    assert!(get("kvbm_stats_allocation_rate", "policy=\"lru\"") >= 0.0);
    get("kvbm_stats_eviction_rate", "policy=\"lru\"");
}
