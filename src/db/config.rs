//! What the database layer is asked to do (parse → plan → run → **database layer**
//! configuration): the audit's and the probe's settings, as the suite's `database:`
//! section and the `audit` command line give them.

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
