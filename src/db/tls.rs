//! TLS for the database connections (run → database layer → **connect**): libpq's
//! `sslmode` and `sslrootcert`, read from the connection string, mapped onto
//! tokio-postgres and rustls (aws-lc-rs, the same stack as the HTTP side).
//!
//! tokio-postgres knows `disable`, `prefer` and `require` only, and no `sslrootcert`:
//! [`split`] takes both parameters out of the string, hands the rest to
//! `tokio_postgres::Config`, and [`TlsPolicy`] decides what is verified:
//!
//! | `sslmode`           | encrypts           | verifies                                   |
//! |---------------------|--------------------|--------------------------------------------|
//! | `disable`           | no                 | —                                          |
//! | `prefer` (default)  | if the server can  | the chain, only when `sslrootcert` is given |
//! | `require`           | yes                | the chain, only when `sslrootcert` is given |
//! | `verify-ca`         | yes                | the chain                                  |
//! | `verify-full`       | yes                | the chain and the host name                |
//!
//! The chain is checked against the system roots (`rustls-native-certs`: on Linux the
//! OpenSSL bundle, `SSL_CERT_FILE` / `SSL_CERT_DIR` honoured) plus the PEM bundle of
//! `sslrootcert=PATH`; libpq's `sslrootcert=system` means the system roots alone (and,
//! as in libpq, implies `verify-full`).

use std::sync::{Arc, OnceLock};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::error::DbError;

/// libpq's `sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it, plain otherwise (libpq's default). libpq's
    /// `allow` (plain first) is read as `prefer`: it only ever tries TLS first.
    #[default]
    Prefer,
    /// TLS or nothing.
    Require,
    /// TLS with a certificate chain to a trusted CA.
    VerifyCa,
    /// TLS with a trusted chain and a certificate for the host connected to.
    VerifyFull,
}

impl SslMode {
    /// The libpq spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    fn parse(v: &str) -> Option<SslMode> {
        Some(match v {
            "disable" => SslMode::Disable,
            "allow" | "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            _ => return None,
        })
    }
}

/// libpq's `sslrootcert`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RootCert {
    /// Not given.
    #[default]
    Unset,
    /// `sslrootcert=system`: the system roots alone.
    System,
    /// `sslrootcert=PATH`: a PEM bundle trusted in addition to the system roots.
    File(String),
}

/// What a connection string asks of TLS.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TlsPolicy {
    pub mode: SslMode,
    pub root_cert: RootCert,
}

/// How the server's certificate is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// No TLS at all.
    Off,
    /// Encrypted, any certificate accepted: someone on the path can answer instead.
    AnyCertificate,
    /// The chain must lead to a trusted root; the host name is not checked.
    Chain,
    /// Chain and host name.
    Full,
}

impl TlsPolicy {
    /// Reads the policy of a connection string (URL or `key=value` form).
    pub fn of(conn: &str) -> Result<TlsPolicy, TlsParamError> {
        split(conn).map(|(_, p)| p)
    }

    /// How the certificate is checked under this policy.
    pub fn verification(&self) -> Verification {
        match (self.mode, &self.root_cert) {
            (SslMode::Disable, _) => Verification::Off,
            (SslMode::Prefer | SslMode::Require, RootCert::Unset) => Verification::AnyCertificate,
            (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, _) => Verification::Chain,
            (SslMode::VerifyFull, _) => Verification::Full,
        }
    }

    /// Said in every report when TLS is demanded but the certificate is not checked
    /// (`sslmode=require` without `sslrootcert`, as libpq does it).
    pub fn unverified_notice(&self, what: &str) -> Option<String> {
        (self.mode == SslMode::Require && self.verification() == Verification::AnyCertificate)
            .then(|| {
                format!(
                    "the {what} says sslmode=require without sslrootcert: the connection is encrypted but the server's certificate was NOT verified, so anyone on the path could answer for the database; use sslmode=verify-full (with sslrootcert=PATH for a private CA)"
                )
            })
    }
}

/// A TLS parameter of a connection string that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsParamError {
    /// `sslmode` names no known mode.
    #[error(
        "sslmode={value} is not one of disable, allow, prefer, require, verify-ca, verify-full"
    )]
    BadSslMode {
        /// The value as given.
        value: String,
    },
    /// `sslrootcert=system` with a mode weaker than `verify-full`.
    #[error(
        "sslrootcert=system needs sslmode=verify-full (as in libpq): the system's public CAs only vouch for host names"
    )]
    SystemNeedsVerifyFull,
}

/// Splits `sslmode` and `sslrootcert` off a connection string: the rest (for
/// `tokio_postgres::Config`, with neither parameter) and the policy. The last
/// occurrence of a parameter wins, as in libpq.
pub fn split(conn: &str) -> Result<(String, TlsPolicy), TlsParamError> {
    let trimmed = conn.trim();
    let (rest, params) =
        if trimmed.starts_with("postgres://") || trimmed.starts_with("postgresql://") {
            split_url(trimmed)
        } else {
            split_key_values(trimmed)
        };
    let mut mode = None;
    let mut root_cert = RootCert::Unset;
    for (k, v) in params {
        match k.as_str() {
            "sslmode" => {
                mode = Some(
                    SslMode::parse(&v)
                        .ok_or_else(|| TlsParamError::BadSslMode { value: v.clone() })?,
                )
            }
            // "sslrootcert"
            _ => {
                root_cert = match v.as_str() {
                    "" => RootCert::Unset,
                    "system" => RootCert::System,
                    _ => RootCert::File(v),
                }
            }
        }
    }
    let mode = match (mode, &root_cert) {
        // libpq: "system" switches the default to verify-full and refuses weaker modes,
        // since the public CAs vouch for names, not for a particular server.
        (None, RootCert::System) => SslMode::VerifyFull,
        (Some(m), RootCert::System) if m != SslMode::VerifyFull => {
            return Err(TlsParamError::SystemNeedsVerifyFull);
        }
        (m, _) => m.unwrap_or_default(),
    };
    Ok((rest, TlsPolicy { mode, root_cert }))
}

const TLS_KEYS: [&str; 2] = ["sslmode", "sslrootcert"];

/// `postgres://...?a=b&sslmode=x` → the URL without the TLS parameters, and them.
fn split_url(url: &str) -> (String, Vec<(String, String)>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_string(), Vec::new());
    };
    let mut kept = Vec::new();
    let mut params = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let key = percent_decode(k);
        if TLS_KEYS.contains(&key.as_str()) {
            params.push((key, percent_decode(v)));
        } else {
            kept.push(pair);
        }
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, params)
}

/// `host=h sslmode='x'` → the string without the TLS parameters, and them. Values may
/// be single-quoted, with `\'` and `\\` escapes (libpq's rules).
fn split_key_values(s: &str) -> (String, Vec<(String, String)>) {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut kept: Vec<String> = Vec::new();
    let mut params = Vec::new();
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
            i += 1;
        }
        let key: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i < chars.len() && chars[i] == '=' {
            i += 1;
        }
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
            i += 1; // the closing quote
        } else {
            while i < chars.len() && !chars[i].is_whitespace() {
                if chars[i] == '\\' && i + 1 < chars.len() {
                    i += 1;
                }
                value.push(chars[i]);
                i += 1;
            }
        }
        let raw: String = chars[start..i.min(chars.len())].iter().collect();
        if TLS_KEYS.contains(&key.as_str()) {
            params.push((key, value));
        } else {
            kept.push(raw);
        }
    }
    (kept.join(" "), params)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The system's trusted roots, read once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| rustls_native_certs::load_native_certs().certs)
}

/// The rustls configuration for `policy`, or `None` when TLS is off.
pub(crate) fn client_config(
    policy: &TlsPolicy,
    what: &'static str,
) -> Result<Option<rustls::ClientConfig>, DbError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match policy.verification() {
        Verification::Off => return Ok(None),
        Verification::AnyCertificate => Arc::new(AnyCertificate(provider.clone())),
        v @ (Verification::Chain | Verification::Full) => {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(system_roots().iter().cloned());
            if let RootCert::File(path) = &policy.root_cert {
                let certs = read_pem_bundle(path).map_err(|e| DbError::RootCert {
                    what,
                    path: path.clone(),
                    reason: e.to_string(),
                })?;
                let (_, bad) = roots.add_parsable_certificates(certs);
                if bad > 0 && roots.is_empty() {
                    return Err(DbError::RootCert {
                        what,
                        path: path.clone(),
                        reason: "holds no usable CA certificate".into(),
                    });
                }
            }
            if roots.is_empty() {
                return Err(DbError::NoRoots { what });
            }
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|_| DbError::NoRoots { what })?;
            if v == Verification::Full {
                webpki
            } else {
                Arc::new(ChainOnly(webpki))
            }
        }
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| DbError::Tls {
            what,
            reason: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Some(config))
}

/// The certificates of a PEM file; an error says what is wrong with it.
fn read_pem_bundle(path: &str) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let pem = std::fs::read(path).map_err(PemError::Read)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::NotPem)?;
    if certs.is_empty() {
        return Err(PemError::Empty);
    }
    Ok(certs)
}

/// What is wrong with an `sslrootcert` file (shown after its path).
#[derive(Debug, thiserror::Error)]
enum PemError {
    /// The file cannot be read.
    #[error("cannot be read ({0})")]
    Read(std::io::Error),
    /// The file is not PEM.
    #[error("is not a PEM certificate bundle ({0})")]
    NotPem(rustls::pki_types::pem::Error),
    /// PEM, but no certificate in it.
    #[error("holds no PEM certificate")]
    Empty,
}

/// `sslmode=require` (and `prefer`) without `sslrootcert`: encrypt, accept any
/// certificate. The handshake signatures are still checked, so the server must hold the
/// key of the certificate it shows, whoever issued it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the full WebPKI check minus the host name. webpki checks the chain
/// before the name, so a name mismatch means the chain was sound.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// A TLS failure of `e`, as the error that says what to do; `None` when `e` is not
/// about TLS.
pub(crate) fn classify(
    what: &'static str,
    mode: SslMode,
    e: &tokio_postgres::Error,
) -> Option<DbError> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let rustls_err = err.downcast_ref::<rustls::Error>().or_else(|| {
            err.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if let Some(rustls::Error::InvalidCertificate(c)) = rustls_err {
            let reason = format!("{c:?}");
            return Some(match c {
                CertificateError::UnknownIssuer
                | CertificateError::BadSignature
                | CertificateError::UnhandledCriticalExtension => {
                    DbError::Untrusted { what, reason }
                }
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => DbError::WrongHost {
                    what,
                    reason: "NotValidForName".into(),
                },
                _ => DbError::Certificate {
                    what,
                    reason: rustls::Error::InvalidCertificate(c.clone()).to_string(),
                },
            });
        }
        if let Some(other) = rustls_err {
            return Some(DbError::Tls {
                what,
                reason: other.to_string(),
            });
        }
        if err.to_string() == "server does not support TLS" {
            return Some(DbError::NoTlsOffered {
                what,
                mode: mode.as_str(),
            });
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(s: &str) -> TlsPolicy {
        TlsPolicy::of(s).unwrap()
    }

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, p) = split(
            "postgres://u:p@db.example:5432/app?sslmode=verify-full&application_name=x&sslrootcert=%2Ftmp%2Fca.pem",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p@db.example:5432/app?application_name=x"
        );
        assert_eq!(p.mode, SslMode::VerifyFull);
        assert_eq!(p.root_cert, RootCert::File("/tmp/ca.pem".into()));
        assert_eq!(p.verification(), Verification::Full);
        let (rest, p) = split("postgresql://h/app?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://h/app");
        assert_eq!(p.verification(), Verification::AnyCertificate);
        assert!(p.unverified_notice("database URL").is_some());
    }

    #[test]
    fn key_value_form_is_understood() {
        let (rest, p) =
            split("host=h dbname=app sslmode = 'verify-ca' sslrootcert='/a b/ca.pem' user=u")
                .unwrap();
        assert_eq!(rest, "host=h dbname=app user=u");
        assert_eq!(p.verification(), Verification::Chain);
        assert_eq!(p.root_cert, RootCert::File("/a b/ca.pem".into()));
    }

    #[test]
    fn libpq_semantics() {
        assert_eq!(policy("postgres://h/d").mode, SslMode::Prefer);
        assert_eq!(
            policy("postgres://h/d").verification(),
            Verification::AnyCertificate
        );
        assert!(policy("postgres://h/d").unverified_notice("x").is_none());
        assert_eq!(
            policy("postgres://h/d?sslmode=disable").verification(),
            Verification::Off
        );
        // A root certificate makes require check the chain (not the name).
        assert_eq!(
            policy("postgres://h/d?sslmode=require&sslrootcert=ca.pem").verification(),
            Verification::Chain
        );
        assert!(
            policy("postgres://h/d?sslmode=require&sslrootcert=ca.pem")
                .unverified_notice("x")
                .is_none()
        );
        // verify-* without a root file: the system roots.
        assert_eq!(
            policy("postgres://h/d?sslmode=verify-ca").verification(),
            Verification::Chain
        );
        let sys = policy("postgres://h/d?sslrootcert=system");
        assert_eq!(
            (sys.mode, sys.root_cert),
            (SslMode::VerifyFull, RootCert::System)
        );
        assert!(TlsPolicy::of("postgres://h/d?sslrootcert=system&sslmode=require").is_err());
        assert!(TlsPolicy::of("postgres://h/d?sslmode=strict").is_err());
        // The last occurrence wins.
        assert_eq!(
            policy("postgres://h/d?sslmode=disable&sslmode=verify-full").mode,
            SslMode::VerifyFull
        );
    }

    #[test]
    fn a_missing_root_file_is_one_clear_error() {
        let p = policy("postgres://h/d?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem");
        let e = client_config(&p, "database URL").unwrap_err().to_string();
        assert!(
            e.contains("/nonexistent/ca.pem") && e.contains("cannot be read"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }
}
