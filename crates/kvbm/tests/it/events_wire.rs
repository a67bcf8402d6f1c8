//! The wire format of `kvbm::events` against kvbm-logical 1.6.1 (a
//! dev-dependency used only here): each side decodes the other's bytes,
//! our un-numbered encoding is byte-identical to theirs, and malformed
//! input is an error, never a panic.

use kvbm::events::dynamo::RouterEvent;
use kvbm::events::wire::{self, SequencedCacheEvents};
use kvbm::events::{KvCacheEvents, KvbmCacheEvents};
use kvbm::SequenceHash;
use kvbm_logical::events as theirs;
use proptest::prelude::*;

/// (current sequence hash, parent sequence hash, position) of one hash.
type Parts = (u64, Option<u64>, u64);

fn ours(p: Parts) -> SequenceHash {
    SequenceHash::new(p.0, p.1, p.2)
}

fn their_hash(p: Parts) -> kvbm_logical::SequenceHash {
    dynamo_tokens::PositionalLineageHash::new(p.0, p.1, p.2)
}

fn parts() -> impl Strategy<Value = Parts> {
    (any::<u64>(), any::<Option<u64>>(), 0u64..(1 << 24))
}

#[derive(Debug, Clone)]
enum Kind {
    Create,
    Remove,
    Shutdown,
}

fn batch() -> impl Strategy<Value = (Kind, Vec<Parts>, u128)> {
    (
        prop_oneof![Just(Kind::Create), Just(Kind::Remove), Just(Kind::Shutdown)],
        prop::collection::vec(parts(), 0..40),
        any::<u128>(),
    )
}

fn our_batch(kind: &Kind, hashes: &[Parts], instance_id: u128) -> KvbmCacheEvents {
    let hashes = hashes.iter().map(|&p| ours(p)).collect();
    let events = match kind {
        Kind::Create => KvCacheEvents::Create(hashes),
        Kind::Remove => KvCacheEvents::Remove(hashes),
        Kind::Shutdown => KvCacheEvents::Shutdown,
    };
    KvbmCacheEvents {
        events,
        instance_id,
    }
}

fn their_batch(kind: &Kind, hashes: &[Parts], instance_id: u128) -> theirs::KvbmCacheEvents {
    let hashes = hashes.iter().map(|&p| their_hash(p)).collect();
    let events = match kind {
        Kind::Create => theirs::KvCacheEvents::Create(hashes),
        Kind::Remove => theirs::KvCacheEvents::Remove(hashes),
        Kind::Shutdown => theirs::KvCacheEvents::Shutdown,
    };
    theirs::KvbmCacheEvents {
        events,
        instance_id,
    }
}

proptest! {
    #[test]
    fn their_bytes_decode_as_ours((kind, hashes, id) in batch()) {
        let bytes = rmp_serde::to_vec(&their_batch(&kind, &hashes, id)).unwrap();
        let decoded = wire::decode(&bytes).unwrap();
        prop_assert_eq!(decoded, SequencedCacheEvents { batch: our_batch(&kind, &hashes, id), sequence: None });
    }

    #[test]
    fn our_plain_bytes_are_theirs((kind, hashes, id) in batch()) {
        let ours = wire::encode_plain(&our_batch(&kind, &hashes, id)).unwrap();
        let theirs = rmp_serde::to_vec(&their_batch(&kind, &hashes, id)).unwrap();
        prop_assert_eq!(ours, theirs);
    }

    #[test]
    fn our_numbered_bytes_decode_as_theirs((kind, hashes, id) in batch(), seq in any::<u64>()) {
        let batch = our_batch(&kind, &hashes, id);
        let bytes = wire::encode(&batch, seq).unwrap();
        let decoded: theirs::KvbmCacheEvents = rmp_serde::from_slice(&bytes).unwrap();
        prop_assert_eq!(decoded, their_batch(&kind, &hashes, id));
        // And ours reads the number back.
        prop_assert_eq!(wire::decode(&bytes).unwrap(), SequencedCacheEvents { batch, sequence: Some(seq) });
    }

    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = wire::decode(&bytes);
        let _ = RouterEvent::from_msgpack(&bytes);
        let _ = RouterEvent::from_json(&bytes);
        let _ = rmp_serde::from_slice::<kvbm::events::KvCacheEvent>(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic((kind, hashes, id) in batch(), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
        let mut bytes = wire::encode(&our_batch(&kind, &hashes, id), 7).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = wire::decode(&bytes);
    }

    #[test]
    fn every_truncation_is_an_error((kind, hashes, id) in batch()) {
        let bytes = wire::encode(&our_batch(&kind, &hashes, id), 3).unwrap();
        for len in 0..bytes.len() {
            prop_assert!(wire::decode(&bytes[..len]).is_err(), "prefix of {} bytes decoded", len);
        }
    }
}

#[test]
fn huge_declared_lengths_are_errors() {
    // [ {"Create": array32 of 2^32-1 elements} ...] with nothing behind it.
    let mut bytes = vec![0x92, 0x81, 0xa6];
    bytes.extend_from_slice(b"Create");
    bytes.extend_from_slice(&[0xdd, 0xff, 0xff, 0xff, 0xff]);
    assert!(wire::decode(&bytes).is_err());
    // A hash declared as a 4 GiB bin.
    let mut bytes = vec![0x92, 0x81, 0xa6];
    bytes.extend_from_slice(b"Remove");
    bytes.extend_from_slice(&[0x91, 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2]);
    assert!(wire::decode(&bytes).is_err());
    // A map declaring 2^32-1 entries.
    assert!(wire::decode(&[0xdf, 0xff, 0xff, 0xff, 0xff]).is_err());
}

#[test]
fn wrong_types_are_errors() {
    let cases: [&[u8]; 6] = [
        &[0xc0],                                                       // nil
        &[0x92, 0x01, 0x02],                                           // [1, 2]
        &[0x92, 0xa4, b'N', b'o', b'p', b'e', 0x01],                   // unknown variant
        &[0x91, 0xa8, b'S', b'h', b'u', b't', b'd', b'o', b'w', b'n'], // missing instance_id
        // A hash of 15 bytes.
        &[
            0x92, 0x81, 0xa6, b'C', b'r', b'e', b'a', b't', b'e', 0x91, 0xc4, 15, 0, 0, 0, 0, 0, 0,
            0, 0, 0, 0, 0, 0, 0, 0, 0,
        ],
        &[],
    ];
    for bytes in cases {
        assert!(wire::decode(bytes).is_err(), "{bytes:?} decoded");
    }
}

#[test]
fn shutdown_layouts() {
    let batch = KvbmCacheEvents {
        events: KvCacheEvents::Shutdown,
        instance_id: 5,
    };
    let plain = wire::encode_plain(&batch).unwrap();
    // [ "Shutdown", bin8(16) … ]
    assert_eq!(plain[0], 0x92);
    assert_eq!(&plain[1..10], b"\xa8Shutdown");
    assert_eq!(&plain[10..12], &[0xc4, 16]);
    let numbered = wire::encode(&batch, 9).unwrap();
    assert_eq!(numbered[0], 0x83, "a map of three named fields");
}
