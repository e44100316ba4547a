//! The proxy server: accepts connections, applies the pure checks, makes the one connection,
//! moves and counts the bytes.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::host::{check_addr, check_authority, sanitize};
use super::http::{self, BodyFraming, Chunk, RequestHead};
use super::{EgressConfig, EgressEvent, EgressRecorder, Resolver, ValidHost};

/// How many characters of a target a Denied record keeps.
const TARGET_LOG_LEN: usize = 200;
/// The largest upstream response head accepted on plain HTTP.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;
/// Copy buffer size.
const BUF_SIZE: usize = 16 * 1024;

/// The egress proxy. Build with [`EgressProxy::new`], run with [`EgressProxy::serve_tcp`] or
/// [`EgressProxy::serve_unix`].
pub struct EgressProxy {
    config: EgressConfig,
    recorder: Arc<dyn EgressRecorder>,
    resolver: Arc<dyn Resolver>,
    slots: Arc<Semaphore>,
}

impl std::fmt::Debug for EgressProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressProxy").field("config", &self.config).finish_non_exhaustive()
    }
}

/// A refusal: the status sent to the client and the reason recorded and shown.
#[derive(Debug)]
struct Refusal {
    status: u16,
    reason: String,
}

impl Refusal {
    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self { status, reason: reason.into() }
    }
}

/// What a checked request asks for.
struct Plan {
    method: String,
    host: ValidHost,
    port: u16,
    /// For plain HTTP: the request head to send upstream and the body framing.
    forward: Option<(Vec<u8>, BodyFraming)>,
}

/// The byte counters and the idle clock of one connection. Atomics, so the counts survive
/// the copy futures being dropped on idle timeout or shutdown.
struct Traffic {
    start: Instant,
    up: AtomicU64,
    down: AtomicU64,
    last_active_ms: AtomicU64,
}

impl Traffic {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
            last_active_ms: AtomicU64::new(0),
        }
    }

    fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn add(&self, counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
        self.last_active_ms.store(self.elapsed_ms(), Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `idle`.
    async fn idle(&self, idle: Duration) {
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        loop {
            let quiet = self.elapsed_ms().saturating_sub(self.last_active_ms.load(Ordering::Relaxed));
            if quiet >= idle_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(idle_ms - quiet)).await;
        }
    }
}

/// A listener the proxy can serve: TCP or Unix.
trait Listen: Send + 'static {
    type Stream: AsyncRead + AsyncWrite + Unpin + Send + 'static;
    fn accept(&self) -> impl Future<Output = io::Result<(Self::Stream, String)>> + Send;
    /// Best-effort, non-blocking write (for the 503 to a client beyond the limit).
    fn try_write(stream: &Self::Stream, bytes: &[u8]);
}

impl Listen for TcpListener {
    type Stream = TcpStream;
    async fn accept(&self) -> io::Result<(TcpStream, String)> {
        let (stream, peer) = TcpListener::accept(self).await?;
        Ok((stream, peer.to_string()))
    }
    fn try_write(stream: &TcpStream, bytes: &[u8]) {
        let _ = stream.try_write(bytes);
    }
}

impl Listen for UnixListener {
    type Stream = tokio::net::UnixStream;
    async fn accept(&self) -> io::Result<(tokio::net::UnixStream, String)> {
        let (stream, _) = UnixListener::accept(self).await?;
        let client = match stream.peer_cred().ok().and_then(|cred| cred.pid()) {
            Some(pid) => format!("unix:pid={pid}"),
            None => "unix".to_owned(),
        };
        Ok((stream, client))
    }
    fn try_write(stream: &tokio::net::UnixStream, bytes: &[u8]) {
        let _ = stream.try_write(bytes);
    }
}

/// Completes `grace` after shutdown begins (or at once if the server is gone).
async fn after_grace(mut stop: watch::Receiver<bool>, grace: Duration) {
    while !*stop.borrow_and_update() {
        if stop.changed().await.is_err() {
            break;
        }
    }
    tokio::time::sleep(grace).await;
}

impl EgressProxy {
    /// A proxy that lets through what `config` allows, records every decision with
    /// `recorder` and resolves names with `resolver`.
    pub fn new(config: EgressConfig, recorder: Arc<dyn EgressRecorder>, resolver: Arc<dyn Resolver>) -> Arc<Self> {
        let slots = Arc::new(Semaphore::new(config.max_connections.max(1)));
        Arc::new(Self { config, recorder, resolver, slots })
    }

    /// Serves on a TCP listener until `shutdown` completes, then stops accepting, lets open
    /// connections run for `shutdown_grace`, closes what is left and returns.
    pub async fn serve_tcp(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        self.serve(listener, shutdown).await
    }

    /// Serves on a Unix socket until `shutdown` completes; as [`EgressProxy::serve_tcp`].
    pub async fn serve_unix(
        self: Arc<Self>,
        listener: UnixListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        self.serve(listener, shutdown).await
    }

    async fn serve<L: Listen>(
        self: Arc<Self>,
        listener: L,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            while tasks.try_join_next().is_some() {}
            tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, client)) => match self.slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let this = self.clone();
                            let stop = stop_rx.clone();
                            tasks.spawn(async move {
                                this.handle(stream, client, stop).await;
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            tracing::warn!(%client, limit = self.config.max_connections, "egress: too many connections");
                            L::try_write(&stream, &http::proxy_response(503, "too many connections, try again"));
                        }
                    },
                    Err(e) => {
                        // Out of descriptors and the like: back off rather than spin or stop serving.
                        tracing::warn!(error = %e, "egress: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        // Connections watch `stop` and end themselves after the grace; this bound only
        // guards against one that does not.
        let drained = tokio::time::timeout(self.config.shutdown_grace + Duration::from_secs(2), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.shutdown().await;
        }
        Ok(())
    }

    async fn handle<S>(self: Arc<Self>, stream: S, client: String, stop: watch::Receiver<bool>)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut reader, mut writer) = tokio::io::split(stream);
        let read =
            tokio::time::timeout(self.config.header_timeout, read_head(&mut reader, self.config.max_header_bytes));
        let head = tokio::select! {
            head = read => head,
            () = after_grace(stop.clone(), Duration::ZERO) => return,
        };
        let (head, leftover) = match head {
            Err(_) => {
                tracing::debug!(%client, "egress: request head not complete in time; closing");
                return;
            }
            Ok(Err(HeadRead::Io(e))) => {
                tracing::debug!(%client, error = %e, "egress: client went away before a request");
                return;
            }
            Ok(Err(HeadRead::TooLarge(partial))) => {
                let refusal =
                    Refusal::new(431, format!("request header section exceeds {} bytes", self.config.max_header_bytes));
                let target = first_line_for_log(&partial);
                self.refuse(&mut writer, &client, target, refusal).await;
                return;
            }
            Ok(Ok(read)) => read,
        };
        let parsed = match http::parse_request_head(&head) {
            Ok(parsed) => parsed,
            Err(reason) => {
                let target = first_line_for_log(&head);
                self.refuse(&mut writer, &client, target, Refusal::new(400, reason)).await;
                return;
            }
        };
        let target = target_for_log(&parsed.target);
        let plan = match self.plan(&parsed) {
            Ok(plan) => plan,
            Err(refusal) => return self.refuse(&mut writer, &client, target, refusal).await,
        };
        let addr = match self.resolve(&plan.host, plan.port).await {
            Ok(addr) => addr,
            Err(refusal) => return self.refuse(&mut writer, &client, target, refusal).await,
        };
        let allowed = EgressEvent::Allowed {
            client: client.clone(),
            method: plan.method.clone(),
            host: plan.host.host.clone(),
            port: plan.port,
            addr,
        };
        if let Err(e) = self.record(allowed).await {
            tracing::error!(%client, error = %e, "egress: Allowed could not be recorded; refusing");
            let body = format!("the egress record could not be kept, so the connection was not made: {e}");
            let _ = writer.write_all(&http::proxy_response(503, &sanitize(&body, 300))).await;
            return;
        }
        let traffic = Traffic::new();
        let closed = |traffic: &Traffic| EgressEvent::Closed {
            client: client.clone(),
            host: plan.host.host.clone(),
            port: plan.port,
            bytes_up: traffic.up.load(Ordering::Relaxed),
            bytes_down: traffic.down.load(Ordering::Relaxed),
            millis: traffic.elapsed_ms(),
        };
        let upstream = match tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(upstream)) => upstream,
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => format!("could not connect to {addr}: {e}"),
                    _ => format!("connecting to {addr} timed out after {:?}", self.config.connect_timeout),
                };
                let _ = writer.write_all(&http::proxy_response(502, &reason)).await;
                self.record_closed(closed(&traffic)).await;
                return;
            }
        };
        let _ = upstream.set_nodelay(true);
        let grace = after_grace(stop, self.config.shutdown_grace);
        let result = match plan.forward {
            None => match writer.write_all(&http::proxy_response(200, "")).await {
                Ok(()) => tunnel(reader, writer, upstream, &leftover, &traffic, self.config.idle_timeout, grace).await,
                Err(e) => Err(e),
            },
            Some((request, framing)) => {
                let client_reader = BufReader::new(std::io::Cursor::new(leftover).chain(reader));
                let idle = self.config.idle_timeout;
                forward(client_reader, writer, upstream, &request, framing, &traffic, idle, grace).await
            }
        };
        if let Err(e) = result {
            tracing::debug!(%client, error = %e, "egress: connection ended with an error");
        }
        self.record_closed(closed(&traffic)).await;
    }

    /// The pure part: what the request asks for, or why it is refused.
    fn plan(&self, head: &RequestHead) -> Result<Plan, Refusal> {
        let forbidden = |e: super::HostError| Refusal::new(403, e.to_string());
        if head.method == "CONNECT" {
            let (host, port) = check_authority(&head.target, None, &self.config).map_err(forbidden)?;
            return Ok(Plan { method: head.method.clone(), host, port, forward: None });
        }
        let target = head.target.as_str();
        let scheme_end = target.find("://").map(|i| i + 3);
        let Some(rest) = scheme_end.and_then(|end| {
            target.get(..end).filter(|scheme| scheme.eq_ignore_ascii_case("http://")).map(|_| &target[end..])
        }) else {
            let reason = if target.starts_with('/') || target == "*" {
                "this is a proxy: send an absolute URI (`GET http://host/path`) or CONNECT host:port"
            } else if target.get(..8).is_some_and(|s| s.eq_ignore_ascii_case("https://")) {
                "https:// is not forwarded in plain text: use CONNECT host:443"
            } else {
                "only http:// absolute URIs and CONNECT are supported"
            };
            return Err(Refusal::new(400, reason));
        };
        let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(authority_end);
        let (host, port) = check_authority(authority, Some(80), &self.config).map_err(forbidden)?;
        if path.contains('#') {
            return Err(Refusal::new(400, "request target contains a fragment"));
        }
        if !path.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Refusal::new(400, "request path contains characters outside visible ASCII"));
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        let mut hosts = head.values("host");
        if let Some(value) = hosts.next() {
            if hosts.next().is_some() {
                return Err(Refusal::new(400, "more than one Host header"));
            }
            let value = String::from_utf8_lossy(value);
            let matches = check_authority(&value, Some(80), &self.config).is_ok_and(|(h, p)| h == host && p == port);
            if !matches {
                return Err(Refusal::new(400, "Host header does not match the request URI"));
            }
        }
        let framing = http::body_framing(head).map_err(|reason| Refusal::new(400, reason))?;
        let authority = if port == 80 { host.host.clone() } else { format!("{}:{port}", host.host) };
        let request = http::upstream_request_head(head, &path, &authority, framing);
        Ok(Plan { method: head.method.clone(), host, port, forward: Some((request, framing)) })
    }

    /// Resolves once and checks every address; the first is the one to connect to.
    async fn resolve(&self, host: &ValidHost, port: u16) -> Result<SocketAddr, Refusal> {
        if let Some(literal) = host.literal {
            // Already through check_addr in check_host; checked again so this stays true
            // whatever path produced the host.
            check_addr(literal, &self.config).map_err(|e| Refusal::new(403, e.to_string()))?;
            return Ok(SocketAddr::new(literal, port));
        }
        let lookup = self.resolver.resolve(&host.host, port);
        let addrs = match tokio::time::timeout(self.config.connect_timeout, lookup).await {
            Ok(Ok(addrs)) => addrs,
            Ok(Err(e)) => return Err(Refusal::new(502, format!("could not resolve `{}`: {e}", host.host))),
            Err(_) => return Err(Refusal::new(502, format!("resolving `{}` timed out", host.host))),
        };
        let Some(first) = addrs.first() else {
            return Err(Refusal::new(502, format!("`{}` resolved to no addresses", host.host)));
        };
        for addr in &addrs {
            if let Err(e) = check_addr(addr.ip(), &self.config) {
                let mixed = addrs.len() > 1 && addrs.iter().any(|a| check_addr(a.ip(), &self.config).is_ok());
                let why = if mixed { " (the answer mixes public and forbidden addresses: DNS rebinding?)" } else { "" };
                return Err(Refusal::new(403, format!("`{}` resolved to {e}{why}", host.host)));
            }
        }
        // Answers carry the port we asked with; set it anyway so no resolver can redirect it.
        Ok(SocketAddr::new(first.ip(), port))
    }

    async fn refuse<W: AsyncWrite + Unpin>(&self, writer: &mut W, client: &str, target: String, refusal: Refusal) {
        let reason = sanitize(&refusal.reason, 500);
        tracing::info!(%client, %target, status = refusal.status, %reason, "egress: refused");
        let event = EgressEvent::Denied { client: client.to_owned(), target, reason: reason.clone() };
        if let Err(e) = self.record(event).await {
            tracing::error!(%client, error = %e, "egress: Denied could not be recorded");
        }
        let status = refusal.status;
        let body = if status == 403 { format!("denied: {reason}") } else { reason };
        let _ = writer.write_all(&http::proxy_response(status, &body)).await;
        let _ = writer.shutdown().await;
    }

    async fn record_closed(&self, event: EgressEvent) {
        if let Err(e) = self.record(event).await {
            tracing::error!(error = %e, "egress: Closed could not be recorded");
        }
    }

    /// Runs the recorder on a blocking thread: it may write and sync a file.
    async fn record(&self, event: EgressEvent) -> Result<(), String> {
        let recorder = self.recorder.clone();
        match tokio::task::spawn_blocking(move || recorder.record(&event)).await {
            Ok(result) => result,
            Err(e) => Err(format!("the recorder failed: {e}")),
        }
    }
}

enum HeadRead {
    Io(io::Error),
    /// The bytes read so far, for the log.
    TooLarge(Vec<u8>),
}

/// Reads up to the end of the header section; returns the head and whatever followed it.
async fn read_head<R: AsyncRead + Unpin>(reader: &mut R, max: usize) -> Result<(Vec<u8>, Vec<u8>), HeadRead> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = reader.read(&mut chunk).await.map_err(HeadRead::Io)?;
        if n == 0 {
            return Err(HeadRead::Io(io::ErrorKind::UnexpectedEof.into()));
        }
        // Only the new bytes (and the three before them) can complete the terminator.
        let scan_from = buf.len().saturating_sub(3);
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = http::head_end(&buf[scan_from..]).map(|e| e + scan_from) {
            if end > max {
                return Err(HeadRead::TooLarge(buf));
            }
            let leftover = buf.split_off(end);
            return Ok((buf, leftover));
        }
        if buf.len() > max {
            return Err(HeadRead::TooLarge(buf));
        }
    }
}

fn first_line_for_log(head: &[u8]) -> String {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
    // The line's target may be an absolute URI with a secret in its path: keep the method and
    // what target_for_log keeps.
    match line.split_once(' ') {
        Some((method, rest)) => {
            let target = rest.rsplit_once(' ').map_or(rest, |(t, _)| t);
            sanitize(&format!("{method} {}", target_for_log(target)), TARGET_LOG_LEN)
        }
        None => sanitize(&line, TARGET_LOG_LEN),
    }
}

/// The request target as recorded: scheme and authority of an absolute URI (paths and queries
/// can carry secrets), the authority of a CONNECT, `/(path withheld)` for an origin-form path.
fn target_for_log(target: &str) -> String {
    let kept = match target.find("://") {
        Some(i) => {
            let rest = &target[i + 3..];
            let end = rest.find(['/', '?', '#']).map_or(target.len(), |e| i + 3 + e);
            &target[..end]
        }
        None if target.starts_with('/') => "/(path withheld)",
        None => target,
    };
    sanitize(kept, TARGET_LOG_LEN)
}

/// Copies `reader` to `writer` until EOF, counting into `counter`, then shuts `writer` down.
async fn copy_counted<R, W>(mut reader: R, mut writer: W, traffic: &Traffic, counter: &AtomicU64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    loop {
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return writer.shutdown().await;
        }
        writer.write_all(&buf[..n]).await?;
        traffic.add(counter, n);
    }
}

/// A CONNECT tunnel: bytes both ways until both sides are done, the connection idles, or
/// shutdown's grace runs out. Half-close is passed on.
async fn tunnel<CR, CW>(
    client_reader: CR,
    client_writer: CW,
    upstream: TcpStream,
    early: &[u8],
    traffic: &Traffic,
    idle: Duration,
    grace: impl Future<Output = ()>,
) -> io::Result<()>
where
    CR: AsyncRead + Unpin,
    CW: AsyncWrite + Unpin,
{
    let (upstream_reader, mut upstream_writer) = upstream.into_split();
    let up = async {
        // Bytes the client sent right behind the CONNECT head (a TLS ClientHello, say).
        if !early.is_empty() {
            upstream_writer.write_all(early).await?;
            traffic.add(&traffic.up, early.len());
        }
        copy_counted(client_reader, upstream_writer, traffic, &traffic.up).await
    };
    let down = copy_counted(upstream_reader, client_writer, traffic, &traffic.down);
    tokio::select! {
        // Both directions run until EOF; an error on either (a reset) ends the tunnel.
        result = async { tokio::try_join!(up, down) } => result.map(|_| ()),
        () = traffic.idle(idle) => Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
        () = grace => Err(io::Error::other("closed at shutdown")),
    }
}

/// One plain-HTTP exchange: the rewritten head and the re-framed body up, the response (head
/// rewritten) down, until the upstream closes (it was sent `Connection: close`).
#[allow(clippy::too_many_arguments)]
async fn forward<CR, CW>(
    mut client_reader: CR,
    client_writer: CW,
    upstream: TcpStream,
    request: &[u8],
    framing: BodyFraming,
    traffic: &Traffic,
    idle: Duration,
    grace: impl Future<Output = ()>,
) -> io::Result<()>
where
    CR: tokio::io::AsyncBufRead + Unpin,
    CW: AsyncWrite + Unpin,
{
    let (upstream_reader, mut upstream_writer) = upstream.into_split();
    let up = async {
        upstream_writer.write_all(request).await?;
        traffic.add(&traffic.up, request.len());
        send_body(&mut client_reader, &mut upstream_writer, framing, traffic).await?;
        // Done sending; keep the write side open (some servers treat a half-close as abort)
        // and let the response finish.
        std::future::pending::<io::Result<()>>().await
    };
    let down = relay_response(upstream_reader, client_writer, traffic);
    tokio::select! {
        result = down => result,
        result = up => result,
        () = traffic.idle(idle) => Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
        () = grace => Err(io::Error::other("closed at shutdown")),
    }
}

async fn send_body<R, W>(reader: &mut R, writer: &mut W, framing: BodyFraming, traffic: &Traffic) -> io::Result<()>
where
    R: tokio::io::AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        BodyFraming::None => Ok(()),
        BodyFraming::Length(n) => copy_exact(reader, writer, n, traffic).await,
        BodyFraming::Chunked => loop {
            match http::read_chunk_header(reader).await? {
                Chunk::Data(size) => {
                    let line = format!("{size:x}\r\n");
                    writer.write_all(line.as_bytes()).await?;
                    traffic.add(&traffic.up, line.len());
                    copy_exact(reader, writer, size, traffic).await?;
                    http::read_chunk_end(reader).await?;
                    writer.write_all(b"\r\n").await?;
                    traffic.add(&traffic.up, 2);
                }
                Chunk::Last => {
                    writer.write_all(b"0\r\n\r\n").await?;
                    traffic.add(&traffic.up, 5);
                    return Ok(());
                }
            }
        },
    }
}

async fn copy_exact<R, W>(reader: &mut R, writer: &mut W, mut remaining: u64, traffic: &Traffic) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    while remaining > 0 {
        let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(buf.len());
        let n = reader.read(&mut buf[..want]).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "request body ended early"));
        }
        writer.write_all(&buf[..n]).await?;
        traffic.add(&traffic.up, n);
        remaining -= n as u64;
    }
    Ok(())
}

async fn relay_response<R, W>(mut upstream: R, mut client: W, traffic: &Traffic) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = vec![0u8; BUF_SIZE];
    loop {
        // Read one response head; interim (1xx) heads are passed on and the next one read.
        let end = loop {
            if let Some(end) = http::head_end(&buf) {
                break end;
            }
            if buf.len() > MAX_RESPONSE_HEAD {
                let _ = client.write_all(&http::proxy_response(502, "upstream response head too large")).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, "upstream response head too large"));
            }
            let n = upstream.read(&mut chunk).await?;
            if n == 0 {
                if buf.is_empty() {
                    let _ = client.write_all(&http::proxy_response(502, "upstream closed without answering")).await;
                }
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "upstream closed mid-head"));
            }
            buf.extend_from_slice(&chunk[..n]);
            traffic.add(&traffic.down, 0);
        };
        let rest = buf.split_off(end);
        let (head, interim) = match http::client_response_head(&buf) {
            Ok(rewritten) => rewritten,
            Err(reason) => {
                let _ = client.write_all(&http::proxy_response(502, &reason)).await;
                return Err(io::Error::new(io::ErrorKind::InvalidData, reason));
            }
        };
        client.write_all(&head).await?;
        traffic.add(&traffic.down, head.len());
        buf = rest;
        if !interim {
            break;
        }
    }
    if !buf.is_empty() {
        client.write_all(&buf).await?;
        traffic.add(&traffic.down, buf.len());
    }
    copy_counted(upstream, client, traffic, &traffic.down).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logged_targets_keep_no_path() {
        assert_eq!(target_for_log("http://a.test:80/secret?token=1"), "http://a.test:80");
        assert_eq!(target_for_log("http://a.test?token=1"), "http://a.test");
        assert_eq!(target_for_log("/secret"), "/(path withheld)");
        assert_eq!(target_for_log("evil\r\n.com:443"), "evil\\r\\n.com:443");
        assert_eq!(first_line_for_log(b"GET http://a.test/secret HTTP/1.1\r\nX: y"), "GET http://a.test");
        assert_eq!(target_for_log(&"a".repeat(1000)).chars().count(), 200);
    }
}
