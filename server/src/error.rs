//! The gateway's error type and its mapping to gRPC status codes.
//!
//! Every answer to a bad request is bounded, whatever the request: at most
//! [`Limits::max_violations`](crate::config::Limits::max_violations) field
//! violations are listed (then one entry counting the rest), each field and
//! description is cut at a fixed length, and the status message at another,
//! so the `grpc-message` and `grpc-status-details-bin` trailers together
//! stay a few kB, far under the 8 KiB some clients accept (Python grpcio
//! turns trailers over 16 KiB into RESOURCE_EXHAUSTED). The log line of a
//! failed call is the same bounded message.
//!
//! A violation of a configured limit also carries the limit as data:
//! `google.rpc.ErrorInfo` (reason [`LIMIT_EXCEEDED`], domain [`DOMAIN`],
//! metadata `{limit name: value}`) and one `google.rpc.QuotaFailure`
//! violation per limit, so clients read limits without parsing text.

use std::{collections::HashMap, fmt, time::Duration};

use tonic::Code;
use tonic_types::{ErrorDetails, FieldViolation, QuotaViolation, StatusExt};

/// `google.rpc.ErrorInfo.reason` of a request over a configured limit.
pub const LIMIT_EXCEEDED: &str = "LIMIT_EXCEEDED";

/// `google.rpc.ErrorInfo.domain` of the gateway's errors.
pub const DOMAIN: &str = "emitgate";

/// Longest field path kept in a violation. Real paths are under 50 bytes
/// (`items[999].broadcast.except_rooms[999]`); the bound is a backstop.
const MAX_FIELD_BYTES: usize = 128;

/// Longest violation description kept: room for a reason and a quoted
/// excerpt of the offending value.
const MAX_DESCRIPTION_BYTES: usize = 256;

/// Longest status message (and log line of a failed call). It is sent
/// twice, as `grpc-message` (percent-encoded: up to 3 bytes per byte) and
/// inside `grpc-status-details-bin` (base64: 4 bytes per 3).
pub const MAX_MESSAGE_BYTES: usize = 512;

/// Most bytes of field violations (fields plus descriptions) in the
/// details, whatever `max_violations` is configured to: 2 kB of violations
/// is under 3 kB once base64-encoded in the trailer.
const MAX_DETAILS_BYTES: usize = 2048;

/// Longest excerpt of a caller's value (a target name, an idempotency key)
/// quoted in a message.
const MAX_QUOTED_BYTES: usize = 64;

/// A configured limit a request went over: its name as in the config
/// (`max_rooms`) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// The setting's name, e.g. `max_batch_items`.
    pub name: &'static str,
    /// The value in force.
    pub value: u64,
}

impl Limit {
    /// The limit `name` with value `value`.
    pub fn new(name: &'static str, value: usize) -> Self {
        Self {
            name,
            value: u64::try_from(value).unwrap_or(u64::MAX),
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field path, e.g. `rooms[2]` or `items[3].emit.event`.
    pub field: String,
    /// Why the value is invalid.
    pub description: String,
    /// The configured limit the field is over, if that is the reason.
    pub limit: Option<Limit>,
}

impl Violation {
    /// A violation of `field`; field and description are cut to their
    /// bounds.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: truncate(field.into(), MAX_FIELD_BYTES),
            description: truncate(description.into(), MAX_DESCRIPTION_BYTES),
            limit: None,
        }
    }

    /// A violation of `field` because it is over `limit`.
    pub fn over(field: impl Into<String>, description: impl Into<String>, limit: Limit) -> Self {
        Self {
            limit: Some(limit),
            ..Self::new(field, description)
        }
    }
}

/// The violations of a request: the first ones up to a cap, and a count of
/// the others (which are never built, so a request with a million bad
/// fields costs no more memory than one with twenty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Violations {
    listed: Vec<Violation>,
    omitted: usize,
    cap: usize,
    /// Every distinct limit violated, also among the omitted violations.
    limits: Vec<(String, Limit)>,
}

impl Violations {
    /// An empty list keeping at most `cap` violations.
    pub fn new(cap: usize) -> Self {
        Self { cap, ..Self::default() }
    }

    /// A list of one violation.
    pub fn one(v: Violation) -> Self {
        let mut list = Self::new(1);
        list.push(v);
        list
    }

    /// Adds a violation, or counts it when the cap is reached.
    pub fn push(&mut self, v: Violation) {
        if let Some(limit) = v.limit {
            self.note_limit(&v.field, limit);
        }
        if self.listed.len() < self.cap {
            self.listed.push(v);
        } else {
            self.omitted += 1;
        }
    }

    /// Counts a violation past the cap without building it; `limit` is the
    /// limit it is over, if any.
    pub fn push_with(&mut self, limit: Option<Limit>, build: impl FnOnce() -> Violation) {
        if self.listed.len() < self.cap {
            self.push(build());
        } else {
            self.omitted += 1;
            if let Some(limit) = limit
                && !self.limits.iter().any(|(_, l)| l.name == limit.name)
            {
                self.limits.push((build().field, limit));
            }
        }
    }

    fn note_limit(&mut self, field: &str, limit: Limit) {
        if !self.limits.iter().any(|(_, l)| l.name == limit.name) {
            self.limits.push((field.to_owned(), limit));
        }
    }

    /// Moves every violation of `other` in, under this list's cap.
    pub fn append(&mut self, other: Violations) {
        for (field, limit) in other.limits {
            self.note_limit(&field, limit);
        }
        for v in other.listed {
            if self.listed.len() < self.cap {
                self.listed.push(v);
            } else {
                self.omitted += 1;
            }
        }
        self.omitted += other.omitted;
    }

    /// Whether there is no violation.
    pub fn is_empty(&self) -> bool {
        self.listed.is_empty() && self.omitted == 0
    }

    /// How many violations there are, listed or not.
    pub fn len(&self) -> usize {
        self.listed.len() + self.omitted
    }

    /// The listed violations.
    pub fn listed(&self) -> &[Violation] {
        &self.listed
    }

    /// How many violations are past the cap.
    pub fn omitted(&self) -> usize {
        self.omitted
    }

    /// Each distinct configured limit violated, with the first field over it.
    pub fn limits(&self) -> &[(String, Limit)] {
        &self.limits
    }

    /// The listed violations that fit [`MAX_DETAILS_BYTES`], then one entry
    /// with an empty field counting the rest, when there are more.
    pub fn bounded(&self) -> Vec<Violation> {
        let mut out = Vec::with_capacity(self.listed.len() + 1);
        let mut bytes = 0;
        for v in &self.listed {
            bytes += v.field.len() + v.description.len();
            if bytes > MAX_DETAILS_BYTES {
                break;
            }
            out.push(v.clone());
        }
        let more = self.len() - out.len();
        if more > 0 {
            out.push(Violation::new(
                "",
                format!("{more} more violation{} not listed", if more == 1 { "" } else { "s" }),
            ));
        }
        out
    }
}

impl IntoIterator for Violations {
    type Item = Violation;
    type IntoIter = std::vec::IntoIter<Violation>;

    /// The listed violations.
    fn into_iter(self) -> Self::IntoIter {
        self.listed.into_iter()
    }
}

/// A caller's value quoted in a message: Debug-quoted, and cut after
/// [`MAX_QUOTED_BYTES`] with its full length noted.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.len() <= MAX_QUOTED_BYTES {
            write!(f, "{:?}", self.0)
        } else {
            let cut = floor_char_boundary(self.0, MAX_QUOTED_BYTES);
            write!(f, "{:?}… ({} bytes)", &self.0[..cut], self.0.len())
        }
    }
}

/// The largest char boundary of `s` at or below `at`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    if at >= s.len() {
        return s.len();
    }
    (0..=at).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0)
}

/// `s` cut to at most `max` bytes on a char boundary, ending with `…` when
/// cut.
pub fn truncate(mut s: String, max: usize) -> String {
    const ELLIPSIS: &str = "…";
    if s.len() > max {
        let cut = floor_char_boundary(&s, max.saturating_sub(ELLIPSIS.len()));
        s.truncate(cut);
        s.push_str(ELLIPSIS);
    }
    s
}

/// Everything a call can fail with. Each variant maps to one gRPC code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The request is invalid; its bad fields are listed (up to a cap).
    #[error("invalid request: {}", summary(.0))]
    InvalidArgument(Violations),

    /// The request names a target that is not configured.
    #[error("unknown target {}", Quoted(.0))]
    UnknownTarget(String),

    /// Redis could not be reached or failed the command.
    #[error("Redis of target {target:?} is unavailable: {reason}")]
    Unavailable {
        /// The target whose Redis failed.
        target: String,
        /// What failed.
        reason: String,
    },

    /// The AMQP broker of a target could not be reached, did not answer
    /// within the timeout, or refused the message.
    #[error("AMQP broker of target {target:?} is unavailable: {reason}")]
    BrokerUnavailable {
        /// The target whose broker failed.
        target: String,
        /// What failed.
        reason: String,
    },

    /// The target's dialect has no such operation.
    #[error("not supported by the {dialect:?} dialect of target {target:?}: {what}")]
    Unsupported {
        /// The target.
        target: String,
        /// Its dialect.
        dialect: &'static str,
        /// What is not supported.
        what: String,
    },

    /// The caller sent no API key, or an unknown one.
    #[error("{0}")]
    Unauthenticated(String),

    /// The caller's API key does not cover this call.
    #[error("{0}")]
    PermissionDenied(String),

    /// The caller's API key is over its rate.
    #[error("API key {key:?} is over its rate limit; retry in {retry_after:?}")]
    RateLimited {
        /// The key's id.
        key: String,
        /// When the budget allows the call again.
        retry_after: Duration,
    },

    /// Too many calls are in flight.
    #[error("the gateway is at its limit of {limit} calls in flight; retry shortly")]
    Overloaded {
        /// The configured limit.
        limit: usize,
    },

    /// The caller's deadline passed before the work started.
    #[error("the call's deadline passed before it was published")]
    DeadlineExceeded,

    /// The caller's deadline passed while Redis was being written: the
    /// message may or may not have been published.
    #[error("the call's deadline passed while publishing; the outcome is unknown (retry with an idempotency key)")]
    DeadlineExceededWhilePublishing,

    /// The gateway is shutting down.
    #[error("the gateway is shutting down")]
    ShuttingDown,

    /// A call with the same idempotency key is still in progress.
    #[error("a call with idempotency key {} is in progress; retry later", Quoted(.0))]
    IdempotencyInProgress(String),

    /// A request/response RPC would go over a gateway-wide limit (waiting
    /// requests or buffered answer bytes).
    #[error("the gateway is at its limit {} = {}; retry shortly", .0.name, .0.value)]
    FeedbackLimit(Limit),

    /// Redis did not answer within the configured timeout.
    #[error("Redis of target {target:?} did not answer within {timeout:?}")]
    RedisTimeout {
        /// The target whose Redis timed out.
        target: String,
        /// The configured timeout.
        timeout: Duration,
    },
}

impl Error {
    /// The gRPC code of this error.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::UnknownTarget(_) => Code::NotFound,
            Error::Unsupported { .. } => Code::Unimplemented,
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::RateLimited { .. } | Error::Overloaded { .. } | Error::FeedbackLimit(_) => Code::ResourceExhausted,
            Error::DeadlineExceeded | Error::DeadlineExceededWhilePublishing => Code::DeadlineExceeded,
            Error::ShuttingDown => Code::Unavailable,
            Error::IdempotencyInProgress(_) => Code::Aborted,
            // A timeout is reported as UNAVAILABLE, not DEADLINE_EXCEEDED:
            // it is the dependency that is down, not the caller's deadline.
            Error::Unavailable { .. } | Error::RedisTimeout { .. } | Error::BrokerUnavailable { .. } => {
                Code::Unavailable
            }
        }
    }
}

impl Error {
    /// The error's message cut to [`MAX_MESSAGE_BYTES`]: the status message
    /// and the log line of a failed call.
    pub fn message(&self) -> String {
        truncate(self.to_string(), MAX_MESSAGE_BYTES)
    }
}

/// The retry delay suggested when too many calls are in flight: long
/// enough for in-flight calls (bounded by the Redis timeout) to drain a bit.
const OVERLOAD_RETRY: Duration = Duration::from_millis(100);

/// The violations as one line, stopping before [`MAX_MESSAGE_BYTES`] with a
/// count of the ones left out (the details list them).
fn summary(violations: &Violations) -> String {
    // The prefix "invalid request: " and the tail fit in the rest.
    const BUDGET: usize = MAX_MESSAGE_BYTES - 64;
    let mut out = String::new();
    let mut shown = 0;
    for v in violations.listed() {
        let sep = if out.is_empty() { "" } else { "; " };
        let len = sep.len() + v.field.len() + 2 + v.description.len();
        if out.len() + len > BUDGET {
            break;
        }
        out.push_str(sep);
        if v.field.is_empty() {
            out.push_str(&v.description);
        } else {
            out.push_str(&v.field);
            out.push_str(": ");
            out.push_str(&v.description);
        }
        shown += 1;
    }
    let more = violations.len() - shown;
    if more > 0 {
        let sep = if out.is_empty() { "" } else { "; " };
        out.push_str(&format!("{sep}and {more} more"));
    }
    out
}

/// The details of an invalid request: BadRequest, and for configured
/// limits ErrorInfo plus QuotaFailure.
fn invalid_request_details(violations: &Violations) -> ErrorDetails {
    let listed = violations
        .bounded()
        .into_iter()
        .map(|v| FieldViolation::new(v.field, v.description))
        .collect::<Vec<_>>();
    let mut details = ErrorDetails::with_bad_request(listed);
    add_limit_details(&mut details, violations.limits());
    details
}

/// Adds `ErrorInfo` (metadata `{name: value}`) and `QuotaFailure` (one
/// violation per limit: the first field over it, and `name = value`).
fn add_limit_details(details: &mut ErrorDetails, limits: &[(String, Limit)]) {
    if limits.is_empty() {
        return;
    }
    let metadata: HashMap<String, String> = limits
        .iter()
        .map(|(_, l)| (l.name.to_owned(), l.value.to_string()))
        .collect();
    details.set_error_info(LIMIT_EXCEEDED, DOMAIN, metadata);
    let quota = limits
        .iter()
        .map(|(field, l)| QuotaViolation::new(field.clone(), format!("{} = {}", l.name, l.value)))
        .collect::<Vec<_>>();
    details.set_quota_failure(quota);
}

/// The answer to a request over `max_message_bytes`: RESOURCE_EXHAUSTED
/// (the gRPC convention for a message over the receiver's limit) naming the
/// limit, with the limit as data.
pub fn message_too_large(max_message_bytes: usize) -> tonic::Status {
    let limit = Limit::new("max_message_bytes", max_message_bytes);
    let mut details = ErrorDetails::new();
    add_limit_details(&mut details, &[(String::new(), limit)]);
    tonic::Status::with_error_details(
        Code::ResourceExhausted,
        format!("the request is over the limit max_message_bytes = {max_message_bytes} bytes"),
        details,
    )
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let message = e.message();
        match e {
            Error::InvalidArgument(violations) => {
                tonic::Status::with_error_details(Code::InvalidArgument, message, invalid_request_details(&violations))
            }
            Error::RateLimited { retry_after, .. } => tonic::Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(retry_after)),
            ),
            Error::Overloaded { .. } => tonic::Status::with_error_details(
                Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(OVERLOAD_RETRY)),
            ),
            Error::FeedbackLimit(limit) => {
                let mut details = ErrorDetails::with_retry_info(Some(OVERLOAD_RETRY));
                add_limit_details(&mut details, &[(String::new(), limit)]);
                tonic::Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            other => tonic::Status::new(other.code(), message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn many(n: usize, description: &str) -> Violations {
        let mut v = Violations::new(20);
        for i in 0..n {
            v.push(Violation::new(format!("rooms[{i}]"), description));
        }
        v
    }

    #[test]
    fn messages_and_log_lines_are_bounded() {
        let long = "é".repeat(10_000);
        for e in [
            Error::InvalidArgument(many(1000, &long)),
            Error::InvalidArgument(many(1000, "room names must not be empty")),
            Error::UnknownTarget(long.clone()),
            Error::IdempotencyInProgress(long.clone()),
        ] {
            let m = e.message();
            assert!(m.len() <= MAX_MESSAGE_BYTES, "{} bytes: {m}", m.len());
            let status = tonic::Status::from(e);
            assert_eq!(status.message(), m);
        }
        let m = Error::InvalidArgument(many(1000, "room names must not be empty")).message();
        assert!(
            m.starts_with("invalid request: rooms[0]: room names must not be empty; rooms[1]"),
            "{m}"
        );
        assert!(m.ends_with(" more"), "{m}");
        assert_eq!(Error::UnknownTarget("eu".into()).message(), r#"unknown target "eu""#);
    }

    #[test]
    fn fields_descriptions_and_details_are_bounded() {
        let v = Violation::new("f".repeat(1000), "é".repeat(1000));
        assert!(v.field.len() <= MAX_FIELD_BYTES && v.field.ends_with('…'));
        assert!(v.description.len() <= MAX_DESCRIPTION_BYTES);
        // 20 violations of 384 bytes are over the details budget: fewer are
        // listed, and the last entry counts the rest.
        let mut list = Violations::new(20);
        for _ in 0..20 {
            list.push(Violation::new("f".repeat(1000), "d".repeat(1000)));
        }
        let shown = list.bounded();
        let bytes: usize = shown.iter().map(|v| v.field.len() + v.description.len()).sum();
        assert!(bytes <= MAX_DETAILS_BYTES + 64, "{bytes}");
        assert_eq!(
            shown.last().unwrap().description,
            format!("{} more violations not listed", 21 - shown.len())
        );
    }

    #[test]
    fn appending_keeps_the_cap_and_every_limit() {
        let mut all = Violations::new(2);
        let mut a = Violations::new(20);
        a.push(Violation::new("a", "x"));
        a.push(Violation::over("b", "x", Limit::new("max_rooms", 3)));
        let mut b = Violations::new(20);
        b.push(Violation::over("c", "x", Limit::new("max_args", 2)));
        b.push(Violation::over("d", "x", Limit::new("max_rooms", 3)));
        all.append(a);
        all.append(b);
        assert_eq!(all.len(), 4);
        assert_eq!(all.listed().len(), 2);
        let names: Vec<_> = all.limits().iter().map(|(f, l)| (f.as_str(), l.name)).collect();
        assert_eq!(names, [("b", "max_rooms"), ("c", "max_args")]);
    }
}
