//! The one renderer for user-facing errors about input (parse stage): rustc-style, with
//! `--> file:line:column`, the offending line, a caret under the value, and a hint.
//!
//! ```text
//! error: unknown key `reed`
//!   --> suites/app.yaml:23:5
//!    |
//! 23 |     reed: /brands/{{a.brand_id}}
//!    |     ^^^^
//!    = help: did you mean `read`?
//! ```

use std::fmt::Write as _;

use crate::redact::Redactor;
use crate::suite::template::Loc;

/// One problem with the user's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file as the user named it.
    pub file: String,
    /// Where in the file, when known.
    pub loc: Option<Loc>,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// A problem at a location of `file`.
    pub fn at(file: &str, loc: Loc, message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            loc: Some(loc),
            message: message.into(),
            hint,
        }
    }

    /// A problem with the whole file.
    pub fn file(file: &str, message: impl Into<String>, hint: Option<String>) -> Self {
        Diagnostic {
            file: file.to_string(),
            loc: None,
            message: message.into(),
            hint,
        }
    }

    /// Renders the diagnostic against the file's text (`source`), redacting secrets.
    pub fn render(&self, source: Option<&str>, redactor: &Redactor) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "error: {}", redactor.redact(&self.message));
        match self.loc {
            Some(loc) if loc.line > 0 => {
                let line_no = loc.line.to_string();
                let pad = " ".repeat(line_no.len());
                let _ = writeln!(out, "{pad}--> {}:{}:{}", self.file, loc.line, loc.col);
                if let Some(text) = source.and_then(|s| s.lines().nth(loc.line as usize - 1)) {
                    let text = redactor.redact(text);
                    let (shown, col) = excerpt(&text, (loc.col.max(1) - 1) as usize);
                    let _ = writeln!(out, "{pad} |");
                    let _ = writeln!(out, "{line_no} | {shown}");
                    let rest = shown.chars().count().saturating_sub(col).max(1);
                    let width = if loc.len == 0 { 1 } else { loc.len.min(rest) };
                    let _ = writeln!(out, "{pad} | {}{}", " ".repeat(col), "^".repeat(width));
                }
                if let Some(h) = &self.hint {
                    let _ = writeln!(out, "{pad} = help: {}", redactor.redact(h));
                }
            }
            _ => {
                let _ = writeln!(out, " --> {}", self.file);
                if let Some(h) = &self.hint {
                    let _ = writeln!(out, "  = help: {}", redactor.redact(h));
                }
            }
        }
        out
    }
}

/// The part of a source line to show (at most [`SHOWN_CHARS`] characters, around the
/// column when the line is long) and the caret's column in it. Tabs are shown as four
/// spaces and other control characters as `?`, so the caret stays under its character
/// and the terminal is not disturbed.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let col = col.min(chars.len());
    // Keep some text before the caret when the column is far to the right.
    let start = if col + 40 > SHOWN_CHARS {
        col - 60.min(col)
    } else {
        0
    };
    let mut shown = String::new();
    let mut caret = 0;
    if start > 0 {
        shown.push_str("...");
    }
    for (i, c) in chars.iter().enumerate().skip(start).take(SHOWN_CHARS) {
        if i == col {
            caret = shown.chars().count();
        }
        match c {
            '\t' => shown.push_str("    "),
            c if c.is_control() => shown.push('?'),
            c => shown.push(*c),
        }
    }
    if col >= start + SHOWN_CHARS || col == chars.len() {
        caret = shown.chars().count();
    }
    (shown, caret)
}

/// The most characters of a source line a diagnostic shows.
const SHOWN_CHARS: usize = 200;

/// Renders many diagnostics and a closing count.
pub fn render_all(diags: &[Diagnostic], source: Option<&str>, redactor: &Redactor) -> String {
    let mut out = String::new();
    for d in diags {
        out.push_str(&d.render(source, redactor));
        out.push('\n');
    }
    let n = diags.len();
    let _ = writeln!(
        out,
        "error: could not load the suite: {n} problem{} (nothing was sent)",
        if n == 1 { "" } else { "s" }
    );
    out
}

/// The candidate closest to `word` (Levenshtein distance, ignoring ASCII case), if it
/// is close enough to be a plausible typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::levenshtein(&word.to_ascii_lowercase(), &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rustc_style() {
        let src = "version: 1\nchecks:\n  - name: x\n    reed: /a\n";
        let d = Diagnostic::at(
            "s.yaml",
            Loc {
                line: 4,
                col: 5,
                offset: 0,
                len: 4,
            },
            "unknown key `reed` in a check",
            Some("did you mean `read`?".into()),
        );
        let expected = "error: unknown key `reed` in a check
 --> s.yaml:4:5
  |
4 |     reed: /a
  |     ^^^^
  = help: did you mean `read`?
";
        assert_eq!(d.render(Some(src), &Redactor::new()), expected);
    }

    #[test]
    fn suggests_near_names_only() {
        let keys = ["read", "list", "write", "verify", "request"];
        assert_eq!(did_you_mean("reed", keys), Some("read"));
        assert_eq!(did_you_mean("veryfy", keys), Some("verify"));
        assert_eq!(did_you_mean("zzzzzz", keys), None);
    }
}
