//! The wire decoders under arbitrary and damaged input, the `cargo test`
//! side of the cargo-fuzz targets `event_wire` and `router_event` (see
//! `fuzz/`): whatever bytes come in, a decoder returns a value or an error,
//! and a value it returns encodes again and decodes back to itself in every
//! layout. Damaged input starts from valid messages, so most cases get past
//! the first byte (random bytes alone rarely do).

use kvbm::events::dynamo::{
    RemovedBlocks, RouterCacheEvent, RouterEvent, RouterEventData, StorageTier, StoredBlock,
    StoredBlocks,
};
use kvbm::events::wire;
use kvbm::events::{KvCacheEvents, KvbmCacheEvents};
use kvbm::SequenceHash;
use proptest::prelude::*;

fn cache_batch() -> impl Strategy<Value = KvbmCacheEvents> {
    let hashes = prop::collection::vec(
        (any::<u64>(), any::<Option<u64>>(), 0u64..(1 << 24))
            .prop_map(|(current, parent, position)| SequenceHash::new(current, parent, position)),
        0..12,
    );
    (0u8..3, hashes, any::<u128>()).prop_map(|(kind, hashes, instance_id)| KvbmCacheEvents {
        events: match kind {
            0 => KvCacheEvents::Create(hashes),
            1 => KvCacheEvents::Remove(hashes),
            _ => KvCacheEvents::Shutdown,
        },
        instance_id,
    })
}

fn router_event() -> impl Strategy<Value = RouterEvent> {
    let stored = (
        any::<Option<u64>>(),
        any::<Option<u32>>(),
        prop::collection::vec((any::<u64>(), any::<u64>()), 0..6),
    )
        .prop_map(|(parent_hash, start_position, blocks)| {
            RouterEventData::Stored(StoredBlocks {
                parent_hash,
                start_position,
                blocks: blocks
                    .into_iter()
                    .map(|(block_hash, tokens_hash)| StoredBlock {
                        block_hash,
                        tokens_hash,
                        mm_extra_info: None,
                    })
                    .collect(),
            })
        });
    let removed = prop::collection::vec(any::<u64>(), 0..6)
        .prop_map(|block_hashes| RouterEventData::Removed(RemovedBlocks { block_hashes }));
    let data = prop_oneof![stored, removed, Just(RouterEventData::Cleared)];
    let tier = prop_oneof![
        Just(StorageTier::Device),
        Just(StorageTier::HostPinned),
        Just(StorageTier::Disk),
        Just(StorageTier::External),
    ];
    (any::<u64>(), tier, any::<u64>(), data, any::<u32>()).prop_map(
        |(worker_id, storage_tier, event_id, data, dp_rank)| RouterEvent {
            worker_id,
            storage_tier,
            event: RouterCacheEvent {
                event_id,
                data,
                dp_rank,
            },
        },
    )
}

/// Overwrites bytes, then cuts the message at `cut` (a fraction of its
/// length, 255 = keep all).
fn damage(mut bytes: Vec<u8>, flips: &[(prop::sample::Index, u8)], cut: u8) -> Vec<u8> {
    if !bytes.is_empty() {
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = *value;
        }
    }
    let keep = bytes.len() * usize::from(cut) / 255;
    bytes.truncate(keep);
    bytes
}

/// What `fuzz/fuzz_targets/event_wire.rs` asserts of every input.
fn check_event_wire(bytes: &[u8]) -> Result<(), TestCaseError> {
    let Ok(decoded) = wire::decode(bytes) else {
        return Ok(());
    };
    let plain = wire::encode_plain(&decoded.batch).expect("a decoded batch encodes");
    let again = wire::decode(&plain).expect("plain layout decodes");
    prop_assert_eq!(&again.batch, &decoded.batch);
    prop_assert_eq!(again.sequence, None);
    let sequence = decoded.sequence.unwrap_or(1);
    let numbered = wire::encode(&decoded.batch, sequence).expect("a decoded batch encodes");
    let again = wire::decode(&numbered).expect("numbered layout decodes");
    prop_assert_eq!(&again.batch, &decoded.batch);
    prop_assert_eq!(again.sequence, Some(sequence));
    Ok(())
}

/// What `fuzz/fuzz_targets/router_event.rs` asserts of every input.
fn check_router_event(bytes: &[u8]) -> Result<(), TestCaseError> {
    for decoded in [
        RouterEvent::from_msgpack(bytes).ok(),
        RouterEvent::from_json(bytes).ok(),
    ]
    .into_iter()
    .flatten()
    {
        let json = decoded.to_json().expect("a decoded event encodes");
        prop_assert_eq!(
            RouterEvent::from_json(&json).expect("own JSON decodes"),
            decoded.clone()
        );
        let msgpack = decoded.to_msgpack().expect("a decoded event encodes");
        prop_assert_eq!(
            RouterEvent::from_msgpack(&msgpack).expect("own MessagePack decodes"),
            decoded
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        check_event_wire(&bytes)?;
        check_router_event(&bytes)?;
    }

    #[test]
    fn damaged_cache_batches_round_trip_when_they_decode(
        batch in cache_batch(),
        numbered in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<u8>(),
    ) {
        let bytes = if numbered {
            wire::encode(&batch, 9).unwrap()
        } else {
            wire::encode_plain(&batch).unwrap()
        };
        check_event_wire(&damage(bytes, &flips, cut))?;
    }

    #[test]
    fn damaged_router_events_round_trip_when_they_decode(
        event in router_event(),
        json in any::<bool>(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in any::<u8>(),
    ) {
        let bytes = if json { event.to_json().unwrap() } else { event.to_msgpack().unwrap() };
        // Undamaged, the event comes back as it was.
        if flips.is_empty() && cut == 255 {
            let back = if json { RouterEvent::from_json(&bytes) } else { RouterEvent::from_msgpack(&bytes) };
            prop_assert_eq!(back.unwrap(), event);
        }
        check_router_event(&damage(bytes, &flips, cut))?;
    }

    #[test]
    fn truncated_router_events_are_errors(event in router_event()) {
        let msgpack = event.to_msgpack().unwrap();
        for len in 0..msgpack.len() {
            prop_assert!(RouterEvent::from_msgpack(&msgpack[..len]).is_err(), "MessagePack prefix of {} bytes", len);
        }
        let json = event.to_json().unwrap();
        for len in 0..json.len() {
            prop_assert!(RouterEvent::from_json(&json[..len]).is_err(), "JSON prefix of {} bytes", len);
        }
    }
}

/// `mm_extra_info` is `Option<()>`: `Some(())` has no encoding distinct
/// from `None` in either format, so no decoder may produce it (it would not
/// survive a round trip). Both formats' non-null values are errors.
#[test]
fn mm_extra_info_other_than_null_is_an_error() {
    let json = br#"{"worker_id":1,"event":{"event_id":0,"data":{"stored":{"parent_hash":null,"start_position":0,"blocks":[{"block_hash":1,"tokens_hash":2,"mm_extra_info":[]}]}}}}"#;
    assert!(RouterEvent::from_json(json).is_err());
    let null = String::from_utf8_lossy(json).replace("[]", "null");
    let event = RouterEvent::from_json(null.as_bytes()).unwrap();
    let RouterEventData::Stored(stored) = &event.event.data else {
        panic!("stored event expected");
    };
    assert_eq!(stored.blocks[0].mm_extra_info, None);
}
