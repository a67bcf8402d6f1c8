//! Dynamo router events (`kvbm::events::dynamo::RouterEvent`): any bytes
//! given to the JSON and MessagePack decoders give an event or an error,
//! and a decoded event reads back equal from both encodings.
#![no_main]

use kvbm::events::dynamo::RouterEvent;
use libfuzzer_sys::fuzz_target;

fn round_trip(event: &RouterEvent) {
    let json = event.to_json().expect("a decoded event encodes");
    assert_eq!(&RouterEvent::from_json(&json).expect("own JSON decodes"), event);
    let msgpack = event.to_msgpack().expect("a decoded event encodes");
    assert_eq!(
        &RouterEvent::from_msgpack(&msgpack).expect("own MessagePack decodes"),
        event
    );
}

fuzz_target!(|data: &[u8]| {
    if let Ok(event) = RouterEvent::from_msgpack(data) {
        round_trip(&event);
    }
    if let Ok(event) = RouterEvent::from_json(data) {
        round_trip(&event);
    }
});
