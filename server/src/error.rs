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
            // A timeout is reported as UNAVAILABLE, not DEADLINE_EXCEEDED:
            // it is the dependency that is down, not the caller's deadline.
            Error::Unavailable { .. } | Error::RedisTimeout { .. } => Code::Unavailable,
        }
    }
}

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
            other => tonic::Status::new(other.code(), message),
        }
    }
}
