//! End-to-end tests of single containers: the real `berth` binary, as root.
