//! The HTTP transport of the runner (run stage): one reused client, requests prepared
//! from the suite, responses read with a size cap. Redirects are not followed: a 302 to
//! a login page is an answer to judge, not something to chase.

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
}

impl Prepared {
    /// `METHOD url?query` for evidence (the caller redacts).
    pub fn line(&self) -> String {
        let mut s = format!("{} {}", self.method, self.url);
        if !self.query.is_empty() {
            let q: Vec<String> = self.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s.push(if self.url.contains('?') { '&' } else { '?' });
            s.push_str(&q.join("&"));
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
    #[error("{0}")]
    Other(String),
}

/// The client: base URL, timeout, headers for every request.
pub struct Http {
    client: reqwest::Client,
    base: String,
    timeout: Duration,
    default_headers: Vec<(String, String)>,
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
    /// A client for `base_url`. `insecure` accepts any TLS certificate (reported loudly
    /// by the caller).
    pub fn new(
        base_url: &str,
        timeout: Duration,
        default_headers: Vec<(String, String)>,
        insecure: bool,
    ) -> Result<Http, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .danger_accept_invalid_certs(insecure)
            .user_agent(concat!("tenantgate/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| chain(&e))?;
        Ok(Http {
            client,
            base: base_url.trim_end_matches('/').to_string(),
            timeout,
            default_headers,
        })
    }

    /// The absolute URL for a request URL.
    pub fn absolute(&self, url: &str) -> String {
        if url.starts_with("http://") || url.starts_with("https://") {
            url.to_string()
        } else {
            format!("{}/{}", self.base, url.trim_start_matches('/'))
        }
    }

    /// Sends once.
    pub async fn send(&self, p: &Prepared) -> Result<Resp, TransportError> {
        let method = reqwest::Method::from_bytes(p.method.as_bytes())
            .map_err(|_| TransportError::Other(format!("bad method {}", p.method)))?;
        let mut rb = self.client.request(method, self.absolute(&p.url));
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
        let start = Instant::now();
        let map_err = |e: reqwest::Error| {
            if e.is_timeout() {
                TransportError::Timeout(self.timeout)
            } else if e.is_connect() {
                TransportError::Connect(chain(&e))
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
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(map_err)? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(TransportError::Other(format!(
                    "the response body is larger than {MAX_BODY_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Resp {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
            elapsed: start.elapsed(),
        })
    }

    /// Sends, retrying transport errors and 429/502/503 answers up to `retries` times
    /// with exponential backoff (100 ms, 200 ms, 400 ms, ...). Only for setup steps
    /// (provision, seed, teardown): a check never retries its way to a pass.
    pub async fn send_retrying(
        &self,
        p: &Prepared,
        retries: u32,
    ) -> (Result<Resp, TransportError>, u32) {
        let mut attempt = 0;
        loop {
            let r = self.send(p).await;
            let transient = match &r {
                Err(_) => true,
                Ok(resp) => matches!(resp.status, 429 | 502 | 503),
            };
            if !transient || attempt >= retries {
                return (r, attempt);
            }
            tokio::time::sleep(Duration::from_millis(100u64 << attempt.min(6))).await;
            attempt += 1;
        }
    }
}
