//! The run's output channel (run stage → report): every result and phase as an
//! [`Event`], in order, and the summary that closes the run — the one place the exit
//! status is decided from the counts.

use std::time::Instant;

use crate::outcome::{CheckResult, Counts, Created, Event, Layer, RunInfo, RunSummary, Verdict};
use crate::redact::Redactor;

/// Everything the run emits, in order. Results are streamed to the sink, not kept: the
/// emitter holds only what the summary needs (the counts), the HTTP failures' ids, and
/// the result ids when `--filter` needs them (for its "matches nothing" notice).
pub(crate) struct Emitter<'a> {
    sink: &'a mut (dyn FnMut(Event) + Send + Sync),
    /// The one redaction step everything emitted passes (results, notices, created ids).
    redactor: Redactor,
    counts: Counts,
    /// The result ids, kept only when a filter must be judged against them
    /// ([`Emitter::keep_ids`]): at 10,000 results they were most of what a run grows by.
    ids: Option<Vec<String>>,
    /// The HTTP and attack results: the ids of the failures, and how many passed (the
    /// database stage puts each table's HTTP verdict next to its database verdict).
    http_failed: Vec<String>,
    http_passed: usize,
    /// The digest of the database catalog snapshot (the database stage sets it).
    catalog_sha256: Option<String>,
    started: Instant,
    /// The suite's `accept:` list: pattern, reason, and what it met (a warning; only
    /// other verdicts).
    accept: Vec<Acceptance>,
}

/// One `accept:` entry while the run goes.
struct Acceptance {
    pattern: String,
    reason: String,
    warnings: usize,
    others: usize,
}

impl<'a> Emitter<'a> {
    /// Opens a run: emits `Started`.
    pub(crate) fn start(
        sink: &'a mut (dyn FnMut(Event) + Send + Sync),
        info: RunInfo,
        redactor: &Redactor,
    ) -> Self {
        sink(Event::Started(info));
        Emitter {
            sink,
            redactor: redactor.clone(),
            counts: Counts::default(),
            ids: None,
            http_failed: Vec::new(),
            http_passed: 0,
            catalog_sha256: None,
            started: Instant::now(),
            accept: Vec::new(),
        }
    }

    /// Marks the warnings the suite's `accept:` entries match as accepted, from now on.
    pub(crate) fn accepting(&mut self, entries: &[crate::suite::model::Accept]) {
        self.accept = entries
            .iter()
            .map(|a| Acceptance {
                pattern: a.id.value.trim().to_string(),
                reason: a.reason.value.trim().to_string(),
                warnings: 0,
                others: 0,
            })
            .collect();
    }

    pub(crate) fn result(&mut self, mut r: CheckResult) {
        r.summary = self.redactor.redact(&r.summary);
        for e in &mut r.evidence {
            e.text = self.redactor.redact(&e.text);
        }
        // Only a warning can be accepted: a failure or an error stays what it is.
        if let Some(a) = self
            .accept
            .iter_mut()
            .find(|a| crate::plan::pattern_matches(&a.pattern, &r.id))
        {
            if r.verdict == Verdict::Warn {
                a.warnings += 1;
                r.accepted = Some(self.redactor.redact(&a.reason));
            } else if matches!(r.verdict, Verdict::Fail | Verdict::Error) {
                a.others += 1;
            }
        }
        self.counts.add(r.verdict);
        if r.accepted.is_some() {
            self.counts.accepted += 1;
        }
        if let Some(ids) = &mut self.ids {
            ids.push(r.id.clone());
        }
        if matches!(r.layer, Layer::Http | Layer::Attack) {
            match r.verdict {
                Verdict::Fail => self.http_failed.push(r.id.clone()),
                Verdict::Pass => self.http_passed += 1,
                _ => {}
            }
        }
        (self.sink)(Event::Finished(r));
    }

    pub(crate) fn phase(&mut self, s: impl Into<String>) {
        (self.sink)(Event::Phase(s.into()));
    }

    /// Where the check stage stands: the terminal draws it in place, or prints it every
    /// few seconds when stderr is not a terminal.
    pub(crate) fn progress(&mut self, done: usize, total: usize, in_flight: usize) {
        (self.sink)(Event::Progress(crate::outcome::Progress {
            done,
            total,
            in_flight,
        }));
    }

    /// Records the digest of the catalog snapshot the database audit judged.
    pub(crate) fn catalog(&mut self, sha256: Option<String>) {
        self.catalog_sha256 = sha256;
    }

    /// The HTTP and attack layers so far: the ids of their failures, and how many of
    /// their results passed.
    pub(crate) fn http_verdicts(&self) -> (&[String], usize) {
        (&self.http_failed, self.http_passed)
    }

    /// From now on, keep the ids of the results ([`Emitter::ids`]).
    pub(crate) fn keep_ids(&mut self) {
        self.ids.get_or_insert_with(Vec::new);
    }

    /// The ids of the results since [`Emitter::keep_ids`] (none before it).
    pub(crate) fn ids(&self) -> &[String] {
        self.ids.as_deref().unwrap_or_default()
    }

    /// Whether a result so far is an error (a stage that cannot go on).
    pub(crate) fn has_error(&self) -> bool {
        self.counts.error > 0
    }

    /// Closes the run: the counts, the exit status (decided here and nowhere else) and
    /// `Ended`.
    pub(crate) fn finish(
        self,
        created: Vec<Created>,
        notices: Vec<String>,
        interrupted: bool,
        undecided: bool,
        deny_warnings: bool,
    ) -> RunSummary {
        let mut created = created;
        for c in &mut created {
            c.ids = c.ids.iter().map(|i| self.redactor.redact(i)).collect();
        }
        let mut notices: Vec<String> = notices.iter().map(|n| self.redactor.redact(n)).collect();
        for a in &self.accept {
            if a.warnings > 0 {
                continue;
            }
            notices.push(if a.others > 0 {
                format!(
                    "accept `{}` matches {} failure(s) or error(s) and no warning: only warnings can be accepted",
                    a.pattern, a.others
                )
            } else {
                format!(
                    "accept `{}` matched no warning in this run: remove it if it is stale",
                    a.pattern
                )
            });
        }
        let counts = self.counts;
        let summary = RunSummary {
            counts,
            duration: self.started.elapsed(),
            exit_code: crate::exit::for_counts(&counts, deny_warnings, interrupted || undecided),
            incomplete: interrupted,
            created,
            notices,
            catalog_sha256: self.catalog_sha256.clone(),
        };
        (self.sink)(Event::Ended(summary.clone()));
        summary
    }
}

/// The `Started` event of a run.
pub(crate) fn run_info(
    suite_name: &str,
    suite: Option<(&str, &str)>,
    run_id: &str,
    target: Option<String>,
) -> RunInfo {
    RunInfo {
        suite_name: suite_name.to_string(),
        suite_path: suite.map(|(p, _)| p.to_string()),
        suite_sha256: suite.map(|(_, h)| h.to_string()),
        run_id: run_id.to_string(),
        target,
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: super::options::now_rfc3339(),
        partition: None,
        env_read: Vec::new(),
        allowed_origins: Vec::new(),
        load_notices: Vec::new(),
    }
}

/// An error of the run's own stages (setup, teardown, the command line): redacted, one
/// line.
pub(crate) fn setup_error(
    id: &str,
    name: &str,
    summary: impl std::fmt::Display,
    evidence: Vec<(String, String)>,
    redactor: &Redactor,
) -> CheckResult {
    let mut r = CheckResult::new(
        id,
        name,
        "setup",
        Layer::Setup,
        Verdict::Error,
        one_line(&redactor.redact(&summary.to_string())),
    );
    for (l, t) in evidence {
        r = r.with(l, redactor.redact(&t));
    }
    r
}

/// A summary as the one line every report promises: line breaks (from a server's
/// message, a suite value, a library's error) become spaces.
pub(crate) fn one_line(s: &str) -> String {
    if !s.contains(['\n', '\r']) {
        return s.to_string();
    }
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
