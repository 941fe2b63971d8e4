//! Loading a suite (parse stage): bytes → YAML → [`Suite`] → validation. Every problem
//! found is reported, each with file, line and column, before a single request is
//! sent: unknown keys (with "did you mean"), wrong types, bad durations, bad JSONPath,
//! missing environment variables, and placeholders that name nothing.

use std::collections::BTreeSet;
use std::path::Path;

use super::model::*;
use super::template::{self, EnvUse, Loc, Tpl};
use crate::diag::{Diagnostic, did_you_mean};
use crate::redact::Redactor;

/// The largest suite file accepted; suites are hand-written and small, and a limit keeps
/// a mistaken path (a log, a binary) from being read into memory.
pub const MAX_SUITE_BYTES: usize = 1024 * 1024;

/// A suite that loaded and validated.
pub struct Loaded {
    pub suite: Suite,
    /// The path as the user gave it.
    pub path: String,
    /// SHA-256 of the file's bytes, lowercase hex: the auditor's proof of which suite ran.
    pub sha256: String,
    /// The file's text (for diagnostics found later, e.g. at run time).
    pub source: String,
    /// Environment variables the suite read.
    pub env: Vec<EnvUse>,
}

/// A suite that could not be loaded: every problem found.
#[derive(Debug)]
pub struct LoadError {
    pub diagnostics: Vec<Diagnostic>,
    /// The file's text when it could be read (for rendering the offending lines).
    pub source: Option<String>,
    /// Secret environment values read before the failure (to redact from messages).
    pub env: Vec<EnvUse>,
}

impl LoadError {
    fn one(d: Diagnostic) -> Self {
        LoadError {
            diagnostics: vec![d],
            source: None,
            env: Vec::new(),
        }
    }

    /// The rendered, redacted report of every problem.
    pub fn render(&self, redactor: &Redactor) -> String {
        for e in &self.env {
            if e.secret {
                redactor.add(&e.name, &e.value);
            }
        }
        crate::diag::render_all(&self.diagnostics, self.source.as_deref(), redactor)
    }
}

/// Reads and loads the suite at `path`, resolving `${VAR}` from the process environment.
pub fn load_file(path: &Path) -> Result<Loaded, LoadError> {
    load_file_with_env(path, &|n| std::env::var(n).ok())
}

/// [`load_file`] with `${VAR}` read through `env`.
pub fn load_file_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, LoadError> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| {
        LoadError::one(Diagnostic::file(
            &shown,
            format!("cannot read the suite: {e}"),
            Some("check the path; a suite is a YAML file such as `suites/app.yaml`".into()),
        ))
    })?;
    if meta.is_dir() {
        return Err(LoadError::one(Diagnostic::file(
            &shown,
            "this is a directory, not a suite file",
            Some("name the YAML file itself".into()),
        )));
    }
    if meta.len() as usize > MAX_SUITE_BYTES {
        return Err(LoadError::one(Diagnostic::file(
            &shown,
            format!(
                "the suite is {} bytes; suites over {MAX_SUITE_BYTES} bytes are refused",
                meta.len()
            ),
            Some("is this the right file? split a very large suite into several".into()),
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        LoadError::one(Diagnostic::file(
            &shown,
            format!("cannot read the suite: {e}"),
            Some("check that the file is readable by the user running tenantgate".into()),
        ))
    })?;
    load_bytes(&shown, &bytes, env)
}

/// Loads a suite from text (tests, stdin). `env` reads an environment variable.
pub fn load_str(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, LoadError> {
    load_bytes(name, text.as_bytes(), env)
}

fn line_col_of(bytes: &[u8], offset: usize) -> Loc {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map(|i| i + 1)
        .unwrap_or(0);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    Loc {
        line: line as u32,
        col: col as u32,
        offset,
        len: 1,
    }
}

fn load_bytes(
    name: &str,
    bytes: &[u8],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, LoadError> {
    if bytes.len() > MAX_SUITE_BYTES {
        return Err(LoadError::one(Diagnostic::file(
            name,
            format!(
                "the suite is {} bytes; suites over {MAX_SUITE_BYTES} bytes are refused",
                bytes.len()
            ),
            Some("is this the right file? split a very large suite into several".into()),
        )));
    }
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let loc = line_col_of(bytes, e.valid_up_to());
            return Err(LoadError::one(Diagnostic::at(
                name,
                loc,
                "the suite is not UTF-8 text (is it a binary file?)",
                Some("save the suite as UTF-8 YAML".into()),
            )));
        }
    };
    if let Some(i) = text.find('\0') {
        return Err(LoadError::one(Diagnostic::at(
            name,
            line_col_of(bytes, i),
            "the suite contains a NUL byte (is it a binary file?)",
            Some("a suite is a YAML text file".into()),
        )));
    }
    if text.trim().is_empty()
        || text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        return Err(LoadError::one(Diagnostic::file(
            name,
            "the suite is empty",
            Some("start from the example in the README: `version: 1`, `name`, `target`, `orgs`, `seed`, `checks`".into()),
        )));
    }
    let sha256 = hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref());

    let lookup_cache = std::cell::RefCell::new(std::collections::BTreeMap::new());
    let lookup = |n: &str| -> Option<String> {
        lookup_cache
            .borrow_mut()
            .entry(n.to_string())
            .or_insert_with(|| env(n))
            .clone()
    };
    // The collector wants an owned 'static closure: read every `${NAME}` the text can
    // mention up front, then serve lookups from that table.
    for name in env_names_in(text) {
        lookup(&name);
    }
    let table = lookup_cache.into_inner();
    let table_for_collector = table.clone();
    let opts = serde_saphyr::options! {
        with_snippet: false,
        strict_booleans: true,
        budget: serde_saphyr::budget! {
            max_aliases: 1_000,
            max_anchors: 1_000,
            max_nodes: 100_000,
            max_depth: 64,
            max_documents: 1,
            max_recorded_anchor_bytes: 4 * 1024 * 1024,
        },
    };
    let (parsed, collected) = template::collecting(
        Box::new(move |n: &str| table_for_collector.get(n).cloned().flatten()),
        || serde_saphyr::from_str_with_options::<Suite>(text, opts),
    );
    let env_uses: Vec<EnvUse> = collected.env.into_values().collect();
    let mut diags: Vec<Diagnostic> = collected
        .errors
        .into_iter()
        .map(|e| Diagnostic::at(name, e.loc, e.message, e.hint))
        .collect();
    let suite = match parsed {
        Ok(s) => Some(s),
        Err(e) => {
            let p = yaml_diagnostic(name, text, &e);
            if p.syntax {
                diags.clear();
            }
            diags.push(p.diagnostic);
            diags.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or((0, 0)));
            None
        }
    };
    let fail = |mut diags: Vec<Diagnostic>| {
        // A lone CR is a line break to YAML and often invisible in an editor: when the
        // suite does not load, it may be why.
        let lone_cr = text
            .as_bytes()
            .iter()
            .enumerate()
            .find(|(i, b)| **b == b'\r' && text.as_bytes().get(i + 1) != Some(&b'\n'));
        if let Some((i, _)) = lone_cr {
            diags.push(Diagnostic::at(
                name,
                line_col_of(text.as_bytes(), i),
                "a carriage return (CR) without a line feed: YAML reads it as a line break",
                Some(
                    "an editor may not show it; save the suite with LF (or CRLF) line endings"
                        .into(),
                ),
            ));
            diags.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or((0, 0)));
        }
        // YAML counts a lone CR (and U+0085, U+2028, U+2029) as a line break; the
        // renderer, editors and `str::lines` count LF. Lines and columns are therefore
        // taken from the byte offset, so they name the line that is shown.
        for d in &mut diags {
            if let Some(l) = d.loc.as_mut()
                && l.line > 0
            {
                // At the very end (after the last line break), point just after the
                // last text instead: that line exists and is shown.
                let end = text.trim_end_matches(['\n', '\r']).len();
                if l.offset > end {
                    l.offset = end;
                }
                let at = line_col_of(text.as_bytes(), l.offset);
                l.line = at.line;
                l.col = at.col;
            }
        }
        LoadError {
            diagnostics: diags,
            source: Some(text.to_string()),
            env: env_uses.clone(),
        }
    };
    let Some(suite) = suite else {
        return Err(fail(diags));
    };
    // Values that already have a problem (a missing variable, a bad placeholder) are
    // not checked again: one mistake, one message.
    let broken: BTreeSet<usize> = diags
        .iter()
        .filter_map(|d| d.loc.map(|l| l.offset))
        .collect();
    validate(name, &suite, &broken, &mut diags);
    diags.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or((0, 0)));
    diags.dedup();
    if !diags.is_empty() {
        return Err(fail(diags));
    }
    Ok(Loaded {
        suite,
        path: name.to_string(),
        sha256,
        source: text.to_string(),
        env: env_uses,
    })
}

/// Every `NAME` in a `${NAME...}` of the text (a superset is fine).
fn env_names_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        rest = &rest[i + 2..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 {
            out.insert(rest[..end].to_string());
        }
    }
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A YAML or type error, in the suite's words.
struct YamlProblem {
    diagnostic: Diagnostic,
    /// The YAML itself is broken (not a wrong key, type or value): what was read before
    /// it may be a misreading, so nothing else is reported until it is fixed.
    syntax: bool,
}

/// Turns a YAML/serde error into a diagnostic: what was expected and what was found,
/// the key it belongs to, "did you mean" for unknown keys, and what to do.
fn yaml_diagnostic(name: &str, text: &str, e: &serde_saphyr::Error) -> YamlProblem {
    use serde_saphyr::Error as E;
    use serde_saphyr::budget::BudgetBreach as B;
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
    let mut loc = used_at
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
    let must_be = |what: &str| match &key {
        Some(k) => format!("`{k}` must be {what}{found}"),
        None => format!("expected {what}{found}"),
    };
    let mut syntax = false;
    let (message, hint): (String, String) = match e {
        E::SerdeUnknownField {
            field, expected, ..
        } => {
            if let Some(l) = loc.as_mut() {
                l.len = field.chars().count();
            }
            unknown("key", field, expected)
        }
        E::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            if let Some(l) = loc.as_mut() {
                l.len = variant.chars().count();
            }
            unknown("value", variant, expected)
        }
        E::SerdeMissingField { field, .. } => (
            format!("missing key `{field}` in this mapping"),
            missing_key_hint(field),
        ),
        E::DuplicateMappingKey { key: k, .. } => {
            let first = k
                .as_deref()
                .zip(loc)
                .and_then(|(k, l)| earlier_key_line(text, k, l));
            (
                match (k, first) {
                    (Some(k), Some(line)) => {
                        if let Some(l) = loc.as_mut() {
                            l.len = k.chars().count();
                        }
                        format!("duplicate key `{k}` (first given at line {line})")
                    }
                    (Some(k), None) => format!("duplicate key `{k}`"),
                    (None, _) => "duplicate key".into(),
                },
                "each key may appear once in a mapping; remove or rename the repeated one".into(),
            )
        }
        E::Unexpected { expected, .. } => match *expected {
            "sequence start" => (
                must_be("a list"),
                "write one item per line, each starting with `- `, or `[a, b]`".into(),
            ),
            "mapping start" => (
                must_be("a mapping"),
                "write `key: value` lines indented under it, or `{ key: value }`".into(),
            ),
            "string scalar" | "scalar" => (
                must_be("a string"),
                "write text; quote it (`\"...\"`) if it starts with `{`, `[`, `*`, `&` or `!`"
                    .into(),
            ),
            other => (
                format!("expected {other}{found}"),
                "see the suite format in the README".into(),
            ),
        },
        E::InvalidScalar { ty, .. } => match *ty {
            "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" | "usize" | "isize" => {
                let range = match *ty {
                    "u16" => " from 0 to 65535",
                    "u8" => " from 0 to 255",
                    _ => "",
                };
                (
                    must_be(&format!("a whole number{range}")),
                    match key.as_deref() {
                        Some("version") => "write `version: 1`".into(),
                        Some("not_found_status") => {
                            "write the status of a missing resource, e.g. `404`".into()
                        }
                        _ => "write a number without quotes".into(),
                    },
                )
            }
            "bool" => (must_be("`true` or `false`"), YES_NO.into()),
            other => (
                must_be(&format!("a value of type {other}")),
                "see the suite format in the README".into(),
            ),
        },
        E::InvalidBooleanStrict { .. } => (must_be("`true` or `false`"), YES_NO.into()),
        E::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | E::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => {
            let word = unexpected
                .strip_prefix("string \"")
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or("");
            let yes_no =
                ["yes", "no", "on", "off", "y", "n"].contains(&word.to_ascii_lowercase().as_str());
            let what = match &key {
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
        E::NullIntoString { .. } => (
            match &key {
                Some(k) => format!("`{k}` has no value"),
                None => "a value is missing".into(),
            },
            "write a value after the colon, or remove the key".into(),
        ),
        E::UnknownAnchor { .. } => {
            syntax = true;
            (
                "an alias (`*name`) refers to an anchor (`&name`) that is not defined before it"
                    .into(),
                "define the anchor first, or write the value out".into(),
            )
        }
        E::Budget { breach, .. } => {
            syntax = true;
            match breach {
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
            }
        }
        E::MultipleDocuments { .. } => {
            syntax = true;
            multiple_documents()
        }
        E::Eof { .. } => {
            syntax = true;
            (
                "the file ends in the middle of a value".into(),
                "close every `[`, `{` and quote that is opened".into(),
            )
        }
        other => {
            syntax = true;
            let full = other.to_string();
            // serde-saphyr appends " at line L, column C"; the diagnostic shows it its own way.
            let msg = match full.rfind(" at line ") {
                Some(i) => full[..i].to_string(),
                None => full,
            };
            let lower = msg.to_ascii_lowercase();
            if lower.contains("tab")
                && let Some(l) = loc
                && let Some(t) = first_tab_from(text, l)
            {
                loc = Some(t);
            }
            if lower.contains("recursion limit") {
                too_deep()
            } else {
                (format!("invalid YAML: {msg}"), syntax_hint(&lower))
            }
        }
    };
    YamlProblem {
        diagnostic: Diagnostic {
            file: name.into(),
            loc,
            message,
            hint: Some(hint),
        },
        syntax,
    }
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

/// Names every template may use.
pub const BUILTINS: [&str; 2] = ["run_id", "uuid"];

/// The names a template may use in one place of the suite.
struct Scope<'a> {
    vars: &'a [String],
    /// `org` and bare capture names are allowed (provision, auth, teardown, mint claims).
    bare: Option<&'a BTreeSet<String>>,
    /// `a.NAME` / `b.NAME` allowed with these names.
    a: Option<&'a BTreeSet<String>>,
    b: Option<&'a BTreeSet<String>>,
}

impl Scope<'_> {
    fn allows(&self, name: &str) -> bool {
        if BUILTINS.contains(&name) || self.vars.iter().any(|v| v == name) {
            return true;
        }
        if let Some((org, n)) = name.split_once('.') {
            return match org {
                "a" => self.a.is_some_and(|s| s.contains(n)),
                "b" => self.b.is_some_and(|s| s.contains(n)),
                _ => false,
            };
        }
        match self.bare {
            Some(b) => name == "org" || b.contains(name),
            None => false,
        }
    }

    fn known(&self) -> Vec<String> {
        let mut k: Vec<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
        k.extend(self.vars.iter().cloned());
        if let Some(b) = self.bare {
            k.push("org".into());
            k.extend(b.iter().cloned());
        }
        if let Some(a) = self.a {
            k.extend(a.iter().map(|n| format!("a.{n}")));
        }
        if let Some(b) = self.b {
            k.extend(b.iter().map(|n| format!("b.{n}")));
        }
        k
    }

    fn check(&self, file: &str, t: &Tpl, place: &str, diags: &mut Vec<Diagnostic>) {
        for v in t.vars() {
            if self.allows(v) {
                continue;
            }
            let known = self.known();
            let hint = match did_you_mean(v, known.iter().map(|s| s.as_str())) {
                Some(s) => format!("did you mean `{{{{{s}}}}}`?"),
                None if known.is_empty() => "no names are known here".to_string(),
                None => format!("known here: {}", known.join(", ")),
            };
            let why = if v.starts_with("a.") || v.starts_with("b.") {
                " (no earlier step captures it)"
            } else if self.bare.is_none() && !v.contains('.') && !self.vars.iter().any(|x| x == v) {
                " (outside provision and teardown, captures are `a.NAME` or `b.NAME`)"
            } else {
                ""
            };
            diags.push(Diagnostic::at(
                file,
                t.loc,
                format!("unknown placeholder `{{{{{v}}}}}` in {place}{why}"),
                Some(hint),
            ));
        }
    }
}

fn request_templates(r: &Request) -> Vec<&Tpl> {
    let mut v = vec![&r.url];
    v.extend(r.headers.iter().map(|(_, t)| t));
    v.extend(r.query.iter().map(|(_, t)| t));
    if let Some(j) = &r.json {
        v.extend(j.templates());
    }
    if let Some(b) = &r.body {
        v.push(b);
    }
    v
}

fn expect_templates(e: &Expect) -> Vec<&Tpl> {
    let mut v: Vec<&Tpl> = e
        .body_contains
        .0
        .iter()
        .chain(e.body_excludes.0.iter())
        .collect();
    for (_, j) in e.json.iter() {
        v.extend(j.templates());
    }
    v
}

fn step_templates(s: &Step) -> Vec<&Tpl> {
    let mut v = request_templates(&s.request.value);
    if let Some(e) = &s.expect {
        v.extend(expect_templates(e));
    }
    v
}

fn no_placeholders(file: &str, t: &Tpl, place: &str, diags: &mut Vec<Diagnostic>) {
    if let Some(v) = t.vars().next() {
        diags.push(Diagnostic::at(
            file,
            t.loc,
            format!("`{{{{{v}}}}}` in {place}: placeholders are not allowed here"),
            Some("this value is read before any request; use `${ENV_VAR}` instead".into()),
        ));
    }
}

/// The URL-safe slug of a check name, used in result ids.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

/// Semantic checks that the types cannot express.
fn validate(file: &str, s: &Suite, broken: &BTreeSet<usize>, diags: &mut Vec<Diagnostic>) {
    let at = |loc: Loc, msg: String, hint: Option<String>| Diagnostic::at(file, loc, msg, hint);
    if s.version.value != 1 {
        diags.push(at(
            Loc::of(&s.version),
            format!("suite format version {} is not supported", s.version.value),
            Some(
                "this tenantgate reads version 1; upgrade tenantgate or write `version: 1`".into(),
            ),
        ));
    }
    if s.name.value.trim().is_empty() {
        diags.push(at(
            Loc::of(&s.name),
            "the suite's name is empty".into(),
            Some("name the suite: the name appears in every report".into()),
        ));
    }
    if s.checks.is_empty() && s.database.is_none() {
        diags.push(Diagnostic::file(
            file,
            "the suite has no checks and no database section: it cannot prove anything",
            Some("add `checks:` (read, list, write) or a `database:` section".into()),
        ));
    }
    if let Some(nf) = &s.not_found_status {
        check_not_found(file, nf, diags);
    }

    // vars: each may use builtins and earlier vars.
    let mut vars: Vec<String> = Vec::new();
    for (k, t) in s.vars.iter() {
        Scope {
            vars: &vars,
            bare: None,
            a: None,
            b: None,
        }
        .check(file, t, &format!("var `{}`", k.name), diags);
        if BUILTINS.contains(&k.name.as_str()) || k.name == "org" || k.name == "a" || k.name == "b"
        {
            diags.push(at(
                k.loc,
                format!("`{}` is a reserved name", k.name),
                Some("rename the var".into()),
            ));
        }
        vars.push(k.name.clone());
    }

    let plain = Scope {
        vars: &vars,
        bare: None,
        a: None,
        b: None,
    };
    if let Some(t) = &s.target {
        plain.check(file, &t.base_url, "target.base_url", diags);
        let url = t.base_url.to_string();
        // An empty or broken URL (a missing variable, an unclosed `${`): already reported.
        if !(url.is_empty()
            || broken.contains(&t.base_url.loc.offset)
            || url.starts_with("http://")
            || url.starts_with("https://"))
        {
            diags.push(at(
                t.base_url.loc,
                format!("target.base_url `{url}` is not an http:// or https:// URL"),
                Some("write the API's base URL, e.g. `https://staging.example.com`".into()),
            ));
        }
        for (_, h) in t.headers.iter() {
            plain.check(file, h, "target.headers", diags);
        }
        if let Some(ca) = t.tls.as_ref().and_then(|t| t.ca.as_ref()) {
            check_ca(file, ca, diags);
        }
    } else if !s.checks.is_empty() {
        diags.push(Diagnostic::file(
            file,
            "the suite has checks but no `target:`",
            Some("add `target: { base_url: https://... }`".into()),
        ));
    }

    // Org captures: what provision (or mint) gives each org.
    let mut org_caps: BTreeSet<String> = BTreeSet::new();
    match &s.orgs {
        None if !s.checks.is_empty() => diags.push(Diagnostic::file(
            file,
            "the suite has checks but no `orgs:`",
            Some("add `orgs:` with `provision:` steps (sign up through the API) or `mint:` (sign tokens)".into()),
        )),
        None => {}
        Some(o) => {
            match (&o.mint, o.provision.is_empty()) {
                (Some(_), false) => diags.push(at(
                    Loc::of(&o.provision[0].request),
                    "`orgs` has both `provision` and `mint`".into(),
                    Some("use one: provision signs up through the API, mint signs tokens itself".into()),
                )),
                (None, true) => diags.push(Diagnostic::file(
                    file,
                    "`orgs` has neither `provision` nor `mint`",
                    Some("add `provision:` steps or a `mint:` section".into()),
                )),
                _ => {}
            }
            for step in &o.provision {
                let scope = Scope { vars: &vars, bare: Some(&org_caps), a: None, b: None };
                for t in step_templates(step) {
                    scope.check(file, t, "a provision step", diags);
                }
                check_step(file, step, diags);
                org_caps.extend(step.capture.iter().map(|(k, _)| k.name.clone()));
            }
            if let Some(m) = &o.mint {
                check_mint(file, m, &vars, broken, diags);
                org_caps.extend(m.a.iter().map(|(k, _)| k.name.clone()));
                org_caps.insert("token".into());
            }
            let no_source = o.mint.is_none() && o.provision.is_empty();
            if let Some(auth) = &o.auth
                && !no_source
            {
                let scope = Scope { vars: &vars, bare: Some(&org_caps), a: None, b: None };
                scope.check(file, &auth.value, "orgs.auth.value", diags);
            } else if o.auth.is_none() && !no_source && !org_caps.contains("token") && !s.checks.is_empty() {
                diags.push(Diagnostic::file(
                    file,
                    "`orgs` has no `auth`, and no step captures `token` for the default `Authorization: Bearer {{token}}`",
                    Some("capture the token (`capture: { token: $.access_token }`) or add `auth: { header, value }`".into()),
                ));
            }
            if let Some(tc) = &o.tenant_claim
                && tc.value.trim().is_empty() {
                    diags.push(at(
                        Loc::of(tc),
                        "`tenant_claim` is empty".into(),
                        Some("name the JWT claim that carries the tenant, e.g. `org_id`, or remove the key".into()),
                    ));
                }
        }
    }

    // Seed: as A; captures become a.NAME.
    let mut a_caps = org_caps.clone();
    let mut b_caps = org_caps.clone();
    for step in &s.seed {
        let scope = Scope {
            vars: &vars,
            bare: None,
            a: Some(&a_caps),
            b: Some(&b_caps),
        };
        for t in step_templates(step) {
            scope.check(file, t, "a seed step", diags);
        }
        check_step(file, step, diags);
        // A seed step run `as: b` seeds B's own rows; its captures are `b.NAME`.
        let owner = if step.as_ == Some(Identity::B) {
            &mut b_caps
        } else {
            &mut a_caps
        };
        owner.extend(step.capture.iter().map(|(k, _)| k.name.clone()));
    }
    let full = Scope {
        vars: &vars,
        bare: None,
        a: Some(&a_caps),
        b: Some(&b_caps),
    };
    if let Some(o) = &s.orgs {
        if let Some(id) = &o.identity {
            for t in request_templates(&id.request) {
                full.check(file, t, "orgs.identity", diags);
            }
        }
        let teardown = Scope {
            vars: &vars,
            bare: Some(&org_caps),
            a: Some(&a_caps),
            b: Some(&b_caps),
        };
        for step in &o.teardown {
            for t in step_templates(step) {
                teardown.check(file, t, "a teardown step", diags);
            }
            check_step(file, step, diags);
        }
    }
    for m in &s.markers {
        let (MarkerSpec::Include(t) | MarkerSpec::Exclude(t)) = m;
        full.check(file, t, "markers", diags);
    }
    if let Some(a) = &s.attacks {
        check_attacks(file, a, broken, diags);
    }

    // Checks.
    let mut seen: Vec<(String, Loc)> = Vec::new();
    for c in &s.checks {
        let name_loc = Loc::of(&c.name);
        let sl = slug(&c.name.value);
        if sl.is_empty() {
            diags.push(at(
                name_loc,
                "a check needs a name with letters or digits".into(),
                Some("results are identified by the name: write what the check proves, e.g. `brand is invisible to B`".into()),
            ));
        } else if let Some((_, prev)) = seen.iter().find(|(s, _)| *s == sl) {
            diags.push(at(
                name_loc,
                format!(
                    "check name `{}` repeats the check at line {}",
                    c.name.value, prev.line
                ),
                Some("check names must be unique: results are identified by them".into()),
            ));
        } else {
            seen.push((sl, name_loc));
        }
        let kinds: Vec<&str> = [
            c.read.as_ref().map(|_| "read"),
            c.list.as_ref().map(|_| "list"),
            c.write.as_ref().map(|_| "write"),
            c.request.as_ref().map(|_| "request"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match kinds.len() {
            0 => diags.push(at(
                name_loc,
                format!("check `{}` says nothing to do", c.name.value),
                Some("give one of `read: URL`, `list: URL`, `write: {request}` with `verify: URL`, or `request: {...}` with `expect`".into()),
            )),
            1 => {}
            _ => diags.push(at(
                name_loc,
                format!("check `{}` has {}: a check does one thing", c.name.value, kinds.join(" and ")),
                Some("split it into one check per kind".into()),
            )),
        }
        let kind = kinds.first().copied().unwrap_or("");
        if c.verify.is_some() && kind != "write" {
            diags.push(at(
                name_loc,
                "`verify` belongs to a `write` check".into(),
                Some(format!(
                    "remove `verify`; a `{}` check has fixed rules (see the README)",
                    if kind.is_empty() { "read" } else { kind }
                )),
            ));
        }
        if kind == "write" && c.verify.is_none() {
            diags.push(at(
                name_loc,
                format!("write check `{}` has no `verify`", c.name.value),
                Some("add `verify: URL`, read as A before and after B's write to prove nothing changed".into()),
            ));
        }
        if kind != "request" {
            for (key, present) in [
                ("expect", c.expect.is_some()),
                ("control", c.control.is_some()),
                ("as", c.as_.is_some()),
            ] {
                if present {
                    diags.push(at(
                        name_loc,
                        format!("`{key}` belongs to a `request` check, not a `{kind}` check"),
                        Some(format!(
                            "`{kind}` checks have fixed rules (see the README); remove `{key}`"
                        )),
                    ));
                }
            }
        } else if c.expect.is_none() {
            diags.push(at(
                name_loc,
                format!("request check `{}` has no `expect`", c.name.value),
                Some("say what B must get, e.g. `expect: { status: 404 }`".into()),
            ));
        }
        if let Some(w) = &c.write
            && w.value.method.is_safe()
        {
            diags.push(at(
                Loc::of(w),
                format!(
                    "a write check sends {}: it changes nothing",
                    w.value.method.0
                ),
                Some("use PATCH, PUT, POST or DELETE; to test a read, use `read:`".into()),
            ));
        }
        let requests: Vec<&Request> = [
            c.read.as_ref().map(|r| &r.request),
            c.list.as_ref().map(|r| &r.request),
            c.write.as_ref().map(|r| &r.value),
            c.verify.as_ref().map(|r| &r.request),
            c.request.as_ref().map(|r| &r.value),
            c.control
                .as_ref()
                .and_then(|c| c.request.as_ref())
                .map(|r| &r.value),
        ]
        .into_iter()
        .flatten()
        .collect();
        let place = format!("check `{}`", c.name.value);
        for r in requests {
            check_request(file, r, diags);
            for t in request_templates(r) {
                full.check(file, t, &place, diags);
            }
        }
        for e in [c.expect.as_ref(), c.control.as_ref().map(|c| &c.expect)]
            .into_iter()
            .flatten()
        {
            for t in expect_templates(e) {
                full.check(file, t, &place, diags);
            }
            check_expect(file, e, diags);
        }
        for m in &c.markers {
            let (MarkerSpec::Include(t) | MarkerSpec::Exclude(t)) = m;
            full.check(file, t, &place, diags);
        }
        if let Some(a) = &c.attacks {
            check_attacks(file, a, broken, diags);
        }
        if let Some(nf) = &c.not_found_status {
            check_not_found(file, nf, diags);
        }
    }

    if let Some(db) = &s.database {
        no_placeholders(file, &db.url, "database.url", diags);
        if let Some(r) = &db.app_role {
            no_placeholders(file, r, "database.app_role", diags);
        }
        if let Some(p) = &db.probe {
            no_placeholders(file, &p.url, "database.probe.url", diags);
        }
        if let Some(p) = &db.preset
            && crate::db::TenantModel::preset_named(&p.value).is_none()
        {
            diags.push(at(
                Loc::of(p),
                format!("database.preset `{}` is not a known preset", p.value),
                Some(format!("write one of: {}", crate::db::PRESETS.join(", "))),
            ));
        }
        let url = db.url.to_string();
        if !(broken.contains(&db.url.loc.offset)
            || db.url.vars().next().is_some()
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.contains('='))
        {
            diags.push(at(
                db.url.loc,
                "database.url is not a PostgreSQL connection URL".into(),
                Some("write `postgres://user:password@host:5432/dbname` (from an environment variable: `${DATABASE_URL}`)".into()),
            ));
        }
    }
}

fn check_not_found(file: &str, nf: &serde_saphyr::Spanned<u16>, diags: &mut Vec<Diagnostic>) {
    if !(400..500).contains(&nf.value) || nf.value == 403 {
        diags.push(Diagnostic::at(
            file,
            Loc::of(nf),
            format!("not_found_status {} is not a not-found answer", nf.value),
            Some("use the 4xx status the API gives a missing resource (404, sometimes 410); never 403".into()),
        ));
    }
}

fn check_request(file: &str, r: &Request, diags: &mut Vec<Diagnostic>) {
    if r.json.is_some() && r.body.is_some() {
        diags.push(Diagnostic::at(
            file,
            r.url.loc,
            "a request has both `json` and `body`",
            Some("send one: `json` for a JSON body, `body` for raw text".into()),
        ));
    }
}

fn check_step(file: &str, s: &Step, diags: &mut Vec<Diagnostic>) {
    check_request(file, &s.request.value, diags);
    if let Some(e) = &s.expect {
        check_expect(file, e, diags);
    }
}

fn check_expect(file: &str, e: &Expect, diags: &mut Vec<Diagnostic>) {
    for (k, _) in e.json.iter() {
        if let Err(msg) = serde_json_path::JsonPath::parse(&k.name) {
            let hint = if k.name.starts_with('$') {
                "use RFC 9535 JSONPath such as `$.name` or `$.items[0].id`".to_string()
            } else {
                format!("a JSONPath starts with `$`: did you mean `$.{}`?", k.name)
            };
            diags.push(Diagnostic::at(
                file,
                k.loc,
                format!("`{}` is not a valid JSONPath: {msg}", k.name),
                Some(hint),
            ));
        }
    }
}

fn check_attacks(file: &str, a: &Attacks, broken: &BTreeSet<usize>, diags: &mut Vec<Diagnostic>) {
    // Header names of `tenant_override` are checked, with their location, while
    // deserializing.
    if let Some(Toggle::Configured(tf)) = &a.token_forgery
        && let Some(k) = &tf.sign_with
    {
        check_key(
            file,
            &k.algorithm,
            k.secret.as_ref(),
            k.key.as_ref(),
            broken,
            diags,
        );
    }
}

/// `target.tls.ca` must name a readable PEM bundle holding at least one certificate:
/// found now, the mistake points at the suite line instead of failing the first request
/// with a TLS error.
fn check_ca(file: &str, ca: &Tpl, diags: &mut Vec<Diagnostic>) {
    no_placeholders(file, ca, "target.tls.ca", diags);
    let Some(path) = ca.as_literal() else { return };
    // An empty path means its environment variable was missing: already reported.
    if path.is_empty() {
        return;
    }
    let hint = Some(
        "give the path of a PEM file of CA certificates (`-----BEGIN CERTIFICATE-----`)"
            .to_string(),
    );
    match std::fs::read(&path) {
        Err(e) => diags.push(Diagnostic::at(
            file,
            ca.loc,
            format!("CA file `{path}` cannot be read: {e}"),
            hint,
        )),
        Ok(pem) => match reqwest::Certificate::from_pem_bundle(&pem) {
            Ok(certs) if !certs.is_empty() => {}
            Ok(_) => diags.push(Diagnostic::at(
                file,
                ca.loc,
                format!("CA file `{path}` holds no PEM certificate"),
                hint,
            )),
            Err(e) => diags.push(Diagnostic::at(
                file,
                ca.loc,
                format!("CA file `{path}` is not a PEM certificate bundle: {e}"),
                hint,
            )),
        },
    }
}

/// The JWT algorithms tenantgate can sign with.
pub const ALGORITHMS: [&str; 7] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
];

fn check_key(
    file: &str,
    alg: &serde_saphyr::Spanned<String>,
    secret: Option<&Tpl>,
    key: Option<&Tpl>,
    broken: &BTreeSet<usize>,
    diags: &mut Vec<Diagnostic>,
) {
    let loc = Loc::of(alg);
    let a = alg.value.to_ascii_uppercase();
    if !ALGORITHMS.contains(&a.as_str()) {
        diags.push(Diagnostic::at(
            file,
            loc,
            format!("`{}` is not a supported JWT algorithm", alg.value),
            Some(format!("use one of {}", ALGORITHMS.join(", "))),
        ));
        return;
    }
    if let Some(t) = secret {
        no_placeholders(file, t, "a signing secret", diags);
    }
    if let Some(t) = key {
        no_placeholders(file, t, "a key path", diags);
    }
    if a.starts_with("HS") {
        match secret {
            None => diags.push(Diagnostic::at(
                file,
                loc,
                format!("{a} needs a `secret`"),
                Some("add `secret: ${JWT_SECRET}`".into()),
            )),
            // A missing variable or a placeholder: already reported.
            Some(t) if broken.contains(&t.loc.offset) => {}
            Some(t) => {
                if t.as_literal().is_some_and(|s| s.is_empty()) {
                    diags.push(Diagnostic::at(
                        file,
                        t.loc,
                        format!("the {a} secret is empty"),
                        Some("give the signing secret, e.g. `secret: ${JWT_SECRET}` with JWT_SECRET set".into()),
                    ));
                }
            }
        }
    } else {
        match key {
            None => diags.push(Diagnostic::at(
                file,
                loc,
                format!("{a} needs a `key` (the path of a PEM private key)"),
                Some("add `key: ${JWT_KEY_FILE}` or `key: path/to/private.pem`".into()),
            )),
            Some(t) if broken.contains(&t.loc.offset) => {}
            Some(t) => {
                if let Some(p) = t.as_literal()
                    && std::fs::metadata(&p).is_err()
                {
                    diags.push(Diagnostic::at(
                        file,
                        t.loc,
                        format!("key file `{p}` cannot be read"),
                        Some("give the path of a PEM private key (a relative path starts where tenantgate runs)".into()),
                    ));
                }
            }
        }
    }
}

fn check_mint(
    file: &str,
    m: &Mint,
    vars: &[String],
    broken: &BTreeSet<usize>,
    diags: &mut Vec<Diagnostic>,
) {
    check_key(
        file,
        &m.algorithm,
        m.secret.as_ref(),
        m.key.as_ref(),
        broken,
        diags,
    );
    for (which, map) in [("a", &m.a), ("b", &m.b)] {
        if map.get("org_id").is_none() {
            // Point into the org's mapping when it has a key; an empty one has no span.
            let loc = map
                .iter()
                .next()
                .map(|(k, _)| k.loc)
                .unwrap_or(Loc::of(&m.algorithm));
            diags.push(Diagnostic::at(
                file,
                loc,
                format!("`mint.{which}` has no `org_id`"),
                Some(format!(
                    "add `{which}: {{ org_id: \"${{ORG_{}_ID}}\" }}`",
                    which.to_uppercase()
                )),
            ));
        }
        for (k, t) in map.iter() {
            no_placeholders(file, t, &format!("mint.{which}.{}", k.name), diags);
        }
    }
    // A claim may use a name only when both orgs define it.
    // `org_id` counts as given: when one is missing that is reported above.
    let both: BTreeSet<String> =
        m.a.iter()
            .map(|(k, _)| k.name.clone())
            .filter(|n| m.b.get(n).is_some())
            .chain(["org_id".to_string()])
            .collect();
    let scope = Scope {
        vars,
        bare: Some(&both),
        a: None,
        b: None,
    };
    for (_, v) in m.claims.iter() {
        for t in v.templates() {
            scope.check(
                file,
                t,
                "mint.claims (a name must be given in both `a` and `b`)",
                diags,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |n| {
            pairs
                .iter()
                .find(|(k, _)| *k == n)
                .map(|(_, v)| v.to_string())
        }
    }

    pub(crate) const GOOD: &str = r#"
version: 1
name: demo
target:
  base_url: ${TARGET_URL:-http://127.0.0.1:8080}
  timeout: 10s
vars:
  password: ${SEED_PASSWORD:-correct-horse-battery}
orgs:
  provision:
    - name: sign up
      request:
        method: POST
        url: /auth/signup
        json: { org_name: "tg-{{run_id}}-{{org}}", password: "{{password}}" }
      expect: { status: 201 }
      capture: { token: $.access_token, org_id: $.org.id }
  auth: { header: Authorization, value: "Bearer {{token}}" }
  tenant_claim: org_id
  identity: /me
  teardown:
    - request: { method: DELETE, url: "/orgs/{{org_id}}" }
seed:
  - name: create brand
    request: { method: POST, url: /brands, json: { name: "Acme {{run_id}}" } }
    expect: { status: [200, 201] }
    capture: { brand_id: $.id, brand_name: $.name }
checks:
  - name: brand is invisible to B
    read: "/brands/{{a.brand_id}}"
  - name: list
    list: /brands
  - name: B cannot change config
    write: { method: PATCH, url: "/cfg/{{a.brand_id}}", json: { enabled: false } }
    verify: "/cfg/{{a.brand_id}}"
  - name: custom
    request: { url: /x }
    expect: { status: 2xx, json: { "$.a": 1 } }
"#;

    #[test]
    fn loads_the_contract_example() {
        let l = load_str("s.yaml", GOOD, &env(&[]))
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        assert_eq!(l.suite.checks.len(), 4);
        assert_eq!(l.suite.name.value, "demo");
        assert_eq!(l.sha256.len(), 64);
        let t = l.suite.target.as_ref().unwrap();
        assert_eq!(t.base_url.as_literal().unwrap(), "http://127.0.0.1:8080");
        assert_eq!(t.timeout.unwrap().0, std::time::Duration::from_secs(10));
    }

    fn errors(text: &str) -> String {
        let e = match load_str("s.yaml", text, &env(&[("SECRET_KEY", "hunter2hunter2")])) {
            Ok(_) => panic!("expected a load error"),
            Err(e) => e,
        };
        e.render(&Redactor::new())
    }

    #[test]
    fn unknown_key_suggests_the_nearest() {
        let out = errors(&GOOD.replace("    read: \"/brands", "    reed: \"/brands"));
        assert!(out.contains("unknown key `reed`"), "{out}");
        assert!(out.contains("did you mean `read`?"), "{out}");
        assert!(out.contains("--> s.yaml:30:5"), "{out}");
    }

    #[test]
    fn reports_all_template_problems_with_locations() {
        let text = GOOD
            .replace(
                "{{a.brand_id}}\"\n  - name: list",
                "{{a.brand_idd}}\"\n  - name: list",
            )
            .replace("timeout: 10s", "timeout: 10 parsecs")
            .replace("${TARGET_URL:-http://127.0.0.1:8080}", "${TARGET_URL}");
        let out = errors(&text);
        assert!(
            out.contains("environment variable `TARGET_URL` is not set"),
            "{out}"
        );
        assert!(out.contains("invalid duration"), "{out}");
        assert!(
            out.contains("unknown placeholder `{{a.brand_idd}}`"),
            "{out}"
        );
        assert!(out.contains("did you mean `{{a.brand_id}}`?"), "{out}");
        assert!(out.contains("3 problems"), "{out}");
    }

    #[test]
    fn bare_capture_outside_provision_is_explained() {
        let out = errors(&GOOD.replace("\"/brands/{{a.brand_id}}\"", "\"/brands/{{brand_id}}\""));
        assert!(out.contains("captures are `a.NAME` or `b.NAME`"), "{out}");
    }

    #[test]
    fn structural_mistakes() {
        let out = errors(&GOOD.replace("    verify: \"/cfg/{{a.brand_id}}\"\n", ""));
        assert!(out.contains("has no `verify`"), "{out}");
        let out = errors(&GOOD.replace("version: 1", "version: 2"));
        assert!(out.contains("version 2 is not supported"), "{out}");
        let out = errors("version: 1\nname: x\n");
        assert!(out.contains("no checks and no database"), "{out}");
        let out = errors(&GOOD.replace(
            "capture: { brand_id: $.id,",
            "capture: { brand_id: \"$.[\",",
        ));
        assert!(out.contains("not a valid capture"), "{out}");
        // Unquoted, `[` inside `{ ... }` is YAML syntax: that is the one problem shown.
        let out = errors(&GOOD.replace("capture: { brand_id: $.id,", "capture: { brand_id: $.[,"));
        assert!(out.contains("invalid YAML"), "{out}");
        assert!(out.contains("quote a value"), "{out}");
    }

    #[test]
    fn bad_files() {
        assert!(errors("").contains("the suite is empty"));
        assert!(errors("# only a comment\n").contains("the suite is empty"));
        let e = load_bytes("s.yaml", b"version: 1\n\xff\xfe", &|_| None)
            .err()
            .unwrap();
        assert!(e.render(&Redactor::new()).contains("not UTF-8"));
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
        let out = errors(bomb);
        assert!(out.starts_with("error:"), "{out}");
    }

    #[test]
    fn slugs() {
        assert_eq!(slug("Brand is invisible to B!"), "brand-is-invisible-to-b");
        assert_eq!(slug("  --x--  "), "x");
    }
}
