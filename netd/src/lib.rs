//! berth's network layer.
//!
//! # Layout
//!
//! (filled in as modules land)
#![cfg_attr(test, allow(clippy::unwrap_used))]
