//! Cache-event batches off the wire (`kvbm::events::wire`): any bytes decode
//! to a batch or an error, in either layout, and whatever decodes survives a
//! round trip through both encoders.
#![no_main]

use kvbm::events::wire;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(decoded) = wire::decode(data) else {
        return;
    };
    let plain = wire::encode_plain(&decoded.batch).expect("a decoded batch encodes");
    let again = wire::decode(&plain).expect("plain layout decodes");
    assert_eq!(again.batch, decoded.batch);
    assert_eq!(again.sequence, None);
    let numbered = wire::encode(&decoded.batch, decoded.sequence.unwrap_or(1))
        .expect("a decoded batch encodes");
    let again = wire::decode(&numbered).expect("numbered layout decodes");
    assert_eq!(again.batch, decoded.batch);
    assert_eq!(again.sequence, Some(decoded.sequence.unwrap_or(1)));
});
