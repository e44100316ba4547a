//! End-to-end tests of the proxy, on loopback only: a real echo server and a real HTTP
//! upstream on 127.0.0.1, a scripted resolver, and raw TCP writes for hostile request lines.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::*;

const WAIT: Duration = Duration::from_secs(5);

#[derive(Default)]
struct Recorder {
    events: Mutex<Vec<EgressEvent>>,
    fail_allowed: bool,
}

impl EgressRecorder for Recorder {
    fn record(&self, event: &EgressEvent) -> Result<(), String> {
        if self.fail_allowed && matches!(event, EgressEvent::Allowed { .. }) {
            return Err("disk full".into());
        }
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Recorder {
    fn events(&self) -> Vec<EgressEvent> {
        self.events.lock().unwrap().clone()
    }

    /// Waits for the first event `pick` accepts.
    async fn wait_for<T>(&self, pick: impl Fn(&EgressEvent) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(found) = self.events().iter().find_map(&pick) {
                return found;
            }
            assert!(tokio::time::Instant::now() < deadline, "event not recorded; have {:?}", self.events());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn denied_reason(&self) -> String {
        self.wait_for(|e| match e {
            EgressEvent::Denied { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .await
    }
}

/// Answers from a fixed table and counts lookups.
#[derive(Default)]
struct MapResolver {
    names: HashMap<String, Vec<IpAddr>>,
    lookups: AtomicUsize,
}

impl MapResolver {
    fn with(entries: &[(&str, &[&str])]) -> Arc<Self> {
        let names = entries
            .iter()
            .map(|(name, addrs)| ((*name).to_owned(), addrs.iter().map(|a| a.parse().unwrap()).collect()))
            .collect();
        Arc::new(Self { names, lookups: AtomicUsize::new(0) })
    }
}

impl Resolver for MapResolver {
    fn resolve(&self, host: &str, port: u16) -> BoxFuture<'_, std::io::Result<Vec<SocketAddr>>> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        let answer = match self.names.get(host) {
            Some(addrs) => Ok(addrs.iter().map(|ip| SocketAddr::new(*ip, port)).collect()),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such name")),
        };
        Box::pin(async move { answer })
    }
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(config: EgressConfig, recorder: Arc<Recorder>, resolver: Arc<MapResolver>) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    let proxy = EgressProxy::new(config, recorder, resolver);
    let task = tokio::spawn(proxy.serve_tcp(listener, async {
        let _ = rx.await;
    }));
    Running { addr, stop: Some(tx), task }
}

/// A TCP echo server; counts the connections it accepts.
async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
                let _ = w.shutdown().await;
            });
        }
    });
    (addr, accepted)
}

/// An HTTP upstream that keeps every request it receives (head and body, until the body's
/// end as framed by Content-Length or the last chunk) and answers `hello`.
async fn http_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let head = text[..end].to_ascii_lowercase();
                        let body = &text[end + 4..];
                        let done = if head.contains("transfer-encoding: chunked") {
                            body.ends_with("0\r\n\r\n")
                        } else if let Some(cl) = head.split("content-length: ").nth(1) {
                            let n: usize = cl.split("\r\n").next().unwrap().parse().unwrap();
                            body.len() >= n
                        } else {
                            true
                        };
                        if done {
                            break;
                        }
                    }
                    let n = stream.read(&mut chunk).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                log.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                let response = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n\r\nhello";
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (addr, seen)
}

/// Sends raw bytes to the proxy and reads until it closes.
async fn exchange(proxy: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut response)).await.unwrap().unwrap();
    String::from_utf8_lossy(&response).into_owned()
}

fn loopback_config(domains: &[&str], ports: &[u16]) -> EgressConfig {
    EgressConfig {
        allow_domains: domains.iter().map(|d| (*d).to_owned()).collect(),
        allow_ports: ports.to_vec(),
        allow_private: true,
        ..EgressConfig::default()
    }
}

#[tokio::test]
async fn connect_tunnel_echoes_and_records_exact_byte_counts() {
    let (echo, accepted) = echo_server().await;
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let proxy = start(loopback_config(&["*.example.test"], &[echo.port()]), recorder.clone(), resolver.clone()).await;

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    // The first payload bytes ride in the same write as the CONNECT head, as TLS clients do.
    let head = format!("CONNECT API.example.test.:{} HTTP/1.1\r\nHost: api.example.test\r\n\r\nearly", echo.port());
    stream.write_all(head.as_bytes()).await.unwrap();
    let established = b"HTTP/1.1 200 Connection Established\r\n\r\n";
    let mut reply = vec![0u8; established.len() + 5];
    stream.read_exact(&mut reply).await.unwrap();
    assert_eq!(&reply[..established.len()], established);
    assert_eq!(&reply[established.len()..], b"early");

    let payload = vec![7u8; 100_000];
    stream.write_all(&payload).await.unwrap();
    let mut back = vec![0u8; payload.len()];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(back, payload);
    stream.shutdown().await.unwrap();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());

    let (up, down) = recorder
        .wait_for(|e| match e {
            EgressEvent::Closed { bytes_up, bytes_down, host, .. } if host == "api.example.test" => {
                Some((*bytes_up, *bytes_down))
            }
            _ => None,
        })
        .await;
    assert_eq!((up, down), (100_005, 100_005));
    let events = recorder.events();
    assert!(matches!(
        &events[0],
        EgressEvent::Allowed { method, host, port, addr, .. }
            if method == "CONNECT" && host == "api.example.test" && *port == echo.port() && *addr == echo
    ));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 1, "resolved once");
}

#[tokio::test]
async fn plain_http_is_forwarded_in_origin_form_without_proxy_credentials() {
    let (upstream, seen) = http_server().await;
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let proxy = start(loopback_config(&["api.example.test"], &[upstream.port()]), recorder.clone(), resolver).await;

    let port = upstream.port();
    let request = format!(
        "POST http://api.example.test:{port}/v1/items?q=1 HTTP/1.1\r\nHost: api.example.test:{port}\r\n\
         Proxy-Authorization: Basic c2VjcmV0\r\nProxy-Connection: keep-alive\r\nConnection: X-Hop\r\nX-Hop: 1\r\n\
         Content-Length: 4\r\nAccept: */*\r\n\r\nbody"
    );
    let response = exchange(proxy.addr, request.as_bytes()).await;
    assert_eq!(response, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello");

    let received = seen.lock().unwrap().clone();
    assert_eq!(
        received,
        vec![format!(
            "POST /v1/items?q=1 HTTP/1.1\r\nHost: api.example.test:{port}\r\nAccept: */*\r\n\
             Content-Length: 4\r\nConnection: close\r\n\r\nbody"
        )]
    );
    assert!(!received[0].to_ascii_lowercase().contains("proxy-authorization"));
    let (up, down) = recorder
        .wait_for(|e| match e {
            EgressEvent::Closed { bytes_up, bytes_down, .. } => Some((*bytes_up, *bytes_down)),
            _ => None,
        })
        .await;
    assert_eq!(up, received[0].len() as u64);
    assert_eq!(down, response.len() as u64);
}

#[tokio::test]
async fn chunked_request_body_is_reframed_and_forwarded() {
    let (upstream, seen) = http_server().await;
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let proxy = start(loopback_config(&["api.example.test"], &[upstream.port()]), recorder, resolver).await;
    let request = format!(
        "POST http://api.example.test:{}/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
         4;ext=1\r\nabcd\r\n0A\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n",
        upstream.port()
    );
    let response = exchange(proxy.addr, request.as_bytes()).await;
    assert!(response.ends_with("hello"), "{response}");
    let received = seen.lock().unwrap().clone();
    assert!(received[0].ends_with("\r\n\r\n4\r\nabcd\r\na\r\n0123456789\r\n0\r\n\r\n"), "{:?}", received[0]);
}

#[tokio::test]
async fn name_outside_allowlist_is_denied_and_upstream_sees_no_connection() {
    let (echo, accepted) = echo_server().await;
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("evil.example.test", &["127.0.0.1"])]);
    let proxy = start(loopback_config(&["api.example.test"], &[echo.port()]), recorder.clone(), resolver.clone()).await;
    let response =
        exchange(proxy.addr, format!("CONNECT evil.example.test:{} HTTP/1.1\r\n\r\n", echo.port()).as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{response}");
    assert!(response.contains("not in the egress allowlist"), "{response}");
    let reason = recorder.denied_reason().await;
    assert_eq!(reason, "host `evil.example.test` is not in the egress allowlist");
    let target = recorder
        .wait_for(|e| match e {
            EgressEvent::Denied { target, .. } => Some(target.clone()),
            _ => None,
        })
        .await;
    assert_eq!(target, format!("evil.example.test:{}", echo.port()));
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 0, "no DNS for a name that is not allowed");
}

#[tokio::test]
async fn private_answer_is_refused_without_allow_private_dns_rebinding() {
    let (echo, accepted) = echo_server().await;
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let config = EgressConfig { allow_private: false, ..loopback_config(&["api.example.test"], &[echo.port()]) };
    let proxy = start(config, recorder.clone(), resolver).await;
    let response =
        exchange(proxy.addr, format!("CONNECT api.example.test:{} HTTP/1.1\r\n\r\n", echo.port()).as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{response}");
    let reason = recorder.denied_reason().await;
    assert!(reason.contains("loopback (127.0.0.0/8)"), "{reason}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn answer_mixing_public_and_private_addresses_is_refused() {
    for answer in [["8.8.8.8", "127.0.0.1"], ["127.0.0.1", "8.8.8.8"]] {
        let (echo, accepted) = echo_server().await;
        let recorder = Arc::new(Recorder::default());
        let resolver = MapResolver::with(&[("api.example.test", &answer)]);
        let config = EgressConfig { allow_private: false, ..loopback_config(&["api.example.test"], &[echo.port()]) };
        let proxy = start(config, recorder.clone(), resolver).await;
        let request = format!("CONNECT api.example.test:{} HTTP/1.1\r\n\r\n", echo.port());
        let response = exchange(proxy.addr, request.as_bytes()).await;
        assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{response}");
        let reason = recorder.denied_reason().await;
        assert!(reason.contains("mixes public and forbidden"), "{reason}");
        assert_eq!(accepted.load(Ordering::SeqCst), 0);
        assert!(!recorder.events().iter().any(|e| matches!(e, EgressEvent::Allowed { .. })));
    }
}

#[tokio::test]
async fn failing_recorder_gets_503_and_no_upstream_connection() {
    let (echo, accepted) = echo_server().await;
    let recorder = Arc::new(Recorder { fail_allowed: true, ..Recorder::default() });
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let proxy = start(loopback_config(&["api.example.test"], &[echo.port()]), recorder, resolver).await;
    let response =
        exchange(proxy.addr, format!("CONNECT api.example.test:{} HTTP/1.1\r\n\r\n", echo.port()).as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{response}");
    assert!(response.contains("disk full"), "{response}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn upstream_connect_failure_gets_502_and_a_closed_record() {
    let vacant = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let proxy = start(loopback_config(&["api.example.test"], &[vacant.port()]), recorder.clone(), resolver).await;
    let request = format!("CONNECT api.example.test:{} HTTP/1.1\r\n\r\n", vacant.port());
    let response = exchange(proxy.addr, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{response}");
    assert!(response.contains("could not connect to 127.0.0.1"), "{response}");
    let counts = recorder
        .wait_for(|e| match e {
            EgressEvent::Closed { bytes_up, bytes_down, .. } => Some((*bytes_up, *bytes_down)),
            _ => None,
        })
        .await;
    assert_eq!(counts, (0, 0));
}

#[tokio::test]
async fn unresolvable_name_gets_502_and_a_denied_record() {
    let recorder = Arc::new(Recorder::default());
    let proxy = start(loopback_config(&["api.example.test"], &[443]), recorder.clone(), MapResolver::with(&[])).await;
    let response = exchange(proxy.addr, b"CONNECT api.example.test:443 HTTP/1.1\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 502 Bad Gateway\r\n"), "{response}");
    assert!(recorder.denied_reason().await.contains("could not resolve `api.example.test`"));
}

#[tokio::test]
async fn oversized_headers_get_431() {
    let recorder = Arc::new(Recorder::default());
    let config = EgressConfig { max_header_bytes: 1024, ..loopback_config(&["api.example.test"], &[443]) };
    let proxy = start(config, recorder.clone(), MapResolver::with(&[])).await;
    let request = format!("CONNECT api.example.test:443 HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(4096));
    let response = exchange(proxy.addr, request.as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"), "{response}");
    assert!(recorder.denied_reason().await.contains("exceeds 1024 bytes"));
}

#[tokio::test]
async fn disallowed_port_is_denied() {
    let (echo, accepted) = echo_server().await;
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let proxy = start(loopback_config(&["api.example.test"], &[443]), recorder.clone(), resolver).await;
    let response =
        exchange(proxy.addr, format!("CONNECT api.example.test:{} HTTP/1.1\r\n\r\n", echo.port()).as_bytes()).await;
    assert!(response.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{response}");
    assert_eq!(recorder.denied_reason().await, format!("port {} is not in the egress port allowlist", echo.port()));
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn hostile_request_lines_are_refused_and_recorded() {
    let (echo, accepted) = echo_server().await;
    let port = echo.port();
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"]), ("evilapi.example.test", &["127.0.0.1"])]);
    let cases: Vec<(String, &str)> = vec![
        (format!("CONNECT api.example.test\r\n.evil.test:{port} HTTP/1.1\r\n\r\n"), "400"),
        (format!("CONNECT api.example.test\r.evil.test:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api.example.test\n.evil.test:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api.example.test\0.evil.test:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api.example.test%00.evil.test:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api%2eexample.test:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api.example.test:{port}@evil.test:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT evilapi.example.test:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api.example.test..:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT 2130706433:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT 0x7f.1:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT [::ffff:127.0.0.1]:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT [fe80::1%25eth0]:{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api.example.test:0{port} HTTP/1.1\r\n\r\n"), "403"),
        (format!("CONNECT api.example.test:+{port} HTTP/1.1\r\n\r\n"), "403"),
        ("CONNECT api.example.test HTTP/1.1\r\n\r\n".to_owned(), "403"),
        (format!("GET http://api.example.test@evil.test:{port}/ HTTP/1.1\r\n\r\n"), "403"),
        (format!("GET http://api.example.test:{port}\\@evil.test/ HTTP/1.1\r\n\r\n"), "403"),
        (format!("GET /index.html HTTP/1.1\r\nHost: api.example.test:{port}\r\n\r\n"), "400"),
        (format!("GET https://api.example.test:{port}/ HTTP/1.1\r\n\r\n"), "400"),
        (format!("GET ftp://api.example.test:{port}/ HTTP/1.1\r\n\r\n"), "400"),
        (format!("GET http://api.example.test:{port}/ HTTP/1.1\r\nHost: evil.test\r\n\r\n"), "400"),
        (format!("GET http://api.example.test:{port}/ HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), "400"),
        (
            format!(
                "POST http://api.example.test:{port}/ HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            "400",
        ),
        (format!("GET http://api.example.test:{port}/a\x01b HTTP/1.1\r\n\r\n"), "400"),
    ];
    for (request, status) in cases {
        let recorder = Arc::new(Recorder::default());
        let proxy = start(loopback_config(&["api.example.test"], &[port]), recorder.clone(), resolver.clone()).await;
        let response = exchange(proxy.addr, request.as_bytes()).await;
        assert!(response.starts_with(&format!("HTTP/1.1 {status} ")), "{request:?} got {response:?}");
        let target = recorder
            .wait_for(|e| match e {
                EgressEvent::Denied { target, .. } => Some(target.clone()),
                _ => None,
            })
            .await;
        assert!(!target.chars().any(char::is_control), "target {target:?} not escaped");
        assert!(!recorder.events().iter().any(|e| matches!(e, EgressEvent::Allowed { .. })), "{request:?}");
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 0);
    assert_eq!(resolver.lookups.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn slow_headers_are_closed() {
    let config = EgressConfig { header_timeout: Duration::from_millis(200), ..EgressConfig::default() };
    let proxy = start(config, Arc::new(Recorder::default()), MapResolver::with(&[])).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(b"CONNECT api.example.test:443 HTTP/1.1\r\nX-Slow: ").await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut rest)).await;
    assert!(matches!(read, Ok(Ok(0))), "connection should be closed with nothing sent, got {read:?}");
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503() {
    let config = EgressConfig { max_connections: 1, ..EgressConfig::default() };
    let proxy = start(config, Arc::new(Recorder::default()), MapResolver::with(&[])).await;
    let _held = TcpStream::connect(proxy.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut second = TcpStream::connect(proxy.addr).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(WAIT, second.read_to_end(&mut response)).await.unwrap().unwrap();
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{response}");
}

#[tokio::test]
async fn shutdown_stops_accepting_and_closes_tunnels_after_the_grace() {
    let (echo, _) = echo_server().await;
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let config = EgressConfig {
        shutdown_grace: Duration::from_millis(300),
        ..loopback_config(&["api.example.test"], &[echo.port()])
    };
    let mut proxy = start(config, recorder.clone(), resolver).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(format!("CONNECT api.example.test:{} HTTP/1.1\r\n\r\n", echo.port()).as_bytes()).await.unwrap();
    let mut established = [0u8; 39];
    stream.read_exact(&mut established).await.unwrap();

    proxy.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Still open within the grace.
    stream.write_all(b"ping").await.unwrap();
    let mut pong = [0u8; 4];
    stream.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"ping");
    // New connections are refused.
    assert!(TcpStream::connect(proxy.addr).await.is_err());
    // Then closed, and recorded.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut rest)).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, &mut proxy.task).await.unwrap().unwrap().unwrap();
    let (up, down) = recorder
        .wait_for(|e| match e {
            EgressEvent::Closed { bytes_up, bytes_down, .. } => Some((*bytes_up, *bytes_down)),
            _ => None,
        })
        .await;
    assert_eq!((up, down), (4, 4));
}

#[tokio::test]
async fn unix_socket_is_served() {
    let (echo, _) = echo_server().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("egress.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let recorder = Arc::new(Recorder::default());
    let resolver = MapResolver::with(&[("api.example.test", &["127.0.0.1"])]);
    let proxy = EgressProxy::new(loopback_config(&["api.example.test"], &[echo.port()]), recorder.clone(), resolver);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(proxy.serve_unix(listener, async {
        let _ = rx.await;
    }));
    let mut stream = tokio::net::UnixStream::connect(&path).await.unwrap();
    stream.write_all(format!("CONNECT api.example.test:{} HTTP/1.1\r\n\r\nhi", echo.port()).as_bytes()).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    assert_eq!(response, b"HTTP/1.1 200 Connection Established\r\n\r\nhi");
    let client = recorder
        .wait_for(|e| match e {
            EgressEvent::Closed { client, .. } => Some(client.clone()),
            _ => None,
        })
        .await;
    assert_eq!(client, format!("unix:pid={}", std::process::id()));
    tx.send(()).unwrap();
    task.await.unwrap().unwrap();
}

#[test]
fn events_serialize_with_an_event_tag() {
    let event = EgressEvent::Closed {
        client: "127.0.0.1:5000".into(),
        host: "github.com".into(),
        port: 443,
        bytes_up: 1,
        bytes_down: 2,
        millis: 3,
    };
    assert_eq!(
        serde_json::to_value(&event).unwrap(),
        serde_json::json!({"event": "closed", "client": "127.0.0.1:5000", "host": "github.com", "port": 443,
            "bytes_up": 1, "bytes_down": 2, "millis": 3})
    );
    let allowed = EgressEvent::Allowed {
        client: "c".into(),
        method: "CONNECT".into(),
        host: "github.com".into(),
        port: 443,
        addr: "140.82.112.3:443".parse().unwrap(),
    };
    assert_eq!(serde_json::to_value(&allowed).unwrap()["addr"], "140.82.112.3:443");
}
