//! A server's way out: a server configured with `hosts` gets an egress proxy
//! of its own, which lets it reach exactly those hosts and nothing else, each
//! connection on the record before it is made.
//!
//! The proxy is airlock's egress proxy ([`airlock_gateway::egress`]) serving
//! one Unix socket in the server's folder (`RUN_DIR/mcp/NAME/egress.sock`).
//! The sandbox carries connections to `127.0.0.1:`[`PROXY_PORT`] inside to
//! that socket (`--bridge`), the only TCP the server may make, and the
//! server is told of the proxy by `HTTPS_PROXY` and its kin. The proxy's
//! allowlist is the server's `hosts`, private addresses are refused, and
//! every decision goes to [`Launcher::record`]: an `egress_open` before the
//! connection is made (no record, no connection), an `egress_close` with
//! the bytes each way after, a `blocked_egress` for a host refused; each
//! names the server as its client (`mcp:NAME`).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use airlock_audit::event::Event;
use airlock_gateway::egress::{
    EgressConfig, EgressEvent, EgressProxy, EgressRecorder, Resolver, SystemResolver, check_host,
};

use crate::{Launcher, McpError};

/// The port inside the sandbox where the proxy answers (the sandbox's own
/// network namespace: nothing else listens there).
pub const PROXY_PORT: u16 = 3128;

/// Keeps one event in the session's record; an `Err` means it was not kept
/// (and a connection waiting for it is not made).
pub type Record = Arc<dyn Fn(Event) -> Result<(), String> + Send + Sync>;

/// For tests only, never set in production: lets a test's upstream on
/// loopback be reached under a made-up name.
#[doc(hidden)]
#[derive(Clone)]
pub struct EgressForTests {
    /// Answers the proxy's lookups instead of the system's resolver.
    pub resolver: Arc<dyn Resolver>,
    /// Let loopback and private addresses through (production refuses them).
    pub allow_private: bool,
    /// The ports that may be reached (production: 443 and 80).
    pub allow_ports: Vec<u16>,
}

impl std::fmt::Debug for EgressForTests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressForTests")
            .field("allow_private", &self.allow_private)
            .field("allow_ports", &self.allow_ports)
            .finish_non_exhaustive()
    }
}

/// The environment that sends a server's HTTP(S) through its proxy: set over
/// whatever its configuration says for the same names.
pub(crate) fn proxy_env() -> BTreeMap<String, String> {
    let url = format!("http://127.0.0.1:{PROXY_PORT}");
    let mut env = BTreeMap::new();
    for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        env.insert(name.to_string(), url.clone());
    }
    // Nothing bypasses the proxy: a direct connection would fail anyway.
    for name in ["NO_PROXY", "no_proxy"] {
        env.insert(name.to_string(), String::new());
    }
    // Node.js's own fetch takes the proxy from the environment only when asked.
    env.insert("NODE_USE_ENV_PROXY".to_string(), "1".to_string());
    env
}

/// Each entry of `hosts` is a host name (`api.github.com`) or a domain's
/// names below it (`*.github.com`); anything else is refused, naming it.
pub(crate) fn check_hosts(server: &str, hosts: &[String]) -> Result<(), McpError> {
    for entry in hosts {
        let name = entry.strip_prefix("*.").unwrap_or(entry);
        let config = EgressConfig { allow_domains: vec![name.to_string()], ..EgressConfig::default() };
        let valid = check_host(name, &config).is_ok_and(|v| v.host == name && v.literal.is_none());
        if !valid {
            return Err(McpError::Start {
                server: server.to_string(),
                reason: format!(
                    "its hosts entry {:?} is not a host name (`api.example.com`) or a domain (`*.example.com`)",
                    airlock_redact::terminal::one_line(entry)
                ),
            });
        }
    }
    Ok(())
}

/// What the proxy of a server with `hosts` lets through.
pub(crate) fn config(hosts: &[String], tests: Option<&EgressForTests>) -> EgressConfig {
    let mut config = EgressConfig {
        allow_domains: hosts.to_vec(),
        // The server is killed when it stops: nothing to finish.
        shutdown_grace: Duration::ZERO,
        ..EgressConfig::default()
    };
    if let Some(tests) = tests {
        config.allow_private = tests.allow_private;
        config.allow_ports = tests.allow_ports.clone();
    }
    config
}

/// The proxy's records, for one server, into the session's record.
struct ServerRecorder {
    client: String,
    record: Record,
}

impl EgressRecorder for ServerRecorder {
    fn record(&self, event: &EgressEvent) -> Result<(), String> {
        let mut event = event.clone();
        match &mut event {
            EgressEvent::Allowed { client, .. }
            | EgressEvent::Denied { client, .. }
            | EgressEvent::Closed { client, .. } => *client = self.client.clone(),
        }
        (self.record)(airlock_gateway::egress_audit::event(&event))
    }
}

/// Starts the proxy of the server `server` on `socket` (on the current
/// runtime); it serves until `shutdown` completes, then closes what is
/// open (each close recorded) and removes its socket.
pub(crate) fn start(
    server: &str,
    hosts: &[String],
    socket: &Path,
    launcher: &Launcher,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<tokio::task::JoinHandle<()>, McpError> {
    let Some(record) = launcher.record.clone() else {
        return Err(no_record(server, hosts));
    };
    check_hosts(server, hosts)?;
    let tests = launcher.egress_for_tests.as_ref();
    let resolver: Arc<dyn Resolver> = match tests {
        Some(tests) => tests.resolver.clone(),
        None => Arc::new(SystemResolver),
    };
    let recorder = Arc::new(ServerRecorder { client: format!("mcp:{server}"), record });
    let proxy = EgressProxy::new(config(hosts, tests), recorder, resolver);
    let listener = bind_stream(server, socket)?;
    let (name, socket) = (server.to_string(), socket.to_path_buf());
    Ok(tokio::spawn(async move {
        if let Err(e) = proxy.serve_unix(listener, shutdown).await {
            tracing::error!("MCP server {name}: its egress proxy stopped: {e}");
        }
        let _ = std::fs::remove_file(&socket);
    }))
}

/// Why a server with `hosts` is refused when the launcher keeps no record.
pub(crate) fn no_record(server: &str, hosts: &[String]) -> McpError {
    McpError::NotSupported {
        server: server.to_string(),
        what: format!("network access (hosts = {hosts:?})"),
        hint: "its connections must be on the record, and this launcher keeps none; remove `hosts`".into(),
    }
}

/// Runs `first` (the server's watcher), then waits for the proxy to end:
/// the server's end is over once its proxy's records are kept.
pub(crate) async fn then_proxy(first: impl Future<Output = ()>, proxy: Option<tokio::task::JoinHandle<()>>) {
    first.await;
    if let Some(proxy) = proxy {
        let _ = proxy.await;
    }
}

/// Listens on the stream socket at `path` (a path too long for a socket
/// address is reached through the folder's descriptor).
fn bind_stream(server: &str, path: &Path) -> Result<tokio::net::UnixListener, McpError> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let io = |what, source| McpError::Io { server: server.into(), what, path: path.to_path_buf(), source };
    let _ = std::fs::remove_file(path);
    let listener = if path.as_os_str().as_bytes().len() < 100 {
        std::os::unix::net::UnixListener::bind(path)
    } else {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io("listen on", std::io::Error::other("not a socket path")));
        };
        let folder = std::fs::File::open(dir).map_err(|e| io("open the folder of", e))?;
        std::os::unix::net::UnixListener::bind(
            PathBuf::from(format!("/proc/self/fd/{}", folder.as_raw_fd())).join(name),
        )
    }
    .map_err(|e| io("listen on", e))?;
    listener.set_nonblocking(true).map_err(|e| io("listen on", e))?;
    tokio::net::UnixListener::from_std(listener).map_err(|e| io("listen on", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allowlist_is_exactly_the_hosts_with_private_addresses_refused() {
        let hosts = vec!["api.github.com".to_string(), "*.githubusercontent.com".to_string()];
        let config = config(&hosts, None);
        assert_eq!(config.allow_domains, hosts);
        assert!(!config.allow_private && !config.allow_ip_literals);
        assert_eq!(config.allow_ports, [443, 80]);
        assert!(check_host("api.github.com", &config).is_ok());
        assert!(check_host("raw.githubusercontent.com", &config).is_ok());
        assert!(check_host("github.com", &config).is_err());
        assert!(check_host("evil.example", &config).is_err());
        assert!(check_host("127.0.0.1", &config).is_err());
    }

    #[test]
    fn hosts_entries_that_are_not_names_are_refused() {
        assert!(check_hosts("s", &["api.example.com".into(), "*.example.org".into()]).is_ok());
        for bad in ["https://api.example.com", "api.example.com:443", "10.0.0.1", "*", "a b", "", "*.*.x.com"] {
            let err = check_hosts("s", &[bad.to_string()]).unwrap_err().to_string();
            assert!(err.contains("is not a host name"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_proxy_environment_points_at_the_bridged_port_and_bypasses_nothing() {
        let env = proxy_env();
        for name in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
            assert_eq!(env[name], "http://127.0.0.1:3128");
        }
        assert_eq!((env["NO_PROXY"].as_str(), env["no_proxy"].as_str()), ("", ""));
    }

    #[test]
    fn each_record_names_the_server_as_its_client() {
        let kept = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = kept.clone();
        let recorder = ServerRecorder {
            client: "mcp:gh".into(),
            record: Arc::new(move |e| {
                sink.lock().unwrap().push(e);
                Ok(())
            }),
        };
        let denied =
            EgressEvent::Denied { client: "unix:pid=7".into(), target: "evil.example:443".into(), reason: "no".into() };
        recorder.record(&denied).unwrap();
        match &kept.lock().unwrap()[0] {
            Event::BlockedEgress { destination, reason, .. } => {
                assert_eq!(destination, "evil.example:443");
                assert!(reason.contains("mcp:gh") && !reason.contains("pid=7"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let failing = ServerRecorder { client: "mcp:gh".into(), record: Arc::new(|_| Err("disk full".into())) };
        assert_eq!(failing.record(&denied), Err("disk full".to_string()));
    }
}
