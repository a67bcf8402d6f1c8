use super::*;

#[test]
fn parses_all_forms() {
    assert_eq!(
        CapacitySpec::parse("10%").unwrap(),
        CapacitySpec::Fraction(0.1)
    );
    assert_eq!(
        CapacitySpec::parse("3M").unwrap(),
        CapacitySpec::Tokens(3_000_000)
    );
    assert_eq!(
        CapacitySpec::parse("1.5k").unwrap(),
        CapacitySpec::Tokens(1500)
    );
    assert_eq!(
        CapacitySpec::parse("3000000").unwrap(),
        CapacitySpec::Tokens(3_000_000)
    );
    assert_eq!(
        CapacitySpec::parse("5859b").unwrap(),
        CapacitySpec::Blocks(5859)
    );
    for bad in ["", "x", "-1%", "0%", "1.5", "abcM", "%"] {
        assert!(CapacitySpec::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn resolves_to_blocks() {
    assert_eq!(
        CapacitySpec::Tokens(3_000_000).blocks(0, 512).unwrap(),
        5859
    );
    assert_eq!(CapacitySpec::Fraction(0.5).blocks(101, 512).unwrap(), 51);
    let err = CapacitySpec::Tokens(100)
        .blocks(10, 512)
        .unwrap_err()
        .to_string();
    assert!(err.contains("zero blocks"), "{err}");
    assert!(CapacitySpec::Blocks(0).blocks(10, 512).is_err());
}

#[test]
fn sizes_that_overflow_are_errors() {
    // 2^55 blocks of 512 tokens is 2^64 tokens: one past u64::MAX.
    let err = CapacitySpec::Blocks(1 << 55)
        .blocks(10, 512)
        .unwrap_err()
        .to_string();
    assert!(err.contains("more than 2^64 tokens"), "{err}");
    assert_eq!(
        CapacitySpec::Blocks((1 << 55) - 1).blocks(10, 512).unwrap(),
        (1 << 55) - 1
    );
    assert!(CapacitySpec::Blocks(u64::MAX).blocks(10, 1).is_ok());
    assert!(CapacitySpec::Blocks(u64::MAX).blocks(10, 2).is_err());
    assert!(CapacitySpec::parse("1e30M").is_err());
    assert!(CapacitySpec::parse("1e300%")
        .unwrap()
        .blocks(10, 512)
        .is_err());
    assert_eq!(capacity_tokens(3, 512).unwrap(), 1536);
}

#[test]
fn token_flag_names_itself() {
    assert_eq!(
        CapacitySpec::parse_tokens("3M").unwrap(),
        CapacitySpec::Tokens(3_000_000)
    );
    let err = CapacitySpec::parse_tokens("abc").unwrap_err().to_string();
    assert!(err.starts_with("--capacity-tokens `abc`"), "{err}");
    assert!(CapacitySpec::parse_tokens("10%").is_err());
}

proptest::proptest! {
    /// Any text: a spec or an error; a spec resolves to blocks or an
    /// error, never a panic or a wrapped size.
    #[test]
    fn any_text_parses_or_errs(
        s in "\\PC{0,24}|[0-9.eE+-]{1,30}[kKmMgGb%]?",
        unique in proptest::prelude::any::<u64>(),
        bt in 1u32..=1024,
    ) {
        for spec in [CapacitySpec::parse(&s), CapacitySpec::parse_tokens(&s)].into_iter().flatten() {
            if let Ok(n) = spec.blocks(unique, bt) {
                proptest::prop_assert!(n >= 1);
                proptest::prop_assert!(n.checked_mul(u64::from(bt)).is_some());
            }
        }
    }

    #[test]
    fn log_spaced_stays_in_range(a in 1u64..u64::MAX, b in 1u64..u64::MAX, points in 0usize..1000) {
        let v = log_spaced(a, b, points);
        proptest::prop_assert!(!v.is_empty() && v.len() <= points.max(1));
        proptest::prop_assert!(v.iter().all(|x| (a.min(b)..=a.max(b)).contains(x)));
        proptest::prop_assert!(v.windows(2).all(|w| w[0] < w[1]));
    }
}

#[test]
fn log_spacing() {
    assert_eq!(log_spaced(1, 1000, 4), vec![1, 10, 100, 1000]);
    assert_eq!(log_spaced(5, 5, 3), vec![5]);
    assert_eq!(log_spaced(1, 3, 10), vec![1, 2, 3]);
}
