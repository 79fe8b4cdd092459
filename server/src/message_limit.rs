//! Requests over `max_message_bytes` answer RESOURCE_EXHAUSTED naming the
//! limit.
//!
//! tonic refuses a request message over `max_decoding_message_size` before
//! reading it, which is right, but answers OUT_OF_RANGE; the gRPC convention
//! (followed by grpc-go, grpc-java and grpc-dotnet) for a message over the
//! receiver's limit is RESOURCE_EXHAUSTED. [`MessageLimit`] wraps the API's
//! service and rewrites that one answer. The API itself never answers
//! OUT_OF_RANGE, so the code alone identifies it.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tonic::{
    Code, Status,
    codegen::{Service, http},
    server::NamedService,
};

/// The API service, with its size refusals answered as RESOURCE_EXHAUSTED.
#[derive(Debug, Clone)]
pub struct MessageLimit<S> {
    inner: S,
    max_message_bytes: usize,
}

impl<S> MessageLimit<S> {
    /// Wraps `inner`, whose decoding limit is `max_message_bytes`.
    pub fn new(inner: S, max_message_bytes: usize) -> Self {
        Self {
            inner,
            max_message_bytes,
        }
    }
}

impl<S: NamedService> NamedService for MessageLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<http::Request<B>> for MessageLimit<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Unpin,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = LimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        LimitFuture {
            inner: self.inner.call(request),
            max_message_bytes: self.max_message_bytes,
        }
    }
}

/// The wrapped call's answer, rewritten when it is tonic's size refusal.
#[derive(Debug)]
pub struct LimitFuture<F> {
    inner: F,
    max_message_bytes: usize,
}

impl<F, R, E> Future for LimitFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let mut response = ready!(Pin::new(&mut this.inner).poll(cx))?;
        // A refused request gets a trailers-only answer: the status is in
        // the headers.
        if Status::from_header_map(response.headers()).is_some_and(|s| s.code() == Code::OutOfRange) {
            let headers = response.headers_mut();
            for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
                headers.remove(name);
            }
            // The status is built by the gateway and always encodes.
            let _ = crate::error::message_too_large(this.max_message_bytes).add_header(headers);
        }
        Poll::Ready(Ok(response))
    }
}
