//! The live probe: queries every tenant table as the application's own role (run →
//! database layer → **probe** → results, `Layer::Probe`).
//!
//! Each probe kind runs in ONE transaction that always ends in `ROLLBACK`; every step on
//! a table runs inside a savepoint that is rolled back right after it, so a refusal
//! (permission denied, a policy violation) does not end the transaction and a row
//! moved by `probe_move_row` never outlives its step. The tenant is set with
//! `set_config(setting, value, true)` (transaction-local). `lock_timeout` and
//! `statement_timeout` keep a probe from hanging behind the application's locks.
//!
//! Speed: a step is one round trip (a simple-query batch holding the savepoint, the
//! tenant, the statement and the rollback to the savepoint), and the tables are split
//! into parts on up to [`MAX_CONNECTIONS`] connections, each running every kind over
//! its part in its own transactions.
//!
//! The probe refuses to run as a superuser or a BYPASSRLS role: those see every row,
//! so every probe would pass for the wrong reason.

use std::time::Instant;

use tokio_postgres::Client;

use super::catalog;
use super::config::ProbeConfig;
use super::error::{DbError, error_result, pg_message};
use super::rules::TenantTable;
use super::sql::{qualified, quote_ident};
use crate::outcome::{CheckResult, Layer, Verdict};

/// What one probe step found.
enum Step<T> {
    /// The statement ran.
    Ran(T),
    /// The database refused it (permission, policy, invalid value): isolation held.
    Refused(String),
    /// Timed out or lock wait: cannot be decided.
    Undecided(String),
}

/// The most connections the probe opens. Each runs its share of the tables in its own
/// transactions (always rolled back), so the probe waits on several round trips at once
/// instead of one after another; few enough not to crowd an application's pool.
pub const MAX_CONNECTIONS: usize = 4;

/// Tables per connection below which one more connection is not worth its setup.
const MIN_TABLES_PER_CONNECTION: usize = 32;

/// How many connections probe `tables` tables.
fn connections_for(tables: usize) -> usize {
    tables
        .div_ceil(MIN_TABLES_PER_CONNECTION)
        .clamp(1, MAX_CONNECTIONS)
}

/// Runs every probe over `tables`. `setting` is the tenant setting (lower case).
///
/// The tables are split into contiguous parts, one per connection (at most
/// [`MAX_CONNECTIONS`]; an extra connection that cannot be opened only lowers the
/// concurrency). Results come out in the same order as one connection would give them.
pub async fn run(
    cfg: &ProbeConfig,
    tables: &[TenantTable],
    setting: Option<&str>,
) -> Vec<CheckResult> {
    let client = match catalog::connect(&cfg.url, "probe URL").await {
        Ok(c) => c,
        Err(e) => return vec![error_result("database.probe", Layer::Probe, &e)],
    };
    match check_role(&client).await {
        Ok(()) => {}
        Err(e) => return vec![error_result("database.probe", Layer::Probe, &e)],
    }
    if tables.is_empty() {
        return vec![skip("database", "probe", "no tenant table to probe")];
    }
    let extra = (1..connections_for(tables.len())).map(|_| catalog::connect(&cfg.url, "probe URL"));
    let mut clients = vec![client];
    clients.extend(join_all(extra.collect()).await.into_iter().flatten());
    let orgs = setting.and(cfg.orgs.as_ref());
    let per = tables.len().div_ceil(clients.len());
    let parts = clients
        .iter()
        .zip(tables.chunks(per))
        .map(|(c, part)| probe_part(c, part, setting, orgs));
    let mut kinds: [Vec<CheckResult>; 4] = Default::default();
    let mut error = None;
    for part in join_all(parts.collect()).await {
        for (all, mine) in kinds.iter_mut().zip(part.kinds) {
            all.extend(mine);
        }
        error = error.or(part.error);
    }
    let [no_tenant, random, b_sees_no_a, move_row] = kinds;
    let mut out = no_tenant;
    match setting {
        Some(_) => out.extend(random),
        None => out.push(skip(
            "database",
            "probe_random_tenant",
            "no tenant_setting configured: cannot set a tenant",
        )),
    }
    match (setting, &cfg.orgs) {
        (Some(_), Some(_)) => {
            out.extend(b_sees_no_a);
            out.extend(move_row);
        }
        (None, _) => {
            for rule in ["probe_b_sees_no_a", "probe_move_row"] {
                out.push(skip(
                    "database",
                    rule,
                    "no tenant_setting configured: cannot set a tenant",
                ));
            }
        }
        (_, None) => {
            for rule in ["probe_b_sees_no_a", "probe_move_row"] {
                out.push(skip(
                    "database",
                    rule,
                    "no org ids: the A/B probes run under `tenantgate run`, after org A and org B are provisioned",
                ));
            }
        }
    }
    if let Some(e) = error {
        out.push(error_result("database.probe", Layer::Probe, &e));
    }
    out
}

/// What one connection found on its part of the tables: the results of each probe kind
/// (no tenant, random tenant, B sees no A, move row), and the error that stopped it.
struct Part {
    kinds: [Vec<CheckResult>; 4],
    error: Option<DbError>,
}

/// Runs the probe kinds that apply over `tables` on one connection, each kind in one
/// transaction that is rolled back; stops at the first error (after a `ROLLBACK`).
async fn probe_part(
    client: &Client,
    tables: &[TenantTable],
    setting: Option<&str>,
    orgs: Option<&super::ProbeOrgs>,
) -> Part {
    let mut kinds: [Vec<CheckResult>; 4] = Default::default();
    let [no_tenant, random, b_sees_no_a, move_row] = &mut kinds;
    let result = async {
        probe_no_tenant(client, tables, setting, no_tenant).await?;
        if let Some(s) = setting {
            probe_random_tenant(client, tables, s, random).await?;
            if let Some(o) = orgs {
                probe_b_sees_no_a(client, tables, s, &o.a, &o.b, b_sees_no_a).await?;
                probe_move_row(client, tables, s, &o.a, &o.b, move_row).await?;
            }
        }
        Ok::<(), DbError>(())
    }
    .await;
    let error = result.err();
    if error.is_some() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    Part { kinds, error }
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
    started: Instant,
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
    .timed(started.elapsed())
}

async fn check_role(client: &Client) -> Result<(), DbError> {
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
    Ok(())
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

/// `SELECT count(*) FROM t [WHERE col = CAST('value' AS type)]`, after setting the
/// tenant, as one round trip ([`batch_step`]).
async fn count(
    client: &Client,
    t: &TenantTable,
    set: Option<(&str, &str)>,
    only: Option<&str>,
) -> Result<Step<i64>, DbError> {
    let table = qualified(&t.schema, &t.name);
    let sql = match (only, &t.column) {
        (Some(v), Some((col, ty))) => format!(
            "SELECT count(*) FROM {table} WHERE {} = CAST({} AS {ty})",
            quote_ident(col),
            literal(v)
        ),
        _ => format!("SELECT count(*) FROM {table}"),
    };
    Ok(match batch_step(client, set, &sql).await? {
        Step::Ran(rows) => match rows.last().and_then(|r| r.get(0)?.parse::<i64>().ok()) {
            Some(n) => Step::Ran(n),
            // Cannot happen for count(*); if it does, it is no evidence either way.
            None => Step::Undecided("the count returned no number".into()),
        },
        Step::Refused(m) => Step::Refused(m),
        Step::Undecided(m) => Step::Undecided(m),
    })
}

/// One probe step in ONE round trip: `SAVEPOINT; [SELECT set_config(..., true);]
/// statement; ROLLBACK TO SAVEPOINT` sent as a single simple-query batch (values as
/// dollar-quoted literals: the simple protocol takes no parameters). When the statement
/// is refused the batch stops there and the savepoint is rolled back separately, so a
/// step never outlives itself either way. Returns the rows of the batch.
async fn batch_step(
    client: &Client,
    set: Option<(&str, &str)>,
    sql: &str,
) -> Result<Step<Vec<tokio_postgres::SimpleQueryRow>>, DbError> {
    let set_sql = set
        .map(|(s, v)| format!("SELECT set_config({}, {}, true); ", literal(s), literal(v)))
        .unwrap_or_default();
    let batch = format!(
        "SAVEPOINT tenantgate_probe; {set_sql}{sql}; ROLLBACK TO SAVEPOINT tenantgate_probe"
    );
    match client.simple_query(&batch).await {
        Ok(messages) => Ok(Step::Ran(
            messages
                .into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                    _ => None,
                })
                .collect(),
        )),
        Err(e) if e.is_closed() => Err(DbError::query("probe", &e)),
        Err(e) => {
            client
                .batch_execute("ROLLBACK TO SAVEPOINT tenantgate_probe")
                .await
                .map_err(|e| DbError::query("probe rollback to savepoint", &e))?;
            Ok(classify(&e))
        }
    }
}

/// The move of one of B's rows in two round trips: `SAVEPOINT; set tenant B; DECLARE
/// cursor; FETCH 1`, then `UPDATE ... WHERE CURRENT OF; ROLLBACK TO SAVEPOINT` (or only
/// the rollback when B has no row). `Ran(None)`: no row to move; `Ran(Some(n))`: rows
/// the update touched (rolled back).
async fn move_step(
    client: &Client,
    setting: &str,
    b: &str,
    declare: &str,
    update: &str,
) -> Result<Step<Option<u64>>, DbError> {
    const BACK: &str = "ROLLBACK TO SAVEPOINT tenantgate_probe";
    let rollback = async || {
        client
            .batch_execute(BACK)
            .await
            .map_err(|e| DbError::query("probe rollback to savepoint", &e))
    };
    let fetch = format!(
        "SAVEPOINT tenantgate_probe; SELECT set_config({}, {}, true); {declare}; FETCH 1 FROM tenantgate_move",
        literal(setting),
        literal(b)
    );
    let rows = match client.simple_query(&fetch).await {
        Ok(m) => m
            .iter()
            .filter(|m| matches!(m, tokio_postgres::SimpleQueryMessage::Row(_)))
            .count(),
        Err(e) if e.is_closed() => return Err(DbError::query("probe", &e)),
        Err(e) => {
            rollback().await?;
            return Ok(classify(&e));
        }
    };
    // One row is set_config's; a second is the fetched row of B's.
    if rows < 2 {
        rollback().await?;
        return Ok(Step::Ran(None));
    }
    match client.simple_query(&format!("{update}; {BACK}")).await {
        Ok(m) => Ok(Step::Ran(m.iter().find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::CommandComplete(n) => Some(*n),
            _ => None,
        }))),
        Err(e) if e.is_closed() => Err(DbError::query("probe", &e)),
        Err(e) => {
            rollback().await?;
            Ok(classify(&e))
        }
    }
}

/// A refused statement: a timeout or a lock wait cannot be decided; anything else
/// (permission, policy, invalid value) is a refusal.
fn classify<T>(e: &tokio_postgres::Error) -> Step<T> {
    let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
    if code == "57014" || code == "55P03" {
        Step::Undecided(pg_message(e))
    } else {
        Step::Refused(pg_message(e))
    }
}

fn describe(step: &Step<i64>) -> String {
    match step {
        Step::Ran(n) => format!("{n} rows"),
        Step::Refused(m) => format!("refused: {m}"),
        Step::Undecided(m) => format!("undecided: {m}"),
    }
}

async fn probe_no_tenant(
    client: &Client,
    tables: &[TenantTable],
    setting: Option<&str>,
    out: &mut Vec<CheckResult>,
) -> Result<(), DbError> {
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
    // Two passes: once the setting has been set in a session (even transaction-locally
    // and rolled back) it reads as '' instead of NULL, so "as the session starts" must be
    // measured on every table before anything sets it.
    let mut as_is = Vec::with_capacity(tables.len());
    for t in tables {
        let started = Instant::now();
        as_is.push((count(client, t, None, None).await?, started.elapsed()));
    }
    for (t, (first, first_took)) in tables.iter().zip(as_is) {
        let started = Instant::now();
        let empty = match setting {
            Some(s) => Some(count(client, t, Some((s, "")), None).await?),
            None => None,
        };
        let steps: Vec<(&str, &Step<i64>)> = std::iter::once(("as the session starts", &first))
            .chain(empty.as_ref().map(|e| ("with the setting empty", e)))
            .collect();
        let leaked: Vec<String> = steps
            .iter()
            .filter(|(_, s)| matches!(s, Step::Ran(n) if *n > 0))
            .map(|(w, s)| format!("{w}: {}", describe(s)))
            .collect();
        let undecided = steps.iter().any(|(_, s)| matches!(s, Step::Undecided(_)));
        let mut r = if !leaked.is_empty() {
            result(
                t,
                "probe_no_tenant",
                Verdict::Fail,
                format!(
                    "with no tenant set the app role sees rows ({})",
                    leaked.join("; ")
                ),
                started,
            )
        } else if undecided {
            result(
                t,
                "probe_no_tenant",
                Verdict::Error,
                "a probe query timed out or waited on a lock: retry when the table is not locked",
                started,
            )
        } else {
            result(
                t,
                "probe_no_tenant",
                Verdict::Pass,
                "no rows (or refused) with no tenant set",
                started,
            )
        };
        r.duration += first_took;
        if let (Some(s), Some(v)) = (setting, &session_value) {
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
        out.push(r);
    }
    rollback(client).await
}

/// A value of the column's type that names no real tenant.
fn random_tenant(type_name: Option<&str>) -> String {
    let mut b = [0u8; 16];
    // Random bytes; a fixed pattern would do as well, randomness only avoids collisions.
    let _ = aws_lc_rs::rand::fill(&mut b);
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

/// `value` as a dollar-quoted SQL literal (cursor declarations take no parameters).
fn literal(value: &str) -> String {
    let mut tag = String::from("tg");
    while value.contains(&format!("${tag}$")) {
        tag.push('x');
    }
    format!("${tag}${value}${tag}$")
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

async fn probe_random_tenant(
    client: &Client,
    tables: &[TenantTable],
    setting: &str,
    out: &mut Vec<CheckResult>,
) -> Result<(), DbError> {
    begin(client).await?;
    for t in tables {
        let started = Instant::now();
        let value = random_tenant(t.column.as_ref().map(|(_, ty)| ty.as_str()));
        let step = count(client, t, Some((setting, &value)), None).await?;
        let r = match &step {
            Step::Ran(n) if *n > 0 => result(
                t,
                "probe_random_tenant",
                Verdict::Fail,
                format!("a tenant that does not exist sees {n} rows"),
                started,
            ),
            Step::Undecided(_) => result(
                t,
                "probe_random_tenant",
                Verdict::Error,
                "the probe query timed out or waited on a lock: retry",
                started,
            ),
            _ => result(
                t,
                "probe_random_tenant",
                Verdict::Pass,
                "a tenant that does not exist sees no rows (or is refused)",
                started,
            ),
        };
        out.push(r.with(
            "probe",
            format!("{setting} = '{value}': {}", describe(&step)),
        ));
    }
    rollback(client).await
}

async fn probe_b_sees_no_a(
    client: &Client,
    tables: &[TenantTable],
    setting: &str,
    a: &str,
    b: &str,
    out: &mut Vec<CheckResult>,
) -> Result<(), DbError> {
    begin(client).await?;
    for t in tables {
        let started = Instant::now();
        let Some((col, _)) = &t.column else {
            out.push(result(
                t,
                "probe_b_sees_no_a",
                Verdict::Skip,
                "the table has no tenant column to compare",
                started,
            ));
            continue;
        };
        let control = count(client, t, Some((setting, a)), Some(a)).await?;
        let as_b = count(client, t, Some((setting, b)), Some(a)).await?;
        let r = match (&control, &as_b) {
            (_, Step::Ran(n)) if *n > 0 => result(
                t,
                "probe_b_sees_no_a",
                Verdict::Fail,
                format!("with org B set, {n} of org A's rows are visible"),
                started,
            ),
            (_, Step::Undecided(_)) | (Step::Undecided(_), _) => result(
                t,
                "probe_b_sees_no_a",
                Verdict::Error,
                "a probe query timed out or waited on a lock: retry",
                started,
            ),
            (Step::Ran(0), _) => result(
                t,
                "probe_b_sees_no_a",
                Verdict::Skip,
                "org A has no row here (as A): nothing to hide, seed A's data to prove this table",
                started,
            ),
            (Step::Refused(_), Step::Refused(_)) => result(
                t,
                "probe_b_sees_no_a",
                Verdict::Pass,
                "the app role cannot read this table at all",
                started,
            ),
            _ => result(
                t,
                "probe_b_sees_no_a",
                Verdict::Pass,
                format!(
                    "with org B set, none of org A's rows are visible ({} as A)",
                    describe(&control)
                ),
                started,
            ),
        };
        out.push(
            r.with(
                "control as A",
                format!(
                    "{setting} = A; count where {col} = A: {}",
                    describe(&control)
                ),
            )
            .with(
                "as B",
                format!("{setting} = B; count where {col} = A: {}", describe(&as_b)),
            ),
        );
    }
    rollback(client).await
}

async fn probe_move_row(
    client: &Client,
    tables: &[TenantTable],
    setting: &str,
    a: &str,
    b: &str,
    out: &mut Vec<CheckResult>,
) -> Result<(), DbError> {
    begin(client).await?;
    for t in tables {
        let started = Instant::now();
        let Some((col, ty)) = &t.column else {
            out.push(result(
                t,
                "probe_move_row",
                Verdict::Skip,
                "the table has no tenant column to move",
                started,
            ));
            continue;
        };
        // One of B's rows is locked through a cursor and moved with WHERE CURRENT OF.
        // A plain `UPDATE ... WHERE ctid = (...)` reads the table's columns, which makes
        // PostgreSQL also check the new row against the SELECT policies: that hides a
        // WITH CHECK hole that INSERT or an unconditional UPDATE would still use.
        let table = qualified(&t.schema, &t.name);
        let c = quote_ident(col);
        let declare = format!(
            "DECLARE tenantgate_move NO SCROLL CURSOR FOR SELECT 1 FROM {table} \
             WHERE {c} = CAST({} AS {ty}) LIMIT 1 FOR UPDATE",
            literal(b)
        );
        let update = format!(
            "UPDATE {table} SET {c} = CAST({} AS {ty}) WHERE CURRENT OF tenantgate_move",
            literal(a)
        );
        let step = move_step(client, setting, b, &declare, &update).await?;
        let step = match step {
            Step::Ran(None) => {
                out.push(result(
                    t,
                    "probe_move_row",
                    Verdict::Skip,
                    "org B has no row in this table to move",
                    started,
                ));
                continue;
            }
            Step::Ran(Some(n)) => Step::Ran(n),
            Step::Refused(m) => Step::Refused(m),
            Step::Undecided(m) => Step::Undecided(m),
        };
        let shown = format!(
            "{setting} = B; UPDATE {table} SET {c} = A WHERE CURRENT OF <a cursor on one of B's rows> (rolled back)"
        );
        let r = match &step {
            Step::Ran(0) => result(
                t,
                "probe_move_row",
                Verdict::Pass,
                "moving B's row to org A touched no row",
                started,
            ),
            Step::Ran(n) => result(
                t,
                "probe_move_row",
                Verdict::Fail,
                format!("org B moved {n} row(s) into org A (WITH CHECK lets it through)"),
                started,
            ),
            Step::Refused(m) => result(
                t,
                "probe_move_row",
                Verdict::Pass,
                "moving B's row to org A was refused",
                started,
            )
            .with("refusal", m.clone()),
            Step::Undecided(m) => result(
                t,
                "probe_move_row",
                Verdict::Error,
                "the probe update timed out or waited on a lock: retry",
                started,
            )
            .with("error", m.clone()),
        };
        out.push(r.with("probe", shown));
    }
    rollback(client).await
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
    }
}
