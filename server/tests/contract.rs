//! The gateway's side of the numbers the SDKs share with it
//! (`tests/conformance/constants.json`): its default limits, the nesting
//! depth of arguments, the largest exact integer and the `ErrorInfo` of a
//! violated limit. Each SDK has the same check of its own constants, so a
//! change on one side fails a test until every side agrees.

use std::path::Path;

use emitgate::{codec, config::Limits, error};
use serde_json::Value;

fn constants() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/conformance/constants.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("constants.json is JSON")
}

fn number(v: &Value, name: &str) -> u64 {
    v[name]
        .as_u64()
        .unwrap_or_else(|| panic!("constants.json has no number {name}"))
}

#[test]
fn default_limits_match_the_shared_constants() {
    let c = constants();
    let d = &c["gateway_defaults"];
    let l = Limits::default();
    let ours = [
        ("max_event_bytes", l.max_event_bytes),
        ("max_room_bytes", l.max_room_bytes),
        ("max_namespace_bytes", l.max_namespace_bytes),
        ("max_rooms", l.max_rooms),
        ("max_args", l.max_args),
        ("max_packet_bytes", l.max_packet_bytes),
        ("max_batch_items", l.max_batch_items),
        ("max_message_bytes", l.max_message_bytes),
    ];
    for (name, value) in ours {
        assert_eq!(number(d, name), value as u64, "default {name}");
    }
    assert_eq!(
        d.as_object().map(|o| o.len()),
        Some(ours.len()),
        "constants.json lists a default the gateway does not have"
    );
}

#[test]
fn depth_integer_and_limit_error_match_the_shared_constants() {
    let c = constants();
    assert_eq!(number(&c, "max_depth"), codec::MAX_DEPTH as u64);
    // The gateway's bound is exclusive (2^53); the constant is the largest
    // integer sent exactly, JavaScript's Number.MAX_SAFE_INTEGER.
    assert_eq!((number(&c, "max_safe_integer") + 1) as f64, codec::MAX_SAFE_INTEGER);
    assert_eq!(c["limit_error"]["reason"], error::LIMIT_EXCEEDED);
    assert_eq!(c["limit_error"]["domain"], error::DOMAIN);
}
