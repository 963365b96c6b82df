//! wedge-vmcore
