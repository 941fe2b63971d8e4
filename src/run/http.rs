//! The HTTP transport of the runner (run stage): one reused client, requests prepared
//! from the suite, responses read with a size cap. Redirects are not followed: a 302 to
//! a login page is an answer the verdict rules see (and refuse to judge), not something
//! to chase.
//!
//! TLS is rustls (reqwest's `rustls` feature) verifying through
//! `rustls-platform-verifier`: the operating system's trust store (on Linux the
//! OpenSSL-style bundle, `SSL_CERT_FILE` / `SSL_CERT_DIR` honoured), plus the suite's
//! `target.tls.ca` roots when given. `--insecure` turns verification off entirely.

use super::adaptive::{Gate, Signal};
use super::error::RunError;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The largest response body read; beyond it the answer is an error (a list endpoint
/// that returns hundreds of megabytes cannot be judged reliably).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A request body.
#[derive(Clone, Debug, PartialEq)]
pub enum Body {
    Json(Value),
    Text(String),
}

/// A request ready to send: every placeholder filled.
#[derive(Clone, Debug, PartialEq)]
pub struct Prepared {
    pub method: String,
    /// The URL as written after rendering (relative or absolute).
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Option<Body>,
    /// For a GraphQL operation: the result field it is judged on (`""`: the only field
    /// of `data`); `None` for a plain HTTP request.
    pub graphql: Option<String>,
}

impl Prepared {
    /// Everything that is sent (method, URL, query, headers, body, GraphQL field) as one
    /// string: what tells two requests apart when answers are shared between checks.
    /// Held in memory only (it holds the credential).
    pub fn key(&self) -> String {
        format!(
            "{:?}",
            (
                &self.method,
                &self.url,
                &self.query,
                &self.headers,
                &self.body,
                &self.graphql
            )
        )
    }

    /// `METHOD url?query` for evidence (the caller redacts).
    pub fn line(&self) -> String {
        let mut s = format!("{} {}", self.method, self.url);
        if !self.query.is_empty() {
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push(if self.url.contains('?') { '&' } else { '?' });
            s.push_str(&q.join("&"));
        }
        // A GraphQL operation is named by its document: every one is `POST /graphql`.
        if self.graphql.is_some()
            && let Some(Body::Json(b)) = &self.body
            && let Some(q) = b.get("query").and_then(Value::as_str)
        {
            let q: String = q.split_whitespace().collect::<Vec<_>>().join(" ");
            let short: String = q.chars().take(100).collect();
            let more = if short.len() < q.len() { "…" } else { "" };
            s.push_str(&format!(" graphql `{short}{more}`"));
        }
        s
    }

    /// Sets (or replaces) a header.
    pub fn set_header(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }
}

/// An answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Resp {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub elapsed: Duration,
}

impl Resp {
    /// The media type without parameters, lower-cased (`application/json`).
    pub fn content_type(&self) -> String {
        self.header("content-type")
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_str(&self.body).ok()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn is_server_error(&self) -> bool {
        self.status >= 500
    }

    /// The first `n` characters of the body, on one line (the caller redacts).
    pub fn excerpt(&self, n: usize) -> String {
        let one_line: String = self
            .body
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        if one_line.chars().count() > n {
            format!("{}…", one_line.chars().take(n).collect::<String>())
        } else {
            one_line
        }
    }
}

/// Why a request got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    /// The head arrived but the body did not, whole: a reset or a length mismatch.
    #[error("the answer was cut off: {0}")]
    CutOff(String),
    /// The TLS certificate was refused. Not retried: it will not change in a second.
    #[error(
        "cannot connect: {0} (a target behind a private CA needs `target.tls: {{ ca: PATH }}`)"
    )]
    Certificate(String),
    /// A URL known only at send time (built from a capture) of an origin the suite
    /// and the command line do not allow: never sent.
    #[error(
        "refused to send to {0}: not an allowed origin (allow it in `target.allowed_origins` or with --allow-origin)"
    )]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

/// Whose certificates the client trusts.
#[derive(Clone, Debug, Default)]
pub struct TlsTrust {
    /// Accept any certificate (`--insecure`; the caller reports it loudly).
    pub insecure: bool,
    /// Certificates added to the system roots (`target.tls.ca`: a private CA).
    pub extra_roots: Vec<reqwest::Certificate>,
}

impl TlsTrust {
    /// Reads a PEM bundle of CA certificates. The suite loader has checked the file
    /// already; this is the run-time read, so it can still fail (the file changed).
    pub fn read_ca(path: &str) -> Result<Vec<reqwest::Certificate>, RunError> {
        let pem = std::fs::read(path).map_err(|e| RunError::CaUnreadable {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| RunError::CaNotPem {
                path: path.to_string(),
                reason: chain(&e),
            })?;
        if certs.is_empty() {
            return Err(RunError::CaEmpty(path.to_string()));
        }
        Ok(certs)
    }
}

/// How setup requests (provision, seed, teardown) retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub retries: u32,
    /// The first wait; each later one doubles.
    pub backoff: Duration,
}

/// The longest `Retry-After` honoured: a server asking for minutes is not coming back
/// within a deploy gate, and waiting would only delay the error.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(5);

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based) after `resp`: the doubling
    /// backoff, or the server's `Retry-After` (in seconds) when longer, capped at
    /// [`MAX_RETRY_AFTER`].
    pub fn wait(&self, attempt: u32, resp: Option<&Resp>) -> Duration {
        let backoff = self.backoff.saturating_mul(1u32 << attempt.min(6));
        let asked = resp
            .and_then(|r| r.header("retry-after"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
            .unwrap_or_default();
        backoff.max(asked)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            retries: 3,
            backoff: Duration::from_millis(100),
        }
    }
}

/// The client: base URL, timeout, headers for every request. Cloning shares the
/// connection pool.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    /// `base` parsed once, with a trailing `/`: a relative URL is joined to it without
    /// parsing the scheme and host again (parsing every request's whole URL was 6 % of
    /// a run's CPU, most of it the host).
    base_url: Option<reqwest::Url>,
    timeout: Duration,
    default_headers: Vec<(String, String)>,
    /// The origins absolute URLs may have (empty: no restriction, e.g. in unit tests).
    allowed: Vec<String>,
    /// The check stage's concurrency gate, told of every answer once set (shared by
    /// the clones, so setting it on one reaches the checks' client).
    gate: Arc<OnceLock<Gate>>,
    /// Requests that may change the target's state, started and answered (shared by
    /// the clones): what a shared control of A's may rely on ([`Http::quiet`]).
    unsafe_sent: Arc<UnsafeSent>,
}

/// Counts of the requests sent with a method other than `GET`, `HEAD` or `OPTIONS`:
/// started, and answered. One that failed (a timeout, a transport error) or was dropped
/// is never counted answered, so from then on the client is never quiet again: its
/// effect may land at any time.
#[derive(Default)]
struct UnsafeSent {
    started: AtomicU64,
    answered: AtomicU64,
}

/// Whether a request with this method may change state: anything but `GET`, `HEAD` and
/// `OPTIONS`, spelled exactly so (methods are case-sensitive; `get` is another method).
pub(crate) fn may_change_state(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS")
}

/// One line from an error and its sources (reqwest nests the useful part).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

impl Http {
    /// A client for `base_url`, trusting certificates as `tls` says.
    pub fn new(
        base_url: &str,
        timeout: Duration,
        default_headers: Vec<(String, String)>,
        tls: &TlsTrust,
    ) -> Result<Http, RunError> {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tenantgate/", env!("CARGO_PKG_VERSION")));
        if tls.insecure {
            builder = builder.danger_accept_invalid_certs(true);
        } else if !tls.extra_roots.is_empty() {
            builder = builder.tls_certs_merge(tls.extra_roots.iter().cloned());
        }
        let client = builder.build().map_err(|e| RunError::Client(chain(&e)))?;
        let base = base_url.trim_end_matches('/').to_string();
        Ok(Http {
            client,
            base_url: reqwest::Url::parse(&format!("{base}/")).ok(),
            base,
            timeout,
            default_headers,
            allowed: Vec::new(),
            gate: Arc::new(OnceLock::new()),
            unsafe_sent: Arc::default(),
        })
    }

    /// Restricts absolute URLs to `origins` (the loader's: the target's, the suite's
    /// `target.allowed_origins`, `--allow-origin`'s). URLs the loader could check never
    /// reach here refused; this catches those built from a capture.
    pub fn allow_only(&mut self, origins: Vec<String>) {
        self.allowed = origins;
    }

    /// The origin a request must not go to, if `url` is absolute and not allowed.
    fn refused(&self, url: &str) -> Option<String> {
        if self.allowed.is_empty() || !crate::suite::validate::is_absolute(url) {
            return None;
        }
        match crate::suite::validate::origin_of_url(url) {
            Some(o) if self.allowed.contains(&o) => None,
            Some(o) => Some(o),
            None => Some("a URL that does not parse".into()),
        }
    }

    /// From now on every answer (and every transport error) of this client and its
    /// clones is recorded on `gate` (adaptive concurrency). Set once; a later call is
    /// ignored.
    pub fn set_gate(&self, gate: Gate) {
        let _ = self.gate.set(gate);
    }

    /// Tells the gate, if any, how an attempt went.
    fn record(&self, elapsed: Duration, signal: Signal) {
        if let Some(g) = self.gate.get() {
            g.record(elapsed, signal);
        }
    }

    /// The absolute URL for a request URL.
    pub fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}/{}", self.base, url.trim_start_matches('/'))
        }
    }

    /// [`Http::absolute`] of a relative `url`, already parsed (the same URL: pinned by
    /// a test). `None` for an absolute URL, or when it does not join: the text is then
    /// parsed by the client, as before.
    fn joined(&self, url: &str) -> Option<reqwest::Url> {
        if url.starts_with("http://") || url.starts_with("https://") {
            return None;
        }
        // `./` keeps a first segment with a `:` (`a:b`) from reading as a scheme.
        let rel = format!("./{}", url.trim_start_matches('/'));
        self.base_url.as_ref()?.join(&rel).ok()
    }

    /// Sends once.
    pub async fn send(&self, p: &Prepared) -> Result<Resp, TransportError> {
        if let Some(o) = self.refused(&p.url) {
            return Err(TransportError::Refused(o));
        }
        let changes = may_change_state(&p.method);
        if changes {
            self.unsafe_sent.started.fetch_add(1, Ordering::SeqCst);
        }
        let start = Instant::now();
        let r = self.send_once(p, start).await;
        match &r {
            Ok(resp) => {
                if changes {
                    self.unsafe_sent.answered.fetch_add(1, Ordering::SeqCst);
                }
                self.record(resp.elapsed, Signal::of_status(resp.status));
            }
            Err(_) => self.record(start.elapsed(), Signal::Failed),
        }
        r
    }

    /// `Some(mark)` when no request that may change state is in flight on this client
    /// (or its clones) and none was lost: the target's state is what those answered
    /// left. [`Http::unchanged_since`]`(mark)` then tells whether one has started since.
    pub fn quiet(&self) -> Option<u64> {
        let started = self.unsafe_sent.started.load(Ordering::SeqCst);
        let answered = self.unsafe_sent.answered.load(Ordering::SeqCst);
        // A request started between the two loads makes `started` larger than `mark`
        // from then on, so nothing relying on `mark` is trusted.
        (started == answered).then_some(started)
    }

    /// True when no request that may change state has started since [`Http::quiet`]
    /// gave `mark`.
    pub fn unchanged_since(&self, mark: u64) -> bool {
        self.unsafe_sent.started.load(Ordering::SeqCst) == mark
    }

    async fn send_once(&self, p: &Prepared, start: Instant) -> Result<Resp, TransportError> {
        let method = reqwest::Method::from_bytes(p.method.as_bytes())
            .map_err(|_| TransportError::Other(format!("bad method {}", p.method)))?;
        let mut rb = match self.joined(&p.url) {
            Some(u) => self.client.request(method, u),
            None => self.client.request(method, self.absolute(&p.url)),
        };
        for (k, v) in self.default_headers.iter().chain(p.headers.iter()) {
            rb = rb.header(k, v);
        }
        if !p.query.is_empty() {
            rb = rb.query(&p.query);
        }
        match &p.body {
            Some(Body::Json(v)) => rb = rb.json(v),
            Some(Body::Text(t)) => rb = rb.body(t.clone()),
            None => {}
        }
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout(self.timeout)
            } else if e.is_connect() {
                // rustls reports through the connector as text only ("invalid peer
                // certificate: UnknownIssuer"); there is no typed error to match.
                let text = chain(&e);
                if text.contains("certificate") {
                    TransportError::Certificate(text)
                } else {
                    TransportError::Connect(text)
                }
            } else if e.is_body() || e.is_decode() {
                TransportError::CutOff(chain(&e))
            } else {
                TransportError::Other(chain(&e))
            }
        };
        let mut resp = rb.send().await.map_err(map_err)?;
        let status = resp.status().as_u16();
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        // Sized once from Content-Length (capped: the header is the server's word, not
        // a promise), so a large list body is not copied on every doubling.
        let hint = resp
            .content_length()
            .unwrap_or(0)
            .min(MAX_BODY_BYTES as u64) as usize;
        let mut body = Vec::with_capacity(hint);
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(TransportError::Other(format!(
                    "the response body is larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        // Valid UTF-8 (nearly every answer) becomes the String without a copy.
        let body = String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Ok(Resp {
            status,
            headers,
            body,
            elapsed: start.elapsed(),
        })
    }

    /// Sends, retrying transport errors and 429/502/503 answers as `policy` says
    /// (doubling backoff, `Retry-After` honoured up to [`MAX_RETRY_AFTER`]). Returns the
    /// last outcome and how many retries were made. Only for setup steps (provision,
    /// seed, teardown): a check never retries its way to a pass.
    pub async fn send_retrying(
        &self,
        p: &Prepared,
        policy: &RetryPolicy,
    ) -> (Result<Resp, TransportError>, u32) {
        let mut attempt = 0;
        loop {
            let r = self.send(p).await;
            let transient = match &r {
                Err(TransportError::Certificate(_) | TransportError::Refused(_)) => false,
                Err(_) => true,
                Ok(resp) => matches!(resp.status, 429 | 502 | 503),
            };
            if !transient || attempt >= policy.retries {
                return (r, attempt);
            }
            tokio::time::sleep(policy.wait(attempt, r.as_ref().ok())).await;
            attempt += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that answers every request 204, on one connection after another.
    async fn answering() -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = c.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let ok = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n";
                        if c.write_all(ok).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        url
    }

    fn request(method: &str) -> Prepared {
        Prepared {
            method: method.into(),
            url: "/x".into(),
            headers: Vec::new(),
            query: Vec::new(),
            body: None,
            graphql: None,
        }
    }

    #[tokio::test]
    async fn the_client_is_quiet_only_while_no_request_that_may_change_state_is_unanswered() {
        let tls = TlsTrust {
            insecure: false,
            extra_roots: Vec::new(),
        };
        let http = Http::new(&answering().await, Duration::from_secs(5), Vec::new(), &tls).unwrap();
        let mark = http.quiet().expect("nothing sent yet");
        for m in ["GET", "HEAD", "OPTIONS"] {
            http.send(&request(m)).await.unwrap();
        }
        assert!(http.unchanged_since(mark), "safe methods change nothing");
        // Any other method, even spelled in lower case, counts; answered, the client is
        // quiet again, at a new mark.
        for m in ["POST", "get"] {
            http.clone().send(&request(m)).await.unwrap();
            assert!(!http.unchanged_since(mark), "{m}");
        }
        let after = http.quiet().expect("both were answered");
        assert_ne!(after, mark);
        // One that was not answered (nothing listens on port 1) may land at any time:
        // the client is never quiet again.
        let gone = Http::new(
            "http://127.0.0.1:1",
            Duration::from_secs(5),
            Vec::new(),
            &tls,
        )
        .unwrap();
        assert!(gone.send(&request("DELETE")).await.is_err());
        assert!(gone.quiet().is_none());
        assert!(gone.send(&request("GET")).await.is_err());
        assert!(gone.quiet().is_none());
    }

    #[test]
    fn a_joined_url_is_the_url_the_client_parses_from_the_text() {
        let tls = TlsTrust {
            insecure: false,
            extra_roots: Vec::new(),
        };
        for base in [
            "http://127.0.0.1:8080",
            "http://h.example/api/",
            "https://H.example:443/v1",
        ] {
            let http = Http::new(base, Duration::from_secs(1), Vec::new(), &tls).unwrap();
            for url in [
                "/items/1",
                "items/1",
                "",
                "/",
                "/items?x=1&y=a%20b",
                "/a/../b/./c",
                "/a b/ü",
                "/%2F/x",
                "/a:b",
                "a:b/c",
                "/items/1#frag",
                "//evil.example/x",
                "/items?q=ü&r=<>",
                "\\x",
            ] {
                let text = reqwest::Url::parse(&http.absolute(url)).map(|u| u.to_string());
                let joined = http.joined(url).map(|u| u.to_string());
                assert_eq!(joined.ok_or(()), text.map_err(|_| ()), "{base} + {url:?}");
            }
            assert!(http.joined("https://other.example/x").is_none());
        }
    }

    fn resp(status: u16, retry_after: Option<&str>) -> Resp {
        Resp {
            status,
            headers: retry_after
                .map(|v| vec![("retry-after".to_string(), v.to_string())])
                .unwrap_or_default(),
            body: String::new(),
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn backoff_doubles_and_retry_after_is_honoured_up_to_a_cap() {
        let p = RetryPolicy::default();
        assert_eq!(p.wait(0, None), Duration::from_millis(100));
        assert_eq!(p.wait(2, None), Duration::from_millis(400));
        assert_eq!(
            p.wait(0, Some(&resp(503, Some("2")))),
            Duration::from_secs(2)
        );
        assert_eq!(p.wait(0, Some(&resp(503, Some("3600")))), MAX_RETRY_AFTER);
        // An HTTP date is not parsed: the backoff applies.
        let date = resp(503, Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(p.wait(1, Some(&date)), Duration::from_millis(200));
    }
}
