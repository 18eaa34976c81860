//! berth: a compose-style multi-container orchestrator.
//!
//! # Layout
//!
//! - [`cli`]: the `berth` command line, one file per command; a thin client of the engine.
//! - [`api`]: the engine's HTTP + JSON API types and stream framing.
//! - [`client`]: the CLI's connection to the engine (started on demand).
//! - [`engine`]: the daemon that owns all state of a root.
//! - [`compose`]: the compose loader, in numbered phases (parse, interpolate, merge, extends and
//!   include, normalize, profiles, validate) producing the canonical project model.
//! - [`convert`]: `berth convert`, the project model to typed Kubernetes manifests.
//! - [`planner`]: the pure planner: (desired, observed) to a plan of operations.
//! - [`graph`]: the service dependency graph (petgraph) every project command walks.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod cli;
pub mod client;
pub mod compose;
pub mod convert;
pub mod engine;
pub mod graph;
pub mod planner;
pub mod sys;
