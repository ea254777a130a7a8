//! The accept loop every acd server runs: HTTP/1.1 (hyper) with the bounds
//! of [`HttpLimits`] on what a client may hold. A connection is, at any
//! moment, in one of three phases, and each phase has its own clock:
//!
//! - sending a request head (from accept, or from the first byte after an
//!   answer): closed after `header_read_timeout`;
//! - in a request (head parsed, answer not ready): its body must be in
//!   within `body_timeout`, else `408 body_timeout`;
//! - idle between requests: closed after `idle_timeout`.
//!
//! At most `max_connections` are open; at the cap a new one evicts the
//! oldest connection that is not in a request, so a flood of half-open
//! connections cannot lock honest clients out. Accept errors (EMFILE)
//! back off briefly instead of spinning. Shutdown closes idle connections
//! and waits for the requests in flight.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use acd_core::error::{DomainError, ErrorKind};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::response::{IntoResponse, Response};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc, watch};
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::ApiError;
use crate::limits::{HttpLimits, raise_fd_limit};

/// How long accept pauses after an error such as EMFILE, when the kernel
/// keeps the connection waiting and an immediate retry would fail again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Serves `router` on `listener` under `limits` until `shutdown` resolves,
/// then closes idle connections and waits for the requests in flight.
pub async fn serve_with(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = limits.connection_cap(raise_fd_limit());
    let registry = Arc::new(Registry::default());
    let (stop, stopped) = watch::channel(false);
    // Every connection task holds a sender; `recv` ends when all are gone.
    let (alive, mut all_closed) = mpsc::channel::<()>(1);
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    tracing::warn!(error = %e, "accept failed; backing off");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Some(conn) = registry.admit(cap) else {
            // Every connection is in a request: refusing at once keeps
            // accept running (and the kernel's backlog short).
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(
            stream,
            router.clone(),
            conn,
            limits,
            registry.clone(),
            stopped.clone(),
            alive.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    drop(alive);
    let _ = all_closed.recv().await;
    Ok(())
}

/// Errors of one connection that accept reports, not of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// The open connections, oldest first.
#[derive(Default)]
struct Registry {
    inner: Mutex<RegistryInner>,
}

#[derive(Default)]
struct RegistryInner {
    next_id: u64,
    open: BTreeMap<u64, Arc<Conn>>,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, RegistryInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A slot for a new connection; at the cap, the oldest connection not
    /// in a request is told to close and gives up its slot. `None` when
    /// every connection is in a request.
    fn admit(&self, cap: usize) -> Option<Arc<Conn>> {
        let mut r = self.lock();
        if r.open.len() >= cap {
            let victim = r.open.iter().find(|(_, c)| !c.busy()).map(|(id, _)| *id)?;
            if let Some(c) = r.open.remove(&victim) {
                c.evict.notify_one();
            }
        }
        let id = r.next_id;
        r.next_id += 1;
        let conn = Arc::new(Conn::new(id));
        r.open.insert(id, conn.clone());
        Some(conn)
    }

    fn remove(&self, id: u64) {
        self.lock().open.remove(&id);
    }
}

/// One connection's phase, shared by its task, its socket and its requests.
struct Conn {
    id: u64,
    activity: Mutex<Activity>,
    /// The phase changed in a way that may bring the deadline forward.
    changed: Notify,
    /// The registry took the slot back: close now.
    evict: Notify,
}

#[derive(Clone, Copy)]
struct Activity {
    /// Requests whose answer is not ready yet (one at a time in HTTP/1.1).
    in_flight: usize,
    /// Some bytes of a request head arrived (or the connection is new).
    reading_head: bool,
    /// When the current phase began.
    since: Instant,
}

impl Conn {
    fn new(id: u64) -> Self {
        Conn {
            id,
            activity: Mutex::new(Activity {
                in_flight: 0,
                reading_head: true,
                since: Instant::now(),
            }),
            changed: Notify::new(),
            evict: Notify::new(),
        }
    }

    fn activity(&self) -> MutexGuard<'_, Activity> {
        self.activity.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn busy(&self) -> bool {
        self.activity().in_flight > 0
    }

    /// Bytes arrived: on an idle connection, a request head has begun.
    fn saw_bytes(&self) {
        let mut a = self.activity();
        if a.in_flight == 0 && !a.reading_head {
            a.reading_head = true;
            a.since = Instant::now();
            drop(a);
            self.changed.notify_one();
        }
    }

    fn begin_request(self: &Arc<Self>) -> InRequest {
        let mut a = self.activity();
        a.in_flight += 1;
        a.reading_head = false;
        InRequest(self.clone())
    }

    /// When the current phase runs out; `None` while in a request.
    fn deadline(&self, limits: &HttpLimits) -> Option<Instant> {
        let a = *self.activity();
        if a.in_flight > 0 {
            None
        } else if a.reading_head {
            Some(a.since + limits.header_read_timeout())
        } else {
            Some(a.since + limits.idle_timeout())
        }
    }
}

/// A request in progress; its end starts the idle phase.
struct InRequest(Arc<Conn>);

impl Drop for InRequest {
    fn drop(&mut self) {
        let mut a = self.0.activity();
        a.in_flight = a.in_flight.saturating_sub(1);
        if a.in_flight == 0 {
            a.reading_head = false;
            a.since = Instant::now();
            drop(a);
            self.0.changed.notify_one();
        }
    }
}

/// Serves one connection until it closes, runs out of its phase's time,
/// is evicted, or the server stops.
async fn connection(
    stream: TcpStream,
    router: Router,
    conn: Arc<Conn>,
    limits: HttpLimits,
    registry: Arc<Registry>,
    mut stopped: watch::Receiver<bool>,
    _alive: mpsc::Sender<()>,
) {
    let io = TokioIo::new(Watched {
        stream,
        conn: conn.clone(),
    });
    let service = hyper::service::service_fn({
        let conn = conn.clone();
        move |req| handle(router.clone(), conn.clone(), limits.body_timeout(), req)
    });
    // The head's clock is ours (it must not run on idle connections), so
    // hyper's own header timeout stays off.
    let http = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(http);
    let mut stopping = false;
    loop {
        let deadline = conn.deadline(&limits);
        tokio::select! {
            _ = http.as_mut() => break,
            () = sleep_until(deadline) => {
                if conn.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    break;
                }
            }
            () = conn.changed.notified() => {}
            () = conn.evict.notified() => break,
            // hyper closes an idle connection at once and a busy one
            // after its answer is written.
            _ = stopped.changed(), if !stopping => {
                stopping = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
    registry.remove(conn.id);
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One request: the router's answer, unless the body is still not in
/// when `body_timeout` has passed.
async fn handle(
    router: Router,
    conn: Arc<Conn>,
    body_timeout: Duration,
    req: Request<Incoming>,
) -> Result<Response, Infallible> {
    let _in_request = conn.begin_request();
    let (parts, body) = req.into_parts();
    let done = Arc::new(AtomicBool::new(hyper::body::Body::is_end_stream(&body)));
    let body = Body::new(Tracked {
        inner: body,
        done: done.clone(),
    });
    let answer = router.oneshot(Request::from_parts(parts, body));
    tokio::select! {
        biased;
        answer = answer => answer,
        () = body_deadline(body_timeout, &done) => Ok(body_timeout_answer()),
    }
}

/// Resolves when `timeout` has passed and the body is still not complete.
async fn body_deadline(timeout: Duration, done: &AtomicBool) {
    tokio::time::sleep(timeout).await;
    if done.load(Ordering::Acquire) {
        std::future::pending::<()>().await;
    }
}

/// 408, and (as every 408) the connection closes after it.
fn body_timeout_answer() -> Response {
    ApiError(DomainError::new(
        ErrorKind::Timeout,
        "body_timeout",
        "the request body did not arrive in time",
    ))
    .into_response()
}

/// A request body that records when it has been read to its end.
struct Tracked {
    inner: Incoming,
    done: Arc<AtomicBool>,
}

impl hyper::body::Body for Tracked {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling its connection when bytes arrive.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.conn.saw_bytes();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn limits() -> HttpLimits {
        HttpLimits {
            header_read_timeout_ms: 300,
            body_timeout_ms: 300,
            idle_timeout_ms: 600,
            max_connections: Some(4),
        }
    }

    async fn start(limits: HttpLimits) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let app = Router::new()
            .route("/hi", get(|| async { "hi" }))
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(700)).await;
                    "late"
                }),
            )
            .route("/echo", post(|b: axum::body::Bytes| async move { b }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(listener, app, limits, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    async fn connect(addr: std::net::SocketAddr) -> TcpStream {
        TcpStream::connect(addr)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Reads until the peer closes (or 5 s pass); what arrived.
    async fn read_to_close(s: &mut TcpStream) -> (String, bool) {
        let mut out = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .is_ok();
        (String::from_utf8_lossy(&out).into_owned(), closed)
    }

    async fn get_hi(s: &mut TcpStream) -> String {
        s.write_all(b"GET /hi HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("{e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    // A half-sent head is closed after the header timeout; an idle
    // keep-alive connection lives past it and closes after the idle
    // timeout.
    #[tokio::test]
    async fn half_open_and_idle_connections_are_closed() {
        let (addr, _stop) = start(limits()).await;
        let mut half = connect(addr).await;
        half.write_all(b"GET /hi HTTP/1.1\r\nhost")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut idle = connect(addr).await;
        assert!(get_hi(&mut idle).await.ends_with("hi"));
        let started = Instant::now();
        let (_, closed) = read_to_close(&mut half).await;
        assert!(closed);
        let (_, closed) = read_to_close(&mut idle).await;
        assert!(closed);
        assert!(started.elapsed() >= Duration::from_millis(400));
    }

    // A body that stops half way is answered 408 after the body timeout,
    // while a slow handler whose body has arrived is not cut.
    #[tokio::test]
    async fn an_unfinished_body_is_408_and_a_slow_handler_is_not() {
        let (addr, _stop) = start(limits()).await;
        let mut s = connect(addr).await;
        s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (answer, closed) = read_to_close(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.contains("body_timeout"), "{answer}");
        assert!(closed);

        let mut s = connect(addr).await;
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let (answer, _) = read_to_close(&mut s).await;
        assert!(answer.ends_with("late"), "{answer}");
    }

    // At the cap, a new connection evicts the oldest one that is not in a
    // request; a connection in a request is never evicted.
    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let (addr, _stop) = start(HttpLimits {
            header_read_timeout_ms: 60_000,
            idle_timeout_ms: 60_000,
            max_connections: Some(2),
            ..limits()
        })
        .await;
        let mut busy = connect(addr).await;
        busy.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut idle = connect(addr).await;
        assert!(get_hi(&mut idle).await.ends_with("hi"));
        let mut fresh = connect(addr).await;
        assert!(get_hi(&mut fresh).await.ends_with("hi"));
        let (_, closed) = read_to_close(&mut idle).await;
        assert!(closed);
        let (answer, _) = read_to_close(&mut busy).await;
        assert!(answer.ends_with("late"), "{answer}");
    }

    // Shutdown answers the request in flight, then returns.
    #[tokio::test]
    async fn shutdown_waits_for_the_request_in_flight() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let app = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_millis(300)).await;
                "late"
            }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(listener, app, limits(), async {
            let _ = stopped.await;
        }));
        let mut s = connect(addr).await;
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut idle = connect(addr).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stop.send(());
        let (answer, closed) = read_to_close(&mut s).await;
        assert!(answer.ends_with("late"), "{answer}");
        assert!(closed);
        let (_, closed) = read_to_close(&mut idle).await;
        assert!(closed);
        let done = tokio::time::timeout(Duration::from_secs(5), server).await;
        assert!(matches!(done, Ok(Ok(Ok(())))));
    }
}
