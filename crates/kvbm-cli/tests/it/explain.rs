//! `kvbm replay --explain`: misses split into compulsory, capacity and
//! policy misses, in the JSON document and the table.

use crate::common::{kvbm, stderr, stdout};
use serde_json::Value;

const ARGS: [&str; 8] = [
    "replay",
    "--requests",
    "400",
    "--policy",
    "all",
    "--capacity-blocks",
    "120",
    "-q",
];

#[test]
fn json_splits_every_policys_misses() {
    let mut args = ARGS.to_vec();
    args.extend(["--explain", "--json"]);
    let o = kvbm(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    let results = v["results"].as_array().expect("results");
    assert!(results.len() >= 7, "{results:?}");
    let mut compulsory = None;
    for r in results {
        let name = r["policy"].as_str().unwrap();
        let causes = &r["miss_causes"];
        let get = |k: &str| {
            causes[k]
                .as_u64()
                .unwrap_or_else(|| panic!("{name}: no {k}"))
        };
        let (c, cap, pol) = (get("compulsory"), get("capacity"), get("policy"));
        assert_eq!(c + cap + pol, r["misses"].as_u64().unwrap(), "{name}");
        // Compulsory misses do not depend on the policy.
        assert_eq!(*compulsory.get_or_insert(c), c, "{name}");
        match name {
            "belady" => assert_eq!(pol, 0),
            "unbounded" => assert_eq!((cap, pol), (0, 0)),
            "lru" => assert!(pol > 0, "LRU is not optimal here"),
            _ => {}
        }
    }
}

#[test]
fn table_gets_columns_only_when_asked() {
    let mut args = ARGS.to_vec();
    args.push("--explain");
    let o = kvbm(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("compulsory") && out.contains("policy miss"),
        "{out}"
    );

    let mut args = ARGS.to_vec();
    args.push("--json");
    let o = kvbm(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!stdout(&o).contains("miss_causes"));
    let o = kvbm(&ARGS);
    assert!(!stdout(&o).contains("compulsory"));
}
