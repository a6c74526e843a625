//! The C ABI of redilock: every `extern "C"` item of `libredilock`, as declared in
//! `include/redilock.h` (generated from this crate by cbindgen; doc comments here become the
//! header's). Nothing but the boundary lives here: the lock itself is the `redilock` crate.
//!
//! Each exported body runs inside `boundary::boundary`, so a panic becomes
//! `REDILOCK_STATUS_PANIC` instead of unwinding into C; every pointer is checked before use;
//! every failure returns a status and leaves a message for `redilock_last_error()`.
//!
//! Modules: `status` (codes and the last error), `boundary` (panics and pointers), `process`
//! (the process a handle was made in, across `fork()`), then one per exported object or
//! concern: `client`, `options`, `lock`, `lease`, `cancel`, `version`.

#![allow(non_camel_case_types)]
// These functions exist for C callers, whose pointer contracts are written in the header's
// doc comments; Rust code uses the `redilock` crate instead. Every pointer is checked.
#![allow(clippy::not_unsafe_ptr_arg_deref)]
#![warn(missing_docs)]

mod boundary;
mod process;

// In the order the header presents them.
pub mod cancel;
pub mod client;
pub mod lease;
pub mod lock;
pub mod options;
pub mod status;
pub mod version;
