//! Taking a lock as the command line asks, with a status line while it waits on a terminal.

use crate::args::AcquireArgs;
use crate::duration;
use crate::exit::{self, Failure};
use crate::supervisor::Supervisor;
use redilock::{blocking::Client, Error, Lease, LockState, Wait};
use std::io::{IsTerminal, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

/// How often the status line is refreshed, and how long the wait is before it first shows.
const STATUS_EVERY: Duration = Duration::from_secs(1);

/// Takes `name`; a signal (through the supervisor) ends the wait with 128+signal. A lock held
/// by another owner ends it with the conflict code, said on stderr unless the caller chose the
/// code or asked for quiet.
pub fn acquire(
    client: &Client,
    name: &str,
    args: &AcquireArgs,
    supervisor: &Supervisor,
    quiet: bool,
) -> Result<Lease, Failure> {
    let (ttl, wait) = (Some(args.ttl), args.wait());
    let outcome = if wait != Wait::TryOnce && !quiet && std::io::stderr().is_terminal() {
        wait_showing_holder(client, name, ttl, wait, supervisor)
    } else {
        client.lock_cancellable(name, ttl, wait, &supervisor.cancel)
    };
    outcome.map_err(|err| match (&err, supervisor.interrupted_by()) {
        (Error::NotAcquired(_), _) if args.silent_conflict(quiet) => {
            Failure::without_message(args.conflict_code())
        }
        (Error::NotAcquired(_), _) => Failure::new(args.conflict_code(), err.message()),
        (Error::Cancelled(_), Some(signal)) => Failure::new(exit::signalled(signal), err.message()),
        _ => Failure::from(err),
    })
}

/// Waits in one lock call, so the waiter keeps its place in the lock's queue, while another
/// thread tells every [`STATUS_EVERY`] who holds the lock.
fn wait_showing_holder(
    client: &Client,
    name: &str,
    ttl: Option<Duration>,
    wait: Wait,
    supervisor: &Supervisor,
) -> redilock::Result<Lease> {
    // Dropping `stop` ends the drawer's current wait at once, not at its next refresh.
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|scope| {
        // Without a thread for it, the wait goes on without the line rather than failing.
        let _ = std::thread::Builder::new()
            .name("redilock-status".into())
            .spawn_scoped(scope, move || {
                let mut line = StatusLine::default();
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(STATUS_EVERY) {
                    line.show(&waiting_for(client, name));
                }
            });
        let outcome = client.lock_cancellable(name, ttl, wait, &supervisor.cancel);
        drop(stop);
        // The scope joins the drawer, so the line is erased before anything else is written.
        outcome
    })
}

fn waiting_for(client: &Client, name: &str) -> String {
    match client.state(name) {
        Ok(LockState::Held {
            remaining: Some(remaining),
        }) => format!(
            "waiting for '{name}' — held, {} left",
            duration::describe(remaining)
        ),
        Ok(LockState::Held { remaining: None }) => {
            format!("waiting for '{name}' — held, no expiry")
        }
        Ok(LockState::Free) | Err(_) => format!("waiting for '{name}'"),
    }
}

/// One line on stderr, rewritten in place and erased when dropped.
#[derive(Default)]
struct StatusLine {
    shown: bool,
}

impl StatusLine {
    fn show(&mut self, text: &str) {
        // \r returns to the line's start, ESC[K erases what a longer previous text left.
        let _ = write!(std::io::stderr(), "\r{text}\x1b[K");
        self.shown = true;
    }
}

impl Drop for StatusLine {
    fn drop(&mut self) {
        if self.shown {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }
}
