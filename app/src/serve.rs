//! Serving with a drain: the piece that makes the deployer's switch lose no request.
//!
//! The app listens on TCP and, when `APP_SOCKET` is set, on a Unix socket that nginx reaches
//! through the deployer's `live.sock` symlink. Every accepted connection is counted. On SIGTERM
//! the app *drains*: it keeps serving, answers each further request with `Connection: close` (so
//! nginx retires its kept-alive upstream connections one by one, and opens new ones to whatever
//! `live.sock` now points at), and stops once no connection is open or the drain timeout has
//! passed. Idle connections are never cut from this side, so a request nginx sends on one is never
//! lost in flight.

use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, Request};
use axum::middleware::Next;
use axum::response::Response;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How long a drain must see no open connection before it counts as done.
const QUIET: Duration = Duration::from_millis(300);

/// Open connections and whether the process is draining; shared by listeners and handlers.
#[derive(Debug, Default)]
pub struct Drain {
    open: AtomicUsize,
    draining: AtomicBool,
    changed: tokio::sync::Notify,
}

impl Drain {
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub fn start(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.changed.notify_waiters();
    }

    /// Resolves when no connection has been open for [`QUIET`] or `timeout` has passed; returns
    /// the ones left open.
    pub async fn until_idle(&self, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let open = self.open_connections();
            if open == 0 {
                // Idle means idle for a moment, not at one instant: when the whole host stops,
                // its nginx may still open a connection for a request it already took (one
                // refused here would be its 502), and it does so within milliseconds.
                let quiet = (tokio::time::Instant::now() + QUIET).min(deadline);
                let timed_out = tokio::time::timeout_at(quiet, notified).await.is_err();
                if timed_out && (self.open_connections() == 0 || quiet >= deadline) {
                    return self.open_connections();
                }
                continue;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.open_connections();
            }
        }
    }
}

/// A listener whose connections are counted in a [`Drain`].
pub struct Counted<L> {
    inner: L,
    drain: Arc<Drain>,
}

impl<L> Counted<L> {
    pub fn new(inner: L, drain: Arc<Drain>) -> Self {
        Self { inner, drain }
    }
}

impl<L: axum::serve::Listener> axum::serve::Listener for Counted<L> {
    type Io = CountedIo<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.inner.accept().await;
        self.drain.open.fetch_add(1, Ordering::SeqCst);
        self.drain.changed.notify_waiters();
        let drain = self.drain.clone();
        (CountedIo { io, drain }, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that leaves the count when dropped (closed by either side).
pub struct CountedIo<T> {
    io: T,
    drain: Arc<Drain>,
}

impl<T> Drop for CountedIo<T> {
    fn drop(&mut self) {
        self.drain.open.fetch_sub(1, Ordering::SeqCst);
        self.drain.changed.notify_waiters();
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for CountedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for CountedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Middleware: while draining, every response closes its connection.
pub async fn close_when_draining(
    State(drain): State<Arc<Drain>>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    if drain.is_draining() {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Binds the Unix socket at `path`: a stale socket from a previous run is removed first, and the
/// socket is made connectable by nginx's workers, which run as another user.
pub fn bind_unix(path: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use anyhow::Context as _;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?,
        Ok(_) => anyhow::bail!(
            "APP_SOCKET {} exists and is not a socket; remove it or choose another path",
            path.display()
        ),
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(path).with_context(|| {
        format!(
            "cannot listen on APP_SOCKET {} (is its directory there and writable?)",
            path.display()
        )
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
        .with_context(|| format!("cannot set permissions on {}", path.display()))?;
    Ok(listener)
}
