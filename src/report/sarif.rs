//! The SARIF 2.1.0 reporter (report stage): what GitHub code scanning and other SARIF
//! viewers read. One rule per attack class and per database rule, with help text and
//! the fix; one result per failure, error and warning (passes and skips are not
//! findings); locations at the check's line in the suite file, and a logical location
//! (`schema.table`, role, function) for database findings; fingerprints derived from
//! the result id, so the same finding has the same fingerprint in every run.
//!
//! Mapping: `fail` → `kind: fail`, `level: error`; `warn` → `kind: fail`,
//! `level: warning` (`error` under `--deny-warnings`); `error` (undecided) →
//! `kind: open`, `level: none` — SARIF's word for "the tool could not decide", which
//! the spec requires to have level `none`. The gate is the exit code, not the SARIF.

use std::io;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::files::SuiteLines;
use super::{
    Collected, RunVerdict, context, display_name, evidence_text, redacted, sha256_hex,
    write_atomically,
};
use crate::outcome::{CheckResult, Event, Layer, RunInfo, RunSummary, Verdict};
use crate::redact::Redactor;

/// The `$schema` written in every SARIF file.
pub const SARIF_SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The key of the fingerprint in `partialFingerprints`.
pub const FINGERPRINT_KEY: &str = "tenantgateResultId/v1";

/// One rule of the catalog: what it catches and how to fix it.
struct Rule {
    /// The id after `tenantgate/`.
    id: &'static str,
    /// What a finding of this rule means (one line).
    short: &'static str,
    /// The fix.
    fix: &'static str,
    /// The level of a failure of this rule.
    level: &'static str,
}

const fn rule(
    id: &'static str,
    short: &'static str,
    fix: &'static str,
    level: &'static str,
) -> Rule {
    Rule {
        id,
        short,
        fix,
        level,
    }
}

/// Every rule tenantgate knows, in the order they are listed in `tool.driver.rules`.
/// The database rules mirror `docs/database-audit.md`.
const RULES: &[Rule] = &[
    rule(
        "cross_tenant_access",
        "Org B reached org A's data through a request the suite describes (read, list, write or request check)",
        "Scope every query by the caller's tenant taken from the authenticated session (never from the request), and answer 404 for another tenant's ids",
        "error",
    ),
    rule(
        "tenant_override",
        "A tenant id sent in a header, query parameter or body field made the API act for another tenant",
        "Ignore tenant ids from the request; derive the tenant only from the verified credentials",
        "error",
    ),
    rule(
        "token_forgery",
        "A forged token (alg none, tampered claims, a random key, an expired token) was accepted",
        "Verify the signature with the expected algorithm and key, reject `alg: none`, and check `exp`",
        "error",
    ),
    rule(
        "claim_integrity",
        "The identity endpoint or B's token names a tenant other than B's",
        "Issue tokens carrying only the caller's own tenant and echo only that tenant",
        "error",
    ),
    rule(
        "setup",
        "Provisioning, seeding or teardown failed, so isolation could not be decided",
        "Fix the suite or the target so that both orgs can be provisioned and A's data seeded; then run again",
        "error",
    ),
    rule(
        "db/rls_enabled",
        "Row-level security is disabled on a tenant table: every role with a grant sees every tenant",
        "ALTER TABLE t ENABLE ROW LEVEL SECURITY;",
        "error",
    ),
    rule(
        "db/rls_forced",
        "Row-level security is not forced: the table's owner bypasses it",
        "ALTER TABLE t FORCE ROW LEVEL SECURITY;",
        "error",
    ),
    rule(
        "db/policy_present",
        "RLS is enabled but no policy applies to the app role (fails closed: every row is denied)",
        "CREATE POLICY ... USING (org_id = current_setting('app.current_org_id', true)::uuid)",
        "warning",
    ),
    rule(
        "db/command_coverage",
        "The app role holds a privilege for which no permissive policy exists (fails closed)",
        "Add a policy for the command, or REVOKE the privilege",
        "warning",
    ),
    rule(
        "db/policy_tenant_key",
        "A permissive policy does not compare the tenant column with the tenant setting",
        "ALTER POLICY ... USING (org_id = current_setting('app.current_org_id', true)::uuid)",
        "error",
    ),
    rule(
        "db/policy_fail_open",
        "An unset or empty tenant setting lets every tenant's rows through",
        "Compare to the setting only; an unset setting must match nothing",
        "error",
    ),
    rule(
        "db/policy_constant_true",
        "A permissive USING (true) with no restrictive tenant policy",
        "Key the policy on the tenant, or add an AS RESTRICTIVE tenant policy",
        "error",
    ),
    rule(
        "db/insert_with_check",
        "A WITH CHECK lets rows be written into, or moved to, another tenant",
        "ALTER POLICY ... WITH CHECK (org_id = current_setting('app.current_org_id', true)::uuid)",
        "error",
    ),
    rule(
        "db/permissive_or",
        "Several permissive policies for one command are OR-ed: any one admits a row",
        "Merge them, or make the extra conditions AS RESTRICTIVE",
        "warning",
    ),
    rule(
        "db/unique_without_tenant",
        "A unique key without the tenant column tells one tenant another has a value",
        "Include the tenant column: UNIQUE (org_id, email)",
        "warning",
    ),
    rule(
        "db/app_role_owner",
        "The app role owns the table and RLS is not forced",
        "Force RLS; better, give the table a separate owner role",
        "error",
    ),
    rule(
        "db/app_role_truncate",
        "The app role may TRUNCATE a tenant table; TRUNCATE ignores RLS",
        "REVOKE TRUNCATE ON t FROM app_role;",
        "error",
    ),
    rule(
        "db/app_role_superuser",
        "The app role is a superuser, or can become one through membership",
        "ALTER ROLE app_role NOSUPERUSER; or REVOKE the membership",
        "error",
    ),
    rule(
        "db/app_role_bypassrls",
        "The app role has BYPASSRLS, directly or through membership",
        "ALTER ROLE app_role NOBYPASSRLS; or REVOKE the membership",
        "error",
    ),
    rule(
        "db/view_bypass",
        "A view over a tenant table runs with an owner that bypasses RLS",
        "ALTER VIEW v SET (security_invoker = true);",
        "error",
    ),
    rule(
        "db/matview_tenant_data",
        "A materialized view holds tenant data; RLS never applies to it",
        "Revoke it; serve the data through a filtered view or function",
        "error",
    ),
    rule(
        "db/foreign_table_tenant_data",
        "A foreign table has a tenant column; RLS does not protect it",
        "Revoke it; expose it through a security_invoker view keyed on the tenant",
        "error",
    ),
    rule(
        "db/definer_function",
        "A SECURITY DEFINER function the app role can execute runs as an owner that bypasses RLS",
        "Change the function's owner, or REVOKE EXECUTE",
        "error",
    ),
    rule(
        "db/table_exists",
        "A table the suite names does not exist, so it could not be audited",
        "Fix the name in `tables`",
        "error",
    ),
    rule(
        "db/schema_exists",
        "A schema the suite names does not exist, so it could not be audited",
        "Fix the name in `schemas`",
        "error",
    ),
    rule(
        "db/tenant_tables_found",
        "No tenant table was found: an audit that audits nothing cannot pass",
        "Set the tenant column names, the schemas, or list the tables",
        "error",
    ),
    rule(
        "db/app_role_exists",
        "The configured app role does not exist",
        "Fix the role name",
        "error",
    ),
    rule(
        "db/audit",
        "The catalog audit could not run (connection, TLS, permission or query error)",
        "Follow the message: fix the URL, the credentials or the catalog access",
        "error",
    ),
    rule(
        "probe/probe_no_tenant",
        "As the app role with no tenant set, tenant rows were visible",
        "Make policies match nothing when the tenant setting is unset",
        "error",
    ),
    rule(
        "probe/probe_random_tenant",
        "As the app role with a tenant that does not exist, rows were visible",
        "Key every policy on the tenant setting",
        "error",
    ),
    rule(
        "probe/probe_b_sees_no_a",
        "As the app role with org B set, org A's rows were visible",
        "Key every policy on the tenant setting",
        "error",
    ),
    rule(
        "probe/probe_move_row",
        "As the app role, a row of org B could be moved to org A",
        "Add a WITH CHECK keyed on the tenant to UPDATE policies",
        "error",
    ),
];

/// The rule a result belongs to, without the `tenantgate/` prefix: the attack class for
/// checks (the variant up to its first `:`), `db/RULE` and `probe/RULE` for the
/// database, `setup` for setup.
pub fn rule_id(r: &CheckResult) -> String {
    match r.layer {
        Layer::Setup => "setup".into(),
        Layer::Http | Layer::Attack => {
            if r.variant == "base" || r.variant.is_empty() {
                "cross_tenant_access".into()
            } else {
                r.variant
                    .split(':')
                    .next()
                    .unwrap_or(&r.variant)
                    .to_string()
            }
        }
        Layer::Database => format!("db/{}", r.variant),
        Layer::Probe => format!("probe/{}", r.variant),
    }
}

/// Writes the SARIF file at [`Event::Ended`], atomically.
pub struct Sarif {
    path: PathBuf,
    deny_warnings: bool,
    lines: SuiteLines,
    collected: Collected,
}

impl Sarif {
    /// A SARIF reporter writing to `path`; `lines` places results in the suite file.
    pub fn new(path: PathBuf, deny_warnings: bool, lines: SuiteLines) -> Self {
        Sarif {
            path,
            deny_warnings,
            lines,
            collected: Collected::default(),
        }
    }

    /// Redacts every registered secret before the file is written.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.collected.redactor = Some(redactor);
        self
    }
}

impl super::Reporter for Sarif {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let Some(summary) = self.collected.take(event) else {
            return Ok(());
        };
        let what = "SARIF report";
        let info = self.collected.info(what)?;
        let value = match &self.collected.redactor {
            Some(r) => {
                let (info, results, summary) = redacted(r, info, &self.collected.results, summary);
                sarif_report(&info, &results, &summary, &self.lines, self.deny_warnings)
            }
            None => sarif_report(
                info,
                &self.collected.results,
                summary,
                &self.lines,
                self.deny_warnings,
            ),
        };
        let mut text = serde_json::to_string_pretty(&value)
            .map_err(|e| context(what, &self.path, io::Error::other(e)))?;
        text.push('\n');
        write_atomically(&self.path, text.as_bytes()).map_err(|e| context(what, &self.path, e))
    }
}

/// The SARIF log of a run: pure, so tests can inspect it without a file.
pub fn sarif_report(
    info: &RunInfo,
    results: &[CheckResult],
    summary: &RunSummary,
    lines: &SuiteLines,
    deny_warnings: bool,
) -> Value {
    let findings: Vec<&CheckResult> = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Error | Verdict::Warn))
        .collect();
    // Every known rule, then any the catalog lacks (a newer runner's), so that every
    // result's ruleIndex points at a rule.
    let mut ids: Vec<String> = RULES.iter().map(|r| r.id.to_string()).collect();
    for r in &findings {
        let id = rule_id(r);
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    let rules: Vec<Value> = ids.iter().map(|id| rule_json(id)).collect();
    let suite_uri = info.suite_path.as_deref().map(uri_of);
    let sarif_results: Vec<Value> = findings
        .iter()
        .map(|r| {
            let id = rule_id(r);
            let index = ids.iter().position(|i| *i == id).unwrap_or(0);
            result_json(r, &id, index, suite_uri.as_deref(), lines, deny_warnings)
        })
        .collect();

    let mut run = json!({
        "tool": { "driver": {
            "name": "tenantgate",
            "version": info.tool_version,
            "semanticVersion": info.tool_version,
            "rules": rules,
        }},
        "automationDetails": {
            "id": format!("tenantgate/{}/{}", category(&info.suite_name), info.run_id),
        },
        "invocations": [invocation(info, summary)],
        "results": sarif_results,
        "properties": {
            "suite": info.suite_name,
            "suiteSha256": info.suite_sha256,
            "target": info.target,
            "runId": info.run_id,
            "exitCode": summary.exit_code,
            "verdict": RunVerdict::from_exit_code(summary.exit_code).as_str(),
            "incomplete": summary.incomplete,
            "counts": summary.counts,
        },
    });
    if let (Some(uri), Some(sha)) = (&suite_uri, &info.suite_sha256) {
        run["artifacts"] = json!([{
            "location": { "uri": uri },
            "roles": ["analysisTarget"],
            "hashes": { "sha-256": sha },
        }]);
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [run],
    })
}

fn rule_json(id: &str) -> Value {
    let known = RULES.iter().find(|r| r.id == id);
    let (short, fix, level) = match known {
        Some(r) => (r.short, r.fix, r.level),
        None => (
            "An isolation check of a kind this tenantgate has no description for failed",
            "See the result's evidence",
            "error",
        ),
    };
    let name: String = id
        .split(['/', '_'])
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect::<String>())
                .unwrap_or_default()
        })
        .collect();
    let tags = if id.starts_with("db/") || id.starts_with("probe/") {
        json!([
            "security",
            "multi-tenancy",
            "postgresql",
            "row-level-security"
        ])
    } else {
        json!(["security", "multi-tenancy", "authorization"])
    };
    json!({
        "id": format!("tenantgate/{id}"),
        "name": name,
        "shortDescription": { "text": short },
        "fullDescription": { "text": format!("{short}. Fix: {fix}") },
        "help": {
            "text": format!("{short}.\n\nFix: {fix}"),
            "markdown": format!("{short}.\n\n**Fix:** {fix}"),
        },
        "defaultConfiguration": { "level": level },
        "properties": {
            "tags": tags,
            "precision": "high",
            // GitHub code scanning ranks security alerts by this (0.0–10.0).
            "security-severity": if level == "error" { "9.1" } else { "5.0" },
        },
    })
}

fn result_json(
    r: &CheckResult,
    rule: &str,
    index: usize,
    suite_uri: Option<&str>,
    lines: &SuiteLines,
    deny_warnings: bool,
) -> Value {
    let (kind, level) = match r.verdict {
        Verdict::Fail => ("fail", "error"),
        Verdict::Warn if deny_warnings && r.accepted.is_none() => ("fail", "error"),
        Verdict::Warn => ("fail", "warning"),
        _ => ("open", "none"),
    };
    let mut text = format!("{}: {}", display_name(r), r.summary);
    if r.verdict == Verdict::Error {
        text.push_str(" (undecided: isolation could not be proven either way)");
    }
    let evidence = evidence_text(r, "");
    if !evidence.is_empty() {
        text.push_str("\n\n");
        text.push_str(evidence.trim_end());
    }
    let mut location = json!({});
    if let Some(uri) = suite_uri {
        let mut physical = json!({ "artifactLocation": { "uri": uri, "index": 0 } });
        if let Some(at) = lines.of_result(r) {
            physical["region"] = json!({ "startLine": at.line, "startColumn": at.col });
        }
        location["physicalLocation"] = physical;
    }
    if let Some(logical) = logical_location(r) {
        location["logicalLocations"] = json!([logical]);
    }
    let mut result = json!({
        "ruleId": format!("tenantgate/{rule}"),
        "ruleIndex": index,
        "kind": kind,
        "level": level,
        "message": { "text": text },
        "partialFingerprints": { FINGERPRINT_KEY: sha256_hex(r.id.as_bytes()) },
        "properties": {
            "id": r.id,
            "check": r.check,
            "variant": r.variant,
            "layer": r.layer.as_str(),
            "verdict": r.verdict.as_str(),
            "evidence": r.evidence,
        },
    });
    if location.as_object().is_some_and(|o| !o.is_empty()) {
        result["locations"] = json!([location]);
    }
    // An accepted warning: suppressed in the suite file (`accept:`), with its reason —
    // code scanning shows it as dismissed, never as gone.
    if let Some(reason) = r.accepted.as_deref().filter(|_| r.verdict == Verdict::Warn) {
        result["suppressions"] = json!([{
            "kind": "inSource",
            "status": "accepted",
            "justification": reason,
        }]);
    }
    result
}

/// The database object a finding is about: `schema.table` (kind `relation`: tables,
/// views, materialized and foreign tables), a role, a function or the database.
fn logical_location(r: &CheckResult) -> Option<Value> {
    if !matches!(r.layer, Layer::Database | Layer::Probe) {
        return None;
    }
    let object = r.check.as_str();
    let (kind, name) = if let Some(role) = object.strip_prefix("role.") {
        ("role", role)
    } else if object.contains('(') {
        ("function", object)
    } else if object == "database" || !object.contains('.') {
        ("database", object)
    } else {
        ("relation", object)
    };
    Some(json!({ "fullyQualifiedName": name, "name": name, "kind": kind }))
}

fn invocation(info: &RunInfo, summary: &RunSummary) -> Value {
    let mut notes: Vec<Value> = summary
        .notices
        .iter()
        .map(|n| json!({ "level": "warning", "message": { "text": n } }))
        .collect();
    if summary.incomplete {
        notes.push(json!({ "level": "error", "message": {
            "text": "interrupted before every check ran: this report is partial" } }));
    }
    json!({
        // `false` for an undecided run: the tool could not finish its job.
        "executionSuccessful": summary.exit_code == crate::exit::PROVEN
            || summary.exit_code == crate::exit::ISOLATION_FAILURE,
        "exitCode": summary.exit_code,
        "startTimeUtc": info.started_at,
        "toolExecutionNotifications": notes,
    })
}

/// The suite path as a SARIF URI: relative paths stay relative (GitHub resolves them
/// against the repository root), with `/` separators.
fn uri_of(path: &str) -> String {
    let p = path.replace('\\', "/");
    let p = p.strip_prefix("./").unwrap_or(&p);
    let encoded: String = p
        .chars()
        .map(|c| match c {
            ' ' => "%20".to_string(),
            '#' => "%23".to_string(),
            '?' => "%3F".to_string(),
            '%' => "%25".to_string(),
            c => c.to_string(),
        })
        .collect();
    if encoded.starts_with('/') {
        format!("file://{encoded}")
    } else {
        encoded
    }
}

/// The suite name as one segment of `automationDetails.id` (GitHub's category).
fn category(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() { "suite".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{fixture, info};

    fn log() -> Value {
        let (results, summary) = fixture();
        sarif_report(&info(), &results, &summary, &SuiteLines::default(), false)
    }

    #[test]
    fn one_result_per_failure_error_and_warning() {
        let v = log();
        assert_eq!(v["version"], "2.1.0");
        let results = v["runs"][0]["results"].as_array().unwrap();
        let kinds: Vec<(&str, &str, &str)> = results
            .iter()
            .map(|r| {
                (
                    r["ruleId"].as_str().unwrap(),
                    r["kind"].as_str().unwrap(),
                    r["level"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("tenantgate/tenant_override", "fail", "error"),
                ("tenantgate/cross_tenant_access", "open", "none"),
                ("tenantgate/db/unique_without_tenant", "fail", "warning"),
            ]
        );
        let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
        for r in results {
            let i = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[i]["id"], r["ruleId"]);
        }
        let db = &results[2]["locations"][0]["logicalLocations"][0];
        assert_eq!(db["fullyQualifiedName"], "public.unique_email");
        assert_eq!(db["kind"], "relation");
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
            "suites/reference.yaml"
        );
    }

    #[test]
    fn fingerprints_are_stable_and_unique() {
        let a = log();
        let mut info2 = info();
        info2.run_id = "other".into();
        info2.started_at = "2030-01-01T00:00:00Z".into();
        let (results, summary) = fixture();
        let b = sarif_report(&info2, &results, &summary, &SuiteLines::default(), false);
        let fp = |v: &Value| -> Vec<String> {
            v["runs"][0]["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["partialFingerprints"][FINGERPRINT_KEY].to_string())
                .collect()
        };
        assert_eq!(fp(&a), fp(&b));
        let mut unique = fp(&a);
        unique.dedup();
        assert_eq!(unique.len(), 3);
    }

    #[test]
    fn logical_locations_name_roles_and_functions() {
        let r =
            |check: &str| CheckResult::new("x", check, "rule", Layer::Database, Verdict::Fail, "s");
        let kind = |check| logical_location(&r(check)).unwrap()["kind"].clone();
        assert_eq!(kind("role.tg_app"), "role");
        assert_eq!(kind("public.f(integer)"), "function");
        assert_eq!(kind("database"), "database");
        assert_eq!(kind("public.brands"), "relation");
        assert_eq!(uri_of("./suites/a b.yaml"), "suites/a%20b.yaml");
        assert_eq!(uri_of("/abs/s.yaml"), "file:///abs/s.yaml");
    }
}
