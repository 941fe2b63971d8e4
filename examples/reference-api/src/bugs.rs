//! The planted isolation bugs: a closed list of named defects, each switchable on its own.
//!
//! A bug set is chosen once, when the database is prepared and the API starts
//! (`--bugs a,b` or `REFAPI_BUGS`). Every bug breaks exactly one thing and leaves the rest
//! of the app correct, so a tenantgate check that fires can be traced to one cause.
//! [`Layer::Http`] bugs change what the API answers (or, for the transport bugs, how it
//! serves TLS); [`Layer::Database`] bugs change only the database (roles, ownership,
//! policies, grants, what is stored), so the API answers exactly as the clean app does
//! and only a database audit or a direct-SQL probe can tell.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One planted defect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Bug {
    /// An `X-Org-Id` header replaces the token's org.
    TenantFromHeader,
    /// `GET /brands/{id}` answers 403 for another org's brand: an existence oracle.
    ForbiddenNot404,
    /// `mentions` has RLS disabled and its list query forgets the org filter.
    MentionsRlsOff,
    /// The ghost-presence config PATCH runs through the privileged connection, unfiltered.
    WriteBypassesRls,
    /// Tokens with `"alg":"none"` are accepted without a signature.
    AlgNone,
    /// HS256 signatures are not checked.
    SignatureNotVerified,
    /// `exp` is not checked.
    ExpiredAccepted,
    /// `GET /audit-log` reads through the privileged connection, unfiltered.
    AuditPrivileged,
    /// `subscribers` is owned by the app role and RLS is not forced on it.
    SubscribersNotForced,
    /// The brands policy lets a session without a tenant setting see every tenant.
    FailOpenPolicy,
    /// The app role is a member of the BYPASSRLS maintenance role.
    AppRoleBypassrls,
    /// The tenant setting is session-level on LIFO-pooled connections, so an endpoint
    /// that sets no tenant sees the previous caller's rows.
    PoolSessionLeak,
    /// Orgs cannot be deleted: what a suite creates stays behind.
    CannotDelete,
    /// `DELETE /orgs/{id}` answers 204 and deletes nothing (a "soft delete" that keeps
    /// every row, still readable by the org's token).
    DeleteKeepsData,
    /// TLS 1.2 handshakes are accepted (the correct app serves TLS 1.3 only).
    Tls12Accepted,
    /// HTTPS answers carry no `Strict-Transport-Security` header.
    NoHsts,
    /// API keys are stored in plain text.
    ApiKeyPlaintext,
    /// API keys are stored as an unsalted SHA-256 hex digest.
    ApiKeyUnsalted,
    /// The app role may UPDATE and DELETE the audit log.
    AuditUpdatable,
    /// The attestation endpoint claims RLS forced everywhere while one table is not.
    AttestationOverclaims,
    /// The attestation endpoint includes other orgs' audit entries.
    AttestationLeaksRows,
}

/// Where a bug shows: in HTTP answers, or only in the database. Shared with the
/// path-scoped target, whose own bug list is [`crate::scoped::ScopedBug`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The API answers differently from the clean app.
    Http,
    /// The API answers exactly like the clean app; only the database differs.
    Database,
}

impl Bug {
    /// Every bug, in a stable order (the order of the README's table).
    pub const ALL: [Bug; 21] = [
        Bug::TenantFromHeader,
        Bug::ForbiddenNot404,
        Bug::MentionsRlsOff,
        Bug::WriteBypassesRls,
        Bug::AlgNone,
        Bug::SignatureNotVerified,
        Bug::ExpiredAccepted,
        Bug::AuditPrivileged,
        Bug::SubscribersNotForced,
        Bug::FailOpenPolicy,
        Bug::AppRoleBypassrls,
        Bug::PoolSessionLeak,
        Bug::CannotDelete,
        Bug::DeleteKeepsData,
        Bug::Tls12Accepted,
        Bug::NoHsts,
        Bug::ApiKeyPlaintext,
        Bug::ApiKeyUnsalted,
        Bug::AuditUpdatable,
        Bug::AttestationOverclaims,
        Bug::AttestationLeaksRows,
    ];

    /// The name used on the command line and in `REFAPI_BUGS`.
    pub fn name(self) -> &'static str {
        match self {
            Bug::TenantFromHeader => "tenant-from-header",
            Bug::ForbiddenNot404 => "forbidden-not-404",
            Bug::MentionsRlsOff => "mentions-rls-off",
            Bug::WriteBypassesRls => "write-bypasses-rls",
            Bug::AlgNone => "alg-none",
            Bug::SignatureNotVerified => "signature-not-verified",
            Bug::ExpiredAccepted => "expired-accepted",
            Bug::AuditPrivileged => "audit-privileged",
            Bug::SubscribersNotForced => "subscribers-not-forced",
            Bug::FailOpenPolicy => "fail-open-policy",
            Bug::AppRoleBypassrls => "app-role-bypassrls",
            Bug::PoolSessionLeak => "pool-session-leak",
            Bug::CannotDelete => "cannot-delete",
            Bug::DeleteKeepsData => "delete-keeps-data",
            Bug::Tls12Accepted => "tls12-accepted",
            Bug::NoHsts => "no-hsts",
            Bug::ApiKeyPlaintext => "api-key-plaintext",
            Bug::ApiKeyUnsalted => "api-key-unsalted",
            Bug::AuditUpdatable => "audit-updatable",
            Bug::AttestationOverclaims => "attestation-overclaims",
            Bug::AttestationLeaksRows => "attestation-leaks-rows",
        }
    }

    /// What the bug does, in one line.
    pub fn description(self) -> &'static str {
        match self {
            Bug::TenantFromHeader => {
                "an X-Org-Id request header replaces the JWT's org (setting and filters)"
            }
            Bug::ForbiddenNot404 => {
                "GET /brands/{id} answers 403 when the brand exists in another org (existence oracle)"
            }
            Bug::MentionsRlsOff => {
                "mentions has RLS disabled and GET /monitoring/mentions drops its org filter"
            }
            Bug::WriteBypassesRls => {
                "PATCH /ghost-presence/{id}/config updates through the privileged connection, unfiltered"
            }
            Bug::AlgNone => "tokens whose header says \"alg\":\"none\" are accepted unverified",
            Bug::SignatureNotVerified => "HS256 tokens are decoded without checking the signature",
            Bug::ExpiredAccepted => "the exp claim is not validated (the signature still is)",
            Bug::AuditPrivileged => {
                "GET /audit-log reads through the privileged connection with no org filter"
            }
            Bug::SubscribersNotForced => {
                "subscribers is owned by the app role and RLS is not forced (database only)"
            }
            Bug::FailOpenPolicy => {
                "the brands policy shows every tenant when the org setting is unset (database only)"
            }
            Bug::AppRoleBypassrls => {
                "the app role is granted the BYPASSRLS maintenance role (database only)"
            }
            Bug::PoolSessionLeak => {
                "the tenant is set session-level (set_config(..., false)) on LIFO-pooled \
                 connections; GET /public/featured-brands, which sets none, shows the last caller's brands"
            }
            Bug::DeleteKeepsData => {
                "DELETE /orgs/{id} answers 204 but deletes nothing: the org's brands stay, readable by its token"
            }
            Bug::CannotDelete => {
                "DELETE /orgs/{id} answers 405: orgs stay behind with their users, mentions and \
                 audit rows (which have no delete route in any mode)"
            }
            Bug::Tls12Accepted => "served with TLS, TLS 1.2 handshakes are accepted too",
            Bug::NoHsts => "served with TLS, answers carry no Strict-Transport-Security header",
            Bug::ApiKeyPlaintext => {
                "POST /api-keys stores the key itself in api_keys.key_hash (database only)"
            }
            Bug::ApiKeyUnsalted => {
                "POST /api-keys stores an unsalted SHA-256 hex digest of the key (database only)"
            }
            Bug::AuditUpdatable => {
                "the app role may UPDATE and DELETE audit_log rows (database only)"
            }
            Bug::AttestationOverclaims => {
                "GET /.well-known/tenant-isolation claims RLS enabled and forced on every table \
                 from a static list, while ghost_presence_configs is left without FORCE"
            }
            Bug::AttestationLeaksRows => {
                "GET /.well-known/tenant-isolation adds the latest audit entries of every org"
            }
        }
    }

    /// Whether the bug changes HTTP answers or only the database.
    pub fn layer(self) -> Layer {
        match self {
            Bug::SubscribersNotForced
            | Bug::FailOpenPolicy
            | Bug::AppRoleBypassrls
            | Bug::ApiKeyPlaintext
            | Bug::ApiKeyUnsalted
            | Bug::AuditUpdatable => Layer::Database,
            _ => Layer::Http,
        }
    }

    /// The tenantgate check expected to catch the bug.
    pub fn caught_by(self) -> &'static str {
        match self {
            Bug::TenantFromHeader => "tenant_override (header variants)",
            Bug::ForbiddenNot404 => "read brand (existence oracle: 403 vs 404)",
            Bug::MentionsRlsOff => "list mentions; database audit rls_enabled",
            Bug::WriteBypassesRls => "write config",
            Bug::AlgNone => "token_forgery:alg_none",
            Bug::SignatureNotVerified => "token_forgery:tampered, token_forgery:random_key",
            Bug::ExpiredAccepted => "token_forgery:expired",
            Bug::AuditPrivileged => "list audit-log",
            Bug::SubscribersNotForced => "database audit rls_forced / app role owns table; probe",
            Bug::FailOpenPolicy => "database audit (fail-open policy); probe without setting",
            Bug::AppRoleBypassrls => "database audit app_role_bypassrls",
            Bug::PoolSessionLeak => {
                "pool_reuse attack (A's request, then the anonymous checks at once)"
            }
            Bug::CannotDelete => "truthful teardown: the report lists what was left behind",
            Bug::DeleteKeepsData => {
                "truthful teardown: A re-reads its brand after the delete (error, left behind)"
            }
            Bug::Tls12Accepted => "transport check: minimum TLS version 1.3",
            Bug::NoHsts => "transport check: Strict-Transport-Security max-age on answers",
            Bug::ApiKeyPlaintext => "secrets at rest: the key's plaintext found by the probe",
            Bug::ApiKeyUnsalted => "secrets at rest: an unsalted digest found by the probe",
            Bug::AuditUpdatable => "audit log check: the app role can UPDATE/DELETE it",
            Bug::AttestationOverclaims => {
                "attestation check (claimed vs measured forced); database audit rls_forced"
            }
            Bug::AttestationLeaksRows => {
                "attestation check (another tenant's row contents); A's markers seen by B"
            }
        }
    }
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is not a bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownBug(pub String);

impl fmt::Display for UnknownBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Bug::ALL.iter().map(|b| b.name()).collect();
        write!(
            f,
            "unknown bug {:?}; known bugs: {} (or \"all\", \"none\")",
            self.0,
            names.join(", ")
        )
    }
}

impl std::error::Error for UnknownBug {}

impl FromStr for Bug {
    type Err = UnknownBug;

    fn from_str(s: &str) -> Result<Bug, UnknownBug> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == wanted)
            .ok_or_else(|| UnknownBug(s.trim().to_string()))
    }
}

/// A set of enabled bugs. The empty set is the correct app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bugs(BTreeSet<Bug>);

impl Bugs {
    /// No bugs: the correct app.
    pub fn none() -> Bugs {
        Bugs::default()
    }

    /// Every bug at once.
    pub fn all() -> Bugs {
        Bug::ALL.into_iter().collect()
    }

    /// Parses a comma-separated list of bug names. Blank entries are skipped; `none` is
    /// the empty set and `all` every bug. Underscores are accepted for dashes.
    pub fn parse(list: &str) -> Result<Bugs, UnknownBug> {
        let mut set = BTreeSet::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match item.to_ascii_lowercase().as_str() {
                "none" => {}
                "all" => set.extend(Bug::ALL),
                _ => {
                    set.insert(item.parse()?);
                }
            }
        }
        Ok(Bugs(set))
    }

    /// Whether `bug` is enabled.
    pub fn contains(&self, bug: Bug) -> bool {
        self.0.contains(&bug)
    }

    /// Whether no bug is enabled.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The enabled bugs, in [`Bug::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = Bug> + '_ {
        self.0.iter().copied()
    }
}

impl FromStr for Bugs {
    type Err = UnknownBug;

    fn from_str(s: &str) -> Result<Bugs, UnknownBug> {
        Bugs::parse(s)
    }
}

impl From<Bug> for Bugs {
    fn from(bug: Bug) -> Bugs {
        Bugs(BTreeSet::from([bug]))
    }
}

impl FromIterator<Bug> for Bugs {
    fn from_iter<I: IntoIterator<Item = Bug>>(iter: I) -> Bugs {
        Bugs(iter.into_iter().collect())
    }
}

/// Renders the set the way [`Bugs::parse`] reads it (`none` when empty).
impl fmt::Display for Bugs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(Bug::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for bug in Bug::ALL {
            assert_eq!(bug.name().parse::<Bug>(), Ok(bug));
            assert!(!bug.description().is_empty());
        }
        let all = Bugs::all();
        assert_eq!(Bugs::parse(&all.to_string()), Ok(all));
        assert_eq!(Bugs::none().to_string(), "none");
    }

    #[test]
    fn parses_lists_leniently_but_rejects_unknown_names() {
        let bugs = Bugs::parse(" alg-none, ,EXPIRED_ACCEPTED ").unwrap();
        assert_eq!(
            bugs.iter().collect::<Vec<_>>(),
            [Bug::AlgNone, Bug::ExpiredAccepted]
        );
        assert!(Bugs::parse("").unwrap().is_empty());
        assert!(Bugs::parse("none").unwrap().is_empty());
        let err = Bugs::parse("alg-none,nope").unwrap_err();
        assert_eq!(err, UnknownBug("nope".into()));
        assert!(err.to_string().contains("tenant-from-header"));
    }
}
