//! The gateway's error type and its mapping to gRPC status codes.

use std::time::Duration;

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The field path, e.g. `rooms[2]` or `items[3].emit.event`.
    pub field: String,
    /// Why the value is invalid.
    pub description: String,
}

impl Violation {
    /// A violation of `field`.
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// Everything a call can fail with. Each variant maps to one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is invalid; every bad field is listed.
    #[error("invalid request: {}", summary(.0))]
    InvalidArgument(Vec<Violation>),

    /// The request names a target that is not configured.
    #[error("unknown target {0:?}")]
    UnknownTarget(String),

    /// Redis could not be reached or failed the command.
    #[error("Redis of target {target:?} is unavailable: {reason}")]
    Unavailable {
        /// The target whose Redis failed.
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
    #[error("a call with idempotency key {0:?} is in progress; retry later")]
    IdempotencyInProgress(String),

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
            Error::RateLimited { .. } | Error::Overloaded { .. } => Code::ResourceExhausted,
            Error::DeadlineExceeded | Error::DeadlineExceededWhilePublishing => Code::DeadlineExceeded,
            Error::ShuttingDown => Code::Unavailable,
            Error::IdempotencyInProgress(_) => Code::Aborted,
            // A timeout is reported as UNAVAILABLE, not DEADLINE_EXCEEDED:
            // it is the dependency that is down, not the caller's deadline.
            Error::Unavailable { .. } | Error::RedisTimeout { .. } => Code::Unavailable,
        }
    }
}

/// The retry delay suggested when too many calls are in flight: long
/// enough for in-flight calls (bounded by the Redis timeout) to drain a bit.
const OVERLOAD_RETRY: Duration = Duration::from_millis(100);

fn summary(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl From<Error> for tonic::Status {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                tonic::Status::with_error_details(Code::InvalidArgument, message, details)
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
            other => tonic::Status::new(other.code(), message),
        }
    }
}
