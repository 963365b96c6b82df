//! wedge-coredump
