//! The pooled-session probe of the schema-per-tenant mode: a session-level
//! `search_path` (and tenant setting) made by one client must not be what the next
//! client of the same server backend starts with. Behind a connection pooler that hands
//! a backend to the next client without resetting it (PgBouncer without
//! `server_reset_query`, or in transaction mode with session-level `SET`), the next
//! tenant's queries run in the previous tenant's schema.
//!
//! The probe connects with the probe URL, sets both values at session level with unique
//! markers, disconnects, and connects again (up to six times) until it lands on
//! the same backend (`pg_backend_pid()`): there it reads both values back. On a direct
//! connection every session has its own backend, so nothing can carry over: that is a
//! `skip` saying so, never a `pass`.

use tokio_postgres::Client;

use super::catalog;
use super::config::ProbeConfig;
use super::error::DbError;
use crate::outcome::{CheckResult, Layer, Verdict};

/// How many later sessions try to land on the first session's backend.
const ATTEMPTS: usize = 6;

/// The result id.
pub const ID: &str = "database.probe_session_reset";

/// What one later session saw.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    pid: i32,
    search_path: String,
    setting: Option<String>,
}

/// Runs the probe; `setting` is the tenant setting, when the suite names one.
pub async fn run(cfg: &ProbeConfig, setting: Option<&str>) -> CheckResult {
    match probe(cfg, setting).await {
        Ok((first, later, marker)) => judge(first, &later, &marker, setting),
        Err(e) => result(
            Verdict::Error,
            format!("the pooled-session probe could not run: {e}"),
        ),
    }
}

async fn probe(
    cfg: &ProbeConfig,
    setting: Option<&str>,
) -> Result<(i32, Vec<Seen>, String), DbError> {
    let mut b = [0u8; 8];
    let _ = crate::random::fill(&mut b);
    let marker = format!("tg_carry_over_{}", u64::from_le_bytes(b));
    let first = catalog::connect(&cfg.url, "probe URL").await?;
    let pid = backend_pid(&first).await?;
    // Session level on purpose (`is_local = false`): what a careless app does.
    first
        .execute(
            "SELECT set_config('search_path', $1, false)",
            &[&format!("{marker}, public")],
        )
        .await
        .map_err(|e| DbError::query("set search_path for the session", &e))?;
    if let Some(s) = setting {
        first
            .execute("SELECT set_config($1, $2, false)", &[&s, &marker])
            .await
            .map_err(|e| DbError::query("set the tenant setting for the session", &e))?;
    }
    drop(first);
    let mut later = Vec::new();
    for _ in 0..ATTEMPTS {
        // Give the pooler a moment to take the backend back.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let c = catalog::connect(&cfg.url, "probe URL").await?;
        let row = c
            .query_one(
                "SELECT pg_backend_pid(), current_setting('search_path'), \
                 CASE WHEN $1::text IS NULL THEN NULL ELSE current_setting($1::text, true) END",
                &[&setting],
            )
            .await
            .map_err(|e| DbError::query("read the new session's settings", &e))?;
        let seen = Seen {
            pid: row.get(0),
            search_path: row.get(1),
            setting: row.get(2),
        };
        let same = seen.pid == pid;
        later.push(seen);
        if same {
            break;
        }
    }
    Ok((pid, later, marker))
}

async fn backend_pid(c: &Client) -> Result<i32, DbError> {
    c.query_one("SELECT pg_backend_pid()", &[])
        .await
        .map(|r| r.get(0))
        .map_err(|e| DbError::query("read the backend pid", &e))
}

/// The verdict from what the later sessions saw: the marker in any of them is a leak
/// (whatever its backend); none on the first session's backend is a pass; never landing
/// on it is a skip.
fn judge(first: i32, later: &[Seen], marker: &str, setting: Option<&str>) -> CheckResult {
    if let Some(s) = later
        .iter()
        .find(|s| s.search_path.contains(marker) || s.setting.as_deref() == Some(marker))
    {
        let what = if s.search_path.contains(marker) {
            format!("search_path `{}`", s.search_path)
        } else {
            format!("`{}`", setting.unwrap_or_default())
        };
        return result(
            Verdict::Fail,
            format!(
                "a session-level {what} set by one client was still in effect for the next client of the same backend (pid {}): the next tenant's queries run in the previous tenant's schema",
                s.pid
            ),
        )
        .with(
            "fix",
            "reset every backend between clients (PgBouncer: `server_reset_query = DISCARD ALL`, and in transaction pooling never `SET` at session level — use `SET LOCAL` / `set_config(..., true)` inside the transaction)",
        );
    }
    match later.iter().find(|s| s.pid == first) {
        Some(s) => result(
            Verdict::Pass,
            format!(
                "the next session on the same backend (pid {}) started clean: search_path `{}`",
                s.pid, s.search_path
            ),
        ),
        None => result(
            Verdict::Skip,
            format!(
                "nothing to see: each of {} later sessions got its own backend (a direct connection, or a pooler that did not reuse it), so nothing could carry over",
                later.len()
            ),
        ),
    }
}

fn result(verdict: Verdict, summary: String) -> CheckResult {
    CheckResult::new(
        ID,
        "database",
        "probe_session_reset",
        Layer::Probe,
        verdict,
        summary,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(pid: i32, search_path: &str, setting: Option<&str>) -> Seen {
        Seen {
            pid,
            search_path: search_path.into(),
            setting: setting.map(Into::into),
        }
    }

    #[test]
    fn a_carried_over_value_fails_a_clean_reused_backend_passes_no_reuse_skips() {
        let m = "tg_carry_over_x";
        let s = Some("app.tenant");
        let leak = judge(7, &[seen(7, "tg_carry_over_x, public", None)], m, s);
        assert_eq!(leak.verdict, Verdict::Fail, "{}", leak.summary);
        assert!(leak.summary.contains("search_path"));
        let setting = judge(7, &[seen(8, "\"$user\", public", Some(m))], m, s);
        assert_eq!(
            setting.verdict,
            Verdict::Fail,
            "another backend holding it leaks too"
        );
        assert!(setting.summary.contains("`app.tenant`"));
        let clean = judge(
            7,
            &[
                seen(8, "\"$user\", public", None),
                seen(7, "\"$user\", public", Some("")),
            ],
            m,
            s,
        );
        assert_eq!(clean.verdict, Verdict::Pass, "{}", clean.summary);
        let direct = judge(7, &[seen(8, "public", None), seen(9, "public", None)], m, s);
        assert_eq!(direct.verdict, Verdict::Skip);
        assert!(direct.summary.starts_with("nothing to see"));
    }
}
