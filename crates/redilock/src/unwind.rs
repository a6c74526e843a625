//! Panics in the library's own tasks are caught where they happen, so that a bug ends one
//! task with a known outcome (a lease reported lost, waiters told to re-check) instead of
//! silently stopping it.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `future` to its end; `Err(())` if it panicked.
pub(crate) fn catching<F: Future>(future: F) -> CatchUnwind<F> {
    CatchUnwind(Box::pin(future))
}

pub(crate) struct CatchUnwind<F>(Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.0.as_mut();
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Err(_) => Poll::Ready(Err(())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_future_ends_with_an_error() {
        assert_eq!(catching(async { 7 }).await, Ok(7));
        let panicked = catching(async {
            tokio::task::yield_now().await;
            panic!("a bug in a task")
        });
        assert_eq!(panicked.await, Err::<(), ()>(()));
    }
}
