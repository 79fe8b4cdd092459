//! Property-based fuzzing of the argument validators and the codec: no
//! input panics, and whatever is accepted decodes back, with an independent
//! MessagePack decoder (rmpv), into the value that was sent.
//!
//! Runs a bounded number of cases in `make test`; raise `PROPTEST_CASES`
//! for a longer run.

#![allow(clippy::unwrap_used, reason = "a panic is how a test reports failure")]

use emitgate::{
    Config, Gateway,
    codec::args::{json_to_msgpack, validate_msgpack},
    pb::{self, argument::Kind},
    service::Operation,
};
use proptest::prelude::*;
use rmpv::Value as Mp;

/// JSON values; numbers are kept to what JavaScript holds exactly.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        (-(1i64 << 53)..=(1i64 << 53)).prop_map(|n| serde_json::json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| serde_json::json!(f)),
        ".{0,40}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// MessagePack values of every kind the adapters decode.
fn mp_value() -> impl Strategy<Value = Mp> {
    let leaf = prop_oneof![
        Just(Mp::Nil),
        any::<bool>().prop_map(Mp::Boolean),
        any::<i64>().prop_map(Mp::from),
        any::<u64>().prop_map(Mp::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Mp::F64),
        ".{0,40}".prop_map(Mp::from),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Mp::Binary),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Mp::Array),
            prop::collection::vec((".{0,12}".prop_map(Mp::from), inner), 0..8).prop_map(Mp::Map),
        ]
    })
}

/// The same number in JSON's and in MessagePack's model.
fn same(json: &serde_json::Value, mp: &Mp) -> bool {
    use serde_json::Value as J;
    match (json, mp) {
        (J::Null, Mp::Nil) => true,
        (J::Bool(a), Mp::Boolean(b)) => a == b,
        (J::Number(n), Mp::Integer(i)) => n.as_f64() == i.as_f64(),
        (J::Number(n), Mp::F64(f)) => n.as_f64() == Some(*f),
        (J::String(a), Mp::String(b)) => Some(a.as_str()) == b.as_str(),
        (J::Array(a), Mp::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same(x, y)),
        (J::Object(a), Mp::Map(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((k, v), (mk, mv))| Some(k.as_str()) == mk.as_str() && same(v, mv))
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_msgpack_validator(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = validate_msgpack(&bytes);
    }

    #[test]
    fn arbitrary_text_never_panics_the_json_transcoder(text in ".{0,200}") {
        let mut out = Vec::new();
        if json_to_msgpack(&text, &mut out).is_ok() {
            validate_msgpack(&out).unwrap();
        }
    }

    #[test]
    fn accepted_json_decodes_back_to_the_same_value(v in json_value()) {
        let mut out = Vec::new();
        json_to_msgpack(&v.to_string(), &mut out).unwrap();
        let back = rmpv::decode::read_value(&mut out.as_slice()).unwrap();
        prop_assert!(same(&v, &back), "{v} became {back}");
    }

    #[test]
    fn accepted_msgpack_is_spliced_unchanged(v in mp_value()) {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &v).unwrap();
        validate_msgpack(&bytes).unwrap();
        let gateway = Gateway::new(&Config::from_toml("").unwrap()).unwrap();
        let req = pb::EmitRequest {
            rooms: vec!["r".into()],
            event: "e".into(),
            args: vec![pb::Argument { kind: Some(Kind::Msgpack(bytes)) }],
            ..Default::default()
        };
        let encoded = gateway.encode(Operation::Emit(&req)).unwrap();
        let packet = rmpv::decode::read_value(&mut encoded.message.payload()).unwrap();
        prop_assert_eq!(&packet[1]["data"][1], &v);
    }

    #[test]
    fn corrupted_msgpack_is_refused_or_still_one_valid_value(v in mp_value(), cut in any::<prop::sample::Index>(), flip in any::<u8>()) {
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &v).unwrap();
        let i = cut.index(bytes.len());
        bytes[i] ^= flip;
        if validate_msgpack(&bytes).is_ok() {
            // Whatever passes must be exactly one value a decoder reads whole.
            let mut rest = bytes.as_slice();
            rmpv::decode::read_value(&mut rest).unwrap();
            prop_assert!(rest.is_empty());
        }
    }
}
