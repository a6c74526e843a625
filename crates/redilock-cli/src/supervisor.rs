//! What the main thread, the signal thread and the lease-loss callback share: the child (once
//! started), the signal that interrupted a wait, and whether the lease was lost. One mutex
//! orders them, so a signal or a loss is never missed between acquiring and starting the
//! child, and a pid is never signalled after its process was reaped.

use crate::exit::{self, Failure};
use crate::sys::{self, BlockedSignals, Received, SignalMask};
use redilock::{CancelSignal, Loss};
use std::process::{Command, ExitStatus};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub struct Supervisor {
    state: Mutex<State>,
    child_exited: Condvar,
    /// Ends the wait for the lock when a signal arrives before the child starts.
    pub cancel: CancelSignal,
    child_mask: SignalMask,
}

#[derive(Default)]
struct State {
    child: Child,
    signal: Option<i32>,
    lease_lost: bool,
    /// Why, as far as the renewal knows.
    loss: Option<Loss>,
    /// The lease was lost while the child ran, and the child was told so (and stopped).
    child_stopped: bool,
}

#[derive(Default, Clone, Copy, PartialEq)]
enum Child {
    #[default]
    NotStarted,
    Running(u32),
    Exited,
}

impl Supervisor {
    /// Blocks SIGINT, SIGTERM and SIGHUP and starts the thread that handles them. Call it
    /// first thing, before anything starts a thread.
    pub fn start() -> Result<Arc<Supervisor>, Failure> {
        let (signals, child_mask) =
            BlockedSignals::block().map_err(|e| Failure::internal("cannot block signals", e))?;
        let supervisor = Arc::new(Supervisor {
            state: Mutex::default(),
            child_exited: Condvar::new(),
            cancel: CancelSignal::new(),
            child_mask,
        });
        let watcher = supervisor.clone();
        std::thread::Builder::new()
            .name("redilock-signals".into())
            .spawn(move || {
                while let Ok(received) = signals.wait() {
                    watcher.on_signal(received);
                }
            })
            .map_err(|e| Failure::internal("cannot start the signal thread", e))?;
        Ok(supervisor)
    }

    /// The signal that cancelled the wait for the lock, if one did.
    pub fn interrupted_by(&self) -> Option<i32> {
        self.lock().signal
    }

    fn on_signal(&self, received: Received) {
        let mut state = self.lock();
        match state.child {
            Child::NotStarted => {
                state.signal = Some(received.number);
                self.cancel.cancel();
            }
            // A terminal's signal reached the child already: it shares our process group.
            Child::Running(pid) if !received.from_terminal => {
                sys::send_signal(pid, received.number)
            }
            Child::Running(_) | Child::Exited => {}
        }
    }

    /// Called once when renewal finds the lease lost: stops the child, SIGTERM first and
    /// SIGKILL when it is still running `kill_after` later.
    pub fn lease_lost(&self, name: &str, kill_after: Duration, loss: Option<Loss>) {
        let mut state = self.lock();
        state.lease_lost = true;
        state.loss = loss;
        let Child::Running(pid) = state.child else {
            return; // not started yet (it will not be), or done: the exit code tells
        };
        // Said now rather than at exit: the command may take until SIGKILL to stop.
        eprintln!(
            "redilock: lost the lock '{name}': {}: stopping the command",
            why_lost(loss)
        );
        state.child_stopped = true;
        sys::send_signal(pid, sys::SIGTERM);
        let (state, _) = self
            .child_exited
            .wait_timeout_while(state, kill_after, |state| {
                state.child == Child::Running(pid)
            })
            .unwrap_or_else(|e| e.into_inner());
        if state.child == Child::Running(pid) {
            sys::send_signal(pid, sys::SIGKILL);
        }
    }

    pub fn lease_was_lost(&self) -> bool {
        self.lock().lease_lost
    }

    /// How `run` ends when the lease was lost (renewal found it lost, or the release found
    /// it held no more), saying so unless stopping the child did.
    pub fn lost_lease_failure(&self, name: &str) -> Failure {
        let state = self.lock();
        if state.child_stopped {
            return Failure::without_message(exit::LOST);
        }
        let loss = match state.lease_lost {
            true => state.loss,
            false => Some(Loss::NotHeld), // the release was refused
        };
        Failure::new(
            exit::LOST,
            format!(
                "lost the lock '{name}' while holding it: {}",
                why_lost(loss)
            ),
        )
    }

    /// Starts `command` unless a signal or the loss of the lease came first, and waits for it.
    pub fn run_child(&self, mut command: Command) -> Result<ExitStatus, Failure> {
        let mut child = {
            let mut state = self.lock();
            if let Some(signal) = state.signal {
                return Err(Failure::new(
                    exit::signalled(signal),
                    format!("interrupted by signal {signal} before the command started"),
                ));
            }
            if state.lease_lost {
                return Err(Failure::without_message(exit::LOST)); // run() says why
            }
            self.child_mask.give_to(&mut command);
            let child = command.spawn().map_err(|e| cannot_run(&command, e))?;
            state.child = Child::Running(child.id());
            child
        };
        let status = match sys::wait_for_exit(child.id()) {
            Ok(()) => {
                self.child_has_exited();
                child.wait()
            }
            // Not expected for a child of ours; reaping still works, only without the guard
            // against signalling a reused pid.
            Err(_) => {
                let status = child.wait();
                self.child_has_exited();
                status
            }
        };
        status.map_err(|e| Failure::internal("cannot wait for the command", e))
    }

    fn child_has_exited(&self) {
        self.lock().child = Child::Exited;
        self.child_exited.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a lease was lost, as far as anyone can tell: only an answer from Redis says that the
/// lock is gone; without one, its fate is unknown.
fn why_lost(loss: Option<Loss>) -> &'static str {
    match loss {
        Some(Loss::NotHeld) => {
            "Redis says this token no longer holds it (it expired, was deleted, or another owner \
             took it)"
        }
        Some(Loss::NoAnswer) => {
            "Redis stopped answering and the lease ran out (the lock may have expired; whether \
             another owner holds it is unknown)"
        }
        Some(Loss::NotReplicated) => {
            "too few replicas acknowledged its renewals before the lease ran out (a failover \
             could have lost it), so it was released"
        }
        _ => "it could no longer be renewed",
    }
}

/// Spawn failures as shells report them: 127 when not found, 126 otherwise.
fn cannot_run(command: &Command, err: std::io::Error) -> Failure {
    let program = command.get_program().to_string_lossy();
    match err.kind() {
        std::io::ErrorKind::NotFound => {
            Failure::new(exit::NOT_FOUND, format!("{program}: command not found"))
        }
        _ => Failure::new(exit::CANNOT_EXECUTE, format!("cannot run {program}: {err}")),
    }
}
