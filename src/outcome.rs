//! Results and run events: what the runner and the database audit produce and every
//! reporter consumes (run → report).
//!
//! A violation is data ([`Verdict::Fail`] with evidence); a check that could not be
//! decided is [`Verdict::Error`] with a one-line reason. Reporters never see secrets:
//! every string placed here must already have passed through [`crate::redact::Redactor`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The verdict of one check or attack variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Isolation held, and the positive control proved the check could have failed.
    Pass,
    /// Isolation broken: evidence attached.
    Fail,
    /// Could not be decided: transport error, 5xx, timeout, failed control, failed seed.
    Error,
    /// A finding of severity warning (fails only with `--deny-warnings`).
    Warn,
    /// Not run, with the reason in `summary`.
    Skip,
}

impl Verdict {
    /// The lowercase word used in every report.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Error => "error",
            Verdict::Warn => "warn",
            Verdict::Skip => "skip",
        }
    }
}

/// Which layer a result belongs to; JUnit groups results into one `<testsuite>` each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Provisioning, seeding and teardown: errors here make the run undecided.
    Setup,
    /// The suite's own checks (read, list, write, request) as org B.
    Http,
    /// Built-in attacks: tenant_override, token_forgery, claim_integrity.
    Attack,
    /// The catalog audit of the database.
    Database,
    /// The live probe as the application's role.
    Probe,
}

impl Layer {
    /// The name used for the JUnit testsuite and in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Setup => "setup",
            Layer::Http => "http",
            Layer::Attack => "attack",
            Layer::Database => "database",
            Layer::Probe => "probe",
        }
    }
}

/// One piece of evidence: a labelled, already-redacted text (a request line, a status,
/// a body excerpt, a diff, a policy definition, a fix).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// What this is, e.g. `"B got"`, `"control as A"`, `"diff"`, `"policy"`, `"fix"`.
    pub label: String,
    /// The text; may span several lines.
    pub text: String,
}

impl Evidence {
    /// Builds one labelled piece of evidence.
    pub fn new(label: impl Into<String>, text: impl Into<String>) -> Self {
        Evidence {
            label: label.into(),
            text: text.into(),
        }
    }
}

/// The result of one check or one variant of a check.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckResult {
    /// Stable identifier, unique in a run: `check-slug` or `check-slug/variant`
    /// (database results: `schema.table.rule`). Used by `--filter` and as the JUnit name.
    pub id: String,
    /// The check's name as written in the suite (or the audited object for the database).
    pub check: String,
    /// The variant: `base` for the check itself, else e.g. `tenant_override:header:X-Org-Id`,
    /// `token_forgery:alg_none`, or the audit rule name.
    pub variant: String,
    /// Which layer produced it.
    pub layer: Layer,
    /// The verdict.
    pub verdict: Verdict,
    /// The evidence in a few words (one line): why it passed, failed, errored or was skipped.
    pub summary: String,
    /// Everything a person needs to reproduce or fix it.
    pub evidence: Vec<Evidence>,
    /// Wall time spent on it (zero for results that were not timed).
    #[serde(
        serialize_with = "serialize_duration_ms",
        deserialize_with = "deserialize_duration_ms",
        rename = "duration_ms"
    )]
    pub duration: Duration,
    /// How many times a transport error made the runner retry it.
    #[serde(skip_serializing_if = "is_zero", default)]
    pub retries: u32,
    /// For a warning the suite's `accept:` list accepts: why (the entry's reason). The
    /// verdict stays `warn`; an accepted warning does not fail `--deny-warnings`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub accepted: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Reads the JSON report's `duration_ms` back (`tenantgate merge`).
fn deserialize_duration_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Ok(Duration::from_millis(u64::deserialize(d)?))
}

fn serialize_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl CheckResult {
    /// A result with no evidence and no duration; fill the rest with the builder methods.
    pub fn new(
        id: impl Into<String>,
        check: impl Into<String>,
        variant: impl Into<String>,
        layer: Layer,
        verdict: Verdict,
        summary: impl Into<String>,
    ) -> Self {
        CheckResult {
            id: id.into(),
            check: check.into(),
            variant: variant.into(),
            layer,
            verdict,
            summary: summary.into(),
            evidence: Vec::new(),
            duration: Duration::ZERO,
            retries: 0,
            accepted: None,
        }
    }

    /// Adds a piece of evidence.
    pub fn with(mut self, label: impl Into<String>, text: impl Into<String>) -> Self {
        self.evidence.push(Evidence::new(label, text));
        self
    }

    /// Sets the duration.
    pub fn timed(mut self, d: Duration) -> Self {
        self.duration = d;
        self
    }
}

/// How many results ended in each verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub error: usize,
    pub warn: usize,
    pub skip: usize,
    /// How many of the warnings the suite accepted (`accept:`); counted in `warn` too.
    #[serde(default, skip_serializing_if = "is_zero_usize")]
    pub accepted: usize,
}

fn is_zero_usize(n: &usize) -> bool {
    *n == 0
}

impl Counts {
    /// Counts one more verdict.
    pub fn add(&mut self, v: Verdict) {
        match v {
            Verdict::Pass => self.pass += 1,
            Verdict::Fail => self.fail += 1,
            Verdict::Error => self.error += 1,
            Verdict::Warn => self.warn += 1,
            Verdict::Skip => self.skip += 1,
        }
    }

    /// Total number of results.
    pub fn total(&self) -> usize {
        self.pass + self.fail + self.error + self.warn + self.skip
    }

    /// Counts a whole list of results.
    pub fn of(results: &[CheckResult]) -> Counts {
        let mut c = Counts::default();
        for r in results {
            c.add(r.verdict);
            if r.verdict == Verdict::Warn && r.accepted.is_some() {
                c.accepted += 1;
            }
        }
        c
    }
}

/// Something the run created on the target, and whether teardown removed it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Created {
    /// Which org created it (`a` or `b`).
    pub org: String,
    /// What it is, e.g. `org` or the seed step's name.
    pub what: String,
    /// Its captured identifiers (redacted).
    pub ids: Vec<String>,
    /// `true` only when a teardown step that used one of its captures (or its org's
    /// `org_id`) succeeded; `false` when no step addressed it, the step failed, or the
    /// suite has no teardown.
    pub removed: bool,
    /// Left behind on purpose: the suite's reason from `teardown.keeps` (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
}

/// What is known about a run before the first result: the header of every report.
#[derive(Clone, Debug, Serialize)]
pub struct RunInfo {
    /// The suite's `name` (or `audit` for the standalone audit).
    pub suite_name: String,
    /// The suite file as given on the command line (absent for `audit`).
    pub suite_path: Option<String>,
    /// SHA-256 of the suite file's bytes, hex (absent for `audit`).
    pub suite_sha256: Option<String>,
    /// The unique id of this run (`{{run_id}}`).
    pub run_id: String,
    /// Where requests went (redacted), if anywhere.
    pub target: Option<String>,
    /// tenantgate's version.
    pub tool_version: String,
    /// Start time, RFC 3339 UTC.
    pub started_at: String,
    /// The slice this run is of a partitioned run (`--partition K/N`), if any.
    pub partition: Option<crate::plan::Partition>,
    /// The environment variables the suite read: names, never values.
    pub env_read: Vec<String>,
    /// The origins requests were allowed to go to: the target's, the suite's
    /// `target.allowed_origins`, then `--allow-origin`'s.
    pub allowed_origins: Vec<String>,
    /// What the loader noticed about the suite (e.g. that it has no `env:` list).
    pub load_notices: Vec<String>,
}

/// The end of a run: everything a report needs besides the results themselves.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    pub counts: Counts,
    /// Total wall time.
    #[serde(serialize_with = "serialize_duration_ms", rename = "duration_ms")]
    pub duration: Duration,
    /// The exit code the process will return.
    pub exit_code: u8,
    /// Interrupted (Ctrl-C / SIGTERM) before every check ran: the report is partial.
    pub incomplete: bool,
    /// Things the run created and whether they were removed.
    pub created: Vec<Created>,
    /// Loud notes that belong in every output (e.g. `--insecure` was used).
    pub notices: Vec<String>,
    /// SHA-256 of the database catalog snapshot the audit judged, when one was read.
    pub catalog_sha256: Option<String>,
}

/// The events a run emits, in order: `Started`, any number of `Finished`, `Ended`.
/// Reporters consume them; the runner never prints.
#[derive(Clone, Debug)]
pub enum Event {
    /// The run began.
    Started(RunInfo),
    /// A phase began (for progress output): e.g. "provisioning org a".
    Phase(String),
    /// Where the check stage stands (for progress output; reports ignore it).
    Progress(Progress),
    /// One result is final.
    Finished(CheckResult),
    /// The run ended.
    Ended(RunSummary),
}

/// The check stage's progress: how many checks are done out of how many, and how many
/// are running now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub in_flight: usize,
}
