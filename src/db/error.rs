//! Why the database layer could not decide (run → database layer → **errors** →
//! one `Error` result): a leaf module every other file of the layer uses.

use crate::outcome::{CheckResult, Layer, Verdict};

/// Why the database layer could not decide. Rendered as one [`Verdict::Error`] result
/// whose text names what to do.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The URL does not parse.
    #[error(
        "the {what} is not a valid PostgreSQL connection string ({reason}): use postgres://user:password@host:port/database"
    )]
    BadUrl {
        /// Which URL.
        what: &'static str,
        /// The parser's message.
        reason: String,
    },
    /// `sslrootcert` names a file that is not a usable PEM bundle.
    #[error(
        "the {what}'s sslrootcert `{path}` {reason}: give sslrootcert=PATH to a PEM file of CA certificates"
    )]
    RootCert {
        /// Which URL.
        what: &'static str,
        /// The path as given.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Verification was asked for but nothing is trusted.
    #[error(
        "no trusted CA certificate on this system to verify the {what}'s server: give sslrootcert=PATH in the URL (or install the system's CA bundle)"
    )]
    NoRoots {
        /// Which URL.
        what: &'static str,
    },
    /// The URL demands TLS; the server only speaks plain TCP.
    #[error(
        "the server does not offer TLS, but the {what} demands it (sslmode={mode}): enable ssl on the server, or use sslmode=prefer to allow a plain connection"
    )]
    NoTlsOffered {
        /// Which URL.
        what: &'static str,
        /// The sslmode asked for.
        mode: &'static str,
    },
    /// The server's certificate does not lead to a trusted CA.
    #[error(
        "the server's TLS certificate for the {what} is not signed by a trusted CA ({reason}): give sslrootcert=PATH in the URL, the PEM file of the CA that signed it"
    )]
    Untrusted {
        /// Which URL.
        what: &'static str,
        /// rustls's reason.
        reason: String,
    },
    /// The certificate is trusted but made out to another host (`verify-full`).
    #[error(
        "the server's TLS certificate does not name the host in the {what} ({reason}): connect by a host name the certificate lists, or use sslmode=verify-ca to check the chain only"
    )]
    WrongHost {
        /// Which URL.
        what: &'static str,
        /// rustls's reason.
        reason: String,
    },
    /// Any other refusal of the certificate (expired, not yet valid, revoked, ...).
    #[error(
        "the server's TLS certificate for the {what} was refused ({reason}): the server needs a valid certificate"
    )]
    Certificate {
        /// Which URL.
        what: &'static str,
        /// rustls's reason.
        reason: String,
    },
    /// The TLS handshake failed for another reason.
    #[error(
        "the TLS handshake with the {what}'s server failed ({reason}): check the server's TLS settings (ssl, ssl_min_protocol_version)"
    )]
    Tls {
        /// Which URL.
        what: &'static str,
        /// rustls's reason.
        reason: String,
    },
    /// Nothing answered.
    #[error(
        "cannot connect with the {what} ({reason}): check that PostgreSQL is running and that host and port are right"
    )]
    Unreachable {
        /// Which URL.
        what: &'static str,
        /// The transport error.
        reason: String,
    },
    /// Wrong user or password, or pg_hba refused.
    #[error(
        "the server refused the {what}'s credentials ({reason}): check the user name and password"
    )]
    Auth {
        /// Which URL.
        what: &'static str,
        /// The server's message.
        reason: String,
    },
    /// The server answered the connection with another error.
    #[error("the server refused the {what} ({reason}): check the database name and the role")]
    Rejected {
        /// Which URL.
        what: &'static str,
        /// The server's message.
        reason: String,
    },
    /// A catalog query failed.
    #[error(
        "catalog query failed ({step}: {reason}): the audit role must be able to read pg_catalog; run the audit as the schema owner or a role with catalog access"
    )]
    Query {
        /// Which query.
        step: &'static str,
        /// The server's message.
        reason: String,
    },
    /// The probe would connect as a role that bypasses RLS.
    #[error(
        "probe URL's role bypasses RLS ({role} is {how}): it would see every row and prove nothing; point the probe at the application's own role"
    )]
    ProbeBypassesRls {
        /// The role.
        role: String,
        /// `superuser` or `BYPASSRLS`.
        how: &'static str,
    },
}

impl DbError {
    pub(crate) fn query(step: &'static str, e: &tokio_postgres::Error) -> DbError {
        DbError::Query {
            step,
            reason: pg_message(e),
        }
    }

    pub(crate) fn connect(what: &'static str, e: &tokio_postgres::Error) -> DbError {
        match e.as_db_error() {
            Some(db) => {
                let reason = db.message().to_string();
                let code = db.code().code();
                if code == "28P01" || code == "28000" {
                    DbError::Auth { what, reason }
                } else {
                    DbError::Rejected { what, reason }
                }
            }
            None => DbError::Unreachable {
                what,
                reason: pg_message(e),
            },
        }
    }
}

/// One line: the server's message with its SQLSTATE, or the client error and its cause.
pub(crate) fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} [SQLSTATE {}]", db.message(), db.code().code());
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        src = cause.source();
    }
    s.replace('\n', " ")
}

/// The one Error result for something that could not be decided.
pub(crate) fn error_result(id: &str, layer: Layer, e: &DbError) -> CheckResult {
    let (check, variant) = id.rsplit_once('.').unwrap_or(("database", id));
    CheckResult::new(id, check, variant, layer, Verdict::Error, e.to_string())
}
