//! Client connections no one can hoard: a cap on how many are open, a deadline for the HTTP/2
//! handshake (or an HTTP/1.1 request's first byte), and the open-file limit raised so the cap,
//! not the kernel, decides.
//!
//! Neither tonic 0.14 nor hyper 1.x bounds the HTTP/2 handshake (hyper's `header_read_timeout`
//! is HTTP/1 only; hyperium/hyper#4172 proposed one for HTTP/2): h2 waits for a client's preface
//! forever and keepalive pings start only once it is done, so a connection that sends nothing
//! (or half the preface) would hold a file descriptor until the process ends, and hold a
//! graceful shutdown too (hyper defers it until the handshake completes). Each accepted
//! socket is therefore wrapped in a [`Connection`] whose reads fail once the deadline passes
//! before the preface and the first SETTINGS frame arrived; hyper then drops the connection.
//! Accepting is ours too (not tonic's `TcpIncoming`), so a connection past the cap is closed
//! at once and `accept` failing for lack of descriptors backs off instead of spinning.

use std::{
    convert::Infallible,
    future::Future,
    io,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
    time::Sleep,
};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// The fixed 24 bytes every HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8; PREFACE_LENGTH] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const PREFACE_LENGTH: usize = 24;
/// A frame header: 3 bytes of payload length, type, flags, stream id (RFC 9113 §4.1).
const FRAME_HEADER_LENGTH: usize = 9;
/// The preface is followed by a SETTINGS frame; its header ends here.
const FIRST_FRAME_END: usize = PREFACE_LENGTH + FRAME_HEADER_LENGTH;
/// Descriptors kept for everything but client connections: the database pool, webhook
/// requests, the metrics listener, files.
const RESERVED_FILES: u64 = 256;
/// Pause after `accept` fails for lack of resources (EMFILE, ENOBUFS...): retrying at once
/// would spin a core while nothing can change.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// How many connections may be open and how long one has to finish its handshake.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
}

/// Raises the soft open-file limit to the hard one, so the connection cap is what limits
/// connections. Returns the soft limit in force afterwards, if it can be read.
pub fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};

    let (soft, hard) = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok(limits) => limits,
        Err(error) => {
            tracing::warn!(%error, "cannot read the open-file limit");
            return None;
        }
    };
    if soft >= hard {
        tracing::info!(limit = soft, "open-file limit is already at its hard limit");
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => {
            tracing::info!(from = soft, to = hard, "raised the open-file limit");
            Some(hard)
        }
        Err(error) => {
            tracing::warn!(%error, limit = soft, hard, "cannot raise the open-file limit");
            Some(soft)
        }
    }
}

/// `max_connections`, lowered when the open-file limit could not hold that many connections
/// besides the descriptors the rest of the process needs: past that limit `accept` fails and
/// clients wait in the backlog instead of being turned away.
pub fn usable_connection_limit(max_connections: usize) -> usize {
    let Ok((soft, _)) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
    else {
        return max_connections;
    };
    let room = usize::try_from(soft.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
    if max_connections > room {
        tracing::warn!(
            max_connections,
            open_file_limit = soft,
            usable = room.max(1),
            "the open-file limit cannot hold CALLSD_MAX_CONNECTIONS: lowering it"
        );
        return room.max(1);
    }
    max_connections
}

/// The accepted connections of `listener` as tonic's `serve_with_incoming` takes them: past
/// the cap a connection is closed at once; each one carries its handshake deadline. Once
/// `stop` fires, connections still in their handshake are closed: hyper's graceful shutdown
/// would otherwise wait for their preface (until the deadline) before letting them go.
pub fn accept(
    listener: TcpListener,
    limits: ConnectionLimits,
    stop: CancellationToken,
) -> impl Stream<Item = Result<Connection, Infallible>> {
    let acceptor = Acceptor {
        listener,
        slots: Arc::new(Semaphore::new(limits.max_connections.max(1))),
        handshake_timeout: limits.handshake_timeout,
        stop,
        refusing: false,
    };
    futures::stream::unfold(acceptor, |mut acceptor| async move {
        let connection = acceptor.next().await;
        Some((Ok(connection), acceptor))
    })
}

struct Acceptor {
    listener: TcpListener,
    /// One permit per open connection; a connection gives its own back when it is dropped.
    slots: Arc<Semaphore>,
    handshake_timeout: Duration,
    stop: CancellationToken,
    /// Whether the last connection was refused, so the cap is logged once per episode rather
    /// than once per connection of a flood.
    refusing: bool,
}

impl Acceptor {
    /// The next connection within the cap; waits as long as it takes.
    async fn next(&mut self) -> Connection {
        loop {
            let stream = match self.listener.accept().await {
                Ok((stream, _peer)) => stream,
                Err(error) if is_per_connection(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "cannot accept connections; retrying shortly");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            };
            let Ok(slot) = self.slots.clone().try_acquire_owned() else {
                metrics::counter!("callsd_connections_refused_total").increment(1);
                if !self.refusing {
                    tracing::warn!("too many open connections (CALLSD_MAX_CONNECTIONS): closing new ones until some close");
                    self.refusing = true;
                }
                drop(stream);
                continue;
            };
            self.refusing = false;
            // Nagle would hold a response's trailers until the client's delayed ACK (~40 ms).
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot set TCP_NODELAY");
            }
            return Connection::new(stream, slot, self.handshake_timeout, &self.stop);
        }
    }
}

/// Errors that concern only the connection being accepted; the next one may be fine.
fn is_per_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// An accepted client connection: holds its slot under the cap until dropped, and fails its
/// reads once the handshake deadline passes before the handshake arrived.
pub struct Connection {
    stream: TcpStream,
    /// `None` once the handshake has arrived: from then on reads are the socket's own.
    handshake: Option<Handshake>,
    _slot: Slot,
}

impl Connection {
    fn new(
        stream: TcpStream,
        slot: OwnedSemaphorePermit,
        timeout: Duration,
        stop: &CancellationToken,
    ) -> Self {
        Connection {
            stream,
            handshake: Some(Handshake {
                deadline: Box::pin(tokio::time::sleep(timeout)),
                stop: Box::pin(stop.clone().cancelled_owned()),
                received: 0,
                first_frame_header: [0; FRAME_HEADER_LENGTH],
            }),
            _slot: Slot::new(slot),
        }
    }
}

/// A place under the cap; dropping it frees the place.
struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    fn new(permit: OwnedSemaphorePermit) -> Self {
        metrics::gauge!("callsd_connections_open").increment(1.0);
        Slot { _permit: permit }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        metrics::gauge!("callsd_connections_open").decrement(1.0);
    }
}

/// Progress through the client's preface and first SETTINGS frame. Only counts bytes (and
/// keeps the first frame's length): checking them is h2's job. A first byte that departs from
/// the preface is HTTP/1.1 (gRPC-Web): hyper's own header-read timeout guards it from there.
struct Handshake {
    deadline: Pin<Box<Sleep>>,
    stop: Pin<Box<WaitForCancellationFutureOwned>>,
    received: usize,
    first_frame_header: [u8; FRAME_HEADER_LENGTH],
}

impl Handshake {
    /// Takes note of bytes just read; true once the preface and the whole first frame are in.
    fn observe(&mut self, bytes: &[u8]) -> bool {
        for (offset, byte) in bytes.iter().enumerate() {
            let position = self.received + offset;
            if position < PREFACE_LENGTH && *byte != PREFACE[position] {
                return true;
            }
            if (PREFACE_LENGTH..FIRST_FRAME_END).contains(&position) {
                self.first_frame_header[position - PREFACE_LENGTH] = *byte;
            }
        }
        self.received += bytes.len();
        if self.received < FIRST_FRAME_END {
            return false;
        }
        let [high, middle, low, ..] = self.first_frame_header;
        let payload_length = usize::from(high) << 16 | usize::from(middle) << 8 | usize::from(low);
        self.received >= FIRST_FRAME_END + payload_length
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let already_filled = buffer.filled().len();
        match Pin::new(&mut this.stream).poll_read(context, buffer) {
            Poll::Ready(Ok(())) => {
                if let Some(handshake) = &mut this.handshake {
                    if handshake.observe(&buffer.filled()[already_filled..]) {
                        this.handshake = None;
                    }
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                let Some(handshake) = &mut this.handshake else {
                    return Poll::Pending;
                };
                // Polled only while waiting for bytes, so the timer wakes the reader on time.
                if handshake.stop.as_mut().poll(context).is_ready() {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "shutting down before the HTTP/2 handshake",
                    )));
                }
                if handshake.deadline.as_mut().poll(context).is_pending() {
                    return Poll::Pending;
                }
                metrics::counter!("callsd_connections_handshake_timeouts_total").increment(1);
                tracing::debug!(
                    received = handshake.received,
                    "closing a connection that did not finish its HTTP/2 handshake in time"
                );
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no HTTP/2 handshake before CALLSD_HANDSHAKE_TIMEOUT",
                )))
            }
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(context, bytes)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(context)
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(context)
    }
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake() -> Handshake {
        Handshake {
            deadline: Box::pin(tokio::time::sleep(Duration::from_secs(1))),
            stop: Box::pin(CancellationToken::new().cancelled_owned()),
            received: 0,
            first_frame_header: [0; FRAME_HEADER_LENGTH],
        }
    }

    #[tokio::test]
    async fn the_handshake_is_in_once_the_preface_and_the_whole_first_frame_are() {
        let mut bytes = PREFACE.to_vec();
        // SETTINGS with one 6-byte setting.
        bytes.extend_from_slice(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 100]);
        let mut whole = handshake();
        assert!(whole.observe(&bytes));

        let mut byte_by_byte = handshake();
        let (last, before) = bytes.split_last().unwrap();
        for byte in before {
            assert!(!byte_by_byte.observe(std::slice::from_ref(byte)));
        }
        assert!(byte_by_byte.observe(std::slice::from_ref(last)));
    }

    #[tokio::test]
    async fn an_http1_request_hands_over_at_its_first_byte_unlike_the_preface() {
        // "POST" shares its first byte with "PRI": the second one tells.
        let mut http1 = handshake();
        assert!(!http1.observe(b"P"));
        assert!(http1.observe(b"OST /calls.v1.CallService/GetCall HTTP/1.1\r\n"));
    }

    #[tokio::test]
    async fn half_a_preface_is_not_a_handshake() {
        let mut partial = handshake();
        assert!(!partial.observe(&PREFACE[..12]));
        assert!(!partial.observe(&PREFACE[12..]));
        assert!(!partial.observe(&[0, 0, 0, 4]));
    }
}
