//! The audit-log promise (run → **promise checks: audit log** → results): "every data
//! access is recorded in an immutable audit log that no tenant can read across".
//!
//! Two parts:
//! - [`check_catalog`] (`Layer::Database`, next to the catalog audit): for each audit
//!   table the suite names (or, when it names none, every table called `audit%`), the
//!   application role cannot UPDATE, DELETE or TRUNCATE it — not directly, not through
//!   a role it is a member of (inherited or reachable with `SET ROLE`), not as its
//!   owner, and not through a `SECURITY DEFINER` function it may execute whose owner
//!   can and whose body does — and RLS is enabled and forced on it. Read-only.
//! - [`judge_runtime`] (`Layer::Http`, after seeding): given the audit rows A and B see
//!   (from the API's audit endpoint or the probe), each seeded write of A produced a row
//!   A sees, and B sees none of them.

use serde_json::Value;
use tokio_postgres::Client;

use super::{PromiseError, qualified, redact_all, result, split_table};
use crate::outcome::{CheckResult, Layer, Verdict};
use crate::redact::Redactor;

/// One audit table as the catalog shows it.
struct AuditTable {
    oid: u32,
    schema: String,
    name: String,
    rls: bool,
    force: bool,
    policies: i64,
}

/// The catalog rules over `tables` (`schema.table` or `table`; empty: every
/// `audit%` table outside the system schemas) for `app_role`. `client` is any role
/// that can read the catalogs (the database audit's connection).
pub async fn check_catalog(client: &Client, tables: &[String], app_role: &str) -> Vec<CheckResult> {
    match catalog_rules(client, tables, app_role).await {
        Ok(r) => r,
        Err(e) => vec![result(
            "audit_log",
            "catalog",
            Layer::Database,
            Verdict::Error,
            e.to_string(),
        )],
    }
}

/// [`check_catalog`] on a new read-only connection to `url`.
pub async fn check_catalog_url(
    url: &str,
    tables: &[String],
    app_role: &str,
    redactor: &Redactor,
) -> Vec<CheckResult> {
    redactor.add_url_password("database URL password", url);
    let mut out = match crate::db::read_only_client(url).await {
        Ok(c) => check_catalog(&c, tables, app_role).await,
        Err(e) => vec![result(
            "audit_log",
            "catalog",
            Layer::Database,
            Verdict::Error,
            e.to_string(),
        )],
    };
    redact_all(&mut out, redactor);
    out
}

const TABLE_SQL: &str = "\
SELECT c.oid, n.nspname::text, c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ";

async fn find_tables(client: &Client, tables: &[String]) -> Result<Vec<AuditTable>, PromiseError> {
    let row = |r: &tokio_postgres::Row| AuditTable {
        oid: r.get(0),
        schema: r.get(1),
        name: r.get(2),
        rls: r.get(3),
        force: r.get(4),
        policies: r.get(5),
    };
    if tables.is_empty() {
        let sql = format!("{TABLE_SQL} AND c.relname LIKE 'audit%' ORDER BY 2, 3");
        let rows = client
            .query(&sql, &[])
            .await
            .map_err(|e| PromiseError::query("find audit tables", &e))?;
        return Ok(rows.iter().map(row).collect());
    }
    let mut out = Vec::new();
    for t in tables {
        let (s, n) = split_table(t);
        let sql = format!("{TABLE_SQL} AND c.oid = to_regclass($1)");
        let rows = client
            .query(&sql, &[&qualified(&s, &n)])
            .await
            .map_err(|e| PromiseError::query("find audit tables", &e))?;
        match rows.first() {
            Some(r) => out.push(row(r)),
            None => {
                return Err(PromiseError::Query {
                    step: "find audit tables",
                    reason: format!("the audit table `{t}` does not exist (or is not a table)"),
                });
            }
        }
    }
    Ok(out)
}

async fn catalog_rules(
    client: &Client,
    tables: &[String],
    app_role: &str,
) -> Result<Vec<CheckResult>, PromiseError> {
    let role = client
        .query_opt(
            "SELECT oid, rolsuper FROM pg_roles WHERE rolname = $1",
            &[&app_role],
        )
        .await
        .map_err(|e| PromiseError::query("find the app role", &e))?;
    let Some(role) = role else {
        return Err(PromiseError::Query {
            step: "find the app role",
            reason: format!("the role `{app_role}` does not exist: check database.app_role"),
        });
    };
    let superuser: bool = role.get(1);
    let found = find_tables(client, tables).await?;
    if found.is_empty() {
        return Ok(vec![result(
            "audit_log",
            "catalog",
            Layer::Database,
            Verdict::Skip,
            "no audit table named and none found by name (audit%): name it in promises.audit_log.tables",
        )]);
    }
    let mut out = Vec::new();
    for t in &found {
        out.extend(privilege_rules(client, t, app_role, superuser).await?);
        out.push(definer_rule(client, t, app_role).await?);
        out.push(rls_rule(t));
    }
    Ok(out)
}

fn object(t: &AuditTable) -> String {
    format!("audit_log.{}.{}", t.schema, t.name)
}

async fn privilege_rules(
    client: &Client,
    t: &AuditTable,
    app_role: &str,
    superuser: bool,
) -> Result<Vec<CheckResult>, PromiseError> {
    // Every role the app role can act as (itself, inherited roles, SET ROLE targets)
    // and what each may do to the table; the owner may do everything.
    let rows = client
        .query(
            "SELECT r.rolname::text, r.rolname = $1, \
                    has_table_privilege(r.oid, $2::oid, 'UPDATE') \
                      OR has_any_column_privilege(r.oid, $2::oid, 'UPDATE'), \
                    has_table_privilege(r.oid, $2::oid, 'DELETE'), \
                    has_table_privilege(r.oid, $2::oid, 'TRUNCATE'), \
                    r.oid = (SELECT relowner FROM pg_class WHERE oid = $2::oid) \
             FROM pg_roles r, pg_roles app \
             WHERE app.rolname = $1 AND pg_has_role(app.oid, r.oid, 'MEMBER') \
             ORDER BY 2 DESC, 1",
            &[&app_role, &t.oid],
        )
        .await
        .map_err(|e| PromiseError::query("audit table privileges", &e))?;
    let mut out = Vec::new();
    for (k, (rule, cmd)) in [
        ("no_update", "UPDATE"),
        ("no_delete", "DELETE"),
        ("no_truncate", "TRUNCATE"),
    ]
    .into_iter()
    .enumerate()
    {
        let mut ways: Vec<String> = Vec::new();
        if superuser {
            ways.push(format!("{app_role} is a superuser"));
        }
        for r in &rows {
            let (name, direct, can, owner): (String, bool, bool, bool) =
                (r.get(0), r.get(1), r.get(2 + k), r.get(5));
            if owner {
                ways.push(format!("{app_role} can act as {name}, the table's owner"));
            } else if can && direct {
                ways.push(format!(
                    "{app_role} holds {cmd} directly (or through PUBLIC or an inherited role)"
                ));
            } else if can {
                ways.push(format!(
                    "{app_role} can act as {name} (membership), which holds {cmd}"
                ));
            }
        }
        let table = qualified(&t.schema, &t.name);
        out.push(if ways.is_empty() {
            result(&object(t), rule, Layer::Database, Verdict::Pass, format!("{app_role} cannot {cmd} {table}"))
        } else {
            result(
                &object(t),
                rule,
                Layer::Database,
                Verdict::Fail,
                format!("{app_role} can {cmd} the audit table {table}: the log is not append-only"),
            )
            .with("how", ways.join("\n"))
            .with("fix", format!("REVOKE {cmd} ON {table} FROM {app_role} (and from the roles it can act as); do not let it own the table"))
        });
    }
    Ok(out)
}

async fn definer_rule(
    client: &Client,
    t: &AuditTable,
    app_role: &str,
) -> Result<CheckResult, PromiseError> {
    let rows = client
        .query(
            "SELECT n.nspname::text || '.' || p.proname::text || '(' || \
                    pg_get_function_identity_arguments(p.oid) || ')', \
                    pg_get_userbyid(p.proowner)::text, pg_get_functiondef(p.oid) \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.prosecdef AND p.prokind IN ('f', 'p') \
               AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' \
               AND has_function_privilege($1, p.oid, 'EXECUTE') \
               AND (has_table_privilege(p.proowner, $2::oid, 'UPDATE') \
                    OR has_any_column_privilege(p.proowner, $2::oid, 'UPDATE') \
                    OR has_table_privilege(p.proowner, $2::oid, 'DELETE') \
                    OR has_table_privilege(p.proowner, $2::oid, 'TRUNCATE')) \
             ORDER BY 1",
            &[&app_role, &t.oid],
        )
        .await
        .map_err(|e| PromiseError::query("definer functions", &e))?;
    let mut writes = Vec::new();
    let mut dynamic = Vec::new();
    for r in &rows {
        let (sig, owner, body): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        match modifies(&body, &t.schema, &t.name) {
            Some(cmd) => writes.push(format!("{sig} (owner {owner}) runs {cmd} on it")),
            None if normalized(&body).contains("execute ") => {
                dynamic.push(format!("{sig} (owner {owner}) runs dynamic SQL"));
            }
            None => {}
        }
    }
    let table = qualified(&t.schema, &t.name);
    Ok(if !writes.is_empty() {
        result(
            &object(t),
            "no_definer_writes",
            Layer::Database,
            Verdict::Fail,
            format!("{app_role} can modify {table} through a SECURITY DEFINER function"),
        )
        .with("functions", writes.join("\n"))
        .with("fix", format!("REVOKE EXECUTE ON FUNCTION ... FROM {app_role}, PUBLIC; or make the function SECURITY INVOKER"))
    } else if !dynamic.is_empty() {
        result(
            &object(t),
            "no_definer_writes",
            Layer::Database,
            Verdict::Warn,
            format!("a SECURITY DEFINER function {app_role} may execute runs dynamic SQL as a role that can modify {table}: unverified"),
        )
        .with("functions", dynamic.join("\n"))
    } else {
        result(
            &object(t),
            "no_definer_writes",
            Layer::Database,
            Verdict::Pass,
            format!("no SECURITY DEFINER function {app_role} may execute modifies {table}"),
        )
    })
}

/// Lower case, quotes dropped, whitespace collapsed.
fn normalized(body: &str) -> String {
    body.to_lowercase()
        .replace('"', "")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The command (`UPDATE`, `DELETE`, `TRUNCATE`) a function body runs on the table.
fn modifies(body: &str, schema: &str, table: &str) -> Option<&'static str> {
    let b = normalized(body);
    let (s, t) = (schema.to_lowercase(), table.to_lowercase());
    let names = [t.clone(), format!("{s}.{t}")];
    let heads = [
        ("UPDATE", vec!["update ", "update only "]),
        ("DELETE", vec!["delete from ", "delete from only "]),
        (
            "TRUNCATE",
            vec![
                "truncate ",
                "truncate table ",
                "truncate only ",
                "truncate table only ",
            ],
        ),
    ];
    for (cmd, prefixes) in heads {
        for p in &prefixes {
            for n in &names {
                let needle = format!("{p}{n}");
                let mut from = 0;
                while let Some(i) = b[from..].find(&needle) {
                    let end = from + i + needle.len();
                    let next = b[end..].chars().next();
                    let before = b[..from + i].chars().next_back();
                    let boundary = |c: Option<char>| {
                        !c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
                    };
                    if boundary(next) && boundary(before) {
                        return Some(cmd);
                    }
                    from = end;
                }
            }
        }
    }
    None
}

fn rls_rule(t: &AuditTable) -> CheckResult {
    let table = qualified(&t.schema, &t.name);
    let state = format!(
        "relrowsecurity = {}, relforcerowsecurity = {}, {} polic{}",
        t.rls,
        t.force,
        t.policies,
        if t.policies == 1 { "y" } else { "ies" }
    );
    let r = if !t.rls || !t.force {
        result(
            &object(t),
            "rls_forced",
            Layer::Database,
            Verdict::Fail,
            format!(
                "RLS is not {} on the audit table {table}",
                if t.rls { "forced" } else { "enabled" }
            ),
        )
        .with(
            "fix",
            format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;"),
        )
    } else if t.policies == 0 {
        result(
            &object(t),
            "rls_forced",
            Layer::Database,
            Verdict::Warn,
            format!(
                "RLS is forced on {table} but it has no policy: no tenant can read its own audit rows"
            ),
        )
    } else {
        result(
            &object(t),
            "rls_forced",
            Layer::Database,
            Verdict::Pass,
            format!("RLS enabled and forced on {table}"),
        )
    };
    r.with("catalog", state)
}

/// One write A's seed made, and the ids it captured (row ids, not secrets).
#[derive(Clone, Debug)]
pub struct SeededWrite {
    /// The seed step's name.
    pub step: String,
    /// Values that identify what it wrote (captured ids).
    pub ids: Vec<String>,
}

/// The audit rows in an answer: at the JSONPath `path` when given (every match, arrays
/// flattened), else the answer itself when it is an array, else its first array under
/// `items`, `data`, `rows`, `entries`, `events` or `results`.
pub fn rows_at(body: &Value, path: Option<&str>) -> Result<Vec<Value>, String> {
    if let Some(p) = path {
        let jp = serde_json_path::JsonPath::parse(p)
            .map_err(|e| format!("`{p}` is not a JSONPath: {e}"))?;
        let mut out = Vec::new();
        for v in jp.query(body).all() {
            match v {
                Value::Array(a) => out.extend(a.iter().cloned()),
                other => out.push(other.clone()),
            }
        }
        return Ok(out);
    }
    if let Value::Array(a) = body {
        return Ok(a.clone());
    }
    for k in ["items", "data", "rows", "entries", "events", "results"] {
        if let Some(Value::Array(a)) = body.get(k) {
            return Ok(a.clone());
        }
    }
    Err("the answer is neither an array nor an object with an array under items, data, rows, entries, events or results: give promises.audit_log.rows".into())
}

/// True when a leaf of `v` is `id` (or, for ids of 8 characters or more, contains it).
fn mentions(v: &Value, id: &str) -> bool {
    match v {
        Value::String(s) => s == id || (id.len() >= 8 && s.contains(id)),
        Value::Number(n) => n.to_string() == id,
        Value::Array(a) => a.iter().any(|x| mentions(x, id)),
        Value::Object(o) => o.values().any(|x| mentions(x, id)),
        _ => false,
    }
}

/// The runtime rule: for each of A's seeded writes, `recorded` (a row A sees mentions
/// one of its ids) and `isolated` (no row B sees does). `promise.audit_log.STEP.*`,
/// `Layer::Http`.
pub fn judge_runtime(
    writes: &[SeededWrite],
    a_rows: &[Value],
    b_rows: &[Value],
) -> Vec<CheckResult> {
    let mut out = Vec::new();
    for w in writes {
        let obj = format!("audit_log.{}", super::slug(&w.step));
        let ids: Vec<&String> = w.ids.iter().filter(|i| !i.is_empty()).collect();
        if ids.is_empty() {
            for claim in ["recorded", "isolated"] {
                out.push(result(
                    &obj,
                    claim,
                    Layer::Http,
                    Verdict::Skip,
                    format!("seed step `{}` captured no id to look for", w.step),
                ));
            }
            continue;
        }
        let hit = |rows: &[Value]| {
            rows.iter()
                .filter(|r| ids.iter().any(|i| mentions(r, i)))
                .count()
        };
        let (in_a, in_b) = (hit(a_rows), hit(b_rows));
        let seen = format!(
            "A sees {} audit row(s), B sees {}; ids looked for: {}",
            a_rows.len(),
            b_rows.len(),
            ids.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.push(
            if in_a > 0 {
                result(
                    &obj,
                    "recorded",
                    Layer::Http,
                    Verdict::Pass,
                    format!("{in_a} audit row(s) visible to A record `{}`", w.step),
                )
            } else {
                result(
                    &obj,
                    "recorded",
                    Layer::Http,
                    Verdict::Fail,
                    format!(
                        "no audit row visible to A records the seeded write `{}`",
                        w.step
                    ),
                )
            }
            .with("audit rows", seen.clone()),
        );
        out.push(
            if in_b > 0 {
                result(
                    &obj,
                    "isolated",
                    Layer::Http,
                    Verdict::Fail,
                    format!("B sees {in_b} audit row(s) of A's write `{}`", w.step),
                )
                .with(
                    "B got",
                    b_rows
                        .iter()
                        .filter(|r| ids.iter().any(|i| mentions(r, i)))
                        .take(3)
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            } else if in_a == 0 {
                result(
                    &obj,
                    "isolated",
                    Layer::Http,
                    Verdict::Skip,
                    format!("A has no audit row of `{}` that B could see", w.step),
                )
            } else {
                result(
                    &obj,
                    "isolated",
                    Layer::Http,
                    Verdict::Pass,
                    format!("B sees none of A's audit rows of `{}`", w.step),
                )
            }
            .with("audit rows", seen),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn finds_modifying_statements() {
        assert_eq!(
            modifies(
                "BEGIN UPDATE public.audit_log SET x = 1; END",
                "public",
                "audit_log"
            ),
            Some("UPDATE")
        );
        assert_eq!(
            modifies(
                "delete  from \"audit_log\" where true",
                "public",
                "audit_log"
            ),
            Some("DELETE")
        );
        assert_eq!(
            modifies("TRUNCATE TABLE audit_log", "public", "audit_log"),
            Some("TRUNCATE")
        );
        assert_eq!(
            modifies("insert into audit_log values (1)", "public", "audit_log"),
            None
        );
        assert_eq!(
            modifies("update audit_log_archive set x=1", "public", "audit_log"),
            None
        );
    }

    #[test]
    fn runtime_rule() {
        let w = vec![SeededWrite {
            step: "create brand".into(),
            ids: vec!["b-123".into()],
        }];
        let a = vec![json!({"action": "create", "entity_id": "b-123"})];
        let r = judge_runtime(&w, &a, &[]);
        assert_eq!(
            r.iter().map(|r| r.verdict).collect::<Vec<_>>(),
            [Verdict::Pass, Verdict::Pass]
        );
        assert_eq!(r[0].id, "promise.audit_log.create-brand.recorded");
        let r = judge_runtime(&w, &a, &a);
        assert_eq!(r[1].verdict, Verdict::Fail);
        let r = judge_runtime(&w, &[], &[]);
        assert_eq!(r[0].verdict, Verdict::Fail);
        assert_eq!(r[1].verdict, Verdict::Skip);
    }

    #[test]
    fn rows_in_answers() {
        assert_eq!(rows_at(&json!([1, 2]), None).unwrap().len(), 2);
        assert_eq!(rows_at(&json!({"items": [1]}), None).unwrap().len(), 1);
        assert_eq!(
            rows_at(&json!({"x": {"y": [1, 2, 3]}}), Some("$.x.y"))
                .unwrap()
                .len(),
            3
        );
        assert!(rows_at(&json!({"x": 1}), None).is_err());
    }
}
