//! The database stage (run stage): the suite's `database:` section (or the `audit`
//! command's flags) as a [`db::AuditConfig`], the one place its passwords are registered
//! with the redactor, and the audit's results emitted through the selection.

use super::emit::Emitter;
use crate::db;
use crate::outcome::{CheckResult, Layer, Verdict};
use crate::plan::Selection;
use crate::redact::Redactor;

/// The audit configuration of a suite's `database:` section. `lookup` fills the
/// probe's settings from the captures (`{{a.user_id}}`); a setting it cannot fill is
/// left out and named in the returned notices (the A/B probes then run without it).
pub fn audit_config(
    database: &crate::suite::model::Database,
    orgs: Option<(String, String)>,
) -> db::AuditConfig {
    audit_config_with(database, orgs, None, Vec::new()).0
}

/// The captures' placeholder lookup (`a.user_id` → its value).
pub type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

/// A's captures that look like row ids (a uuid, or a whole number), as (name, value):
/// what the probe looks up by primary key to find where A's seeded rows landed.
pub(crate) fn seed_ids(
    captures: &std::collections::BTreeMap<String, String>,
) -> Vec<(String, String)> {
    let uuid = |s: &str| {
        s.len() == 36
            && s.chars().enumerate().all(|(i, c)| {
                if [8, 13, 18, 23].contains(&i) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            })
    };
    captures
        .iter()
        .filter(|(_, v)| {
            uuid(v) || (!v.is_empty() && v.len() < 20 && v.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// [`audit_config`] with the captures' lookup for `database.probe.settings` and A's
/// seeded ids.
pub fn audit_config_with(
    database: &crate::suite::model::Database,
    orgs: Option<(String, String)>,
    lookup: Option<&Lookup<'_>>,
    seeds: Vec<(String, String)>,
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
            seeds,
        }),
        model: database.tenant_model(),
        tenant_schemas: database.tenant_schemas.as_ref().map(|t| db::SchemaTenants {
            schemas: t.schemas.clone(),
            role: t.role.clone().unwrap_or_else(|| "{schema}".into()),
            shared: t.shared.clone(),
        }),
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
    if database.probe.is_some() {
        for t in &tables {
            for rule in [
                "probe_no_tenant",
                "probe_random_tenant",
                "probe_b_sees_no_a",
                "probe_move_row",
                "probe_seed_rows",
                "layer_verdicts",
            ] {
                out.push(format!("{t}.{rule}"));
            }
        }
        out.push("role.<app_role>.probe_app_role".into());
    }
    if database.tenant_schemas.is_some() {
        out.push("database.tenant_schemas_found".into());
        out.push("schema.<tenant schema>.schema_isolation".into());
        if database.probe.is_some() {
            out.push(crate::db::carry_over::ID.into());
        }
    }
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
    let (mut results, catalog) = db::audit_snapshot(cfg, redactor).await;
    em.catalog(catalog);
    let (failed, passed) = em.http_verdicts();
    let layers = layer_verdicts(&results, failed, passed);
    results.extend(layers);
    for r in results {
        if selection.keeps(&r.id, &r.check) {
            em.result(r);
        }
    }
    notices
}

/// The rules whose failure on a table means its database layer does not hold on its
/// own: RLS off, not forced, not keyed or open, or the probe saw a leak.
const LAYER_RULES: &[&str] = &[
    "rls_enabled",
    "rls_forced",
    "policy_tenant_key",
    "policy_fail_open",
    "policy_constant_true",
    "insert_with_check",
    "app_role_owner",
    "probe_no_tenant",
    "probe_random_tenant",
    "probe_b_sees_no_a",
    "probe_move_row",
];

/// One verdict per layer: for each tenant table where the probe (as A) found A's seeded
/// rows (`probe_seed_rows`), `schema.table.layer_verdicts` puts the database verdict
/// next to the HTTP verdict. "Isolated by the application only" — the API held but the
/// database does not (RLS off, unforced, bypassed, or a probe leak) — is a failure: the
/// promise is that each layer holds on its own. Emitted as a database result, so
/// reports need nothing new.
pub(crate) fn layer_verdicts(
    db: &[CheckResult],
    http_failed: &[String],
    http_passed: usize,
) -> Vec<CheckResult> {
    let http_held = http_failed.is_empty() && http_passed > 0;
    // Role-wide holes hold for every table.
    let role_wide: Vec<String> = db
        .iter()
        .filter(|r| {
            r.verdict == Verdict::Fail
                && matches!(
                    r.variant.as_str(),
                    "app_role_superuser" | "app_role_bypassrls" | "probe_app_role"
                )
        })
        .map(|r| format!("{} ({})", r.variant, r.check))
        .collect();
    let mut out = Vec::new();
    for seen in db
        .iter()
        .filter(|r| r.variant == "probe_seed_rows" && r.verdict == Verdict::Pass)
    {
        let table = &seen.check;
        let holes: Vec<String> = db
            .iter()
            .filter(|r| {
                &r.check == table
                    && r.verdict == Verdict::Fail
                    && LAYER_RULES.contains(&r.variant.as_str())
            })
            .map(|r| r.variant.clone())
            .collect();
        let http_text = if http_held {
            format!("holds: {http_passed} HTTP checks and attacks passed")
        } else if http_failed.is_empty() {
            "not decided: no HTTP check passed".to_string()
        } else {
            format!(
                "does not hold: {} failed ({})",
                http_failed.len(),
                http_failed
                    .iter()
                    .take(3)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let db_text = if holes.is_empty() {
            "holds: RLS enabled, forced and keyed; the probe saw none of A's rows as another tenant"
                .to_string()
        } else {
            format!("does not hold: {}", holes.join(", "))
        };
        // Role-wide holes are reported once, as role results; named here, not repeated
        // as a failure of every table.
        let role_text = (!role_wide.is_empty()).then(|| {
            format!(
                "the table's own RLS is judged here; role-wide findings reported once: {}",
                role_wide.join(", ")
            )
        });
        let (verdict, summary) = match (holes.is_empty(), http_held) {
            (false, true) => (
                Verdict::Fail,
                format!(
                    "isolated by the application only: the API held, but the database does not ({}); each layer must hold on its own",
                    holes.join(", ")
                ),
            ),
            (false, false) => (
                Verdict::Fail,
                format!(
                    "neither layer is proven: the database does not hold ({})",
                    holes.join(", ")
                ),
            ),
            (true, _) if role_text.is_some() => (
                Verdict::Pass,
                format!(
                    "A's seeded rows are here and this table's RLS holds, but see the role-wide findings; HTTP {http_text}"
                ),
            ),
            (true, _) => (
                Verdict::Pass,
                format!(
                    "A's seeded rows are here and the database holds on its own; HTTP {http_text}"
                ),
            ),
        };
        out.push(
            CheckResult::new(
                format!("{table}.layer_verdicts"),
                table.clone(),
                "layer_verdicts",
                Layer::Database,
                verdict,
                summary,
            )
            .with("http", http_text)
            .with("database", db_text)
            .with("seeds", seen.summary.clone()),
        );
        if let (Some(t), Some(last)) = (role_text, out.last_mut()) {
            *last = last.clone().with("role-wide", t);
        }
    }
    out
}
