//! Snapshot reply chunks off NATS (`kvbm_nats::SnapshotAssembly`): a stream
//! of arbitrary payloads gives errors, nothing, or a snapshot no larger than
//! what was received — and never allocates by a count a chunk claims.
#![no_main]

use kvbm_nats::SnapshotAssembly;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Payloads separated by 0xFF 0xFE so one input carries several chunks.
    let mut assembly = SnapshotAssembly::new(u128::from(data.first().copied().unwrap_or(0)));
    let mut received = 0;
    let mut rest = data.get(1..).unwrap_or(&[]);
    while !rest.is_empty() {
        let end = rest
            .windows(2)
            .position(|w| w == [0xff, 0xfe])
            .unwrap_or(rest.len());
        let payload = &rest[..end];
        received += payload.len();
        if let Ok(Some(snapshot)) = assembly.accept(payload) {
            assert!(snapshot.hashes.len() <= received);
        }
        rest = rest.get(end + 2..).unwrap_or(&[]);
    }
});
