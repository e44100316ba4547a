//! A server with `hosts` reaches exactly those, through an egress proxy of
//! its own, each connection on the record first.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_audit::event::Event;
use airlock_gateway::egress::Resolver;
use airlock_mcp::{EgressForTests, Hub, ServerEvent};
use serde_json::json;

use super::support::{Session, spec};

/// What happened, in order: the records kept and the connections the upstream saw.
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)] // a test log of a few entries
enum Seen {
    Record(Event),
    Upstream(String),
}

type Timeline = Arc<Mutex<Vec<Seen>>>;

/// Names the test's upstream on loopback (`allowed.test`, `other.test`); nothing else resolves.
struct TestNames(u16);

impl Resolver for TestNames {
    fn resolve(
        &self,
        host: &str,
        _port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + '_>> {
        let answer = match host {
            "allowed.test" | "other.test" => Ok(vec![SocketAddr::from(([127, 0, 0, 1], self.0))]),
            _ => Err(std::io::Error::other(format!("{host} is not a test name"))),
        };
        Box::pin(async move { answer })
    }
}

/// A tiny HTTP server on loopback: each request it sees goes on the timeline,
/// and it answers `hello from upstream`.
fn upstream(timeline: Timeline) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let timeline = timeline.clone();
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or("").to_string();
                timeline.lock().unwrap().push(Seen::Upstream(line));
                let body = "hello from upstream";
                let reply =
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = stream.write_all(reply.as_bytes());
            });
        }
    });
    port
}

/// A session whose launcher records into `timeline` (refusing `egress_open` when `refuse_open`)
/// and whose servers' proxies know the test names; the upstream's port.
fn session(timeline: &Timeline, refuse_open: bool) -> (Session, u16) {
    let port = upstream(timeline.clone());
    let mut session = Session::new();
    let kept = timeline.clone();
    session.launcher.record = Some(Arc::new(move |event: Event| {
        if refuse_open && matches!(event, Event::EgressOpen { .. }) {
            return Err("the audit log is full".into());
        }
        kept.lock().unwrap().push(Seen::Record(event));
        Ok(())
    }));
    session.launcher.egress_for_tests =
        Some(EgressForTests { resolver: Arc::new(TestNames(port)), allow_private: true, allow_ports: vec![port] });
    (session, port)
}

/// Waits (at most 10 s) until `done` holds for the timeline, and returns it.
fn wait_for(timeline: &Timeline, done: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
    let start = Instant::now();
    loop {
        let seen = timeline.lock().unwrap().clone();
        if done(&seen) || start.elapsed() > Duration::from_secs(10) {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_close(seen: &Seen) -> bool {
    matches!(seen, Seen::Record(Event::EgressClose { .. }))
}

#[test]
fn a_server_reaches_its_hosts_through_its_proxy_each_connection_recorded_before_it_is_made() {
    let timeline: Timeline = Arc::default();
    let (session, port) = session(&timeline, false);
    let mut s = spec("net", "good");
    s.hosts = vec!["allowed.test".into()];
    let (hub, errors) = Hub::start(&[s], &session.launcher);
    assert!(errors.is_empty(), "{errors:?}");
    let socket = session.launcher.run_dir.join("mcp/net/egress.sock");
    assert!(socket.exists(), "its proxy listens in its folder");
    let call = |tool: &str, args: serde_json::Value| hub.call(&format!("mcp__net__{tool}"), &args).unwrap();

    // Plain HTTP through the proxy (urllib takes it from HTTP_PROXY).
    let got = call("fetch_url", json!({"url": format!("http://allowed.test:{port}/hello")}));
    assert_eq!((got.text.as_str(), got.is_error), ("200 hello from upstream", false));
    let seen = wait_for(&timeline, |s| s.iter().any(is_close));
    let open = seen.iter().position(|s| matches!(s, Seen::Record(Event::EgressOpen { .. })));
    let upstream = seen.iter().position(|s| matches!(s, Seen::Upstream(_)));
    let close = seen.iter().position(is_close);
    assert!(
        matches!((open, upstream, close), (Some(o), Some(u), Some(c)) if o < u && u < c),
        "egress_open, then the upstream's connection, then egress_close: {seen:#?}"
    );
    match &seen[open.unwrap()] {
        Seen::Record(Event::EgressOpen { client, method, host, port: p, addr }) => {
            assert_eq!((client.as_str(), method.as_str(), host.as_str()), ("mcp:net", "GET", "allowed.test"));
            assert_eq!((*p, addr.as_str()), (u64::from(port), format!("127.0.0.1:{port}").as_str()));
        }
        other => panic!("{other:?}"),
    }
    match &seen[upstream.unwrap()] {
        Seen::Upstream(line) => assert_eq!(line, "GET /hello HTTP/1.1"),
        other => panic!("{other:?}"),
    }
    match &seen[close.unwrap()] {
        Seen::Record(Event::EgressClose { client, host, bytes_up, bytes_down, .. }) => {
            assert_eq!((client.as_str(), host.as_str()), ("mcp:net", "allowed.test"));
            assert!(*bytes_up > 0 && *bytes_down as usize > "hello from upstream".len(), "{bytes_up} {bytes_down}");
        }
        other => panic!("{other:?}"),
    }

    // A tunnel (CONNECT, as HTTPS would use) to the same host.
    timeline.lock().unwrap().clear();
    let got = call("tunnel_get", json!({"host": "allowed.test", "port": port.to_string(), "path": "/tunnel"}));
    assert_eq!((got.text.as_str(), got.is_error), ("200 hello from upstream", false));
    let seen = wait_for(&timeline, |s| s.iter().any(is_close));
    assert!(
        matches!(&seen[..], [Seen::Record(Event::EgressOpen { method, .. }), Seen::Upstream(line), Seen::Record(Event::EgressClose { .. })]
            if method == "CONNECT" && line == "GET /tunnel HTTP/1.1"),
        "{seen:#?}"
    );

    // A host not in its list is refused (though it resolves), on the record naming the server.
    timeline.lock().unwrap().clear();
    let got = call("fetch_url", json!({"url": format!("http://other.test:{port}/secret")}));
    assert!(got.is_error && got.text.contains("403"), "{}", got.text);
    let got = call("tunnel_get", json!({"host": "other.test", "port": port.to_string(), "path": "/"}));
    assert!(got.is_error && got.text.contains("403"), "{}", got.text);
    let seen = timeline.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "two refusals and nothing else (the upstream saw nothing): {seen:#?}");
    for (record, target) in seen.iter().zip(["http://other.test", "other.test"]) {
        match record {
            Seen::Record(Event::BlockedEgress { destination, reason, .. }) => {
                assert!(destination.starts_with(target), "{destination}");
                assert!(!destination.contains("/secret"), "the path is not recorded: {destination}");
                assert!(reason.contains("mcp:net"), "the server is named: {reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    // A direct connection (not through the proxy) reaches nothing, not even the upstream's port.
    timeline.lock().unwrap().clear();
    let got = call("connect", json!({"port": port.to_string()}));
    assert!(got.is_error && got.text.contains("cannot connect"), "{}", got.text);
    let got = call("connect", json!({"port": "3129"}));
    assert!(got.is_error && got.text.contains("cannot connect"), "{}", got.text);
    assert!(timeline.lock().unwrap().is_empty(), "{:#?}", timeline.lock().unwrap());

    // The proxy stops with the server.
    hub.shutdown();
    assert!(!socket.exists(), "its proxy is gone with it");
}

#[test]
fn a_connection_whose_record_cannot_be_kept_is_not_made() {
    let timeline: Timeline = Arc::default();
    let (session, port) = session(&timeline, true);
    let mut s = spec("net", "good");
    s.hosts = vec!["allowed.test".into()];
    let (hub, errors) = Hub::start(&[s], &session.launcher);
    assert!(errors.is_empty(), "{errors:?}");
    let got = hub.call("mcp__net__fetch_url", &json!({"url": format!("http://allowed.test:{port}/")})).unwrap();
    assert!(got.is_error && got.text.contains("503") && got.text.contains("the audit log is full"), "{}", got.text);
    std::thread::sleep(Duration::from_millis(200));
    let seen = timeline.lock().unwrap().clone();
    assert!(!seen.iter().any(|s| matches!(s, Seen::Upstream(_))), "the upstream saw a connection: {seen:#?}");
    hub.shutdown();
}

#[test]
fn hosts_without_a_record_or_that_are_not_names_are_refused() {
    let timeline: Timeline = Arc::default();
    let (mut session, _) = session(&timeline, false);
    let mut bad = spec("bad", "good");
    bad.hosts = vec!["https://api.example.com/".into()];
    let (hub, errors) = Hub::start(&[bad], &session.launcher);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("\"https://api.example.com/\" is not a host name"), "{}", errors[0]);
    assert!(hub.tools().is_empty());
    hub.shutdown();

    session.launcher.record = None;
    let mut net = spec("net", "good");
    net.hosts = vec!["allowed.test".into()];
    let (hub, errors) = Hub::start(&[net], &session.launcher);
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().contains("must be on the record"), "{}", errors[0]);
    assert!(!session.launcher.run_dir.join("mcp/net/egress.sock").exists());
    let refused = hub.take_events().into_iter().filter(|e| matches!(e, ServerEvent::Refused { .. })).count();
    assert_eq!(refused, 1);
    hub.shutdown();
}
