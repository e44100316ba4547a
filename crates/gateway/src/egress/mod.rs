//! The egress proxy for commands granted network.
