//! The egress broker and team gateway: every model request passes here,
//! where it is authenticated, checked against the configured upstreams,
//! redacted, recorded in the audit log before it leaves (or refused if it
//! cannot be recorded), forwarded, and its answer streamed back and recorded.
//!
//! What leaves is only what was looked at: the body with every string
//! scanned but protocol fields at their known places ([`body`]), server-side
//! tools removed unless the policy names them ([`server_tools`]), headers
//! from an allowlist with validated values and no query string
//! ([`forwarded`]); every change is a note on the request's record. The
//! server bounds slow clients ([`server`]: header and body timeouts, a
//! connection cap, requests in flight per key). A broker that wraps an
//! agent can also record what each request adds to the conversation: the
//! person's turns and the agent's tool calls ([`conversation`]). Operators
//! get readiness, drain and reload ([`ops`]) and OTLP export ([`telemetry`]).
#![deny(missing_docs)]

pub mod access;
pub mod body;
pub mod config;
pub mod conversation;
pub mod egress;
pub mod egress_audit;
pub mod forwarded;
pub mod gemini;
pub mod jwt;
pub mod keys;
#[cfg(feature = "postgres")]
pub mod keys_pg;
pub mod oidc;
pub mod ops;
pub mod server;
pub mod server_tools;
pub mod telemetry;
pub mod witnessing;
