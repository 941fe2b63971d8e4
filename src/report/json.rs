//! The JSON reporter (report stage): the report an auditor keeps. Its layout is a
//! contract, versioned by [`SCHEMA_VERSION`] and documented field by field on
//! [`JsonReport`] and in `docs/reports.md`.
//!
//! Compatibility rule (the same as the suite format's): a later tenantgate may add
//! fields; it never removes one, renames one or changes its meaning without raising
//! `schema_version`. Readers must ignore fields they do not know.

use std::fs;
use std::io::{self, Seek, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Collected, RunVerdict, context, redact_result, redacted, write_atomically_with};
use crate::outcome::{CheckResult, Counts, Created, Event, RunInfo, RunSummary};
use crate::redact::Redactor;

/// The version of the layout described by [`JsonReport`]. Raised only for an
/// incompatible change; added fields keep it.
pub const SCHEMA_VERSION: u32 = 1;

/// The JSON report of one run: one object, pretty-printed, ending in a newline. Every
/// field is always present (absent values are `null`, empty lists are `[]`), in this
/// order.
///
/// ```json
/// {
///   "schema_version": 1,
///   "tool": { "name": "tenantgate", "version": "0.1.0" },
///   "suite": { "name": "reference-api", "path": "suites/reference.yaml", "sha256": "9f86…" },
///   "run_id": "r7x2",
///   "target": "http://127.0.0.1:8080",
///   "started_at": "2025-01-01T00:00:00Z",
///   "duration_ms": 1234,
///   "exit_code": 1,
///   "verdict": "broken",
///   "incomplete": false,
///   "counts": { "pass": 1, "fail": 1, "error": 1, "warn": 1, "skip": 1 },
///   "notices": [],
///   "created": [ { "org": "a", "what": "brand", "ids": ["42"], "removed": false } ],
///   "results": [ { "id": "…", "check": "…", "variant": "base", "layer": "http",
///                  "verdict": "pass", "summary": "…", "evidence": [], "duration_ms": 12 } ]
/// }
/// ```
#[derive(Debug, Serialize)]
pub struct JsonReport<'a> {
    /// The layout version, [`SCHEMA_VERSION`]: `1`.
    pub schema_version: u32,
    /// Which program wrote the report.
    pub tool: JsonTool<'a>,
    /// The suite that was run.
    pub suite: JsonSuite<'a>,
    /// The unique id of this run, the `{{run_id}}` of the suite: it appears in the names
    /// of everything the run created on the target.
    pub run_id: &'a str,
    /// Where requests went (redacted), or `null` when nothing was sent (database audit).
    pub target: Option<&'a str>,
    /// When the run started, RFC 3339 UTC.
    pub started_at: &'a str,
    /// Total wall time, in milliseconds.
    pub duration_ms: u64,
    /// The process exit status: 0 proven, 1 isolation broken, 2 undecided.
    pub exit_code: u8,
    /// The exit status in words: `"proven"`, `"broken"` or `"undecided"`.
    pub verdict: RunVerdict,
    /// `true` when the run was interrupted before every check ran: `results` is partial
    /// and `exit_code` is 2.
    pub incomplete: bool,
    /// How many results ended in each verdict: `pass`, `fail`, `error`, `warn`, `skip`.
    pub counts: Counts,
    /// SHA-256 of the database catalog snapshot the audit judged (absent without one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub catalog_sha256: Option<&'a str>,
    /// Loud notes about how the run was made that weaken or qualify its verdict (for
    /// example that `--insecure` disabled TLS verification). Free text.
    pub notices: &'a [String],
    /// The environment variables the suite read: names, never values.
    pub env_read: &'a [String],
    /// The origins requests were allowed to go to (the target's first).
    pub allowed_origins: &'a [String],
    /// What the loader noticed about the suite (e.g. that it has no `env:` list).
    pub load_notices: &'a [String],
    /// What the run created on the target: `org` (`"a"` or `"b"`), `what` (e.g. `"org"`
    /// or a seed step's name), `ids` (captured identifiers, redacted) and `removed`
    /// (`true` only when a teardown step that used its captures succeeded), and `kept`
    /// (the suite's `teardown.keeps` reason, when left on purpose). Anything with
    /// `removed: false` is still on the target.
    pub created: &'a [Created],
    /// The slice of a partitioned run (`--partition K/N`): `{ "index": K, "total": N }`;
    /// absent from an unpartitioned run's report. `tenantgate merge` reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<crate::plan::Partition>,
    /// Every result in the order it was decided. Each has: `id` (stable, unique in the
    /// run: `check-slug` or `check-slug/variant`, `schema.table.rule` for the database),
    /// `check` (the name in the suite, or the audited object), `variant` (`base` or the
    /// attack / audit rule), `layer` (`setup`, `http`, `attack`, `database`, `probe`),
    /// `verdict` (`pass`, `fail`, `error`, `warn`, `skip`), `summary` (one line),
    /// `evidence` (a list of `{ "label", "text" }`, text possibly multi-line),
    /// `duration_ms`, and `retries` (present only when non-zero).
    pub results: &'a [CheckResult],
}

/// The `tool` object of [`JsonReport`].
#[derive(Debug, Serialize)]
pub struct JsonTool<'a> {
    /// Always `"tenantgate"`.
    pub name: &'static str,
    /// The version of tenantgate that ran, e.g. `"0.1.0"`.
    pub version: &'a str,
}

/// The `suite` object of [`JsonReport`].
#[derive(Debug, Serialize)]
pub struct JsonSuite<'a> {
    /// The suite's `name` (`"audit"` for `tenantgate audit` without a suite).
    pub name: &'a str,
    /// The suite file as given on the command line, or `null` without a suite.
    pub path: Option<&'a str>,
    /// SHA-256 of the suite file's bytes, lowercase hex, or `null` without a suite: it
    /// lets an auditor prove which suite produced this verdict.
    pub sha256: Option<&'a str>,
}

impl<'a> JsonReport<'a> {
    /// Assembles the report from a run's header, results and summary.
    pub fn new(info: &'a RunInfo, results: &'a [CheckResult], summary: &'a RunSummary) -> Self {
        JsonReport {
            schema_version: SCHEMA_VERSION,
            tool: JsonTool {
                name: "tenantgate",
                version: &info.tool_version,
            },
            suite: JsonSuite {
                name: &info.suite_name,
                path: info.suite_path.as_deref(),
                sha256: info.suite_sha256.as_deref(),
            },
            run_id: &info.run_id,
            target: info.target.as_deref(),
            started_at: &info.started_at,
            duration_ms: u64::try_from(summary.duration.as_millis()).unwrap_or(u64::MAX),
            exit_code: summary.exit_code,
            verdict: RunVerdict::from_exit_code(summary.exit_code),
            incomplete: summary.incomplete,
            counts: summary.counts,
            catalog_sha256: summary.catalog_sha256.as_deref(),
            notices: &summary.notices,
            env_read: &info.env_read,
            allowed_origins: &info.allowed_origins,
            load_notices: &info.load_notices,
            created: &summary.created,
            partition: info.partition,
            results,
        }
    }

    /// The report as written to disk: pretty-printed, with a trailing newline.
    pub fn to_pretty_string(&self) -> serde_json::Result<String> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}

/// Writes the JSON report at [`Event::Ended`], atomically.
pub struct Json {
    path: PathBuf,
    collected: Collected,
    /// The results so far, serialized as they arrive: the report's other fields (the
    /// counts, the exit code) are known only at the end, and they come first.
    spool: Option<Spool>,
}

impl Json {
    pub fn new(path: PathBuf) -> Self {
        Json {
            path,
            collected: Collected::default(),
            spool: None,
        }
    }

    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.collected.redactor = Some(redactor);
        self
    }

    /// One result, redacted, as the next element of the report's `results` array.
    fn spool(&mut self, r: &CheckResult) -> io::Result<()> {
        let spool = self.spool.as_mut().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "a result arrived before the run's Started event",
            )
        })?;
        let mut redacted;
        let r = match &self.collected.redactor {
            Some(redactor) => {
                redacted = r.clone();
                redact_result(redactor, &mut redacted);
                &redacted
            }
            None => r,
        };
        spool.push(r)
    }
}

/// The `results` array of a report being written, element by element, in a temporary
/// file beside the report. Memory stays flat however many results a run has (at 10,000
/// results the kept results were the run's largest growth); the file is unlinked as
/// soon as it is open, so nothing is left behind even if the process is killed.
struct Spool {
    file: io::BufWriter<fs::File>,
    count: usize,
}

impl Spool {
    fn create(report: &Path) -> io::Result<Spool> {
        let tmp = super::temp_path(report, "results")?;
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        // Unix keeps the open file; elsewhere it is removed at the end.
        let _ = fs::remove_file(&tmp);
        Ok(Spool {
            file: io::BufWriter::new(file),
            count: 0,
        })
    }

    /// Appends `r` exactly as `serde_json::to_writer_pretty` writes an element of an
    /// array that is a field of the top-level object: indented by four spaces, after a
    /// `,` and a line break from the one before.
    fn push(&mut self, r: &CheckResult) -> io::Result<()> {
        if self.count > 0 {
            self.file.write_all(b",\n")?;
        }
        let mut w = Indented {
            inner: &mut self.file,
            at_line_start: true,
        };
        serde_json::to_writer_pretty(&mut w, r).map_err(io::Error::other)?;
        self.count += 1;
        Ok(())
    }

    /// Writes `[`, every element and `]` to `w`.
    fn copy_array_into(self, w: &mut dyn Write) -> io::Result<()> {
        if self.count == 0 {
            return w.write_all(b"[]");
        }
        let mut file = self
            .file
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        file.seek(io::SeekFrom::Start(0))?;
        w.write_all(b"[\n")?;
        io::copy(&mut file, w)?;
        w.write_all(b"\n  ]")
    }
}

/// Prefixes every line with four spaces. Safe on JSON: a line break inside a string is
/// always escaped, so every `\n` written is between tokens.
struct Indented<'w, W: Write> {
    inner: &'w mut W,
    at_line_start: bool,
}

impl<W: Write> Write for Indented<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        for line in buf.split_inclusive(|b| *b == b'\n') {
            if self.at_line_start {
                self.inner.write_all(b"    ")?;
            }
            self.inner.write_all(line)?;
            self.at_line_start = line.ends_with(b"\n");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl super::Reporter for Json {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let what = "JSON report";
        match event {
            Event::Finished(r) => {
                return self.spool(r).map_err(|e| context(what, &self.path, e));
            }
            Event::Started(_) => {
                self.collected.take(event);
                self.spool = None;
                self.spool =
                    Some(Spool::create(&self.path).map_err(|e| context(what, &self.path, e))?);
                return Ok(());
            }
            _ => {}
        }
        let Some(summary) = self.collected.take(event) else {
            return Ok(());
        };
        let info = self.collected.info(what)?.clone();
        let (info, summary) = match &self.collected.redactor {
            Some(r) => {
                let (info, _, summary) = redacted(r, &info, &[], summary);
                (info, summary)
            }
            None => (info, summary.clone()),
        };
        // Every field but the results, then the results from the spool: the same bytes
        // as the whole report serialized at once (pinned by the tests).
        let head = JsonReport::new(&info, &[], &summary)
            .to_pretty_string()
            .map_err(io::Error::other)?;
        let head = head
            .strip_suffix("[]\n}\n")
            .ok_or_else(|| io::Error::other("the report does not end with its results"))?;
        let spool = self.spool.take();
        write_atomically_with(&self.path, |w| {
            w.write_all(head.as_bytes())?;
            match spool {
                Some(s) => s.copy_array_into(w)?,
                None => w.write_all(b"[]")?,
            }
            w.write_all(b"\n}\n")
        })
        .map_err(|e| context(what, &self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::outcome::Created;
    use crate::report::tests::{fixture, info};

    fn report_value() -> (String, Value) {
        let (results, mut summary) = fixture();
        summary.notices = vec!["--insecure".into()];
        summary.created = vec![Created {
            org: "a".into(),
            what: "brand".into(),
            ids: vec!["42".into()],
            removed: false,
            kept: None,
        }];
        let info = info();
        let text = JsonReport::new(&info, &results, &summary)
            .to_pretty_string()
            .unwrap();
        let value = serde_json::from_str(&text).unwrap();
        (text, value)
    }

    #[test]
    fn top_level_fields_are_the_contract() {
        let (text, v) = report_value();
        assert!(text.ends_with("}\n") && text.starts_with("{\n  \"schema_version\": 1,\n"));
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "schema_version",
                "tool",
                "suite",
                "run_id",
                "target",
                "started_at",
                "duration_ms",
                "exit_code",
                "verdict",
                "incomplete",
                "counts",
                "notices",
                "env_read",
                "allowed_origins",
                "load_notices",
                "created",
                "results"
            ]
        );
        assert_eq!(v["tool"], json!({"name": "tenantgate", "version": "0.1.0"}));
        assert_eq!(
            v["suite"],
            json!({"name": "reference-api", "path": "suites/reference.yaml", "sha256": "9f86d081884c7d65"})
        );
        assert_eq!(v["run_id"], "r7x2");
        assert_eq!(v["target"], "http://127.0.0.1:8080");
        assert_eq!(v["started_at"], "2025-01-01T00:00:00Z");
        assert_eq!(v["duration_ms"], 1234);
        assert_eq!(v["exit_code"], 1);
        assert_eq!(v["verdict"], "broken");
        assert_eq!(v["incomplete"], false);
        assert_eq!(
            v["counts"],
            json!({"pass": 1, "fail": 1, "error": 1, "warn": 1, "skip": 1})
        );
        assert_eq!(v["notices"], json!(["--insecure"]));
        assert_eq!(
            v["created"],
            json!([{"org": "a", "what": "brand", "ids": ["42"], "removed": false}])
        );
    }

    #[test]
    fn results_keep_their_serialized_form() {
        let (_, v) = report_value();
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), 5);
        assert_eq!(
            results[1],
            json!({
                "id": "brand-is-invisible-to-b/tenant_override:header:X-Org-Id",
                "check": "brand is invisible to B",
                "variant": "tenant_override:header:X-Org-Id",
                "layer": "attack",
                "verdict": "fail",
                "summary": "B got 200 with A's brand",
                "evidence": [
                    {"label": "request", "text": "GET /brands/42 with X-Org-Id: org-a"},
                    {"label": "B got", "text": "200 application/json"},
                    {"label": "body", "text": "{\"id\": 42,\n \"name\": \"Acme <run>\"}"}
                ],
                "duration_ms": 120,
                "retries": 1
            })
        );
        assert!(results[0].get("retries").is_none(), "omitted when zero");
    }

    #[test]
    fn an_audit_without_suite_or_target_has_nulls_not_gaps() {
        let mut info = info();
        info.suite_path = None;
        info.suite_sha256 = None;
        info.target = None;
        let (results, summary) = fixture();
        let v: Value = serde_json::to_value(JsonReport::new(&info, &results, &summary)).unwrap();
        assert_eq!(v["suite"]["path"], Value::Null);
        assert_eq!(v["suite"]["sha256"], Value::Null);
        assert_eq!(v["target"], Value::Null);
    }

    #[test]
    fn verdict_words_follow_the_exit_code() {
        for (code, word) in [
            (0, "proven"),
            (1, "broken"),
            (2, "undecided"),
            (101, "undecided"),
        ] {
            let (results, mut summary) = fixture();
            summary.exit_code = code;
            let info = info();
            let v = serde_json::to_value(JsonReport::new(&info, &results, &summary)).unwrap();
            assert_eq!(v["verdict"], word);
        }
    }
}
