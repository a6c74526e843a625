//! Exit codes (sysexits(3) where one fits) and the one-line failure a command ends with.

use redilock::Error;

/// A command line that cannot be used: unknown option, bad duration, bad URL.
pub const USAGE: u8 = 64;
/// Redis cannot be reached, timed out, refused the command (NOAUTH, READONLY, …), or the TLS
/// handshake with it failed; or too few replicas acknowledged the lock.
pub const UNAVAILABLE: u8 = 69;
/// Something failed that should not (a system call, a thread that cannot start).
pub const INTERNAL: u8 = 70;
/// The lock is held by another owner and the wait ended (`--conflict-exit-code` changes it).
pub const NOT_ACQUIRED: u8 = 75;
/// The lock was lost: `run` stopped its command; `unlock`/`extend`: the token does not hold
/// it. Past the sysexits range and below the shells' 126–165, so it means only this.
pub const LOST: u8 = 79;
/// As in shells: the command exists but cannot be executed, or was not found.
pub const CANNOT_EXECUTE: u8 = 126;
pub const NOT_FOUND: u8 = 127;

/// The exit code of a process ended by `signal`, as shells report it.
pub fn signalled(signal: i32) -> u8 {
    u8::try_from(128 + signal).unwrap_or(u8::MAX)
}

/// Why a command ends unsuccessfully: its exit code and, unless already said, one line.
pub struct Failure {
    pub code: u8,
    pub message: Option<String>,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: Some(message.into()),
        }
    }

    /// A failure that prints nothing at the end: its reason was said when it happened, or is
    /// not to be said (a conflict the caller handles by its exit code).
    pub fn without_message(code: u8) -> Failure {
        Failure {
            code,
            message: None,
        }
    }

    pub fn internal(what: &str, err: std::io::Error) -> Failure {
        Failure::new(INTERNAL, format!("{what}: {err}"))
    }
}

/// The failure for a library error. Where `--conflict-exit-code` or a signal decide the code
/// (`NotAcquired`, `Cancelled`), the caller maps those itself.
impl From<Error> for Failure {
    fn from(err: Error) -> Failure {
        let code = match err {
            Error::InvalidArgument(_) => USAGE,
            Error::NotAcquired(_) => NOT_ACQUIRED,
            Error::NotOwner(_) => LOST,
            Error::Connection(_)
            | Error::Redis(_)
            | Error::Tls(_)
            | Error::NotReplicated(_)
            | Error::QuorumUnavailable(_) => UNAVAILABLE,
            Error::Cancelled(_) | Error::Closed(_) => INTERNAL,
        };
        Failure::new(code, err.message())
    }
}
