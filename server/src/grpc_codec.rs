//! The gRPC codec of the API: prost, except that a request that does not
//! decode is the caller's fault.
//!
//! tonic's prost codec answers INTERNAL to an undecodable request (the gRPC
//! convention for a corrupt stream). For this API the common cause is a
//! request the caller built wrongly, e.g. a `google.protobuf.Value` nested
//! beyond prost's recursion limit, so it is answered with INVALID_ARGUMENT
//! and the decoder's reason.

use std::marker::PhantomData;

use prost::Message;
use tonic::{
    Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// The codec used by the generated service code (`codec_path` in build.rs).
#[derive(Debug, Clone, Copy)]
pub struct ApiCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for ApiCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for ApiCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ApiDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ApiDecoder(ProstDecoder::default())
    }
}

/// A prost decoder that reports undecodable requests as INVALID_ARGUMENT.
#[derive(Debug)]
pub struct ApiDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default> Decoder for ApiDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0
            .decode(buf)
            .map_err(|s| Status::invalid_argument(format!("the request does not decode: {}", s.message())))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
