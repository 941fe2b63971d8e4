//! A fault-injecting HTTP reverse proxy for the fault matrix (`faults.rs`): it sits in
//! front of the reference API, forwards every request, and misbehaves on command for
//! the requests a [`Rule`] matches — a status, a reset mid-response, a delay, a body cut
//! short or not JSON, a redirect loop, or dying for good.
//!
//! It tells org A from org B by the tokens the sign-up answers hand out (the first
//! sign-up is A's, the second B's: provisioning runs A then B, one at a time), so a
//! rule can target "only B's requests", the way a real fault would hit the checks and
//! not the controls. It can also serve HTTPS with a given certificate.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use crate::support::Target;

/// Who sent a request, as far as the proxy can tell from its token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Org {
    A,
    B,
    /// No `Authorization` header.
    Anon,
    /// A token the proxy never saw handed out (a forged one).
    Other,
}

/// One request as the proxy saw it, and the fault it got (if any).
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// The path without the query.
    pub path: String,
    pub org: Org,
    pub fault: Option<&'static str>,
    /// When it arrived.
    pub at: Instant,
}

/// What to do instead of (or around) forwarding.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer this status with a short JSON body, without forwarding.
    Status(u16),
    /// Answer `503` with `Retry-After: SECONDS`, without forwarding.
    Unavailable { retry_after: u64 },
    /// Send the head and a few bytes of body, then drop the connection.
    Reset,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Forward, then answer with the first half of the body (a consistent length, so
    /// the transport is fine and only the content is broken).
    Truncate,
    /// Forward, then answer the same status with an HTML page instead of the body.
    NotJson,
    /// Answer `302 Found` pointing at the very same URL.
    RedirectLoop,
    /// Stop listening, and reset this and every later request.
    Die,
    /// Forward, then add `"request_id": N` (N counts up) to a JSON object body: an
    /// answer that differs on every request, as many apps' error bodies do.
    StampBody,
}

impl Fault {
    fn name(&self) -> &'static str {
        match self {
            Fault::Status(_) => "status",
            Fault::Unavailable { .. } => "unavailable",
            Fault::Reset => "reset",
            Fault::Delay(_) => "delay",
            Fault::Truncate => "truncate",
            Fault::NotJson => "not-json",
            Fault::RedirectLoop => "redirect-loop",
            Fault::Die => "die",
            Fault::StampBody => "stamp-body",
        }
    }
}

type Pred = Box<dyn Fn(&Seen) -> bool + Send + Sync>;

/// "For requests matching `when`, skip the first `after`, then apply `fault` `times`
/// times."
pub struct Rule {
    when: Pred,
    fault: Fault,
    after: usize,
    times: usize,
    hits: AtomicUsize,
}

impl Rule {
    /// Applies `fault` to every request `when` matches.
    pub fn on(when: impl Fn(&Seen) -> bool + Send + Sync + 'static, fault: Fault) -> Rule {
        Rule {
            when: Box::new(when),
            fault,
            after: 0,
            times: usize::MAX,
            hits: AtomicUsize::new(0),
        }
    }

    /// Lets the first `n` matching requests through untouched.
    pub fn after(mut self, n: usize) -> Rule {
        self.after = n;
        self
    }

    /// Applies the fault this many times only, then forwards again.
    pub fn times(mut self, n: usize) -> Rule {
        self.times = n;
        self
    }
}

struct Shared {
    upstream: String,
    client: reqwest::Client,
    rules: Vec<Rule>,
    /// Tokens from sign-up answers, in order: A's, then B's.
    tokens: Mutex<Vec<String>>,
    log: Mutex<Vec<Seen>>,
    dead: AtomicBool,
    server: Mutex<Option<tokio::task::AbortHandle>>,
}

/// A running proxy. Dropping it stops it.
pub struct Proxy {
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub url: String,
    shared: Arc<Shared>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Proxy {
    /// A plain-HTTP proxy in front of `t`'s API.
    pub fn start(t: &Target, rules: Vec<Rule>) -> Proxy {
        let shared = Self::shared(t, rules);
        let s = shared.clone();
        let addr = t.rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = l.local_addr().unwrap();
            let task = tokio::spawn(async move {
                let _ = axum::serve(l, router(s)).await;
            });
            (addr, task.abort_handle())
        });
        *shared.server.lock().unwrap() = Some(addr.1);
        Proxy {
            url: format!("http://{}", addr.0),
            shared,
        }
    }

    /// An HTTPS proxy in front of `t`'s API, serving `cert` (PEM chain) with `key`.
    pub fn start_tls(t: &Target, rules: Vec<Rule>, cert: &Path, key: &Path) -> Proxy {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        use tokio_rustls::rustls;
        let cert = std::fs::read(cert).unwrap();
        let key = std::fs::read(key).unwrap();
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
            .map(|c| c.unwrap())
            .collect();
        let key = PrivateKeyDer::from_pem_slice(&key).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let shared = Self::shared(t, rules);
        let s = shared.clone();
        let addr = t.rt.block_on(async move {
            let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = tcp.local_addr().unwrap();
            let task = tokio::spawn(async move {
                let _ = axum::serve(TlsListener { tcp, acceptor }, router(s)).await;
            });
            (addr, task.abort_handle())
        });
        *shared.server.lock().unwrap() = Some(addr.1);
        Proxy {
            url: format!("https://{}", addr.0),
            shared,
        }
    }

    fn shared(t: &Target, rules: Vec<Rule>) -> Arc<Shared> {
        Arc::new(Shared {
            upstream: t.l().base_url.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            rules,
            tokens: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            dead: AtomicBool::new(false),
            server: Mutex::new(None),
        })
    }

    /// Stops listening (connections are refused from now on).
    pub fn stop(&self) {
        if let Some(h) = self.shared.server.lock().unwrap().take() {
            h.abort();
        }
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.log.lock().unwrap().clone()
    }

    /// How many requests so far matched `pred`.
    pub fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.seen().iter().filter(|s| pred(s)).count()
    }

    /// Waits (blocking the test thread) until a request matching `pred` arrives.
    pub fn wait_for(&self, pred: impl Fn(&Seen) -> bool, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.seen().iter().any(&pred) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }
}

/// A listener that completes the TLS handshake before handing a connection to axum; a
/// failed handshake (the client distrusts the certificate) is dropped and the next
/// connection accepted.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            let hs = tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(tcp));
            if let Ok(Ok(tls)) = hs.await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

fn router(s: Arc<Shared>) -> axum::Router {
    axum::Router::new().fallback(handle).with_state(s)
}

fn org_of(s: &Shared, req: &Request) -> Org {
    let Some(auth) = req.headers().get(header::AUTHORIZATION) else {
        return Org::Anon;
    };
    let auth = auth.to_str().unwrap_or("");
    let tokens = s.tokens.lock().unwrap();
    match tokens.iter().position(|t| auth.ends_with(t.as_str())) {
        Some(0) => Org::A,
        Some(1) => Org::B,
        _ => Org::Other,
    }
}

/// A response whose body sends a few bytes and then fails: hyper drops the connection,
/// so the client gets a head and a body cut short.
fn reset() -> Response {
    let stream = futures_util::stream::unfold(0u8, |step| async move {
        match step {
            0 => Some((
                Ok::<Bytes, std::io::Error>(Bytes::from_static(b"{\"id\":")),
                1,
            )),
            1 => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                Some((
                    Err(std::io::Error::other("connection reset by the fault proxy")),
                    2,
                ))
            }
            _ => None,
        }
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: u16, body: &str) -> Response {
    let mut r = Response::new(Body::from(body.to_string()));
    *r.status_mut() = StatusCode::from_u16(code).unwrap();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

async fn handle(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let mut seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        org: org_of(&s, &req),
        fault: None,
        at: Instant::now(),
    };
    if s.dead.load(Ordering::SeqCst) {
        seen.fault = Some("dead");
        s.log.lock().unwrap().push(seen);
        return reset();
    }
    let fault = s.rules.iter().find_map(|r| {
        if !(r.when)(&seen) {
            return None;
        }
        let n = r.hits.fetch_add(1, Ordering::SeqCst) + 1;
        (n > r.after && n - r.after <= r.times).then(|| r.fault.clone())
    });
    seen.fault = fault.as_ref().map(Fault::name);
    s.log.lock().unwrap().push(seen.clone());
    match &fault {
        Some(Fault::Status(c)) => {
            return status(*c, "{\"error\":\"injected by the fault proxy\"}");
        }
        Some(Fault::Unavailable { retry_after }) => {
            let mut r = status(503, "{\"error\":\"unavailable (fault proxy)\"}");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            return r;
        }
        Some(Fault::Reset) => return reset(),
        Some(Fault::RedirectLoop) => {
            let mut r = status(302, "");
            let here = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default();
            r.headers_mut()
                .insert(header::LOCATION, HeaderValue::from_str(&here).unwrap());
            return r;
        }
        Some(Fault::Die) => {
            s.dead.store(true, Ordering::SeqCst);
            if let Some(h) = s.server.lock().unwrap().take() {
                h.abort();
            }
            return reset();
        }
        Some(Fault::Delay(d)) => tokio::time::sleep(*d).await,
        _ => {}
    }
    let resp = match forward(&s, req).await {
        Ok(r) => r,
        Err(e) => return status(502, &format!("{{\"error\":\"proxy: {e}\"}}")),
    };
    match fault {
        Some(Fault::Truncate) => {
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            let mut r = Response::from_parts(parts, Body::from(half));
            r.headers_mut().remove(header::CONTENT_LENGTH);
            r
        }
        Some(Fault::StampBody) => {
            static STAMP: AtomicUsize = AtomicUsize::new(0);
            let (mut parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
                Ok(serde_json::Value::Object(mut o)) => {
                    let n = STAMP.fetch_add(1, Ordering::SeqCst);
                    o.insert("request_id".into(), format!("req-{n:08}").into());
                    Bytes::from(serde_json::Value::Object(o).to_string())
                }
                _ => bytes,
            };
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(body))
        }
        Some(Fault::NotJson) => {
            let (mut parts, _) = resp.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            Response::from_parts(
                parts,
                Body::from("<html><body><h1>Welcome to nginx!</h1></body></html>"),
            )
        }
        _ => resp,
    }
}

/// Forwards to the API and returns its answer; learns A's and B's tokens from sign-ups.
async fn forward(s: &Shared, req: Request) -> Result<Response, String> {
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| e.to_string())?;
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let method =
        reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).map_err(|e| e.to_string())?;
    let mut rb = s.client.request(method, format!("{}{pq}", s.upstream));
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            rb = rb.header(k.as_str(), v.as_bytes());
        }
    }
    let up = rb
        .body(body.to_vec())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let code = up.status().as_u16();
    let headers = up.headers().clone();
    let bytes = up.bytes().await.map_err(|e| e.to_string())?;
    if parts.uri.path() == "/auth/signup" && code == 201 {
        let token = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["access_token"].as_str().map(String::from));
        if let Some(t) = token {
            s.tokens.lock().unwrap().push(t);
        }
    }
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = StatusCode::from_u16(code).map_err(|e| e.to_string())?;
    for (k, v) in &headers {
        if !matches!(
            k.as_str(),
            "content-length" | "connection" | "transfer-encoding"
        ) && let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(k.as_str().as_bytes()),
            HeaderValue::from_bytes(v.as_bytes()),
        ) {
            r.headers_mut().append(name, value);
        }
    }
    Ok(r)
}
