use super::*;

#[test]
fn fields_round_trip_in_every_mode() {
    for position in [0u64, 1, 255, 256, 65535, 65536, MAX_LINEAGE_POSITION - 1] {
        let current = 0xDEAD_BEEF_0123_4567;
        let parent = 0xFFFF_FFFF_FFFF_FFFF;
        let h = PositionalLineageHash::new(current, Some(parent), position);
        assert_eq!(h.position(), position);
        assert_eq!(h.mode() as u32, mode_for(position));
        assert_eq!(h.current_sequence_hash(), current);
        let bits = layout(mode_for(position)).1;
        assert_eq!(h.parent_hash_fragment(), parent & ((1 << bits) - 1));
    }
}

#[test]
fn position_past_limit_is_an_error() {
    assert_eq!(
        PositionalLineageHash::try_new(1, None, MAX_LINEAGE_POSITION),
        Err(LineagePositionError {
            position: MAX_LINEAGE_POSITION
        })
    );
    let last = PositionalLineageHash::new(1, Some(2), MAX_LINEAGE_POSITION - 1);
    assert!(last.try_extend(3).is_err());
}

#[test]
#[should_panic(expected = "exceeds the lineage hash limit")]
fn panicking_constructor_documents_its_panic() {
    let _ = PositionalLineageHash::new(1, None, MAX_LINEAGE_POSITION);
}

#[test]
fn extend_links_child_to_parent() {
    let root = PositionalLineageHash::root(42);
    let child = root.extend(7);
    assert_eq!(root.position(), 0);
    assert_eq!(root.current_sequence_hash(), 42);
    assert_eq!(child.position(), 1);
    assert_eq!(
        child.current_sequence_hash(),
        compute_next_sequence_hash(42, 7)
    );
    assert_eq!(
        child.parent_hash_fragment(),
        root.parent_fragment_for_child_position(1)
    );
}

#[test]
fn orders_by_position_first() {
    let a = PositionalLineageHash::new(u64::MAX, None, 0);
    let b = PositionalLineageHash::new(0, None, 1);
    assert!(a < b);
}

#[test]
fn serde_round_trip_msgpack_and_json() {
    let h = PositionalLineageHash::new(99, Some(12345), 300);
    let bytes = rmp_serde::to_vec(&h).unwrap();
    assert_eq!(bytes.len(), 18, "bin8 header + 16 bytes");
    assert_eq!(&bytes[2..], &h.as_u128().to_be_bytes());
    assert_eq!(
        rmp_serde::from_slice::<PositionalLineageHash>(&bytes).unwrap(),
        h
    );
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(
        serde_json::from_str::<PositionalLineageHash>(&json).unwrap(),
        h
    );
    assert!(serde_json::from_str::<PositionalLineageHash>("[1,2,3]").is_err());
}

proptest::proptest! {
    /// Any packed value off the wire decodes: every accessor answers,
    /// extending stops at the position limit with an error, and the
    /// value round-trips.
    #[test]
    fn any_packed_value_decodes(
        v in proptest::prelude::any::<u128>(),
        child in proptest::prelude::any::<u64>(),
        block in proptest::prelude::any::<u64>(),
    ) {
        let h = PositionalLineageHash::from_u128(v);
        let p = h.position();
        proptest::prop_assert!(p < MAX_LINEAGE_POSITION);
        proptest::prop_assert!(h.mode() <= 3);
        let _ = (
            h.current_sequence_hash(),
            h.parent_hash_fragment(),
            h.parent_fragment_for_child_position(child),
            format!("{h:?}"),
            h.cmp(&PositionalLineageHash::from_u128(!v)),
        );
        match h.try_extend(block) {
            Ok(c) => proptest::prop_assert_eq!(c.position(), p + 1),
            Err(_) => proptest::prop_assert_eq!(p, MAX_LINEAGE_POSITION - 1),
        }
        proptest::prop_assert_eq!(PositionalLineageHash::from_u128(h.as_u128()), h);
    }

    /// Any bytes given to the serde decoders: a hash or an error.
    #[test]
    fn any_bytes_deserialize_or_fail(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
        if let Ok(h) = rmp_serde::from_slice::<PositionalLineageHash>(&bytes) {
            let again = rmp_serde::to_vec(&h).unwrap();
            proptest::prop_assert_eq!(rmp_serde::from_slice::<PositionalLineageHash>(&again).unwrap(), h);
        }
        let _ = serde_json::from_slice::<PositionalLineageHash>(&bytes);
    }
}
