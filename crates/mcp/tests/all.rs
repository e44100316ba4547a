//! airlock-mcp's integration tests: real servers (Python, standard library
//! only) in real sandboxes, through the `airlock` binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

mod suite;
