//! `redilock_options`: the builder behind `redilock_new_with_options`.

use crate::boundary::{boundary, c_str, free_box, hand_out, non_null_mut, null_argument, Outcome};
use crate::status::redilock_status;
use redilock_core::{millis, Options, ReplicaAcks, TlsClientCert};
use std::ffi::{c_char, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// Options for `redilock_new_with_options`. A builder owned by one thread at a time.
pub struct redilock_options {
    pub(crate) options: Options,
}

/// Creates an options object with the defaults: retry interval 10000 ms, connect timeout
/// 2000 ms, command timeout 2000 ms, no default TTL, empty key prefix, fair, replica
/// acknowledgement `REDILOCK_REPLICA_ACKS_AUTO` within half the command timeout, no TLS CA
/// file (the system's root certificates) and no TLS client certificate.
///
/// On success `*options_out` owns a new object; free it with `redilock_options_free` (it may
/// be freed right after `redilock_new_with_options`, which copies it).
#[no_mangle]
pub extern "C" fn redilock_options_new(options_out: *mut *mut redilock_options) -> redilock_status {
    boundary(|| {
        let options = Options::default();
        hand_out(options_out, redilock_options { options })
    })
}

/// How often a waiter looks at the lock when nothing wakes it: a safety net, since a release
/// hands the lock to the first waiter in line itself. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_retry_interval_ms(
    options: *mut redilock_options,
    retry_interval_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.retry_interval = millis::positive(retry_interval_ms, "retry interval")?;
        Ok(())
    })
}

/// How long establishing a connection may take. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_connect_timeout_ms(
    options: *mut redilock_options,
    connect_timeout_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.connect_timeout = millis::positive(connect_timeout_ms, "connect timeout")?;
        Ok(())
    })
}

/// How long one Redis command may wait for its reply. Must be > 0.
#[no_mangle]
pub extern "C" fn redilock_options_set_command_timeout_ms(
    options: *mut redilock_options,
    command_timeout_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.command_timeout = millis::positive(command_timeout_ms, "command timeout")?;
        Ok(())
    })
}

/// TTL used by lock calls that pass `ttl_ms = 0`; 0 here means every call must pass one.
/// At most `REDILOCK_MAX_TTL_MS`.
#[no_mangle]
pub extern "C" fn redilock_options_set_default_ttl_ms(
    options: *mut redilock_options,
    default_ttl_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.default_ttl = millis::ttl(default_ttl_ms)?;
        Ok(())
    })
}

/// Text put in front of every lock name to form its Redis key (e.g. "myapp:"). Default "",
/// which makes the key the name itself (compatible with python-redilock). The string is copied.
#[no_mangle]
pub extern "C" fn redilock_options_set_key_prefix(
    options: *mut redilock_options,
    key_prefix: *const c_char,
) -> redilock_status {
    boundary(|| {
        let prefix = c_str(key_prefix, "key_prefix")?.to_vec();
        set_checked(options, |o| {
            o.key_prefix = prefix;
            Ok(())
        })
    })
}

/// Fair (true, the default): waiters take turns in arrival order, and a release hands the lock
/// to the first in line. Not fair (false): this client's lock calls take a free lock whoever
/// waits, and its waiters are only woken to try again; for short critical sections where
/// throughput matters more than order (a waiter may be passed over any number of times).
#[no_mangle]
pub extern "C" fn redilock_options_set_fair(
    options: *mut redilock_options,
    fair: bool,
) -> redilock_status {
    set(options, |o| {
        o.fair = fair;
        Ok(())
    })
}

/// Quorum clients only (`redilock_new_quorum`): how many masters must grant a lock, an
/// extension or a renewal. 0 (the default): a majority, N/2 + 1. More than half of the
/// masters and at most all of them, checked when the client is created.
#[no_mangle]
pub extern "C" fn redilock_options_set_quorum(
    options: *mut redilock_options,
    quorum: usize,
) -> redilock_status {
    set(options, |o| {
        o.quorum = (quorum > 0).then_some(quorum);
        Ok(())
    })
}

/// Quorum clients only: how long one master may take to answer one call before it counts as
/// failed for that call; keep it small against the TTL. 0 (the default): a tenth of the
/// call's TTL, at least 50 ms (500 ms for calls without a TTL: unlock, remaining TTL, ping),
/// at most the command timeout. Must not be negative.
#[no_mangle]
pub extern "C" fn redilock_options_set_node_timeout_ms(
    options: *mut redilock_options,
    node_timeout_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.node_timeout = millis::optional(node_timeout_ms, "node timeout")?;
        Ok(())
    })
}

/// `count` of `redilock_options_set_replica_acks`: one replica when the server is a primary
/// with replicas connected, none otherwise (the default).
pub const REDILOCK_REPLICA_ACKS_AUTO: i32 = -1;

/// How many replicas must acknowledge each lock write (an acquisition, an extend, a renewal)
/// before it counts. The client sends `WAIT count timeout_ms` after the write, on the same
/// connection and in the same round trip (a client's first write of each kind costs one round
/// trip more). A lock that fewer replicas acknowledged is released and the call returns
/// `REDILOCK_STATUS_NOT_REPLICATED`; an auto-renewed lock whose renewals go unacknowledged
/// until its lease runs out is lost, and released.
///
/// `count`: `REDILOCK_REPLICA_ACKS_AUTO` (-1, the default: 1 when the server is a primary
/// with replicas connected, as `ROLE` tells, else 0), 0 (off: no `WAIT`), or a number of
/// replicas (more than the server has makes every lock call fail); below -1 is
/// INVALID_ARGUMENT. `timeout_ms`: how long `WAIT` waits; 0 for the default, half the command
/// timeout; negative is INVALID_ARGUMENT. The command timeout bounds a write and its `WAIT`
/// together, so `redilock_new_with_options` refuses (INVALID_ARGUMENT) a `timeout_ms` that is
/// not shorter than it.
#[no_mangle]
pub extern "C" fn redilock_options_set_replica_acks(
    options: *mut redilock_options,
    count: i32,
    timeout_ms: i64,
) -> redilock_status {
    set(options, |o| {
        o.replica_acks = match count {
            REDILOCK_REPLICA_ACKS_AUTO => ReplicaAcks::Auto,
            count => ReplicaAcks::Count(u32::try_from(count).map_err(|_| {
                redilock_core::Error::InvalidArgument(format!(
                    "the replica count must be REDILOCK_REPLICA_ACKS_AUTO (-1), 0 (off) or \
                     positive, not {count}"
                ))
            })?),
        };
        o.replica_ack_timeout = millis::optional(timeout_ms, "replica acknowledgement timeout")?;
        Ok(())
    })
}

/// For `rediss://` URLs: the PEM file of the certificate authorities that may sign the
/// server's certificate, trusted instead of the system's root certificates. NULL clears it.
/// The path is copied; the file is read by `redilock_new_with_options`, which returns
/// INVALID_ARGUMENT, naming the file, when it cannot be read or holds no certificate (and for
/// a URL that is not `rediss://`).
#[no_mangle]
pub extern "C" fn redilock_options_set_tls_ca_file(
    options: *mut redilock_options,
    path: *const c_char,
) -> redilock_status {
    boundary(|| {
        let ca_file = optional_path(path);
        set_checked(options, |o| {
            o.tls_ca_file = ca_file;
            Ok(())
        })
    })
}

/// For `rediss://` URLs: the certificate this client presents to servers that require one
/// (mutual TLS), and its private key, two PEM files (the certificate may be followed by the
/// intermediates of its chain). A NULL `cert_path` clears both; with a certificate, the key
/// is required. The paths are copied; the files are read by `redilock_new_with_options`, which
/// returns INVALID_ARGUMENT, naming the file, when one cannot be read, holds no certificate or
/// key, or the two do not belong together.
#[no_mangle]
pub extern "C" fn redilock_options_set_tls_client_cert_file(
    options: *mut redilock_options,
    cert_path: *const c_char,
    key_path: *const c_char,
) -> redilock_status {
    boundary(|| {
        let client_cert = match optional_path(cert_path) {
            Some(cert_file) => Some(TlsClientCert {
                cert_file,
                key_file: optional_path(key_path).ok_or_else(|| null_argument("key_path"))?,
            }),
            None => None,
        };
        set_checked(options, |o| {
            o.tls_client_cert = client_cert;
            Ok(())
        })
    })
}

/// Frees an options object. NULL is a no-op.
#[no_mangle]
pub extern "C" fn redilock_options_free(options: *mut redilock_options) {
    free_box(options)
}

/// Sets one option, inside the boundary.
fn set(
    options: *mut redilock_options,
    change: impl FnOnce(&mut Options) -> redilock_core::Result<()>,
) -> redilock_status {
    boundary(|| set_checked(options, change))
}

/// A path given as a C string; NULL is none. Paths are bytes on the platforms supported.
fn optional_path(path: *const c_char) -> Option<PathBuf> {
    let bytes = c_str(path, "path").ok()?;
    Some(PathBuf::from(OsStr::from_bytes(bytes)))
}

fn set_checked(
    options: *mut redilock_options,
    change: impl FnOnce(&mut Options) -> redilock_core::Result<()>,
) -> Outcome {
    let options = non_null_mut(options, "options")?;
    Ok(change(&mut options.options)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::{redilock, redilock_free, redilock_new_with_options, redilock_ping};
    use crate::lease::redilock_unlock;
    use crate::lock::{redilock_lock, REDILOCK_TOKEN_LEN};
    use crate::status::{
        redilock_last_error, REDILOCK_STATUS_INVALID_ARGUMENT, REDILOCK_STATUS_OK,
        REDILOCK_STATUS_TLS,
    };
    use redilock_test_harness::tls::TestCertificates;
    use redilock_test_harness::RedisServer;
    use std::ffi::{CStr, CString};
    use std::path::Path;
    use std::ptr;

    fn c_path(path: &Path) -> CString {
        CString::new(path.to_str().unwrap()).unwrap()
    }

    fn last_error() -> String {
        // SAFETY: never NULL, valid until the next failing call on this thread.
        unsafe { CStr::from_ptr(redilock_last_error()) }
            .to_string_lossy()
            .into_owned()
    }

    /// A client of `server` with the options `configure` sets; NULL (and its status) when
    /// it cannot be made.
    fn new_client(
        server: &RedisServer,
        configure: impl FnOnce(*mut redilock_options),
    ) -> (redilock_status, *mut redilock) {
        let mut options = ptr::null_mut();
        assert_eq!(redilock_options_new(&mut options), REDILOCK_STATUS_OK);
        configure(options);
        let url = CString::new(server.url()).unwrap();
        let mut client = ptr::null_mut();
        let status = redilock_new_with_options(url.as_ptr(), options, &mut client);
        redilock_options_free(options);
        (status, client)
    }

    #[test]
    fn a_client_with_the_tls_options_locks_over_mutual_tls() {
        let certificates = TestCertificates::generate();
        let server = RedisServer::start_tls(&certificates, true);
        let (ca, cert, key) = (
            c_path(&certificates.ca()),
            c_path(&certificates.client_cert()),
            c_path(&certificates.client_key()),
        );
        let (status, client) = new_client(&server, |options| {
            assert_eq!(
                redilock_options_set_tls_ca_file(options, ca.as_ptr()),
                REDILOCK_STATUS_OK
            );
            let status =
                redilock_options_set_tls_client_cert_file(options, cert.as_ptr(), key.as_ptr());
            assert_eq!(status, REDILOCK_STATUS_OK);
        });
        assert_eq!(status, REDILOCK_STATUS_OK, "{}", last_error());
        let mut token = [0 as c_char; REDILOCK_TOKEN_LEN];
        let status = redilock_lock(
            client,
            c"mtls".as_ptr(),
            10_000,
            0,
            token.as_mut_ptr(),
            token.len(),
        );
        assert_eq!(status, REDILOCK_STATUS_OK, "{}", last_error());
        assert_eq!(
            redilock_unlock(client, c"mtls".as_ptr(), token.as_ptr()),
            REDILOCK_STATUS_OK
        );
        redilock_free(client);
    }

    #[test]
    fn a_server_certificate_of_another_ca_is_a_tls_status() {
        let certificates = TestCertificates::generate();
        let server = RedisServer::start_tls(&certificates, false);
        let other_ca = c_path(&certificates.other_ca());
        let (status, client) = new_client(&server, |options| {
            redilock_options_set_tls_ca_file(options, other_ca.as_ptr());
        });
        assert_eq!(status, REDILOCK_STATUS_OK);
        assert_eq!(redilock_ping(client), REDILOCK_STATUS_TLS);
        assert!(
            last_error().ends_with("did not verify: UnknownIssuer"),
            "{}",
            last_error()
        );
        redilock_free(client);
    }

    #[test]
    fn a_missing_file_is_refused_when_the_client_is_created_and_null_clears_it() {
        let certificates = TestCertificates::generate();
        let server = RedisServer::start_tls(&certificates, false);
        let missing = c_path(&certificates.ca().with_file_name("missing.pem"));
        let (status, client) = new_client(&server, |options| {
            redilock_options_set_tls_ca_file(options, missing.as_ptr());
        });
        assert_eq!(status, REDILOCK_STATUS_INVALID_ARGUMENT);
        assert!(client.is_null());
        assert!(last_error().contains("missing.pem"), "{}", last_error());
        let (status, client) = new_client(&server, |options| {
            redilock_options_set_tls_ca_file(options, missing.as_ptr());
            redilock_options_set_tls_ca_file(options, ptr::null());
        });
        assert_eq!(status, REDILOCK_STATUS_OK);
        redilock_free(client);
    }
}
