//! The one workload every scenario sends: the same event, the same
//! ~100-byte JSON object argument and the same cycle of 1–3 rooms, so the
//! Redis limit, the reference emitters and the gateway publish comparable
//! (for the Node emitter and the gateway: identical) packets.

use std::error::Error;

use bytes::Bytes;
use emitgate::{
    codec::{
        Dialect, EncodedArgs, Event, Flags,
        args::{Shape, json_to_msgpack},
        socketio::SocketIo,
    },
    pb::{self, argument::Kind},
};
use prost::Message as _;
use serde::Serialize;

/// The event name.
pub const EVENT: &str = "notification";

/// The namespace.
pub const NSP: &str = "/";

/// The argument: one JSON object of about 100 bytes.
pub const PAYLOAD_JSON: &str =
    r#"{"id":1042,"kind":"comment","title":"New reply to your post","from":"alice","unread":3,"url":"/p/88"}"#;

/// How many distinct room sets the workload cycles through.
pub const ROOM_SETS: usize = 300;

/// Items per BatchEmit call (the gateway's default `max_batch_items`).
pub const BATCH_ITEMS: usize = 1000;

/// The room set of event `i`: one user room, plus a team room for every
/// second and third event of three, plus an org room for every third: 1, 2
/// and 3 rooms in turn (one room publishes on the room channel, several on
/// the namespace channel).
pub fn rooms(i: usize) -> Vec<String> {
    let mut r = vec![format!("user:{}", i % 1000)];
    if i % 3 >= 1 {
        r.push(format!("team:{}", i % 100));
    }
    if i % 3 == 2 {
        r.push(format!("org:{}", i % 10));
    }
    r
}

/// The cycle of room sets every emitter walks through.
pub fn room_cycle() -> Vec<Vec<String>> {
    (0..ROOM_SETS).map(rooms).collect()
}

/// Which `Argument` kind carries the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArgKind {
    /// Raw JSON text (`Argument.json`), transcoded to MessagePack.
    Json,
    /// Pre-encoded MessagePack (`Argument.msgpack`), validated and spliced.
    Msgpack,
    /// A `google.protobuf.Value` tree (`Argument.value`).
    Value,
}

impl ArgKind {
    /// The proto field name.
    pub fn name(self) -> &'static str {
        match self {
            ArgKind::Json => "json",
            ArgKind::Msgpack => "msgpack",
            ArgKind::Value => "value",
        }
    }
}

/// The payload as one MessagePack value (what the codec writes for it).
pub fn payload_msgpack() -> Result<Vec<u8>, Box<dyn Error>> {
    let mut out = Vec::new();
    json_to_msgpack(PAYLOAD_JSON, &mut out).map_err(|e| e.0)?;
    Ok(out)
}

fn to_value(v: &serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind as K;
    let kind = match v {
        serde_json::Value::Null => K::NullValue(0),
        serde_json::Value::Bool(b) => K::BoolValue(*b),
        serde_json::Value::Number(n) => K::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => K::StringValue(s.clone()),
        serde_json::Value::Array(a) => K::ListValue(prost_types::ListValue {
            values: a.iter().map(to_value).collect(),
        }),
        serde_json::Value::Object(o) => K::StructValue(prost_types::Struct {
            fields: o.iter().map(|(k, v)| (k.clone(), to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The payload as an `Argument` of the given kind.
pub fn argument(kind: ArgKind) -> Result<pb::Argument, Box<dyn Error>> {
    let kind = match kind {
        ArgKind::Json => Kind::Json(PAYLOAD_JSON.to_owned()),
        ArgKind::Msgpack => Kind::Msgpack(payload_msgpack()?),
        ArgKind::Value => Kind::Value(to_value(&serde_json::from_str(PAYLOAD_JSON)?)),
    };
    Ok(pb::Argument { kind: Some(kind) })
}

/// The Emit request of event `i`.
pub fn emit_request(i: usize, arg: &pb::Argument) -> pb::EmitRequest {
    pb::EmitRequest {
        rooms: rooms(i % ROOM_SETS),
        event: EVENT.to_owned(),
        args: vec![arg.clone()],
        ..Default::default()
    }
}

/// One encoded BatchEmit request of [`BATCH_ITEMS`] emits.
pub fn batch_body(kind: ArgKind) -> Result<Bytes, Box<dyn Error>> {
    let arg = argument(kind)?;
    let req = pb::BatchEmitRequest {
        items: (0..BATCH_ITEMS)
            .map(|i| pb::BatchItem {
                op: Some(pb::batch_item::Op::Emit(emit_request(i, &arg))),
            })
            .collect(),
        atomic: false,
    };
    Ok(Bytes::from(req.encode_to_vec()))
}

/// The encoded Emit requests of one room cycle.
pub fn emit_bodies(kind: ArgKind) -> Result<Vec<Bytes>, Box<dyn Error>> {
    let arg = argument(kind)?;
    Ok((0..ROOM_SETS)
        .map(|i| Bytes::from(emit_request(i, &arg).encode_to_vec()))
        .collect())
}

/// One `PUBLISH channel packet` command in RESP.
fn resp_publish(out: &mut Vec<u8>, channel: &[u8], payload: &[u8]) {
    out.extend_from_slice(b"*3\r\n$7\r\nPUBLISH\r\n");
    for part in [channel, payload] {
        out.extend_from_slice(format!("${}\r\n", part.len()).as_bytes());
        out.extend_from_slice(part);
        out.extend_from_slice(b"\r\n");
    }
}

/// The exact channel and packet bytes the gateway publishes for event `i`,
/// encoded by the gateway's own codec.
pub fn packet(key: &str, i: usize, args: &EncodedArgs) -> Result<(Vec<u8>, Vec<u8>), Box<dyn Error>> {
    let rooms = rooms(i % ROOM_SETS);
    let event = Event {
        nsp: NSP,
        rooms: &rooms,
        except: &[],
        event: EVENT,
        args,
        flags: Flags::default(),
    };
    let m = SocketIo::new(key).event(&event).map_err(|e| e.to_string())?;
    Ok((m.channel().to_vec(), m.payload().to_vec()))
}

/// A RESP pipeline of `n` PUBLISH commands (events 0..n) and the average
/// packet size.
pub fn publish_pipeline(key: &str, n: usize) -> Result<(Vec<u8>, usize), Box<dyn Error>> {
    let args = EncodedArgs {
        count: 1,
        bytes: payload_msgpack()?,
        shape: Shape::default(),
    };
    let mut out = Vec::new();
    let mut total = 0;
    for i in 0..n {
        let (channel, payload) = packet(key, i, &args)?;
        total += payload.len();
        resp_publish(&mut out, &channel, &payload);
    }
    Ok((out, total / n.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_about_100_bytes_and_rooms_cycle_one_to_three() {
        assert!((90..=110).contains(&PAYLOAD_JSON.len()));
        let counts: Vec<usize> = (0..6).map(|i| rooms(i).len()).collect();
        assert_eq!(counts, [1, 2, 3, 1, 2, 3]);
    }

    #[test]
    fn every_argument_kind_encodes_the_same_msgpack() -> Result<(), Box<dyn Error>> {
        let expected = payload_msgpack()?;
        for kind in [ArgKind::Json, ArgKind::Msgpack] {
            let arg = argument(kind)?;
            let mut out = Vec::new();
            let k = arg.kind.ok_or("no kind")?;
            emitgate::codec::args::write_msgpack(&k, &mut out).map_err(|e| e.0)?;
            assert_eq!(out, expected, "{kind:?}");
        }
        Ok(())
    }

    #[test]
    fn pipeline_holds_one_publish_per_event() -> Result<(), Box<dyn Error>> {
        let (bytes, avg) = publish_pipeline("socket.io", 3)?;
        let text = String::from_utf8_lossy(&bytes);
        assert_eq!(text.matches("PUBLISH").count(), 3);
        assert!(text.contains("socket.io#/#user:0#"), "one room uses the room channel");
        assert!(avg > 100);
        Ok(())
    }
}
