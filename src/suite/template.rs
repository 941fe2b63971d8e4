//! Template strings of the suite (parse stage): `${VAR}` environment references resolved
//! when the suite is loaded, and `{{name}}` placeholders filled when a step runs.
//!
//! Both are parsed in one pass over a string value *after* YAML parsing, so a value can
//! never change the suite's structure, and text that came from the environment is
//! never itself scanned for placeholders (a password holding `{{` stays literal).
//! Escapes: `$${` is a literal `${`, and `{{{{` a literal `{{`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// Where a value stands in the suite file (1-based line and column, byte span).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
    /// Byte offset of the value in the file.
    pub offset: usize,
    /// Byte length of the value in the file (0 when unknown).
    pub len: usize,
}

impl Loc {
    /// The location of a spanned YAML value.
    pub fn of<T>(s: &Spanned<T>) -> Loc {
        let l = &s.referenced;
        let span = l.span();
        Loc {
            line: l.line() as u32,
            col: l.column() as u32,
            offset: span.byte_offset().unwrap_or(span.offset()) as usize,
            len: span.byte_len().unwrap_or(span.len()) as usize,
        }
    }
}

/// One piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    /// Text used as it is (including text that came from the environment).
    Lit(String),
    /// A `{{name}}` placeholder: `run_id`, `uuid`, `org`, a var, `NAME`, `a.NAME`, `b.NAME`.
    Var(String),
}

/// A string value of the suite, with its environment references already resolved and
/// its placeholders parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tpl {
    pub parts: Vec<Part>,
    pub loc: Loc,
}

/// An environment variable whose value was read while loading, and whether its name
/// says it holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvUse {
    pub name: String,
    pub value: String,
    pub secret: bool,
}

/// A problem found while resolving a string: a missing variable, a bad placeholder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TplError {
    pub loc: Loc,
    pub message: String,
    pub hint: Option<String>,
}

/// A template that cannot be filled in.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A placeholder whose name has no value where the template is used.
    #[error("`{{{{{0}}}}}` has no value here")]
    NoValue(String),
}

/// Reads an environment variable while loading.
pub(crate) type EnvFn = Box<dyn Fn(&str) -> Option<String>>;

/// What loading collects from every template it meets: problems (all of them, not just
/// the first) and the environment variables read.
#[derive(Default)]
pub(crate) struct Collector {
    pub errors: Vec<TplError>,
    pub env: BTreeMap<String, EnvUse>,
    pub lookup: Option<EnvFn>,
    /// The suite's `env:` list: a `${NAME}` of another name is an error and is not read.
    /// `None`: no list, every name counts as declared.
    pub declared: Option<std::collections::BTreeSet<String>>,
    /// `validate --no-env`: a `${NAME}` without a default is recorded, not an error.
    pub no_env: bool,
    /// Every name referenced, and whether a run needs it (no default).
    pub refs: BTreeMap<String, bool>,
    /// Values holding a `${NAME}` that was not read (`no_env`): their checks are skipped.
    pub unread: Vec<Loc>,
}

thread_local! {
    // Serde's `Deserialize` has no context argument; loading installs a collector for
    // the duration of one `from_str` call on this thread and takes it back afterwards.
    static COLLECTOR: RefCell<Option<Collector>> = const { RefCell::new(None) };
}

/// Runs `f` (a YAML deserialization) with a collector installed; returns what it
/// collected. `lookup` reads an environment variable.
#[cfg(test)]
pub(crate) fn collecting<R>(lookup: EnvFn, f: impl FnOnce() -> R) -> (R, Collector) {
    collecting_with(
        Collector {
            lookup: Some(lookup),
            ..Collector::default()
        },
        f,
    )
}

/// `collecting` with the collector's settings (`declared`, `no_env`) given.
pub(crate) fn collecting_with<R>(start: Collector, f: impl FnOnce() -> R) -> (R, Collector) {
    COLLECTOR.with(|c| *c.borrow_mut() = Some(start));
    let r = f();
    let collected = COLLECTOR
        .with(|c| c.borrow_mut().take())
        .unwrap_or_default();
    (r, collected)
}

/// Names that mark an environment variable (or a var) as holding a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "secret",
        "password",
        "passwd",
        "token",
        "key",
        "credential",
        "private",
        "auth",
    ]
    .iter()
    .any(|w| n.contains(w))
}

fn lookup_env(name: &str) -> Option<String> {
    COLLECTOR.with(|c| {
        let c = c.borrow();
        match c.as_ref().and_then(|c| c.lookup.as_ref()) {
            Some(f) => f(name),
            None => std::env::var(name).ok(),
        }
    })
}

fn record_env(name: &str, value: &str) {
    COLLECTOR.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            c.env.entry(name.to_string()).or_insert_with(|| EnvUse {
                name: name.to_string(),
                value: value.to_string(),
                secret: is_secret_name(name),
            });
        }
    })
}

/// Whether the suite may read `name`: `None` outside loading or without an `env:` list.
fn declared(name: &str) -> Option<bool> {
    COLLECTOR.with(|c| {
        let c = c.borrow();
        let d = c.as_ref()?.declared.as_ref()?;
        Some(d.contains(name))
    })
}

fn no_env() -> bool {
    COLLECTOR.with(|c| c.borrow().as_ref().is_some_and(|c| c.no_env))
}

fn record_ref(name: &str, needed: bool) {
    COLLECTOR.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            let e = c.refs.entry(name.to_string()).or_insert(false);
            *e |= needed;
        }
    })
}

fn record_unread(loc: Loc) {
    COLLECTOR.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            c.unread.push(loc);
        }
    })
}

fn record_error(e: TplError) {
    COLLECTOR.with(|c| {
        if let Some(c) = c.borrow_mut().as_mut() {
            c.errors.push(e);
        }
    })
}

fn valid_var_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

fn valid_placeholder(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = parts.all(|p| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    });
    ok && s.split('.').count() <= 2
}

impl Tpl {
    /// A template holding only literal text (for values built in code).
    pub fn literal(s: impl Into<String>) -> Tpl {
        Tpl {
            parts: vec![Part::Lit(s.into())],
            loc: Loc::default(),
        }
    }

    /// Parses `raw`, resolving `${...}` from the environment. Problems are returned, not
    /// collected (used by the collector-aware `Deserialize` and by tests).
    pub fn parse(raw: &str, loc: Loc) -> (Tpl, Vec<TplError>) {
        let mut parts: Vec<Part> = Vec::new();
        let mut errors = Vec::new();
        let mut lit = String::new();
        let err = |message: String, hint: Option<String>| TplError { loc, message, hint };
        let mut rest = raw;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("$${") {
                lit.push_str("${");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("{{{{") {
                lit.push_str("{{");
                rest = r;
            } else if let Some(r) = rest.strip_prefix("${") {
                let Some(end) = r.find('}') else {
                    errors.push(err(
                        format!("unclosed `${{` in `{raw}`"),
                        Some("close it with `}`, or write `$${` for a literal `${`".into()),
                    ));
                    lit.push_str(rest);
                    break;
                };
                let inner = &r[..end];
                rest = &r[end + 1..];
                match resolve_env(inner) {
                    Ok(v) => lit.push_str(&v),
                    Err(EnvError::NotRead) => record_unread(loc),
                    Err(e) => errors.push(err(e.to_string(), Some(e.hint()))),
                }
            } else if let Some(r) = rest.strip_prefix("{{") {
                let Some(end) = r.find("}}") else {
                    errors.push(err(
                        format!("unclosed `{{{{` in `{raw}`"),
                        Some(
                            "close the placeholder with `}}`, or write `{{{{` for a literal `{{`"
                                .into(),
                        ),
                    ));
                    lit.push_str(rest);
                    break;
                };
                let name = r[..end].trim();
                rest = &r[end + 2..];
                if !valid_placeholder(name) {
                    errors.push(err(
                        format!("`{{{{{name}}}}}` is not a valid placeholder"),
                        Some("a placeholder is a name (`run_id`, `password`), or `a.NAME` / `b.NAME` for an org's capture".into()),
                    ));
                    continue;
                }
                if !lit.is_empty() {
                    parts.push(Part::Lit(std::mem::take(&mut lit)));
                }
                parts.push(Part::Var(name.to_string()));
            } else {
                let next = rest
                    .char_indices()
                    .skip(1)
                    .find(|(i, _)| rest[*i..].starts_with('$') || rest[*i..].starts_with('{'))
                    .map(|(i, _)| i)
                    .unwrap_or(rest.len());
                lit.push_str(&rest[..next]);
                rest = &rest[next..];
            }
        }
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        (Tpl { parts, loc }, errors)
    }

    /// The placeholders this template uses.
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Lit(_) => None,
        })
    }

    /// The text, if the template has no placeholder.
    pub fn as_literal(&self) -> Option<String> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var(_) => return None,
            }
        }
        Some(s)
    }

    /// Fills the placeholders; `lookup` returns `None` for an unknown name (an error,
    /// though load-time validation makes it unreachable for suites that loaded).
    ///
    /// The error is a `String` because the runner, outside the suite layer, composes it
    /// into its own messages that way; [`Tpl::try_render`] is the typed form.
    pub fn render(&self, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
        self.try_render(lookup).map_err(|e| e.to_string())
    }

    /// [`Tpl::render`] with a typed error.
    pub fn try_render(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, RenderError> {
        let mut s = String::new();
        for p in &self.parts {
            match p {
                Part::Lit(l) => s.push_str(l),
                Part::Var(v) => match lookup(v) {
                    Some(val) => s.push_str(&val),
                    None => return Err(RenderError::NoValue(v.clone())),
                },
            }
        }
        Ok(s)
    }
}

impl fmt::Display for Tpl {
    /// The template as written (after environment resolution), placeholders included.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.parts {
            match p {
                Part::Lit(l) => f.write_str(l)?,
                Part::Var(v) => write!(f, "{{{{{v}}}}}")?,
            }
        }
        Ok(())
    }
}

/// A `${...}` reference that cannot be resolved.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
enum EnvError {
    #[error("`${{{0}}}` is not a valid environment reference")]
    Invalid(String),
    #[error("environment variable `{0}` is not set")]
    Unset(String),
    /// `${NAME:?message}`: the suite's own message.
    #[error("environment variable `{name}` is not set: {message}")]
    Required { name: String, message: String },
    /// A name missing from the suite's `env:` list: it is not read.
    #[error("`${{{0}}}` reads an environment variable the suite does not declare in `env:`")]
    Undeclared(String),
    /// `--no-env`: a variable without a default is not read (a need, not an error).
    #[error("not read (--no-env)")]
    NotRead,
}

impl EnvError {
    /// What to do about it.
    fn hint(&self) -> String {
        match self {
            EnvError::Invalid(_) => {
                "write `${NAME}`, `${NAME:-default}` or `${NAME:?message}`".into()
            }
            EnvError::Unset(name) => format!("set it, or give a default: `${{{name}:-value}}`"),
            EnvError::Required { name, .. } => format!("set `{name}` before running the suite"),
            EnvError::Undeclared(name) => format!(
                "a suite reads only the environment variables it lists: add `{name}` to `env:`, or remove the reference"
            ),
            EnvError::NotRead => String::new(),
        }
    }
}

/// Resolves the inside of `${...}`: `VAR`, `VAR:-default`, `VAR-default`, `VAR:?message`.
fn resolve_env(inner: &str) -> Result<String, EnvError> {
    let (name, op) = match inner.find([':', '-', '?']) {
        Some(i) => (&inner[..i], Some(&inner[i..])),
        None => (inner, None),
    };
    if !valid_var_name(name) {
        return Err(EnvError::Invalid(inner.to_string()));
    }
    if declared(name) == Some(false) {
        return Err(EnvError::Undeclared(name.to_string()));
    }
    let has_default = op.is_some_and(|op| op.starts_with(":-") || op.starts_with('-'));
    record_ref(name, !has_default);
    let value = if no_env() { None } else { lookup_env(name) };
    if value.is_none() && !has_default && no_env() {
        return Err(EnvError::NotRead);
    }
    let got = |v: String| {
        record_env(name, &v);
        Ok(v)
    };
    match op {
        None => match value {
            Some(v) => got(v),
            None => Err(EnvError::Unset(name.to_string())),
        },
        Some(op) if op.starts_with(":-") => match value.filter(|v| !v.is_empty()) {
            Some(v) => got(v),
            None => Ok(op[2..].to_string()),
        },
        Some(op) if op.starts_with('-') => match value {
            Some(v) => got(v),
            None => Ok(op[1..].to_string()),
        },
        Some(op) if op.starts_with(":?") || op.starts_with('?') => {
            match value.filter(|v| !v.is_empty() || !op.starts_with(':')) {
                Some(v) => got(v),
                None => Err(EnvError::Required {
                    name: name.to_string(),
                    message: op
                        .trim_start_matches(':')
                        .trim_start_matches('?')
                        .to_string(),
                }),
            }
        }
        Some(_) => Err(EnvError::Invalid(inner.to_string())),
    }
}

impl<'de> Deserialize<'de> for Tpl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<String>::deserialize(d)?;
        let (tpl, errors) = Tpl::parse(&s.value, Loc::of(&s));
        errors.into_iter().for_each(record_error);
        Ok(tpl)
    }
}

/// Reports a problem found while deserializing a value that has its own syntax
/// (a duration, a JSONPath, a status): collected like template errors so that every
/// problem of a suite is reported at once.
pub(crate) fn collect_error(loc: Loc, message: String, hint: Option<String>) {
    record_error(TplError { loc, message, hint });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_with(env: &[(&str, &str)], raw: &str) -> (Tpl, Vec<TplError>, Collector) {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup =
            Box::new(move |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()));
        let ((t, e), c) = collecting(lookup, || Tpl::parse(raw, Loc::default()));
        (t, e, c)
    }

    #[test]
    fn resolves_environment_forms() {
        let (t, e, c) = parse_with(
            &[("A", "x"), ("EMPTY", "")],
            "${A}-${B:-dflt}-${EMPTY:-e}-${EMPTY-f}",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(t.as_literal().unwrap(), "x-dflt-e-");
        assert!(c.env.contains_key("A"));
        let (_, e, _) = parse_with(&[], "${MISSING}");
        assert_eq!(e[0].message, "environment variable `MISSING` is not set");
        let (_, e, _) = parse_with(&[], "${NEED:?give the staging URL}");
        assert!(e[0].message.ends_with("give the staging URL"), "{e:?}");
    }

    #[test]
    fn placeholders_and_escapes() {
        let (t, e, _) = parse_with(&[], "/brands/{{ a.brand_id }}?x=$${lit}&y={{{{z");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            t.parts,
            vec![
                Part::Lit("/brands/".into()),
                Part::Var("a.brand_id".into()),
                Part::Lit("?x=${lit}&y={{z".into())
            ]
        );
        let out = t
            .render(&|v| (v == "a.brand_id").then(|| "42".to_string()))
            .unwrap();
        assert_eq!(out, "/brands/42?x=${lit}&y={{z");
    }

    #[test]
    fn environment_text_is_never_a_placeholder() {
        let (t, e, c) = parse_with(&[("PW_SECRET", "p{{w}}")], "${PW_SECRET}");
        assert!(e.is_empty());
        assert_eq!(t.vars().count(), 0);
        assert_eq!(t.as_literal().unwrap(), "p{{w}}");
        assert!(c.env["PW_SECRET"].secret);
    }

    #[test]
    fn malformed_templates_are_errors() {
        for raw in ["{{a", "${A", "{{a b}}", "{{a.b.c}}", "${1X}", "{{}}"] {
            let (_, e, _) = parse_with(&[("A", "1")], raw);
            assert_eq!(e.len(), 1, "{raw}: {e:?}");
        }
    }
}
