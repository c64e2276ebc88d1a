//! The WebSocket protocol (RFC 6455), server side, as much as the Kubernetes streaming
//! protocols use: the upgrade handshake, reading masked client frames into whole messages
//! (answering pings and closes), and writing unmasked frames.
//!
//! It knows nothing of channels or of what the messages mean (that is [`super::streaming`]'s),
//! and supports no extensions.

use base64::Engine;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The GUID the handshake's accept key is derived with.
const ACCEPT_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// The largest message accepted from a client.
const MAX_MESSAGE: usize = 16 << 20;

/// Frame opcodes.
const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// Why reading from a client failed.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(&'static str),
}

/// Whether a request asks for a WebSocket upgrade (`Connection: upgrade`, `Upgrade: websocket`).
pub fn is_websocket_request(headers: &http::HeaderMap) -> bool {
    let has_token = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .unwrap_or("")
                .split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    };
    has_token(http::header::CONNECTION, "upgrade") && has_token(http::header::UPGRADE, "websocket")
}

/// The protocols a client asked for, in its order.
pub fn requested_protocols(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|protocol| protocol.trim().to_owned())
        .filter(|protocol| !protocol.is_empty())
        .collect()
}

/// The `Sec-WebSocket-Accept` value for a client's key.
pub fn accept_key(key: &str) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    context.update(key.trim().as_bytes());
    context.update(ACCEPT_GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(context.finish().as_ref())
}

/// A whole message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    Text(Vec<u8>),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    /// The client's close frame (its payload: a code and a reason).
    Close(Vec<u8>),
}

/// Reads client messages; control frames are returned as they come, data frames assembled.
#[derive(Debug)]
pub struct Reader<R> {
    inner: R,
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> Reader<R> {
    pub fn new(inner: R) -> Self {
        Reader { inner, partial: None }
    }

    /// The next message; `None` when the connection ended.
    pub async fn next(&mut self) -> Result<Option<Message>, WsError> {
        loop {
            let mut head = [0u8; 2];
            match self.inner.read_exact(&mut head).await {
                Ok(_) => {}
                Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
                Err(err) => return Err(err.into()),
            }
            let fin = head[0] & 0x80 != 0;
            if head[0] & 0x70 != 0 {
                return Err(WsError::Protocol("reserved bits set"));
            }
            let opcode = head[0] & 0x0f;
            let masked = head[1] & 0x80 != 0;
            let length = match head[1] & 0x7f {
                126 => u64::from(self.inner.read_u16().await?),
                127 => self.inner.read_u64().await?,
                short => u64::from(short),
            };
            let length = usize::try_from(length)
                .ok()
                .filter(|length| *length <= MAX_MESSAGE)
                .ok_or(WsError::Protocol("frame too large"))?;
            let mut mask = [0u8; 4];
            if masked {
                self.inner.read_exact(&mut mask).await?;
            }
            let mut payload = vec![0u8; length];
            self.inner.read_exact(&mut payload).await?;
            if masked {
                for (i, byte) in payload.iter_mut().enumerate() {
                    *byte ^= mask[i % 4];
                }
            }
            match opcode {
                CLOSE => return Ok(Some(Message::Close(payload))),
                PING => return Ok(Some(Message::Ping(payload))),
                PONG => {}
                TEXT | BINARY if self.partial.is_none() => {
                    if fin {
                        return Ok(Some(data_message(opcode, payload)));
                    }
                    self.partial = Some((opcode, payload));
                }
                CONTINUATION => {
                    let Some((first, mut data)) = self.partial.take() else {
                        return Err(WsError::Protocol("continuation without a message"));
                    };
                    if data.len() + payload.len() > MAX_MESSAGE {
                        return Err(WsError::Protocol("message too large"));
                    }
                    data.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some(data_message(first, data)));
                    }
                    self.partial = Some((first, data));
                }
                _ => return Err(WsError::Protocol("unexpected opcode")),
            }
        }
    }
}

fn data_message(opcode: u8, payload: Vec<u8>) -> Message {
    if opcode == TEXT {
        Message::Text(payload)
    } else {
        Message::Binary(payload)
    }
}

/// A byte stream tunnelled in a WebSocket's binary messages (kubectl's SPDY over WebSocket):
/// what the client sends in binary messages is read from the returned end, what is written
/// to it goes out in binary messages; pings are answered, a close or the connection's end
/// ends the stream.
pub fn tunnel<S: AsyncRead + AsyncWrite + Send + 'static>(io: S) -> tokio::io::DuplexStream {
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (read, mut write) = tokio::io::split(io);
    let (mut from_tunnel, mut into_tunnel) = tokio::io::split(ours);
    let (pong_tx, mut pongs) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    tokio::spawn(async move {
        let mut reader = Reader::new(read);
        while let Ok(Some(message)) = reader.next().await {
            match message {
                Message::Binary(data) => {
                    if into_tunnel.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Message::Ping(payload) => {
                    let _ = pong_tx.send(payload).await;
                }
                Message::Close(_) => break,
                Message::Text(_) => {}
            }
        }
        let _ = into_tunnel.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                Some(payload) = pongs.recv() => {
                    if write_frame(&mut write, PONG, &payload).await.is_err() {
                        return;
                    }
                }
                read = from_tunnel.read(&mut buf) => match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if write_frame(&mut write, BINARY, &buf[..n]).await.is_err() {
                            return;
                        }
                    }
                },
            }
        }
        let _ = write_frame(&mut write, CLOSE, &1000u16.to_be_bytes()).await;
        let _ = write.shutdown().await;
    });
    theirs
}

/// Encodes one unmasked, final frame.
pub fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 10);
    out.push(0x80 | opcode);
    match payload.len() {
        short @ 0..=125 => out.push(short as u8),
        medium @ 126..=0xffff => {
            out.push(126);
            out.extend_from_slice(&(medium as u16).to_be_bytes());
        }
        long => {
            out.push(127);
            out.extend_from_slice(&(long as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(payload);
    out
}

/// Writes `frame(opcode, payload)`.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    opcode: u8,
    payload: &[u8],
) -> std::io::Result<()> {
    writer.write_all(&frame(opcode, payload)).await?;
    writer.flush().await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    fn masked(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [1u8, 2, 3, 4];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        if payload.len() < 126 {
            out.push(0x80 | payload.len() as u8);
        } else {
            out.push(0x80 | 126);
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    #[tokio::test]
    async fn messages_are_unmasked_and_fragments_joined_around_control_frames() {
        let long = vec![7u8; 300];
        let mut input = masked(BINARY, true, b"\x00hello");
        input.extend(masked(TEXT, false, b"ab"));
        input.extend(masked(PING, true, b"p"));
        input.extend(masked(CONTINUATION, true, b"cd"));
        input.extend(masked(BINARY, true, &long));
        input.extend(masked(CLOSE, true, &[3, 232]));
        let mut reader = Reader::new(input.as_slice());
        assert_eq!(
            reader.next().await.unwrap(),
            Some(Message::Binary(b"\x00hello".to_vec()))
        );
        assert_eq!(reader.next().await.unwrap(), Some(Message::Ping(b"p".to_vec())));
        assert_eq!(
            reader.next().await.unwrap(),
            Some(Message::Text(b"abcd".to_vec()))
        );
        assert_eq!(reader.next().await.unwrap(), Some(Message::Binary(long)));
        assert_eq!(reader.next().await.unwrap(), Some(Message::Close(vec![3, 232])));
        assert_eq!(reader.next().await.unwrap(), None);
    }

    #[test]
    fn frames_use_the_shortest_length_encoding() {
        assert_eq!(frame(BINARY, b"\x01hi"), vec![0x82, 3, 1, b'h', b'i']);
        let medium = frame(BINARY, &[0u8; 200]);
        assert_eq!(&medium[..4], &[0x82, 126, 0, 200]);
        let long = frame(BINARY, &vec![0u8; 70_000]);
        assert_eq!(&long[..2], &[0x82, 127]);
        assert_eq!(long.len(), 70_000 + 10);
    }

    #[test]
    fn upgrade_requests_are_recognised() {
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        headers.insert(http::header::UPGRADE, "websocket".parse().unwrap());
        headers.insert(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            "v5.channel.k8s.io, v4.channel.k8s.io".parse().unwrap(),
        );
        assert!(is_websocket_request(&headers));
        assert_eq!(
            requested_protocols(&headers),
            ["v5.channel.k8s.io", "v4.channel.k8s.io"]
        );
        headers.insert(http::header::UPGRADE, "SPDY/3.1".parse().unwrap());
        assert!(!is_websocket_request(&headers));
    }
}
