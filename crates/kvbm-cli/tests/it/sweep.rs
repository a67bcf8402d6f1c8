//! `kvbm sweep`: capacities, JSON and charts.

use crate::common::{assert_every_policy_hits, block_hit_rate, kvbm, stderr, stdout, tmpdir};
use serde_json::Value;

#[test]
fn log_spaced_sweep_json() {
    let o = kvbm(&[
        "sweep",
        "--requests",
        "400",
        "--from",
        "2%",
        "--to",
        "100%",
        "--points",
        "5",
        "--json",
        "-q",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    let unique = v["workload"]["unique_blocks"].as_u64().unwrap();
    assert_eq!(points[4]["capacity_blocks"].as_u64().unwrap(), unique);
    let max = v["unbounded"]["block_hit_rate"].as_f64().unwrap();
    let mut last_belady = 0.0;
    for p in points {
        let results = p["results"].as_array().unwrap();
        let belady = block_hit_rate(p, "belady");
        for r in results {
            assert!(r["block_hit_rate"].as_f64().unwrap() <= belady + 1e-12);
        }
        assert!(belady >= last_belady && belady <= max + 1e-12);
        last_belady = belady;
    }
    // At 100% of the unique blocks nothing is evicted: everyone hits the max.
    assert_every_policy_hits(&points[4]["results"], max);
}

#[test]
fn capacity_list_table_and_csv() {
    let o = kvbm(&[
        "sweep",
        "--requests",
        "300",
        "--capacities",
        "100b,1M,10%",
        "--policy",
        "lru",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("blocks") && out.contains("unbounded"), "{out}");
    let o = kvbm(&[
        "sweep",
        "--requests",
        "300",
        "--capacities",
        "100b,1M",
        "--policy",
        "lru,belady",
        "--csv",
    ]);
    let out = stdout(&o);
    // header + 2 capacities × (2 policies + unbounded)
    assert_eq!(out.lines().count(), 7, "{out}");
    assert!(
        out.lines().nth(1).unwrap().starts_with("100,51200,lru,"),
        "{out}"
    );
}

#[test]
fn plots_svg_and_png() {
    let dir = tmpdir("plots");
    for name in ["sweep.svg", "sweep.png"] {
        let path = dir.join(name);
        let o = kvbm(&[
            "sweep",
            "--requests",
            "300",
            "--points",
            "4",
            "--policy",
            "lru,belady",
            "--plot",
            path.to_str().unwrap(),
            "-q",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let bytes = std::fs::read(&path).unwrap();
        if name.ends_with(".png") {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
            assert!(bytes.len() > 10_000, "a real chart, not an empty image");
        } else {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.starts_with("<svg"), "{}", &text[..50]);
            assert!(text.contains("belady (offline optimum)"));
            assert!(text.contains("unbounded maximum"));
            // The generated workload's caption, without doubled spaces.
            assert!(
                text.contains("generator(seed=42, requests=300, rate=2)"),
                "{text}"
            );
            // Legend samples: a dashed one is two 9-pixel strokes 6 apart,
            // a solid one two strokes that join. lru is solid; belady and
            // the unbounded maximum are drawn dashed.
            let segments = legend_segments(&text);
            let gap = |dx: i64| {
                segments
                    .iter()
                    .filter(|a| {
                        a.2 - a.0 == 9
                            && segments
                                .iter()
                                .any(|b| b.1 == a.1 && b.0 == a.2 + dx && b.2 - b.0 == 15 - dx)
                    })
                    .count()
            };
            assert_eq!(gap(6), 2, "dashed legend samples");
            assert_eq!(gap(0), 1, "solid legend samples");
            assert!(
                text.contains("stroke-dasharray")
                    || text.matches("<line").count() > 10
                    || text.contains("<polyline")
            );
        }
    }
}

/// Horizontal two-point polylines `(x0, y, x1)` of an SVG file.
fn legend_segments(svg: &str) -> Vec<(i64, i64, i64)> {
    svg.split("<polyline")
        .skip(1)
        .filter_map(|el| {
            let points = el.split("points=\"").nth(1)?.split('"').next()?;
            let p: Vec<(i64, i64)> = points
                .split_whitespace()
                .filter_map(|xy| {
                    let (x, y) = xy.split_once(',')?;
                    Some((x.parse().ok()?, y.parse().ok()?))
                })
                .collect();
            (p.len() == 2 && p[0].1 == p[1].1).then(|| (p[0].0, p[0].1, p[1].0))
        })
        .collect()
}
