//! Issue 14's attacks on the gateway, one module per promise: each shows the
//! attack working where it can (the old rule, or the limits off) and then
//! blocked.

use super::*;

mod leaks;
mod server_tools;
mod slowloris;
