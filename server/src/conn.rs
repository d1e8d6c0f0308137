//! One accepted TCP connection: read the request head without consuming it, route plain HTTP
//! to [`super::http`], and for a WebSocket upgrade ask the gateway task for its verdict
//! *before* tungstenite accepts, then pump frames both ways until either side closes.
//!
//! It turns socket events into gateway inputs and gateway outputs into socket writes, and
//! nothing else: no frame is inspected here beyond what tungstenite itself enforces (a ping
//! or pong is reported as [`Input::Control`], without its content).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode, header};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Error as WsError, Message};

use super::driver::{Cmd, HandshakeCmd, WriterMsg};
use super::head::{Head, HeadError, peek_head};
use super::http;
use super::shared::Shared;
use super::writer_queue::{self, QueueRx};
use gauntlet_core::ConnId;
use gauntlet_core::protocol::HandshakeRequest;
use gauntlet_core::{ControlFrame, HandshakeDecision};

/// How long a client has to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// After one side of a session ends, how long the other gets to finish (flush queued frames,
/// or read the peer's reply to our close frame).
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Longest one batch's writes and flush (at most [`WRITE_BATCH`] frames) may block: a peer
/// that stops reading fills the kernel's buffer, `Input::Sent` stops, the gateway closes it
/// as a slow consumer (1013), and this bound makes sure the socket itself is dropped even if
/// that close frame cannot be written. One deadline per batch, not per frame: each would
/// read the clock and arm a timer, per message.
const WRITE_STALL: Duration = Duration::from_secs(10);
/// Frames written before one flush and one `Input::Sent` report.
const WRITE_BATCH: usize = 64;
/// tungstenite checks UTF-8 itself and keeps only a lossy copy of a bad text frame, so the
/// reader hands the gateway this payload instead: not UTF-8, so the gateway applies its own
/// rule (close 1007) and logs it like any other invalid frame.
const NOT_UTF8: &[u8] = &[0xFF];

/// One accepted socket and what it needs.
pub(crate) struct Connection {
    pub(crate) conn: ConnId,
    pub(crate) peer: SocketAddr,
    pub(crate) shared: std::sync::Arc<Shared>,
    pub(crate) cmd: mpsc::Sender<Cmd>,
    /// Dropped when the task ends: shutdown waits for every clone to go.
    pub(crate) _alive: mpsc::Sender<()>,
    /// This socket's place under [`Shared::max_sockets`].
    pub(crate) _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Connection {
    pub(crate) async fn serve(self, mut stream: TcpStream) {
        let head = match tokio::time::timeout(HEAD_TIMEOUT, peek_head(&stream)).await {
            Ok(Ok(head)) => head,
            Ok(Err(HeadError::Bad)) => {
                let _ = http::respond_error(&mut stream, 400, "bad_request").await;
                return;
            }
            Ok(Err(HeadError::Gone)) | Err(_) => return,
        };
        if head.is_websocket_upgrade() {
            self.websocket(stream, head).await;
        } else {
            http::serve(stream, head, self.peer.ip(), &self.cmd).await;
        }
    }

    async fn websocket(self, stream: TcpStream, head: Head) {
        let conn = self.conn;
        let request = HandshakeRequest {
            path: head.path,
            query: head.query,
            headers: head.headers,
            peer: self.peer.ip(),
        };
        let (writer, frames) = writer_queue::queue(self.shared.writer_capacity);
        let (reply, verdict) = oneshot::channel();
        let asked = Cmd::Handshake(Box::new(HandshakeCmd {
            conn,
            peer: self.peer,
            request,
            writer,
            reply,
        }));
        if self.cmd.send(asked).await.is_err() {
            return;
        }
        let Ok(decision) = verdict.await else {
            return;
        };
        let accepted = matches!(decision, HandshakeDecision::Accept { .. });
        #[allow(clippy::result_large_err)] // the `Callback` signature is tungstenite's
        let callback = move |_: &Request, response: Response| answer(decision, response);
        let upgraded = tokio_tungstenite::accept_hdr_async_with_config(
            stream,
            callback,
            Some(self.shared.ws_config),
        )
        .await;
        match upgraded {
            Ok(ws) if accepted => {
                // A task of its own: a task's allocation is its future's biggest state, and
                // this one's (the head, the request, the upgrade) would stay with every idle
                // session for its life. This task ends here and frees it.
                let (sink, stream) = ws.split();
                tokio::spawn(session(sink, stream, frames, self));
            }
            // A refusal was answered with its HTTP status inside the callback.
            _ => {
                if accepted {
                    let _ = self.cmd.send(Cmd::Closed { conn }).await;
                }
            }
        }
    }
}

/// The upgrade response for the gateway's verdict: the `jwt` subprotocol when the token came
/// that way, or the refusal's HTTP status with a JSON body and `Retry-After` when retryable.
// tungstenite's `Callback` fixes the error type to an unboxed `http::Response`.
#[allow(clippy::result_large_err)]
fn answer(decision: HandshakeDecision, mut response: Response) -> Result<Response, ErrorResponse> {
    match decision {
        HandshakeDecision::Accept { subprotocol, .. } => {
            if let Some(p) = subprotocol {
                response
                    .headers_mut()
                    .insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(p));
            }
            Ok(response)
        }
        HandshakeDecision::Reject {
            status,
            code,
            retry_after_ms,
        } => {
            let body = http::error_body(code, retry_after_ms);
            let mut r = ErrorResponse::new(Some(body));
            *r.status_mut() =
                StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::UNAUTHORIZED);
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(ms) = retry_after_ms {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(ms.div_ceil(1000)));
            }
            Err(r)
        }
    }
}

type Ws = WebSocketStream<TcpStream>;

/// Pumps one upgraded connection until either side ends it. It takes the connection's halves
/// rather than the stream (an async fn keeps its arguments for its whole life) and the
/// [`Connection`], whose guards must live as long as the socket.
async fn session(
    sink: SplitSink<Ws, Message>,
    stream: SplitStream<Ws>,
    frames: QueueRx<WriterMsg>,
    c: Connection,
) {
    let conn = c.conn;
    let mut reader = std::pin::pin!(read_loop(stream, conn, c.cmd.clone()));
    let mut writer = std::pin::pin!(write_loop(sink, frames, conn, c.cmd.clone()));
    let peer_gone = tokio::select! {
        () = &mut reader => true,
        () = &mut writer => false,
    };
    if peer_gone {
        // The peer is gone: the gateway drops the writer's queue, the writer drains and ends.
        let _ = c.cmd.send(Cmd::Closed { conn }).await;
        let _ = tokio::time::timeout(CLOSE_GRACE, writer).await;
    } else {
        // We sent a close (or the gateway let go): read the peer's close reply, briefly.
        let _ = tokio::time::timeout(CLOSE_GRACE, reader).await;
        let _ = c.cmd.send(Cmd::Closed { conn }).await;
    }
}

async fn read_loop(mut stream: SplitStream<Ws>, conn: ConnId, cmd: mpsc::Sender<Cmd>) {
    while let Some(msg) = stream.next().await {
        let input = match msg {
            Ok(Message::Text(text)) => Cmd::Text {
                conn,
                data: text.into(),
            },
            Ok(Message::Binary(data)) => Cmd::Binary {
                conn,
                len: data.len(),
            },
            // tungstenite answers pings itself (RFC 6455 requires it), but every inbound
            // frame counts against the user's rate (`RATE-CONTROL-FRAMES`), so the gateway
            // is told a control frame arrived.
            Ok(Message::Ping(_)) => Cmd::Control {
                conn,
                kind: ControlFrame::Ping,
            },
            Ok(Message::Pong(_)) => Cmd::Control {
                conn,
                kind: ControlFrame::Pong,
            },
            // A close ends the session (answered on the next read): nothing to charge.
            Ok(Message::Close(_)) => continue,
            // Raw frames are only ever produced for writing, never by a read.
            Ok(Message::Frame(_)) => continue,
            Err(WsError::Utf8(_)) => Cmd::Text {
                conn,
                data: Bytes::from_static(NOT_UTF8),
            },
            Err(WsError::Capacity(_)) => {
                let _ = cmd.send(Cmd::Oversize { conn }).await;
                return;
            }
            Err(_) => return,
        };
        if !send(&cmd, input).await {
            return;
        }
    }
}

async fn write_loop(
    mut sink: SplitSink<Ws, Message>,
    frames: QueueRx<WriterMsg>,
    conn: ConnId,
    cmd: mpsc::Sender<Cmd>,
) {
    let mut batch = VecDeque::new();
    loop {
        // A batch longer than WRITE_BATCH is finished before taking more.
        if batch.is_empty() && !frames.recv_all(&mut batch).await {
            return;
        }
        let mut written = 0usize;
        let mut close = None;
        let wrote = tokio::time::timeout(WRITE_STALL, async {
            while written < WRITE_BATCH {
                match batch.pop_front() {
                    Some(WriterMsg::Text(frame)) => {
                        sink.feed(Message::text(&*frame)).await?;
                        written += 1;
                    }
                    Some(WriterMsg::Close(code, reason)) => {
                        close = Some((code, reason));
                        break;
                    }
                    None => break,
                }
            }
            sink.flush().await
        });
        if !matches!(wrote.await, Ok(Ok(()))) {
            return;
        }
        if written > 0 {
            let sent = Cmd::Sent {
                conn,
                frames: written,
            };
            if !send(&cmd, sent).await {
                return;
            }
        }
        if let Some((code, reason)) = close {
            let frame = CloseFrame {
                code: code.as_u16().into(),
                reason: reason.into(),
            };
            let _ = tokio::time::timeout(WRITE_STALL, sink.send(Message::Close(Some(frame)))).await;
            return;
        }
    }
}

/// Hands `c` to the gateway task; `false` once it is gone. Tries without waiting first: under
/// load nearly every frame finds room, and `try_send` skips building and polling a send
/// future (about a tenth of the reader's time in the profile); a full channel waits as
/// before, which is the backpressure on the socket.
async fn send(cmd: &mpsc::Sender<Cmd>, c: Cmd) -> bool {
    match cmd.try_send(c) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(c)) => cmd.send(c).await.is_ok(),
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}
