//! Port-forward as kubectl speaks it: SPDY/3.1 (the frames of moby/spdystream, which client-go
//! uses), either on the upgraded connection itself or tunnelled in WebSocket binary messages
//! (KEP-4006, subprotocol `SPDY/3.1+portforward.k8s.io`, kubectl 1.31+'s default).
//!
//! kubectl opens two streams per local connection, `streamtype: error` then `streamtype: data`,
//! both with the same `port` and `requestid` headers; the server answers each SYN_STREAM with an
//! empty SYN_REPLY, connects to the pod's port when both have arrived, copies bytes both ways,
//! writes a failure to the error stream, and ends both streams (FIN) when the connection ends.

use std::collections::HashMap;

use futures::{SinkExt as _, StreamExt as _};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, DuplexStream};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_util::sync::CancellationToken;

use super::inflate::{Deflater, Inflater};
use super::streams;

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const FLAG_FIN: u8 = 0x01;
/// Largest DATA payload sent (spdystream reads any size; keep frames modest).
const MAX_DATA: usize = 32 * 1024;

/// The SPDY/3 header compression dictionary (draft 3, section 2.6.10.1): length-prefixed
/// header names and values, then a run of common text.
pub fn dictionary() -> Vec<u8> {
    const WORDS: &[&str] = &[
        "options",
        "head",
        "post",
        "put",
        "delete",
        "trace",
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "accept-ranges",
        "age",
        "allow",
        "authorization",
        "cache-control",
        "connection",
        "content-base",
        "content-encoding",
        "content-language",
        "content-length",
        "content-location",
        "content-md5",
        "content-range",
        "content-type",
        "date",
        "etag",
        "expect",
        "expires",
        "from",
        "host",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "last-modified",
        "location",
        "max-forwards",
        "pragma",
        "proxy-authenticate",
        "proxy-authorization",
        "range",
        "referer",
        "retry-after",
        "server",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "vary",
        "via",
        "warning",
        "www-authenticate",
        "method",
        "get",
        "status",
        "200 OK",
        "version",
        "HTTP/1.1",
        "url",
        "public",
        "set-cookie",
        "keep-alive",
        "origin",
    ];
    const TAIL: &str = "100101201202205206300302303304305306307402405406407408409410411412413414\
        415416417502504505203 Non-Authoritative Information204 No Content301 Moved Permanently\
        400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error\
        501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct \
        Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,\
        image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,\
        publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.";
    let mut d = Vec::with_capacity(1500);
    for w in WORDS {
        // Every word is a few bytes long.
        d.extend_from_slice(&(w.len() as u32).to_be_bytes());
        d.extend_from_slice(w.as_bytes());
    }
    d.extend_from_slice(TAIL.as_bytes());
    d
}

/// A WebSocket carrying SPDY (KEP-4006) as a byte stream: each binary message is the next
/// bytes of the SPDY connection.
pub fn tunnel<S>(ws: tokio_tungstenite::WebSocketStream<S>) -> DuplexStream
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (near, mut far) = tokio::io::duplex(256 * 1024);
    tokio::spawn(async move {
        let (mut sink, mut incoming) = ws.split();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                msg = incoming.next() => match msg {
                    Some(Ok(Message::Binary(b))) => {
                        if far.write_all(&b).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                    Some(Ok(_)) => {}
                },
                n = far.read(&mut buf) => match n {
                    Ok(0) | Err(_) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code: CloseCode::Normal,
                                reason: "".into(),
                            })))
                            .await;
                        break;
                    }
                    Ok(n) => {
                        if sink.send(Message::binary(buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
    });
    near
}

fn control(kind: u16, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&(0x8003u16).to_be_bytes());
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    // Payloads here are small (headers, ids, messages): well under 2^24 bytes.
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

fn data(stream: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + payload.len());
    f.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    f.push(flags);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    f.extend_from_slice(payload);
    f
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A decompressed SPDY/3 name/value block.
fn parse_headers(block: &[u8]) -> Option<HashMap<String, String>> {
    let n = u32_at(block, 0)?;
    let mut at = 4;
    let mut out = HashMap::new();
    for _ in 0..n {
        let len = u32_at(block, at)? as usize;
        let name = block.get(at + 4..at + 4 + len)?;
        at += 4 + len;
        let len = u32_at(block, at)? as usize;
        let value = block.get(at + 4..at + 4 + len)?;
        at += 4 + len;
        out.insert(
            String::from_utf8_lossy(name).to_ascii_lowercase(),
            String::from_utf8_lossy(value).into_owned(),
        );
    }
    Some(out)
}

/// One forwarded connection: kubectl's error and data streams for one `requestid`.
#[derive(Default)]
struct Pair {
    port: u16,
    error: Option<u32>,
    data: Option<u32>,
    /// Where the client's data goes once connected.
    to_pod: Option<OwnedWriteHalf>,
    /// Client data that arrived before the connection to the pod was up.
    pending: Vec<u8>,
    client_done: bool,
}

/// What the per-connection tasks tell the frame loop.
enum Event {
    /// A frame from the client: its 8-byte head and payload.
    Read([u8; 8], Vec<u8>),
    /// Frames to write as they are.
    Frames(Vec<u8>),
    /// The connection for this request id is up (or failed; the frames were sent).
    Connected(String, Option<OwnedWriteHalf>),
}

/// Serves one SPDY/3.1 port-forward connection until the client goes away.
pub async fn serve<S>(io: S, pod: Value, cancel: CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let (tx, mut rx) = mpsc::channel::<Event>(64);
    // Frames are read by their own task: a read cut short by `select!` would lose bytes.
    let reader_tx = tx.clone();
    tokio::spawn(async move {
        loop {
            let mut head = [0u8; 8];
            if rd.read_exact(&mut head).await.is_err() {
                return;
            }
            let len = u32::from_be_bytes([0, head[5], head[6], head[7]]) as usize;
            let mut payload = vec![0u8; len];
            if rd.read_exact(&mut payload).await.is_err() {
                return;
            }
            if reader_tx.send(Event::Read(head, payload)).await.is_err() {
                return;
            }
        }
    });
    let mut inflater = Inflater::new(&dictionary());
    let mut deflater = Deflater::default();
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut by_stream: HashMap<u32, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            ev = rx.recv() => match ev {
                Some(Event::Frames(f)) => {
                    if wr.write_all(&f).await.is_err() {
                        return;
                    }
                }
                Some(Event::Connected(id, w)) => {
                    if let Some(p) = pairs.get_mut(&id) {
                        p.to_pod = w;
                        if let Some(w) = p.to_pod.as_mut() {
                            let pending = std::mem::take(&mut p.pending);
                            if w.write_all(&pending).await.is_err() || p.client_done {
                                let _ = w.shutdown().await;
                            }
                        }
                    }
                }
                Some(Event::Read(head, payload)) => {
                let flags = head[4];
                if head[0] & 0x80 == 0 {
                    // DATA: client bytes for the pod.
                    let stream = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                    let Some(p) = by_stream.get(&stream).and_then(|id| pairs.get_mut(id)) else {
                        continue;
                    };
                    if p.data != Some(stream) {
                        // The client closing its side of the error stream; nothing to do.
                        continue;
                    }
                    let fin = flags & FLAG_FIN != 0;
                    match p.to_pod.as_mut() {
                        Some(w) => {
                            if w.write_all(&payload).await.is_err() || fin {
                                let _ = w.shutdown().await;
                            }
                        }
                        None => p.pending.extend_from_slice(&payload),
                    }
                    p.client_done |= fin;
                    continue;
                }
                let kind = u16::from_be_bytes([head[2], head[3]]);
                match kind {
                    SYN_STREAM => {
                        let Some(stream) = u32_at(&payload, 0).map(|s| s & 0x7fff_ffff) else {
                            return;
                        };
                        let block = match payload.get(10..).map(|b| inflater.inflate(b)) {
                            Some(Ok(block)) => block,
                            // A broken header stream cannot be resynchronised: end it all.
                            _ => return,
                        };
                        let headers = parse_headers(&block).unwrap_or_default();
                        let reply = control(
                            SYN_REPLY,
                            0,
                            &[&stream.to_be_bytes()[..], &deflater.deflate(&0u32.to_be_bytes())]
                                .concat(),
                        );
                        if wr.write_all(&reply).await.is_err() {
                            return;
                        }
                        let id = headers.get("requestid").cloned().unwrap_or_default();
                        let port = headers.get("port").and_then(|p| p.parse::<u16>().ok());
                        let Some(port) = port else {
                            let _ = wr.write_all(&control(RST_STREAM, 0,
                                &[stream.to_be_bytes(), 1u32.to_be_bytes()].concat())).await;
                            continue;
                        };
                        let p = pairs.entry(id.clone()).or_default();
                        p.port = port;
                        match headers.get("streamtype").map(String::as_str) {
                            Some("error") => p.error = Some(stream),
                            Some("data") => p.data = Some(stream),
                            _ => {}
                        }
                        by_stream.insert(stream, id.clone());
                        if let (Some(error), Some(data_stream)) = (p.error, p.data) {
                            tokio::spawn(forward(
                                pod.clone(),
                                port,
                                id,
                                error,
                                data_stream,
                                tx.clone(),
                                cancel.clone(),
                            ));
                        }
                    }
                    RST_STREAM => {
                        if let Some(stream) = u32_at(&payload, 0) {
                            if let Some(id) = by_stream.remove(&(stream & 0x7fff_ffff)) {
                                if let Some(mut p) = pairs.remove(&id) {
                                    if let Some(w) = p.to_pod.as_mut() {
                                        let _ = w.shutdown().await;
                                    }
                                }
                            }
                        }
                    }
                    PING => {
                        // Echoed, as the client's keep-alive expects.
                        let pong = control(PING, 0, &payload);
                        if wr.write_all(&pong).await.is_err() {
                            return;
                        }
                    }
                    GOAWAY => return,
                    // SETTINGS, WINDOW_UPDATE, HEADERS: spdystream does no flow control.
                    _ => {}
                }
                }
                // The reader ended: the client went away.
                None => return,
            },
        }
    }
}

/// Connects request `id` to the pod's `port` and copies the pod's bytes into the data stream;
/// a failure goes to the error stream. Both streams end when the pod's side does.
async fn forward(
    pod: Value,
    port: u16,
    id: String,
    error: u32,
    data_stream: u32,
    tx: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    let tcp = match streams::dial(&pod, port).await {
        Ok(tcp) => tcp,
        Err(message) => {
            let mut frames = data(error, 0, message.as_bytes());
            frames.extend(data(error, FLAG_FIN, &[]));
            frames.extend(data(data_stream, FLAG_FIN, &[]));
            let _ = tx.send(Event::Frames(frames)).await;
            let _ = tx.send(Event::Connected(id, None)).await;
            return;
        }
    };
    let (mut read, write) = tcp.into_split();
    if tx.send(Event::Connected(id, Some(write))).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; MAX_DATA];
    loop {
        let n = tokio::select! {
            _ = cancel.cancelled() => return,
            n = read.read(&mut buf) => n,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if tx
                    .send(Event::Frames(data(data_stream, 0, &buf[..n])))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    }
    let mut frames = data(data_stream, FLAG_FIN, &[]);
    frames.extend(data(error, FLAG_FIN, &[]));
    let _ = tx.send(Event::Frames(frames)).await;
}
