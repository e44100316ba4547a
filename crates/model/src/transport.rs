//! One POST with a streamed reply, over TCP (reqwest) or a Unix socket (hyper's HTTP/1.1 client).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;

/// How requests leave the process.
#[derive(Debug)]
pub(crate) enum Transport {
    Tcp(reqwest::Client),
    /// The broker's socket; reqwest cannot speak HTTP over one.
    Unix(PathBuf),
}

/// Why a request got no response.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made.
    Connect(String),
    /// The connection was made but the request failed.
    Request(String),
}

/// A response whose body is read chunk by chunk.
#[derive(Debug)]
pub(crate) struct Reply {
    pub status: u16,
    /// `Retry-After` (or OpenAI's `retry-after-ms`), when given in seconds.
    pub retry_after: Option<Duration>,
    pub content_type: String,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Reqwest(reqwest::Response),
    Hyper(hyper::body::Incoming),
}

impl Reply {
    /// The next piece of the body; `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, String> {
        match &mut self.body {
            Body::Reqwest(response) => response.chunk().await.map_err(|e| error_chain(&e)),
            Body::Hyper(incoming) => loop {
                match incoming.frame().await {
                    None => return Ok(None),
                    Some(Err(error)) => return Err(error_chain(&error)),
                    // Trailers carry nothing we use.
                    Some(Ok(frame)) => {
                        if let Ok(data) = frame.into_data() {
                            return Ok(Some(data));
                        }
                    }
                }
            },
        }
    }
}

impl Transport {
    /// Sends `body` to `url` and returns once the response headers are in.
    pub async fn post(&self, url: &reqwest::Url, headers: &[(&str, String)], body: Bytes) -> Result<Reply, SendError> {
        match self {
            Transport::Tcp(client) => {
                let mut request = client.post(url.clone());
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                let response = request.body(body).send().await.map_err(|error| {
                    if error.is_connect() {
                        SendError::Connect(error_chain(&error))
                    } else {
                        SendError::Request(error_chain(&error))
                    }
                })?;
                let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
                Ok(Reply {
                    status: response.status().as_u16(),
                    retry_after: retry_after(header("retry-after-ms").as_deref(), header("retry-after").as_deref()),
                    content_type: header("content-type").unwrap_or_default(),
                    body: Body::Reqwest(response),
                })
            }
            Transport::Unix(socket) => post_unix(socket, url, headers, body).await,
        }
    }
}

async fn post_unix(
    socket: &PathBuf,
    url: &reqwest::Url,
    headers: &[(&str, String)],
    body: Bytes,
) -> Result<Reply, SendError> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|error| SendError::Connect(format!("{}: {error}", socket.display())))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|error| SendError::Connect(error_chain(&error)))?;
    // Drives the connection; ends when the response body is read or dropped.
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "model server connection over the unix socket ended");
        }
    });
    let path = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => "localhost".to_owned(),
    };
    let mut request = hyper::Request::post(path).header(hyper::header::HOST, host);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request =
        request.body(http_body_util::Full::new(body)).map_err(|error| SendError::Request(error_chain(&error)))?;
    let response = sender.send_request(request).await.map_err(|error| SendError::Request(error_chain(&error)))?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let status = response.status().as_u16();
    let retry_after = retry_after(header("retry-after-ms").as_deref(), header("retry-after").as_deref());
    let content_type = header("content-type").unwrap_or_default();
    Ok(Reply { status, retry_after, content_type, body: Body::Hyper(response.into_body()) })
}

/// The wait a server asked for. HTTP dates are not honoured (the backoff applies instead).
fn retry_after(milliseconds: Option<&str>, seconds: Option<&str>) -> Option<Duration> {
    let parse =
        |text: Option<&str>| text.and_then(|t| t.trim().parse::<f64>().ok()).filter(|n| n.is_finite() && *n >= 0.0);
    if let Some(ms) = parse(milliseconds) {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    parse(seconds).map(Duration::from_secs_f64)
}

/// An error with its causes ("error sending request" alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::retry_after;
    use std::time::Duration;

    #[test]
    fn retry_after_forms() {
        assert_eq!(retry_after(None, Some("2")), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(None, Some(" 0.5 ")), Some(Duration::from_millis(500)));
        assert_eq!(retry_after(Some("250"), Some("2")), Some(Duration::from_millis(250)));
        assert_eq!(retry_after(None, Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(retry_after(None, Some("-1")), None);
    }
}
