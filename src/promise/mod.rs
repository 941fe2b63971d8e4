//! The vendor's other isolation promises (run → **promise checks** → results → report):
//! transport security, secrets at rest, the audit log and the isolation attestation.
//!
//! Each promise is a self-contained module with a small public API that returns
//! [`CheckResult`]s, one per claim, so the runner emits them next to its own:
//! - [`transport`]: the lowest TLS version and the cipher suites the target accepts,
//!   its certificate's validity window, and `Strict-Transport-Security`;
//! - [`at_rest`]: a read-only, rolled-back search of the tenant's visible columns for
//!   a captured credential's plaintext and its unsalted digests;
//! - [`audit_log`]: catalog rules for the audit table(s), and the runtime rule that
//!   each seeded write of A left an audit row A sees and B does not;
//! - [`attestation`]: the target's own isolation-proof JSON compared with what was
//!   measured.
//!
//! Every result id starts with `promise.` (`promise.transport.min_tls`,
//! `promise.secrets_at_rest.api_key.plaintext`, ...). The rules are the project's:
//! what cannot be decided is [`Verdict::Error`], a probe that saw nothing is
//! [`Verdict::Skip`] with the reason, and no secret reaches a result (callers pass their
//! [`crate::redact::Redactor`]; each module registers what it learns).

pub mod at_rest;
pub mod attestation;
pub mod audit_log;
pub mod transport;

use crate::outcome::{CheckResult, Layer, Verdict};
use crate::redact::Redactor;

/// Why a promise check could not be decided. Rendered as one [`Verdict::Error`] result
/// whose text says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PromiseError {
    /// The target URL does not parse or names no host.
    #[error("the target URL `{url}` is not usable ({reason}): give an absolute https:// URL")]
    BadUrl {
        /// The URL as given (redacted by the caller).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// Nothing answered on the target's address.
    #[error("cannot connect to {addr} ({reason}): check that the target is up")]
    Unreachable {
        /// `host:port`.
        addr: String,
        /// The transport error.
        reason: String,
    },
    /// The CA bundle given for the target is not usable.
    #[error("the CA bundle {reason}: give a PEM file of CA certificates")]
    BadCa {
        /// What is wrong with it.
        reason: String,
    },
    /// An HTTP fetch failed (transport error, timeout or 5xx).
    #[error("fetching {url} failed ({reason}): the answer is needed to decide")]
    Fetch {
        /// The URL (redacted by the caller).
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// A database statement failed.
    #[error("{step} failed ({reason}): the probe role must be able to read the catalogs")]
    Query {
        /// Which step.
        step: &'static str,
        /// The server's message.
        reason: String,
    },
    /// The probe's role sees every row, so a search as it proves nothing.
    #[error(
        "the probe role {role} bypasses RLS ({how}): it would see every tenant's rows; connect as the application's own role"
    )]
    BypassesRls {
        /// The role.
        role: String,
        /// `a superuser` or `BYPASSRLS`.
        how: &'static str,
    },
}

impl PromiseError {
    pub(crate) fn query(step: &'static str, e: &tokio_postgres::Error) -> PromiseError {
        PromiseError::Query {
            step,
            reason: pg_message(e),
        }
    }
}

/// One line: the server's message with its SQLSTATE, or the client error.
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

/// A result of a promise check: id `promise.{promise}.{claim}`.
pub(crate) fn result(
    promise: &str,
    claim: &str,
    layer: Layer,
    verdict: Verdict,
    summary: impl Into<String>,
) -> CheckResult {
    CheckResult::new(
        format!("promise.{promise}.{claim}"),
        format!("promise.{promise}"),
        claim,
        layer,
        verdict,
        summary,
    )
}

/// Passes every string of every result through the redactor (for the transport and
/// attestation results, whose functions take no redactor: the caller's is applied once).
pub fn redact_all(results: &mut [CheckResult], redactor: &Redactor) {
    for r in results {
        for s in [&mut r.id, &mut r.check, &mut r.variant, &mut r.summary] {
            *s = redactor.redact(s);
        }
        for e in &mut r.evidence {
            e.label = redactor.redact(&e.label);
            e.text = redactor.redact(&e.text);
        }
    }
}

/// `name` as a SQL identifier, quoted when it is not a plain lower-case name.
pub(crate) fn quote_ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `schema.name`, each part quoted when needed.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// The URL-safe slug of a step name, as result ids use it (the suite loader's rule,
/// copied so this module does not depend on where the loader keeps it).
pub(crate) fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

/// Splits `schema.table` (or `table`, in `public`).
pub(crate) fn split_table(name: &str) -> (String, String) {
    match name.split_once('.') {
        Some((s, t)) => (s.to_string(), t.to_string()),
        None => ("public".to_string(), name.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_splitting() {
        assert_eq!(quote_ident("audit_log"), "audit_log");
        assert_eq!(quote_ident("Audit"), "\"Audit\"");
        assert_eq!(qualified("app", "x\"y"), "app.\"x\"\"y\"");
        assert_eq!(
            split_table("audit_log"),
            ("public".into(), "audit_log".into())
        );
        assert_eq!(split_table("app.events"), ("app".into(), "events".into()));
    }

    #[test]
    fn results_are_redacted_everywhere() {
        let r = Redactor::new();
        r.add("capture api_key", "tg_live_secret");
        let mut v = vec![
            result("x", "y", Layer::Probe, Verdict::Fail, "saw tg_live_secret")
                .with("where", "tg_live_secret"),
        ];
        redact_all(&mut v, &r);
        assert!(!format!("{v:?}").contains("tg_live_secret"));
    }
}
