//! Catalog snapshot: everything the audit judges, read from `pg_catalog` in a fixed
//! number of set-based queries, inside one read-only transaction (run → database layer
//! → [`load`] → [`super::rules`]).
//!
//! Round trips do not grow with the number of tables: a policy count, one query for
//! the server and the roles, then seven queries sent together (pipelined on one
//! connection) for schemas, relations with the app role's privileges, tenant columns,
//! view dependencies, unique indexes without a tenant column, SECURITY DEFINER
//! functions and functions that read settings; the policies are deparsed alongside
//! (on large schemas by two helper connections that import the session's exported
//! snapshot). Everything else happens in Rust on the rows returned.

use std::time::Duration;

use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::DbError;
use super::tls;

/// A PostgreSQL object id.
pub type Oid = u32;

/// One role (`pg_roles`).
#[derive(Clone, Debug)]
pub struct RoleRow {
    pub oid: Oid,
    pub name: String,
    pub superuser: bool,
    pub bypassrls: bool,
    pub inherit: bool,
}

/// One membership grant (`pg_auth_members`): `member` is a member of `role`.
#[derive(Clone, Debug)]
pub struct MemberRow {
    pub role: Oid,
    pub member: Oid,
    /// The member has the role's privileges (PostgreSQL 16+: the grant's INHERIT option;
    /// before: the member's `rolinherit`).
    pub inherit: bool,
    /// The member may `SET ROLE` to it (PostgreSQL 16+: SET option; before: always).
    pub set: bool,
}

/// One schema that is not a system schema.
#[derive(Clone, Debug)]
pub struct SchemaRow {
    pub name: String,
    /// The app role has USAGE (`None` when no app role is known).
    pub app_usage: Option<bool>,
}

/// The app role's privileges on a relation (table-level or on any column).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Privs {
    pub select: bool,
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
    pub truncate: bool,
}

/// One relation in a non-system schema: table (`r`), partitioned table (`p`), view
/// (`v`), materialized view (`m`) or foreign table (`f`).
#[derive(Clone, Debug)]
pub struct RelRow {
    pub oid: Oid,
    pub schema: String,
    pub name: String,
    pub kind: char,
    pub rls: bool,
    pub force: bool,
    pub owner: Oid,
    pub parent: Option<Oid>,
    /// A view with `security_invoker` set to a true value.
    pub security_invoker: bool,
    /// The app role's privileges (`None` when no app role is known).
    pub privs: Option<Privs>,
}

/// A column whose name is one of the tenant column names.
#[derive(Clone, Debug)]
pub struct ColRow {
    pub rel: Oid,
    pub name: String,
    /// `format_type` output, usable in a cast.
    pub type_name: String,
}

/// One row-level security policy.
#[derive(Clone, Debug)]
pub struct PolicyRow {
    pub rel: Oid,
    pub name: String,
    /// `r` SELECT, `a` INSERT, `w` UPDATE, `d` DELETE, `*` ALL.
    pub cmd: char,
    pub permissive: bool,
    /// Role oids; `0` is PUBLIC.
    pub roles: Vec<Oid>,
    pub using: Option<String>,
    pub with_check: Option<String>,
}

/// A view or materialized view reading a relation (`pg_rewrite` → `pg_depend`).
#[derive(Clone, Copy, Debug)]
pub struct DepRow {
    pub view: Oid,
    pub relation: Oid,
}

/// A unique, non-primary-key index.
#[derive(Clone, Debug)]
pub struct IndexRow {
    pub rel: Oid,
    pub name: String,
    pub columns: Vec<String>,
    /// The definition, for expression indexes only.
    pub expression: Option<String>,
}

/// A foreign key: `rel` references `references`.
#[derive(Clone, Debug)]
pub struct FkRow {
    pub rel: Oid,
    pub references: Oid,
}

/// A SECURITY DEFINER function outside extensions.
#[derive(Clone, Debug)]
pub struct FuncRow {
    pub schema: String,
    pub name: String,
    /// Argument types, `oidvectortypes` form: `uuid, text`.
    pub args: String,
    pub owner: Oid,
    /// The app role (or PUBLIC, when no app role is known) may execute it.
    pub executable: bool,
    /// Its body (`prosrc`).
    pub source: String,
    /// Its `SET` options (`proconfig`: `search_path=public`).
    pub config: Vec<String>,
    /// It returns `trigger`: only triggers call it.
    pub trigger: bool,
}

/// A SQL or PL/pgSQL function (outside extensions): its body and parameter names.
#[derive(Clone, Debug, Default)]
pub struct SettingFnRow {
    pub name: String,
    pub source: String,
    pub arg_names: Vec<String>,
}

/// Everything read from the catalogs.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub server_version_num: i32,
    pub current_user: String,
    pub roles: Vec<RoleRow>,
    pub members: Vec<MemberRow>,
    /// The app role's oid, when one was asked for and exists.
    pub app_role: Option<Oid>,
    pub schemas: Vec<SchemaRow>,
    pub relations: Vec<RelRow>,
    pub tenant_columns: Vec<ColRow>,
    pub policies: Vec<PolicyRow>,
    pub deps: Vec<DepRow>,
    pub unique_indexes: Vec<IndexRow>,
    pub definer_functions: Vec<FuncRow>,
    pub setting_functions: Vec<SettingFnRow>,
    pub foreign_keys: Vec<FkRow>,
}

impl Catalog {
    /// Every row, one per line, sorted within each kind: the same database state gives
    /// the same text whatever order the server returned the rows in.
    pub fn canonical(&self) -> String {
        fn rows<T: std::fmt::Debug>(kind: &str, v: &[T], out: &mut String) {
            let mut lines: Vec<String> = v.iter().map(|r| format!("{kind} {r:?}")).collect();
            lines.sort();
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        let mut out = format!(
            "server {} user {:?} app_role {:?}\n",
            self.server_version_num, self.current_user, self.app_role
        );
        rows("role", &self.roles, &mut out);
        rows("member", &self.members, &mut out);
        rows("schema", &self.schemas, &mut out);
        rows("relation", &self.relations, &mut out);
        rows("column", &self.tenant_columns, &mut out);
        rows("policy", &self.policies, &mut out);
        rows("dep", &self.deps, &mut out);
        rows("unique", &self.unique_indexes, &mut out);
        rows("definer", &self.definer_functions, &mut out);
        rows("setting_fn", &self.setting_functions, &mut out);
        rows("fk", &self.foreign_keys, &mut out);
        out
    }
}

/// Non-system schemas (`n` is `pg_namespace`).
const USER_SCHEMA: &str = "n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'";

/// Opens the audit's session: a connection whose every transaction is read-only.
pub async fn read_only_client(url: &str) -> Result<Client, DbError> {
    let client = connect(url, "database URL").await?;
    client
        .batch_execute(
            "SET default_transaction_read_only = on; SET statement_timeout = '120s'; \
             SET lock_timeout = '5s'",
        )
        .await
        .map_err(|e| DbError::query("session setup", &e))?;
    Ok(client)
}

/// Connects as the connection string says, TLS included ([`super::tls`]: libpq's
/// `sslmode` and `sslrootcert`), with a connect timeout, mapping failures to what to do.
pub async fn connect(url: &str, what: &'static str) -> Result<Client, DbError> {
    let bad_url = |reason: String| DbError::BadUrl { what, reason };
    let (rest, policy) = tls::split(url).map_err(|e| bad_url(e.to_string()))?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e: tokio_postgres::Error| bad_url(e.to_string()))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_application_name().is_none() {
        config.application_name("tenantgate");
    }
    config.ssl_mode(match policy.mode {
        tls::SslMode::Disable => SslMode::Disable,
        tls::SslMode::Prefer => SslMode::Prefer,
        tls::SslMode::Require | tls::SslMode::VerifyCa | tls::SslMode::VerifyFull => {
            SslMode::Require
        }
    });
    let connected = match tls::client_config(&policy, what)? {
        None => config.connect(NoTls).await.map(|(client, connection)| {
            tokio::spawn(connection);
            client
        }),
        Some(rustls_config) => config
            .connect(MakeRustlsConnect::new(rustls_config))
            .await
            .map(|(client, connection)| {
                tokio::spawn(connection);
                client
            }),
    };
    // A connection's error, if any, surfaces on the next query as a closed connection.
    connected.map_err(|e| {
        tls::classify(what, policy.mode, &e).unwrap_or_else(|| DbError::connect(what, &e))
    })
}

/// How many extra connections deparse policies in parallel (`pg_get_expr` opens each
/// policy's table, which dominates the snapshot's cost on large schemas).
const POLICY_SHARDS: i64 = 2;

/// From how many policies on the helpers are used.
const PARALLEL_FROM: i64 = 2000;

/// Reads the catalog snapshot through the audit's session. `app_role` is looked up by
/// name; a missing role leaves [`Catalog::app_role`] empty.
///
/// The session exports its snapshot and `POLICY_SHARDS` helper connections (read-only
/// too) import it, so every query sees the same catalog state; the helpers deparse the
/// policies while the session reads everything else. When a helper cannot connect or
/// import the snapshot, the session runs its share itself.
pub async fn load(
    client: &Client,
    url: &str,
    app_role: Option<&str>,
    tenant_columns: &[String],
) -> Result<Catalog, DbError> {
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| DbError::query("begin", &e))?;
    // Helpers only pay off on large schemas; each costs a connection.
    let policy_count: i64 = client
        .query_one("SELECT count(*) FROM pg_policy", &[])
        .await
        .and_then(|r| r.try_get(0))
        .map_err(|e| DbError::query("policies", &e))?;
    let snapshot: Option<String> = if policy_count < PARALLEL_FROM {
        None
    } else {
        match client.query_one("SELECT pg_export_snapshot()", &[]).await {
            Ok(row) => row.try_get(0).ok(),
            Err(_) => {
                // e.g. on a standby: carry on in one session.
                let _ = client
                    .batch_execute("ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await;
                None
            }
        }
    };
    let helpers = async {
        match &snapshot {
            Some(id) => {
                let shards = (0..POLICY_SHARDS).map(|shard| helper_policies(url, id, shard));
                let mut out = Vec::new();
                for r in futures_join_all(shards).await {
                    out.push(r.ok());
                }
                out
            }
            // Small schema: the session deparses the policies itself, pipelined with
            // the other queries.
            None => vec![policies(client, None).await.ok()],
        }
    };
    let (main, helped) = tokio::join!(load_in_tx(client, app_role, tenant_columns), helpers);
    let result = async {
        let mut cat = main?;
        let shards_done = !helped.is_empty() && helped.iter().all(Option::is_some);
        if shards_done {
            for rows in helped.into_iter().flatten() {
                cat.policies.extend(rows);
            }
        } else {
            cat.policies = policies(client, None).await?;
        }
        Ok(cat)
    }
    .await;
    // Read-only either way; the transaction has nothing to keep.
    let _ = client.batch_execute("ROLLBACK").await;
    result
}

/// Polls futures of the same type concurrently, keeping their order.
async fn futures_join_all<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = (0..set.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

/// One helper: connect read-only, import the snapshot, deparse one shard of policies.
async fn helper_policies(url: &str, snapshot: &str, shard: i64) -> Result<Vec<PolicyRow>, DbError> {
    let c = read_only_client(url).await?;
    c.batch_execute(&format!(
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT '{}'",
        snapshot.replace('\'', "''")
    ))
    .await
    .map_err(|e| DbError::query("import snapshot", &e))?;
    let rows = policies(&c, Some(shard)).await;
    let _ = c.batch_execute("ROLLBACK").await;
    rows
}

/// The policies, deparsed; `shard` selects `polrelid % POLICY_SHARDS = shard`.
async fn policies(c: &Client, shard: Option<i64>) -> Result<Vec<PolicyRow>, DbError> {
    let sql = format!(
        "SELECT p.polrelid, p.polname::text, p.polcmd::text, p.polpermissive, p.polroles, \
           pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
         JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_SCHEMA} \
           AND ($1::int8 IS NULL OR p.polrelid::int8 % {POLICY_SHARDS} = $1::int8)"
    );
    let rows = q(c, "policies", &sql, &[&shard]).await?;
    rows.iter()
        .map(|r| {
            Ok(PolicyRow {
                rel: r.try_get(0).map_err(decode)?,
                name: r.try_get(1).map_err(decode)?,
                cmd: first_char(r.try_get(2).map_err(decode)?),
                permissive: r.try_get(3).map_err(decode)?,
                roles: r.try_get(4).map_err(decode)?,
                using: r.try_get(5).map_err(decode)?,
                with_check: r.try_get(6).map_err(decode)?,
            })
        })
        .collect()
}

async fn load_in_tx(
    client: &Client,
    app_role: Option<&str>,
    tenant_columns: &[String],
) -> Result<Catalog, DbError> {
    // Round trip 1: server, roles, memberships.
    let head = client
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_user::text",
            &[],
        )
        .await
        .map_err(|e| DbError::query("server version", &e))?;
    let server_version_num: i32 = head.try_get(0).map_err(decode)?;
    let members_sql = if server_version_num >= 160000 {
        "SELECT m.roleid, m.member, m.inherit_option, m.set_option FROM pg_auth_members m"
    } else {
        "SELECT m.roleid, m.member, r.rolinherit, true \
         FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member"
    };
    let (roles, members) = tokio::try_join!(
        client.query(
            "SELECT oid, rolname::text, rolsuper, rolbypassrls, rolinherit FROM pg_roles",
            &[]
        ),
        client.query(members_sql, &[]),
    )
    .map_err(|e| DbError::query("roles", &e))?;
    let roles: Vec<RoleRow> = decode_all(&roles, |r| {
        Ok(RoleRow {
            oid: r.try_get(0)?,
            name: r.try_get(1)?,
            superuser: r.try_get(2)?,
            bypassrls: r.try_get(3)?,
            inherit: r.try_get(4)?,
        })
    })?;
    let members = decode_all(&members, |r| {
        Ok(MemberRow {
            role: r.try_get(0)?,
            member: r.try_get(1)?,
            inherit: r.try_get(2)?,
            set: r.try_get(3)?,
        })
    })?;
    let app: Option<Oid> =
        app_role.and_then(|name| roles.iter().find(|r| r.name == name).map(|r| r.oid));

    // Round trip 2: everything else, pipelined.
    let Queries {
        schemas_sql,
        relations_sql,
        columns_sql,
        deps_sql,
        indexes_sql,
        functions_sql,
        setting_fns_sql,
    } = Queries::new();
    let cols: Vec<String> = tenant_columns.to_vec();
    let app_param: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&app];
    let cols_param: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&cols];
    let (schemas, relations, columns, deps, indexes, functions, setting_fns, fks) = tokio::try_join!(
        q(client, "schemas", &schemas_sql, &app_param),
        q(client, "relations", &relations_sql, &app_param),
        q(client, "tenant columns", &columns_sql, &cols_param),
        q(client, "view dependencies", &deps_sql, &[]),
        q(client, "unique indexes", &indexes_sql, &cols_param),
        q(client, "definer functions", &functions_sql, &app_param),
        q(client, "setting functions", &setting_fns_sql, &[]),
        q(
            client,
            "foreign keys",
            "SELECT DISTINCT conrelid, confrelid FROM pg_constraint WHERE contype = 'f'",
            &[]
        ),
    )?;

    let relations: Vec<RelRow> = relations
        .iter()
        .map(rel_row)
        .collect::<Result<_, DbError>>()?;
    let known: std::collections::HashSet<Oid> = relations.iter().map(|r| r.oid).collect();
    let mut tenant_columns = Vec::new();
    for r in &columns {
        let rel: Oid = r.try_get(0).map_err(decode)?;
        if known.contains(&rel) {
            tenant_columns.push(ColRow {
                rel,
                name: r.try_get(1).map_err(decode)?,
                type_name: r.try_get(2).map_err(decode)?,
            });
        }
    }
    Ok(Catalog {
        server_version_num,
        current_user: head.try_get(1).map_err(decode)?,
        roles,
        members,
        app_role: app,
        schemas: decode_all(&schemas, |r| {
            Ok(SchemaRow {
                name: r.try_get(0)?,
                app_usage: r.try_get(1)?,
            })
        })?,
        relations,
        tenant_columns,
        policies: Vec::new(),
        deps: decode_all(&deps, |r| {
            Ok(DepRow {
                view: r.try_get(0)?,
                relation: r.try_get(1)?,
            })
        })?,
        unique_indexes: decode_all(&indexes, |r| {
            Ok(IndexRow {
                rel: r.try_get(0)?,
                name: r.try_get(1)?,
                columns: r.try_get(2)?,
                expression: r.try_get(3)?,
            })
        })?,
        definer_functions: decode_all(&functions, |r| {
            Ok(FuncRow {
                schema: r.try_get(0)?,
                name: r.try_get(1)?,
                args: r.try_get(2)?,
                owner: r.try_get(3)?,
                executable: r.try_get(4)?,
                source: r.try_get(5)?,
                config: r.try_get(6)?,
                trigger: r.try_get(7)?,
            })
        })?,
        foreign_keys: decode_all(&fks, |r| {
            Ok(FkRow {
                rel: r.try_get(0)?,
                references: r.try_get(1)?,
            })
        })?,
        setting_functions: decode_all(&setting_fns, |r| {
            Ok(SettingFnRow {
                name: r.try_get(0)?,
                source: r.try_get(1)?,
                arg_names: r.try_get(2)?,
            })
        })?,
    })
}

/// The snapshot's set-based queries (`$1` is the app role's oid or the tenant columns).
struct Queries {
    schemas_sql: String,
    relations_sql: String,
    columns_sql: String,
    deps_sql: String,
    indexes_sql: String,
    functions_sql: String,
    setting_fns_sql: String,
}

impl Queries {
    fn new() -> Queries {
        let schemas_sql = format!(
            "SELECT n.nspname::text, CASE WHEN $1::oid IS NULL THEN NULL \
               ELSE has_schema_privilege($1::oid, n.oid, 'USAGE') END \
             FROM pg_namespace n WHERE {USER_SCHEMA}"
        );
        let relations_sql = format!(
            "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text, c.relrowsecurity, \
               c.relforcerowsecurity, c.relowner, i.inhparent, \
               coalesce(c.reloptions::text[], '{{}}'::text[]), \
               CASE WHEN $1::oid IS NULL THEN NULL ELSE ARRAY[ \
                 has_any_column_privilege($1::oid, c.oid, 'SELECT'), \
                 has_any_column_privilege($1::oid, c.oid, 'INSERT'), \
                 has_any_column_privilege($1::oid, c.oid, 'UPDATE'), \
                 has_table_privilege($1::oid, c.oid, 'DELETE'), \
                 has_table_privilege($1::oid, c.oid, 'TRUNCATE')] END \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_inherits i ON i.inhrelid = c.oid AND c.relispartition \
             WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {USER_SCHEMA}"
        );
        // Filtered to known relations in Rust: cheaper than joining pg_class here.
        let columns_sql = "SELECT a.attrelid, a.attname::text, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a \
             WHERE a.attname = ANY($1::text[]::name[]) AND a.attnum > 0 AND NOT a.attisdropped";
        let deps_sql = format!(
            "SELECT DISTINCT r.ev_class, d.refobjid FROM pg_rewrite r \
             JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = r.oid \
               AND d.refclassid = 'pg_class'::regclass AND d.refobjid <> r.ev_class \
             JOIN pg_class v ON v.oid = r.ev_class JOIN pg_namespace n ON n.oid = v.relnamespace \
             WHERE v.relkind IN ('v', 'm') AND {USER_SCHEMA}"
        );
        // Only unique indexes that contain none of the tenant columns (usually none).
        let indexes_sql = format!(
            "SELECT x.indrelid, ic.relname::text, \
               ARRAY(SELECT a.attname::text FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(n, o) \
                     JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o), \
               CASE WHEN x.indexprs IS NOT NULL THEN pg_get_indexdef(x.indexrelid) END \
             FROM pg_index x JOIN pg_class ic ON ic.oid = x.indexrelid \
             JOIN pg_class c ON c.oid = x.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE x.indisunique AND NOT x.indisprimary AND {USER_SCHEMA} \
               AND NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = x.indrelid \
                     AND a.attnum = ANY(x.indkey::int2[]) AND a.attname = ANY($1::text[]::name[]))"
        );
        let functions_sql = format!(
            "SELECT n.nspname::text, p.proname::text, oidvectortypes(p.proargtypes), p.proowner, \
               CASE WHEN $1::oid IS NULL THEN (p.proacl IS NULL OR EXISTS ( \
                   SELECT 1 FROM aclexplode(p.proacl) x \
                   WHERE x.grantee = 0 AND x.privilege_type = 'EXECUTE')) \
                 ELSE has_function_privilege($1::oid, p.oid, 'EXECUTE') END, \
               p.prosrc, coalesce(p.proconfig, '{{}}'::text[]), \
               p.prorettype = 'trigger'::regtype \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE p.prosecdef AND {USER_SCHEMA} AND NOT EXISTS ( \
               SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
                 AND d.objid = p.oid AND d.deptype = 'e')"
        );
        // Every SQL and PL/pgSQL function outside extensions: the bodies that policy
        // helpers (`current_org_id()`, `is_member(org_id)`) are judged by.
        let setting_fns_sql = format!(
            "SELECT p.proname::text, p.prosrc, coalesce(p.proargnames::text[], '{{}}'::text[]) \
             FROM pg_proc p \
             JOIN pg_namespace n ON n.oid = p.pronamespace \
             JOIN pg_language l ON l.oid = p.prolang \
             WHERE l.lanname IN ('sql', 'plpgsql') AND {USER_SCHEMA} AND NOT EXISTS ( \
               SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass \
                 AND d.objid = p.oid AND d.deptype = 'e')"
        );
        Queries {
            schemas_sql,
            relations_sql,
            columns_sql: columns_sql.to_string(),
            deps_sql,
            indexes_sql,
            functions_sql,
            setting_fns_sql,
        }
    }
}

async fn q(
    client: &Client,
    step: &'static str,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Row>, DbError> {
    client
        .query(sql, params)
        .await
        .map_err(|e| DbError::query(step, &e))
}

fn first_char(s: String) -> char {
    s.chars().next().unwrap_or('?')
}

fn rel_row(r: &Row) -> Result<RelRow, DbError> {
    let options: Vec<String> = r.try_get(8).map_err(decode)?;
    let privs: Option<Vec<bool>> = r.try_get(9).map_err(decode)?;
    Ok(RelRow {
        oid: r.try_get(0).map_err(decode)?,
        schema: r.try_get(1).map_err(decode)?,
        name: r.try_get(2).map_err(decode)?,
        kind: first_char(r.try_get(3).map_err(decode)?),
        rls: r.try_get(4).map_err(decode)?,
        force: r.try_get(5).map_err(decode)?,
        owner: r.try_get(6).map_err(decode)?,
        parent: r.try_get(7).map_err(decode)?,
        security_invoker: options.iter().any(|o| {
            o.split_once('=').is_some_and(|(k, v)| {
                k.eq_ignore_ascii_case("security_invoker")
                    && matches!(v.to_ascii_lowercase().as_str(), "true" | "on" | "yes" | "1")
            })
        }),
        privs: privs.map(|p| Privs {
            select: p.first().copied().unwrap_or(false),
            insert: p.get(1).copied().unwrap_or(false),
            update: p.get(2).copied().unwrap_or(false),
            delete: p.get(3).copied().unwrap_or(false),
            truncate: p.get(4).copied().unwrap_or(false),
        }),
    })
}

/// Decodes every row with `f`; a column of an unexpected type is a query error.
fn decode_all<T>(
    rows: &[Row],
    f: impl Fn(&Row) -> Result<T, tokio_postgres::Error>,
) -> Result<Vec<T>, DbError> {
    rows.iter().map(|r| f(r).map_err(decode)).collect()
}

fn decode(e: tokio_postgres::Error) -> DbError {
    DbError::query("decoding catalog rows", &e)
}
