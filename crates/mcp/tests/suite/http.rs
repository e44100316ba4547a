//! Remote servers over streamable HTTP: the PyPI fixture server (the
//! official Python SDK) on loopback, and a hand-written one that
//! misbehaves on purpose (it redirects, floods, hangs).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlock_audit::event::Event;
use airlock_mcp::{Hub, Launcher, McpError, Record, ServerSpec, Transport};
use serde_json::{Value, json};

use super::support::Session;

/// The fixture's planted AWS key pair (tests/mcp/servers/pypi_server.py), which redaction finds.
const AWS_KEY_ID: &str = "AKIA2MCPFIXTURE7ZQ4W";
const AWS_SECRET: &str = "r8Vq2NwX5kTz9LmB3pYc7HdJ1sFg4QaE6uWo0KiR";

/// The venv `tests/mcp/setup` made, or `None` (printed) when it is missing outside CI.
fn venv_python() -> Option<PathBuf> {
    let cache = std::env::var_os("AIRLOCK_MCP_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cache/airlock-ci/mcp"));
    let python = cache.join("venv/bin/python");
    if python.exists() {
        return Some(python);
    }
    let why = format!("{} is missing (run tests/mcp/setup)", python.display());
    assert!(std::env::var_os("AIRLOCK_CI").is_none(), "{why}");
    println!("skipped: {why}");
    None
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `pypi_server.py --http 127.0.0.1:PORT`, killed when dropped.
struct PypiServer {
    child: Child,
    url: String,
}

impl PypiServer {
    fn start(python: &Path) -> PypiServer {
        let script = match std::env::var_os("AIRLOCK_MCP_FIXTURES") {
            Some(dir) => Path::new(&dir).join("pypi_server.py"),
            None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/mcp/servers/pypi_server.py"),
        };
        let port = free_port();
        let child = Command::new(python)
            .arg(&script)
            .arg("--http")
            .arg(format!("127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let began = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(began.elapsed() < Duration::from_secs(30), "the fixture server did not listen on {port}");
            std::thread::sleep(Duration::from_millis(100));
        }
        PypiServer { child, url: format!("http://127.0.0.1:{port}/mcp") }
    }
}

impl Drop for PypiServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the session's record got (and a switch to refuse some of it).
#[derive(Clone, Default)]
struct Records(Arc<Mutex<Vec<Event>>>);

impl Records {
    /// A record that keeps everything, except what `refuse` says no to.
    fn record(&self, refuse: impl Fn(&Event) -> bool + Send + Sync + 'static) -> Record {
        let kept = self.0.clone();
        Arc::new(move |event: Event| {
            if refuse(&event) {
                return Err("the audit log is full".into());
            }
            kept.lock().unwrap().push(event);
            Ok(())
        })
    }

    /// The `mcp_http` records as (direction, rpc, status, outcome).
    fn exchanges(&self) -> Vec<(String, String, u64, String)> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                Event::McpHttp { direction, rpc, status, outcome, .. } => {
                    Some((direction.clone(), rpc.clone(), *status, outcome.clone()))
                }
                _ => None,
            })
            .collect()
    }

    fn all(&self) -> Vec<Event> {
        self.0.lock().unwrap().clone()
    }
}

fn remote(name: &str, url: &str) -> ServerSpec {
    ServerSpec {
        name: name.into(),
        transport: Transport::Http { url: url.into() },
        env: BTreeMap::new(),
        read: vec![],
        write: vec![],
        hosts: vec![],
        digest: None,
        call_timeout: Duration::from_secs(10),
        start_timeout: Duration::from_secs(20),
    }
}

fn launcher(session: &Session, record: Record) -> Launcher {
    let mut launcher = session.launcher.clone();
    launcher.record = Some(record);
    launcher
}

#[test]
fn a_remote_server_offers_its_tools_and_answers_calls_each_exchange_on_the_record() {
    let Some(python) = venv_python() else { return };
    let server = PypiServer::start(&python);
    let session = Session::new();
    let records = Records::default();
    let (hub, errors) = Hub::start(&[remote("pypi", &server.url)], &launcher(&session, records.record(|_| false)));
    assert!(errors.is_empty(), "{errors:?}");
    let tools = hub.tools();
    let echo = tools.iter().find(|t| t.name == "mcp__pypi__echo").expect("echo is offered");
    assert!(echo.read_only, "echo is annotated read-only");
    assert!(tools.iter().any(|t| t.name == "mcp__pypi__read_resource"), "resources are offered as tools");
    let outcome = hub.call("mcp__pypi__echo", &json!({"text": "hello over HTTP"})).unwrap();
    assert_eq!((outcome.text.as_str(), outcome.is_error), ("hello over HTTP", false));
    let resource = hub.call("mcp__pypi__read_resource", &json!({"uri": "note://readme"})).unwrap();
    assert!(resource.text.contains("this resource is note://readme"), "{}", resource.text);

    let exchanges = records.exchanges();
    let at = |direction: &str, rpc: &str| exchanges.iter().position(|e| e.0 == direction && e.1 == rpc);
    for rpc in ["initialize", "tools/list", "tools/call"] {
        let (sent, answered) = (at("request", rpc), at("response", rpc));
        assert!(sent.is_some() && answered.is_some() && sent < answered, "{rpc}: {exchanges:?}");
        let answer = &exchanges[answered.unwrap()];
        // An event stream rmcp stops reading once it has its answer is recorded as left unread.
        assert_eq!(answer.2, 200, "{rpc}: {exchanges:?}");
        assert!(matches!(answer.3.as_str(), "complete" | "left unread"), "{rpc}: {exchanges:?}");
    }
    let Some(Event::McpHttp { url, method, bytes, sha256, .. }) = records
        .all()
        .into_iter()
        .find(|e| matches!(e, Event::McpHttp { direction, rpc, .. } if direction == "request" && rpc == "tools/call"))
    else {
        panic!("no tools/call request on the record")
    };
    assert_eq!((url.as_str(), method.as_str()), (server.url.as_str(), "POST"));
    assert!(bytes > 0 && sha256.len() == 64);
    hub.shutdown();
}

#[test]
fn a_secret_in_an_argument_is_redacted_before_it_leaves_and_the_redaction_recorded() {
    let Some(python) = venv_python() else { return };
    let server = PypiServer::start(&python);
    let session = Session::new();
    let records = Records::default();
    let (hub, errors) = Hub::start(&[remote("pypi", &server.url)], &launcher(&session, records.record(|_| false)));
    assert!(errors.is_empty(), "{errors:?}");
    let text = format!("aws_access_key_id = {AWS_KEY_ID}\naws_secret_access_key = {AWS_SECRET}\n");
    // The server echoes what it received: that is what left this process.
    let echoed = hub.call("mcp__pypi__echo", &json!({"text": text})).unwrap().text;
    assert!(!echoed.contains(AWS_KEY_ID) && !echoed.contains(AWS_SECRET), "{echoed}");
    assert!(echoed.contains("«secret:"), "{echoed}");
    let notes: Vec<_> = records
        .all()
        .into_iter()
        .filter_map(|e| match e {
            Event::McpHttp { direction, rpc, redactions, .. } if direction == "request" && rpc == "tools/call" => {
                Some(redactions)
            }
            _ => None,
        })
        .flatten()
        .collect();
    assert!(!notes.is_empty(), "no redaction recorded");
    assert!(notes.iter().all(|n| n.field == "/params/arguments/text"), "{notes:?}");
    let recorded = serde_json::to_string(&records.all()).unwrap();
    assert!(!recorded.contains(AWS_KEY_ID) && !recorded.contains(AWS_SECRET));
    hub.shutdown();
}

/// A credential from `env` is sent as a header and never recorded.
#[test]
fn the_credential_is_a_header_and_stays_off_the_record() {
    let fake = Fake::start(|request| basic(request, |_| Reply::Json(json!({"content": []}))));
    let session = Session::new();
    let records = Records::default();
    let mut spec = remote("fake", &fake.url);
    spec.env.insert("AUTHORIZATION".into(), "Bearer sekrit-token-value".into());
    spec.env.insert("HEADER_X_API_KEY".into(), "key-value-2".into());
    let (hub, errors) = Hub::start(&[spec], &launcher(&session, records.record(|_| false)));
    assert!(errors.is_empty(), "{errors:?}");
    let heads = fake.headers.lock().unwrap().clone();
    assert!(!heads.is_empty());
    for h in &heads {
        assert!(h.contains("authorization: Bearer sekrit-token-value"), "{h}");
        assert!(h.contains("x-api-key: key-value-2"), "{h}");
        assert!(h.contains("mcp-protocol-version: ") || h.contains("\"initialize\""), "{h}");
    }
    let recorded = serde_json::to_string(&records.all()).unwrap();
    assert!(!recorded.contains("sekrit") && !recorded.contains("key-value-2"));
    hub.shutdown();
}

#[test]
fn a_redirect_to_another_host_is_refused() {
    let fake = Fake::start(|_| Reply::Redirect("http://elsewhere.example/mcp".into()));
    let session = Session::new();
    let records = Records::default();
    let (hub, errors) = Hub::start(&[remote("moved", &fake.url)], &launcher(&session, records.record(|_| false)));
    let [McpError::Start { reason, .. }] = errors.as_slice() else { panic!("{errors:?}") };
    assert!(reason.contains("redirecting to http://elsewhere.example/mcp, another host: refused"), "{reason}");
    assert!(hub.tools().is_empty());
    assert_eq!(fake.requests(), 1, "the redirect was not followed, nor anything retried");
    let exchanges = records.exchanges();
    assert!(exchanges.iter().any(|e| e.0 == "response" && e.2 == 307 && e.3.contains("refused")), "{exchanges:?}");
}

#[test]
fn a_server_answering_100_mib_is_stopped() {
    let fake = Fake::start(|request| basic(request, |_| Reply::Flood(100 << 20)));
    let session = Session::new();
    let records = Records::default();
    let (hub, errors) = Hub::start(&[remote("flood", &fake.url)], &launcher(&session, records.record(|_| false)));
    assert!(errors.is_empty(), "{errors:?}");
    let began = Instant::now();
    let err = hub.call("mcp__flood__work", &json!({})).unwrap_err();
    let McpError::Stopped { reason, .. } = &err else { panic!("{err}") };
    assert!(reason.contains("more than 64 MiB during one call"), "{reason}");
    assert!(began.elapsed() < Duration::from_secs(30));
    assert!(hub.tools().is_empty(), "a stopped server's tools are no longer offered");
    let again = hub.call("mcp__flood__work", &json!({})).unwrap_err();
    assert!(matches!(again, McpError::Stopped { .. }), "{again}");
    let sent = *fake.flooded.lock().unwrap();
    assert!(sent < 100 << 20, "it read all {sent} bytes");
    let exchanges = records.exchanges();
    assert!(
        exchanges.iter().any(|e| e.0 == "response" && e.1 == "tools/call" && e.3.contains("64 MiB")),
        "{exchanges:?}"
    );
}

#[test]
fn a_hang_past_the_call_timeout_stops_the_server() {
    let fake = Fake::start(|request| basic(request, |_| Reply::Hang));
    let session = Session::new();
    let mut spec = remote("slow", &fake.url);
    spec.call_timeout = Duration::from_secs(2);
    let records = Records::default();
    let (hub, errors) = Hub::start(&[spec], &launcher(&session, records.record(|_| false)));
    assert!(errors.is_empty(), "{errors:?}");
    let began = Instant::now();
    let err = hub.call("mcp__slow__work", &json!({})).unwrap_err();
    let McpError::Stopped { reason, .. } = &err else { panic!("{err}") };
    assert!(reason.contains("within 2 s"), "{reason}");
    assert!(began.elapsed() < Duration::from_secs(8), "{:?}", began.elapsed());
    assert!(hub.tools().is_empty());
}

#[test]
fn a_record_that_cannot_be_kept_fails_the_call_and_nothing_is_sent() {
    let fake = Fake::start(|request| basic(request, |_| Reply::Json(json!({"content": []}))));
    let session = Session::new();
    let records = Records::default();
    let refuse_calls = |e: &Event| matches!(e, Event::McpHttp { rpc, .. } if rpc == "tools/call");
    let (hub, errors) = Hub::start(&[remote("fake", &fake.url)], &launcher(&session, records.record(refuse_calls)));
    assert!(errors.is_empty(), "{errors:?}");
    let err = hub.call("mcp__fake__work", &json!({"marker": "NOT-SENT"})).unwrap_err();
    assert!(err.to_string().contains("could not be recorded"), "{err}");
    assert!(fake.bodies.lock().unwrap().iter().all(|b| b["method"] != "tools/call"), "the server got the call");

    // And a remote server is not started without a record at all.
    let (_hub, errors) = Hub::start(&[remote("fake", &fake.url)], &session.launcher);
    let [McpError::Start { reason, .. }] = errors.as_slice() else { panic!("{errors:?}") };
    assert!(reason.contains("needs the session's record"), "{reason}");
}

#[test]
fn plain_http_is_refused_beyond_loopback() {
    let session = Session::new();
    let records = Records::default();
    let (_hub, errors) =
        Hub::start(&[remote("far", "http://mcp.example.com/mcp")], &launcher(&session, records.record(|_| false)));
    let [McpError::Start { reason, .. }] = errors.as_slice() else { panic!("{errors:?}") };
    assert!(reason.contains("loopback only"), "{reason}");
    assert!(records.exchanges().is_empty(), "nothing was sent");
}

/// What the hand-written server answers.
enum Reply {
    Json(Value),
    Accepted,
    Redirect(String),
    /// A JSON answer of this many bytes, sent until the client hangs up.
    Flood(u64),
    /// No answer, ever.
    Hang,
}

/// Answers the handshake (initialize, initialized, tools/list with one tool, `work`) and hands tools/call to `call`.
fn basic(request: &Value, call: impl Fn(&Value) -> Reply) -> Reply {
    match request["method"].as_str().unwrap_or("") {
        "initialize" => Reply::Json(json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "fake", "version": "1.0.0"}
        })),
        "tools/list" => Reply::Json(json!({"tools": [{"name": "work", "inputSchema": {"type": "object"}}]})),
        "tools/call" => call(request),
        _ => Reply::Accepted,
    }
}

/// A streamable HTTP server on loopback, written here to misbehave.
struct Fake {
    url: String,
    bodies: Arc<Mutex<Vec<Value>>>,
    headers: Arc<Mutex<Vec<String>>>,
    flooded: Arc<Mutex<u64>>,
}

impl Fake {
    fn start(answer: impl Fn(&Value) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}/mcp", listener.local_addr().unwrap().port());
        let fake = Fake { url, bodies: Default::default(), headers: Default::default(), flooded: Default::default() };
        let (bodies, headers, flooded, answer) =
            (fake.bodies.clone(), fake.headers.clone(), fake.flooded.clone(), Arc::new(answer));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (bodies, headers, flooded, answer) =
                    (bodies.clone(), headers.clone(), flooded.clone(), answer.clone());
                std::thread::spawn(move || serve(stream, &bodies, &headers, &flooded, &*answer));
            }
        });
        fake
    }

    fn requests(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

fn serve(
    stream: TcpStream,
    bodies: &Mutex<Vec<Value>>,
    heads: &Mutex<Vec<String>>,
    flooded: &Mutex<u64>,
    answer: &dyn Fn(&Value) -> Reply,
) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        let length = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|n| n.trim().parse().unwrap()))
            .unwrap_or(0usize);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        heads.lock().unwrap().push(format!("{head}{}", String::from_utf8_lossy(&body)));
        bodies.lock().unwrap().push(request.clone());
        let written = match answer(&request) {
            Reply::Json(result) => {
                let body = json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string();
                write!(
                    out,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
            }
            Reply::Accepted => write!(out, "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"),
            Reply::Redirect(to) => {
                write!(out, "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
            }
            Reply::Flood(size) => {
                let head =
                    format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n");
                let _ = out.write_all(head.as_bytes());
                let chunk = vec![b' '; 1 << 20];
                let mut sent = 0;
                while sent < size && out.write_all(&chunk).is_ok() {
                    sent += chunk.len() as u64;
                    *flooded.lock().unwrap() = sent;
                }
                return;
            }
            Reply::Hang => {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
        };
        if written.is_err() {
            return;
        }
    }
}
