//! The egress proxy for commands granted network.
//!
//! A command that the policy lets reach the network gets `HTTP_PROXY`/`HTTPS_PROXY` pointing
//! here. The proxy accepts `CONNECT host:port` tunnels and plain-HTTP absolute-URI requests,
//! and lets one through only when:
//!
//! 1. the host has exactly one accepted spelling and is in the domain allowlist
//!    ([`check_host`]: no NUL, CR/LF, percent-escapes, userinfo, IP literals in any encoding,
//!    or trailing-dot tricks) and the port is in the port allowlist;
//! 2. the name resolves, once, and every address of the answer is public ([`check_addr`]); an
//!    answer mixing public and private addresses is refused as a DNS-rebinding attempt;
//! 3. the [`EgressRecorder`] kept the `Allowed` record (if it cannot, the connection is not
//!    made: fail closed).
//!
//! It then connects to the address it checked, never resolving again, and counts the bytes
//! each way for the `Closed` record.
//!
//! ```no_run
//! use std::sync::Arc;
//! use airlock_gateway::egress::{EgressConfig, EgressEvent, EgressProxy, EgressRecorder, SystemResolver};
//!
//! struct Log;
//! impl EgressRecorder for Log {
//!     fn record(&self, event: &EgressEvent) -> Result<(), String> {
//!         tracing::info!(?event, "egress");
//!         Ok(())
//!     }
//! }
//!
//! # async fn run() -> std::io::Result<()> {
//! let config = EgressConfig { allow_domains: vec!["*.github.com".into()], ..EgressConfig::default() };
//! let proxy = EgressProxy::new(config, Arc::new(Log), Arc::new(SystemResolver));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! proxy.serve_tcp(listener, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
#![deny(missing_docs)]

mod host;
mod http;
mod proxy;
#[cfg(test)]
mod tests;

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;

pub use host::{HostError, ValidHost, check_addr, check_host};
pub use proxy::EgressProxy;

/// What the egress proxy lets through, and its limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EgressConfig {
    /// Hosts that may be reached: `github.com` (that name only) or `*.github.com` (any name
    /// below it, never `github.com` itself nor `evilgithub.com`). With `allow_ip_literals`, an
    /// entry may also be an IP address (`203.0.113.7`, `[2001:db8::7]`).
    pub allow_domains: Vec<String>,
    /// Ports that may be reached. Default `[443, 80]`.
    pub allow_ports: Vec<u16>,
    /// Allow loopback, private, CGNAT, link-local (cloud metadata), unique-local, unspecified,
    /// multicast and broadcast addresses, and the IPv6 forms that carry them. Default false.
    pub allow_private: bool,
    /// Allow targets written as IP addresses. Each must still be listed in `allow_domains`
    /// and pass [`check_addr`]. Default false.
    pub allow_ip_literals: bool,
    /// How long name resolution, and then the upstream TCP connect, may each take.
    pub connect_timeout: Duration,
    /// A connection with no bytes moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// The largest request header section accepted; larger gets 431.
    pub max_header_bytes: usize,
    /// How long a client has to send its complete request header section (slowloris guard).
    pub header_timeout: Duration,
    /// Connections served at once; beyond this a client gets 503 and is closed.
    pub max_connections: usize,
    /// After shutdown, how long open connections may continue before they are closed.
    pub shutdown_grace: Duration,
}

impl Default for EgressConfig {
    fn default() -> Self {
        Self {
            allow_domains: Vec::new(),
            allow_ports: vec![443, 80],
            allow_private: false,
            allow_ip_literals: false,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
            max_header_bytes: 16 * 1024,
            header_timeout: Duration::from_secs(10),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// One record of the proxy's decisions, for the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EgressEvent {
    /// A connection is about to be made. Recorded before connecting; if it cannot be recorded,
    /// the connection is not made.
    Allowed {
        /// Who asked: the peer address, or `unix` (`unix:pid=N` when known).
        client: String,
        /// `CONNECT`, or the method of a plain-HTTP request.
        method: String,
        /// The canonical host.
        host: String,
        /// The port.
        port: u16,
        /// The checked address that will be connected to.
        addr: SocketAddr,
    },
    /// A request was refused, or its name could not be resolved; nothing was connected.
    Denied {
        /// Who asked.
        client: String,
        /// What was asked for, escaped for logs and at most 200 characters. For plain HTTP
        /// only scheme and authority are kept: paths and queries can carry secrets.
        target: String,
        /// Why it was refused.
        reason: String,
    },
    /// A connection that was `Allowed` ended (also when the upstream connect failed, with
    /// zero bytes).
    Closed {
        /// Who asked.
        client: String,
        /// The canonical host.
        host: String,
        /// The port.
        port: u16,
        /// Bytes sent to the upstream: tunnel payload for CONNECT; the rewritten request head
        /// and body for plain HTTP.
        bytes_up: u64,
        /// Bytes sent back to the client, after the `200 Connection Established` for CONNECT;
        /// the rewritten response for plain HTTP.
        bytes_down: u64,
        /// How long the connection lasted, from the upstream connect attempt.
        millis: u64,
    },
}

/// Keeps the proxy's records, typically in the audit log.
pub trait EgressRecorder: Send + Sync + 'static {
    /// Called before a connection is made (Allowed / Denied) and after it closes. An Err on
    /// Allowed means the record could not be kept: the connection must NOT be made (fail
    /// closed), and the client gets 503.
    ///
    /// Called on a blocking thread, so it may write and sync a file.
    fn record(&self, event: &EgressEvent) -> Result<(), String>;
}

/// Resolves host names. A trait so tests (and a future DNS-over-HTTPS resolver) can answer.
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host` (a validated name, never an IP literal), with `port` attached.
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Vec<SocketAddr>>>;
}

/// The system resolver (`getaddrinfo` via [`tokio::net::lookup_host`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, io::Result<Vec<SocketAddr>>> {
        let host = host.to_owned();
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), port)).await?.collect()) })
    }
}
