//! Request validation: every rule that keeps a Socket.IO server safe, with
//! every violation of a request reported at once.
//!
//! Functions take a field-path prefix (empty for unary calls,
//! `items[3].emit.` inside a batch) and push one [`Violation`] per bad field.

use std::collections::HashSet;

use crate::{
    codec::MAX_DEPTH,
    codec::{
        EncodedArgs,
        args::{self, ArgError},
    },
    config::Limits,
    error::{Limit, Violation, Violations},
    pb,
};

/// Event names Socket.IO reserves: a client that receives one of these
/// disconnects with "parse error" (socket.io-parser ≥ 4.2.4), and servers
/// refuse to emit them.
pub const RESERVED_EVENTS: &[&str] = &[
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Up to this many rooms, duplicates are found by a linear scan.
const SMALL_ROOM_LIST: usize = 16;

/// Names a namespace's `serverSideEmit` refuses on top of
/// [`RESERVED_EVENTS`]: they would fire the server's own lifecycle handlers.
pub const RESERVED_SERVER_EVENTS: &[&str] = &["connection", "new_namespace"];

/// Where a request's fields sit: the root of a unary call, or one item of
/// a batch. The path is only formatted when a violation is reported, so a
/// valid batch item costs no string building.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// Fields of the request itself (`event`).
    Root,
    /// Fields of a batch item's operation (`items[3].emit.event`).
    Item(usize, &'static str),
    /// Fields of the operation inside a request (`emit.event`).
    Op(&'static str),
}

impl Prefix {
    /// The full path of `field`.
    pub fn path(self, field: impl std::fmt::Display) -> String {
        match self {
            Prefix::Root => field.to_string(),
            Prefix::Item(i, op) => format!("items[{i}].{op}.{field}"),
            Prefix::Op(op) => format!("{op}.{field}"),
        }
    }
}

/// Collects violations for one request, up to `max_violations` (the rest
/// are only counted).
#[derive(Debug)]
pub struct Checker<'a> {
    limits: &'a Limits,
    prefix: Prefix,
    violations: Violations,
}

impl<'a> Checker<'a> {
    /// A checker whose field paths start with `prefix`.
    pub fn new(limits: &'a Limits, prefix: Prefix) -> Self {
        Self {
            limits,
            prefix,
            violations: Violations::new(limits.max_violations),
        }
    }

    fn violation(&mut self, field: impl std::fmt::Display, description: impl Into<String>) {
        let prefix = self.prefix;
        self.violations
            .push_with(None, || Violation::new(prefix.path(field), description));
    }

    /// A violation of the configured limit `name` = `max`.
    fn over(&mut self, field: impl std::fmt::Display, description: impl Into<String>, name: &'static str, max: usize) {
        let prefix = self.prefix;
        let limit = Limit::new(name, max);
        self.violations
            .push_with(Some(limit), || Violation::over(prefix.path(field), description, limit));
    }

    /// Whether a violation was found.
    pub fn has_violations(&self) -> bool {
        !self.violations.is_empty()
    }

    /// The violations found so far, leaving none.
    pub fn take_violations(&mut self) -> Violations {
        let empty = Violations::new(self.limits.max_violations);
        std::mem::replace(&mut self.violations, empty)
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        self.limits
    }

    /// Reports a violation of a field the caller names.
    pub fn report(&mut self, field: &str, description: impl Into<String>) {
        self.violation(field, description);
    }

    /// Reports a violation of a field of the request itself, outside the
    /// operation the prefix names (`timeout_ms` beside `emit`).
    pub fn report_root(&mut self, field: &str, description: impl Into<String>) {
        self.violations.push_with(None, || Violation::new(field, description));
    }

    /// Normalizes a namespace as the JavaScript emitter's `of()` does: empty
    /// is `/`, and a missing leading `/` is added.
    pub fn namespace(&mut self, raw: &str) -> String {
        let nsp = if raw.starts_with('/') {
            raw.to_owned()
        } else {
            format!("/{raw}")
        };
        if nsp.len() > self.limits.max_namespace_bytes {
            let max = self.limits.max_namespace_bytes;
            self.over(
                "namespace",
                format!("{} bytes, over the limit max_namespace_bytes = {max}", nsp.len()),
                "max_namespace_bytes",
                max,
            );
        }
        nsp
    }

    /// Checks an event name; `server` adds the names `serverSideEmit`
    /// refuses.
    pub fn event(&mut self, field: &str, event: &str, server: bool) {
        if event.is_empty() {
            self.violation(field, "must not be empty");
        } else if RESERVED_EVENTS.contains(&event) || (server && RESERVED_SERVER_EVENTS.contains(&event)) {
            self.violation(field, format!("{event:?} is a reserved event name"));
        } else if event.len() > self.limits.max_event_bytes {
            let max = self.limits.max_event_bytes;
            self.over(
                field,
                format!("{} bytes, over the limit max_event_bytes = {max}", event.len()),
                "max_event_bytes",
                max,
            );
        }
    }

    /// Checks a room list and returns it deduplicated, in first-seen order.
    /// `required` rejects an empty list.
    pub fn rooms(&mut self, field: &str, rooms: &[String], required: bool) -> Vec<String> {
        if rooms.is_empty() {
            if required {
                self.violation(field, "at least one room is required");
            }
            return Vec::new();
        }
        if rooms.len() > self.limits.max_rooms {
            let max = self.limits.max_rooms;
            self.over(
                field,
                format!("{} rooms, over the limit max_rooms = {max}", rooms.len()),
                "max_rooms",
                max,
            );
            return Vec::new();
        }
        // Short lists (the common case) are deduplicated by a linear scan,
        // which beats hashing every name; long ones through a set.
        let mut seen = if rooms.len() > SMALL_ROOM_LIST {
            HashSet::with_capacity(rooms.len())
        } else {
            HashSet::new()
        };
        let mut out: Vec<String> = Vec::with_capacity(rooms.len());
        for (i, room) in rooms.iter().enumerate() {
            if room.is_empty() {
                self.violation(format_args!("{field}[{i}]"), "room names must not be empty");
            } else if room.len() > self.limits.max_room_bytes {
                let max = self.limits.max_room_bytes;
                self.over(
                    format_args!("{field}[{i}]"),
                    format!("{} bytes, over the limit max_room_bytes = {max}", room.len()),
                    "max_room_bytes",
                    max,
                );
            } else if rooms.len() > SMALL_ROOM_LIST {
                if seen.insert(room.as_str()) {
                    out.push(room.clone());
                }
            } else if !out.contains(room) {
                out.push(room.clone());
            }
        }
        out
    }

    fn arg_count(&mut self, args: &[pb::Argument]) -> bool {
        if args.len() > self.limits.max_args {
            let max = self.limits.max_args;
            self.over(
                "args",
                format!("{} arguments, over the limit max_args = {max}", args.len()),
                "max_args",
                max,
            );
            return false;
        }
        true
    }

    /// Validates and encodes event arguments as back-to-back MessagePack
    /// values, the canonical form every dialect starts from.
    pub fn args(&mut self, args: &[pb::Argument]) -> EncodedArgs {
        let mut out = EncodedArgs::default();
        if !self.arg_count(args) {
            return out;
        }
        out.bytes.reserve(args.iter().map(encoded_size_hint).sum());
        for (i, arg) in args.iter().enumerate() {
            match &arg.kind {
                None => {
                    self.violation(
                        format_args!("args[{i}]"),
                        "no argument kind set (value, binary, json or msgpack)",
                    );
                }
                Some(kind) => match args::write_msgpack(kind, &mut out.bytes) {
                    Ok(shape) => out.shape |= shape,
                    Err(ArgError(e)) => {
                        let field = format_args!("args[{i}].{}", kind_name(kind));
                        if is_depth_error(&e) {
                            self.over(field, e, "max_depth", MAX_DEPTH);
                        } else {
                            self.violation(field, e);
                        }
                    }
                },
            }
        }
        // The count is bounded by max_args above.
        out.count = u32::try_from(args.len()).unwrap_or(u32::MAX);
        out
    }

    /// Checks the size of an encoded packet against `max_packet_bytes`.
    pub fn packet_size(&mut self, len: usize) {
        let max = self.limits.max_packet_bytes;
        if len > max {
            self.over(
                "args",
                format!("the encoded packet is {len} bytes, over the limit max_packet_bytes = {max}"),
                "max_packet_bytes",
                max,
            );
        }
    }

    /// The violations, or `Ok` when there are none.
    pub fn finish(self) -> Result<(), Violations> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(self.violations)
        }
    }
}

/// Whether an argument error is the nesting bound: the codec reports it
/// with this exact text, the one place it is worded.
/// serde_json words its own recursion bound (the same 128 levels) for
/// `json` arguments.
fn is_depth_error(e: &str) -> bool {
    e == format!("nested deeper than {MAX_DEPTH} levels") || e.contains("recursion limit exceeded")
}

fn kind_name(kind: &pb::argument::Kind) -> &'static str {
    match kind {
        pb::argument::Kind::Value(_) => "value",
        pb::argument::Kind::Binary(_) => "binary",
        pb::argument::Kind::Json(_) => "json",
        pb::argument::Kind::Msgpack(_) => "msgpack",
    }
}

fn encoded_size_hint(arg: &pb::Argument) -> usize {
    match &arg.kind {
        Some(pb::argument::Kind::Binary(b) | pb::argument::Kind::Msgpack(b)) => b.len() + 5,
        Some(pb::argument::Kind::Json(s)) => s.len(),
        _ => 16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_normalization() {
        let limits = Limits::default();
        let mut c = Checker::new(&limits, Prefix::Root);
        assert_eq!(c.namespace(""), "/");
        assert_eq!(c.namespace("admin"), "/admin");
        assert_eq!(c.namespace("/admin"), "/admin");
        assert!(c.finish().is_ok());
    }

    #[test]
    fn events() {
        let limits = Limits {
            max_event_bytes: 12,
            ..Limits::default()
        };
        let mut c = Checker::new(&limits, Prefix::Item(2, "emit"));
        c.event("event", "", false);
        c.event("event", "connect", false);
        c.event("event", "connection", false);
        c.event("event", "connection", true);
        c.event("event", "much_too_long", false);
        let v = c.finish().unwrap_err();
        let v = v.listed();
        assert_eq!(v.len(), 4, "{v:?}");
        assert!(v.iter().all(|v| v.field == "items[2].emit.event"));
        assert!(v[3].description.contains("max_event_bytes = 12"));
    }

    #[test]
    fn rooms_dedup_and_report_each_bad_one() {
        let limits = Limits {
            max_room_bytes: 3,
            max_rooms: 4,
            ..Limits::default()
        };
        let mut c = Checker::new(&limits, Prefix::Root);
        let r = c.rooms("rooms", &["a".into(), "a".into(), "b".into()], true);
        assert_eq!(r, vec!["a".to_string(), "b".to_string()]);
        c.rooms("rooms", &["".into(), "abcd".into()], true);
        c.rooms("except_rooms", &[], true);
        c.rooms("except_rooms", &vec!["x".to_string(); 5], false);
        let v = c.finish().unwrap_err();
        let v = v.listed();
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["rooms[0]", "rooms[1]", "except_rooms", "except_rooms"]);
    }

    #[test]
    fn args_report_their_index_and_kind() {
        let limits = Limits {
            max_args: 2,
            ..Limits::default()
        };
        let mut c = Checker::new(&limits, Prefix::Root);
        let args = vec![
            pb::Argument {
                kind: Some(pb::argument::Kind::Json("[".into())),
            },
            pb::Argument { kind: None },
        ];
        let _ = c.args(&args);
        let many = vec![
            pb::Argument {
                kind: Some(pb::argument::Kind::Binary(vec![]))
            };
            3
        ];
        let _ = c.args(&many);
        let v = c.finish().unwrap_err();
        let v = v.listed();
        let fields: Vec<_> = v.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["args[0].json", "args[1]", "args"]);
    }

    #[test]
    fn violations_past_the_cap_are_counted_and_limits_kept() {
        let limits = Limits {
            max_violations: 3,
            max_room_bytes: 2,
            ..Limits::default()
        };
        let mut c = Checker::new(&limits, Prefix::Root);
        let mut rooms = vec![String::new(); 10];
        rooms.push("abc".into());
        c.rooms("rooms", &rooms, true);
        let v = c.finish().unwrap_err();
        assert_eq!(v.listed().len(), 3);
        assert_eq!(v.len(), 11);
        // The limit was hit only past the cap, and is still reported.
        assert_eq!(v.limits(), [("rooms[10]".to_owned(), Limit::new("max_room_bytes", 2))]);
        let shown = v.bounded();
        assert_eq!(shown.len(), 4);
        assert_eq!(shown[3].field, "");
        assert_eq!(shown[3].description, "8 more violations not listed");
    }

    #[test]
    fn nesting_depth_is_a_limit() {
        let limits = Limits::default();
        let mut c = Checker::new(&limits, Prefix::Root);
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 2), "]".repeat(MAX_DEPTH + 2));
        let _ = c.args(&[pb::Argument {
            kind: Some(pb::argument::Kind::Json(deep)),
        }]);
        let v = c.finish().unwrap_err();
        assert_eq!(v.limits()[0].1, Limit::new("max_depth", MAX_DEPTH), "{v:?}");
    }
}
