//! The protobuf codec every service uses: prost, with a small initial buffer per RPC.
//!
//! tonic's default reserves 8 KiB per RPC for encoding, and a WatchCalls stream keeps its buffer
//! for as long as it is open: with thousands of idle streams that buffer was most of their
//! memory. Buffers still grow for large messages (a page of 1000 calls).

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial encode and decode buffer of one RPC.
const BUFFER_SIZE: usize = 1024;
/// tonic's default: how much a stream encodes before it yields to other tasks.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// Named in `build.rs` (`codec_path`); generated clients and servers create it with `default()`.
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        SmallBufferCodec(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::new(BUFFER_SIZE, YIELD_THRESHOLD))
    }
}
