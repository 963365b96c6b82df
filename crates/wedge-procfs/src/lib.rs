//! wedge-procfs
