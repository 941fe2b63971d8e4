//! YAML and type errors → diagnostics (parse stage, when YAML → [`Suite`] fails): what
//! was expected and what was found, the key it belongs to, "did you mean" for unknown
//! keys, and what to do, in the suite's words rather than the parser's.
//!
//! [`Suite`]: super::model::Suite

use serde_saphyr::Error as E;
use serde_saphyr::budget::BudgetBreach as B;

use super::load::line_col_of;
use super::template::Loc;
use crate::diag::{Diagnostic, did_you_mean};

/// A YAML or type error, in the suite's words.
pub(super) struct YamlProblem {
    pub diagnostic: Diagnostic,
    /// The YAML itself is broken (not a wrong key, type or value): what was read before
    /// it may be a misreading, so nothing else is reported until it is fixed.
    pub syntax: bool,
    /// How loading can go on past it: blank the entry whose key (`Key`) or value
    /// (`Value`) is at the location and parse again; `None` when it cannot.
    pub recover: Option<Recover>,
    /// The required key that is missing, for a missing-key error.
    pub missing: Option<&'static str>,
    /// An unknown key and the known key it is likely a typo of: loading can go on as
    /// if the known one was written.
    pub typo: Option<(String, &'static str)>,
}

/// What a recoverable error's location points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Recover {
    Key,
    Value,
}

/// What an error says and where: the message, the hint, whether the YAML is broken.
struct Said {
    message: String,
    hint: String,
    syntax: bool,
}

impl Said {
    fn value((message, hint): (String, String)) -> Said {
        Said {
            message,
            hint,
            syntax: false,
        }
    }

    fn syntax((message, hint): (String, String)) -> Said {
        Said {
            message,
            hint,
            syntax: true,
        }
    }
}

/// The text around an error: its location, the key it belongs to, what was found there.
struct Context<'t> {
    text: &'t str,
    loc: Option<Loc>,
    key: Option<String>,
    /// `, found X` (or empty).
    found: String,
}

impl Context<'_> {
    /// "`key` must be WHAT, found X" (or "expected WHAT" without a key).
    fn must_be(&self, what: &str) -> String {
        match &self.key {
            Some(k) => format!("`{k}` must be {what}{}", self.found),
            None => format!("expected {what}{}", self.found),
        }
    }

    /// The caret covers `word` (an unknown key or value).
    fn cover(&mut self, word: &str) {
        if let Some(l) = self.loc.as_mut() {
            l.len = word.chars().count();
        }
    }
}

/// Turns a YAML/serde error into a diagnostic: what was expected and what was found,
/// the key it belongs to, "did you mean" for unknown keys, and what to do.
pub(super) fn yaml_diagnostic(name: &str, text: &str, e: &E) -> YamlProblem {
    let mut e = e;
    // An error met through an alias carries the original inside; the place to show is
    // the first alias used (`*name`), not the anchored value it repeats.
    let mut used_at = None;
    loop {
        match e {
            E::AliasError {
                error, locations, ..
            } => {
                used_at = used_at.or(Some(locations.reference_location));
                e = error;
            }
            E::WithSnippet { error, .. } => e = error,
            _ => break,
        }
    }
    let loc = used_at
        .filter(|l| l.line() > 0)
        .or_else(|| e.location())
        .map(|l| match l.span().byte_offset() {
            Some(b) => line_col_of(text.as_bytes(), b as usize),
            None => loc_of(text, l.line(), l.column(), 1),
        });
    // Some errors point at the value, others at its key.
    let key = loc.and_then(|l| key_of_value(text, l).or_else(|| key_at(text, l)));
    let found = loc
        .and_then(|l| value_at(text, l))
        .map(|f| format!(", found {f}"))
        .unwrap_or_default();
    let mut cx = Context {
        text,
        loc,
        key,
        found,
    };
    let said = value_problem(e, &mut cx).unwrap_or_else(|| syntax_problem(e, &mut cx));
    let recover = match e {
        _ if said.syntax => None,
        E::SerdeUnknownField { .. } | E::DuplicateMappingKey { .. } => Some(Recover::Key),
        E::SerdeMissingField { .. } => None,
        _ => Some(Recover::Value),
    };
    let missing = match e {
        E::SerdeMissingField { field, .. } => Some(*field),
        _ => None,
    };
    let typo = match e {
        E::SerdeUnknownField {
            field, expected, ..
        } => did_you_mean(field, expected.iter().copied()).map(|s| (field.clone(), s)),
        _ => None,
    };
    YamlProblem {
        recover,
        missing,
        typo,
        diagnostic: Diagnostic {
            file: name.into(),
            loc: cx.loc,
            message: said.message,
            hint: Some(said.hint),
        },
        syntax: said.syntax,
    }
}

/// A wrong key, type or value (the YAML itself is sound), or `None` for other errors.
fn value_problem(e: &E, cx: &mut Context) -> Option<Said> {
    Some(match e {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            cx.cover(field);
            Said::value(unknown("key", field, expected))
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            cx.cover(variant);
            Said::value(unknown("value", variant, expected))
        }
        E::SerdeMissingField { field, .. } => Said::value((
            format!("missing key `{field}` in this mapping"),
            missing_key_hint(field),
        )),
        E::DuplicateMappingKey { key: k, .. } => {
            let first = k
                .as_deref()
                .zip(cx.loc)
                .and_then(|(k, l)| earlier_key_line(cx.text, k, l));
            let message = match (k, first) {
                (Some(k), Some(line)) => {
                    cx.cover(k);
                    format!("duplicate key `{k}` (first given at line {line})")
                }
                (Some(k), None) => format!("duplicate key `{k}`"),
                (None, _) => "duplicate key".into(),
            };
            Said::value((
                message,
                "each key may appear once in a mapping; remove or rename the repeated one".into(),
            ))
        }
        E::Unexpected { expected, .. } => Said::value(match *expected {
            "sequence start" => (
                cx.must_be("a list"),
                "write one item per line, each starting with `- `, or `[a, b]`".into(),
            ),
            "mapping start" => (
                cx.must_be("a mapping"),
                "write `key: value` lines indented under it, or `{ key: value }`".into(),
            ),
            "string scalar" | "scalar" => (
                cx.must_be("a string"),
                "write text; quote it (`\"...\"`) if it starts with `{`, `[`, `*`, `&` or `!`"
                    .into(),
            ),
            other => (
                format!("expected {other}{}", cx.found),
                "see the suite format in the README".into(),
            ),
        }),
        E::InvalidScalar { ty, .. } => Said::value(invalid_scalar(ty, cx)),
        E::InvalidBooleanStrict { .. } => {
            Said::value((cx.must_be("`true` or `false`"), YES_NO.into()))
        }
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => Said::value(invalid_type(unexpected, expected, cx)),
        E::NullIntoString { .. } => Said::value((
            match &cx.key {
                Some(k) => format!("`{k}` has no value"),
                None => "a value is missing".into(),
            },
            "write a value after the colon, or remove the key".into(),
        )),
        _ => return None,
    })
}

fn invalid_scalar(ty: &str, cx: &Context) -> (String, String) {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => {
            let range = match ty {
                "u16" => " from 0 to 65535",
                "u8" => " from 0 to 255",
                _ => "",
            };
            (
                cx.must_be(&format!("a whole number{range}")),
                match cx.key.as_deref() {
                    Some("version") => "write `version: 1`".into(),
                    Some("not_found_status") => {
                        "write the status of a missing resource, e.g. `404`".into()
                    }
                    _ => "write a number without quotes".into(),
                },
            )
        }
        "bool" => (cx.must_be("`true` or `false`"), YES_NO.into()),
        other => (
            cx.must_be(&format!("a value of type {other}")),
            "see the suite format in the README".into(),
        ),
    }
}

fn invalid_type(unexpected: &str, expected: &str, cx: &Context) -> (String, String) {
    let word = unexpected
        .strip_prefix("string \"")
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or("");
    let yes_no = ["yes", "no", "on", "off", "y", "n"].contains(&word.to_ascii_lowercase().as_str());
    let what = match &cx.key {
        Some(k) => format!("`{k}` must be {expected}, found {unexpected}"),
        None => format!("expected {expected}, found {unexpected}"),
    };
    (
        what,
        if yes_no {
            YES_NO.into()
        } else {
            "see the suite format in the README".into()
        },
    )
}

/// Broken YAML, limits and everything else: nothing after it is reported.
fn syntax_problem(e: &E, cx: &mut Context) -> Said {
    Said::syntax(match e {
        E::UnknownAnchor { .. } => (
            "an alias (`*name`) refers to an anchor (`&name`) that is not defined before it"
                .into(),
            "define the anchor first, or write the value out".into(),
        ),
        E::Budget { breach, .. } => match breach {
            B::Documents { .. } => multiple_documents(),
            B::Depth { .. } => too_deep(),
            B::Aliases { .. } | B::Anchors { .. } => (
                "the suite uses more than 1000 aliases (`*name`) or anchors (`&name`)".into(),
                "write the values out plainly; a suite needs few aliases, if any".into(),
            ),
            _ => (
                "the suite has more than 100000 YAML values (scalars, lists and mappings, counting every use of an alias `*name`)".into(),
                "a suite needs far fewer: split it into several suites; write aliased values out plainly".into(),
            ),
        },
        E::MultipleDocuments { .. } => multiple_documents(),
        E::Eof { .. } => (
            "the file ends in the middle of a value".into(),
            "close every `[`, `{` and quote that is opened".into(),
        ),
        other => {
            let full = other.to_string();
            // serde-saphyr appends " at line L, column C"; the diagnostic shows it its own way.
            let msg = match full.rfind(" at line ") {
                Some(i) => full[..i].to_string(),
                None => full,
            };
            let lower = msg.to_ascii_lowercase();
            if lower.contains("tab")
                && let Some(l) = cx.loc
                && let Some(t) = first_tab_from(cx.text, l)
            {
                cx.loc = Some(t);
            }
            if lower.contains("recursion limit") {
                too_deep()
            } else {
                (format!("invalid YAML: {msg}"), syntax_hint(&lower))
            }
        }
    })
}

const YES_NO: &str =
    "write `true` or `false` (`yes`, `no`, `on` and `off` are not booleans in a suite)";

fn multiple_documents() -> (String, String) {
    (
        "the file holds more than one YAML document (a second `---`)".into(),
        "a suite is one document: remove the `---` line and what follows it, or put each suite in its own file".into(),
    )
}

fn too_deep() -> (String, String) {
    (
        "the YAML is nested too deeply".into(),
        "a suite needs a few levels of nesting; is this the right file?".into(),
    )
}

fn unknown(noun: &str, word: &str, expected: &[&str]) -> (String, String) {
    let hint = match did_you_mean(word, expected.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None if expected.is_empty() => {
            "this mapping takes no keys (an attack without options is `true` or `false`)".into()
        }
        None => format!("valid {noun}s here: {}", expected.join(", ")),
    };
    (format!("unknown {noun} `{word}`"), hint)
}

fn missing_key_hint(field: &str) -> String {
    match field {
        "version" => "add `version: 1` at the top of the suite".into(),
        "name" => "add `name: ...`: suites and checks are named in reports".into(),
        "url" => "add `url: /path` (joined to `target.base_url` unless absolute)".into(),
        "request" => "add `request: { method: POST, url: /path }`".into(),
        "base_url" => "add `base_url: https://...`, the API's address".into(),
        "header" | "value" => {
            "write `auth: { header: Authorization, value: \"Bearer {{token}}\" }`".into()
        }
        "algorithm" => "add `algorithm: HS256` (or RS256 / ES256 with `key`)".into(),
        "claims" => "add `claims: { sub: \"tenantgate-{{org}}\", org_id: \"{{org_id}}\" }`".into(),
        "a" | "b" => "add `a: { org_id: ... }` and `b: { org_id: ... }`".into(),
        "expect" => "add `expect: { status: 200 }`".into(),
        f => format!("add `{f}:`; see the suite format in the README"),
    }
}

/// What to do about a YAML syntax error, from the parser's message (lowercased).
fn syntax_hint(msg: &str) -> String {
    if msg.contains("tab") {
        "indent with spaces: YAML does not allow tabs for indentation".into()
    } else if msg.contains("bracket") || msg.contains("','") && msg.contains("']'") {
        "close the list with `]`; separate its items with commas; quote a value that holds `[`, `]`, `{`, `}` or `,`".into()
    } else if msg.contains("flow mapping") || msg.contains("'}'") {
        "close the mapping with `}`; separate its entries with commas; quote a value that holds `[`, `]`, `{`, `}` or `,`".into()
    } else if msg.contains("quote") || msg.contains("quoted") {
        "close the string with the quote it opens with".into()
    } else if msg.contains("expected key")
        || msg.contains("mapping values are not allowed")
        || msg.contains("expected '-'")
        || msg.contains("indent")
    {
        "check the indentation: the keys of one mapping start in the same column".into()
    } else if msg.contains("':'") || msg.contains("simple key") {
        "write `key: value`, with a colon and a space".into()
    } else if msg.contains("cannot start any token") {
        "quote the value: it starts with a character YAML reserves".into()
    } else {
        "fix the YAML at or just before the caret".into()
    }
}

/// The key whose value starts at `loc`: `key:` before it on the same line, or alone on
/// the line above.
fn key_of_value(text: &str, loc: Loc) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let line = *lines.get((loc.line as usize).checked_sub(1)?)?;
    let before: String = line
        .chars()
        .take(loc.col.saturating_sub(1) as usize)
        .collect();
    let before = before.trim_end();
    let before = if before
        .trim_start()
        .trim_start_matches('-')
        .trim()
        .is_empty()
    {
        // The value starts its own line: the key ends the line above.
        lines
            .get((loc.line as usize).checked_sub(2)?)?
            .split(" #")
            .next()?
            .trim_end()
    } else {
        before
    };
    let k = before.strip_suffix(':')?;
    let start = k
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let k = &k[start..];
    (!k.is_empty()).then(|| k.to_string())
}

/// The key that starts at `loc` (`key: value`).
fn key_at(text: &str, loc: Loc) -> Option<String> {
    let line = text.lines().nth((loc.line as usize).checked_sub(1)?)?;
    let rest: String = line
        .chars()
        .skip(loc.col.saturating_sub(1) as usize)
        .collect();
    let (k, _) = rest.split_once(':')?;
    (!k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then(|| k.to_string())
}

/// A short description of the YAML value that starts at `loc`.
fn value_at(text: &str, loc: Loc) -> Option<String> {
    let line = text.lines().nth((loc.line as usize).checked_sub(1)?)?;
    let rest: String = line
        .chars()
        .skip(loc.col.saturating_sub(1) as usize)
        .collect();
    let rest = rest.trim_end();
    let first = rest.chars().next()?;
    Some(match first {
        '[' => "a list".into(),
        '{' => "a mapping".into(),
        '-' if rest.starts_with("- ") || rest == "-" => "a list".into(),
        _ => {
            let end = rest.find([',', ']', '}', '#']).unwrap_or(rest.len());
            let v = rest[..end].trim();
            if v.is_empty() {
                return None;
            }
            if v.contains(": ") || v.ends_with(':') {
                "a mapping".into()
            } else {
                let shown: String = v.chars().take(40).collect();
                format!("`{shown}`")
            }
        }
    })
}

/// The line of an earlier `key:` at the same indentation as the repeated one at `loc`.
fn earlier_key_line(text: &str, key: &str, loc: Loc) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let here = *lines.get((loc.line as usize).checked_sub(1)?)?;
    let indent = here.len() - here.trim_start().len();
    let pat = format!("{key}:");
    for i in (0..(loc.line as usize).saturating_sub(1)).rev() {
        let l = lines[i];
        if l.trim().is_empty() || l.trim_start().starts_with('#') {
            continue;
        }
        let ind = l.len() - l.trim_start().len();
        if ind < indent {
            return None; // the mapping's parent: the first one was given inline
        }
        if ind == indent && l.trim_start().starts_with(&pat) {
            return Some(i + 1);
        }
    }
    None
}

/// The first tab at or after the start of `loc`'s line (the parser reports a tab in
/// indentation at the value it was reading, sometimes a line early).
fn first_tab_from(text: &str, loc: Loc) -> Option<Loc> {
    let start: usize = text
        .split_inclusive('\n')
        .take((loc.line as usize).saturating_sub(1))
        .map(str::len)
        .sum();
    let i = text.get(start..)?.find('\t')? + start;
    Some(line_col_of(text.as_bytes(), i))
}

/// The location of the YAML parser's `line` and `col` (1-based). YAML counts CR, LF and
/// CRLF as line breaks; the location returned counts LF only, like the renderer.
fn loc_of(text: &str, line: u64, col: u64, len: usize) -> Loc {
    let b = text.as_bytes();
    let mut start = 0;
    let mut current = 1;
    let mut i = 0;
    while current < line && i < b.len() {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                i += 1;
                current += 1;
                start = i + 1;
            }
            b'\r' | b'\n' => {
                current += 1;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let rest = &text[start.min(text.len())..];
    let in_line = rest
        .char_indices()
        .take_while(|(_, c)| *c != '\n' && *c != '\r')
        .nth(col.saturating_sub(1) as usize)
        .map(|(o, _)| o)
        .unwrap_or_else(|| rest.find(['\r', '\n']).unwrap_or(rest.len()));
    let mut loc = line_col_of(b, start + in_line);
    loc.len = len;
    loc
}
