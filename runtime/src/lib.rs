//! berth's container runtime.
//!
//! # Layout
//!
//! - [`fsutil`]: atomic file writes (write, fsync, rename) used for every piece of state on disk.
//! - [`sys`]: raw syscalls (clone3, memfd, pidfd, execveat, capset,
//!   pivot_root) behind safe wrappers; with `cgroup::sys` (BPF) and `image::sys` (xattrs), the
//!   only places with `unsafe`.
//! - [`cgroup`]: cgroup v1, v2 and hybrid hosts: limits, freezer, OOM detection, stats, devices.
//! - [`image`]: the content-addressed image store: layers, configs, references, import.
//! - [`spec`]: the container specification the engine hands to the in-container init.
//! - [`container`]: the host side of the lifecycle: create, start, wait, kill, stop, delete, exec.
//! - [`init`]: PID 1 of every container: sets up the root, forks the app, forwards signals,
//!   reaps zombies, writes logs and the exit status.
//! - [`caps`]: capability names and Docker's default set.
//! - [`logs`]: the per-container JSON-lines log file: reading, following, rotation.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod caps;
pub mod cgroup;
pub mod container;
pub mod fsutil;
pub mod image;
pub mod init;
pub mod logs;
pub mod spec;
pub mod sys;
