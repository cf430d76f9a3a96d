//! The control API: a small HTTP/1.1 server on its own thread and tokio runtime.
//!
//! | endpoint                          | what                                                     |
//! |-----------------------------------|----------------------------------------------------------|
//! | `GET /healthz`                    | the process is alive (never needs the token)             |
//! | `GET /readyz`                     | 200 while every stream is running, else 503 and why      |
//! | `GET /metrics`                    | Prometheus text, names prefixed `avsepd_`                |
//! | `GET /api/streams`                | every stream: name, redacted source, status, counters, who speaks |
//! | `GET /api/streams/{name}`         | one stream                                               |
//! | `GET /api/streams/{name}/outputs` | its RTP outputs, each with the URL of its SDP            |
//! | `GET /sdp/{file}`                 | the SDP of one output, generated from the stream's spec  |
//! | `GET /api/events`                 | server-sent events: stream state changes, speech starts and ends |
//!
//! One request per connection (`Connection: close`), only `GET`, a bounded request head and a read
//! deadline. With a token, every endpoint but `/healthz` wants `Authorization: Bearer <token>`.
//! Handlers only read atomics and take the streams' short status and latency locks, so the API
//! can never stall the media path.

mod api;
mod metrics;
mod sse;

pub use metrics::{LATENCY_BUCKETS, metrics};

use crate::config::DaemonConfig;
use crate::stream::Stream;
use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request head (request line and headers) accepted; larger ones get 431.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Connections served at once (event streams included); more are answered 503.
const MAX_CONNECTIONS: usize = 64;
/// Longest a response (or one event) may take to write before the client is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// File name of the systemd credential holding the token (`LoadCredential=api_token:...`).
pub const CREDENTIAL_NAME: &str = "api_token";

/// How the control API is served.
#[derive(Clone)]
pub struct ApiOptions {
    pub listen: SocketAddr,
    /// Bearer token every endpoint but `/healthz` requires; `None`: no authentication.
    pub token: Option<String>,
    /// The whole request head must arrive within this time (else 408).
    pub read_timeout: Duration,
    /// A comment line is sent on idle event streams this often.
    pub keepalive: Duration,
}

impl std::fmt::Debug for ApiOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiOptions")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("read_timeout", &self.read_timeout)
            .field("keepalive", &self.keepalive)
            .finish()
    }
}

impl ApiOptions {
    /// Listen on `listen` without a token, with the default timeouts.
    pub fn new(listen: SocketAddr) -> Self {
        ApiOptions {
            listen,
            token: None,
            read_timeout: Duration::from_secs(5),
            keepalive: Duration::from_secs(15),
        }
    }

    /// The options `[daemon]` asks for; the token comes from the systemd credential
    /// `$CREDENTIALS_DIRECTORY/api_token` if there is one, else from `$<api_token_env>`.
    pub fn from_config(daemon: &DaemonConfig) -> Result<Self> {
        let credentials = std::env::var_os("CREDENTIALS_DIRECTORY");
        let env_value = std::env::var(&daemon.api_token_env).ok();
        let token = resolve_token(credentials.as_deref().map(Path::new), env_value)?;
        match &token {
            Some((_, from)) => tracing::info!("control API requires a bearer token (from {from})"),
            None => tracing::info!(
                variable = %daemon.api_token_env,
                "control API without a token: neither the credential `{CREDENTIAL_NAME}` nor \
                 the variable is set"
            ),
        }
        Ok(ApiOptions {
            token: token.map(|(t, _)| t),
            ..ApiOptions::new(daemon.listen)
        })
    }
}

/// The token and where it came from: the credential file wins over the variable's value. Empty
/// values (after trimming a trailing newline and spaces) count as unset.
fn resolve_token(
    credentials_dir: Option<&Path>,
    env_value: Option<String>,
) -> Result<Option<(String, &'static str)>> {
    if let Some(dir) = credentials_dir {
        let path = dir.join(CREDENTIAL_NAME);
        if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading the API token `{}`", path.display()))?;
            let token = text.trim();
            if token.is_empty() {
                bail!("the API token credential `{}` is empty", path.display());
            }
            return Ok(Some((token.to_owned(), "systemd credential")));
        }
    }
    Ok(env_value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .map(|v| (v, "environment")))
}

/// A list of streams a reload may replace (the daemon's fleet publishes into it).
pub type StreamRegistry = Arc<RwLock<Vec<Arc<Stream>>>>;

/// The streams the API shows: a fixed list, or a registry read at each request.
#[derive(Clone)]
pub enum Streams {
    Fixed(Arc<Vec<Arc<Stream>>>),
    Registry(StreamRegistry),
}

impl Streams {
    /// The streams now (a short read lock for a registry).
    pub fn snapshot(&self) -> Vec<Arc<Stream>> {
        match self {
            Streams::Fixed(list) => list.as_ref().clone(),
            Streams::Registry(r) => r.read().unwrap_or_else(|p| p.into_inner()).clone(),
        }
    }
}

impl From<Vec<Arc<Stream>>> for Streams {
    fn from(list: Vec<Arc<Stream>>) -> Self {
        Streams::Fixed(Arc::new(list))
    }
}

impl From<StreamRegistry> for Streams {
    fn from(registry: StreamRegistry) -> Self {
        Streams::Registry(registry)
    }
}

/// What the connection handlers share.
struct Shared {
    streams: Streams,
    /// SHA-256 of the token: comparing digests takes the same time whatever the guess.
    token_digest: Option<[u8; 32]>,
    read_timeout: Duration,
    keepalive: Duration,
}

/// Bind `options.listen` and serve `streams` (a `Vec<Arc<Stream>>` or a [`StreamRegistry`]) on a
/// background thread. Binding errors are returned (naming the address) so a daemon that cannot
/// be controlled does not start.
pub fn serve(options: ApiOptions, streams: impl Into<Streams>) -> Result<SocketAddr> {
    let addr = options.listen;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(addr))
        .with_context(|| format!("control API cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    if options.token.is_none() && !bound.ip().is_loopback() {
        tracing::warn!(
            %bound,
            "control API listens beyond loopback without a token: anyone who can reach it can \
             read the streams' status and outputs"
        );
    }
    let shared = Arc::new(Shared {
        streams: streams.into(),
        token_digest: options.token.as_deref().map(digest),
        read_timeout: options.read_timeout,
        keepalive: options.keepalive,
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    std::thread::Builder::new()
        .name("control-http".into())
        .spawn(move || {
            rt.block_on(async move {
                loop {
                    let socket = match listener.accept().await {
                        Ok((socket, _)) => socket,
                        Err(e) => {
                            // Out of file descriptors and the like: do not spin.
                            tracing::debug!("control API accept: {e}");
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    let shared = shared.clone();
                    let permit = slots.clone().try_acquire_owned();
                    tokio::spawn(async move {
                        let _ = match permit {
                            Ok(_permit) => handle(socket, &shared).await,
                            Err(_) => {
                                let busy = Response::text(503, "too many connections\n");
                                send(socket, busy).await
                            }
                        };
                    });
                }
            })
        })?;
    tracing::info!(%bound, "control API listening");
    Ok(bound)
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Equal digests, compared without an early exit.
fn digests_equal(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A parsed request head: what the API looks at.
#[derive(Debug)]
struct Request {
    method: String,
    /// The path without the query string.
    path: String,
    authorization: Option<String>,
}

/// Why no request could be read.
enum HeadError {
    TooLarge,
    TimedOut,
    Malformed,
    /// The client went away (or the socket failed): nothing to answer.
    Gone,
}

async fn read_head<R: AsyncRead + Unpin>(
    socket: &mut R,
    timeout: Duration,
) -> Result<Request, HeadError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    let end = loop {
        let n = match tokio::time::timeout_at(deadline, socket.read(&mut chunk)).await {
            Err(_) => return Err(HeadError::TimedOut),
            Ok(Err(_)) | Ok(Ok(0)) => return Err(HeadError::Gone),
            Ok(Ok(n)) => n,
        };
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&chunk[..n]);
        if let Some(i) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + i;
        }
        if head.len() > MAX_HEAD_BYTES {
            return Err(HeadError::TooLarge);
        }
    };
    if end + 4 > MAX_HEAD_BYTES {
        return Err(HeadError::TooLarge);
    }
    parse_head(&head[..end]).ok_or(HeadError::Malformed)
}

fn parse_head(head: &[u8]) -> Option<Request> {
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || method.is_empty() || !version.starts_with("HTTP/1.") {
        return None;
    }
    if !target.starts_with('/') {
        return None;
    }
    let path = target.split(['?', '#']).next().unwrap_or(target);
    let mut authorization = None;
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("authorization") {
            authorization = Some(value.trim().to_owned());
        }
    }
    Some(Request {
        method: method.to_owned(),
        path: path.to_owned(),
        authorization,
    })
}

/// A complete response with a body.
struct Response {
    status: u16,
    content_type: &'static str,
    headers: Vec<(&'static str, &'static str)>,
    body: String,
}

impl Response {
    fn new(status: u16, content_type: &'static str, body: String) -> Self {
        Response {
            status,
            content_type,
            headers: Vec::new(),
            body,
        }
    }

    fn text(status: u16, body: &str) -> Self {
        Self::new(status, "text/plain; charset=utf-8", body.to_owned())
    }

    fn json(status: u16, value: &serde_json::Value) -> Self {
        Self::new(status, "application/json", format!("{value}\n"))
    }

    fn not_found() -> Self {
        Self::text(404, "not found\n")
    }

    fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn head(&self) -> String {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n",
            self.status,
            reason(self.status),
            self.content_type,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// Serve one connection: one request, one response (or an event stream), then close.
async fn handle(mut socket: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let request = match read_head(&mut socket, shared.read_timeout).await {
        Ok(r) => r,
        Err(HeadError::Gone) => return Ok(()),
        Err(HeadError::TimedOut) => {
            return send(
                socket,
                Response::text(408, "request head not received in time\n"),
            )
            .await;
        }
        Err(HeadError::TooLarge) => {
            let body = format!("request head larger than {MAX_HEAD_BYTES} bytes\n");
            return send(
                socket,
                Response::new(431, "text/plain; charset=utf-8", body),
            )
            .await;
        }
        Err(HeadError::Malformed) => {
            return send(socket, Response::text(400, "malformed request\n")).await;
        }
    };
    if request.method != "GET" {
        let refused = Response::text(405, "only GET\n").with_header("Allow", "GET");
        return send(socket, refused).await;
    }
    if request.path != "/healthz" && !authorized(shared, request.authorization.as_deref()) {
        let refused = Response::text(401, "bearer token required\n")
            .with_header("WWW-Authenticate", "Bearer realm=\"avsepd\"");
        return send(socket, refused).await;
    }
    if request.path == "/api/events" {
        return sse::serve_events(socket, &shared.streams, shared.keepalive).await;
    }
    let response = route(&request.path, &shared.streams.snapshot());
    send(socket, response).await
}

fn authorized(shared: &Shared, authorization: Option<&str>) -> bool {
    let Some(expected) = &shared.token_digest else {
        return true;
    };
    let Some((scheme, token)) = authorization.and_then(|a| a.split_once(' ')) else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer") && digests_equal(&digest(token.trim()), expected)
}

/// The response to `GET path` (all but the event stream).
fn route(path: &str, streams: &[Arc<Stream>]) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["healthz"] => Response::text(200, "ok\n"),
        ["readyz"] => api::readyz(streams),
        ["metrics"] => Response::new(200, "text/plain; version=0.0.4", metrics(streams)),
        ["api", "streams"] => Response::json(200, &api::streams_json(streams)),
        ["api", "streams", name] => match api::find(streams, name) {
            Some(s) => Response::json(200, &api::stream_json(s)),
            None => api::no_such_stream(name),
        },
        ["api", "streams", name, "outputs"] => match api::find(streams, name) {
            Some(s) => Response::json(200, &api::outputs_json(s)),
            None => api::no_such_stream(name),
        },
        ["sdp", file] => match api::sdp_for(streams, file) {
            Some(text) => Response::new(200, "application/sdp", text),
            None => Response::not_found(),
        },
        _ => Response::not_found(),
    }
}

/// Write a response and close the connection.
async fn send(mut socket: TcpStream, response: Response) -> std::io::Result<()> {
    let mut bytes = response.head().into_bytes();
    bytes.extend_from_slice(response.body.as_bytes());
    write_all_timeout(&mut socket, &bytes).await?;
    linger_close(socket).await
}

async fn write_all_timeout<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    tokio::time::timeout(WRITE_TIMEOUT, w.write_all(bytes))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

/// Half-close, then read what the client still sends for a moment: closing with unread input
/// would reset the connection, and the client could lose the response (e.g. after a 431).
async fn linger_close(mut socket: TcpStream) -> std::io::Result<()> {
    socket.shutdown().await?;
    let drain = async {
        let mut sink = [0u8; 4096];
        let mut total = 0usize;
        while total < 256 * 1024 {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_head_parses_method_path_and_authorization() {
        let r =
            parse_head(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nauthorization:  Bearer t \r\n")
                .unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/metrics"));
        assert_eq!(r.authorization.as_deref(), Some("Bearer t"));
        assert!(parse_head(b"GET /x").is_none());
        assert!(parse_head(b"GET x HTTP/1.1").is_none());
        assert!(parse_head(b"GET /x SPDY/3").is_none());
        assert!(parse_head(b"GET /x HTTP/1.1\r\nno colon").is_none());
    }

    #[test]
    fn token_checks_scheme_and_value() {
        let shared = Shared {
            streams: Vec::new().into(),
            token_digest: Some(digest("s3cret")),
            read_timeout: Duration::from_secs(1),
            keepalive: Duration::from_secs(1),
        };
        assert!(authorized(&shared, Some("Bearer s3cret")));
        assert!(authorized(&shared, Some("bearer s3cret")));
        assert!(!authorized(&shared, Some("Bearer s3cre")));
        assert!(!authorized(&shared, Some("Basic s3cret")));
        assert!(!authorized(&shared, Some("s3cret")));
        assert!(!authorized(&shared, None));
    }

    #[test]
    fn credential_file_wins_over_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let env = || Some("from-env".to_owned());
        assert_eq!(
            resolve_token(Some(dir.path()), env()).unwrap(),
            Some(("from-env".to_owned(), "environment"))
        );
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "from-file\n").unwrap();
        assert_eq!(
            resolve_token(Some(dir.path()), env()).unwrap(),
            Some(("from-file".to_owned(), "systemd credential"))
        );
        std::fs::write(dir.path().join(CREDENTIAL_NAME), "\n").unwrap();
        assert!(resolve_token(Some(dir.path()), env()).is_err());
        assert_eq!(resolve_token(None, Some("  ".into())).unwrap(), None);
        assert_eq!(resolve_token(None, None).unwrap(), None);
    }

    #[test]
    fn options_never_show_the_token() {
        let options = ApiOptions {
            token: Some("s3cret".into()),
            ..ApiOptions::new("127.0.0.1:1".parse().unwrap())
        };
        assert!(!format!("{options:?}").contains("s3cret"));
    }
}
