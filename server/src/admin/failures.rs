//! The last failed calls, for the admin console: method, code and message
//! only — never a request's payload or credentials — in a ring buffer of
//! bounded size.

use std::{
    collections::VecDeque,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::error::Error;

/// How many failed calls are kept: a screenful, and a bounded amount of
/// memory however many calls fail.
pub const KEPT: usize = 50;

/// Longest message kept, in characters: enough to read the reason (and the
/// first field violations), without letting one huge rejection grow the
/// buffer.
const MESSAGE_CHARS: usize = 400;

/// One failed call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FailedCall {
    /// When it was answered, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The RPC name, e.g. `Emit`.
    pub method: &'static str,
    /// The gRPC code name as the metrics write it, e.g. `InvalidArgument`.
    pub code: String,
    /// The error message, cut to [`MESSAGE_CHARS`] characters.
    pub message: String,
}

/// The ring buffer, shared by every call of a gateway.
#[derive(Debug, Default)]
pub struct FailedCalls {
    calls: Mutex<VecDeque<FailedCall>>,
}

impl FailedCalls {
    /// Records a failed call, dropping the oldest one beyond [`KEPT`].
    pub fn record(&self, method: &'static str, error: &Error) {
        let message = cut(error.to_string());
        let call = FailedCall {
            at_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            method,
            code: crate::service::code_name(error.code()).to_owned(),
            message,
        };
        let mut calls = match self.calls.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if calls.len() == KEPT {
            calls.pop_front();
        }
        calls.push_back(call);
    }

    /// The kept calls, newest first.
    pub fn recent(&self) -> Vec<FailedCall> {
        let calls = match self.calls.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        calls.iter().rev().cloned().collect()
    }
}

/// `message` cut to [`MESSAGE_CHARS`] characters, with `…` when cut.
fn cut(mut message: String) -> String {
    if let Some((at, _)) = message.char_indices().nth(MESSAGE_CHARS) {
        message.truncate(at);
        message.push('…');
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Violation, Violations};

    #[test]
    fn keeps_the_newest_calls_first_and_bounds_count_and_length() {
        let failed = FailedCalls::default();
        for i in 0..KEPT + 5 {
            failed.record("Emit", &Error::UnknownTarget(format!("t{i}")));
        }
        let recent = failed.recent();
        assert_eq!(recent.len(), KEPT);
        assert_eq!(recent[0].message, format!("unknown target \"t{}\"", KEPT + 4));
        assert_eq!(recent[KEPT - 1].message, "unknown target \"t5\"");
        assert_eq!(recent[0].code, "NotFound");

        let mut violations = Violations::new(20);
        for i in 0..10 {
            violations.push(Violation::new(format!("rooms[{i}]"), "é".repeat(MESSAGE_CHARS)));
        }
        failed.record("BatchEmit", &Error::InvalidArgument(violations));
        let newest = &failed.recent()[0];
        assert_eq!((newest.method, newest.code.as_str()), ("BatchEmit", "InvalidArgument"));
        assert!(
            newest.message.chars().count() <= MESSAGE_CHARS + 1,
            "{}",
            newest.message
        );
        assert!(newest.message.contains("rooms[0]"), "{}", newest.message);

        // Error messages are already bounded where they are made; the
        // console cuts any longer one to its own length.
        let long = cut("é".repeat(2 * MESSAGE_CHARS));
        assert_eq!(long.chars().count(), MESSAGE_CHARS + 1);
        assert!(long.ends_with('…'));
        assert_eq!(cut("short".into()), "short");
    }
}
