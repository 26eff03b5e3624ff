//! Limits on what one client can hold: a deadline for each request body, an idle timeout
//! for keep-alive connections, and a cap on open connections.
//!
//! A slow client costs a socket, a file descriptor and a task for as long as it holds them,
//! so every state a connection can sit in has a bound: headers (hyper's header timeout, which
//! also runs while a keep-alive connection waits for its next request), body (the deadline
//! here), idle (no request in flight and no byte either way for the idle timeout), and the
//! handler itself (the handlers' own limits). At the cap a new connection evicts the oldest
//! connection that is idle or still receiving a body — what slow clients look like — so an
//! attacker trickling bytes on every slot cannot keep a legitimate request out; only when
//! every connection is busy in a handler is the new one refused at once with a 503.

use std::collections::BTreeMap;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

mod body;

pub(crate) use body::{is_body_timeout, DeadlineBody};

/// How long a connection may take over each part of its life, and how many may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// From waiting for a request to having all its headers. Also bounds how long a
    /// keep-alive connection may wait for its next request.
    pub header_timeout: Duration,
    /// From the headers to the last byte of the request body.
    pub body_timeout: Duration,
    /// A keep-alive connection with no request in flight and no traffic for this long is
    /// closed.
    pub idle_timeout: Duration,
    /// Open connections at most. Keep it well below the process's file descriptor limit
    /// (`ulimit -n`): the database and the blocking pool need descriptors too.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Descriptors kept free of connections: the listener, stdio, the database and its WAL,
/// files being served, the blocking pool.
const FD_RESERVE: u64 = 64;

impl ConnectionLimits {
    /// `max_connections`, lowered if need be below the process's file descriptor limit
    /// (`ulimit -n`): past it `accept` fails, and the cap could never make room. `None`
    /// when no lowering was needed.
    pub(crate) fn cap_for_fd_limit(&self) -> Option<usize> {
        lowered_cap(self.max_connections, fd_soft_limit()?)
    }
}

fn lowered_cap(max_connections: usize, fd_limit: u64) -> Option<usize> {
    let usable = if fd_limit > 2 * FD_RESERVE {
        fd_limit - FD_RESERVE
    } else {
        fd_limit / 2
    };
    let usable = usize::try_from(usable).unwrap_or(usize::MAX).max(1);
    (max_connections > usable).then_some(usable)
}

#[cfg(unix)]
fn fd_soft_limit() -> Option<u64> {
    // rustix wraps getrlimit safely; `None` is RLIM_INFINITY.
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

#[cfg(not(unix))]
fn fd_soft_limit() -> Option<u64> {
    None
}

/// Evictions under way at once at most: an evicted connection closes on its task's next
/// poll, so this bounds how far the open count can overshoot the cap meanwhile.
const MAX_EVICTING: usize = 16;

/// What one connection is doing, as the cap and the idle timer see it.
#[derive(Debug)]
pub(crate) struct ConnState {
    id: u64,
    /// Requests handed to the router and not yet answered.
    in_flight: AtomicUsize,
    /// Request bodies still arriving.
    receiving: AtomicUsize,
    /// Milliseconds since [`Connections::base`] of the last byte read or written.
    last_active_ms: AtomicU64,
    evicted: AtomicBool,
    evict: Notify,
    /// Notified whenever a request of this connection is answered.
    request_done: Notify,
}

impl ConnState {
    /// Slow clients look like this: nothing in a handler, or a body still trickling in.
    fn evictable(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0 || self.receiving.load(Ordering::Acquire) > 0
    }
}

/// The open connections. One per server.
#[derive(Debug)]
pub(crate) struct Connections {
    limits: ConnectionLimits,
    base: Instant,
    next_id: AtomicU64,
    live: Mutex<BTreeMap<u64, Arc<ConnState>>>,
    evicting: AtomicUsize,
    empty: Notify,
}

/// The answer of [`Connections::admit`].
pub(crate) enum Admission {
    /// Serve it; `evicted` says whether an older connection was closed to make room.
    Admitted { conn: ConnGuard, evicted: bool },
    /// Every connection is busy in a handler: refuse this one.
    Full,
}

impl Connections {
    pub(crate) fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits: ConnectionLimits {
                max_connections: limits.max_connections.max(1),
                ..limits
            },
            base: Instant::now(),
            next_id: AtomicU64::new(0),
            live: Mutex::new(BTreeMap::new()),
            evicting: AtomicUsize::new(0),
            empty: Notify::new(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<ConnState>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Registers a new connection, evicting the oldest slow one at the cap.
    pub(crate) fn admit(self: &Arc<Self>) -> Admission {
        let mut live = self.lock();
        let mut evicted = false;
        if live.len() >= self.limits.max_connections {
            if self.evicting.load(Ordering::Acquire) >= MAX_EVICTING {
                return Admission::Full;
            }
            // Oldest first: the ids grow with every accept.
            let Some(victim) = live
                .values()
                .find(|c| !c.evicted.load(Ordering::Acquire) && c.evictable())
            else {
                return Admission::Full;
            };
            victim.evicted.store(true, Ordering::Release);
            self.evicting.fetch_add(1, Ordering::AcqRel);
            // Stores a permit if the task is not waiting right now.
            victim.evict.notify_one();
            evicted = true;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState {
            id,
            in_flight: AtomicUsize::new(0),
            receiving: AtomicUsize::new(0),
            last_active_ms: AtomicU64::new(self.now_ms()),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
            request_done: Notify::new(),
        });
        live.insert(id, state.clone());
        Admission::Admitted {
            conn: ConnGuard {
                connections: self.clone(),
                state,
            },
            evicted,
        }
    }

    /// Open connections now.
    pub(crate) fn open(&self) -> usize {
        self.lock().len()
    }

    /// Resolves once every connection has closed.
    pub(crate) async fn all_closed(&self) {
        loop {
            let notified = self.empty.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.lock().is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// One admitted connection; dropping it (when the connection's task ends) frees its slot.
#[derive(Debug)]
pub(crate) struct ConnGuard {
    connections: Arc<Connections>,
    state: Arc<ConnState>,
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        let mut live = self.connections.lock();
        live.remove(&self.state.id);
        if self.state.evicted.load(Ordering::Acquire) {
            self.connections.evicting.fetch_sub(1, Ordering::AcqRel);
        }
        if live.is_empty() {
            self.connections.empty.notify_waiters();
        }
    }
}

impl ConnGuard {
    /// Resolves when the cap chose this connection to make room for a new one.
    pub(crate) async fn evicted(&self) {
        self.state.evict.notified().await;
    }

    /// Resolves when the connection has had no request in flight and no traffic for the
    /// idle timeout.
    pub(crate) async fn idle(&self) {
        let idle = self.connections.limits.idle_timeout;
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let done = self.state.request_done.notified();
            tokio::pin!(done);
            done.as_mut().enable();
            if self.state.in_flight.load(Ordering::Acquire) > 0 {
                // Not idle while a handler works, however long: wait for its answer.
                done.await;
                continue;
            }
            let last = self.state.last_active_ms.load(Ordering::Acquire);
            let quiet_for = self.connections.now_ms().saturating_sub(last);
            if quiet_for >= idle_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(idle_ms - quiet_for)).await;
        }
    }

    /// Counts a request as in flight until the returned guard drops.
    pub(crate) fn request(&self) -> RequestGuard {
        self.state.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        RequestGuard {
            connections: self.connections.clone(),
            state: self.state.clone(),
        }
    }

    fn touch(&self) {
        touch(&self.connections, &self.state);
    }

    /// The socket, counting every byte as activity for the idle timer.
    pub(crate) fn track<T>(&self, io: T) -> TrackedIo<T> {
        TrackedIo {
            inner: io,
            connections: self.connections.clone(),
            state: self.state.clone(),
        }
    }

    /// `body` with the body deadline of this server; the deadline runs from now.
    pub(crate) fn deadline_body(&self, body: Incoming) -> DeadlineBody {
        DeadlineBody::new(
            body,
            self.connections.limits.body_timeout,
            self.state.clone(),
        )
    }
}

fn touch(connections: &Connections, state: &ConnState) {
    state
        .last_active_ms
        .store(connections.now_ms(), Ordering::Release);
}

/// One request in flight on a connection.
#[derive(Debug)]
pub(crate) struct RequestGuard {
    connections: Arc<Connections>,
    state: Arc<ConnState>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        touch(&self.connections, &self.state);
        self.state.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.state.request_done.notify_waiters();
    }
}

/// A socket whose reads and writes reset the connection's idle timer.
#[derive(Debug)]
pub(crate) struct TrackedIo<T> {
    inner: T,
    connections: Arc<Connections>,
    state: Arc<ConnState>,
}

impl<T: AsyncRead + Unpin> AsyncRead for TrackedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = ready!(Pin::new(&mut self.inner).poll_read(cx, buf));
        if buf.filled().len() > before {
            touch(&self.connections, &self.state);
        }
        Poll::Ready(result)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TrackedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.inner).poll_write(cx, buf));
        if matches!(result, Ok(n) if n > 0) {
            touch(&self.connections, &self.state);
        }
        Poll::Ready(result)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs));
        if matches!(result, Ok(n) if n > 0) {
            touch(&self.connections, &self.state);
        }
        Poll::Ready(result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::lowered_cap;

    #[test]
    fn the_cap_is_lowered_below_the_file_descriptor_limit_only_when_above_it() {
        assert_eq!(lowered_cap(1024, 256), Some(192));
        assert_eq!(lowered_cap(1024, 1_048_576), None);
        assert_eq!(lowered_cap(100, 256), None);
        assert_eq!(lowered_cap(1024, 100), Some(50));
        assert_eq!(lowered_cap(1024, 1), Some(1));
    }
}
