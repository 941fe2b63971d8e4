//! The database layer: a catalog audit of PostgreSQL Row-Level Security and, when
//! asked, a live probe as the application's role (run → **database layer** → results
//! → report).
//!
//! [`audit`] is the one entry point (the CLI's `tenantgate audit` and the runner's
//! `database:` section both call it). It
//! 1. connects read-only ([`read_only_client`]: `default_transaction_read_only = on`
//!    and one `READ ONLY` transaction, so an audit can never change the database);
//! 2. reads a catalog snapshot in a constant number of set-based queries, however many
//!    tables there are ([`catalog`]);
//! 3. judges it in pure Rust ([`rules`], with the policy-expression heuristics in
//!    [`expr`]): one [`CheckResult`] per tenant table per rule, plus role, view,
//!    function and database-wide results;
//! 4. optionally probes as the app role ([`probe`]) inside transactions that always
//!    roll back.
//!
//! Verdicts: a finding of severity error is [`Verdict::Fail`], of severity warning
//! [`Verdict::Warn`]; what could not be decided (connection refused, wrong password,
//! no catalog access, a failed query) is ONE [`Verdict::Error`] result whose reason
//! says what to do. Every string passes through the [`Redactor`] first.

pub mod catalog;
pub mod expr;
pub mod probe;
pub mod rules;
pub mod tls;

use std::time::Instant;

use crate::outcome::{CheckResult, Layer, Verdict};
use crate::redact::Redactor;

pub use catalog::read_only_client;

/// The tenant column names looked for when none are configured.
pub const DEFAULT_TENANT_COLUMNS: &[&str] = &[
    "org_id",
    "tenant_id",
    "organization_id",
    "account_id",
    "workspace_id",
];

/// What to audit and how to reach it. `Debug` hides the URL's password.
#[derive(Clone, Default)]
pub struct AuditConfig {
    /// Connection URL of any role that can read the catalogs (`postgres://...`).
    pub url: String,
    /// Tenant column names; empty means [`DEFAULT_TENANT_COLUMNS`].
    pub tenant_columns: Vec<String>,
    /// Schemas to search; empty means every non-system schema the app role can use
    /// (every non-system schema when there is no app role).
    pub schemas: Vec<String>,
    /// Extra tenant tables, `schema.table` or `table` (searched in the schemas, then
    /// `public`); each must exist.
    pub tables: Vec<String>,
    /// Tables removed from the set (`schema.table`, or `table` in any schema).
    pub exempt: Vec<String>,
    /// The role the application connects as; `None` reports role checks as Skip.
    pub app_role: Option<String>,
    /// The setting that carries the tenant (`app.current_org_id`); `None`: any
    /// `current_setting(...)` counts.
    pub tenant_setting: Option<String>,
    /// The live probe, when asked for.
    pub probe: Option<ProbeConfig>,
}

/// The live probe: connects as the application's role. `Debug` hides the password.
#[derive(Clone, Default)]
pub struct ProbeConfig {
    /// Connection URL of the application's own role (never a superuser or BYPASSRLS).
    pub url: String,
    /// Org A and org B, when `tenantgate run` has provisioned them: enables the A/B
    /// probes.
    pub orgs: Option<ProbeOrgs>,
}

/// The two orgs' ids, as text (cast to each tenant column's type in SQL).
#[derive(Clone, Debug, Default)]
pub struct ProbeOrgs {
    /// Org A's id.
    pub a: String,
    /// Org B's id.
    pub b: String,
}

/// `url` with its password replaced, for `Debug`.
fn masked(url: &str) -> String {
    match crate::redact::url_password(url) {
        Some(p) if !p.is_empty() => url.replace(&p, "****"),
        _ => url.to_string(),
    }
}

impl std::fmt::Debug for AuditConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditConfig")
            .field("url", &masked(&self.url))
            .field("tenant_columns", &self.tenant_columns)
            .field("schemas", &self.schemas)
            .field("tables", &self.tables)
            .field("exempt", &self.exempt)
            .field("app_role", &self.app_role)
            .field("tenant_setting", &self.tenant_setting)
            .field("probe", &self.probe)
            .finish()
    }
}

impl std::fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeConfig")
            .field("url", &masked(&self.url))
            .field("orgs", &self.orgs)
            .finish()
    }
}

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

/// Audits the database and, when configured, probes it as the app role.
///
/// Never panics on external input and never returns an empty list: a failure to connect
/// or read the catalogs is one [`Verdict::Error`] result.
pub async fn audit(cfg: &AuditConfig, redactor: &Redactor) -> Vec<CheckResult> {
    redactor.add_url_password("database URL password", &cfg.url);
    if let Some(p) = &cfg.probe {
        redactor.add_url_password("probe URL password", &p.url);
    }
    let started = Instant::now();
    let columns: Vec<String> = if cfg.tenant_columns.is_empty() {
        DEFAULT_TENANT_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        cfg.tenant_columns.clone()
    };
    let setting = cfg.tenant_setting.as_ref().map(|s| s.to_lowercase());
    let loaded = async {
        let client = read_only_client(&cfg.url).await?;
        catalog::load(&client, &cfg.url, cfg.app_role.as_deref(), &columns).await
    }
    .await;
    let cat = match loaded {
        Ok(c) => c,
        Err(e) => {
            let mut r = vec![error_result("database.audit", Layer::Database, &e)];
            redact_all(&mut r, redactor);
            return r;
        }
    };
    let opts = rules::Options {
        tenant_columns: &columns,
        schemas: &cfg.schemas,
        tables: &cfg.tables,
        exempt: &cfg.exempt,
        app_role: cfg.app_role.as_deref(),
        tenant_setting: setting.as_deref(),
    };
    let judged = rules::judge(&cat, &opts, started.elapsed());
    let mut results = judged.results;
    let unverified = notices(cfg);
    if !unverified.is_empty() {
        // Not a finding about isolation, but a person reading the verdicts must know
        // the connection could have been intercepted; also in every report's notices.
        let mut r = CheckResult::new(
            "database.audit",
            "database",
            "audit",
            Layer::Database,
            Verdict::Pass,
            "connected over TLS without verifying the server's certificate (sslmode=require without sslrootcert)",
        );
        for n in unverified {
            r = r.with("notice", n);
        }
        results.push(r);
    }
    if let Some(p) = &cfg.probe {
        results.extend(probe::run(p, &judged.tenant_tables, setting.as_deref()).await);
    }
    redact_all(&mut results, redactor);
    results
}

/// Notes for every report about the connections' TLS: one per URL that demands TLS
/// but does not verify the server's certificate (`sslmode=require` without
/// `sslrootcert`). Decided by the URLs alone, so callers can add them to the run's
/// notices.
pub fn notices(cfg: &AuditConfig) -> Vec<String> {
    let mut out = Vec::new();
    let urls = std::iter::once((&cfg.url, "database URL"))
        .chain(cfg.probe.as_ref().map(|p| (&p.url, "probe URL")));
    for (url, what) in urls {
        if let Some(n) = tls::TlsPolicy::of(url)
            .ok()
            .and_then(|p| p.unverified_notice(what))
        {
            out.push(n);
        }
    }
    out
}

/// The one Error result for something that could not be decided.
pub(crate) fn error_result(id: &str, layer: Layer, e: &DbError) -> CheckResult {
    let (check, variant) = id.rsplit_once('.').unwrap_or(("database", id));
    CheckResult::new(id, check, variant, layer, Verdict::Error, e.to_string())
}

fn redact_all(results: &mut [CheckResult], redactor: &Redactor) {
    let secrets = redactor.values();
    if secrets.is_empty() {
        return;
    }
    let needs = |s: &str| secrets.iter().any(|x| s.contains(x.as_str()));
    for r in results {
        for s in [&mut r.id, &mut r.check, &mut r.variant, &mut r.summary] {
            if needs(s) {
                *s = redactor.redact(s);
            }
        }
        for e in &mut r.evidence {
            if needs(&e.text) {
                e.text = redactor.redact(&e.text);
            }
            if needs(&e.label) {
                e.label = redactor.redact(&e.label);
            }
        }
    }
}

/// `name` as a SQL identifier, quoted when it is not a plain lower-case name.
pub(crate) fn quote_ident(name: &str) -> String {
    let plain = !name.is_empty()
        && name
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(quote_ident("brands"), "brands");
        assert_eq!(quote_ident("Brands"), "\"Brands\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("public", "my table"), "public.\"my table\"");
    }

    #[test]
    fn debug_hides_passwords() {
        let cfg = AuditConfig {
            url: "postgres://u:hunter22@h/db".into(),
            probe: Some(ProbeConfig {
                url: "postgres://app:s3cr3tpw@h/db".into(),
                orgs: None,
            }),
            ..Default::default()
        };
        let d = format!("{cfg:?}");
        assert!(!d.contains("hunter22") && !d.contains("s3cr3tpw"), "{d}");
        assert!(d.contains("postgres://u:****@h/db"));
    }

    #[test]
    fn redacts_every_field() {
        let r = Redactor::new();
        r.add("pw", "hunter22");
        let mut v = vec![
            CheckResult::new("a", "b", "c", Layer::Database, Verdict::Error, "x hunter22")
                .with("l", "hunter22"),
        ];
        redact_all(&mut v, &r);
        assert!(!v[0].summary.contains("hunter22"));
        assert!(!v[0].evidence[0].text.contains("hunter22"));
    }
}
