//! The wire codec: channel names and packet bytes, with no I/O.
//!
//! Everything here is a pure function of its input so that it can be tested
//! byte-for-byte against the reference emitters' output
//! (`../shared/vectors`) without Redis. The service layer validates a request,
//! calls into this module to encode it, and publishes the result.

pub mod args;
pub mod socketio;

/// The largest integer magnitude a JavaScript number holds exactly (2^53).
///
/// Integral numbers within ±2^53 are written as MessagePack integers, as the
/// JavaScript encoder (notepack) does for numbers that are integers; anything
/// else is written as float64.
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

/// How deeply arrays and maps may nest inside one argument.
///
/// The receiving adapter decodes MessagePack recursively on the JavaScript
/// stack, so the bound protects the Socket.IO servers; 128 matches
/// `serde_json`'s own recursion limit for `json` arguments.
pub const MAX_DEPTH: usize = 128;

/// The uid written into every packet: the reference emitter's `"emitter"`,
/// which can never collide with an adapter's own 6-character uid.
pub const EMITTER_UID: &str = "emitter";
