//! wedge-analysis
