//! The deadline of a request body: a body that has not arrived completely by then fails
//! with [`BodyTimedOut`], and while it is still arriving its connection counts as receiving
//! (evictable at the connection cap).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::ConnState;

/// The error a request body gives once its deadline has passed. Handlers that read the body
/// answer 408 (see `extract::read_json`) and the connection is closed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// True if `err` or any error it wraps is [`BodyTimedOut`].
pub(crate) fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// A request body that must have arrived completely by a deadline. While it is still
/// arriving its connection counts as receiving (evictable at the cap).
pub(crate) struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    state: Option<Arc<ConnState>>,
    timed_out: Arc<AtomicBool>,
}

impl std::fmt::Debug for DeadlineBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadlineBody").finish_non_exhaustive()
    }
}

impl DeadlineBody {
    pub(super) fn new(inner: Incoming, timeout: Duration, state: Arc<ConnState>) -> Self {
        let state = (!inner.is_end_stream()).then(|| {
            state.receiving.fetch_add(1, Ordering::AcqRel);
            state
        });
        Self {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            state,
            timed_out: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Set once the deadline has passed before the body ended; the server then closes the
    /// connection after its answer.
    pub(crate) fn timed_out_flag(&self) -> Arc<AtomicBool> {
        self.timed_out.clone()
    }

    fn done(&mut self) {
        if let Some(state) = self.state.take() {
            state.receiving.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Drop for DeadlineBody {
    fn drop(&mut self) {
        self.done();
    }
}

impl Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.timed_out.load(Ordering::Acquire) {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if self.inner.is_end_stream() {
                    self.done();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.done();
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => {
                self.done();
                Poll::Ready(None)
            }
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready() {
                    self.timed_out.store(true, Ordering::Release);
                    self.done();
                    return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
