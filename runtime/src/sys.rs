//! Raw syscalls behind safe wrappers: the only module with `unsafe`.
