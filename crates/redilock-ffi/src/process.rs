//! Which process a handle was made in, told without a system call per use. Every call checks
//! its handle, and `getpid()` is a system call (glibc no longer caches it): instead, each
//! child made by `fork()` counts one generation more than its parent, raised by a
//! `pthread_atfork` handler, so a handle made before a fork never matches in the child.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// Forks between the first process that made a handle and this one.
static GENERATION: AtomicU64 = AtomicU64::new(0);

extern "C" fn count_fork() {
    GENERATION.fetch_add(1, Ordering::Relaxed);
}

/// The process a handle belongs to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Process {
    /// Counted by the fork handler.
    Generation(u64),
    /// Told by `getpid()`, when the handler could not be registered (out of memory).
    Pid(u32),
}

impl Process {
    pub(crate) fn current() -> Process {
        static FORKS_COUNTED: OnceLock<bool> = OnceLock::new();
        // SAFETY: the handler only raises an atomic counter, which a child of a process with
        // several threads may do before it calls anything else.
        let counted = *FORKS_COUNTED
            .get_or_init(|| unsafe { libc::pthread_atfork(None, None, Some(count_fork)) } == 0);
        if counted {
            Process::Generation(GENERATION.load(Ordering::Relaxed))
        } else {
            Process::Pid(std::process::id())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_forked_child_is_another_process_and_its_parent_stays_the_same() {
        let parent = Process::current();
        // SAFETY: the child only compares two values and exits, without running destructors.
        match unsafe { libc::fork() } {
            0 => {
                let code = if Process::current() == parent { 1 } else { 0 };
                // SAFETY: ends the child at once, as after fork() in a threaded test binary.
                unsafe { libc::_exit(code) }
            }
            child => {
                assert!(child > 0, "fork failed");
                let mut status = 0;
                // SAFETY: waits for the child made above; `status` is a valid place.
                assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "the child saw its parent's process"
                );
                assert_eq!(Process::current(), parent);
            }
        }
    }
}
