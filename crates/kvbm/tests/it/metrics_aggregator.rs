//! MetricsAggregator: Prometheus text output, labels, same-label sources.

use std::sync::Arc;

use kvbm::metrics::{BlockPoolMetrics, ExternalLabelError, MetricsAggregator};
use prometheus::core::Collector;
use prometheus::{Encoder, Registry, TextEncoder};

const COUNTERS: [&str; 11] = [
    "kvbm_allocations_total",
    "kvbm_allocations_from_reset_total",
    "kvbm_evictions_total",
    "kvbm_registrations_total",
    "kvbm_duplicate_blocks_total",
    "kvbm_registration_dedup_total",
    "kvbm_stagings_total",
    "kvbm_match_hashes_requested_total",
    "kvbm_match_blocks_returned_total",
    "kvbm_scan_hashes_requested_total",
    "kvbm_scan_blocks_returned_total",
];

const GAUGES: [&str; 4] = [
    "kvbm_inflight_mutable",
    "kvbm_inflight_immutable",
    "kvbm_reset_pool_size",
    "kvbm_inactive_pool_size",
];

fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut buf)
        .expect("text encoding succeeds");
    String::from_utf8(buf).expect("text format is UTF-8")
}

fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l == line)
}

#[test]
fn empty_aggregator_exports_nothing() {
    let aggregator = MetricsAggregator::default();
    assert!(aggregator.collect().is_empty());
    let registry = Registry::new();
    aggregator.register_with(&registry).expect("registers");
    assert_eq!(render(&registry), "");
}

#[test]
fn text_output_has_every_family_with_labels_and_values() {
    let g1 = Arc::new(BlockPoolMetrics::new("G1"));
    let g2 = Arc::new(BlockPoolMetrics::new("G2"));
    let aggregator = MetricsAggregator::new();
    aggregator.register_source(g1.clone());
    aggregator.register_source(g2.clone());
    aggregator.set_external_labels(vec![("worker_id".into(), "7".into())]);
    let registry = Registry::new();
    aggregator.register_with(&registry).expect("registers");

    // Values change after registration: they are read at scrape time.
    g1.inc_allocations(12);
    g1.inc_evictions(3);
    g1.inc_scan_blocks_returned(2);
    g1.set_inflight_mutable(4);
    g2.inc_allocations(1);
    g2.set_inactive_pool_size(-1);

    let text = render(&registry);
    for name in COUNTERS {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
        assert!(has_line(&text, &format!("# TYPE {name} counter")), "{name}");
    }
    for name in GAUGES {
        assert!(text.contains(&format!("# HELP {name} ")), "{name}\n{text}");
        assert!(has_line(&text, &format!("# TYPE {name} gauge")), "{name}");
    }
    for line in [
        r#"kvbm_allocations_total{pool="G1",worker_id="7"} 12"#,
        r#"kvbm_allocations_total{pool="G2",worker_id="7"} 1"#,
        r#"kvbm_evictions_total{pool="G1",worker_id="7"} 3"#,
        r#"kvbm_evictions_total{pool="G2",worker_id="7"} 0"#,
        r#"kvbm_scan_blocks_returned_total{pool="G1",worker_id="7"} 2"#,
        r#"kvbm_inflight_mutable{pool="G1",worker_id="7"} 4"#,
        r#"kvbm_inactive_pool_size{pool="G2",worker_id="7"} -1"#,
    ] {
        assert!(has_line(&text, line), "missing {line}\n{text}");
    }
    // 15 families x 2 pools, plus a HELP and a TYPE line per family.
    let series = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(series, 30);
    assert_eq!(text.lines().count(), 30 + 2 * 15);
}

#[test]
fn sources_with_the_same_label_are_summed() {
    let a = Arc::new(BlockPoolMetrics::new("G1"));
    let b = Arc::new(BlockPoolMetrics::new("G1"));
    let aggregator = MetricsAggregator::new();
    aggregator.register_source(a.clone());
    aggregator.register_source(b.clone());
    // The same Arc again is not counted twice.
    aggregator.register_source(a.clone());
    let registry = Registry::new();
    aggregator.register_with(&registry).expect("registers");

    a.inc_allocations(2);
    b.inc_allocations(5);
    a.set_reset_pool_size(10);
    b.set_reset_pool_size(6);

    let text = render(&registry);
    assert!(
        has_line(&text, r#"kvbm_allocations_total{pool="G1"} 7"#),
        "{text}"
    );
    assert!(
        has_line(&text, r#"kvbm_reset_pool_size{pool="G1"} 16"#),
        "{text}"
    );
    assert_eq!(text.matches("kvbm_allocations_total{").count(), 1);
}

#[test]
fn clones_share_sources_and_double_registration_fails() {
    let aggregator = MetricsAggregator::new();
    let registry = Registry::new();
    aggregator.register_with(&registry).expect("registers");
    assert!(matches!(
        aggregator.register_with(&registry),
        Err(prometheus::Error::AlreadyReg)
    ));
    assert!(matches!(
        MetricsAggregator::new().register_with(&registry),
        Err(prometheus::Error::AlreadyReg)
    ));

    // A source added through a clone after registration is exported.
    let handle = aggregator.clone();
    let m = Arc::new(BlockPoolMetrics::new("late"));
    m.inc_stagings_by(9);
    handle.register_source(m);
    let text = render(&registry);
    assert!(
        has_line(&text, r#"kvbm_stagings_total{pool="late"} 9"#),
        "{text}"
    );
}

#[test]
fn external_labels_are_checked() {
    let aggregator = MetricsAggregator::new();
    let ok = vec![
        ("instance_id".to_string(), "a".to_string()),
        ("worker_id".to_string(), "1".to_string()),
    ];
    assert_eq!(aggregator.try_set_external_labels(ok.clone()), Ok(()));
    assert_eq!(aggregator.external_labels(), ok);

    let bad = vec![
        ("pool".to_string(), "x".to_string()),
        ("zone".to_string(), "eu".to_string()),
    ];
    assert_eq!(
        aggregator.try_set_external_labels(bad.clone()),
        Err(ExternalLabelError::Reserved("pool".to_string()))
    );
    assert_eq!(
        aggregator.external_labels(),
        ok,
        "refused set leaves labels"
    );

    aggregator.set_external_labels(vec![
        ("pool".to_string(), "x".to_string()),
        ("zone".to_string(), "eu".to_string()),
        ("bad-name".to_string(), "y".to_string()),
        ("zone".to_string(), "us".to_string()),
    ]);
    assert_eq!(
        aggregator.external_labels(),
        vec![("zone".to_string(), "eu".to_string())]
    );

    let m = Arc::new(BlockPoolMetrics::new("G1"));
    aggregator.register_source(m);
    let registry = Registry::new();
    aggregator.register_with(&registry).expect("registers");
    let text = render(&registry);
    assert!(
        has_line(&text, r#"kvbm_evictions_total{pool="G1",zone="eu"} 0"#),
        "{text}"
    );
}
