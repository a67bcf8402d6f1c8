//! MessagePack encoding of [`KvbmCacheEvents`], compatible both ways with
//! kvbm-logical 1.6.1, plus our per-instance batch sequence number.
//!
//! kvbm-logical writes a batch with `rmp_serde::to_vec`: a two-element
//! array `[events, instance_id]`, where `events` is `{"Create": [h, …]}`,
//! `{"Remove": [h, …]}` or the string `"Shutdown"`, each hash 16 big-endian
//! bytes (msgpack bin) and `instance_id` the 16 big-endian bytes of the u128.
//! [`encode_plain`] writes exactly that.
//!
//! [`encode`] writes the same fields as a map with names, plus
//! `"sequence": u64`: `{"events": …, "instance_id": …, "sequence": n}`.
//! kvbm-logical's decoder reads maps by field name and skips names it does
//! not know, so it still reads the batch and ignores the number; ours reads
//! both layouts and reports the number when present.
//!
//! Sequence numbers start at 1 for an instance's first batch and grow by one
//! per batch (the final `Shutdown` included), so a consumer that sees a jump
//! knows how many batches it lost.

use serde::{Deserialize, Serialize};

use super::protocol::{InstanceId, KvCacheEvents, KvbmCacheEvents};

/// A decoded batch and, if the sender numbered it, its sequence number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequencedCacheEvents {
    /// The batch.
    pub batch: KvbmCacheEvents,
    /// Position of the batch in its instance's stream (from 1); `None` for
    /// batches from senders that do not number them, like kvbm-logical.
    pub sequence: Option<u64>,
}

/// A message that is not a well-formed batch.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The bytes do not decode as a batch.
    #[error("malformed event batch: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// The batch could not be encoded.
    #[error("cannot encode event batch: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

#[derive(Serialize)]
struct Numbered<'a> {
    events: &'a KvCacheEvents,
    instance_id: InstanceId,
    sequence: u64,
}

#[derive(Deserialize)]
struct Incoming {
    events: KvCacheEvents,
    instance_id: InstanceId,
    /// Absent from kvbm-logical's two-element arrays.
    #[serde(default)]
    sequence: Option<u64>,
}

/// Encodes `batch` with its sequence number (the layout kvbm's publisher
/// sends).
pub fn encode(batch: &KvbmCacheEvents, sequence: u64) -> Result<Vec<u8>, WireError> {
    let numbered = Numbered {
        events: &batch.events,
        instance_id: batch.instance_id,
        sequence,
    };
    Ok(rmp_serde::to_vec_named(&numbered)?)
}

/// Encodes `batch` byte for byte as kvbm-logical 1.6.1 does.
pub fn encode_plain(batch: &KvbmCacheEvents) -> Result<Vec<u8>, WireError> {
    Ok(rmp_serde::to_vec(batch)?)
}

/// Decodes a batch in either layout. Malformed input of any kind —
/// truncated, wrong types, absurd lengths — is an error, never a panic, and
/// nothing is allocated in proportion to a length the input claims before
/// the bytes behind it are seen.
pub fn decode(bytes: &[u8]) -> Result<SequencedCacheEvents, WireError> {
    let incoming: Incoming = rmp_serde::from_slice(bytes)?;
    Ok(SequencedCacheEvents {
        batch: KvbmCacheEvents {
            events: incoming.events,
            instance_id: incoming.instance_id,
        },
        sequence: incoming.sequence,
    })
}
