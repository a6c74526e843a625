//! The library's version, at compile time (macros in the header) and at run time.

use std::ffi::{c_char, CStr};

/// Library version at compile time; `redilock_version()` gives it at run time. A test keeps
/// these equal to the version in Cargo.toml. A program built against 0.MINOR runs only with a
/// library of the same minor version (the soname says so: libredilock.so.0.MINOR).
pub const REDILOCK_VERSION_MAJOR: u32 = 0;
/// See `REDILOCK_VERSION_MAJOR`.
pub const REDILOCK_VERSION_MINOR: u32 = 2;
/// See `REDILOCK_VERSION_MAJOR`.
pub const REDILOCK_VERSION_PATCH: u32 = 0;

/// The library version ("MAJOR.MINOR.PATCH"), static.
#[no_mangle]
pub extern "C" fn redilock_version() -> *const c_char {
    static VERSION: &CStr =
        match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
            Ok(version) => version,
            Err(_) => panic!("version contains NUL"),
        };
    VERSION.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_constants_match_cargo_toml() {
        assert_eq!(
            REDILOCK_VERSION_MAJOR.to_string(),
            env!("CARGO_PKG_VERSION_MAJOR")
        );
        assert_eq!(
            REDILOCK_VERSION_MINOR.to_string(),
            env!("CARGO_PKG_VERSION_MINOR")
        );
        assert_eq!(
            REDILOCK_VERSION_PATCH.to_string(),
            env!("CARGO_PKG_VERSION_PATCH")
        );
        // SAFETY: static NUL-terminated string.
        let runtime = unsafe { CStr::from_ptr(redilock_version()) };
        assert_eq!(runtime.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}
