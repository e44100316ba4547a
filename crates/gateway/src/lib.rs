//! The egress broker and team gateway: every model request passes here,
//! where it is authenticated, checked against the configured upstreams,
//! redacted, recorded in the audit log before it leaves (or refused if it
//! cannot be recorded), forwarded, and its answer streamed back and recorded.
#![deny(missing_docs)]

pub mod body;
pub mod config;
pub mod egress;
pub mod egress_audit;
pub mod forwarded;
pub mod keys;
pub mod server;
pub mod server_tools;
