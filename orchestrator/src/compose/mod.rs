//! The compose loader.
