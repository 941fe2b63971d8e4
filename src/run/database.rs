//! The database stage (run stage): the suite's `database:` section (or the `audit`
//! command's flags) as a [`db::AuditConfig`], the one place its passwords are registered
//! with the redactor, and the audit's results emitted through the selection.

use super::emit::Emitter;
use crate::db;
use crate::plan::Selection;
use crate::redact::Redactor;

/// The audit configuration of a suite's `database:` section. `lookup` fills the
/// probe's settings from the captures (`{{a.user_id}}`); a setting it cannot fill is
/// left out and named in the returned notices (the A/B probes then run without it).
pub fn audit_config(
    database: &crate::suite::model::Database,
    orgs: Option<(String, String)>,
) -> db::AuditConfig {
    audit_config_with(database, orgs, None).0
}

/// [`audit_config`] with the captures' lookup for `database.probe.settings`.
pub fn audit_config_with(
    database: &crate::suite::model::Database,
    orgs: Option<(String, String)>,
    lookup: Option<&dyn Fn(&str) -> Option<String>>,
) -> (db::AuditConfig, Vec<String>) {
    let mut notices = Vec::new();
    let mut settings = Vec::new();
    if let (Some(p), Some(lookup)) = (&database.probe, lookup) {
        for (k, v) in p.settings.iter() {
            match (v.a.render(lookup), v.b.render(lookup)) {
                (Ok(a), Ok(b)) => settings.push(db::ProbeSetting {
                    name: k.name.clone(),
                    a,
                    b,
                }),
                (Err(e), _) | (_, Err(e)) => notices.push(format!(
                    "database.probe.settings.{}: {e}; the probe ran without it",
                    k.name
                )),
            }
        }
    }
    let cfg = db::AuditConfig {
        url: database.url.to_string(),
        tenant_columns: database.tenant_column.0.clone(),
        schemas: database.schemas.clone(),
        tables: database.tables.clone(),
        exempt: database.exempt.clone(),
        app_role: database.app_role.as_ref().map(|t| t.to_string()),
        tenant_setting: database.tenant_setting.clone(),
        probe: database.probe.as_ref().map(|p| db::ProbeConfig {
            url: p.url.to_string(),
            orgs: orgs.map(|(a, b)| db::ProbeOrgs { a, b }),
            settings,
            roles: p.roles.clone(),
        }),
        model: database.tenant_model(),
    };
    (cfg, notices)
}

/// The database results `validate --list` can name without connecting: every table
/// rule per declared table (`public.brands.rls_forced`), or per `<schema>.<table>` when
/// the tables are found at run time, and the rules about the app role and other
/// objects as `<object>.RULE`. Each line says it needs the database.
pub fn planned_ids(database: &crate::suite::model::Database) -> Vec<String> {
    use db::rules::{Rule, TABLE_RULES};
    let schema = database.schemas.first().map_or("public", String::as_str);
    let tables: Vec<String> = if database.tables.is_empty() {
        vec!["<schema>.<table>".into()]
    } else {
        database
            .tables
            .iter()
            .map(|t| {
                if t.contains('.') {
                    t.clone()
                } else {
                    format!("{schema}.{t}")
                }
            })
            .collect()
    };
    let mut out: Vec<String> = tables
        .iter()
        .flat_map(|t| TABLE_RULES.iter().map(move |r| format!("{t}.{}", r.id())))
        .collect();
    out.extend(
        [
            Rule::AppRoleSuperuser,
            Rule::AppRoleBypassrls,
            Rule::ViewBypass,
            Rule::MatviewTenantData,
            Rule::ForeignTableTenantData,
            Rule::DefinerFunction,
            Rule::DerivedTenantData,
        ]
        .iter()
        .map(|r| format!("<object>.{}", r.id())),
    );
    let tag = if database.tables.is_empty() {
        "(database: per tenant table found)"
    } else {
        "(database)"
    };
    out.into_iter().map(|id| format!("{id}  {tag}")).collect()
}

/// Registers the passwords of the audit's connections (catalog and probe) as secrets.
pub fn register_passwords(cfg: &db::AuditConfig, redactor: &Redactor) {
    redactor.add_url_password("database password", &cfg.url);
    if let Some(p) = &cfg.probe {
        redactor.add_url_password("app database password", &p.url);
    }
}

/// Audits the database and emits the selected results; returns the audit's notices.
pub(crate) async fn audit(
    cfg: &db::AuditConfig,
    selection: &Selection,
    redactor: &Redactor,
    em: &mut Emitter<'_>,
) -> Vec<String> {
    register_passwords(cfg, redactor);
    em.phase("auditing the database");
    let notices = db::notices(cfg);
    for r in db::audit(cfg, redactor).await {
        if selection.keeps(&r.id, &r.check) {
            em.result(r);
        }
    }
    notices
}
