//! Schema-per-tenant mode (database layer → **tenant schemas**): tenants isolated by
//! schema (django-tenants, apartment), not by a tenant column. Each tenant schema has
//! its own role (named from a template, `{schema}_app`); that role must be able to use
//! its own schema (the positive control) and no other tenant's schema or tables.
//! Read-only catalog queries on the audit's connection; pure judgement.
//!
//! Results: `schema.<name>.schema_isolation` per tenant schema, and
//! `database.tenant_schemas_found` (an error when the patterns match no schema: an
//! audit of nothing cannot pass).

use std::time::Instant;

use tokio_postgres::Client;

use super::config::SchemaTenants;
use super::error::DbError;
use crate::outcome::{CheckResult, Layer, Verdict};

/// What one tenant role may do in one other tenant's schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reach {
    /// The tenant schema whose role this is.
    pub schema: String,
    /// The role.
    pub role: String,
    /// Another tenant's schema.
    pub other: String,
    /// The role has USAGE on `other`.
    pub usage: bool,
    /// Tables, views and sequences of `other` the role holds a privilege on.
    pub objects: i64,
}

/// One tenant schema as found: its role, whether the role exists and can use its own
/// schema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantSchema {
    /// The schema.
    pub schema: String,
    /// Its role (from the template).
    pub role: String,
    /// The role exists.
    pub exists: bool,
    /// The role has USAGE on its own schema.
    pub own_usage: bool,
    /// Every role has USAGE on this schema (a grant to PUBLIC).
    pub public_usage: bool,
}

/// The role of `schema` per the template (`{schema}` replaced).
pub fn role_for(template: &str, schema: &str) -> String {
    template.replace("{schema}", schema)
}

/// Whether `pattern` (a trailing `*` matches a prefix) names `schema`.
fn matches(pattern: &str, schema: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(p) => schema.starts_with(p),
        None => pattern == schema,
    }
}

/// Reads the tenant schemas and what each tenant role can reach, in two queries.
pub async fn load(
    client: &Client,
    cfg: &SchemaTenants,
) -> Result<(Vec<TenantSchema>, Vec<Reach>), DbError> {
    let all: Vec<String> = client
        .query(
            "SELECT nspname::text FROM pg_namespace WHERE nspname !~ '^pg_' \
             AND nspname <> 'information_schema' ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| DbError::query("tenant schemas", &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let schemas: Vec<String> = all
        .into_iter()
        .filter(|s| cfg.schemas.iter().any(|p| matches(p, s)))
        .filter(|s| !cfg.shared.contains(s))
        .collect();
    let roles: Vec<String> = schemas.iter().map(|s| role_for(&cfg.role, s)).collect();
    let rows = client
        .query(
            "WITH t AS (SELECT s, r, EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) AS ok \
                        FROM unnest($1::text[], $2::text[]) AS x(s, r)) \
             SELECT a.s, a.r, a.ok, b.s, \
                    a.ok AND has_schema_privilege(a.r, b.s, 'USAGE'), \
                    CASE WHEN a.ok THEN (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                        WHERE n.nspname = b.s AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') \
                          AND (CASE WHEN c.relkind = 'S' THEN has_sequence_privilege(a.r, c.oid, 'USAGE,SELECT,UPDATE') \
                               ELSE has_table_privilege(a.r, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE') END)) \
                    ELSE 0 END, \
                    EXISTS (SELECT 1 FROM pg_namespace n, aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) x \
                            WHERE n.nspname = b.s AND x.grantee = 0 AND x.privilege_type = 'USAGE') \
             FROM t a CROSS JOIN t b ORDER BY a.s, b.s",
            &[&schemas, &roles],
        )
        .await
        .map_err(|e| DbError::query("tenant schema privileges", &e))?;
    let mut found: Vec<TenantSchema> = Vec::new();
    let mut reach = Vec::new();
    for r in rows {
        let (s, role, ok, other): (String, String, bool, String) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let (usage, objects, public): (bool, i64, bool) = (r.get(4), r.get(5), r.get(6));
        if s == other {
            found.push(TenantSchema {
                schema: s,
                role,
                exists: ok,
                own_usage: usage,
                public_usage: public,
            });
        } else {
            reach.push(Reach {
                schema: s,
                role,
                other,
                usage,
                objects,
            });
        }
    }
    Ok((found, reach))
}

/// Judges the tenant schemas: one `schema.<s>.schema_isolation` per schema.
pub fn judge(
    cfg: &SchemaTenants,
    schemas: &[TenantSchema],
    reach: &[Reach],
    started: Instant,
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    let found = if schemas.is_empty() {
        CheckResult::new(
            "database.tenant_schemas_found",
            "database",
            "tenant_schemas_found",
            Layer::Database,
            Verdict::Error,
            format!(
                "no schema matches the tenant schemas ({}): an audit of nothing cannot pass; check tenant_schemas.schemas",
                cfg.schemas.join(", ")
            ),
        )
    } else {
        CheckResult::new(
            "database.tenant_schemas_found",
            "database",
            "tenant_schemas_found",
            Layer::Database,
            Verdict::Pass,
            format!("{} tenant schemas", schemas.len()),
        )
    };
    out.push(found);
    for s in schemas {
        let id = format!("schema.{}.schema_isolation", s.schema);
        let object = format!("schema.{}", s.schema);
        let mk = |v: Verdict, summary: String| {
            CheckResult::new(
                id.clone(),
                object.clone(),
                "schema_isolation",
                Layer::Database,
                v,
                summary,
            )
            .with("role", s.role.clone())
        };
        if !s.exists {
            out.push(mk(
                Verdict::Error,
                format!(
                    "tenant role {} does not exist: set tenant_schemas.role to the template of the tenants' roles (e.g. {{schema}}_app)",
                    s.role
                ),
            ));
            continue;
        }
        let mine: Vec<&Reach> = reach.iter().filter(|r| r.schema == s.schema).collect();
        // USAGE through a PUBLIC grant is reported once, on the schema that grants it.
        let public = |name: &str| schemas.iter().any(|x| x.schema == name && x.public_usage);
        let used: Vec<&Reach> = mine
            .iter()
            .copied()
            .filter(|r| r.usage && !public(&r.other))
            .collect();
        let latent: Vec<&Reach> = mine
            .iter()
            .copied()
            .filter(|r| !r.usage && r.objects > 0)
            .collect();
        let r = if !used.is_empty() {
            let names: Vec<String> = used
                .iter()
                .map(|r| format!("{} ({} objects)", r.other, r.objects))
                .collect();
            let mut r = mk(
                Verdict::Fail,
                format!(
                    "tenant role {} can use other tenants' schemas: {}",
                    s.role,
                    names.join(", ")
                ),
            );
            for u in &used {
                r = r.with(
                    "fix",
                    format!(
                        "REVOKE ALL ON SCHEMA {} FROM {}; REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {};",
                        u.other, s.role, u.other, s.role
                    ),
                );
            }
            r
        } else if s.public_usage {
            mk(
                Verdict::Fail,
                format!(
                    "every role has USAGE on schema {} (granted to PUBLIC): other tenants' roles can use it",
                    s.schema
                ),
            )
            .with(
                "fix",
                format!(
                    "REVOKE USAGE ON SCHEMA {} FROM PUBLIC; GRANT USAGE ON SCHEMA {} TO {};",
                    s.schema, s.schema, s.role
                ),
            )
        } else if !s.own_usage {
            mk(
                Verdict::Warn,
                format!(
                    "tenant role {} cannot use its own schema {}: it can reach no tenant's data (fails closed), so isolation is not shown",
                    s.role, s.schema
                ),
            )
        } else if !latent.is_empty() {
            let names: Vec<String> = latent
                .iter()
                .map(|r| format!("{} ({} objects)", r.other, r.objects))
                .collect();
            mk(
                Verdict::Warn,
                format!(
                    "tenant role {} holds privileges on other tenants' tables, unusable only because it lacks USAGE on their schemas: {}",
                    s.role,
                    names.join(", ")
                ),
            )
        } else {
            mk(
                Verdict::Pass,
                format!(
                    "tenant role {} uses its own schema and no other tenant's ({} others)",
                    s.role,
                    mine.len()
                ),
            )
        };
        out.push(r.timed(started.elapsed()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_and_roles() {
        assert!(matches("tenant_*", "tenant_a"));
        assert!(!matches("tenant_*", "public"));
        assert!(matches("acme", "acme"));
        assert_eq!(role_for("{schema}_app", "tenant_a"), "tenant_a_app");
    }

    #[test]
    fn a_role_reaching_another_schema_fails_and_names_it() {
        let cfg = SchemaTenants {
            schemas: vec!["t_*".into()],
            role: "{schema}_app".into(),
            shared: vec![],
        };
        let s = |n: &str| TenantSchema {
            schema: n.into(),
            role: format!("{n}_app"),
            exists: true,
            own_usage: true,
            public_usage: false,
        };
        let reach = vec![
            Reach {
                schema: "t_a".into(),
                role: "t_a_app".into(),
                other: "t_b".into(),
                usage: true,
                objects: 2,
            },
            Reach {
                schema: "t_b".into(),
                role: "t_b_app".into(),
                other: "t_a".into(),
                usage: false,
                objects: 0,
            },
        ];
        let out = judge(&cfg, &[s("t_a"), s("t_b")], &reach, Instant::now());
        assert_eq!(out[0].verdict, Verdict::Pass);
        assert_eq!(out[1].verdict, Verdict::Fail);
        assert!(
            out[1].summary.contains("t_b (2 objects)"),
            "{}",
            out[1].summary
        );
        assert_eq!(out[2].verdict, Verdict::Pass);
        let none = judge(&cfg, &[], &[], Instant::now());
        assert_eq!(none[0].verdict, Verdict::Error);
    }
}
