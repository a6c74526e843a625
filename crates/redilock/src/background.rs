//! Where a client runs the work that goes on between calls: the wake-up subscriber, the
//! auto-renewals and the cleanups. None of it may depend on a caller being inside a call.

use crate::error::{Error, Result};
use crate::transport::SharedConnection;
use once_cell::sync::OnceCell;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

#[derive(Clone)]
pub(crate) enum BackgroundRuntime {
    /// The async client: the runtime of the caller that first needs it, over the client's
    /// own connection.
    CallersRuntime,
    /// The blocking client: a thread of its own with its own runtime, started on first need,
    /// and a connection of its own for each server (a connection is bound to the runtime that
    /// drives it). The masters of a quorum client share the thread.
    OwnThread(Arc<OnceCell<BackgroundThread>>),
}

pub(crate) struct BackgroundThread {
    runtime: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundRuntime {
    /// A thread of its own, for a blocking client.
    pub(crate) fn own_thread() -> BackgroundRuntime {
        BackgroundRuntime::OwnThread(Arc::default())
    }

    /// The runtime the client's background tasks run on, and the connection they send over:
    /// `own` itself on the caller's runtime, else `background` (made on first need).
    pub(crate) fn place(
        &self,
        own: &Arc<SharedConnection>,
        background: &OnceCell<Arc<SharedConnection>>,
        connect_timeout: Duration,
    ) -> Result<(Handle, Arc<SharedConnection>)> {
        match self {
            BackgroundRuntime::CallersRuntime => Handle::try_current()
                .map(|runtime| (runtime, own.clone()))
                .map_err(|_| {
                    Error::InvalidArgument(
                        "this needs a tokio runtime: call it from inside one (or use the blocking client)"
                            .into(),
                    )
                }),
            BackgroundRuntime::OwnThread(thread) => {
                let thread = thread.get_or_try_init(BackgroundThread::start)?;
                let connection = background.get_or_init(|| {
                    Arc::new(SharedConnection::new(own.deployment().clone(), connect_timeout))
                });
                Ok((thread.runtime.clone(), connection.clone()))
            }
        }
    }
}

impl BackgroundThread {
    fn start() -> Result<BackgroundThread> {
        let runtime = new_runtime()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("redilock-bg".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| Error::Connection(format!("cannot start the background thread: {e}")))?;
        Ok(BackgroundThread {
            runtime: handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for BackgroundThread {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            // The last handle may go from a task on the thread itself, which then ends alone.
            if thread.thread().id() != std::thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

/// A single-threaded runtime with timers and I/O.
pub(crate) fn new_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Connection(format!("cannot start the I/O driver: {e}")))
}
