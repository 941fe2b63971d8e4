//! Loading a suite (parse stage): bytes → YAML → [`Suite`] → validation. This file
//! reads the file and runs the stages; `yaml_error` turns YAML errors into
//! diagnostics, `recover` reads past a wrong key or value (so one load finds them all)
//! and [`super::validate`] checks what the types cannot. Every problem
//! found is reported, each with file, line and column, before a single request is
//! sent: unknown keys (with "did you mean"), wrong types, bad durations, bad JSONPath,
//! missing environment variables, and placeholders that name nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use super::model::*;
use super::recover::{self, Blank};
use super::template::{self, EnvUse, Loc};
use super::validate::Validator;
use super::yaml_error::{Recover, yaml_diagnostic};
use crate::diag::Diagnostic;
use crate::redact::Redactor;

pub use super::validate::{ALGORITHMS, BUILTINS, slug};

/// The largest suite file accepted; suites are hand-written and small, and a limit keeps
/// a mistaken path (a log, a binary) from being read into memory.
pub const MAX_SUITE_BYTES: usize = 1024 * 1024;

/// How a suite is loaded.
#[derive(Clone, Copy)]
pub struct LoadOptions<'a> {
    /// Reads an environment variable (`${NAME}`).
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// `validate --no-env`: no variable is read; a `${NAME}` without a default is
    /// listed in [`Loaded::env_refs`] as required instead of being an error, and the
    /// checks of the values holding one are left to the run.
    pub no_env: bool,
    /// Origins the command line allows requests to, besides the target's and the
    /// suite's (`--allow-origin`).
    pub allow_origins: &'a [String],
}

impl<'a> LoadOptions<'a> {
    /// Loading with `${NAME}` read through `env`, nothing else allowed.
    pub fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        LoadOptions {
            env,
            no_env: false,
            allow_origins: &[],
        }
    }
}

/// An environment variable a suite names (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvRef {
    pub name: String,
    /// A run needs it set: at least one reference has no default.
    pub required: bool,
}

/// A suite that loaded and validated.
pub struct Loaded {
    pub suite: Suite,
    /// The path as the user gave it.
    pub path: String,
    /// SHA-256 of the file's bytes, lowercase hex: the auditor's proof of which suite ran.
    pub sha256: String,
    /// The file's text (for the lines reports point at; `run` lets go of it once its
    /// reporters are made).
    pub source: String,
    /// Environment variables the suite read (with their values: for redaction only).
    pub env: Vec<EnvUse>,
    /// The suite's `env:` list; `None` when it has none (every name it uses then counts
    /// as declared, and [`Loaded::notices`] says so).
    pub env_declared: Option<Vec<String>>,
    /// Every environment variable the suite names, in name order.
    pub env_refs: Vec<EnvRef>,
    /// The origins requests may go to: the target's first, then
    /// `target.allowed_origins`, then the command line's. Empty without a target.
    pub origins: Vec<String>,
    /// What the user should know that is not an error (e.g. no `env:` list).
    pub notices: Vec<String>,
}

impl Loaded {
    /// The names of the environment variables the suite read (never their values).
    pub fn env_names(&self) -> Vec<&str> {
        self.env.iter().map(|e| e.name.as_str()).collect()
    }

    /// Whether a request may go to `url`: a relative URL (joined to the target), or an
    /// absolute one of an allowed origin. For URLs known only at run time (built from
    /// a capture).
    pub fn allows_url(&self, url: &str) -> bool {
        match super::validate::origin_of_url(url) {
            Some(o) => self.origins.contains(&o),
            None => !super::validate::is_absolute(url),
        }
    }
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
    load_file_with(path, &LoadOptions::new(env))
}

/// [`load_file`] with options (`--no-env`, `--allow-origin`).
pub fn load_file_with(path: &Path, opts: &LoadOptions) -> Result<Loaded, LoadError> {
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
        return Err(LoadError::one(too_large(&shown, meta.len() as usize)));
    }
    let bytes = std::fs::read(path).map_err(|e| {
        LoadError::one(Diagnostic::file(
            &shown,
            format!("cannot read the suite: {e}"),
            Some("check that the file is readable by the user running tenantgate".into()),
        ))
    })?;
    load_bytes(&shown, &bytes, opts)
}

/// Loads a suite from text (tests, stdin). `env` reads an environment variable.
pub fn load_str(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, LoadError> {
    load_bytes(name, text.as_bytes(), &LoadOptions::new(env))
}

/// [`load_str`] with options (`--no-env`, `--allow-origin`).
pub fn load_str_with(name: &str, text: &str, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    load_bytes(name, text.as_bytes(), opts)
}

fn too_large(name: &str, len: usize) -> Diagnostic {
    Diagnostic::file(
        name,
        format!("the suite is {len} bytes; suites over {MAX_SUITE_BYTES} bytes are refused"),
        Some("is this the right file? split a very large suite into several".into()),
    )
}

/// The line and column (1-based, counting LF only) of a byte offset.
pub(super) fn line_col_of(bytes: &[u8], offset: usize) -> Loc {
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

/// The bytes as suite text: refuses what is too large, not UTF-8, binary or empty.
fn text_of<'b>(name: &str, bytes: &'b [u8]) -> Result<&'b str, LoadError> {
    if bytes.len() > MAX_SUITE_BYTES {
        return Err(LoadError::one(too_large(name, bytes.len())));
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
    Ok(text)
}

/// What deserializing the text gave: the suite (unless the YAML or a type was wrong),
/// the problems found on the way, and what was read of the environment.
struct Parsed {
    suite: Option<Suite>,
    diags: Vec<Diagnostic>,
    env: Vec<EnvUse>,
    /// Every `${NAME}` referenced, and whether a run needs it (no default).
    refs: BTreeMap<String, bool>,
    /// Values that hold a `${NAME}` not read (`--no-env`).
    unread: Vec<Loc>,
    /// Entries blanked to read past wrong keys and values.
    blanks: Vec<Blank>,
    declared: Option<BTreeSet<String>>,
}

fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
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
    }
}

/// The suite's `env:` list, read before anything else so that no other variable is
/// read. `None` when the suite has none (or its YAML does not read: the full parse
/// reports why).
fn declared_env(text: &str) -> Option<BTreeSet<String>> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        env: Option<Vec<String>>,
    }
    let head: Head = serde_saphyr::from_str_with_options(text, yaml_options()).ok()?;
    head.env.map(|v| v.into_iter().collect())
}

/// [`declared_env`] without parsing the whole suite (that parse was a fifth of loading
/// 10,000 checks): in a suite written as a block mapping, the `env:` list is the entry
/// that starts at column 0 with `env:`, up to the next line that starts at column 0.
/// Only that entry is parsed. `None` when the text does not look like that (several
/// such lines, a flow mapping at the top): then the whole suite is parsed for it. The
/// guess is checked against the parsed suite's own `env` ([`parse`]).
fn declared_env_quick(text: &str) -> Option<Option<BTreeSet<String>>> {
    let starts_top_level =
        |l: &str| l.starts_with(|c: char| !c.is_whitespace() && c != '#') && !l.starts_with("---");
    let is_env = |l: &str| {
        ["env:", "\"env\":", "'env':"]
            .iter()
            .any(|k| l.starts_with(k))
    };
    let mut lines = text.split_inclusive('\n');
    // The first entry of a block mapping starts at column 0 (after comments and `---`).
    let first = lines.clone().find(|l| starts_top_level(l))?;
    if first.starts_with(['{', '[', '"', '\'', '!', '&', '*', '-', '|', '>', '%']) && !is_env(first)
    {
        return None;
    }
    let mut offset = 0;
    let mut found: Option<(usize, usize)> = None;
    while let Some(l) = lines.next() {
        if is_env(l) {
            if found.is_some() {
                return None;
            }
            let start = offset;
            let mut end = start + l.len();
            for next in lines.clone() {
                if starts_top_level(next) || next.starts_with("---") {
                    break;
                }
                end += next.len();
            }
            found = Some((start, end));
        }
        offset += l.len();
    }
    let Some((start, end)) = found else {
        return Some(None);
    };
    Some(declared_env(&text[start..end]))
}

/// How many entries loading blanks or renames, at most, to read past wrong keys and
/// values...
const MAX_BLANKS: usize = 50;
/// ...and how many bytes it parses in all: each blank means parsing the text again, and
/// a large suite full of mistakes must still be refused quickly.
const MAX_PARSED_BYTES: usize = 4 * 1024 * 1024;

/// YAML → [`Suite`], collecting every template and value problem on the way; after a
/// wrong key, type or value, the entry is blanked and the text parsed again
/// ([`super::recover`]) so that every such mistake is reported at once.
fn parse(name: &str, text: &str, opts: &LoadOptions) -> Parsed {
    let Some(guess) = declared_env_quick(text) else {
        return parse_declared(name, text, opts, declared_env(text));
    };
    let parsed = parse_declared(name, text, opts, guess.clone());
    // The quick read of `env:` must be what the full parse read; else (a contrived
    // layout: `env:` at column 0 inside a multi-line string) parse again with the list
    // the full parse finds.
    let read = match &parsed.suite {
        Some(s) => s
            .env
            .as_ref()
            .map(|v| v.iter().map(|n| n.value.clone()).collect()),
        None => declared_env(text),
    };
    if read == guess {
        parsed
    } else {
        parse_declared(name, text, opts, declared_env(text))
    }
}

fn parse_declared(
    name: &str,
    text: &str,
    opts: &LoadOptions,
    declared: Option<BTreeSet<String>>,
) -> Parsed {
    // The collector wants an owned 'static closure: read every `${NAME}` the suite may
    // read up front (the declared ones, or every one it names when it has no `env:`
    // list; none with `--no-env`), then serve lookups from that table.
    let table: BTreeMap<String, Option<String>> = env_names_in(text)
        .into_iter()
        .filter(|n| !opts.no_env && declared.as_ref().is_none_or(|d| d.contains(n)))
        .map(|n| {
            let v = (opts.env)(&n);
            (n, v)
        })
        .collect();
    let mut out = Parsed {
        suite: None,
        diags: Vec::new(),
        env: Vec::new(),
        refs: BTreeMap::new(),
        unread: Vec::new(),
        blanks: Vec::new(),
        declared: declared.clone(),
    };
    // The text as parsed: the file's own until a wrong entry must be blanked or a typo
    // renamed (a copy of a large suite only then).
    let mut masked = std::borrow::Cow::Borrowed(text);
    let mut renamed: Vec<usize> = Vec::new();
    let mut env: BTreeMap<String, EnvUse> = BTreeMap::new();
    loop {
        let table = table.clone();
        let start = template::Collector {
            lookup: Some(Box::new(move |n: &str| table.get(n).cloned().flatten())),
            declared: declared.clone(),
            no_env: opts.no_env,
            ..Default::default()
        };
        let (parsed, collected) = template::collecting_with(start, || {
            serde_saphyr::from_str_with_options::<Suite>(&masked, yaml_options())
        });
        env.extend(collected.env);
        for (n, needed) in collected.refs {
            *out.refs.entry(n).or_insert(false) |= needed;
        }
        out.unread.extend(collected.unread);
        let first = out.blanks.is_empty() && renamed.is_empty();
        let budget = (MAX_PARSED_BYTES / text.len().max(1)).min(MAX_BLANKS);
        let more = out.blanks.len() + renamed.len() < budget;
        for e in collected.errors {
            let d = Diagnostic::at(name, e.loc, e.message, e.hint);
            if !out.diags.contains(&d) {
                out.diags.push(d);
            }
        }
        let e = match parsed {
            Ok(mut s) => {
                // The vector grew by doubling: give back the unused tail (kept for the
                // whole run).
                s.checks.shrink_to_fit();
                out.suite = Some(s);
                break;
            }
            Err(e) => e,
        };
        let p = yaml_diagnostic(name, &masked, &e);
        if p.syntax {
            // Broken YAML: what was read before it may be a misreading. (After a blank
            // it can only be the blank's doing: what was found so far stands.)
            if first {
                out.diags.clear();
                out.diags.push(p.diagnostic);
            }
            break;
        }
        // A typo of a known key: go on as if the known key was written (checked once
        // per place, so a wrong guess cannot loop).
        if let (Some((from, to)), Some(l)) = (&p.typo, p.diagnostic.loc)
            && more
            && !renamed.contains(&l.offset)
            && let Some(t) = recover::rename(&masked, l.offset, from, to)
        {
            renamed.push(l.offset);
            if !out.diags.contains(&p.diagnostic) {
                out.diags.push(p.diagnostic);
            }
            masked = std::borrow::Cow::Owned(t);
            continue;
        }
        let blank = match (p.recover, p.diagnostic.loc) {
            (Some(r), Some(l)) => recover::entry_at(&masked, l.offset, r == Recover::Key),
            _ => None,
        };
        // A required key blanked for a wrong value is not missing: it was reported.
        let consequence = p.missing.is_some_and(|f| {
            out.blanks.iter().any(|b| {
                b.text
                    .trim_start()
                    .trim_start_matches("- ")
                    .starts_with(&format!("{f}:"))
            })
        });
        if !consequence && !out.diags.contains(&p.diagnostic) {
            out.diags.push(p.diagnostic);
        }
        // Stop when nothing can be blanked, or the error is in what was blanked already.
        let Some(blank) = blank.filter(|b| {
            more && !out
                .blanks
                .iter()
                .any(|o| o.range.start < b.range.end && b.range.start < o.range.end)
        }) else {
            break;
        };
        recover::apply(masked.to_mut(), &blank);
        out.blanks.push(blank);
    }
    sort(&mut out.diags);
    out.env = env.into_values().collect();
    out
}

/// Every `graphql:` request becomes the HTTP request it stands for: `POST` of
/// `{query, operationName, variables}` to its `url`, else `target.graphql`, else
/// `/graphql`. Done before validation, so its URL, its placeholders and its body are
/// checked (and later twinned and attacked) like any other request's.
fn graphql_requests(s: &mut crate::suite::model::Suite) -> Vec<Loc> {
    let mut conflicts = Vec::new();
    use crate::suite::template::Tpl;
    let endpoint = s.target.as_ref().and_then(|t| t.graphql.clone());
    let mut fill = |r: &mut Request| {
        let Some(g) = &r.graphql else { return };
        if r.json.is_some() || r.body.is_some() {
            conflicts.push(Loc::of(&g.query));
            return;
        }
        let loc = Loc::of(&g.query);
        let key = |n: &str| Key {
            name: n.to_string(),
            loc,
        };
        let mut body = vec![(
            key("query"),
            JValue::Str(Tpl::literal(g.query.value.clone())),
        )];
        if let Some(op) = &g.operation {
            body.push((key("operationName"), JValue::Str(Tpl::literal(op.clone()))));
        }
        body.push((
            key("variables"),
            g.variables
                .clone()
                .unwrap_or_else(|| JValue::Map(Map::default())),
        ));
        r.json = Some(JValue::Map(Map(body)));
        r.method = Method("POST");
        if r.url.parts.is_empty() {
            r.url = endpoint.clone().unwrap_or_else(|| {
                let mut t = Tpl::literal("/graphql");
                t.loc = loc;
                t
            });
        }
    };
    let steps = s
        .orgs
        .iter_mut()
        .flat_map(|o| o.provision.iter_mut().chain(o.teardown.steps.iter_mut()))
        .chain(s.seed.iter_mut());
    for st in steps {
        fill(&mut st.request.value);
    }
    if let Some(id) = s.orgs.as_mut().and_then(|o| o.identity.as_mut()) {
        fill(Arc::make_mut(&mut id.request));
    }
    for c in &mut s.checks {
        let reqs = [
            c.read.as_deref_mut().map(|r| Arc::make_mut(&mut r.request)),
            c.list.as_deref_mut().map(|r| Arc::make_mut(&mut r.request)),
            c.verify
                .as_deref_mut()
                .map(|r| Arc::make_mut(&mut r.request)),
            c.write.as_deref_mut().map(|r| &mut r.value),
            c.request.as_deref_mut().map(|r| &mut r.value),
            c.create.as_mut().map(|r| &mut r.value),
        ];
        for r in reqs.into_iter().flatten() {
            fill(r);
        }
        if let Some(r) = c.control.as_deref_mut().and_then(|c| c.request.as_mut()) {
            fill(&mut r.value);
        }
    }
    conflicts
}

fn sort(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.loc.map(|l| (l.line, l.col)).unwrap_or((0, 0)));
}

fn load_bytes(name: &str, bytes: &[u8], opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let text = text_of(name, bytes)?;
    let sha256 = crate::digest::sha256_hex(bytes);
    let Parsed {
        suite,
        mut diags,
        env,
        refs,
        unread,
        blanks,
        declared,
    } = parse(name, text, opts);
    let Some(mut suite) = suite else {
        return Err(failed(name, text, diags, env));
    };
    let conflicts = graphql_requests(&mut suite);
    diags.extend(conflicts.into_iter().map(|loc| {
        Diagnostic::at(
            name,
            loc,
            "a `graphql:` request has its own body: it cannot have `json` or `body` too",
            Some("put the operation's values in `graphql.variables`".into()),
        )
    }));
    // Values that already have a problem (a missing variable, a bad placeholder) are
    // not checked again: one mistake, one message. Nor are values `--no-env` left
    // unread.
    let broken: BTreeSet<usize> = diags
        .iter()
        .filter_map(|d| d.loc.map(|l| l.offset))
        .chain(unread.iter().map(|l| l.offset))
        .collect();
    let checked = Validator::new(name, &broken, &blanks, opts.allow_origins).validate(&suite);
    diags.extend(checked.diags);
    sort(&mut diags);
    diags.dedup();
    if !diags.is_empty() {
        return Err(failed(name, text, diags, env));
    }
    let mut notices = Vec::new();
    if declared.is_none() && !refs.is_empty() {
        let names: Vec<&str> = refs.keys().map(String::as_str).collect();
        notices.push(format!(
            "the suite has no `env:` list, so it may read every environment variable it names ({}); declare them (`env: [{}]`) and it can read no other",
            names.join(", "),
            names.join(", ")
        ));
    }
    Ok(Loaded {
        suite,
        path: name.to_string(),
        sha256,
        source: text.to_string(),
        env,
        env_declared: declared.map(|d| d.into_iter().collect()),
        env_refs: refs
            .into_iter()
            .map(|(name, required)| EnvRef { name, required })
            .collect(),
        origins: checked.origins,
        notices,
    })
}

/// The load error for `diags`, with a lone CR pointed out and every location taken
/// from its byte offset.
fn failed(name: &str, text: &str, mut diags: Vec<Diagnostic>, env: Vec<EnvUse>) -> LoadError {
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
            Some("an editor may not show it; save the suite with LF (or CRLF) line endings".into()),
        ));
        sort(&mut diags);
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
        env,
    }
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

    #[test]
    fn the_env_list_is_read_without_parsing_the_whole_suite_and_checked_against_it() {
        let set = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>());
        // Block mappings: the `env:` entry alone is parsed, in any of its forms.
        let flow = "# yaml-language-server: $schema=x\nversion: 1\nenv: [A, B]\nchecks: []\n";
        assert_eq!(declared_env_quick(flow), Some(set(&["A", "B"])));
        let block = "version: 1\nenv:\n  - A\n  # a comment\n\n  - B\nname: x\n";
        assert_eq!(declared_env_quick(block), Some(set(&["A", "B"])));
        assert_eq!(declared_env_quick("env: []\n"), Some(set(&[])));
        assert_eq!(declared_env_quick("version: 1\nname: x\n"), Some(None));
        // Layouts it does not read: the whole suite is parsed for the list.
        assert_eq!(declared_env_quick("{version: 1, env: [A]}"), None);
        assert_eq!(declared_env_quick("env: [A]\nenv: [B]\n"), None);
        assert_eq!(declared_env_quick("%YAML 1.2\n---\nenv: [A]\n"), None);
        // Each of these loads as the full parse reads it, whatever the quick read said.
        for text in [
            GOOD.replace(
                "name: demo\n",
                "name: demo\nenv: [TARGET_URL, SEED_PASSWORD]\n",
            ),
            // `env:` at column 0 inside a quoted string: the guess is wrong, and caught.
            GOOD.replace(
                "name: demo\n",
                "name: \"demo\nenv: [TARGET_URL, SEED_PASSWORD]\"\n",
            ),
            GOOD.replace(
                "name: demo\n",
                "name: demo\n\"env\" : [SEED_PASSWORD, TARGET_URL]\n",
            ),
        ] {
            let text = text.as_str();
            let l = load_str(
                "s.yaml",
                text,
                &env(&[("TARGET_URL", "http://x"), ("SEED_PASSWORD", "pw")]),
            )
            .unwrap_or_else(|e| panic!("{text}: {}", e.render(&Redactor::new())));
            let full = declared_env(text).map(|d| d.into_iter().collect::<Vec<_>>());
            assert_eq!(l.env_declared, full, "{text}");
            let read: Vec<&str> = l.env.iter().map(|e| e.name.as_str()).collect();
            if let Some(declared) = full {
                assert!(
                    read.iter().all(|n| declared.iter().any(|d| d == n)),
                    "{text}"
                );
            } else {
                assert_eq!(read, ["SEED_PASSWORD", "TARGET_URL"], "{text}");
            }
        }
    }

    fn errors(text: &str) -> String {
        let e = match load_str("s.yaml", text, &env(&[("SECRET_KEY", "hunter2hunter2")])) {
            Ok(_) => panic!("expected a load error"),
            Err(e) => e,
        };
        e.render(&Redactor::new())
    }

    #[test]
    fn graphql_requests_load_as_posts_and_their_mistakes_are_located() {
        let text = GOOD.replace(
            "    read: \"/brands/{{a.brand_id}}\"",
            "    read: { graphql: { query: \"query($id: ID!) { brandById(id: $id) { id } }\", variables: { id: \"{{a.brand_id}}\" }, field: brandById } }",
        ).replace("  timeout: 10s", "  timeout: 10s\n  graphql: /api/graphql");
        let l = load_str("s.yaml", &text, &env(&[]))
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        let r = &l.suite.checks[0].read.as_ref().unwrap().request;
        assert_eq!(
            (r.method.0, r.url.to_string().as_str()),
            ("POST", "/api/graphql")
        );
        assert_eq!(r.graphql_field(), Some("brandById"));
        let body = r
            .json
            .as_ref()
            .unwrap()
            .render(&|_| Some("X".into()))
            .unwrap();
        assert_eq!(body["variables"]["id"], "X");
        assert!(body["query"].as_str().unwrap().contains("brandById"));
        // json beside graphql, a request without url, a typo in graphql: each located.
        let bad = text
            .replace("field: brandById }", "field: brandById }, json: { a: 1 }")
            .replace("    request: { url: /x }", "    request: { method: GET }")
            .replace(
                "    list: /brands",
                "    list: { graphql: { qurey: \"{ a }\" } }",
            );
        let out = errors(&bad);
        assert!(out.contains("has its own body"), "{out}");
        assert!(out.contains("has no `url`"), "{out}");
        assert!(out.contains("qurey"), "{out}");
    }

    #[test]
    fn seed_captures_as_anon_are_anon_names() {
        let text = GOOD.replace(
            "checks:\n",
            "  - name: anonymous feedback\n    as: anon\n    request: { method: POST, url: /feedback }\n    capture: { ticket: $.id }\nchecks:\n  - name: ticket\n    read: \"/brands/{{a.brand_id}}?t={{anon.ticket}}\"\n",
        );
        load_str("s.yaml", &text, &env(&[]))
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        let out = errors(&text.replace("{{anon.ticket}}", "{{a.ticket}}"));
        assert!(out.contains("anon.ticket"), "suggested: {out}");
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
    fn a_redirect_is_never_a_not_found_status() {
        // The contract's decision: a declared 3xx not-found status is refused at load,
        // at suite and at check level, with its line; 404 and 410 load.
        for status in ["301", "302", "307", "200", "403", "500"] {
            let suite = GOOD.replace(
                "checks:\n",
                &format!("not_found_status: {status}\nchecks:\n"),
            );
            let out = errors(&suite);
            assert!(
                out.contains(&format!(
                    "not_found_status {status} is not a not-found answer"
                )),
                "{out}"
            );
            assert!(out.contains("--> s.yaml:"), "{out}");
            let check = GOOD.replace(
                "    read: \"/brands/{{a.brand_id}}\"\n",
                &format!(
                    "    read: \"/brands/{{{{a.brand_id}}}}\"\n    not_found_status: {status}\n"
                ),
            );
            assert!(
                errors(&check).contains("is not a not-found answer"),
                "{status}"
            );
        }
        for status in ["404", "410"] {
            let suite = GOOD.replace(
                "checks:\n",
                &format!("not_found_status: {status}\nchecks:\n"),
            );
            assert!(load_str("s.yaml", &suite, &env(&[])).is_ok(), "{status}");
        }
    }

    #[test]
    fn teardown_takes_the_torn_down_orgs_own_captures() {
        // A seed capture, bare in teardown: the current org's (the runner renders
        // teardown with the org being torn down).
        let text = GOOD.replace(
            "    - request: { method: DELETE, url: \"/orgs/{{org_id}}\" }\n",
            "    - request: { method: DELETE, url: \"/brands/{{brand_id}}\" }\n    - request: { method: DELETE, url: \"/orgs/{{org_id}}\" }\n",
        );
        load_str("s.yaml", &text, &env(&[]))
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        // A typo there is explained with the bare name, never with `{{a.NAME}}`: B's
        // teardown would delete A's brand.
        let out = errors(&text.replace("/brands/{{brand_id}}", "/brands/{{brand_idd}}"));
        assert!(out.contains("did you mean `{{brand_id}}`?"), "{out}");
        let out = errors(&text.replace("/brands/{{brand_id}}", "/brands/{{zzzzzzzzzz}}"));
        assert!(out.contains("known here:"), "{out}");
        assert!(!out.contains("a.brand_id"), "{out}");
    }

    #[test]
    fn teardown_keeps_loads_in_both_forms_and_names_only_captures() {
        let text = GOOD.replace(
            "  teardown:\n    - request:",
            "  teardown:\n    keeps: [brand_id, { capture: org_id, reason: \"orgs stay\" }]\n    reason: \"no delete route\"\n    steps:\n    - request:",
        );
        assert_ne!(text, GOOD);
        let l = load_str("s.yaml", &text, &env(&[]))
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        let td = &l.suite.orgs.as_ref().unwrap().teardown;
        assert_eq!(td.steps.len(), 1);
        assert_eq!(td.kept("org_id").as_deref(), Some("orgs stay"));
        assert_eq!(td.kept("brand_id").as_deref(), Some("no delete route"));
        assert_eq!(td.kept("token"), None);
        let out = errors(&text.replace("keeps: [brand_id", "keeps: [brand_idd"));
        assert!(out.contains("`teardown.keeps` names `brand_idd`"), "{out}");
        assert!(out.contains("did you mean `brand_id`?"), "{out}");
    }

    #[test]
    fn a_lone_placeholder_keeps_its_json_type() {
        let text = GOOD.replace(
            "json: { enabled: false }",
            "json: { id: \"{{a.n}}\", on: \"{{a.flag}}\", label: \"n={{a.n}}\", obj: \"{{a.o}}\", s: \"{{a.s}}\", lit: 7 }",
        );
        let text = text.replace(
            "capture: { brand_id: $.id, brand_name: $.name }",
            "capture: { brand_id: $.id, brand_name: $.name, n: $.n, flag: $.f, o: $.o, s: $.s }",
        );
        let l = load_str("s.yaml", &text, &env(&[]))
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        let json = l.suite.checks[2]
            .write
            .as_ref()
            .unwrap()
            .value
            .json
            .as_ref()
            .unwrap();
        let values = serde_json::json!({
            "a.n": 501, "a.flag": true, "a.o": { "k": [1] }, "a.s": "501"
        });
        let got = json.render_typed(&|n| values.get(n).cloned()).unwrap();
        assert_eq!(
            got,
            serde_json::json!({ "id": 501, "on": true, "label": "n=501", "obj": { "k": [1] }, "s": "501", "lit": 7 })
        );
        let missing = json.render_typed(&|_| None).unwrap_err();
        assert_eq!(missing.to_string(), "`{{a.n}}` has no value here");
    }

    #[test]
    fn no_env_reads_nothing_and_lists_the_needs() {
        let text = GOOD.replace(
            "${SEED_PASSWORD:-correct-horse-battery}",
            "${SEED_PASSWORD}",
        ) + "database:\n  url: ${DATABASE_URL}\n";
        let read = std::cell::Cell::new(0);
        let counting = |_: &str| {
            read.set(read.get() + 1);
            Some("x".to_string())
        };
        let opts = LoadOptions {
            env: &counting,
            no_env: true,
            allow_origins: &[],
        };
        let l = load_str_with("s.yaml", &text, &opts)
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        assert_eq!(read.get(), 0);
        assert!(l.env_names().is_empty());
        let needs: Vec<(&str, bool)> = l
            .env_refs
            .iter()
            .map(|r| (r.name.as_str(), r.required))
            .collect();
        assert_eq!(
            needs,
            [
                ("DATABASE_URL", true),
                ("SEED_PASSWORD", true),
                ("TARGET_URL", false)
            ]
        );
        assert_eq!(l.origins, ["http://127.0.0.1:8080"]);
        assert!(l.notices[0].contains("no `env:` list"), "{:?}", l.notices);
    }

    #[test]
    fn origins_are_the_targets_the_suites_and_the_command_lines() {
        let text = GOOD.replace(
            "  timeout: 10s\n",
            "  timeout: 10s\n  allowed_origins: [\"https://auth.example.com\"]\n",
        );
        let cli = ["https://sso.example.com:8443".to_string()];
        let opts = LoadOptions {
            env: &|_| None,
            no_env: false,
            allow_origins: &cli,
        };
        let l = load_str_with("s.yaml", &text, &opts)
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        assert_eq!(
            l.origins,
            [
                "http://127.0.0.1:8080",
                "https://auth.example.com",
                "https://sso.example.com:8443"
            ]
        );
        assert!(l.allows_url("/brands/1"));
        assert!(l.allows_url("https://auth.example.com/token"));
        assert!(!l.allows_url("https://evil.example/steal"));
        assert!(!l.allows_url("//evil.example/steal"));
        // A bad origin, and an absolute URL of another origin built from `${VAR}`.
        let out = errors(
            &text
                .replace(
                    "https://auth.example.com\"",
                    "https://auth.example.com/path\"",
                )
                .replace(
                    "url: /auth/signup",
                    "url: \"${EVIL_URL:-https://evil.example}/signup\"",
                ),
        );
        assert!(out.contains("is not an origin"), "{out}");
        assert!(
            out.contains("this request would go to `https://evil.example`"),
            "{out}"
        );
    }

    #[test]
    fn a_typo_of_a_required_key_does_not_end_the_load() {
        // `urll` is read as the `url` it meant, so the load goes on to the next mistakes
        // instead of stopping at "missing key `url`".
        let text = GOOD
            .replace(
                "request: { method: POST, url: /brands,",
                "request: { method: POST, urll: /brands,",
            )
            .replace(
                "    list: /brands\n",
                "    lisst: /brands\n    markers: [\"{{a.brand_idd}}\"]\n",
            )
            .replace("timeout: 10s", "timeout: 10");
        let out = errors(&text);
        assert!(out.contains("unknown key `urll`"), "{out}");
        assert!(out.contains("unknown key `lisst`"), "{out}");
        assert!(
            out.contains("unknown placeholder `{{a.brand_idd}}`"),
            "{out}"
        );
        assert!(out.contains("has no unit"), "{out}");
        assert!(!out.contains("missing key"), "{out}");
        assert!(!out.contains("says nothing to do"), "{out}");
        assert!(out.contains("4 problems"), "{out}");
    }

    #[test]
    fn bad_files() {
        assert!(errors("").contains("the suite is empty"));
        assert!(errors("# only a comment\n").contains("the suite is empty"));
        let e = load_bytes(
            "s.yaml",
            b"version: 1\n\xff\xfe",
            &LoadOptions::new(&|_| None),
        )
        .err()
        .unwrap();
        assert!(e.render(&Redactor::new()).contains("not UTF-8"));
        let bomb = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n";
        let out = errors(bomb);
        assert!(out.starts_with("error:"), "{out}");
    }

    const SCOPED: &str = include_str!("../../suites/scoped-api.yaml");

    #[test]
    fn the_member_of_both_orgs_is_validated_like_the_other_steps() {
        let l = load_str("s.yaml", SCOPED, &env(&[]))
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        let m = l.suite.orgs.as_ref().unwrap().member.as_ref().unwrap();
        assert_eq!(m.provision.len(), 4);
        assert_eq!(m.teardown.len(), 1);
        // A misspelt capture in a member step: located, with the member's own names.
        let line = SCOPED
            .lines()
            .position(|l| l.contains("A adds it"))
            .unwrap()
            + 3;
        let out = errors(&SCOPED.replacen(
            "json: { email: \"{{email}}\"",
            "json: { email: \"{{emial}}\"",
            1,
        ));
        assert!(
            out.contains("unknown placeholder `{{emial}}` in a member step"),
            "{out}"
        );
        assert!(out.contains("did you mean `{{email}}`?"), "{out}");
        assert!(out.contains(&format!("--> s.yaml:{line}:")), "{out}");
        // The member has no scope of its own.
        let out =
            errors(&SCOPED.replacen("/orgs/{{a.slug}}/members", "/orgs/{{own.slug}}/members", 1));
        assert!(
            out.contains("unknown placeholder `{{own.slug}}` in a member step"),
            "{out}"
        );
        // A's later captures are usable; a capture no step makes is not.
        let out =
            errors(&SCOPED.replacen("/orgs/{{a.slug}}/members", "/orgs/{{a.nope}}/members", 1));
        assert!(out.contains("unknown placeholder `{{a.nope}}`"), "{out}");
        // `member.NAME` in a check is the member's capture.
        let check = "  - { name: org is invisible to B, read: \"/orgs/{{own.slug}}\" }";
        assert!(SCOPED.contains(check));
        let with = |extra: &str| SCOPED.replacen(check, &format!("{check}\n{extra}"), 1);
        load_str(
            "s.yaml",
            &with("  - { name: member reads, request: { url: \"/users/{{member.user_id}}\" }, as: member, expect: { status: 404 } }"),
            &env(&[]),
        )
        .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
        let out = errors(&with(
            "  - { name: member reads, request: { url: \"/users/{{member.usr_id}}\" }, expect: { status: 404 } }",
        ));
        assert!(out.contains("did you mean `{{member.user_id}}`?"), "{out}");
        // `as: member` where no member exists yet, or in a suite without one.
        let out = errors(&SCOPED.replacen(
            "give B a project\n    as: b\n",
            "give B a project\n    as: member\n",
            1,
        ));
        assert!(
            out.contains("`as: member` in a provision, seed or teardown step"),
            "{out}"
        );
        let start = SCOPED.find("  # A third user").unwrap();
        let end = SCOPED.find("seed:").unwrap();
        let without = format!("{}{}", &SCOPED[..start], &SCOPED[end..]);
        let out = errors(&without.replacen(
            check,
            &format!("{check}\n  - {{ name: member reads, request: {{ url: /me }}, as: member, expect: {{ status: 200 }} }}"),
            1,
        ));
        assert!(
            out.contains("runs `as: member`, but the suite has no `orgs.member`"),
            "{out}"
        );
    }
}
