//! The attestation reporter (report stage): an in-toto Statement v1 with the
//! test-result predicate, the unsigned payload a CI step signs (GitHub's attest action,
//! `cosign attest-blob`) so that an auditor can verify which suite produced a verdict
//! against which target.
//!
//! - `subject`: the suite file (its SHA-256, the same digest as the JSON report's
//!   `suite.sha256`) and the target (the SHA-256 of its redacted URL); for `tenantgate
//!   audit`, which has neither, the results themselves (see [`results_digest`]).
//! - `predicate.configuration`: the suite again, as the configuration the run used, and
//!   `database-catalog-snapshot`: the SHA-256 of every catalog row the database audit
//!   read (sorted, per app role), when the run audited a database.
//! - `predicate.passedTests` / `warnedTests` / `failedTests`: result ids. `error`
//!   results are failed tests (the run did not prove isolation); skips are in none.

use std::io;
use std::path::PathBuf;

use serde_json::{Value, json};

use super::{Collected, context, redacted, sha256_hex, write_atomically};
use crate::outcome::{CheckResult, Event, RunInfo, RunSummary, Verdict};
use crate::redact::Redactor;

/// The in-toto Statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The test-result predicate type.
pub const PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// Writes the Statement at [`Event::Ended`], atomically.
pub struct Attestation {
    path: PathBuf,
    deny_warnings: bool,
    url: Option<String>,
    collected: Collected,
}

impl Attestation {
    /// An attestation reporter writing to `path`.
    pub fn new(path: PathBuf, deny_warnings: bool) -> Self {
        Attestation {
            path,
            deny_warnings,
            url: None,
            collected: Collected::default(),
        }
    }

    /// The CI run that produced it (`predicate.url`), e.g. a GitHub Actions run page.
    pub fn with_url(mut self, url: Option<String>) -> Self {
        self.url = url;
        self
    }

    /// Redacts every registered secret before the file is written.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.collected.redactor = Some(redactor);
        self
    }
}

impl super::Reporter for Attestation {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let Some(summary) = self.collected.take(event) else {
            return Ok(());
        };
        let what = "attestation";
        let info = self.collected.info(what)?;
        let url = self.url.as_deref();
        let value = match &self.collected.redactor {
            Some(r) => {
                let (info, results, summary) = redacted(r, info, &self.collected.results, summary);
                let url = url.map(|u| r.redact(u));
                attestation_statement(
                    &info,
                    &results,
                    &summary,
                    self.deny_warnings,
                    url.as_deref(),
                )
            }
            None => attestation_statement(
                info,
                &self.collected.results,
                summary,
                self.deny_warnings,
                url,
            ),
        };
        let mut text = serde_json::to_string_pretty(&value)
            .map_err(|e| context(what, &self.path, io::Error::other(e)))?;
        text.push('\n');
        write_atomically(&self.path, text.as_bytes()).map_err(|e| context(what, &self.path, e))
    }
}

/// The Statement of a run: pure, so tests can inspect it without a file.
pub fn attestation_statement(
    info: &RunInfo,
    results: &[CheckResult],
    summary: &RunSummary,
    deny_warnings: bool,
    url: Option<&str>,
) -> Value {
    let (mut passed, mut warned, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for r in results {
        match r.verdict {
            Verdict::Pass => passed.push(r.id.as_str()),
            Verdict::Warn if !deny_warnings || r.accepted.is_some() => warned.push(r.id.as_str()),
            Verdict::Warn | Verdict::Fail | Verdict::Error => failed.push(r.id.as_str()),
            Verdict::Skip => {}
        }
    }
    let result = if summary.exit_code != crate::exit::PROVEN || !failed.is_empty() {
        "FAILED"
    } else if !warned.is_empty() {
        "WARNED"
    } else {
        "PASSED"
    };
    let suite_name = info
        .suite_path
        .clone()
        .unwrap_or_else(|| info.suite_name.clone());
    let mut subject = Vec::new();
    let mut configuration = Vec::new();
    if let Some(sha) = &info.suite_sha256 {
        subject.push(json!({ "name": suite_name, "digest": { "sha256": sha } }));
        configuration.push(json!({
            "name": suite_name,
            "digest": { "sha256": sha },
            "annotations": { "tenantgate.suite": info.suite_name },
        }));
    }
    if let Some(sha) = &summary.catalog_sha256 {
        // Which database state the verdict is about: every catalog row the audit read.
        configuration.push(json!({
            "name": "database-catalog-snapshot",
            "digest": { "sha256": sha },
        }));
    }
    if let Some(target) = &info.target {
        subject.push(json!({
            "name": format!("target:{target}"),
            "uri": target,
            "digest": { "sha256": sha256_hex(target.as_bytes()) },
        }));
    }
    if subject.is_empty() {
        subject.push(json!({
            "name": format!("tenantgate-results:{}", info.suite_name),
            "digest": { "sha256": results_digest(results) },
        }));
    }
    let mut predicate = json!({
        "result": result,
        "configuration": configuration,
        "passedTests": passed,
        "warnedTests": warned,
        "failedTests": failed,
    });
    if let Some(u) = url {
        predicate["url"] = json!(u);
    }
    json!({
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    })
}

/// SHA-256 of the lines `id verdict\n`, in the order the results were decided: the
/// subject of an attestation that has no suite file (`tenantgate audit`).
pub fn results_digest(results: &[CheckResult]) -> String {
    let mut text = String::new();
    for r in results {
        text.push_str(&r.id);
        text.push(' ');
        text.push_str(r.verdict.as_str());
        text.push('\n');
    }
    sha256_hex(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{fixture, info, summary_for};

    #[test]
    fn statement_names_the_suite_target_and_results() {
        let (results, summary) = fixture();
        let v = attestation_statement(&info(), &results, &summary, false, Some("https://ci/1"));
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["digest"]["sha256"], "9f86d081884c7d65");
        assert_eq!(v["subject"][0]["name"], "suites/reference.yaml");
        assert_eq!(
            v["subject"][1]["digest"]["sha256"],
            sha256_hex(b"http://127.0.0.1:8080")
        );
        let p = &v["predicate"];
        assert_eq!(p["result"], "FAILED");
        assert_eq!(p["url"], "https://ci/1");
        assert_eq!(p["passedTests"], json!(["brand-is-invisible-to-b"]));
        assert_eq!(
            p["warnedTests"],
            json!(["public.unique_email.unique_without_tenant"])
        );
        assert_eq!(
            p["failedTests"],
            json!([
                "brand-is-invisible-to-b/tenant_override:header:X-Org-Id",
                "mentions-list-holds-none-of-a-s-rows"
            ])
        );
        assert_eq!(
            p["configuration"][0]["digest"]["sha256"],
            "9f86d081884c7d65"
        );
    }

    #[test]
    fn result_words_and_an_audit_without_suite() {
        let pass = CheckResult::new(
            "a",
            "a",
            "base",
            crate::outcome::Layer::Http,
            Verdict::Pass,
            "ok",
        );
        let warn = CheckResult::new(
            "w",
            "w",
            "r",
            crate::outcome::Layer::Database,
            Verdict::Warn,
            "w",
        );
        let mut i = info();
        let word = |rs: &[CheckResult], deny: bool, i: &RunInfo| {
            attestation_statement(i, rs, &summary_for(rs, deny), deny, None)["predicate"]["result"]
                .clone()
        };
        assert_eq!(word(std::slice::from_ref(&pass), false, &i), "PASSED");
        assert_eq!(word(&[pass.clone(), warn.clone()], false, &i), "WARNED");
        assert_eq!(word(&[pass.clone(), warn.clone()], true, &i), "FAILED");
        assert_eq!(word(&[], false, &i), "FAILED", "nothing ran: exit 2");
        i.suite_path = None;
        i.suite_sha256 = None;
        i.target = None;
        let v = attestation_statement(
            &i,
            std::slice::from_ref(&pass),
            &summary_for(std::slice::from_ref(&pass), false),
            false,
            None,
        );
        assert_eq!(v["subject"].as_array().unwrap().len(), 1);
        assert_eq!(v["subject"][0]["digest"]["sha256"], results_digest(&[pass]));
        assert!(v["predicate"].get("url").is_none());
    }
}
