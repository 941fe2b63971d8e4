//! The transport promise (run → **promise checks: transport** → results): "TLS 1.3 as
//! the minimum, HSTS for a year, a valid certificate".
//!
//! [`check`] opens its own TLS connections to the target, one handshake per offer:
//! only TLS 1.2, only TLS 1.3, then each cipher suite on its own, so the result names
//! what the server *accepts*, not merely what a modern client negotiates. No request is
//! ever sent on these connections: the certificate is recorded and judged (against the
//! system roots and the suite's CA, at a clock the caller gives) but never stops a
//! probe. rustls cannot speak TLS 1.0/1.1, so those two are offered with a hand-built
//! ClientHello and judged by the version of the ServerHello (the connection is dropped
//! before any key exchange).
//!
//! [`check_hsts`] judges `Strict-Transport-Security` on the headers of an answer the
//! runner already has (an authenticated one); [`fetch_headers`] gets one when it has
//! none.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderMap;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme, SupportedCipherSuite,
    SupportedProtocolVersion,
};

use super::{PromiseError, result};
use crate::outcome::{CheckResult, Layer, Verdict};

/// A TLS protocol version a suite can ask for as the minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// TLS 1.2.
    Tls12,
    /// TLS 1.3.
    Tls13,
}

impl TlsVersion {
    /// `"1.2"` or `"1.3"` (also `"TLS1.3"`, `"tls 1.3"`); `None` for anything else.
    pub fn parse(s: &str) -> Option<TlsVersion> {
        let t = s.trim().to_ascii_lowercase().replace([' ', 'v'], "");
        match t.trim_start_matches("tls") {
            "1.2" => Some(TlsVersion::Tls12),
            "1.3" => Some(TlsVersion::Tls13),
            _ => None,
        }
    }

    /// `TLS 1.2` / `TLS 1.3`.
    pub fn as_str(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS 1.2",
            TlsVersion::Tls13 => "TLS 1.3",
        }
    }

    fn rustls(self) -> &'static SupportedProtocolVersion {
        match self {
            TlsVersion::Tls12 => &rustls::version::TLS12,
            TlsVersion::Tls13 => &rustls::version::TLS13,
        }
    }
}

/// What the suite asks of the transport (`promises.transport`).
#[derive(Clone, Debug)]
pub struct TransportPolicy {
    /// The lowest TLS version the server may accept; `None` reports it without judging.
    pub min_tls: Option<TlsVersion>,
    /// The certificate must stay valid at least this many days from now.
    pub cert_min_days: u32,
    /// The `max-age` `Strict-Transport-Security` must have at least; `None`: HSTS is
    /// not asked for.
    pub hsts_min_max_age: Option<u64>,
    /// Per connection attempt (TCP connect plus handshake).
    pub timeout: Duration,
}

impl Default for TransportPolicy {
    fn default() -> Self {
        TransportPolicy {
            min_tls: None,
            cert_min_days: 14,
            hsts_min_max_age: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// The certificates a target's chain is judged against: the system roots plus the
/// suite's `target.tls.ca`.
#[derive(Clone)]
pub struct Trust {
    roots: Arc<RootCertStore>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Trust({} roots)", self.roots.len())
    }
}

impl Trust {
    /// The system's roots only.
    pub fn system() -> Trust {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        Trust {
            roots: Arc::new(roots),
        }
    }

    /// The system's roots plus the certificates of a PEM bundle.
    pub fn with_ca_pem(pem: &[u8]) -> Result<Trust, PromiseError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PromiseError::BadCa {
                reason: format!("is not a PEM certificate bundle ({e})"),
            })?;
        if certs.is_empty() {
            return Err(PromiseError::BadCa {
                reason: "holds no PEM certificate".into(),
            });
        }
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(PromiseError::BadCa {
                reason: "holds no usable CA certificate".into(),
            });
        }
        Ok(Trust {
            roots: Arc::new(roots),
        })
    }
}

/// Where to connect: host, port and the name the certificate must carry.
struct Endpoint {
    addr: String,
    name: ServerName<'static>,
}

fn endpoint(url: &str) -> Result<Option<Endpoint>, PromiseError> {
    let bad = |reason: String| PromiseError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let u = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    match u.scheme() {
        "https" => {}
        "http" => return Ok(None),
        s => return Err(bad(format!("scheme `{s}` is neither http nor https"))),
    }
    let port = u.port_or_known_default().unwrap_or(443);
    let host = u.host_str().ok_or_else(|| bad("no host".into()))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let (addr, name) = match bare.parse::<std::net::IpAddr>() {
        Ok(ip @ std::net::IpAddr::V6(_)) => (format!("[{ip}]:{port}"), ServerName::from(ip)),
        Ok(ip) => (format!("{ip}:{port}"), ServerName::from(ip)),
        Err(_) => (
            format!("{host}:{port}"),
            ServerName::try_from(host.to_string()).map_err(|e| bad(e.to_string()))?,
        ),
    };
    Ok(Some(Endpoint { addr, name }))
}

/// What one handshake showed.
#[derive(Clone, Debug)]
struct Accepted {
    suite: String,
    chain: Vec<CertificateDer<'static>>,
    /// The WebPKI verdict on the chain and name, at the caller's clock.
    verified: Result<(), String>,
    expired_or_not_yet: bool,
}

enum Attempt {
    Accepted(Accepted),
    /// The server refused the offer (a TLS alert, or it closed the handshake).
    Refused(String),
    /// Could not tell (connect error, timeout).
    Failed(String),
}

/// Runs the transport checks against `url`: `promise.transport.tls` for a plain-http
/// target (an error: the suite asked for TLS), else `min_tls`, `cipher_suites` and
/// `certificate`. `now` is the clock the certificate is judged at (the wall clock in
/// a run; tests move it).
pub async fn check(
    url: &str,
    policy: &TransportPolicy,
    trust: &Trust,
    now: SystemTime,
) -> Vec<CheckResult> {
    let ep = match endpoint(url) {
        Ok(Some(ep)) => ep,
        Ok(None) => {
            return vec![
                result(
                    "transport",
                    "tls",
                    Layer::Http,
                    Verdict::Error,
                    "the target is plain http: no TLS to check, and the suite asks for TLS",
                )
                .with("target", url)
                .with(
                    "fix",
                    "point target.base_url at the https:// address of the API",
                ),
            ];
        }
        Err(e) => {
            return vec![result(
                "transport",
                "tls",
                Layer::Http,
                Verdict::Error,
                e.to_string(),
            )];
        }
    };
    let started = std::time::Instant::now();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let at = UnixTime::since_unix_epoch(
        now.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default(),
    );
    let probe = Probe {
        ep: &ep,
        trust,
        provider: provider.clone(),
        at,
        timeout: policy.timeout,
    };
    let v10 = legacy_attempt(&ep, 1, policy.timeout).await;
    let v11 = legacy_attempt(&ep, 2, policy.timeout).await;
    let v12 = probe.attempt(TlsVersion::Tls12, None).await;
    let v13 = probe.attempt(TlsVersion::Tls13, None).await;
    let offers = [
        Offer {
            label: "TLS 1.0",
            rank: 10,
            attempt: &v10,
        },
        Offer {
            label: "TLS 1.1",
            rank: 11,
            attempt: &v11,
        },
        Offer {
            label: "TLS 1.2",
            rank: 12,
            attempt: &v12,
        },
        Offer {
            label: "TLS 1.3",
            rank: 13,
            attempt: &v13,
        },
    ];
    let mut out = vec![judge_versions(policy.min_tls, &offers).timed(started.elapsed())];
    let mut suites = Vec::new();
    let mut suite_errors = Vec::new();
    // Nothing accepted: one handshake per suite would only wait out more timeouts.
    let any = [&v12, &v13]
        .iter()
        .any(|a| matches!(a, Attempt::Accepted(_)));
    for s in provider.cipher_suites.iter().copied().filter(|_| any) {
        let v = match s {
            SupportedCipherSuite::Tls12(_) => TlsVersion::Tls12,
            SupportedCipherSuite::Tls13(_) => TlsVersion::Tls13,
        };
        match probe.attempt(v, Some(s)).await {
            Attempt::Accepted(a) => suites.push(format!("{} {}", v.as_str(), a.suite)),
            Attempt::Refused(_) => {}
            Attempt::Failed(why) => suite_errors.push(format!("{:?}: {why}", s.suite())),
        }
    }
    out.push(if any {
        judge_suites(&suites, &suite_errors)
    } else {
        result(
            "transport",
            "cipher_suites",
            Layer::Http,
            Verdict::Error,
            "no TLS 1.2 or 1.3 handshake completed: the cipher suites were not probed",
        )
    });
    let first = [&v13, &v12].into_iter().find_map(|a| match a {
        Attempt::Accepted(a) => Some(a.clone()),
        _ => None,
    });
    out.push(match first {
        Some(a) => judge_certificate(&a, policy.cert_min_days, now),
        None => result(
            "transport",
            "certificate",
            Layer::Http,
            Verdict::Error,
            "no TLS handshake succeeded: the certificate could not be read",
        ),
    });
    out
}

struct Probe<'a> {
    ep: &'a Endpoint,
    trust: &'a Trust,
    provider: Arc<CryptoProvider>,
    at: UnixTime,
    timeout: Duration,
}

impl Probe<'_> {
    /// One handshake offering only `version` (and only `suite`, when given).
    async fn attempt(&self, version: TlsVersion, suite: Option<SupportedCipherSuite>) -> Attempt {
        let mut provider = (*self.provider).clone();
        if let Some(s) = suite {
            provider.cipher_suites = vec![s];
        }
        let provider = Arc::new(provider);
        let recorder = Arc::new(Recorder::new(self.trust, provider.clone(), self.at));
        let config = match rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[version.rustls()])
        {
            Ok(b) => b
                .dangerous()
                .with_custom_certificate_verifier(recorder.clone())
                .with_no_client_auth(),
            Err(e) => return Attempt::Failed(format!("client configuration: {e}")),
        };
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let fut = async {
            let tcp = tokio::net::TcpStream::connect(&self.ep.addr)
                .await
                .map_err(|e| Attempt::Failed(format!("connect {}: {e}", self.ep.addr)))?;
            connector
                .connect(self.ep.name.clone(), tcp)
                .await
                .map_err(refusal)
        };
        let stream = match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => {
                return Attempt::Failed(format!(
                    "no answer from {} within {:?}",
                    self.ep.addr, self.timeout
                ));
            }
            Ok(Err(a)) => return a,
            Ok(Ok(s)) => s,
        };
        let (_, conn) = stream.get_ref();
        let (chain, verified, expired_or_not_yet) = recorder.take();
        Attempt::Accepted(Accepted {
            suite: conn
                .negotiated_cipher_suite()
                .map(|s| format!("{:?}", s.suite()))
                .unwrap_or_else(|| "unknown".into()),
            chain,
            verified,
            expired_or_not_yet,
        })
    }
}

/// A failed handshake: a TLS alert or a closed connection is the server refusing the
/// offer; anything else could not be decided.
fn refusal(e: std::io::Error) -> Attempt {
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::AlertReceived(a) => Attempt::Refused(format!("alert {a:?}")),
            rustls::Error::PeerIncompatible(p) => Attempt::Refused(format!("incompatible: {p:?}")),
            other => Attempt::Failed(format!("TLS error: {other}")),
        };
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
            Attempt::Refused("the server closed the handshake without an alert".into())
        }
        _ => Attempt::Failed(format!("handshake: {e}")),
    }
}

/// One offer of the version probe: its label, its order, what happened.
struct Offer<'a> {
    label: &'static str,
    rank: u8,
    attempt: &'a Attempt,
}

fn rank(v: TlsVersion) -> u8 {
    match v {
        TlsVersion::Tls12 => 12,
        TlsVersion::Tls13 => 13,
    }
}

fn judge_versions(min: Option<TlsVersion>, offers: &[Offer<'_>]) -> CheckResult {
    let line = |o: &Offer<'_>| match o.attempt {
        Attempt::Accepted(h) => format!("{} only: accepted ({})", o.label, h.suite),
        Attempt::Refused(why) => format!("{} only: refused ({why})", o.label),
        Attempt::Failed(why) => format!("{} only: undecided ({why})", o.label),
    };
    let evidence = offers.iter().map(line).collect::<Vec<_>>().join("\n");
    let r = |verdict, summary: String| {
        result("transport", "min_tls", Layer::Http, verdict, summary).with("handshakes", &evidence)
    };
    let lowest = offers
        .iter()
        .filter(|o| matches!(o.attempt, Attempt::Accepted(_)))
        .min_by_key(|o| o.rank);
    let Some(lowest) = lowest else {
        let v = if offers
            .iter()
            .any(|o| matches!(o.attempt, Attempt::Failed(_)))
        {
            "no handshake could be completed"
        } else {
            "the server refused every version offered"
        };
        return r(
            Verdict::Error,
            format!("{v}: the lowest accepted version is unknown"),
        );
    };
    let Some(m) = min else {
        return r(
            Verdict::Pass,
            format!(
                "lowest accepted version: {} (no minimum asked)",
                lowest.label
            ),
        );
    };
    if lowest.rank < rank(m) {
        return r(
            Verdict::Fail,
            format!(
                "the server accepts {} but the suite asks for {} minimum",
                lowest.label,
                m.as_str()
            ),
        )
        .with(
            "fix",
            format!(
                "disable {} on the server or its load balancer",
                lowest.label
            ),
        );
    }
    // An offer below the minimum that was neither accepted nor refused leaves the
    // minimum unproven.
    if let Some(o) = offers
        .iter()
        .find(|o| o.rank < rank(m) && matches!(o.attempt, Attempt::Failed(_)))
    {
        return r(
            Verdict::Error,
            format!(
                "a handshake offering only {} could be neither completed nor refused: the minimum is unverified",
                o.label
            ),
        );
    }
    r(
        Verdict::Pass,
        format!(
            "lowest accepted version: {} (minimum {})",
            lowest.label,
            m.as_str()
        ),
    )
}

/// TLS 1.0 or 1.1 (`minor` 1 or 2), which rustls cannot speak: a hand-built
/// ClientHello offering only that version and the usual legacy suites. A ServerHello
/// of that version is an acceptance (the connection is dropped right after); an alert,
/// another version or a closed connection is a refusal.
async fn legacy_attempt(ep: &Endpoint, minor: u8, timeout: Duration) -> Attempt {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let hello = legacy_client_hello(ep, minor);
    let fut = async {
        let mut tcp = tokio::net::TcpStream::connect(&ep.addr)
            .await
            .map_err(|e| Attempt::Failed(format!("connect {}: {e}", ep.addr)))?;
        tcp.write_all(&hello)
            .await
            .map_err(|e| Attempt::Refused(format!("the server closed the connection ({e})")))?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while buf.len() < 11 {
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        Ok::<_, Attempt>(buf)
    };
    let buf = match tokio::time::timeout(timeout, fut).await {
        Err(_) => return Attempt::Failed(format!("no answer from {} within {timeout:?}", ep.addr)),
        Ok(Err(a)) => return a,
        Ok(Ok(b)) => b,
    };
    match buf.as_slice() {
        [0x15, _, _, _, _, _, desc, ..] => Attempt::Refused(format!("alert {desc}")),
        [0x16, _, _, _, _, 0x02, _, _, _, 3, m, ..] if *m == minor => {
            let suite = buf
                .get(11 + 32..)
                .and_then(|rest| {
                    let sid = *rest.first()? as usize;
                    let c = rest.get(1 + sid..3 + sid)?;
                    Some(format!("cipher suite 0x{:02x}{:02x}", c[0], c[1]))
                })
                .unwrap_or_else(|| "cipher suite unknown".into());
            Attempt::Accepted(Accepted {
                suite,
                chain: Vec::new(),
                verified: Err("not checked on a legacy handshake".into()),
                expired_or_not_yet: false,
            })
        }
        [0x16, _, _, _, _, 0x02, _, _, _, 3, m, ..] => {
            Attempt::Refused(format!("the server answered with version 3.{m}"))
        }
        [] => Attempt::Refused("the server closed the handshake without an alert".into()),
        _ => Attempt::Refused("the server did not answer with a ServerHello".into()),
    }
}

/// The bytes of a TLS 1.0/1.1 ClientHello record for `ep`.
fn legacy_client_hello(ep: &Endpoint, minor: u8) -> Vec<u8> {
    let u16b = |n: usize| [(n >> 8) as u8, n as u8];
    let mut random = [0u8; 32];
    let _ = crate::random::fill(&mut random);
    let mut body = vec![3, minor];
    body.extend_from_slice(&random);
    body.push(0); // no session id
    // ECDHE-RSA/ECDSA with AES-CBC-SHA, RSA AES-CBC-SHA, 3DES, and the renegotiation SCSV.
    let suites: [u8; 16] = [
        0xc0, 0x13, 0xc0, 0x14, 0xc0, 0x09, 0xc0, 0x0a, 0x00, 0x2f, 0x00, 0x35, 0x00, 0x0a, 0x00,
        0xff,
    ];
    body.extend_from_slice(&u16b(suites.len()));
    body.extend_from_slice(&suites);
    body.extend_from_slice(&[1, 0]); // null compression only
    let mut ext = Vec::new();
    if let ServerName::DnsName(d) = &ep.name {
        let name = d.as_ref().as_bytes();
        ext.extend_from_slice(&[0, 0]);
        ext.extend_from_slice(&u16b(name.len() + 5));
        ext.extend_from_slice(&u16b(name.len() + 3));
        ext.push(0);
        ext.extend_from_slice(&u16b(name.len()));
        ext.extend_from_slice(name);
    }
    // supported_groups: secp256r1, secp384r1, x25519; ec_point_formats: uncompressed.
    ext.extend_from_slice(&[0, 0x0a, 0, 8, 0, 6, 0, 0x17, 0, 0x18, 0, 0x1d]);
    ext.extend_from_slice(&[0, 0x0b, 0, 2, 1, 0]);
    body.extend_from_slice(&u16b(ext.len()));
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&u16b(body.len()));
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 3, 1];
    record.extend_from_slice(&u16b(hs.len()));
    record.extend_from_slice(&hs);
    record
}

fn judge_suites(accepted: &[String], errors: &[String]) -> CheckResult {
    let mut r = if accepted.is_empty() {
        result(
            "transport",
            "cipher_suites",
            Layer::Http,
            Verdict::Error,
            "no cipher suite was accepted on its own",
        )
    } else {
        result(
            "transport",
            "cipher_suites",
            Layer::Http,
            Verdict::Pass,
            format!("{} cipher suite(s) accepted", accepted.len()),
        )
        .with("accepted", accepted.join("\n"))
    };
    if !errors.is_empty() {
        r = r.with("undecided", errors.join("\n"));
    }
    r
}

fn judge_certificate(a: &Accepted, min_days: u32, now: SystemTime) -> CheckResult {
    let r = |verdict, summary: String| {
        result("transport", "certificate", Layer::Http, verdict, summary)
    };
    let Some(leaf) = a.chain.first() else {
        return r(Verdict::Error, "the server sent no certificate".into());
    };
    let parsed = match describe(leaf) {
        Ok(p) => p,
        Err(e) => {
            return r(
                Verdict::Error,
                format!("the certificate does not parse: {e}"),
            );
        }
    };
    let evidence = format!(
        "subject: {}\nissuer: {}\nnot before: {}\nnot after: {}",
        parsed.subject, parsed.issuer, parsed.not_before_text, parsed.not_after_text
    );
    let days = match parsed.not_after.duration_since(now) {
        Ok(d) => (d.as_secs() / 86_400) as i64,
        Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
    };
    let res = match &a.verified {
        Err(why) if a.expired_or_not_yet || days < 0 => r(
            Verdict::Fail,
            format!("the certificate is not valid now ({why})"),
        ),
        Err(why) if why.contains("UnknownIssuer") => r(
            Verdict::Error,
            format!("the certificate's issuer is not trusted ({why}): validity is unverified"),
        )
        .with(
            "fix",
            "give target.tls.ca, the PEM file of the CA that signed it, if it is a private CA",
        ),
        Err(why) => r(
            Verdict::Fail,
            format!("the certificate was refused ({why})"),
        ),
        Ok(()) if days < i64::from(min_days) => r(
            Verdict::Fail,
            format!("the certificate expires in {days} day(s), under the {min_days}-day minimum"),
        )
        .with("fix", "renew the certificate"),
        Ok(()) => r(
            Verdict::Pass,
            format!("valid and trusted, {days} day(s) left (minimum {min_days})"),
        ),
    };
    res.with("certificate", evidence)
}

struct CertFacts {
    subject: String,
    issuer: String,
    not_before_text: String,
    not_after_text: String,
    not_after: SystemTime,
}

fn describe(der: &CertificateDer<'_>) -> Result<CertFacts, String> {
    use x509_cert::der::Decode;
    let c = x509_cert::Certificate::from_der(der.as_ref()).map_err(|e| e.to_string())?;
    let tbs = &c.tbs_certificate;
    Ok(CertFacts {
        subject: tbs.subject.to_string(),
        issuer: tbs.issuer.to_string(),
        not_before_text: tbs.validity.not_before.to_date_time().to_string(),
        not_after_text: tbs.validity.not_after.to_date_time().to_string(),
        not_after: tbs.validity.not_after.to_system_time(),
    })
}

/// Records the chain the server showed and the WebPKI verdict on it, and lets the
/// handshake go on: the probe sends nothing, and the certificate is judged on its own.
#[derive(Debug)]
struct Recorder {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
    at: UnixTime,
    #[allow(clippy::type_complexity)]
    seen: Mutex<(Vec<CertificateDer<'static>>, Result<(), String>, bool)>,
}

impl Recorder {
    fn new(trust: &Trust, provider: Arc<CryptoProvider>, at: UnixTime) -> Recorder {
        let webpki =
            WebPkiServerVerifier::builder_with_provider(trust.roots.clone(), provider.clone())
                .build()
                .ok();
        Recorder {
            webpki,
            provider,
            at,
            seen: Mutex::new((Vec::new(), Err("no certificate seen".into()), false)),
        }
    }

    fn take(&self) -> (Vec<CertificateDer<'static>>, Result<(), String>, bool) {
        let mut g = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        std::mem::replace(
            &mut *g,
            (Vec::new(), Err("no certificate seen".into()), false),
        )
    }
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = match &self.webpki {
            None => Err(rustls::Error::General(
                "no trusted root certificates".into(),
            )),
            Some(v) => v
                .verify_server_cert(end_entity, intermediates, server_name, ocsp, self.at)
                .map(|_| ()),
        };
        let time = matches!(
            verdict,
            Err(rustls::Error::InvalidCertificate(
                CertificateError::Expired
                    | CertificateError::ExpiredContext { .. }
                    | CertificateError::NotValidYet
                    | CertificateError::NotValidYetContext { .. }
            ))
        );
        let mut chain = vec![end_entity.clone().into_owned()];
        chain.extend(intermediates.iter().map(|c| c.clone().into_owned()));
        let mut g = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        *g = (chain, verdict.map_err(|e| format!("{e:?}")), time);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Judges `Strict-Transport-Security` on the headers of one answer (an authenticated
/// one, from the run). `https` says whether that answer came over TLS: browsers ignore
/// the header on plain http. `min_max_age` is the suite's `hsts_max_age`.
pub fn check_hsts(headers: &HeaderMap, https: bool, min_max_age: u64) -> CheckResult {
    let r = |verdict, summary: String| result("transport", "hsts", Layer::Http, verdict, summary);
    if !https {
        return r(
            Verdict::Error,
            "the answer came over plain http: HSTS only counts on https answers".into(),
        );
    }
    let all: Vec<&reqwest::header::HeaderValue> = headers
        .get_all("strict-transport-security")
        .iter()
        .collect();
    let Some(first) = all.first() else {
        return r(
            Verdict::Fail,
            "no Strict-Transport-Security header on the authenticated answer".into(),
        )
        .with(
            "fix",
            format!("send `Strict-Transport-Security: max-age={min_max_age}; includeSubDomains`"),
        );
    };
    let text = String::from_utf8_lossy(first.as_bytes()).to_string();
    let mut evidence = format!("Strict-Transport-Security: {text}");
    if all.len() > 1 {
        // RFC 6797 §8.1: only the first header is processed.
        evidence.push_str(&format!(
            "\n({} headers; browsers use the first)",
            all.len()
        ));
    }
    let res = match parse_max_age(&text) {
        Err(why) => r(
            Verdict::Fail,
            format!("the header is malformed ({why}): browsers ignore it"),
        ),
        Ok(age) if age < min_max_age => r(
            Verdict::Fail,
            format!("max-age={age} is under the {min_max_age} the suite asks for"),
        ),
        Ok(age) => r(
            Verdict::Pass,
            format!("max-age={age} (minimum {min_max_age})"),
        ),
    };
    res.with("header", evidence)
}

/// The `max-age` directive of an HSTS header value (RFC 6797 §6.1): exactly one,
/// digits, optionally quoted.
pub fn parse_max_age(value: &str) -> Result<u64, String> {
    let mut found = None;
    for d in value.split(';') {
        let d = d.trim();
        let (name, v) = d
            .split_once('=')
            .map(|(n, v)| (n.trim(), Some(v.trim())))
            .unwrap_or((d, None));
        if name.eq_ignore_ascii_case("max-age") {
            if found.is_some() {
                return Err("max-age given twice".into());
            }
            let v = v.unwrap_or("").trim_matches('"');
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("max-age `{v}` is not a number of seconds"));
            }
            found = Some(v.parse::<u64>().unwrap_or(u64::MAX));
        }
    }
    found.ok_or_else(|| "no max-age directive".into())
}

/// Fetches `url` with `client` (the run's client, with its headers and trust) and
/// returns the answer's headers for [`check_hsts`]. A transport error or a 5xx is an
/// error: the headers of a failing answer prove nothing.
pub async fn fetch_headers(
    client: &reqwest::Client,
    url: &str,
    headers: &HeaderMap,
) -> Result<HeaderMap, PromiseError> {
    let fail = |reason: String| PromiseError::Fetch {
        url: url.to_string(),
        reason,
    };
    let resp = client
        .get(url)
        .headers(headers.clone())
        .send()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if resp.status().is_server_error() {
        return Err(fail(format!("status {}", resp.status())));
    }
    Ok(resp.headers().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hsts(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("strict-transport-security", v.parse().unwrap());
        h
    }

    #[test]
    fn versions_parse() {
        assert_eq!(TlsVersion::parse("1.3"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("TLS1.2"), Some(TlsVersion::Tls12));
        assert_eq!(TlsVersion::parse("tls v1.3"), Some(TlsVersion::Tls13));
        assert_eq!(TlsVersion::parse("1.1"), None);
    }

    #[test]
    fn max_age_is_parsed_strictly() {
        assert_eq!(
            parse_max_age("max-age=31536000; includeSubDomains"),
            Ok(31_536_000)
        );
        assert_eq!(parse_max_age("includeSubDomains; MAX-AGE=\"10\""), Ok(10));
        assert!(parse_max_age("max-age=1y").is_err());
        assert!(parse_max_age("max-age=1; max-age=2").is_err());
        assert!(parse_max_age("preload").is_err());
    }

    #[test]
    fn hsts_verdicts() {
        let year = 31_536_000;
        assert_eq!(
            check_hsts(&hsts("max-age=31536000"), true, year).verdict,
            Verdict::Pass
        );
        assert_eq!(
            check_hsts(&hsts("max-age=300"), true, year).verdict,
            Verdict::Fail
        );
        assert_eq!(
            check_hsts(&hsts("max-age=x"), true, year).verdict,
            Verdict::Fail
        );
        assert_eq!(
            check_hsts(&HeaderMap::new(), true, year).verdict,
            Verdict::Fail
        );
        assert_eq!(
            check_hsts(&hsts("max-age=31536000"), false, year).verdict,
            Verdict::Error
        );
        let r = check_hsts(&HeaderMap::new(), true, year);
        assert_eq!(r.id, "promise.transport.hsts");
    }

    #[tokio::test]
    async fn plain_http_is_an_error() {
        let r = check(
            "http://127.0.0.1:1/",
            &TransportPolicy::default(),
            &Trust::system(),
            SystemTime::now(),
        )
        .await;
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].verdict, Verdict::Error);
        assert!(r[0].summary.contains("plain http"));
    }
}
