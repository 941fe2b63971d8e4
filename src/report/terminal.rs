//! The terminal reporter (report stage): short progress lines on stderr while the run
//! goes, then on stdout the table of results, the evidence of every failure and error,
//! and a footer that ends with the verdict in words.
//!
//! Everything printed at the end comes from [`render_table`], a pure function, so the
//! exact text is snapshot-tested. The footer's duration is the only timing in it.

use std::io::{self, Write};

use comfy_table::{Attribute, Cell, Color, Table, presets};

use super::{RunVerdict, display_name, evidence_text, plural};
use crate::outcome::{CheckResult, Counts, Event, Layer, RunInfo, RunSummary, Verdict};

/// Up to this many results, the table has a row for each. Above it (a database audit can
/// produce 100 000 passes) it shows the counts per layer and a row for each result that
/// did not pass, so a green run fits on one screen; verbose output lists every row.
pub const ITEMISED_RESULTS_MAX: usize = 40;

/// The Evidence column shows at most this many characters of a result's summary; the
/// full evidence of failures and errors follows the table.
const EVIDENCE_WIDTH: usize = 50;

/// Check names and variants are identifiers and are shown whole, up to this length: a
/// longer one is almost certainly data (a URL) and would break the table.
const NAME_WIDTH: usize = 72;

/// How the terminal reporter prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TerminalOptions {
    /// Show every result as its own row, passes included, however many there are.
    pub verbose: bool,
    /// Colour the verdict words with ANSI codes. Off for pipes, files and `NO_COLOR`.
    pub color: bool,
    /// `--deny-warnings` is in effect: warnings fail the gate, so their evidence is shown
    /// alongside failures.
    pub deny_warnings: bool,
    /// `--quiet`: no progress and no table, only the verdict line at the end (errors of
    /// tenantgate itself are still printed by the command).
    pub quiet: bool,
    /// Progress goes to a terminal: the check counter is redrawn in place. Otherwise it
    /// is a line every 5 seconds (`PROGRESS_LINE_EVERY`), so a CI log never looks hung.
    pub live: bool,
}

/// When progress does not go to a terminal: at most one counter line this often.
pub const PROGRESS_LINE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Prints progress to `progress` (stderr) as results arrive and the final report to `out`
/// (stdout) at [`Event::Ended`].
pub struct Terminal<W: Write + Send> {
    out: W,
    progress: Box<dyn Write + Send>,
    opts: TerminalOptions,
    info: Option<RunInfo>,
    results: Vec<CheckResult>,
    /// Passes counted per layer and not kept: once a run has more results than one
    /// screen lists ([`ITEMISED_RESULTS_MAX`]) and `--verbose` is off, a pass is only a
    /// number in the per-layer table.
    folded: Vec<(Layer, usize)>,
    counts: Counts,
    /// The in-place counter is on the screen (live mode): cleared before other lines.
    status_shown: bool,
    /// When the last counter line was printed (not live).
    last_progress: Option<std::time::Instant>,
}

impl<W: Write + Send> Terminal<W> {
    /// A terminal reporter writing the final report to `out` and progress to `progress`.
    pub fn new(out: W, progress: Box<dyn Write + Send>, opts: TerminalOptions) -> Self {
        Terminal {
            out,
            progress,
            opts,
            info: None,
            results: Vec::new(),
            folded: Vec::new(),
            counts: Counts::default(),
            status_shown: false,
            last_progress: None,
        }
    }

    /// Gives back the final-report writer (tests read what was printed).
    pub fn into_inner(self) -> W {
        self.out
    }

    fn progress_line(&mut self, line: &str) -> io::Result<()> {
        if self.opts.quiet {
            return Ok(());
        }
        // Over the in-place counter: clear it first (it is redrawn at the next tick).
        let clear = if std::mem::take(&mut self.status_shown) {
            "\r\x1b[K"
        } else {
            ""
        };
        writeln!(self.progress, "{clear}{line}")
            .and_then(|()| self.progress.flush())
            .map_err(|e| io::Error::new(e.kind(), format!("cannot write progress: {e}")))
    }

    /// The check counter: in place on a terminal, else a line every few seconds.
    fn progress_counter(&mut self, p: &crate::outcome::Progress) -> io::Result<()> {
        if self.opts.quiet {
            return Ok(());
        }
        let c = &self.counts;
        let mut line = format!(
            "...   checks {}/{} done, {} in flight",
            p.done, p.total, p.in_flight
        );
        if c.fail + c.error > 0 {
            line.push_str(&format!(
                " · {} failed, {}",
                c.fail,
                plural(c.error, "error")
            ));
        }
        if self.opts.live {
            self.status_shown = true;
            return write!(self.progress, "\r\x1b[K{line}")
                .and_then(|()| self.progress.flush())
                .map_err(|e| io::Error::new(e.kind(), format!("cannot write progress: {e}")));
        }
        let now = std::time::Instant::now();
        let last = *self.last_progress.get_or_insert(now);
        if now.duration_since(last) < PROGRESS_LINE_EVERY || p.done == p.total {
            return Ok(());
        }
        self.last_progress = Some(now);
        self.progress_line(&line)
    }
}

impl<W: Write + Send> super::Reporter for Terminal<W> {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        match event {
            Event::Started(info) => {
                self.info = Some(info.clone());
                let line = format!(
                    "{}   {} ({}), run {}",
                    paint("RUN", Style::Bold, self.opts.color),
                    clean_line(&info.suite_name, NAME_WIDTH),
                    clean_line(
                        info.target.as_deref().unwrap_or("no target"),
                        2 * NAME_WIDTH
                    ),
                    info.run_id
                );
                self.progress_line(&line)
            }
            Event::Phase(phase) => {
                // The running count is the only trace passes leave while the run goes.
                let done = self.counts.total();
                let line = if done == 0 {
                    format!("...   {}", clean_line(phase, 100))
                } else {
                    format!("...   {} ({done} results so far)", clean_line(phase, 100))
                };
                self.progress_line(&line)
            }
            Event::Progress(p) => self.progress_counter(p),
            Event::Finished(r) => {
                // Keep the result before writing, so a broken stderr cannot cost the table.
                self.counts.add(r.verdict);
                if r.verdict == Verdict::Warn && r.accepted.is_some() {
                    self.counts.accepted += 1;
                }
                if r.verdict == Verdict::Pass {
                    let folded: usize = self.folded.iter().map(|(_, n)| n).sum();
                    if !self.opts.verbose && self.results.len() + folded >= ITEMISED_RESULTS_MAX {
                        // The end shows the compact form: count the passes.
                        for p in self.results.iter().filter(|p| p.verdict == Verdict::Pass) {
                            fold(&mut self.folded, p.layer);
                        }
                        self.results.retain(|p| p.verdict != Verdict::Pass);
                        fold(&mut self.folded, r.layer);
                        return Ok(());
                    }
                    // A pass is a table row (check, variant, summary) at most: its
                    // evidence is never printed, so it is not kept.
                    self.results.push(CheckResult {
                        id: String::new(),
                        evidence: Vec::new(),
                        check: r.check.clone(),
                        variant: r.variant.clone(),
                        summary: r.summary.clone(),
                        accepted: None,
                        ..*r
                    });
                    return Ok(());
                }
                self.results.push(r.clone());
                let line = format!(
                    "{}  {}  {}{}",
                    verdict_word(r.verdict, self.opts.color),
                    clean_line(&display_name(r), 2 * NAME_WIDTH),
                    clean_line(&r.summary, 100),
                    if r.accepted.is_some() {
                        " (accepted)"
                    } else {
                        ""
                    }
                );
                self.progress_line(&line)
            }
            Event::Ended(summary) => {
                if std::mem::take(&mut self.status_shown) && !self.opts.quiet {
                    let _ = write!(self.progress, "\r\x1b[K").and_then(|()| self.progress.flush());
                }
                let Some(info) = self.info.as_ref() else {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "terminal report: the run ended without a Started event",
                    ));
                };
                let text = if self.opts.quiet {
                    format!("{}\n", verdict_line(summary, &self.opts))
                } else {
                    render(&self.results, &self.folded, info, summary, &self.opts)
                };
                self.out
                    .write_all(text.as_bytes())
                    .and_then(|()| self.out.flush())
                    .map_err(|e| io::Error::new(e.kind(), format!("cannot write the report: {e}")))
            }
        }
    }
}

/// Everything the terminal prints at the end of a run: the table, a detail block per
/// failure and error, and the footer (counts, duration, notices, leftovers, verdict).
///
/// Pure and deterministic: the footer's duration is the only timing, and colour codes
/// appear only when `opts.color` is set, so tests compare the plain text exactly.
pub fn render_table(
    results: &[CheckResult],
    info: &RunInfo,
    summary: &RunSummary,
    opts: &TerminalOptions,
) -> String {
    render(results, &[], info, summary, opts)
}

/// Counts one pass of `layer` in `folded`.
fn fold(folded: &mut Vec<(Layer, usize)>, layer: Layer) {
    match folded.iter_mut().find(|(l, _)| *l == layer) {
        Some((_, n)) => *n += 1,
        None => folded.push((layer, 1)),
    }
}

/// [`render_table`] of `results` and the passes `folded` into counts per layer (which
/// are shown in the compact form only).
fn render(
    results: &[CheckResult],
    folded: &[(Layer, usize)],
    info: &RunInfo,
    summary: &RunSummary,
    opts: &TerminalOptions,
) -> String {
    let color = opts.color;
    let mut out = String::new();

    if results.is_empty() && folded.is_empty() {
        out.push_str("no results\n");
    } else if folded.is_empty() && (opts.verbose || results.len() <= ITEMISED_RESULTS_MAX) {
        out.push_str(&table(&results.iter().collect::<Vec<_>>(), color));
    } else {
        // Too many rows for one screen: the counts per layer, then only what did not
        // pass — a green run reads at a glance, a red one shows its few rows.
        out.push_str(&layer_table(results, folded, color));
        let others: Vec<&CheckResult> = results
            .iter()
            .filter(|r| r.verdict != Verdict::Pass)
            .collect();
        if !others.is_empty() {
            out.push_str(&table(&others, color));
        }
        let passes = results.len() - others.len() + folded.iter().map(|(_, n)| n).sum::<usize>();
        if passes > 0 {
            out.push_str(&format!(
                "{} counted per layer; --verbose lists every result\n",
                plural(passes, "passing result"),
            ));
        }
    }

    // The evidence a person needs to act on: failures and errors, and warnings when
    // they fail the gate too.
    let detailed = |v: &CheckResult| {
        matches!(v.verdict, Verdict::Fail | Verdict::Error)
            || (opts.deny_warnings && v.verdict == Verdict::Warn && v.accepted.is_none())
    };
    // One block per check and finding: the variants that got the same verdict, reason
    // and evidence (apart from the request each sent) are listed together, so one bug
    // reads as one block, not once per attack variant.
    for group in same_finding(results.iter().filter(|r| detailed(r))) {
        let r = group[0];
        out.push('\n');
        out.push_str(&format!(
            "{}  {}\n",
            verdict_word(r.verdict, color),
            clean_line(&display_name(r), usize::MAX)
        ));
        if group.len() == 1 {
            out.push_str(&format!("    id: {}\n", clean_line(&r.id, usize::MAX)));
        } else {
            out.push_str(&format!(
                "    ids ({} variants, same finding): {}\n",
                group.len(),
                clean_line(
                    &group
                        .iter()
                        .map(|g| g.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    usize::MAX
                )
            ));
        }
        out.push_str(&format!("    {}\n", clean_line(&r.summary, usize::MAX)));
        out.push_str(&clean_block(&evidence_text(r, "    ")));
    }

    out.push('\n');
    out.push_str(&footer(info, summary, opts));
    out
}

/// Evidence that differs between variants of the same finding by construction: the
/// request each variant sent and what it offered.
const PER_VARIANT: [&str; 3] = ["request", "offered", "retries"];

/// Groups results by check, verdict, summary and evidence (minus [`PER_VARIANT`]), in
/// the order each group first appears.
fn same_finding<'a>(results: impl Iterator<Item = &'a CheckResult>) -> Vec<Vec<&'a CheckResult>> {
    let key = |r: &CheckResult| {
        let ev: Vec<(String, String)> = r
            .evidence
            .iter()
            .filter(|e| !PER_VARIANT.contains(&e.label.as_str()))
            .map(|e| (e.label.clone(), e.text.clone()))
            .collect();
        (r.check.clone(), r.verdict, r.summary.clone(), ev)
    };
    let mut groups: Vec<(_, Vec<&CheckResult>)> = Vec::new();
    for r in results {
        let k = key(r);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, v)) => v.push(r),
            None => groups.push((k, vec![r])),
        }
    }
    groups.into_iter().map(|(_, v)| v).collect()
}

/// Per layer, in the pipeline's order (setup, checks, attacks, database, probe): how
/// many results got each verdict.
fn layer_counts(results: &[CheckResult], folded: &[(Layer, usize)]) -> Vec<(Layer, Counts)> {
    fn of(by: &mut Vec<(Layer, Counts)>, layer: Layer) -> &mut Counts {
        let i = match by.iter().position(|(l, _)| *l == layer) {
            Some(i) => i,
            None => {
                by.push((layer, Counts::default()));
                by.len() - 1
            }
        };
        &mut by[i].1
    }
    let mut by: Vec<(Layer, Counts)> = Vec::new();
    for r in results {
        of(&mut by, r.layer).add(r.verdict);
    }
    for (layer, n) in folded {
        of(&mut by, *layer).pass += n;
    }
    by.sort_by_key(|(l, _)| *l);
    by
}

/// The compact form's first table: one row per layer with its counts.
fn layer_table(results: &[CheckResult], folded: &[(Layer, usize)], color: bool) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    t.force_no_tty();
    if color {
        t.enforce_styling();
    }
    t.set_header(["Layer", "passed", "failed", "errors", "warnings", "skipped"]);
    for (layer, c) in layer_counts(results, folded) {
        let n = |v: Verdict, n: usize| {
            if n == 0 {
                Cell::new("·")
            } else {
                let cell = Cell::new(n);
                if color && v != Verdict::Skip {
                    cell.fg(match verdict_style(v) {
                        Style::Red => Color::Red,
                        Style::Green => Color::Green,
                        _ => Color::Yellow,
                    })
                } else {
                    cell
                }
            }
        };
        t.add_row([
            Cell::new(layer.as_str()),
            n(Verdict::Pass, c.pass),
            n(Verdict::Fail, c.fail),
            n(Verdict::Error, c.error),
            n(Verdict::Warn, c.warn),
            n(Verdict::Skip, c.skip),
        ]);
    }
    let mut s = t.to_string();
    s.push('\n');
    s
}

fn table(rows: &[&CheckResult], color: bool) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    // Never ask the terminal for its width or whether it is one: the output must be the
    // same in a CI log, a pipe and a snapshot test.
    t.force_no_tty();
    if color {
        t.enforce_styling();
    }
    t.set_header(["Check", "Variant", "Verdict", "Evidence"]);
    for row in rows {
        let cells = match *row {
            r if r.accepted.is_some() => [
                Cell::new(clean_line(&r.check, NAME_WIDTH)),
                Cell::new(clean_line(&r.variant, NAME_WIDTH)),
                verdict_cell(r.verdict, color),
                Cell::new(format!(
                    "accepted: {}",
                    clean_line(
                        r.accepted.as_deref().unwrap_or_default(),
                        EVIDENCE_WIDTH - 10
                    )
                )),
            ],
            r => [
                Cell::new(clean_line(&r.check, NAME_WIDTH)),
                Cell::new(clean_line(&r.variant, NAME_WIDTH)),
                verdict_cell(r.verdict, color),
                Cell::new(clean_line(&r.summary, EVIDENCE_WIDTH)),
            ],
        };
        t.add_row(cells);
    }
    let mut s = t.to_string();
    s.push('\n');
    s
}

fn footer(info: &RunInfo, summary: &RunSummary, opts: &TerminalOptions) -> String {
    let color = opts.color;
    let c = &summary.counts;
    let mut out = format!(
        "{} passed, {} failed, {}, {}, {} skipped in {}\n",
        c.pass,
        c.fail,
        plural(c.error, "error"),
        warnings(c),
        c.skip,
        duration(summary.duration),
    );
    out.push_str(&format!(
        "suite {} · run {}{}\n",
        clean_line(&info.suite_name, NAME_WIDTH),
        info.run_id,
        info.target
            .as_deref()
            .map(|t| format!(" · target {}", clean_line(t, 2 * NAME_WIDTH)))
            .unwrap_or_default()
    ));
    if !info.env_read.is_empty() || !info.allowed_origins.is_empty() {
        out.push_str(&format!(
            "environment read: {} · requests allowed to: {}\n",
            clean_line(&or_none(&info.env_read), usize::MAX),
            clean_line(&or_none(&info.allowed_origins), usize::MAX)
        ));
    }
    for n in info.load_notices.iter().chain(&summary.notices) {
        out.push_str(&format!(
            "{} {}\n",
            paint("NOTICE:", Style::Yellow, color),
            clean_line(n, usize::MAX)
        ));
    }
    if summary.incomplete {
        out.push_str(&format!(
            "{} interrupted before every check ran; this report is partial\n",
            paint("INCOMPLETE:", Style::Yellow, color)
        ));
    }
    let left: Vec<_> = summary.created.iter().filter(|c| !c.removed).collect();
    if !left.is_empty() {
        // Test data left in a production tenant is the operator's to clean up: say so
        // loudly and give the identifiers needed to find it.
        out.push_str(&format!(
            "{} {} created by this run {} not removed; delete by hand:\n",
            paint("LEFT ON THE TARGET:", Style::Red, color),
            plural(left.len(), "item"),
            if left.len() == 1 { "was" } else { "were" },
        ));
        for c in left {
            out.push_str(&format!(
                "    org {}: {} {}{}\n",
                clean_line(&c.org, NAME_WIDTH),
                clean_line(&c.what, NAME_WIDTH),
                clean_line(&c.ids.join(", "), usize::MAX),
                kept_note(c)
            ));
        }
    } else if !summary.created.is_empty() {
        out.push_str(&format!(
            "created on the target: {}, all removed by teardown\n",
            plural(summary.created.len(), "item")
        ));
    }
    out.push_str(&verdict_line(summary, opts));
    out.push('\n');
    out
}

/// `2 warnings`, or `2 warnings (1 accepted)`.
fn warnings(c: &Counts) -> String {
    if c.accepted == 0 {
        plural(c.warn, "warning")
    } else {
        format!("{} ({} accepted)", plural(c.warn, "warning"), c.accepted)
    }
}

/// The names joined, or `none`.
fn or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// ` (kept: REASON)` for what the suite declares the API cannot delete.
fn kept_note(c: &crate::outcome::Created) -> String {
    c.kept
        .as_ref()
        .map(|r| format!(" (kept: {})", clean_line(r, usize::MAX)))
        .unwrap_or_default()
}

/// The last line: the exit code and what it means, in words.
fn verdict_line(summary: &RunSummary, opts: &TerminalOptions) -> String {
    let c = &summary.counts;
    let code = summary.exit_code;
    match RunVerdict::from_exit_code(code) {
        RunVerdict::Proven => paint(
            &format!("isolation proven (exit {code})"),
            Style::Green,
            opts.color,
        ),
        RunVerdict::Broken => {
            let mut why = Vec::new();
            if c.fail > 0 {
                why.push(format!("{} failed", plural(c.fail, "check")));
            }
            if opts.deny_warnings && c.warn > c.accepted {
                why.push(format!(
                    "{} denied by --deny-warnings",
                    plural(c.warn - c.accepted, "warning")
                ));
            }
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(": {}", why.join(", "))
            };
            paint(
                &format!("ISOLATION BROKEN (exit {code}){why}"),
                Style::Red,
                opts.color,
            )
        }
        RunVerdict::Undecided => {
            let mut why = Vec::new();
            if c.error > 0 {
                why.push(format!("{} could not be decided", plural(c.error, "check")));
            }
            if summary.incomplete {
                why.push("the run was interrupted".to_string());
            }
            // Checks that errored did run; "no check ran" is for runs of only skips.
            if c.pass + c.warn + c.error == 0 && !summary.incomplete {
                why.push("no check ran".to_string());
            }
            let why = if why.is_empty() {
                String::new()
            } else {
                format!(": {}", why.join("; "))
            };
            paint(
                &format!("UNDECIDED (exit {code}){why}"),
                Style::Yellow,
                opts.color,
            )
        }
    }
}

/// `850ms`, `3.21s`, `2m 05s`.
fn duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.2}s", d.as_secs_f64())
    } else {
        format!("{}m {:02}s", ms / 60_000, (ms / 1000) % 60)
    }
}

#[derive(Clone, Copy)]
enum Style {
    Bold,
    Red,
    Green,
    Yellow,
    Dim,
}

/// Wraps `text` in plain ANSI codes when colour is on.
fn paint(text: &str, style: Style, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match style {
        Style::Bold => "1",
        Style::Red => "1;31",
        Style::Green => "1;32",
        Style::Yellow => "1;33",
        Style::Dim => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

fn verdict_style(v: Verdict) -> Style {
    match v {
        Verdict::Pass => Style::Green,
        Verdict::Fail => Style::Red,
        Verdict::Error | Verdict::Warn => Style::Yellow,
        Verdict::Skip => Style::Dim,
    }
}

/// The verdict in capitals, padded so the names after it line up: `FAIL `, `ERROR`.
fn verdict_word(v: Verdict, color: bool) -> String {
    let word = format!("{:<5}", v.as_str().to_uppercase());
    paint(&word, verdict_style(v), color)
}

fn verdict_cell(v: Verdict, color: bool) -> Cell {
    let cell = Cell::new(v.as_str());
    if !color {
        return cell;
    }
    // Styled by comfy-table rather than by embedding codes in the text, so the column
    // widths are computed on the visible characters.
    let cell = match verdict_style(v) {
        Style::Red => cell.fg(Color::Red),
        Style::Green => cell.fg(Color::Green),
        Style::Yellow => cell.fg(Color::Yellow),
        Style::Dim => cell.fg(Color::DarkGrey),
        Style::Bold => cell,
    };
    cell.add_attribute(Attribute::Bold)
}

/// Makes untrusted text safe for one line of a terminal: response bodies and names come
/// from the target, and an escape sequence in them must not repaint the CI log. Line
/// breaks and tabs become spaces, other control characters are shown escaped (`\u{1b}`),
/// and the result is cut at `max` characters with an ellipsis.
fn clean_line(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.trim().chars() {
        match c {
            '\n' | '\r' | '\t' => out.push(' '),
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    truncate(&out, max)
}

/// As [`clean_line`], but keeps line breaks (for the detail blocks), expands tabs and
/// does not truncate: the detail block is where the whole evidence is shown.
fn clean_block(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '\n' => out.push('\n'),
            '\t' => out.push_str("    "),
            '\r' => {}
            c if c.is_control() => out.extend(c.escape_default()),
            c => out.push(c),
        }
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::outcome::{CheckResult, Created, Layer, Verdict};
    use crate::report::tests::{SharedBuf, fixture, info, summary_for};
    use crate::report::{Reporter, Reporters};

    const PLAIN: TerminalOptions = TerminalOptions {
        verbose: false,
        color: false,
        deny_warnings: false,
        quiet: false,
        live: false,
    };

    const EXPECTED: &str = "\
┌──────────────────────────────────────┬─────────────────────────────────┬─────────┬────────────────────────────────────────────────────┐
│ Check                                ┆ Variant                         ┆ Verdict ┆ Evidence                                           │
╞══════════════════════════════════════╪═════════════════════════════════╪═════════╪════════════════════════════════════════════════════╡
│ brand is invisible to B              ┆ base                            ┆ pass    ┆ B got 404, same as a never-issued id               │
│ brand is invisible to B              ┆ tenant_override:header:X-Org-Id ┆ fail    ┆ B got 200 with A's brand                           │
│ mentions list holds none of A's rows ┆ base                            ┆ error   ┆ control as A returned 503                          │
│ public.unique_email                  ┆ unique_without_tenant           ┆ warn    ┆ unique (email) without org_id lets one tenant pro… │
│ token forgery                        ┆ token_forgery:expired           ┆ skip    ┆ the suite does not mint tokens                     │
└──────────────────────────────────────┴─────────────────────────────────┴─────────┴────────────────────────────────────────────────────┘

FAIL   brand is invisible to B [tenant_override:header:X-Org-Id]
    id: brand-is-invisible-to-b/tenant_override:header:X-Org-Id
    B got 200 with A's brand
    request: GET /brands/42 with X-Org-Id: org-a
    B got: 200 application/json
    body:
        {\"id\": 42,
         \"name\": \"Acme <run>\"}

ERROR  mentions list holds none of A's rows
    id: mentions-list-holds-none-of-a-s-rows
    control as A returned 503

1 passed, 1 failed, 1 error, 1 warning, 1 skipped in 1.23s
suite reference-api · run r7x2 · target http://127.0.0.1:8080
NOTICE: --insecure: TLS certificates were not verified
LEFT ON THE TARGET: 1 item created by this run was not removed; delete by hand:
    org a: brand 42
ISOLATION BROKEN (exit 1): 1 check failed
";

    #[test]
    fn renders_the_table_details_and_footer() {
        let (results, mut summary) = fixture();
        summary.notices = vec!["--insecure: TLS certificates were not verified".into()];
        summary.created = vec![
            Created {
                org: "a".into(),
                what: "org".into(),
                ids: vec!["org-a".into()],
                removed: true,
                kept: None,
            },
            Created {
                org: "a".into(),
                what: "brand".into(),
                ids: vec!["42".into()],
                removed: false,
                kept: None,
            },
        ];
        let got = render_table(&results, &info(), &summary, &PLAIN);
        assert_eq!(got, EXPECTED, "got:\n{got}");
    }

    #[test]
    fn states_each_verdict_in_words() {
        let only = |v: Verdict| {
            let results = vec![CheckResult::new("c", "c", "base", Layer::Http, v, "why")];
            let summary = summary_for(&results, false);
            render_table(&results, &info(), &summary, &PLAIN)
        };
        assert!(only(Verdict::Pass).ends_with("\nisolation proven (exit 0)\n"));
        assert!(only(Verdict::Fail).ends_with("\nISOLATION BROKEN (exit 1): 1 check failed\n"));
        assert!(
            only(Verdict::Error).ends_with("\nUNDECIDED (exit 2): 1 check could not be decided\n")
        );
        assert!(only(Verdict::Skip).ends_with("\nUNDECIDED (exit 2): no check ran\n"));

        let results = vec![CheckResult::new(
            "c",
            "c",
            "base",
            Layer::Http,
            Verdict::Pass,
            "",
        )];
        let mut summary = summary_for(&results, false);
        summary.incomplete = true;
        summary.exit_code = 2;
        let got = render_table(&results, &info(), &summary, &PLAIN);
        assert!(got.contains(
            "\nINCOMPLETE: interrupted before every check ran; this report is partial\n"
        ));
        assert!(got.ends_with("\nUNDECIDED (exit 2): the run was interrupted\n"));
    }

    #[test]
    fn denied_warnings_show_their_evidence_and_the_reason() {
        let results = vec![
            CheckResult::new("p", "p", "base", Layer::Http, Verdict::Pass, "ok"),
            CheckResult::new("w", "t", "rule", Layer::Database, Verdict::Warn, "hint")
                .with("fix", "ALTER TABLE t ..."),
        ];
        let summary = summary_for(&results, true);
        let opts = TerminalOptions {
            deny_warnings: true,
            ..PLAIN
        };
        let got = render_table(&results, &info(), &summary, &opts);
        assert!(
            got.contains("\nWARN   t [rule]\n    id: w\n    hint\n    fix: ALTER TABLE t ...\n")
        );
        assert!(
            got.ends_with("\nISOLATION BROKEN (exit 1): 1 warning denied by --deny-warnings\n")
        );
    }

    #[test]
    fn folds_the_passes_of_a_large_audit() {
        let mut results = Vec::new();
        for i in 0..10_000 {
            for rule in ["rls_enabled", "rls_forced"] {
                results.push(CheckResult::new(
                    format!("public.t{i}.{rule}"),
                    format!("public.t{i}"),
                    rule,
                    Layer::Database,
                    Verdict::Pass,
                    "ok",
                ));
            }
        }
        results.insert(
            5,
            CheckResult::new(
                "public.t2.rls_forced",
                "public.leaky",
                "rls_forced",
                Layer::Database,
                Verdict::Fail,
                "RLS not forced; the owner bypasses it",
            ),
        );
        for i in 0..3 {
            results.push(CheckResult::new(
                format!("c{i}"),
                format!("check {i}"),
                "base",
                Layer::Http,
                Verdict::Pass,
                "404",
            ));
        }
        let summary = summary_for(&results, false);
        let got = render_table(&results, &info(), &summary, &PLAIN);
        let cells: Vec<Vec<&str>> = got
            .lines()
            .filter(|l| l.starts_with('│'))
            .map(|l| {
                l.trim_end()
                    .trim_matches('│')
                    .split('┆')
                    .map(str::trim)
                    .collect()
            })
            .collect();
        assert_eq!(
            cells,
            vec![
                vec!["Layer", "passed", "failed", "errors", "warnings", "skipped"],
                vec!["http", "3", "·", "·", "·", "·"],
                vec!["database", "20000", "1", "·", "·", "·"],
                vec!["Check", "Variant", "Verdict", "Evidence"],
                vec![
                    "public.leaky",
                    "rls_forced",
                    "fail",
                    "RLS not forced; the owner bypasses it"
                ],
            ]
        );
        assert!(
            got.contains("20003 passing results counted per layer; --verbose lists every result")
        );
        // The reporter keeps only counts of the passes once the run is past one screen;
        // what it prints is the same.
        let through_events = |opts: TerminalOptions| {
            let mut t = Terminal::new(Vec::new(), Box::new(io::sink()), opts);
            t.event(&Event::Started(info())).unwrap();
            for r in &results {
                t.event(&Event::Finished(r.clone())).unwrap();
            }
            t.event(&Event::Ended(summary.clone())).unwrap();
            assert!(
                opts.verbose || t.results.len() == 1,
                "{} kept",
                t.results.len()
            );
            String::from_utf8(t.into_inner()).unwrap()
        };
        let footer_free = |s: &str| s[..s.find("\nran ").unwrap_or(s.len())].to_string();
        assert_eq!(footer_free(&through_events(PLAIN)), footer_free(&got));

        let verbose = TerminalOptions {
            verbose: true,
            ..PLAIN
        };
        let all = render_table(&results, &info(), &summary, &verbose);
        assert_eq!(
            all.lines().filter(|l| l.starts_with('│')).count(),
            1 + results.len()
        );
        assert_eq!(footer_free(&through_events(verbose)), footer_free(&all));
        assert!(!all.contains("counted per layer"));
    }

    #[test]
    fn at_most_forty_results_stay_itemised() {
        let results: Vec<_> = (0..ITEMISED_RESULTS_MAX)
            .map(|i| {
                CheckResult::new(
                    i.to_string(),
                    format!("t{i}"),
                    "r",
                    Layer::Database,
                    Verdict::Pass,
                    "",
                )
            })
            .collect();
        let got = render_table(&results, &info(), &summary_for(&results, false), &PLAIN);
        assert_eq!(
            got.lines().filter(|l| l.starts_with('│')).count(),
            1 + ITEMISED_RESULTS_MAX
        );
    }

    /// A writer the test can read after the reporter took it.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_counter_is_redrawn_in_place_on_a_terminal_and_throttled_in_a_log() {
        use crate::outcome::Progress;
        use crate::report::Reporter as _;
        let fail = CheckResult::new("x", "x", "base", Layer::Http, Verdict::Fail, "leak");
        let progress = |done| {
            Event::Progress(Progress {
                done,
                total: 3,
                in_flight: 2,
            })
        };
        for live in [true, false] {
            let err = Shared::default();
            let opts = TerminalOptions { live, ..PLAIN };
            let mut term = Terminal::new(Vec::new(), Box::new(err.clone()), opts);
            term.event(&Event::Started(info())).unwrap();
            term.event(&progress(1)).unwrap();
            term.event(&Event::Finished(fail.clone())).unwrap();
            term.event(&progress(2)).unwrap();
            term.event(&Event::Ended(summary_for(
                std::slice::from_ref(&fail),
                false,
            )))
            .unwrap();
            let text = String::from_utf8(err.0.lock().unwrap().clone()).unwrap();
            if live {
                assert!(
                    text.contains("\r\x1b[K...   checks 1/3 done, 2 in flight"),
                    "{text:?}"
                );
                // The result line clears the counter first; the end clears it too.
                assert!(text.contains("\r\x1b[KFAIL   x  leak\n"), "{text:?}");
                assert!(
                    text.contains("checks 2/3 done, 2 in flight · 1 failed, 0 errors"),
                    "{text:?}"
                );
                assert!(text.ends_with("\r\x1b[K"), "{text:?}");
            } else {
                // No escape codes in a log, and no counter line within the first seconds.
                assert!(
                    !text.contains('\x1b') && !text.contains("checks 1/3"),
                    "{text:?}"
                );
                assert!(text.contains("FAIL   x  leak\n"), "{text:?}");
            }
        }
    }

    #[test]
    fn escape_sequences_from_the_target_are_neutralised() {
        let results = vec![
            CheckResult::new(
                "x",
                "evil\x1b[2J",
                "base",
                Layer::Http,
                Verdict::Fail,
                "a\nb\x07",
            )
            .with("body", "line1\n\x1b]0;owned\x07line2"),
        ];
        let got = render_table(&results, &info(), &summary_for(&results, false), &PLAIN);
        assert!(!got.contains('\x1b') && !got.contains('\x07'), "{got}");
        assert!(got.contains("evil\\u{1b}[2J"));
        assert!(got.contains("        \\u{1b}]0;owned\\u{7}line2\n"));
    }

    #[test]
    fn quiet_prints_only_the_verdict_line() {
        let (results, summary) = fixture();
        let opts = TerminalOptions {
            quiet: true,
            ..PLAIN
        };
        let progress = SharedBuf::default();
        let mut t = Terminal::new(Vec::new(), Box::new(progress.clone()), opts);
        let mut events = vec![Event::Started(info())];
        events.extend(results.into_iter().map(Event::Finished));
        events.push(Event::Ended(summary));
        for e in &events {
            crate::report::Reporter::event(&mut t, e).unwrap();
        }
        let out = String::from_utf8(t.into_inner()).unwrap();
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("(exit 1)"), "{out}");
        assert!(progress.text().is_empty());
    }

    #[test]
    fn colour_only_when_asked() {
        let (results, summary) = fixture();
        let plain = render_table(&results, &info(), &summary, &PLAIN);
        assert!(!plain.contains('\x1b'));
        let coloured = TerminalOptions {
            color: true,
            ..PLAIN
        };
        let got = render_table(&results, &info(), &summary, &coloured);
        assert!(got.contains("\x1b[1;31mISOLATION BROKEN (exit 1): 1 check failed\x1b[0m"));
        assert!(got.contains("\x1b[1;31mFAIL \x1b[0m"));
    }

    #[test]
    fn progress_is_quiet_for_passes_and_the_table_goes_to_stdout() {
        let (results, summary) = fixture();
        let err = SharedBuf::default();
        let mut term = Terminal::new(Vec::new(), Box::new(err.clone()), PLAIN);
        term.event(&Event::Started(info())).unwrap();
        term.event(&Event::Phase("running checks as org b".into()))
            .unwrap();
        for r in &results {
            term.event(&Event::Finished(r.clone())).unwrap();
        }
        term.event(&Event::Phase("teardown".into())).unwrap();
        term.event(&Event::Ended(summary.clone())).unwrap();
        assert_eq!(
            err.text(),
            "RUN   reference-api (http://127.0.0.1:8080), run r7x2\n\
             ...   running checks as org b\n\
             FAIL   brand is invisible to B [tenant_override:header:X-Org-Id]  B got 200 with A's brand\n\
             ERROR  mentions list holds none of A's rows  control as A returned 503\n\
             WARN   public.unique_email [unique_without_tenant]  unique (email) without org_id lets one tenant probe another's values\n\
             SKIP   token forgery [token_forgery:expired]  the suite does not mint tokens\n\
             ...   teardown (5 results so far)\n"
        );
        let out = String::from_utf8(term.into_inner()).unwrap();
        assert_eq!(out, render_table(&results, &info(), &summary, &PLAIN));
    }

    #[test]
    fn a_closed_stderr_does_not_cost_the_table() {
        let (results, summary) = fixture();
        let mut reporters = Reporters::new();
        let out = SharedBuf::default();
        reporters.push(Box::new(Terminal::new(
            out.clone(),
            Box::new(crate::report::tests::Broken),
            PLAIN,
        )));
        reporters.event(&Event::Started(info()));
        for r in &results {
            reporters.event(&Event::Finished(r.clone()));
        }
        reporters.event(&Event::Ended(summary.clone()));
        assert_eq!(reporters.errors().len(), 1, "only the first error is kept");
        assert!(reporters.errors()[0].starts_with("cannot write progress: "));
        assert!(
            out.text()
                .ends_with("ISOLATION BROKEN (exit 1): 1 check failed\n")
        );
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(3214)), "3.21s");
        assert_eq!(duration(Duration::from_millis(125_000)), "2m 05s");
    }
}
