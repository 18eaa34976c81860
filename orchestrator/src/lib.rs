//! berth: a compose-style multi-container orchestrator.
//!
//! # Layout
//!
//! - [`cli`]: the `berth` command line, one file per command; a thin client of the engine.
//! - [`compose`]: the compose loader, in numbered phases (parse, interpolate, merge, extends and
//!   include, normalize, profiles, validate) producing the canonical project model.
//! - [`graph`]: the service dependency graph (petgraph) every project command walks.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod cli;
pub mod compose;
pub mod graph;
