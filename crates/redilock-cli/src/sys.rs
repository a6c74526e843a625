//! The system calls std does not offer: waiting for signals on a thread of our own, sending
//! signals, and waiting for a child's exit without reaping it. The only unsafe code of the
//! tool lives here.

use std::io;
use std::mem::MaybeUninit;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// The signals `run` passes on to its command.
const FORWARDED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

pub const SIGTERM: libc::c_int = libc::SIGTERM;
pub const SIGKILL: libc::c_int = libc::SIGKILL;

/// A signal taken by [`BlockedSignals::wait`].
pub struct Received {
    pub number: libc::c_int,
    /// Sent by the kernel to the whole foreground process group (Ctrl-C, a terminal hang-up):
    /// a child in our group received it too.
    pub from_terminal: bool,
}

/// SIGINT, SIGTERM and SIGHUP, blocked so that they are only ever taken by [`Self::wait`]
/// (no handler runs, so nothing needs to be async-signal-safe).
pub struct BlockedSignals(libc::sigset_t);

/// The signal mask the process had before [`BlockedSignals::block`], for its children.
#[derive(Clone, Copy)]
pub struct SignalMask(libc::sigset_t);

impl BlockedSignals {
    /// Blocks the signals in the calling thread and in every thread it starts afterwards
    /// (threads inherit the mask, and so would children: see [`SignalMask::give_to`]). Call
    /// it before any other thread exists, or one of those would still die of the signal.
    pub fn block() -> io::Result<(BlockedSignals, SignalMask)> {
        let mut set = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: sigemptyset initialises the set, then it is only read and amended in place.
        let set = unsafe {
            libc::sigemptyset(set.as_mut_ptr());
            let mut set = set.assume_init();
            for signal in FORWARDED {
                libc::sigaddset(&mut set, signal);
            }
            set
        };
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `set` is a valid signal set; `previous` is filled in on success.
        let previous = unsafe {
            let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, previous.as_mut_ptr());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            previous.assume_init()
        };
        Ok((BlockedSignals(set), SignalMask(previous)))
    }

    /// Waits until one of the signals arrives.
    pub fn wait(&self) -> io::Result<Received> {
        loop {
            let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
            // SAFETY: the set is initialised and `info` is writable memory of the right type.
            let number = unsafe { libc::sigwaitinfo(&self.0, info.as_mut_ptr()) };
            if number > 0 {
                // SAFETY: zeroed, then filled in by a successful sigwaitinfo.
                let info = unsafe { info.assume_init() };
                return Ok(Received {
                    number,
                    from_terminal: info.si_code == libc::SI_KERNEL,
                });
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

impl SignalMask {
    /// Makes `command` start with this mask rather than inherit the blocked signals.
    pub fn give_to(self, command: &mut Command) {
        let mask = self.0;
        // SAFETY: the closure runs between fork and exec, where only async-signal-safe calls
        // are allowed; pthread_sigmask is one, and nothing is allocated.
        unsafe {
            command.pre_exec(move || {
                match libc::pthread_sigmask(libc::SIG_SETMASK, &mask, std::ptr::null_mut()) {
                    0 => Ok(()),
                    rc => Err(io::Error::from_raw_os_error(rc)),
                }
            });
        }
    }
}

/// Sends `signal` to process `pid`. A process that is already gone is not an error here: the
/// callers only signal a child they have not reaped yet.
pub fn send_signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, signal) };
}

/// Waits until child `pid` has exited but leaves it unreaped, so its pid cannot be reused
/// while another thread may still signal it; `std::process::Child::wait` reaps it afterwards.
pub fn wait_for_exit(pid: u32) -> io::Result<()> {
    loop {
        let mut info = MaybeUninit::<libc::siginfo_t>::zeroed();
        // SAFETY: `info` is writable memory of the right type; WNOWAIT leaves the child as is.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                info.as_mut_ptr(),
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
