//! The limit between a server's standard output and the MCP SDK.
//!
//! Lines are passed on whole, each only after it was checked: a line longer
//! than [`MAX_LINE`], more than [`MAX_CALL_BYTES`] since the last call began,
//! or a line that is not a JSON-RPC 2.0 object ends the stream with an error
//! (the SDK then closes the connection) after `violation` was told why, so
//! the server is stopped. The SDK would skip a line it cannot parse and wait
//! on; a server sending such lines is not one to keep talking to.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use crate::{MAX_CALL_BYTES, MAX_LINE};

/// Told once why the stream was ended.
pub(crate) type Violation = Box<dyn FnMut(String) + Send>;

pub(crate) struct LimitedLines<R> {
    inner: R,
    /// The line being received.
    partial: Vec<u8>,
    /// Checked lines not yet read by the SDK, from `ready_at`.
    ready: Vec<u8>,
    ready_at: usize,
    /// Bytes received since the last call began (reset by the caller).
    received: Arc<AtomicU64>,
    violation: Option<Violation>,
    failed: bool,
}

impl<R> LimitedLines<R> {
    pub(crate) fn new(inner: R, received: Arc<AtomicU64>, violation: Violation) -> Self {
        LimitedLines {
            inner,
            partial: Vec::new(),
            ready: Vec::new(),
            ready_at: 0,
            received,
            violation: Some(violation),
            failed: false,
        }
    }

    fn fail(&mut self, reason: String) -> io::Error {
        self.failed = true;
        self.partial = Vec::new();
        if let Some(mut tell) = self.violation.take() {
            tell(reason.clone());
        }
        io::Error::new(io::ErrorKind::InvalidData, reason)
    }

    /// Takes in bytes read from the server; an error names the violation.
    fn take_in(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        let total = self.received.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
        if total > MAX_CALL_BYTES {
            return Err(format!(
                "it sent more than {} MiB during one call (a flood of output or notifications)",
                MAX_CALL_BYTES >> 20
            ));
        }
        while !bytes.is_empty() {
            let newline = bytes.iter().position(|b| *b == b'\n');
            let take = newline.map_or(bytes.len(), |i| i + 1);
            if self.partial.len() + take > MAX_LINE + 1 {
                return Err(format!("it sent a line longer than {} MiB", MAX_LINE >> 20));
            }
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if newline.is_some() {
                check_line(&self.partial)?;
                if self.ready_at == self.ready.len() {
                    self.ready.clear();
                    self.ready_at = 0;
                }
                self.ready.extend_from_slice(&self.partial);
                self.partial.clear();
            }
        }
        Ok(())
    }
}

/// A JSON-RPC 2.0 message: a JSON object with `"jsonrpc": "2.0"` (blank lines pass).
fn check_line(line: &[u8]) -> Result<(), String> {
    #[derive(serde::Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        jsonrpc: std::borrow::Cow<'a, str>,
    }
    let body = line.strip_suffix(b"\n").unwrap_or(line);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<Envelope<'_>>(body) {
        Ok(e) if e.jsonrpc == "2.0" => Ok(()),
        Ok(e) => Err(format!("it sent a message with \"jsonrpc\": {:?}, not \"2.0\"", e.jsonrpc)),
        Err(e) => {
            let shown = String::from_utf8_lossy(&body[..body.len().min(120)]).into_owned();
            Err(format!(
                "it sent a line that is not a JSON-RPC message ({e}): {}",
                airlock_redact::terminal::one_line(&shown)
            ))
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for LimitedLines<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.ready_at < this.ready.len() {
                let n = out.remaining().min(this.ready.len() - this.ready_at);
                out.put_slice(&this.ready[this.ready_at..this.ready_at + n]);
                this.ready_at += n;
                return Poll::Ready(Ok(()));
            }
            if this.failed {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, "the server was stopped")));
            }
            let mut chunk = [0u8; 64 * 1024];
            let mut buf = ReadBuf::new(&mut chunk);
            match Pin::new(&mut this.inner).poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                // End of output: a last line without its newline is dropped, as the SDK would.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let filled = buf.filled().to_vec();
                    if let Err(reason) = this.take_in(&filled) {
                        return Poll::Ready(Err(this.fail(reason)));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::AsyncReadExt;

    fn run(input: Vec<u8>) -> (Result<Vec<u8>, String>, Option<String>) {
        let told = Arc::new(Mutex::new(None));
        let t = told.clone();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let got = rt.block_on(async move {
            let mut lines = LimitedLines::new(
                &input[..],
                Arc::new(AtomicU64::new(0)),
                Box::new(move |r| *t.lock().unwrap() = Some(r)),
            );
            let mut out = Vec::new();
            lines.read_to_end(&mut out).await.map(|_| out).map_err(|e| e.to_string())
        });
        let told = told.lock().unwrap().clone();
        (got, told)
    }

    #[test]
    fn whole_json_rpc_lines_pass_unchanged() {
        let input =
            b"{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\n{\"jsonrpc\":\"2.0\",\"method\":\"x\"}\r\n".to_vec();
        let (got, told) = run(input.clone());
        assert_eq!(got.unwrap(), input);
        assert_eq!(told, None);
    }

    #[test]
    fn a_line_that_is_not_json_rpc_ends_the_stream_with_the_reason() {
        let (got, told) = run(b"{\"jsonrpc\":\"2.0\",\"id\":1}\nhello \x1b[2J world\n".to_vec());
        let reason = told.unwrap();
        assert!(reason.contains("not a JSON-RPC message"), "{reason}");
        assert!(reason.contains("hello \u{FFFD}[2J world"), "{reason}");
        assert!(got.unwrap_err().contains("not a JSON-RPC message"));
        let (_, told) = run(b"{\"jsonrpc\":\"1.0\",\"id\":1}\n".to_vec());
        assert!(told.unwrap().contains("not \"2.0\""));
    }

    #[test]
    fn a_line_over_the_cap_ends_the_stream() {
        let mut input = b"{\"jsonrpc\":\"2.0\",\"result\":\"".to_vec();
        input.resize(MAX_LINE + 10, b'a');
        let (got, told) = run(input);
        assert!(told.unwrap().contains("a line longer than 8 MiB"));
        assert!(got.is_err());
    }

    #[test]
    fn more_than_the_call_budget_ends_the_stream() {
        let line = format!("{{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"params\":\"{}\"}}\n", "a".repeat(1 << 20));
        let input = line.repeat(65).into_bytes();
        let (got, told) = run(input);
        assert!(told.unwrap().contains("more than 64 MiB during one call"));
        assert!(got.is_err());
    }
}
