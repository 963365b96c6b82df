//! wedge-render
