//! Regression pin for the admission backend's hit rate on the built-in
//! workload (its pin on the conversation trace is in
//! `tests/conversation_trace.rs`, with the other figures of that trace).

use crate::common::{block_hit_rate, json};

#[test]
fn admission_on_the_built_in_workload() {
    let v = json(&[
        "replay",
        "--json",
        "-q",
        "--policy",
        "lru,multi-lru,admission",
    ]);
    let rate = |policy| block_hit_rate(&v, policy);
    let admission = rate("admission");
    // Measured 60.47% (LRU 58.35%, multi-LRU 56.35%).
    assert!(admission >= 0.603, "admission {admission} below its pin");
    assert!(admission > rate("lru"), "{v}");
    assert!(admission > rate("multi-lru"), "{v}");
}
