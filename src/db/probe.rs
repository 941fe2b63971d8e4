//! The live probe: queries every tenant table as the application's own role (run →
//! database layer → **probe** → results, `Layer::Probe`).
//!
//! **Who.** The probe connects with its URL's login role and acts as each app role in
//! turn (`SET LOCAL ROLE`, inside its transaction): Supabase's `authenticator` probes as
//! `anon` and as `authenticated`. An app role that bypasses RLS behind the login role is
//! exercised, and reported (`role.<r>.probe_app_role`).
//!
//! **As whom.** The tenant setting (`app.current_org_id`), and the caller's identity:
//! the settings of [`ProbeConfig::settings`] (A's and B's values, rendered from the
//! captures) and the model's identity settings (a random user: `request.jwt.claims`
//! JSON, `request.jwt.claim.sub`, `app.user_id`).
//!
//! **Nothing outlives it.** Each connection runs in ONE transaction that always ends in
//! `ROLLBACK`. Every step on a table is a PL/pgSQL block that raises a private SQLSTATE
//! at its end, so its subtransaction is rolled back whether the step succeeded or was
//! refused: a row created for A, a row B moved, a `set_config(..., true)` — all undone at
//! once. `lock_timeout` and `statement_timeout` keep a probe from hanging behind the
//! application's locks (a timeout is an error, never a pass).
//!
//! **Speed.** The steps of many tables travel in one `DO` block (one round trip), and
//! the tables are split into parts on up to [`MAX_CONNECTIONS`] connections.
//!
//! The probe refuses to log in as a superuser or a BYPASSRLS role: those see every row,
//! so every probe as them proves nothing.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::catalog;
use super::config::{ProbeConfig, ProbeSetting, TenantModel};
use super::error::{DbError, error_result, pg_message};
use super::rules::TenantTable;
use super::sql::{qualified, quote_ident};
use crate::outcome::{CheckResult, Layer, Verdict};

/// What one probe step found.
#[derive(Clone, Debug)]
enum Step<T> {
    /// The statement ran.
    Ran(T),
    /// The database refused it (permission, policy, invalid value): isolation held.
    Refused(String),
    /// Timed out or lock wait: cannot be decided.
    Undecided(String),
}

/// The most connections the probe opens. Each runs its share of the tables in its own
/// transaction (always rolled back); few enough not to crowd an application's pool.
pub const MAX_CONNECTIONS: usize = 4;

/// Tables per connection below which one more connection is not worth its setup.
const MIN_TABLES_PER_CONNECTION: usize = 64;

/// Tables whose steps travel in one `DO` block.
const TABLES_PER_BATCH: usize = 125;

/// How many connections probe `tables` tables.
fn connections_for(tables: usize) -> usize {
    tables
        .div_ceil(MIN_TABLES_PER_CONNECTION)
        .clamp(1, MAX_CONNECTIONS)
}

/// The SQLSTATE a step raises to roll itself back (caught by the step itself).
const ROLLBACK_STATE: &str = "TGP01";

/// The setting a `DO` block leaves its report in (transaction-local).
const OUT_SETTING: &str = "tenantgate.probe_out";

/// What the probe knows about the caller's identity and the tenants.
struct Plan<'a> {
    /// The tenant setting (lower case).
    setting: Option<&'a str>,
    /// Org A and org B (ids as text).
    orgs: Option<(&'a str, &'a str)>,
    /// Settings set as A and as B besides the tenant setting.
    settings: &'a [ProbeSetting],
    /// Settings set for a random user (name, value), besides a random tenant.
    random_user: Vec<(String, String)>,
    /// A's seeded ids (capture name, value).
    seeds: &'a [(String, String)],
}

impl Plan<'_> {
    /// Whether the probe has any way to name a tenant or a user.
    fn can_set_tenant(&self) -> bool {
        self.setting.is_some() || !self.settings.is_empty()
    }

    fn can_randomise(&self) -> bool {
        self.setting.is_some() || !self.random_user.is_empty()
    }

    /// The settings of A (`b = false`) or B, tenant setting first.
    fn as_org(&self, b: bool) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let (Some(s), Some((oa, ob))) = (self.setting, self.orgs) {
            out.push((s.to_string(), if b { ob } else { oa }.to_string()));
        }
        for p in self.settings {
            out.push((p.name.clone(), if b { &p.b } else { &p.a }.clone()));
        }
        out
    }
}

/// One role the probe acts as: `set` is `None` for the login role itself.
#[derive(Clone, Debug)]
struct Actor {
    name: String,
    set: Option<String>,
}

impl Actor {
    fn preamble(&self) -> String {
        match &self.set {
            Some(r) => format!("SET LOCAL ROLE {}; ", quote_ident(r)),
            None => "SET LOCAL ROLE NONE; ".into(),
        }
    }
}

/// Runs every probe over `tables`. `setting` is the tenant setting (lower case);
/// `app_roles` the audit's app roles (acted as when the config names none).
///
/// The tables are split into contiguous parts, one per connection (at most
/// [`MAX_CONNECTIONS`]; an extra connection that cannot be opened only lowers the
/// concurrency). Results come out in the same order as one connection would give them.
pub async fn run(
    cfg: &ProbeConfig,
    tables: &[TenantTable],
    setting: Option<&str>,
    model: &TenantModel,
    app_roles: &[String],
) -> Vec<CheckResult> {
    // Every connection is opened at once (each costs a backend start and an
    // authentication); an extra one that fails only lowers the concurrency.
    let connects =
        (0..connections_for(tables.len())).map(|_| catalog::connect(&cfg.url, "probe URL"));
    let mut opened = join_all(connects.collect()).await.into_iter();
    let client = match opened.next() {
        Some(Ok(c)) => c,
        Some(Err(e)) => return vec![error_result("database.probe", Layer::Probe, &e)],
        None => return Vec::new(),
    };
    let login = match check_role(&client).await {
        Ok(l) => l,
        Err(e) => return vec![error_result("database.probe", Layer::Probe, &e)],
    };
    let mut out = Vec::new();
    let wanted: Vec<String> = if cfg.roles.is_empty() {
        app_roles.to_vec()
    } else {
        cfg.roles.clone()
    };
    let mut actors = Vec::new();
    for r in &wanted {
        if actors.iter().any(|a: &Actor| &a.name == r) {
            continue;
        }
        if *r == login {
            actors.push(Actor {
                name: r.clone(),
                set: None,
            });
            continue;
        }
        let (actor, result) = try_set_role(&client, &login, r).await;
        out.push(result);
        actors.extend(actor);
    }
    if wanted.is_empty() {
        actors.push(Actor {
            name: login.clone(),
            set: None,
        });
    }
    if actors.is_empty() {
        return out;
    }
    if tables.is_empty() {
        out.push(skip("database", "probe", "no tenant table to probe"));
        return out;
    }
    let facts = match table_facts(&client, tables).await {
        Ok(f) => f,
        Err(e) => {
            out.push(error_result("database.probe", Layer::Probe, &e));
            return out;
        }
    };
    let plan = Plan {
        setting,
        orgs: cfg.orgs.as_ref().map(|o| (o.a.as_str(), o.b.as_str())),
        settings: &cfg.settings,
        random_user: random_user(model, &cfg.settings),
        seeds: &cfg.seeds,
    };
    let mut clients = vec![client];
    clients.extend(opened.flatten());
    let per = tables.len().div_ceil(clients.len());
    let parts = clients
        .iter()
        .zip(tables.chunks(per).zip(facts.chunks(per)))
        .map(|(c, (part, facts))| probe_part(c, part, facts, &plan, &actors, setting));
    // Per actor, per kind: the results over every part, in table order.
    let mut per_actor: Vec<[Vec<CheckResult>; 4]> =
        actors.iter().map(|_| Default::default()).collect();
    let mut error = None;
    for part in join_all(parts.collect()).await {
        for (all, mine) in per_actor.iter_mut().zip(part.kinds) {
            for (a, m) in all.iter_mut().zip(mine) {
                a.extend(m);
            }
        }
        error = error.or(part.error);
    }
    let mut merged: Option<Vec<CheckResult>> = None;
    for (actor, kinds) in actors.iter().zip(per_actor) {
        let results = assemble(kinds, &plan);
        merged = Some(match merged {
            None => results,
            Some(mut first) => {
                super::merge_probe_results(&mut first, results, &actor.name);
                first
            }
        });
    }
    out.extend(merged.unwrap_or_default());
    if let Some(e) = error {
        out.push(error_result("database.probe", Layer::Probe, &e));
    }
    out
}

/// One actor's results in the order of the kinds, with a skip for each kind that
/// could not run.
fn assemble(kinds: [Vec<CheckResult>; 4], plan: &Plan<'_>) -> Vec<CheckResult> {
    let [no_tenant, random, b_sees_no_a, move_row] = kinds;
    let mut out = no_tenant;
    if plan.can_randomise() {
        out.extend(random);
    } else {
        out.push(skip(
            "database",
            "probe_random_tenant",
            "no tenant_setting, identity setting or probe setting configured: cannot set a tenant",
        ));
    }
    let why = match (plan.can_set_tenant(), plan.orgs) {
        (true, Some(_)) => None,
        (false, _) => Some(
            "no tenant_setting or probe settings configured: cannot set a tenant (give database.probe.settings, e.g. app.user_id from the captures)",
        ),
        (_, None) => Some(
            "no org ids: the A/B probes run under `tenantgate run`, after org A and org B are provisioned, or with `audit --tenant-a/--tenant-b`",
        ),
    };
    match why {
        None => {
            out.extend(b_sees_no_a);
            out.extend(move_row);
        }
        Some(why) => {
            for rule in ["probe_b_sees_no_a", "probe_move_row"] {
                out.push(skip("database", rule, why));
            }
        }
    }
    out
}

/// The login role's name; refuses a superuser or BYPASSRLS login.
async fn check_role(client: &Client) -> Result<String, DbError> {
    let row = client
        .query_one(
            "SELECT current_user::text, r.rolsuper, r.rolbypassrls FROM pg_roles r \
             WHERE r.rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| DbError::query("probe role", &e))?;
    let role: String = row
        .try_get(0)
        .map_err(|e| DbError::query("probe role", &e))?;
    let superuser: bool = row
        .try_get(1)
        .map_err(|e| DbError::query("probe role", &e))?;
    let bypass: bool = row
        .try_get(2)
        .map_err(|e| DbError::query("probe role", &e))?;
    if superuser || bypass {
        return Err(DbError::ProbeBypassesRls {
            role,
            how: if superuser {
                "a superuser"
            } else {
                "BYPASSRLS"
            },
        });
    }
    Ok(role)
}

/// Whether the login role can act as `role`; the `role.<role>.probe_app_role` result
/// says so (error: it cannot; fail: `role` bypasses RLS, so as it every row shows).
async fn try_set_role(client: &Client, login: &str, role: &str) -> (Option<Actor>, CheckResult) {
    let id = format!("role.{role}.probe_app_role");
    let object = format!("role.{role}");
    let mk = |v: Verdict, s: String| {
        CheckResult::new(
            id.clone(),
            object.clone(),
            "probe_app_role",
            Layer::Probe,
            v,
            s,
        )
    };
    let sql = format!(
        "BEGIN; SET LOCAL ROLE {}; SELECT r.rolsuper::text, r.rolbypassrls::text FROM pg_roles r WHERE r.rolname = current_user",
        quote_ident(role)
    );
    let got = client.simple_query(&sql).await;
    let _ = client.batch_execute("ROLLBACK").await;
    let row = match got {
        Ok(m) => m.into_iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some((r.get(0) == Some("true"), r.get(1) == Some("true")))
            }
            _ => None,
        }),
        Err(e) => {
            return (
                None,
                mk(
                    Verdict::Error,
                    format!(
                        "the probe URL's role {login} cannot SET ROLE to app role {role} ({}): GRANT {role} TO {login}, or give the probe {role}'s own URL",
                        pg_message(&e)
                    ),
                ),
            );
        }
    };
    let actor = Actor {
        name: role.to_string(),
        set: Some(role.to_string()),
    };
    let r = match row {
        Some((su, by)) if su || by => mk(
            Verdict::Fail,
            format!(
                "app role {role} is {}: RLS does not apply to it, so as {role} every tenant's rows are visible (probed through SET ROLE from {login})",
                if su { "a superuser" } else { "BYPASSRLS" }
            ),
        )
        .with("fix", format!("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS;", quote_ident(role))),
        _ => mk(
            Verdict::Pass,
            format!("probed as {role} through SET ROLE from the login role {login}"),
        ),
    };
    (Some(actor), r)
}

/// What the probe needs to know of a table beyond its name.
#[derive(Clone, Debug, Default)]
struct Facts {
    /// The table (or one of its partitions) has pages on disk: rows are, or were, there.
    on_disk: bool,
    /// The single-column primary key, if any (where A's seeded ids are looked up).
    pk: Option<String>,
    /// `INSERT` column list and values for a row of a tenant (the tenant column's value
    /// is added per org); `None` when a NOT NULL column has a type the probe cannot
    /// make a value of.
    insert: Option<(Vec<String>, Vec<String>)>,
}

/// The tables' facts, in one round trip: size on disk and the NOT NULL columns without a
/// default (catalog reads any role may make).
async fn table_facts(client: &Client, tables: &[TenantTable]) -> Result<Vec<Facts>, DbError> {
    let names: Vec<String> = tables
        .iter()
        .map(|t| qualified(&t.schema, &t.name))
        .collect();
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&names];
    let sizes = client.query(
        "SELECT t.i::int, coalesce(pg_relation_size(to_regclass(t.name)), 0) \
                + coalesce((SELECT sum(pg_relation_size(p.relid)) FROM pg_partition_tree(to_regclass(t.name)) p), 0) > 0 \
         FROM unnest($1::text[]) WITH ORDINALITY t(name, i)",
        &params,
    );
    let columns = client.query(
        "SELECT t.i::int, a.attname::text, format_type(a.atttypid, a.atttypmod), ty.typcategory::text, \
                (SELECT bt.typname::text FROM pg_type bt WHERE bt.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END) \
         FROM unnest($1::text[]) WITH ORDINALITY t(name, i) \
         JOIN pg_attribute a ON a.attrelid = to_regclass(t.name) \
         JOIN pg_type ty ON ty.oid = a.atttypid \
         WHERE a.attnum > 0 AND NOT a.attisdropped AND a.attnotnull AND NOT a.atthasdef \
           AND a.attidentity = '' AND a.attgenerated = '' ORDER BY 1, a.attnum",
        &params,
    );
    let pks = client.query(
        "SELECT t.i::int, a.attname::text FROM unnest($1::text[]) WITH ORDINALITY t(name, i) \
         JOIN pg_index x ON x.indrelid = to_regclass(t.name) AND x.indisprimary AND x.indnatts = 1 \
         JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]",
        &params,
    );
    let (sizes, columns, pks) = (sizes.await, columns.await, pks.await);
    let pks = pks.map_err(|e| DbError::query("probe primary keys", &e))?;
    let sizes = sizes.map_err(|e| DbError::query("probe table sizes", &e))?;
    let columns = columns.map_err(|e| DbError::query("probe table columns", &e))?;
    let mut facts: Vec<Facts> = tables
        .iter()
        .map(|_| Facts {
            on_disk: false,
            pk: None,
            insert: Some((Vec::new(), Vec::new())),
        })
        .collect();
    for r in pks {
        let i: i32 = r.get(0);
        if let Some(f) = facts.get_mut((i - 1) as usize) {
            f.pk = Some(r.get(1));
        }
    }
    for r in sizes {
        let i: i32 = r.get(0);
        if let Some(f) = facts.get_mut((i - 1) as usize) {
            f.on_disk = r.get(1);
        }
    }
    for r in columns {
        let i: i32 = r.get(0);
        let Some(f) = facts.get_mut((i - 1) as usize) else {
            continue;
        };
        let name: String = r.get(1);
        if tables[(i - 1) as usize]
            .column
            .as_ref()
            .is_some_and(|(c, _)| *c == name)
        {
            continue;
        }
        let ty: String = r.get(2);
        let category: String = r.get(3);
        let base: Option<String> = r.get(4);
        let value = value_of(&ty, &category, base.as_deref().unwrap_or(""));
        match (f.insert.as_mut(), value) {
            (Some((cols, vals)), Some(v)) => {
                cols.push(quote_ident(&name));
                vals.push(v);
            }
            _ => f.insert = None,
        }
    }
    Ok(facts)
}

/// A SQL expression of type `ty` for a NOT NULL column of a row the probe creates (and
/// rolls back); `None` when the probe cannot make one.
fn value_of(ty: &str, category: &str, base: &str) -> Option<String> {
    let mut b = [0u8; 8];
    let _ = crate::random::fill(&mut b);
    let n = u64::from_le_bytes(b);
    let v = match (category, base) {
        ("S", _) => "'tenantgate probe'".to_string(),
        ("N", "int2") => format!("{}", 1 + n % 32_000),
        ("N", "int4") => format!("{}", 1 + n % 2_000_000_000),
        ("N", _) => format!("{}", 1 + n % 9_000_000_000_000_000),
        ("B", _) => "false".into(),
        ("D", _) => "now()".into(),
        ("T", _) => "'0'".into(),
        ("A", _) => "'{}'".into(),
        ("I", _) => "'127.0.0.1'".into(),
        ("E", _) => format!("(enum_range(NULL::{ty}))[1]"),
        ("U", "uuid") => "gen_random_uuid()".into(),
        ("U", "json" | "jsonb") => "'{}'".into(),
        _ => return None,
    };
    Some(format!("CAST({v} AS {ty})"))
}

/// What one connection found on its part of the tables: per actor, the results of each
/// probe kind (no tenant, random tenant, B sees no A, move row), and the error that
/// stopped it.
struct Part {
    kinds: Vec<[Vec<CheckResult>; 4]>,
    error: Option<DbError>,
}

/// What one step reported: `fields` as the block wrote them, or the batch's error.
type Raw = Result<Vec<String>, String>;

/// Runs every kind over `tables` on one connection, for every actor, in ONE
/// transaction that is rolled back: first "as the session starts" for every actor
/// (before anything sets a setting), then the other kinds.
async fn probe_part(
    client: &Client,
    tables: &[TenantTable],
    facts: &[Facts],
    plan: &Plan<'_>,
    actors: &[Actor],
    setting: Option<&str>,
) -> Part {
    let mut kinds: Vec<[Vec<CheckResult>; 4]> = actors.iter().map(|_| Default::default()).collect();
    let result = async {
        begin(client).await?;
        let session_value: Option<String> = match setting {
            Some(s) => client
                .query_one("SELECT current_setting($1, true)", &[&s])
                .await
                .map_err(|e| DbError::query("probe setting", &e))?
                .try_get(0)
                .map_err(|e| DbError::query("probe setting", &e))?,
            None => None,
        };
        // Pass 1: once a setting has been set in a session (even transaction-locally and
        // rolled back) it reads as '' instead of NULL, so "as the session starts" is
        // measured for every actor before anything sets it.
        let mut first: Vec<HashMap<(usize, u8), Raw>> = Vec::new();
        for a in actors {
            let started = Instant::now();
            let mut raws = HashMap::new();
            for (ci, chunk) in tables.chunks(TABLES_PER_BATCH).enumerate() {
                let base = ci * TABLES_PER_BATCH;
                let steps: Vec<serde_json::Value> = chunk
                    .iter()
                    .enumerate()
                    .map(|(k, t)| count_json(base + k, 0, t, &[]))
                    .collect();
                run_batch(client, a, &steps, base, chunk.len(), &[0], &mut raws).await?;
            }
            let _ = started;
            first.push(raws);
        }
        for ((a, raws0), out) in actors.iter().zip(first).zip(kinds.iter_mut()) {
            let started = Instant::now();
            let mut raws = raws0;
            for (ci, chunk) in tables.chunks(TABLES_PER_BATCH).enumerate() {
                let base = ci * TABLES_PER_BATCH;
                let mut steps = Vec::new();
                let mut ks = Vec::new();
                for (k, t) in chunk.iter().enumerate() {
                    let i = base + k;
                    let f = &facts[i];
                    if let Some(s) = setting {
                        steps.push(count_json(i, 1, t, &[(s.to_string(), String::new())]));
                    }
                    if plan.can_randomise() {
                        let mut set = plan.random_user.clone();
                        if let Some(s) = setting {
                            let ty = t.column.as_ref().map(|(_, ty)| ty.as_str());
                            set.insert(0, (s.to_string(), random_tenant(ty)));
                        }
                        steps.push(count_json(i, 2, t, &set));
                    }
                    if let (true, Some((oa, ob)), Some((col, ty))) =
                        (plan.can_set_tenant(), plan.orgs, &t.column)
                    {
                        let (sa, sb) = (plan.as_org(false), plan.as_org(true));
                        steps.push(ab_step(i, t, col, ty, f, &sa, &sb, oa));
                        steps.push(move_step(i, t, col, ty, f, &sb, oa, ob));
                        if let (Some(pk), false) = (&f.pk, plan.seeds.is_empty()) {
                            steps.push(seed_step(i, t, pk, &sa, plan.seeds));
                        }
                    }
                }
                if setting.is_some() {
                    ks.push(1);
                }
                ks.extend([2, 3, 4, 5]);
                run_batch(client, a, &steps, base, chunk.len(), &ks, &mut raws).await?;
            }
            let took = started.elapsed() / tables.len().max(1) as u32;
            judge(
                tables,
                facts,
                plan,
                setting,
                session_value.as_deref(),
                &raws,
                took,
                out,
            );
        }
        rollback(client).await
    }
    .await;
    let error = result.err();
    if error.is_some() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    Part { kinds, error }
}

async fn begin(client: &Client) -> Result<(), DbError> {
    client
        .batch_execute(
            "BEGIN; SET LOCAL statement_timeout = '30s'; SET LOCAL lock_timeout = '3s'; \
             SET LOCAL idle_in_transaction_session_timeout = '60s'",
        )
        .await
        .map_err(|e| DbError::query("probe begin", &e))
}

async fn rollback(client: &Client) -> Result<(), DbError> {
    client
        .batch_execute("ROLLBACK")
        .await
        .map_err(|e| DbError::query("probe rollback", &e))
}

/// Sends one `DO` block of steps as `actor` and reads its report into `raws`, keyed by
/// (table index, kind). A block refused as a whole (a statement timeout, PL/pgSQL not
/// allowed) gives every step of `kinds` for its tables that error; the transaction is
/// then begun again.
async fn run_batch(
    client: &Client,
    actor: &Actor,
    steps: &[serde_json::Value],
    base: usize,
    n: usize,
    kinds: &[u8],
    raws: &mut HashMap<(usize, u8), Raw>,
) -> Result<(), DbError> {
    if steps.is_empty() {
        return Ok(());
    }
    let json = serde_json::Value::Array(steps.to_vec()).to_string();
    let mut tag = String::from("tgdo");
    while json.contains(&format!("${tag}")) {
        tag.push('x');
    }
    // The steps last: nothing in their text is ever taken for a marker.
    let program = PROGRAM
        .replace("@OUT@", OUT_SETTING)
        .replace("@ROLLBACK@", ROLLBACK_STATE)
        .replace("@STEPS@", &format!("${tag}j${json}${tag}j$"));
    let sql = format!(
        "{}DO ${tag}$ {program} ${tag}$; SELECT current_setting('{OUT_SETTING}', true)",
        actor.preamble()
    );
    let got = client.simple_query(&sql).await;
    match got {
        Ok(messages) => {
            let text = messages
                .iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .unwrap_or_default();
            for line in text.lines() {
                let fields: Vec<String> = line.split('\t').map(str::to_string).collect();
                let (Some(i), Some(k)) = (
                    fields.first().and_then(|x| x.parse::<usize>().ok()),
                    fields.get(1).and_then(|x| x.parse::<u8>().ok()),
                ) else {
                    continue;
                };
                raws.insert((i, k), Ok(fields));
            }
            Ok(())
        }
        Err(e) if e.is_closed() => Err(DbError::query("probe", &e)),
        Err(e) => {
            let msg = format!("the probe's batch was refused: {}", pg_message(&e));
            for i in base..base + n {
                for k in kinds {
                    raws.insert((i, *k), Err(msg.clone()));
                }
            }
            let _ = client.batch_execute("ROLLBACK").await;
            begin(client).await
        }
    }
}

/// The settings as the flat `[name, value, name, value, ...]` array a step takes.
fn flat(settings: &[(String, String)]) -> Vec<&str> {
    settings
        .iter()
        .flat_map(|(s, v)| [s.as_str(), v.as_str()])
        .collect()
}

/// `SELECT count(*) FROM t [WHERE col = CAST('value' AS type)]`.
fn count_sql(t: &TenantTable, only: Option<&str>) -> String {
    let table = qualified(&t.schema, &t.name);
    match (only, &t.column) {
        (Some(v), Some((col, ty))) => format!(
            "SELECT count(*) FROM {table} WHERE {} = CAST({} AS {ty})",
            quote_ident(col),
            literal(v)
        ),
        _ => format!("SELECT count(*) FROM {table}"),
    }
}

/// Kinds 0 (as the session starts), 1 (setting empty), 2 (random tenant): set, count.
fn count_json(i: usize, kind: u8, t: &TenantTable, set: &[(String, String)]) -> serde_json::Value {
    serde_json::json!({"i": i, "k": kind, "sa": flat(set), "q1": count_sql(t, None)})
}

/// `INSERT` of one row of org `org` (for a table where it has none); `None` when a NOT
/// NULL column has a type the probe cannot fill.
fn insert_sql(t: &TenantTable, col: &str, ty: &str, f: &Facts, org: &str) -> Option<String> {
    let (cols, vals) = f.insert.as_ref()?;
    let mut c = vec![quote_ident(col)];
    c.extend(cols.iter().cloned());
    let mut v = vec![format!("CAST({} AS {ty})", literal(org))];
    v.extend(vals.iter().cloned());
    Some(format!(
        "INSERT INTO {} ({}) VALUES ({})",
        qualified(&t.schema, &t.name),
        c.join(", "),
        v.join(", ")
    ))
}

/// Kind 3: as A, count A's rows (the positive control; `v1`, or `ea` when refused);
/// when there are none, create one (`v3`); as B, count A's rows (`v2`).
#[allow(clippy::too_many_arguments)]
fn ab_step(
    i: usize,
    t: &TenantTable,
    col: &str,
    ty: &str,
    f: &Facts,
    as_a: &[(String, String)],
    as_b: &[(String, String)],
    a: &str,
) -> serde_json::Value {
    serde_json::json!({
        "i": i, "k": 3, "sa": flat(as_a), "q1": count_sql(t, Some(a)),
        "ins": insert_sql(t, col, ty, f, a), "sb": flat(as_b), "q2": count_sql(t, Some(a)),
    })
}

/// Kind 4: as B, lock one of B's rows through a cursor (creating one when B has none:
/// `v3`) and move it to A with `WHERE CURRENT OF` (`v1` = rows moved, `v2` = 1 when a
/// row of B's was found).
///
/// Why a cursor: `UPDATE t SET col = A WHERE ctid = (SELECT ...)` reads the table's
/// columns, which makes PostgreSQL also check the new row against the SELECT policies —
/// that hides a WITH CHECK hole that INSERT or an unconditional UPDATE would still use.
#[allow(clippy::too_many_arguments)]
fn move_step(
    i: usize,
    t: &TenantTable,
    col: &str,
    ty: &str,
    f: &Facts,
    as_b: &[(String, String)],
    a: &str,
    b: &str,
) -> serde_json::Value {
    let table = qualified(&t.schema, &t.name);
    let c = quote_ident(col);
    serde_json::json!({
        "i": i, "k": 4, "sa": flat(as_b),
        "q1": format!("SELECT 1 FROM {table} WHERE {c} = CAST({} AS {ty}) LIMIT 1 FOR UPDATE", literal(b)),
        "ins": insert_sql(t, col, ty, f, b),
        "q2": format!("UPDATE {table} SET {c} = CAST({} AS {ty}) WHERE CURRENT OF ", literal(a)),
    })
}

/// Kind 5: as A, count the rows whose primary key is one of A's seeded ids.
fn seed_step(
    i: usize,
    t: &TenantTable,
    pk: &str,
    as_a: &[(String, String)],
    seeds: &[(String, String)],
) -> serde_json::Value {
    let values: Vec<String> = seeds.iter().map(|(_, v)| literal(v)).collect();
    serde_json::json!({
        "i": i, "k": 5, "sa": flat(as_a),
        "q1": format!(
            "SELECT count(*) FROM {} WHERE {}::text = ANY (ARRAY[{}]::text[])",
            qualified(&t.schema, &t.name),
            quote_ident(pk),
            values.join(", ")
        ),
    })
}

/// The program every batch runs: for each step (a JSON record), a subtransaction that
/// sets the step's settings, runs its statements and then raises [`ROLLBACK_STATE`], so
/// nothing it did survives it; the report line is `i, kind, stage (0 = completed), v1,
/// v2, v3, sqlstate, message, ea, e`. One compiled loop: each table costs only its own
/// statements.
const PROGRAM: &str = r#"DECLARE
  o text[] := '{}'; st record; s int; v1 bigint; v2 bigint; v3 bigint; e text; ea text;
  c refcursor; f int; j int;
BEGIN
  FOR st IN SELECT * FROM json_to_recordset(@STEPS@::json)
      AS x(i int, k int, sa text[], q1 text, ins text, sb text[], q2 text) LOOP
    s := 0; v1 := NULL; v2 := NULL; v3 := NULL; e := NULL; ea := NULL;
    BEGIN
      s := 1;
      FOR j IN 1..coalesce(array_length(st.sa, 1), 0) BY 2 LOOP
        PERFORM set_config(st.sa[j], st.sa[j + 1], true);
      END LOOP;
      IF st.k <= 2 OR st.k = 5 THEN
        s := 2; EXECUTE st.q1 INTO v1;
      ELSIF st.k = 3 THEN
        BEGIN
          EXECUTE st.q1 INTO v1;
        EXCEPTION WHEN others THEN
          ea := SQLSTATE || ' ' || translate(SQLERRM, E'\t\n\r', '   ');
        END;
        IF v1 = 0 THEN
          s := 3;
          IF st.ins IS NULL THEN
            v3 := 0; e := 'a NOT NULL column has a type the probe cannot fill';
          ELSE
            BEGIN
              EXECUTE st.ins; v3 := 1;
            EXCEPTION WHEN others THEN
              v3 := 0; e := SQLSTATE || ' ' || translate(SQLERRM, E'\t\n\r', '   ');
            END;
          END IF;
        END IF;
        s := 5;
        FOR j IN 1..coalesce(array_length(st.sb, 1), 0) BY 2 LOOP
          PERFORM set_config(st.sb[j], st.sb[j + 1], true);
        END LOOP;
        s := 6; EXECUTE st.q2 INTO v2;
      ELSE
        s := 2; c := NULL; OPEN c FOR EXECUTE st.q1; FETCH c INTO f;
        v2 := CASE WHEN FOUND THEN 1 ELSE 0 END;
        IF v2 = 0 THEN
          s := 3; CLOSE c;
          IF st.ins IS NULL THEN
            v3 := 0; e := 'a NOT NULL column has a type the probe cannot fill';
          ELSE
            BEGIN
              EXECUTE st.ins; v3 := 1;
            EXCEPTION WHEN others THEN
              v3 := 0; e := SQLSTATE || ' ' || translate(SQLERRM, E'\t\n\r', '   ');
            END;
          END IF;
          IF v3 = 1 THEN
            c := NULL; OPEN c FOR EXECUTE st.q1; FETCH c INTO f;
            v2 := CASE WHEN FOUND THEN 1 ELSE 0 END;
          END IF;
        END IF;
        IF v2 = 1 THEN
          s := 4; EXECUTE st.q2 || quote_ident(c::text); GET DIAGNOSTICS v1 = ROW_COUNT;
        END IF;
      END IF;
      RAISE EXCEPTION USING ERRCODE = '@ROLLBACK@';
    EXCEPTION
      WHEN SQLSTATE '@ROLLBACK@' THEN
        o := array_append(o, format(E'%s\t%s\t0\t%s\t%s\t%s\t\t\t%s\t%s', st.i, st.k, v1, v2, v3, ea, e));
      WHEN others THEN
        o := array_append(o, format(E'%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s', st.i, st.k, s, v1, v2, v3,
                               SQLSTATE, translate(SQLERRM, E'\t\n\r', '   '), ea, e));
    END;
  END LOOP;
  PERFORM set_config('@OUT@', array_to_string(o, E'\n'), true);
END"#;

/// A refused statement by SQLSTATE: a timeout or a lock wait cannot be decided;
/// anything else (permission, policy, invalid value) is a refusal.
fn classify_state<T>(state: &str, msg: &str) -> Step<T> {
    if state == "57014" || state == "55P03" {
        Step::Undecided(msg.to_string())
    } else {
        Step::Refused(msg.to_string())
    }
}

fn num(fields: &[String], at: usize) -> Option<i64> {
    fields.get(at).and_then(|x| x.parse().ok())
}

fn text(fields: &[String], at: usize) -> Option<&str> {
    fields.get(at).map(String::as_str).filter(|x| !x.is_empty())
}

/// A count step's outcome: the count, or the refusal at `stage` or later.
fn count_step(raw: Option<&Raw>) -> Step<i64> {
    match raw {
        None => Step::Undecided("the probe's batch did not report this step".into()),
        Some(Err(m)) => Step::Undecided(m.clone()),
        Some(Ok(f)) => match (num(f, 2), num(f, 3)) {
            (Some(0), Some(n)) => Step::Ran(n),
            (Some(0), None) => Step::Undecided("the count returned no number".into()),
            _ => classify_state(text(f, 6).unwrap_or(""), text(f, 7).unwrap_or("refused")),
        },
    }
}

fn describe(step: &Step<i64>) -> String {
    match step {
        Step::Ran(n) => format!("{n} rows"),
        Step::Refused(m) => format!("refused: {m}"),
        Step::Undecided(m) => format!("undecided: {m}"),
    }
}

fn shown(settings: &[(String, String)], who: &str) -> String {
    if settings.is_empty() {
        return "nothing set".into();
    }
    settings
        .iter()
        .map(|(s, _)| format!("{s} = {who}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Turns the raw step reports into results, per kind, in table order.
#[allow(clippy::too_many_arguments)]
fn judge(
    tables: &[TenantTable],
    facts: &[Facts],
    plan: &Plan<'_>,
    setting: Option<&str>,
    session_value: Option<&str>,
    raws: &HashMap<(usize, u8), Raw>,
    took: Duration,
    out: &mut [Vec<CheckResult>; 4],
) {
    let [no_tenant, random, b_sees_no_a, move_row] = out;
    for (i, t) in tables.iter().enumerate() {
        let f = &facts[i];
        // Evidence that the table holds rows the probe must not see.
        let a_rows = raws
            .get(&(i, 3))
            .and_then(|r| r.as_ref().ok())
            .and_then(|f| num(f, 3))
            .is_some_and(|n| n > 0);
        let has_rows = f.on_disk || a_rows;
        let nothing = "nothing to see: the table holds no row (none on disk), so seeing none proves nothing; seed rows (or run with --tenant-a/--tenant-b) to prove it";

        // probe_no_tenant
        let first = count_step(raws.get(&(i, 0)));
        let empty = setting.map(|_| count_step(raws.get(&(i, 1))));
        let steps: Vec<(&str, &Step<i64>)> = std::iter::once(("as the session starts", &first))
            .chain(empty.as_ref().map(|e| ("with the setting empty", e)))
            .collect();
        let leaked: Vec<String> = steps
            .iter()
            .filter(|(_, s)| matches!(s, Step::Ran(n) if *n > 0))
            .map(|(w, s)| format!("{w}: {}", describe(s)))
            .collect();
        let undecided = steps.iter().any(|(_, s)| matches!(s, Step::Undecided(_)));
        let all_refused = steps.iter().all(|(_, s)| matches!(s, Step::Refused(_)));
        let mut r = if !leaked.is_empty() {
            result(
                t,
                "probe_no_tenant",
                Verdict::Fail,
                format!(
                    "with no tenant set the app role sees rows ({})",
                    leaked.join("; ")
                ),
            )
        } else if undecided {
            result(
                t,
                "probe_no_tenant",
                Verdict::Error,
                "a probe query timed out, waited on a lock or was not run: retry when the table is not locked",
            )
        } else if !has_rows && !all_refused {
            result(t, "probe_no_tenant", Verdict::Skip, nothing)
        } else {
            result(
                t,
                "probe_no_tenant",
                Verdict::Pass,
                "no rows (or refused) with no tenant set",
            )
        };
        if let (Some(s), Some(v)) = (setting, session_value) {
            r = r.with(
                "session",
                format!(
                    "{s} is already '{v}' when the session starts (ALTER ROLE/DATABASE ... SET?)"
                ),
            );
        }
        for (w, s) in &steps {
            r = r.with("probe", format!("{w}: {}", describe(s)));
        }
        no_tenant.push(r.timed(took));

        // probe_random_tenant
        if plan.can_randomise() {
            let step = count_step(raws.get(&(i, 2)));
            let r = match &step {
                Step::Ran(n) if *n > 0 => result(
                    t,
                    "probe_random_tenant",
                    Verdict::Fail,
                    format!("a tenant (or user) that does not exist sees {n} rows"),
                ),
                Step::Undecided(_) => result(
                    t,
                    "probe_random_tenant",
                    Verdict::Error,
                    "the probe query timed out, waited on a lock or was not run: retry",
                ),
                Step::Ran(_) if !has_rows => {
                    result(t, "probe_random_tenant", Verdict::Skip, nothing)
                }
                _ => result(
                    t,
                    "probe_random_tenant",
                    Verdict::Pass,
                    "a tenant (or user) that does not exist sees no rows (or is refused)",
                ),
            };
            let mut names: Vec<String> = setting.map(|s| s.to_string()).into_iter().collect();
            names.extend(plan.random_user.iter().map(|(n, _)| n.clone()));
            random.push(
                r.with(
                    "probe",
                    format!("{} = a random value: {}", names.join(", "), describe(&step)),
                )
                .timed(took),
            );
        }

        // probe_b_sees_no_a, probe_move_row
        if !(plan.can_set_tenant() && plan.orgs.is_some()) {
            continue;
        }
        let Some((col, _)) = &t.column else {
            for (v, rule, why) in [
                (
                    &mut *b_sees_no_a,
                    "probe_b_sees_no_a",
                    "the table has no tenant column to compare",
                ),
                (
                    &mut *move_row,
                    "probe_move_row",
                    "the table has no tenant column to move",
                ),
            ] {
                v.push(result(t, rule, Verdict::Skip, why).timed(took));
            }
            continue;
        };
        let (sa, sb) = (plan.as_org(false), plan.as_org(true));
        b_sees_no_a.push(judge_ab(t, col, raws.get(&(i, 3)), &sa, &sb).timed(took));
        move_row.push(judge_move(t, col, raws.get(&(i, 4)), &sb).timed(took));
        if let Step::Ran(n) = count_step(raws.get(&(i, 5)))
            && n > 0
        {
            let names: Vec<&str> = plan.seeds.iter().map(|(n, _)| n.as_str()).collect();
            move_row.push(
                result(
                    t,
                    "probe_seed_rows",
                    Verdict::Pass,
                    format!("{n} of A's seeded rows are here (found as A by primary key)"),
                )
                .with("seeds", format!("looked up: {}", names.join(", ")))
                .timed(took),
            );
        }
    }
}

fn judge_ab(
    t: &TenantTable,
    col: &str,
    raw: Option<&Raw>,
    sa: &[(String, String)],
    sb: &[(String, String)],
) -> CheckResult {
    const RULE: &str = "probe_b_sees_no_a";
    let fields = match raw {
        Some(Ok(f)) => f.clone(),
        Some(Err(m)) => {
            return result(t, RULE, Verdict::Error, m.clone());
        }
        None => {
            return result(
                t,
                RULE,
                Verdict::Error,
                "the probe's batch did not report this step",
            );
        }
    };
    let stage = num(&fields, 2).unwrap_or(-1);
    let control: Step<i64> = match (num(&fields, 3), text(&fields, 8)) {
        (Some(n), _) => Step::Ran(n),
        (None, Some(ea)) => {
            let (state, msg) = ea.split_once(' ').unwrap_or((ea, ""));
            classify_state(state, msg)
        }
        (None, None) => Step::Undecided("the control was not run".into()),
    };
    let created = num(&fields, 5) == Some(1);
    let create_error = text(&fields, 9).map(str::to_string);
    let as_b: Step<i64> = match (stage, num(&fields, 4)) {
        (0, Some(n)) => Step::Ran(n),
        (6, _) => classify_state(
            text(&fields, 6).unwrap_or(""),
            text(&fields, 7).unwrap_or(""),
        ),
        _ => Step::Undecided(format!(
            "the probe stopped before B's count: {}",
            text(&fields, 7).unwrap_or("unknown")
        )),
    };
    let r = match (&control, &as_b) {
        (_, Step::Ran(n)) if *n > 0 => result(
            t,
            RULE,
            Verdict::Fail,
            format!(
                "as org B, {n} of org A's rows are visible{}",
                if created {
                    " (a row the probe created for A inside its rolled-back transaction)"
                } else {
                    ""
                }
            ),
        ),
        (_, Step::Undecided(m)) | (Step::Undecided(m), _) => result(
            t,
            RULE,
            Verdict::Error,
            format!("a probe query timed out or waited on a lock: retry ({m})"),
        ),
        (Step::Ran(0), _) if !created => result(
            t,
            RULE,
            Verdict::Skip,
            format!(
                "org A has no row here (as A) and the probe could not create one inside its rolled-back transaction ({}): nothing to hide; seed A's data to prove this table",
                create_error.as_deref().unwrap_or("not tried")
            ),
        ),
        (Step::Refused(_), Step::Refused(_)) => result(
            t,
            RULE,
            Verdict::Pass,
            "the app role cannot read this table at all",
        ),
        _ => result(
            t,
            RULE,
            Verdict::Pass,
            format!(
                "as org B, none of org A's rows are visible ({} as A{})",
                describe(&control),
                if created {
                    "; the probe created A's row inside its rolled-back transaction"
                } else {
                    ""
                }
            ),
        ),
    };
    r.with(
        "control as A",
        format!(
            "{}; count where {col} = A: {}{}",
            shown(sa, "A"),
            describe(&control),
            if created {
                " (then one row created for A, rolled back)"
            } else {
                ""
            }
        ),
    )
    .with(
        "as B",
        format!(
            "{}; count where {col} = A: {}",
            shown(sb, "B"),
            describe(&as_b)
        ),
    )
}

fn judge_move(
    t: &TenantTable,
    col: &str,
    raw: Option<&Raw>,
    sb: &[(String, String)],
) -> CheckResult {
    const RULE: &str = "probe_move_row";
    let fields = match raw {
        Some(Ok(f)) => f.clone(),
        Some(Err(m)) => return result(t, RULE, Verdict::Error, m.clone()),
        None => {
            return result(
                t,
                RULE,
                Verdict::Error,
                "the probe's batch did not report this step",
            );
        }
    };
    let table = qualified(&t.schema, &t.name);
    let c = quote_ident(col);
    let shown = format!(
        "{}; UPDATE {table} SET {c} = A WHERE CURRENT OF <a cursor on one of B's rows> (rolled back)",
        shown(sb, "B")
    );
    let stage = num(&fields, 2).unwrap_or(-1);
    let created = num(&fields, 5) == Some(1);
    let found = num(&fields, 4) == Some(1);
    let state = text(&fields, 6).unwrap_or("");
    let msg = text(&fields, 7).unwrap_or("").to_string();
    let r = match stage {
        0 if !found => result(
            t,
            RULE,
            Verdict::Skip,
            format!(
                "org B has no row in this table to move, and the probe could not create one inside its rolled-back transaction ({})",
                text(&fields, 9).unwrap_or("not tried")
            ),
        ),
        0 => match num(&fields, 3) {
            Some(0) => result(
                t,
                RULE,
                Verdict::Pass,
                "moving B's row to org A touched no row",
            ),
            Some(n) => result(
                t,
                RULE,
                Verdict::Fail,
                format!("org B moved {n} row(s) into org A (WITH CHECK lets it through)"),
            ),
            None => result(t, RULE, Verdict::Error, "the update reported no row count"),
        },
        _ => match classify_state::<()>(state, &msg) {
            Step::Undecided(m) => result(
                t,
                RULE,
                Verdict::Error,
                "the probe update timed out or waited on a lock: retry",
            )
            .with("error", m),
            _ => result(
                t,
                RULE,
                Verdict::Pass,
                "moving B's row to org A was refused",
            )
            .with("refusal", msg),
        },
    };
    let r = if created {
        r.with(
            "created",
            "B had no row: the probe created one as B inside its rolled-back transaction",
        )
    } else {
        r
    };
    r.with("probe", shown)
}

/// The settings of a user that does not exist: each probe setting with a value of the
/// same shape as A's (a uuid for a uuid, a negative number for a number, the JSON claims
/// with their ids replaced), then the model's identity settings not already given
/// (`request.jwt.claims` as JSON with a random `sub`, `request.jwt.claim.*` as
/// `request.jwt.claim.sub`, any other a random uuid).
fn random_user(model: &TenantModel, settings: &[ProbeSetting]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = settings
        .iter()
        .map(|p| (p.name.clone(), randomise(&p.a)))
        .collect();
    let have =
        |out: &Vec<(String, String)>, n: &str| out.iter().any(|(x, _)| x.eq_ignore_ascii_case(n));
    for s in &model.identity_settings {
        let (name, value) = match s.strip_suffix('*') {
            Some(prefix) => {
                let prefix = prefix.trim_end_matches('.');
                (format!("{prefix}.sub"), random_tenant(Some("uuid")))
            }
            None if s.ends_with("claims") => (
                s.clone(),
                serde_json::json!({"sub": random_tenant(Some("uuid")), "role": "authenticated"})
                    .to_string(),
            ),
            None => (s.clone(), random_tenant(Some("uuid"))),
        };
        if !have(&out, &name) {
            out.push((name, value));
        }
    }
    out
}

/// A value shaped like `sample` that names nobody.
fn randomise(sample: &str) -> String {
    let s = sample.trim();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(s)
        && v.is_object()
    {
        fn walk(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => m.values_mut().for_each(walk),
                serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
                serde_json::Value::Number(_) => {
                    *v = serde_json::Value::from(
                        random_tenant(Some("bigint")).parse::<i64>().unwrap_or(-1),
                    );
                }
                serde_json::Value::String(x) => {
                    let r = randomise(x);
                    *x = r;
                }
                _ => {}
            }
        }
        let mut v = v;
        walk(&mut v);
        return v.to_string();
    }
    if s.parse::<i64>().is_ok() {
        return random_tenant(Some("bigint"));
    }
    let uuid_like = s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if uuid_like {
        return random_tenant(Some("uuid"));
    }
    // Names, roles, e-mail addresses: kept (they say what kind of caller this is).
    sample.to_string()
}

/// Polls every future to completion on this task, giving their outputs in input order.
/// The probe's connections wait on the server, not on the CPU: one task is enough, and
/// the futures may borrow (no `'static` copies of the tables).
async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(done.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
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
    done.into_iter().flatten().collect()
}

fn skip(object: &str, rule: &str, why: &str) -> CheckResult {
    CheckResult::new(
        format!("{object}.{rule}"),
        object,
        rule,
        Layer::Probe,
        Verdict::Skip,
        why,
    )
}

fn result(
    t: &TenantTable,
    rule: &str,
    verdict: Verdict,
    summary: impl Into<String>,
) -> CheckResult {
    let object = format!("{}.{}", t.schema, t.name);
    CheckResult::new(
        format!("{object}.{rule}"),
        object,
        rule,
        Layer::Probe,
        verdict,
        summary,
    )
}

/// A value of the column's type that names no real tenant.
fn random_tenant(type_name: Option<&str>) -> String {
    let mut b = [0u8; 16];
    // Random bytes; a fixed pattern would do as well, randomness only avoids collisions.
    let _ = crate::random::fill(&mut b);
    let ty = type_name.unwrap_or("uuid").to_ascii_lowercase();
    if ty.starts_with("smallint") {
        format!("-{}", 1 + u16::from_le_bytes([b[0], b[1]]) % 30000)
    } else if ty.starts_with("integer") || ty.starts_with("int") {
        format!(
            "-{}",
            1 + u32::from_le_bytes([b[0], b[1], b[2], b[3]]) % 2_000_000_000
        )
    } else if ty.starts_with("bigint") || ty.starts_with("numeric") {
        format!(
            "-{}",
            1 + u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                % 9_000_000_000_000_000
        )
    } else if ty.starts_with("text")
        || ty.starts_with("character")
        || ty.starts_with("varchar")
        || ty.starts_with("citext")
    {
        format!("tenantgate-probe-{}", hex(&b[..8]))
    } else {
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex(&b);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

/// `value` as a dollar-quoted SQL literal (the `DO` blocks take no parameters).
fn literal(value: &str) -> String {
    let mut tag = String::from("tg");
    while value.contains(&format!("${tag}$")) || value.ends_with(&format!("${tag}")) {
        tag.push('x');
    }
    format!("${tag}${value}${tag}$")
}

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_tenants_fit_their_type() {
        let u = random_tenant(Some("uuid"));
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!(random_tenant(Some("bigint")).starts_with('-'));
        assert!(random_tenant(Some("integer")).parse::<i32>().is_ok());
        assert!(random_tenant(Some("smallint")).parse::<i16>().is_ok());
        assert!(random_tenant(Some("text")).starts_with("tenantgate-probe-"));
    }

    #[test]
    fn literals_cannot_be_escaped() {
        assert_eq!(literal("abc"), "$tg$abc$tg$");
        assert_eq!(literal("a$tg$b"), "$tgx$a$tg$b$tgx$");
        assert_eq!(literal("it's"), "$tg$it's$tg$");
        assert_eq!(literal("x$tg"), "$tgx$x$tg$tgx$");
    }

    #[test]
    fn random_users_keep_the_shape_of_a_real_one() {
        assert!(randomise("17").starts_with('-'));
        let u = randomise("00000000-0000-4000-8000-00000000000a");
        assert_eq!(u.len(), 36);
        assert_ne!(u, "00000000-0000-4000-8000-00000000000a");
        let j: serde_json::Value = serde_json::from_str(&randomise(
            r#"{"sub":"00000000-0000-4000-8000-00000000000a","role":"authenticated","org_id":7}"#,
        ))
        .unwrap();
        assert_eq!(j["role"], "authenticated");
        assert!(j["org_id"].as_i64().unwrap() < 0);
        assert_ne!(j["sub"], "00000000-0000-4000-8000-00000000000a");
        let m = TenantModel::supabase();
        let r = random_user(&m, &[]);
        let names: Vec<&str> = r.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["request.jwt.claims", "request.jwt.claim.sub"]);
        assert!(r[0].1.contains("\"role\":\"authenticated\""));
    }
}
