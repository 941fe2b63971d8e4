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
    /// How policies know the caller: identity functions and settings besides
    /// `tenant_setting`, and more app roles ([`TenantModel::supabase`]).
    pub model: TenantModel,
    /// Schema-per-tenant mode: tenants are schemas, each with its own role.
    pub tenant_schemas: Option<SchemaTenants>,
}

/// Schema-per-tenant mode: which schemas are tenants and which role is each one's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SchemaTenants {
    /// Schema names or patterns (a trailing `*` matches a prefix: `tenant_*`).
    pub schemas: Vec<String>,
    /// The role of a tenant schema, `{schema}` replaced by its name (`{schema}_app`).
    pub role: String,
    /// Shared schemas, never tenants even when a pattern matches (`public`).
    pub shared: Vec<String>,
}

/// How the caller's identity reaches the policies, beyond a tenant setting: JWT claims
/// read through functions (`auth.uid()`, `auth.jwt()`) or settings
/// (`request.jwt.claims`), and membership tables bound to them. A policy is keyed
/// when it ties the row's tenant column to one of these (or to `tenant_setting`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantModel {
    /// The preset this model came from, if any (shown in evidence).
    pub preset: Option<String>,
    /// Functions that return the caller's identity or claims, `schema.name` or `name`,
    /// lower case (`auth.uid`, `auth.jwt`).
    pub identity_functions: Vec<String>,
    /// Settings that carry the caller's identity or claims, lower case; a trailing `*`
    /// matches a prefix (`request.jwt.claim.*`).
    pub identity_settings: Vec<String>,
    /// Claims the user can edit themselves: never an identity (`user_metadata`).
    pub editable_claims: Vec<String>,
    /// More application roles, judged like `app_role` (each policy and privilege
    /// as that role); results that differ are reported once, worst first.
    pub extra_app_roles: Vec<String>,
}

/// The presets [`TenantModel::preset_named`] knows.
pub const PRESETS: &[&str] = &["supabase"];

impl TenantModel {
    /// Supabase / PostgREST: the caller is `auth.uid()` / `auth.jwt()` (or the
    /// `request.jwt.claims` setting PostgREST sets); the app roles are `anon` and
    /// `authenticated` (`service_role` bypasses RLS by design and is not one; with no
    /// `app_role`, `authenticated` is the main one);
    /// `user_metadata` is editable by the user.
    pub fn supabase() -> TenantModel {
        TenantModel {
            preset: Some("supabase".into()),
            identity_functions: ["auth.uid", "auth.jwt", "auth.role", "auth.email"]
                .map(String::from)
                .to_vec(),
            identity_settings: ["request.jwt.claims", "request.jwt.claim.*"]
                .map(String::from)
                .to_vec(),
            editable_claims: vec!["user_metadata".into()],
            extra_app_roles: vec!["authenticated".into(), "anon".into()],
        }
    }

    /// The model of a preset by name (see [`PRESETS`]).
    pub fn preset_named(name: &str) -> Option<TenantModel> {
        match name.trim().to_ascii_lowercase().as_str() {
            "supabase" => Some(TenantModel::supabase()),
            _ => None,
        }
    }

    /// A preset (when named), extended by explicit identity functions, settings and
    /// more app roles. An unknown preset name adds nothing (the callers validate it).
    pub fn of(
        preset: Option<&str>,
        functions: &[String],
        settings: &[String],
        extra_app_roles: &[String],
    ) -> TenantModel {
        let mut m = preset
            .and_then(TenantModel::preset_named)
            .unwrap_or_default();
        let add = |v: &mut Vec<String>, xs: &[String]| {
            for x in xs {
                let x = x.trim().to_lowercase();
                if !x.is_empty() && !v.contains(&x) {
                    v.push(x);
                }
            }
        };
        add(&mut m.identity_functions, functions);
        add(&mut m.identity_settings, settings);
        for r in extra_app_roles {
            if !m.extra_app_roles.contains(r) {
                m.extra_app_roles.push(r.clone());
            }
        }
        m
    }

    /// Whether anything beyond a tenant setting is declared.
    pub fn has_identity(&self) -> bool {
        !self.identity_functions.is_empty() || !self.identity_settings.is_empty()
    }
}

/// The live probe: connects as the application's role. `Debug` hides the password.
#[derive(Clone, Default)]
pub struct ProbeConfig {
    /// Connection URL of the application's own role (never a superuser or BYPASSRLS).
    pub url: String,
    /// Org A and org B, when `tenantgate run` has provisioned them: enables the A/B
    /// probes.
    pub orgs: Option<ProbeOrgs>,
    /// More settings the probe sets as A and as B, besides the tenant setting: the
    /// caller's identity (`app.user_id`, `request.jwt.claims` JSON, `jwt.claims.*`),
    /// with each org's value (a suite renders them from the captures).
    pub settings: Vec<ProbeSetting>,
    /// The roles the probe acts as, each by `SET LOCAL ROLE` inside its rolled-back
    /// transaction; empty: the audit's app roles (`app_role`, `app_roles`, the
    /// preset's), or the login role itself when none is declared.
    pub roles: Vec<String>,
    /// A's seeded ids (capture name, value), from `tenantgate run`: the probe, as A,
    /// looks them up by primary key in every tenant table (`probe_seed_rows`), so the
    /// run can put each table's database verdict next to the HTTP verdict.
    pub seeds: Vec<(String, String)>,
}

/// A setting the probe sets as org A and as org B (`app.user_id` = A's user, B's user).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProbeSetting {
    /// The setting's name (`app.user_id`, `request.jwt.claims`).
    pub name: String,
    /// Its value as A.
    pub a: String,
    /// Its value as B.
    pub b: String,
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
            .field("model", &self.model)
            .field("tenant_schemas", &self.tenant_schemas)
            .finish()
    }
}

impl std::fmt::Debug for ProbeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeConfig")
            .field("url", &masked(&self.url))
            .field("orgs", &self.orgs)
            .field("settings", &self.settings)
            .field("roles", &self.roles)
            .field("seeds", &self.seeds.len())
            .finish()
    }
}
