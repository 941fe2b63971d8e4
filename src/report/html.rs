//! The HTML reporter (report stage): one self-contained page an auditor opens offline.
//! Summary counts, a matrix of checks × attack variants coloured by verdict, the
//! database findings per table, the evidence of every failure, error and warning, and
//! the suite digest and tool version.
//!
//! Everything that came from the target or the suite is hostile input (a response body
//! can hold `<script>`): every string goes through [`esc`]. On top of that the page
//! carries a Content-Security-Policy that loads nothing from anywhere and runs only its
//! own inline script (allowed by its SHA-256), so even a mistake in escaping could not
//! run a script or fetch a resource.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;

use super::{
    Collected, RunVerdict, context, display_name, plural, redacted, sha256_b64, write_atomically,
};
use crate::outcome::{CheckResult, Event, Layer, RunInfo, RunSummary, Verdict};
use crate::redact::Redactor;

/// The page's only script: the "only problems" filter of the matrix. It also marks the
/// document as having run it, which the browser test reads.
const SCRIPT: &str = r#"(function () {
  var box = document.getElementById('only-problems');
  function apply() {
    var rows = document.querySelectorAll('tr[data-problem="0"]');
    for (var i = 0; i < rows.length; i++) { rows[i].hidden = box.checked; }
  }
  if (box) { box.addEventListener('change', apply); apply(); }
  document.documentElement.setAttribute('data-script', 'ran');
})();"#;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1b1f23; }
h1 { font-size: 1.5em; margin: 0 0 .3em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
.verdict { font-weight: bold; font-size: 1.2em; padding: .3em .6em; display: inline-block; border-radius: 4px; }
.verdict.proven { background: #d4f7dc; } .verdict.broken { background: #ffd7d5; } .verdict.undecided { background: #fff1c2; }
dl.meta { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; }
dl.meta dt { font-weight: bold; } code, pre { font-family: ui-monospace, monospace; font-size: 12px; }
ul.counts { list-style: none; padding: 0; display: flex; gap: 1em; }
ul.counts li { padding: .4em .8em; border-radius: 4px; } ul.counts b { font-size: 1.3em; }
table { border-collapse: collapse; margin: .5em 0; } th, td { border: 1px solid #ddd; padding: .25em .5em; text-align: left; vertical-align: top; }
div.scroll { overflow-x: auto; } table.matrix tbody th { min-width: 16em; } table.matrix td { text-align: center; min-width: 2.5em; } table.matrix thead th { font-size: 11px; font-weight: normal; }
.v-pass { background: #d4f7dc; } .v-fail { background: #ff9f99; font-weight: bold; } .v-error { background: #ffd27a; font-weight: bold; }
.v-warn { background: #fff1c2; } .v-skip { background: #eee; color: #555; } .v-none { color: #bbb; }
td a { color: inherit; } article { border-left: 4px solid #ccc; padding: .2em 1em; margin: 1em 0; }
article.v-fail { border-color: #d73a49; background: none; } article.v-error { border-color: #e5a100; background: none; } article.v-warn { border-color: #dbab09; background: none; }
pre { white-space: pre-wrap; word-break: break-all; background: #f6f8fa; padding: .4em; margin: .2em 0; }
.notice { color: #b31d28; font-weight: bold; }
"#;

/// Writes the HTML page at [`Event::Ended`], atomically.
pub struct Html {
    path: PathBuf,
    deny_warnings: bool,
    collected: Collected,
}

impl Html {
    /// An HTML reporter writing to `path`.
    pub fn new(path: PathBuf, deny_warnings: bool) -> Self {
        Html {
            path,
            deny_warnings,
            collected: Collected::default(),
        }
    }

    /// Redacts every registered secret before the file is written.
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.collected.redactor = Some(redactor);
        self
    }
}

impl super::Reporter for Html {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let Some(summary) = self.collected.take(event) else {
            return Ok(());
        };
        let what = "HTML report";
        let info = self.collected.info(what)?;
        let page = match &self.collected.redactor {
            Some(r) => {
                let (info, results, summary) = redacted(r, info, &self.collected.results, summary);
                html_report(&info, &results, &summary, self.deny_warnings)
            }
            None => html_report(info, &self.collected.results, summary, self.deny_warnings),
        };
        write_atomically(&self.path, page.as_bytes()).map_err(|e| context(what, &self.path, e))
    }
}

/// Escapes text for HTML content and quoted attribute values, and drops what no page
/// should carry: control characters other than tab and line breaks (terminal escape
/// sequences included) and the non-characters U+FFFE / U+FFFF.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

/// The page for a run: pure, so tests can inspect it without a file.
pub fn html_report(
    info: &RunInfo,
    results: &[CheckResult],
    summary: &RunSummary,
    deny_warnings: bool,
) -> String {
    // Anchors of the evidence blocks, by index in `results`.
    let shown =
        |r: &CheckResult| matches!(r.verdict, Verdict::Fail | Verdict::Error | Verdict::Warn);
    let anchors: HashMap<usize, String> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| shown(r))
        .map(|(i, _)| (i, format!("r-{i}")))
        .collect();
    let verdict = RunVerdict::from_exit_code(summary.exit_code);
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\" data-verdict=\"{v}\" data-exit-code=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>tenantgate: {suite} — {v}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        v = verdict.as_str(),
        code = summary.exit_code,
        hash = sha256_b64(SCRIPT.as_bytes()),
        suite = esc(&info.suite_name),
    );
    header(&mut h, info, summary, verdict);
    counts(&mut h, summary, deny_warnings);
    matrix(&mut h, results, &anchors);
    database(&mut h, results, &anchors);
    evidence(&mut h, results, &anchors);
    let _ = write!(
        h,
        "<footer><p>Written by tenantgate {} · run <code>{}</code></p></footer>\n<script>{SCRIPT}</script>\n</body>\n</html>\n",
        esc(&info.tool_version),
        esc(&info.run_id)
    );
    h
}

fn header(h: &mut String, info: &RunInfo, summary: &RunSummary, verdict: RunVerdict) {
    let line = match verdict {
        RunVerdict::Proven => format!("isolation proven (exit {})", summary.exit_code),
        RunVerdict::Broken => format!("ISOLATION BROKEN (exit {})", summary.exit_code),
        RunVerdict::Undecided => format!("UNDECIDED (exit {})", summary.exit_code),
    };
    let _ = write!(
        h,
        "<header>\n<h1>tenantgate report: {}</h1>\n<p class=\"verdict {}\" id=\"verdict\">{}</p>\n<dl class=\"meta\">\n",
        esc(&info.suite_name),
        verdict.as_str(),
        esc(&line)
    );
    let mut row = |k: &str, v: &str, id: &str| {
        let _ = writeln!(
            h,
            "<dt>{k}</dt><dd id=\"{id}\"><code>{}</code></dd>",
            esc(v)
        );
    };
    row("suite", &info.suite_name, "meta-suite");
    if let Some(p) = &info.suite_path {
        row("suite file", p, "meta-suite-path");
    }
    if let Some(s) = &info.suite_sha256 {
        row("suite sha256", s, "meta-suite-sha256");
    }
    if let Some(t) = &info.target {
        row("target", t, "meta-target");
    }
    row("run id", &info.run_id, "meta-run-id");
    row("started", &info.started_at, "meta-started");
    row(
        "duration",
        &format!("{:.2}s", summary.duration.as_secs_f64()),
        "meta-duration",
    );
    row("tool version", &info.tool_version, "meta-tool-version");
    h.push_str("</dl>\n</header>\n");
}

fn counts(h: &mut String, summary: &RunSummary, deny_warnings: bool) {
    let c = &summary.counts;
    let warn_word = if c.accepted > 0 {
        format!("warnings ({} accepted)", c.accepted)
    } else {
        "warnings".to_string()
    };
    h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<ul class=\"counts\">\n");
    for (key, n, word) in [
        ("pass", c.pass, "passed"),
        ("fail", c.fail, "failed"),
        ("error", c.error, "errors"),
        ("warn", c.warn, warn_word.as_str()),
        ("skip", c.skip, "skipped"),
    ] {
        let _ = writeln!(
            h,
            "<li class=\"v-{key}\" data-count=\"{key}\"><b>{n}</b> {word}</li>"
        );
    }
    h.push_str("</ul>\n");
    if deny_warnings {
        h.push_str("<p>Warnings fail the gate (<code>--deny-warnings</code>).</p>\n");
    }
    if summary.incomplete {
        h.push_str("<p class=\"notice\">INCOMPLETE: interrupted before every check ran; this report is partial.</p>\n");
    }
    for n in &summary.notices {
        let _ = writeln!(h, "<p class=\"notice\">NOTICE: {}</p>", esc(n));
    }
    let left: Vec<_> = summary.created.iter().filter(|c| !c.removed).collect();
    for c in &left {
        let _ = writeln!(
            h,
            "<p class=\"notice\">LEFT ON THE TARGET: org {}: {} {}{}</p>",
            esc(&c.org),
            esc(&c.what),
            esc(&c.ids.join(", ")),
            c.kept
                .as_ref()
                .map(|r| format!(" (kept: {})", esc(r)))
                .unwrap_or_default()
        );
    }
    h.push_str("</section>\n");
}

/// Rows: setup steps and checks (a check's base result and its variants share a row);
/// columns: `base` and every variant, in the order they first appear.
fn matrix(h: &mut String, results: &[CheckResult], anchors: &HashMap<usize, String>) {
    let mut rows: Vec<(String, String)> = Vec::new(); // (key, label)
    let mut cols: Vec<String> = Vec::new();
    let mut cells: HashMap<(String, String), usize> = HashMap::new();
    for (i, r) in results.iter().enumerate() {
        if !matches!(r.layer, Layer::Setup | Layer::Http | Layer::Attack) {
            continue;
        }
        let key = match r.layer {
            Layer::Setup => r.id.clone(),
            _ => r.id.split('/').next().unwrap_or(&r.id).to_string(),
        };
        let col = if r.variant.is_empty() {
            "base".to_string()
        } else {
            r.variant.clone()
        };
        if !rows.iter().any(|(k, _)| *k == key) {
            rows.push((key.clone(), r.check.clone()));
        }
        if !cols.contains(&col) {
            cols.push(col.clone());
        }
        cells.entry((key, col)).or_insert(i);
    }
    h.push_str("<section id=\"matrix\">\n<h2>Checks × attack variants</h2>\n");
    if rows.is_empty() {
        h.push_str("<p>No HTTP check ran.</p>\n</section>\n");
        return;
    }
    h.push_str("<p><label><input type=\"checkbox\" id=\"only-problems\"> show only checks with a failure, error or warning</label></p>\n");
    h.push_str("<div class=\"scroll\"><table class=\"matrix\">\n<thead><tr><th>check</th>");
    for c in &cols {
        let _ = write!(h, "<th>{}</th>", esc(c));
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    for (key, label) in &rows {
        let problem = cols.iter().any(|c| {
            cells
                .get(&(key.clone(), c.clone()))
                .is_some_and(|i| anchors.contains_key(i))
        });
        let _ = write!(
            h,
            "<tr data-problem=\"{}\"><th>{}</th>",
            u8::from(problem),
            esc(label)
        );
        for c in &cols {
            match cells.get(&(key.clone(), c.clone())) {
                None => h.push_str("<td class=\"v-none\">·</td>"),
                Some(&i) => {
                    let r = &results[i];
                    let v = r.verdict.as_str();
                    let word = match anchors.get(&i) {
                        Some(a) => format!("<a href=\"#{a}\">{v}</a>"),
                        None => v.to_string(),
                    };
                    let _ = write!(
                        h,
                        "<td class=\"v-{v}\" data-verdict=\"{v}\" data-id=\"{}\" title=\"{}\">{word}</td>",
                        esc(&r.id),
                        esc(&r.summary)
                    );
                }
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody>\n</table></div>\n</section>\n");
}

/// One block per audited object (table, role, function, the database): every finding
/// on its own row, the passes folded into one.
fn database(h: &mut String, results: &[CheckResult], anchors: &HashMap<usize, String>) {
    let mut objects: Vec<&str> = Vec::new();
    let mut by_object: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, r) in results.iter().enumerate() {
        if matches!(r.layer, Layer::Database | Layer::Probe) {
            if !by_object.contains_key(r.check.as_str()) {
                objects.push(&r.check);
            }
            by_object.entry(&r.check).or_default().push(i);
        }
    }
    // Objects with a finding or a skip first (in audit order), then the clean ones.
    objects.sort_by_key(|o| {
        !by_object[o]
            .iter()
            .any(|&i| results[i].verdict != Verdict::Pass)
    });
    h.push_str("<section id=\"database\">\n<h2>Database findings per table</h2>\n");
    if objects.is_empty() {
        h.push_str("<p>No database audit ran.</p>\n</section>\n");
        return;
    }
    h.push_str("<table class=\"db\">\n<thead><tr><th>object</th><th>rule</th><th>verdict</th><th>summary</th></tr></thead>\n");
    for o in objects {
        let idx = &by_object[o];
        let passes: Vec<&str> = idx
            .iter()
            .map(|&i| &results[i])
            .filter(|r| r.verdict == Verdict::Pass)
            .map(|r| r.variant.as_str())
            .collect();
        let _ = write!(h, "<tbody data-object=\"{}\">", esc(o));
        let mut first = true;
        let name = |first: &mut bool| {
            let cell = if *first {
                format!("<th>{}</th>", esc(o))
            } else {
                "<th></th>".to_string()
            };
            *first = false;
            cell
        };
        for &i in idx {
            let r = &results[i];
            if r.verdict == Verdict::Pass {
                continue;
            }
            let v = r.verdict.as_str();
            let word = match anchors.get(&i) {
                Some(a) => format!("<a href=\"#{a}\">{v}</a>"),
                None => v.to_string(),
            };
            let _ = write!(
                h,
                "<tr>{}<td>{}</td><td class=\"v-{v}\" data-verdict=\"{v}\">{word}</td><td>{}{}</td></tr>",
                name(&mut first),
                esc(&r.variant),
                esc(&r.summary),
                accepted_note(r)
            );
        }
        if !passes.is_empty() {
            let _ = write!(
                h,
                "<tr>{}<td colspan=\"2\" class=\"v-pass\">{} pass</td><td>{}</td></tr>",
                name(&mut first),
                plural(passes.len(), "rule"),
                esc(&passes.join(", "))
            );
        }
        h.push_str("</tbody>\n");
    }
    h.push_str("</table>\n</section>\n");
}

/// ` — accepted: REASON` for a warning the suite accepts (`accept:`).
fn accepted_note(r: &CheckResult) -> String {
    match r.accepted.as_deref().filter(|_| r.verdict == Verdict::Warn) {
        Some(reason) => format!(
            " <span class=\"accepted\" data-accepted=\"true\">— accepted: {}</span>",
            esc(reason)
        ),
        None => String::new(),
    }
}

fn evidence(h: &mut String, results: &[CheckResult], anchors: &HashMap<usize, String>) {
    h.push_str("<section id=\"evidence\">\n<h2>Evidence</h2>\n");
    let mut any = false;
    for (i, r) in results.iter().enumerate() {
        let Some(anchor) = anchors.get(&i) else {
            continue;
        };
        any = true;
        let v = r.verdict.as_str();
        let _ = write!(
            h,
            "<article id=\"{anchor}\" class=\"v-{v}\" data-verdict=\"{v}\">\n<h3>{} {}</h3>\n<p>id <code>{}</code> · layer {}</p>\n<p class=\"summary\">{}{}</p>\n<dl>\n",
            v.to_uppercase(),
            esc(&display_name(r)),
            esc(&r.id),
            r.layer.as_str(),
            esc(&r.summary),
            accepted_note(r)
        );
        for e in &r.evidence {
            let _ = writeln!(
                h,
                "<dt>{}</dt><dd><pre>{}</pre></dd>",
                esc(&e.label),
                esc(e.text.trim_end_matches(['\n', '\r']))
            );
        }
        h.push_str("</dl>\n</article>\n");
    }
    if !any {
        h.push_str("<p>No failure, error or warning.</p>\n");
    }
    h.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{fixture, info};

    #[test]
    fn page_has_counts_matrix_database_and_evidence() {
        let (results, summary) = fixture();
        let page = html_report(&info(), &results, &summary, false);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("<li class=\"v-fail\" data-count=\"fail\"><b>1</b> failed</li>"));
        assert!(page.contains("9f86d081884c7d65") && page.contains(">0.1.0<"));
        // One matrix row for the check, holding base and variant.
        assert_eq!(page.matches("<tr data-problem=").count(), 3);
        assert!(page.contains("data-object=\"public.unique_email\""));
        assert_eq!(page.matches("<article ").count(), 3);
        assert!(page.contains("&quot;name&quot;: &quot;Acme &lt;run&gt;&quot;"));
        assert!(!page.contains("src=") && !page.contains("href=\"http"));
    }

    #[test]
    fn hostile_text_is_escaped() {
        let evil = "<script>alert(1)</script><img src=x onerror=alert(2)> \"' \x1b[31m\u{FFFE}";
        let r =
            CheckResult::new("e", evil, evil, Layer::Http, Verdict::Fail, evil).with(evil, evil);
        let summary = crate::report::tests::summary_for(std::slice::from_ref(&r), false);
        let page = html_report(&info(), &[r], &summary, false);
        assert_eq!(page.matches("<script>").count(), 1, "only the page's own");
        assert!(!page.contains("<img") && !page.contains('\x1b') && !page.contains('\u{FFFE}'));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }
}
