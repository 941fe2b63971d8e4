//! Reporters: the last stage of parse → plan → run → **report**.
//!
//! The runner and the database audit never print. They emit [`Event`]s — `Started`,
//! `Phase`, `Finished` per result, `Ended` — and [`Reporters`] fans each one out to every
//! configured [`Reporter`]:
//!
//! - [`Terminal`]: progress on stderr while running, then the table, the evidence of every
//!   failure and error, and the verdict line on stdout ([`render_table`] is its pure core);
//! - [`Junit`]: JUnit XML for CI test viewers, written once at `Ended`;
//! - [`Json`]: the JSON report an auditor keeps, a versioned contract, written once at
//!   `Ended`;
//! - [`Sarif`]: SARIF 2.1.0 for code-scanning viewers (GitHub), one result per finding;
//! - [`Html`]: one self-contained HTML page an auditor opens offline;
//! - [`Attestation`]: an in-toto test-result Statement, for signing and verification.
//!
//! [`files`] holds the flags that ask for the file reports and adds their reporters.
//!
//! A reporter that cannot write (full disk, closed pipe, unwritable path) must not change
//! the verdict or stop the run: [`Reporters`] keeps the first error of each reporter and
//! carries on; `main` shows them once the run is over. The exit code is decided in
//! [`crate::exit`] and arrives in [`RunSummary::exit_code`]; reporters only describe it.
//!
//! The layout of every output is documented in `docs/reports.md`.

mod attestation;
pub mod files;
mod html;
mod json;
mod junit;
mod sarif;
mod terminal;

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::Serialize;

use crate::exit;
use crate::outcome::{CheckResult, Created, Event, RunInfo, RunSummary};
use crate::redact::Redactor;

pub use attestation::{Attestation, PREDICATE_TYPE, STATEMENT_TYPE, attestation_statement};
pub use files::{ReportFlags, ReportPaths, SuiteLines, push_reporters};
pub use html::{Html, html_report};
pub use json::{Json, JsonReport, JsonSuite, JsonTool, SCHEMA_VERSION};
pub use junit::{Junit, junit_report};
pub use sarif::{FINGERPRINT_KEY, SARIF_SCHEMA, Sarif, rule_id, sarif_report};
pub use terminal::{ITEMISED_RESULTS_MAX, Terminal, TerminalOptions, render_table};

/// One consumer of run events. Implementations buffer what they need and write when they
/// choose (the terminal as results arrive, files at [`Event::Ended`]).
pub trait Reporter: Send {
    /// Handles one event. An error is recorded by [`Reporters`] and never stops the run.
    fn event(&mut self, event: &Event) -> io::Result<()>;
}

/// A configured reporter and whether it has already failed.
struct Slot {
    reporter: Box<dyn Reporter>,
    failed: bool,
}

/// Every configured reporter: fans one event out to all of them, in the order they were
/// pushed, and collects the first I/O error of each instead of stopping the run.
///
/// A reporter that failed keeps receiving events: a broken progress pipe must not cost
/// the final table, and a later file write may still succeed.
#[derive(Default)]
pub struct Reporters {
    slots: Vec<Slot>,
    errors: Vec<String>,
}

impl Reporters {
    /// No reporters yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a reporter; it receives events after those pushed before it.
    pub fn push(&mut self, r: Box<dyn Reporter>) {
        self.slots.push(Slot {
            reporter: r,
            failed: false,
        });
    }

    /// Sends one event to every reporter. Never fails: see [`Reporters::errors`].
    pub fn event(&mut self, e: &Event) {
        for slot in &mut self.slots {
            if let Err(err) = slot.reporter.event(e)
                && !slot.failed
            {
                slot.failed = true;
                self.errors.push(err.to_string());
            }
        }
    }

    /// The first error of each reporter that failed, in the order they occurred. Each
    /// message names the output it concerns (e.g. the report's path).
    pub fn errors(&self) -> &[String] {
        &self.errors
    }
}

/// The verdict of a whole run, as words: the meaning of the exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunVerdict {
    /// Exit 0: every result passed (warnings allowed unless denied) and at least one ran.
    Proven,
    /// Exit 1: at least one proven isolation failure (or a denied warning).
    Broken,
    /// Exit 2: nothing failed, but something could not be decided.
    Undecided,
}

impl RunVerdict {
    /// The verdict the exit code stands for. Any code other than 0 and 1 is undecided:
    /// exit 1 is reserved for proven failures, so an unknown code must never read as one.
    pub fn from_exit_code(code: u8) -> Self {
        match code {
            exit::PROVEN => RunVerdict::Proven,
            exit::ISOLATION_FAILURE => RunVerdict::Broken,
            _ => RunVerdict::Undecided,
        }
    }

    /// `proven`, `broken` or `undecided`, as in the JSON report.
    pub fn as_str(self) -> &'static str {
        match self {
            RunVerdict::Proven => "proven",
            RunVerdict::Broken => "broken",
            RunVerdict::Undecided => "undecided",
        }
    }
}

/// What the file reporters keep between `Started` and `Ended`.
#[derive(Default)]
struct Collected {
    info: Option<RunInfo>,
    results: Vec<CheckResult>,
    /// Applied to every string just before a file is written (see [`redacted`]).
    redactor: Option<Redactor>,
}

impl Collected {
    /// Records `Started` and `Finished`; returns the summary at `Ended`.
    fn take<'e>(&mut self, event: &'e Event) -> Option<&'e RunSummary> {
        match event {
            Event::Started(info) => {
                self.info = Some(info.clone());
                self.results.clear();
                None
            }
            Event::Phase(_) | Event::Progress(_) => None,
            Event::Finished(r) => {
                self.results.push(r.clone());
                None
            }
            Event::Ended(summary) => Some(summary),
        }
    }

    /// The run's header, or an error naming the output: a run that ends without having
    /// started is a bug in the runner, and a report without its header is worthless.
    fn info(&self, what: &str) -> io::Result<&RunInfo> {
        self.info.as_ref().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{what}: the run ended without a Started event; nothing written"),
            )
        })
    }
}

/// Copies of the header, results and summary with every registered secret replaced.
///
/// Every string in an [`Event`] should already be redacted (see [`crate::outcome`]); this
/// is the last line of defence for the files that outlive the run. It works on the
/// structures rather than on the serialized text because a secret holding `"` or `\`
/// would no longer match once escaped.
fn redacted(
    r: &Redactor,
    info: &RunInfo,
    results: &[CheckResult],
    summary: &RunSummary,
) -> (RunInfo, Vec<CheckResult>, RunSummary) {
    let s = |t: &String| r.redact(t);
    let o = |t: &Option<String>| t.as_ref().map(|t| r.redact(t));
    let info = RunInfo {
        suite_name: s(&info.suite_name),
        suite_path: o(&info.suite_path),
        suite_sha256: info.suite_sha256.clone(),
        run_id: info.run_id.clone(),
        target: o(&info.target),
        tool_version: info.tool_version.clone(),
        started_at: info.started_at.clone(),
        partition: info.partition,
        env_read: info.env_read.clone(),
        allowed_origins: info.allowed_origins.iter().map(s).collect(),
        load_notices: info.load_notices.iter().map(s).collect(),
    };
    let results = results
        .iter()
        .map(|c| {
            let mut c = c.clone();
            redact_result(r, &mut c);
            c
        })
        .collect();
    let mut summary = summary.clone();
    summary.notices = summary.notices.iter().map(s).collect();
    summary.created = summary
        .created
        .iter()
        .map(|c| Created {
            org: s(&c.org),
            what: s(&c.what),
            ids: c.ids.iter().map(s).collect(),
            removed: c.removed,
            kept: c.kept.as_ref().map(s),
        })
        .collect();
    (info, results, summary)
}

/// One result with every registered secret replaced, in place (see [`redacted`]): a
/// reporter that owns its results redacts them without a second copy.
fn redact_result(r: &Redactor, c: &mut CheckResult) {
    for t in [&mut c.id, &mut c.check, &mut c.variant, &mut c.summary] {
        *t = r.redact(t);
    }
    for e in &mut c.evidence {
        e.label = r.redact(&e.label);
        e.text = r.redact(&e.text);
    }
}

/// Writes `bytes` to `path` so that readers see the old file or the new one, never half
/// of one: a CI step or an auditor may pick the report up while a rerun is writing it.
/// Missing parent directories are created (`--junit target/reports/junit.xml`).
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    write_atomically_with(path, |f| f.write_all(bytes))
}

/// [`write_atomically`], the content written by `write` (buffered): a large report is
/// serialized straight into the file instead of into one string first.
fn write_atomically_with(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> io::Result<()> {
    let tmp = temp_path(path, "tmp")?;
    let written = (|| {
        let mut f = io::BufWriter::new(fs::File::create(&tmp)?);
        write(&mut f)?;
        let f = f.into_inner().map_err(io::IntoInnerError::into_error)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// A hidden temporary file beside `path` (its directory created): `.NAME.PID.SUFFIX`.
/// Same directory as the target so a rename cannot cross file systems; the pid keeps
/// two concurrent runs from writing into each other's file.
fn temp_path(path: &Path, suffix: &str) -> io::Result<std::path::PathBuf> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    fs::create_dir_all(dir)?;
    Ok(dir.join(format!(
        ".{}.{}.{suffix}",
        name.to_string_lossy(),
        std::process::id()
    )))
}

/// Adds the output's name and path to an I/O error, so that `Reporters::errors` reads
/// e.g. `cannot write the JUnit report to out/junit.xml: Not a directory`.
fn context(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot write the {what} to {}: {e}", path.display()),
    )
}

/// The evidence of a result as indented text: `label: text` for one line; the label on
/// its own line and the text indented below it when the text spans several lines.
/// Shared by the terminal's detail blocks and the JUnit failure bodies so both read alike.
fn evidence_text(r: &CheckResult, indent: &str) -> String {
    let mut out = String::new();
    for e in &r.evidence {
        let text = e.text.trim_end_matches(['\n', '\r']);
        if text.contains('\n') {
            out.push_str(&format!("{indent}{}:\n", e.label));
            for line in text.lines() {
                out.push_str(&format!("{indent}    {line}\n"));
            }
        } else {
            out.push_str(&format!("{indent}{}: {text}\n", e.label));
        }
    }
    out
}

/// `check [variant]`, or just `check` for the base variant: how a result is named in the
/// progress lines, the detail blocks and JUnit.
fn display_name(r: &CheckResult) -> String {
    if r.variant == "base" || r.variant.is_empty() {
        r.check.clone()
    } else {
        format!("{} [{}]", r.check, r.variant)
    }
}

// SHA-256 of `bytes`, lowercase hex: the digests of the SARIF fingerprints and of the
// attestation (the reporters reach it as `super::sha256_hex`).
use crate::digest::sha256_hex;

/// SHA-256 of `bytes`, base64: the hash a Content-Security-Policy names a script by.
fn sha256_b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// `1 check` / `2 checks`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
pub(crate) mod tests;
