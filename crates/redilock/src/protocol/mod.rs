//! The acquisition protocol: the Lua scripts that make each operation atomic, the keys a lock
//! keeps in Redis, and every call with the meaning of its reply. Nothing here does I/O.

pub(crate) mod calls;
pub(crate) mod keys;
mod scripts;
