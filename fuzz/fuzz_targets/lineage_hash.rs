//! Lineage hashes off the wire: any 16 bytes decode, and any bytes given to
//! the msgpack and JSON decoders give a hash or an error.
#![no_main]

use kvbm::tokens::{PositionalLineageHash, MAX_LINEAGE_POSITION};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(packed) = <[u8; 16]>::try_from(data.get(..16).unwrap_or(&[])) {
        let h = PositionalLineageHash::from_u128(u128::from_be_bytes(packed));
        assert!(h.position() < MAX_LINEAGE_POSITION);
        let _ = (
            h.mode(),
            h.current_sequence_hash(),
            h.parent_hash_fragment(),
            h.parent_fragment_for_child_position(h.position() + 1),
            format!("{h:?}"),
        );
        match h.try_extend(0x5eed) {
            Ok(child) => assert_eq!(child.position(), h.position() + 1),
            Err(_) => assert_eq!(h.position(), MAX_LINEAGE_POSITION - 1),
        }
    }
    if let Ok(h) = rmp_serde::from_slice::<PositionalLineageHash>(data) {
        let again = rmp_serde::to_vec(&h).expect("serialises");
        assert_eq!(rmp_serde::from_slice::<PositionalLineageHash>(&again).ok(), Some(h));
    }
    let _ = serde_json::from_slice::<PositionalLineageHash>(data);
});
