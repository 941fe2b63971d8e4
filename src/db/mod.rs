//! The database layer: a catalog audit of PostgreSQL Row-Level Security and, when
//! asked, a live probe as the application's role (run → **database layer** → results
//! → report).
//!
//! [`audit`] is the one entry point (the CLI's `tenantgate audit` and the runner's
//! `database:` section both call it). It
//! 1. connects read-only ([`read_only_client`]: `default_transaction_read_only = on`
//!    and one `READ ONLY` transaction, so an audit can never change the database);
//! 2. reads a catalog snapshot in a constant number of set-based queries, however many
//!    tables there are ([`catalog`]);
//! 3. judges it in pure Rust ([`rules`], with the policy-expression heuristics in
//!    [`expr`]): one [`CheckResult`] per tenant table per rule, plus role, view,
//!    function and database-wide results;
//! 4. optionally probes as the app role ([`probe`]) inside transactions that always
//!    roll back.
//!
//! Verdicts: a finding of severity error is [`Verdict::Fail`], of severity warning
//! [`Verdict::Warn`]; what could not be decided (connection refused, wrong password,
//! no catalog access, a failed query) is ONE [`Verdict::Error`] result whose reason
//! says what to do. Every string passes through the [`Redactor`] first.

pub mod carry_over;
pub mod catalog;
pub mod config;
pub mod error;
pub mod expr;
pub mod probe;
pub mod rules;
pub mod schemas;
mod sql;
pub mod tls;

use std::time::Instant;

use crate::outcome::{CheckResult, Layer, Verdict};
use crate::redact::Redactor;

pub use catalog::read_only_client;
pub use config::{
    AuditConfig, DEFAULT_TENANT_COLUMNS, PRESETS, ProbeConfig, ProbeOrgs, ProbeSetting,
    SchemaTenants, TenantModel,
};
pub use error::DbError;
use error::error_result;

/// Audits the database and, when configured, probes it as the app role.
///
/// Never panics on external input and never returns an empty list: a failure to connect
/// or read the catalogs is one [`Verdict::Error`] result.
pub async fn audit(cfg: &AuditConfig, redactor: &Redactor) -> Vec<CheckResult> {
    audit_snapshot(cfg, redactor).await.0
}

/// [`audit`], and the SHA-256 of the catalog snapshot the rules judged (every row the
/// catalog queries read, for each app role, in a canonical order): the attestation's
/// record of *which* database state the verdict is about. `None` when no catalog
/// could be read.
pub async fn audit_snapshot(
    cfg: &AuditConfig,
    redactor: &Redactor,
) -> (Vec<CheckResult>, Option<String>) {
    let mut snapshot = String::new();
    let results = audit_inner(cfg, redactor, &mut snapshot).await;
    let digest = (!snapshot.is_empty()).then(|| crate::digest::sha256_hex(snapshot.as_bytes()));
    (results, digest)
}

async fn audit_inner(
    cfg: &AuditConfig,
    redactor: &Redactor,
    snapshot: &mut String,
) -> Vec<CheckResult> {
    redactor.add_url_password("database URL password", &cfg.url);
    if let Some(p) = &cfg.probe {
        redactor.add_url_password("probe URL password", &p.url);
    }
    let started = Instant::now();
    let columns: Vec<String> = if cfg.tenant_columns.is_empty() {
        DEFAULT_TENANT_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        cfg.tenant_columns.clone()
    };
    let setting = cfg.tenant_setting.as_ref().map(|s| s.to_lowercase());
    let roles = app_roles(cfg);
    let client = match read_only_client(&cfg.url).await {
        Ok(c) => c,
        Err(e) => return failed(&e, redactor),
    };
    // One catalog snapshot and judgement per app role (the privileges and the
    // policies that apply are the role's); the first role's order is kept.
    let mut judged: Option<rules::Judged> = None;
    for role in roles.iter().map(|r| r.as_deref()) {
        let cat = match catalog::load(&client, &cfg.url, role, &columns).await {
            Ok(c) => c,
            Err(e) => return failed(&e, redactor),
        };
        snapshot.push_str(&format!("role {role:?}\n"));
        snapshot.push_str(&cat.canonical());
        let opts = rules::Options {
            tenant_columns: &columns,
            schemas: &cfg.schemas,
            tables: &cfg.tables,
            exempt: &cfg.exempt,
            app_role: role,
            tenant_setting: setting.as_deref(),
            model: Some(&cfg.model),
        };
        let this = rules::judge(&cat, &opts, started.elapsed());
        judged = Some(match judged {
            None => this,
            Some(mut first) => {
                merge_role_results(&mut first.results, this.results, role.unwrap_or(""));
                first
            }
        });
    }
    let Some(judged) = judged else {
        return Vec::new(); // unreachable: `app_roles` is never empty
    };
    let mut results = judged.results;
    if let Some(st) = &cfg.tenant_schemas {
        match schemas::load(&client, st).await {
            Ok((found, reach)) => {
                if !found.is_empty() {
                    // Tenants are schemas: tables without a tenant column are expected.
                    for r in results.iter_mut().filter(|r| {
                        r.id == "database.tenant_tables_found" && r.verdict == Verdict::Error
                    }) {
                        r.verdict = Verdict::Skip;
                        r.summary = "no table with a tenant column: the tenants are schemas (schema_isolation)".into();
                    }
                }
                results.extend(schemas::judge(st, &found, &reach, started));
            }
            Err(e) => results.push(error_result("database.tenant_schemas", Layer::Database, &e)),
        }
    }
    let unverified = notices(cfg);
    if !unverified.is_empty() {
        // Not a finding about isolation, but a person reading the verdicts must know
        // the connection could have been intercepted; also in every report's notices.
        let mut r = CheckResult::new(
            "database.audit",
            "database",
            "audit",
            Layer::Database,
            Verdict::Pass,
            "connected over TLS without verifying the server's certificate (sslmode=require without sslrootcert)",
        );
        for n in unverified {
            r = r.with("notice", n);
        }
        results.push(r);
    }
    if let Some(p) = &cfg.probe {
        let roles: Vec<String> = app_roles(cfg).into_iter().flatten().collect();
        let probed = probe::run(
            p,
            &judged.tenant_tables,
            setting.as_deref(),
            &cfg.model,
            &roles,
        );
        results.extend(probed.await);
        // Tenants as schemas: a session's search_path must not reach the next client.
        if cfg.tenant_schemas.is_some() {
            results.push(carry_over::run(p, setting.as_deref()).await);
        }
    }
    redact_all(&mut results, redactor);
    results
}

/// The app roles to judge, the configured `app_role` first; `[None]` when there is none.
fn app_roles(cfg: &AuditConfig) -> Vec<Option<String>> {
    let mut roles: Vec<Option<String>> = Vec::new();
    for r in cfg.app_role.iter().chain(cfg.model.extra_app_roles.iter()) {
        if !roles.iter().any(|x| x.as_deref() == Some(r.as_str())) {
            roles.push(Some(r.clone()));
        }
    }
    if roles.is_empty() {
        roles.push(None);
    }
    roles
}

/// How bad a verdict is when two app roles disagree on one result.
fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Fail => 4,
        Verdict::Error => 3,
        Verdict::Warn => 2,
        Verdict::Pass => 1,
        Verdict::Skip => 0,
    }
}

/// Adds another app role's results: new ids are appended; where the roles disagree,
/// the worse result is kept and says which role it is about.
fn merge_role_results(into: &mut Vec<CheckResult>, other: Vec<CheckResult>, role: &str) {
    merge_results(into, other, role, rank);
}

/// The probe's ranking: a role that saw nothing (skip) is not proven by another role
/// that was refused (pass), so a skip outranks a pass.
fn probe_rank(v: Verdict) -> u8 {
    match v {
        Verdict::Skip => 1,
        Verdict::Pass => 0,
        other => rank(other),
    }
}

/// [`merge_role_results`] for the probe's results ([`probe_rank`]).
pub(crate) fn merge_probe_results(
    into: &mut Vec<CheckResult>,
    other: Vec<CheckResult>,
    role: &str,
) {
    merge_results(into, other, role, probe_rank);
}

fn merge_results(
    into: &mut Vec<CheckResult>,
    other: Vec<CheckResult>,
    role: &str,
    rank: fn(Verdict) -> u8,
) {
    let index: std::collections::HashMap<String, usize> = into
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    for r in other {
        match index.get(&r.id) {
            None => into.push(r.with("app role", format!("as {role}"))),
            Some(&i) => {
                let kept = &into[i];
                if kept.verdict == r.verdict && kept.summary == r.summary {
                    continue;
                }
                if rank(r.verdict) > rank(kept.verdict) {
                    into[i] = r.with("app role", format!("as {role}"));
                }
            }
        }
    }
}

/// The one Error result of an audit that could not read the catalogs.
fn failed(e: &DbError, redactor: &Redactor) -> Vec<CheckResult> {
    let mut r = vec![error_result("database.audit", Layer::Database, e)];
    redact_all(&mut r, redactor);
    r
}

/// Notes for every report about the connections' TLS: one per URL that demands TLS
/// but does not verify the server's certificate (`sslmode=require` without
/// `sslrootcert`). Decided by the URLs alone, so callers can add them to the run's
/// notices.
pub fn notices(cfg: &AuditConfig) -> Vec<String> {
    let mut out = Vec::new();
    let urls = std::iter::once((&cfg.url, "database URL"))
        .chain(cfg.probe.as_ref().map(|p| (&p.url, "probe URL")));
    for (url, what) in urls {
        if let Some(n) = tls::TlsPolicy::of(url)
            .ok()
            .and_then(|p| p.unverified_notice(what))
        {
            out.push(n);
        }
    }
    out
}

fn redact_all(results: &mut [CheckResult], redactor: &Redactor) {
    let secrets = redactor.values();
    if secrets.is_empty() {
        return;
    }
    let needs = |s: &str| secrets.iter().any(|x| s.contains(x.as_str()));
    for r in results {
        for s in [&mut r.id, &mut r.check, &mut r.variant, &mut r.summary] {
            if needs(s) {
                *s = redactor.redact(s);
            }
        }
        for e in &mut r.evidence {
            if needs(&e.text) {
                e.text = redactor.redact(&e.text);
            }
            if needs(&e.label) {
                e.label = redactor.redact(&e.label);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_passwords() {
        let cfg = AuditConfig {
            url: "postgres://u:hunter22@h/db".into(),
            probe: Some(ProbeConfig {
                url: "postgres://app:s3cr3tpw@h/db".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = format!("{cfg:?}");
        assert!(!d.contains("hunter22") && !d.contains("s3cr3tpw"), "{d}");
        assert!(d.contains("postgres://u:****@h/db"));
    }

    #[test]
    fn app_roles_disagreeing_keep_the_worse_result_and_name_the_role() {
        let r = |id: &str, v: Verdict, s: &str| {
            CheckResult::new(id, "public.t", "rule", Layer::Database, v, s)
        };
        let mut first = vec![
            r("public.t.a", Verdict::Pass, "ok"),
            r("public.t.b", Verdict::Fail, "bad"),
        ];
        merge_role_results(
            &mut first,
            vec![
                r("public.t.a", Verdict::Fail, "bad as anon"),
                r("public.t.b", Verdict::Pass, "ok as anon"),
                r("role.anon.x", Verdict::Pass, "new"),
            ],
            "anon",
        );
        assert_eq!(first.len(), 3);
        assert_eq!(first[0].verdict, Verdict::Fail);
        assert!(first[0].evidence.iter().any(|e| e.text == "as anon"));
        assert_eq!(first[1].summary, "bad");
        assert_eq!(first[2].id, "role.anon.x");
        let cfg = AuditConfig {
            app_role: Some("authenticated".into()),
            model: TenantModel::supabase(),
            ..Default::default()
        };
        assert_eq!(
            app_roles(&cfg),
            vec![Some("authenticated".into()), Some("anon".into())]
        );
        assert_eq!(app_roles(&AuditConfig::default()), vec![None]);
    }

    #[test]
    fn redacts_every_field() {
        let r = Redactor::new();
        r.add("pw", "hunter22");
        let mut v = vec![
            CheckResult::new("a", "b", "c", Layer::Database, Verdict::Error, "x hunter22")
                .with("l", "hunter22"),
        ];
        redact_all(&mut v, &r);
        assert!(!v[0].summary.contains("hunter22"));
        assert!(!v[0].evidence[0].text.contains("hunter22"));
    }
}
