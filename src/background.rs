//! Where a client runs the work that goes on between calls: the wake-up subscriber, the
//! auto-renewals and the cleanups. None of it may depend on a caller being inside a call.

use crate::connection::SharedConnection;
use crate::error::{Error, Result};
use once_cell::sync::OnceCell;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Handle;

pub(crate) enum Background {
    /// The async client: the runtime of the caller that first needs it, over the client's
    /// own connection.
    CallersRuntime,
    /// The blocking client: a thread of its own, with its own runtime and connection (a
    /// connection is bound to the runtime that drives it), started on first need.
    OwnThread(OnceCell<Worker>),
}

pub(crate) struct Worker {
    runtime: Handle,
    connection: Arc<SharedConnection>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// The runtime the client's background tasks run on, and the connection they send over.
    pub(crate) fn place(
        &self,
        own: &Arc<SharedConnection>,
        connect_timeout: Duration,
    ) -> Result<(Handle, Arc<SharedConnection>)> {
        match self {
            Background::CallersRuntime => Handle::try_current()
                .map(|runtime| (runtime, own.clone()))
                .map_err(|_| {
                    Error::InvalidArgument(
                        "this needs a tokio runtime: call it from inside one (or use the blocking client)"
                            .into(),
                    )
                }),
            Background::OwnThread(worker) => {
                let worker = worker.get_or_try_init(|| {
                    let connection = SharedConnection::new(own.redis_client().clone(), connect_timeout);
                    Worker::start(connection)
                })?;
                Ok((worker.runtime.clone(), worker.connection.clone()))
            }
        }
    }
}

impl Worker {
    fn start(connection: SharedConnection) -> Result<Worker> {
        let runtime = new_runtime()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("redilock-bg".into())
            .spawn(move || {
                let _ = runtime.block_on(stopped);
            })
            .map_err(|e| Error::Connection(format!("cannot start the background thread: {e}")))?;
        Ok(Worker {
            runtime: handle,
            connection: Arc::new(connection),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Worker {
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
