//! Policy expression analysis: the pure part of the database audit that reads a
//! policy's `USING` / `WITH CHECK` text and decides whether it keys rows on the tenant
//! (run → database layer → [`judge`] → results).
//!
//! The input is PostgreSQL's own deparsed text (`pg_get_expr(polqual, polrelid)`),
//! which is normalised: keywords upper case, identifiers quoted only when needed,
//! literals with explicit casts, every boolean operand parenthesised, e.g.
//! `(org_id = (current_setting('app.current_org_id'::text, true))::uuid)`.
//!
//! The heuristics, in order (documented in `docs/database-audit.md`):
//! 1. The text is tokenised (string literals with `''` escapes and `E'...'`, quoted
//!    identifiers with `""`, operators, brackets) and split into a boolean tree on
//!    top-level `OR` / `AND` / `NOT`. Parentheses, brackets and `CASE ... END` nest;
//!    anything that is not a boolean connective (a comparison, a function call, a
//!    sub-query, a `CASE`) is an opaque *atom*.
//! 2. An atom is a *key* when it mentions a tenant column (an identifier that is not a
//!    function name or a type) **and** reads the tenant setting: `current_setting('key'
//!    ...)` with the configured key (any literal key when none is configured), or a call
//!    to a function whose body reads it (passed in by the caller from `pg_proc`).
//! 3. The tree *restricts* when it implies a key: an atom that is a key, an `AND` with
//!    one restricting operand, an `OR` whose operands all restrict. `NOT` never does.
//! 4. Constant folding: `true`, `'t'::boolean`, `1 = 1`, `'a'::text = 'a'::text`; an
//!    `OR` with a constant-true operand is constant true.
//! 5. *Fail-open*: an `OR` operand that tests the setting for unset or empty (`IS NULL`,
//!    `= ''`, `COALESCE(...) = ''`, `length(...) = 0`), an `OR true` beside a key, a key
//!    whose setting side falls back to the column itself (`org_id = COALESCE(setting,
//!    org_id)`), or a `CASE` that answers `true` in a branch not guarded by the column.

use std::collections::HashMap;
use std::fmt;

use super::config::TenantModel;

/// What one policy expression does with the tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    /// Implies a comparison of a tenant column with the tenant setting.
    Keyed,
    /// Always true: every row of every tenant.
    ConstantTrue,
    /// Keyed when the setting is present, but an unset/empty setting (or an `OR true`)
    /// lets every row through. The text says which part.
    FailOpen(String),
    /// Not keyed on the tenant; the text says what is missing.
    NotKeyed(String),
    /// The analyzer cannot tell (a helper whose body it cannot read): never keyed,
    /// handed to the live probe. The text says why.
    Unverified(String),
}

/// What counts as "keyed on the tenant" for one table.
#[derive(Clone, Copy, Debug)]
pub struct KeySpec<'a> {
    /// The table's tenant columns (exact attribute names). Empty: the table was listed
    /// explicitly and has none, so reading the setting is enough.
    pub columns: &'a [String],
    /// The tenant setting (lower case); `None`: any `current_setting('...')` counts.
    pub setting: Option<&'a str>,
    /// Functions (lower-case name, unqualified) whose body reads settings, with the
    /// lower-case keys they read (`None` = a key that is not a literal).
    pub setting_functions: &'a HashMap<String, Vec<Option<String>>>,
    /// The table's own name: inside a sub-query, only a column qualified by it is the
    /// row's own (PostgreSQL qualifies every column there).
    pub table: Option<&'a str>,
    /// The identity model (identity functions and settings, editable claims).
    pub model: Option<&'a TenantModel>,
    /// Functions (lower-case name, unqualified) whose body reads the caller's
    /// identity or the tenant setting, directly or through other functions.
    pub identity_helpers: Option<&'a HashMap<String, Helper>>,
}

/// A function a policy may call, as far as the audit can read it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Helper {
    /// Its body (SQL or PL/pgSQL) reads the identity or the tenant setting,
    /// transitively.
    pub reads_identity: bool,
    /// Its body mentions one of its parameters (so it can bind the row it is given).
    pub uses_params: bool,
}

/// Judges one deparsed policy expression.
pub fn judge(text: &str, spec: &KeySpec<'_>) -> Judgement {
    let toks = tokenize(text);
    // Fail closed: what does not parse as PostgreSQL deparses it is never keyed.
    if let Some(why) = malformed(text, &toks) {
        return Judgement::NotKeyed(format!("cannot be analysed ({why})"));
    }
    let tree = parse(&toks);
    let ctx = Ctx { spec };
    if ctx.eval(&tree) == Some(true) {
        return if ctx.has_key(&tree) {
            Judgement::FailOpen(
                "an operand is always true (`OR true`): the tenant condition restricts nothing"
                    .into(),
            )
        } else {
            Judgement::ConstantTrue
        };
    }
    let restricts = ctx.restricts(&tree);
    if let Some(reason) = ctx.find_fail_open(&tree).filter(|_| !restricts) {
        return Judgement::FailOpen(reason);
    }
    // A tenant value taken from another setting (`jwt.claims.active_org_id` where
    // `jwt.claims.org_id` is declared), alone or before the declared one: not keyed,
    // not proven wrong either.
    if let Some(why) = ctx.foreign_setting(&tree, restricts) {
        return Judgement::Unverified(why);
    }
    if restricts {
        return Judgement::Keyed;
    }
    let reason = ctx.not_keyed_reason(&tree);
    if !ctx.has_specific_finding(&tree) {
        let mut unreadable = None;
        ctx.walk_atoms(&tree, &mut |t| {
            if unreadable.is_none() {
                unreadable = ctx.unreadable_call(t);
            }
        });
        if let Some(name) = unreadable {
            return Judgement::Unverified(format!(
                "calls {name}(...) with the tenant column, but the audit cannot read its body (not SQL or PL/pgSQL, or outside the audited schemas): the live probe decides"
            ));
        }
    }
    Judgement::NotKeyed(reason)
}

/// Whether a function body checks who calls it: reads the caller's identity or the
/// tenant setting (directly or through `helpers`).
pub fn body_checks_caller(
    source: &str,
    setting: Option<&str>,
    model: Option<&TenantModel>,
    helpers: Option<&HashMap<String, Helper>>,
) -> bool {
    let no_fns = HashMap::new();
    let spec = KeySpec {
        columns: &[],
        setting,
        setting_functions: &no_fns,
        table: None,
        model,
        identity_helpers: helpers,
    };
    let ctx = Ctx { spec: &spec };
    let toks = tokenize(source);
    (0..toks.len()).any(|i| ctx.call_reads_setting(&toks, i))
}

/// The relations a function body names after `FROM`, `JOIN`, `INTO`, `UPDATE` or
/// `TABLE`, each as (schema if written, name), lower case.
pub fn tables_named(source: &str) -> Vec<(Option<String>, String)> {
    let toks = tokenize(source);
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let lead = ["from", "join", "into", "update", "table"]
            .iter()
            .any(|w| t.is_word(w));
        if !lead {
            continue;
        }
        let Some(Tok::Ident { text, quoted }) = toks.get(i + 1) else {
            continue;
        };
        if !*quoted && KEYWORDS.contains(&text.as_str()) {
            continue;
        }
        let from = t.is_word("from") || t.is_word("join");
        if from && toks.get(i + 2) == Some(&Tok::LParen) {
            continue; // a function: FROM unnest(...)
        }
        match (toks.get(i + 2), toks.get(i + 3)) {
            (Some(Tok::Dot), Some(Tok::Ident { text: name, .. })) => {
                out.push((Some(text.clone()), name.clone()))
            }
            _ => out.push((None, text.clone())),
        }
    }
    out
}

/// Whether `pattern` (lower case, a trailing `*` matches a prefix) matches `key`.
fn pattern_matches(pattern: &str, key: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => key.to_lowercase().starts_with(prefix),
        None => pattern.eq_ignore_ascii_case(key),
    }
}

/// The schema (or alias) qualifying the identifier at `i` (`au` of `au.user_id`).
fn qualifier_of(toks: &[Tok], i: usize) -> Option<&str> {
    if i >= 2
        && toks[i - 1] == Tok::Dot
        && let Tok::Ident { text, .. } = &toks[i - 2]
    {
        return Some(text);
    }
    None
}

/// A function body as the helper analysis needs it.
#[derive(Clone, Debug)]
pub struct FunctionBody {
    /// Lower-case name, unqualified.
    pub name: String,
    /// `prosrc`.
    pub source: String,
    /// Parameter names (`proargnames`), when declared.
    pub arg_names: Vec<String>,
}

/// Which functions read the caller's identity or the tenant setting, following calls
/// between them to a fixed point (so `is_member(org)` → `auth.uid()` counts).
pub fn helpers(
    functions: &[FunctionBody],
    setting: Option<&str>,
    model: Option<&TenantModel>,
) -> HashMap<String, Helper> {
    let no_fns = HashMap::new();
    let bodies: Vec<(String, Vec<Tok>, bool)> = functions
        .iter()
        .map(|f| {
            let toks = tokenize(&f.source);
            let uses = toks.iter().any(|t| match t {
                Tok::Ident { text, .. } => f.arg_names.iter().any(|a| a.eq_ignore_ascii_case(text)),
                Tok::Op(o) => o.starts_with('$'),
                _ => false,
            });
            (f.name.to_lowercase(), toks, uses)
        })
        .collect();
    let mut out: HashMap<String, Helper> = bodies
        .iter()
        .map(|(n, _, uses)| {
            (
                n.clone(),
                Helper {
                    reads_identity: false,
                    uses_params: *uses,
                },
            )
        })
        .collect();
    loop {
        let mut changed = false;
        for (name, toks, _) in &bodies {
            if out.get(name).is_some_and(|h| h.reads_identity) {
                continue;
            }
            let snapshot = out.clone();
            let spec = KeySpec {
                columns: &[],
                setting,
                setting_functions: &no_fns,
                table: None,
                model,
                identity_helpers: Some(&snapshot),
            };
            let ctx = Ctx { spec: &spec };
            if (0..toks.len()).any(|i| ctx.call_reads_setting(toks, i)) {
                if let Some(h) = out.get_mut(name) {
                    h.reads_identity = true;
                }
                changed = true;
            }
        }
        if !changed {
            return out;
        }
    }
}

/// Setting keys read by a function body (`prosrc`): every `current_setting('key'`,
/// lower case; `None` for a non-literal first argument.
pub fn settings_read_by(source: &str) -> Vec<Option<String>> {
    let toks = tokenize(source);
    let mut keys = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.is_word("current_setting") && matches!(toks.get(i + 1), Some(Tok::LParen)) {
            keys.push(match toks.get(i + 2) {
                Some(Tok::Str(s)) => Some(s.to_lowercase()),
                _ => None,
            });
        }
    }
    keys
}

// ---------------------------------------------------------------------------------
// Tokens

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    /// An identifier or keyword: unquoted ones are lower-cased.
    Ident {
        text: String,
        quoted: bool,
    },
    Str(String),
    Num(String),
    Op(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
}

impl Tok {
    /// An unquoted identifier or keyword equal to `w` (lower case).
    fn is_word(&self, w: &str) -> bool {
        matches!(self, Tok::Ident { text, quoted: false } if text == w)
    }
    fn is_op(&self, o: &str) -> bool {
        matches!(self, Tok::Op(x) if x == o)
    }
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident { text, quoted: true } => write!(f, "\"{}\"", text.replace('"', "\"\"")),
            Tok::Ident { text, .. } => f.write_str(text),
            Tok::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Tok::Num(n) | Tok::Op(n) => f.write_str(n),
            Tok::LParen => f.write_str("("),
            Tok::RParen => f.write_str(")"),
            Tok::LBracket => f.write_str("["),
            Tok::RBracket => f.write_str("]"),
            Tok::Comma => f.write_str(","),
            Tok::Dot => f.write_str("."),
        }
    }
}

fn tokenize(s: &str) -> Vec<Tok> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' || ((c == 'E' || c == 'e') && chars.get(i + 1) == Some(&'\'')) {
            let escapes = c != '\'';
            i += if escapes { 2 } else { 1 };
            let mut lit = String::new();
            while i < chars.len() {
                let d = chars[i];
                if d == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        lit.push('\'');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                if escapes && d == '\\' && i + 1 < chars.len() {
                    lit.push(chars[i + 1]);
                    i += 2;
                    continue;
                }
                lit.push(d);
                i += 1;
            }
            out.push(Tok::Str(lit));
        } else if c == '"' {
            i += 1;
            let mut id = String::new();
            while i < chars.len() {
                if chars[i] == '"' {
                    if chars.get(i + 1) == Some(&'"') {
                        id.push('"');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                id.push(chars[i]);
                i += 1;
            }
            out.push(Tok::Ident {
                text: id,
                quoted: true,
            });
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                i += 1;
            }
            out.push(Tok::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Tok::Ident {
                text: word.to_lowercase(),
                quoted: false,
            });
        } else {
            i += 1;
            out.push(match c {
                '(' => Tok::LParen,
                ')' => Tok::RParen,
                '[' => Tok::LBracket,
                ']' => Tok::RBracket,
                ',' => Tok::Comma,
                '.' => Tok::Dot,
                _ if is_op_char(c) => {
                    let mut op = String::from(c);
                    while i < chars.len() && is_op_char(chars[i]) {
                        op.push(chars[i]);
                        i += 1;
                    }
                    Tok::Op(op)
                }
                _ => Tok::Op(c.to_string()),
            });
        }
    }
    out
}

/// Why `toks` (of `text`) is not a well-formed expression: an unterminated literal or
/// quoted identifier, unbalanced brackets or a `CASE` without `END`, or nothing at all.
fn malformed(text: &str, toks: &[Tok]) -> Option<&'static str> {
    if toks.is_empty() {
        return Some("empty expression");
    }
    // The tokenizer ends a literal at the end of input: count the quotes it consumed.
    let mut in_str = false;
    let mut in_ident = false;
    let mut chars = text.chars().peekable();
    let mut escapes = false;
    let mut prev: Option<char> = None;
    while let Some(c) = chars.next() {
        if in_str {
            if escapes && c == '\\' {
                chars.next();
            } else if c == '\'' {
                if chars.peek() == Some(&'\'') {
                    chars.next();
                } else {
                    in_str = false;
                }
            }
        } else if in_ident {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                } else {
                    in_ident = false;
                }
            }
        } else if c == '\'' {
            in_str = true;
            escapes = matches!(prev, Some('E' | 'e'));
        } else if c == '"' {
            in_ident = true;
        }
        prev = Some(c);
    }
    if in_str {
        return Some("unterminated string literal");
    }
    if in_ident {
        return Some("unterminated quoted identifier");
    }
    let mut depth = 0i32;
    for t in toks {
        depth += depth_delta(t);
        if depth < 0 {
            return Some("unbalanced brackets");
        }
    }
    if depth != 0 {
        return Some("unbalanced brackets or CASE without END");
    }
    None
}

fn is_op_char(c: char) -> bool {
    "+-*/<>=~!@#%^&|`?:".contains(c)
}

fn render(toks: &[Tok]) -> String {
    let mut s = String::new();
    let mut prev: Option<&Tok> = None;
    for t in toks {
        let glue = matches!(
            (prev, t),
            (None, _)
                | (Some(Tok::LParen | Tok::LBracket | Tok::Dot), _)
                | (_, Tok::RParen | Tok::RBracket | Tok::Comma | Tok::Dot)
        ) || t.is_op("::")
            || prev.is_some_and(|p| p.is_op("::"))
            || (matches!(t, Tok::LParen)
                && matches!(prev, Some(Tok::Ident { quoted: false, text })
                    if !KEYWORDS.contains(&text.as_str())));
        if !glue {
            s.push(' ');
        }
        s.push_str(&t.to_string());
        prev = Some(t);
    }
    s
}

/// Words that are syntax, never column references.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "not",
    "is",
    "null",
    "true",
    "false",
    "case",
    "when",
    "then",
    "else",
    "end",
    "in",
    "any",
    "all",
    "some",
    "array",
    "select",
    "from",
    "where",
    "exists",
    "distinct",
    "like",
    "ilike",
    "similar",
    "between",
    "as",
    "on",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "limit",
    "group",
    "by",
    "order",
    "having",
    "union",
    "cast",
    "unknown",
    "current_user",
    "session_user",
    "current_role",
    "user",
    "collate",
    "escape",
    "with",
];

// ---------------------------------------------------------------------------------
// Boolean tree

#[derive(Clone, Debug)]
enum Node {
    Or(Vec<Node>),
    And(Vec<Node>),
    Not(Box<Node>),
    Atom(Vec<Tok>),
}

fn depth_delta(t: &Tok) -> i32 {
    match t {
        Tok::LParen | Tok::LBracket => 1,
        Tok::RParen | Tok::RBracket => -1,
        t if t.is_word("case") => 1,
        t if t.is_word("end") => -1,
        _ => 0,
    }
}

/// Splits `toks` on a top-level keyword.
fn split_top<'a>(toks: &'a [Tok], word: &str) -> Vec<&'a [Tok]> {
    let mut parts = Vec::new();
    let mut depth = 0;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if depth == 0 && t.is_word(word) {
            parts.push(&toks[start..i]);
            start = i + 1;
        }
        depth += depth_delta(t);
    }
    parts.push(&toks[start..]);
    parts
}

fn parse(toks: &[Tok]) -> Node {
    let parts = split_top(toks, "or");
    if parts.len() > 1 {
        return Node::Or(parts.into_iter().map(parse_and).collect());
    }
    parse_and(toks)
}

fn parse_and(toks: &[Tok]) -> Node {
    let parts = split_top(toks, "and");
    if parts.len() > 1 {
        return Node::And(parts.into_iter().map(parse_not).collect());
    }
    parse_not(toks)
}

fn parse_not(toks: &[Tok]) -> Node {
    match toks.first() {
        Some(t) if t.is_word("not") => Node::Not(Box::new(parse_not(&toks[1..]))),
        _ => parse_primary(toks),
    }
}

fn parse_primary(toks: &[Tok]) -> Node {
    if toks.len() >= 2 && toks[0] == Tok::LParen && matching(toks, 0) == Some(toks.len() - 1) {
        return parse(&toks[1..toks.len() - 1]);
    }
    Node::Atom(toks.to_vec())
}

/// Index of the bracket closing the one opened at `open`.
fn matching(toks: &[Tok], open: usize) -> Option<usize> {
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        depth += depth_delta(t);
        if depth == 0 {
            return Some(i);
        }
    }
    None
}

fn node_text(n: &Node) -> String {
    match n {
        Node::Atom(t) => render(t),
        Node::Not(x) => format!("NOT ({})", node_text(x)),
        Node::And(xs) => xs
            .iter()
            .map(|x| format!("({})", node_text(x)))
            .collect::<Vec<_>>()
            .join(" AND "),
        Node::Or(xs) => xs
            .iter()
            .map(|x| format!("({})", node_text(x)))
            .collect::<Vec<_>>()
            .join(" OR "),
    }
}

// ---------------------------------------------------------------------------------
// Atoms

#[derive(Default, Debug)]
struct Facts {
    column_refs: usize,
    /// Reads the tenant setting (per [`KeySpec::setting`]).
    reads_setting: bool,
    /// A fail-open shape inside the atom itself, with the reason.
    inner_fail_open: Option<String>,
}

struct Ctx<'a> {
    spec: &'a KeySpec<'a>,
}

impl Ctx<'_> {
    fn setting_matches(&self, key: Option<&str>) -> bool {
        let identity = self.spec.model.filter(|m| m.has_identity());
        if let (Some(m), Some(k)) = (identity, key)
            && m.identity_settings.iter().any(|p| pattern_matches(p, k))
        {
            return true;
        }
        match (self.spec.setting, key) {
            // No setting configured: any setting counts, unless an identity model
            // says which ones carry the caller.
            (None, _) => identity.is_none(),
            (Some(want), Some(k)) => want.eq_ignore_ascii_case(k),
            (Some(_), None) => false,
        }
    }

    /// Is the call at `i` one of the model's identity functions (`auth.uid()`)?
    fn is_identity_fn(&self, toks: &[Tok], i: usize) -> bool {
        let Some(m) = self.spec.model else {
            return false;
        };
        let Tok::Ident { text, .. } = &toks[i] else {
            return false;
        };
        let qualifier = qualifier_of(toks, i);
        m.identity_functions
            .iter()
            .any(|f| match f.rsplit_once('.') {
                Some((q, n)) => n == text && qualifier.is_none_or(|x| x == q),
                None => f == text,
            })
    }

    /// The helper a call at `i` names, when the audit read its body.
    fn helper(&self, toks: &[Tok], i: usize) -> Option<&Helper> {
        let Tok::Ident { text, .. } = &toks[i] else {
            return None;
        };
        self.spec.identity_helpers?.get(text.as_str())
    }

    /// `name(...)` covering all of `toks`, with an own tenant column among its
    /// arguments, naming a function the audit cannot read: `Some(name)`.
    fn unreadable_call(&self, toks: &[Tok]) -> Option<String> {
        self.spec.identity_helpers?;
        let t = strip_cast(toks);
        let open = t.iter().position(|x| *x == Tok::LParen)?;
        if open == 0 || matching(t, open) != Some(t.len() - 1) {
            return None;
        }
        let name = open - 1;
        let plain = (0..name).all(|k| matches!(t[k], Tok::Ident { .. } | Tok::Dot));
        if !plain || !self.span_has_column(t, open + 1, t.len() - 1) {
            return None;
        }
        let Tok::Ident { text, .. } = &t[name] else {
            return None;
        };
        if KEYWORDS.contains(&text.as_str())
            || text == "current_setting"
            || self.is_identity_fn(t, name)
            || self.helper(t, name).is_some()
        {
            return None;
        }
        Some(render(&t[..=name]))
    }

    /// Is token `i` inside a sub-query (`(SELECT ...)`) of this atom?
    fn in_subquery(&self, toks: &[Tok], i: usize) -> bool {
        let mut stack: Vec<bool> = Vec::new();
        for k in 0..i {
            match &toks[k] {
                Tok::LParen => stack.push(toks.get(k + 1).is_some_and(|t| t.is_word("select"))),
                Tok::RParen => {
                    stack.pop();
                }
                _ => {}
            }
        }
        stack.contains(&true)
    }

    /// The first `x.col = x.col` (the same column on both sides), as text.
    fn self_comparison(&self, toks: &[Tok]) -> Option<String> {
        let is_name = |t: &Tok| {
            matches!(t, Tok::Ident { quoted, text } if *quoted || !KEYWORDS.contains(&text.as_str()))
                || *t == Tok::Dot
        };
        for (k, t) in toks.iter().enumerate() {
            if !t.is_op("=") || k == 0 {
                continue;
            }
            let mut a = k;
            while a > 0 && is_name(&toks[a - 1]) {
                a -= 1;
            }
            let mut b = k + 1;
            while b < toks.len() && is_name(&toks[b]) {
                b += 1;
            }
            let (left, right) = (&toks[a..k], &toks[k + 1..b]);
            let call_follows = toks.get(b) == Some(&Tok::LParen);
            if !left.is_empty() && left == right && !call_follows {
                return Some(format!("{} = {}", render(left), render(right)));
            }
        }
        None
    }

    /// An editable claim (`user_metadata`) this atom reads, if any.
    fn editable_claim(&self, toks: &[Tok]) -> Option<String> {
        let m = self.spec.model?;
        toks.iter().find_map(|t| match t {
            Tok::Str(s) if m.editable_claims.iter().any(|c| c.eq_ignore_ascii_case(s)) => {
                Some(s.clone())
            }
            _ => None,
        })
    }

    fn is_column(&self, toks: &[Tok], i: usize) -> bool {
        let Tok::Ident { text, quoted } = &toks[i] else {
            return false;
        };
        if !*quoted && KEYWORDS.contains(&text.as_str()) {
            return false;
        }
        if matches!(toks.get(i + 1), Some(Tok::LParen)) {
            return false; // a function name
        }
        if i > 0 && toks[i - 1].is_op("::") {
            return false; // a type name
        }
        if self.spec.columns.is_empty() {
            return false;
        }
        if !self.spec.columns.iter().any(|c| c == text) {
            return false;
        }
        // The row's own column: unqualified outside sub-queries; inside one,
        // PostgreSQL qualifies every column, so only `<table>.col` is the row's.
        let inside = self.in_subquery(toks, i);
        match qualifier_of(toks, i) {
            None => !inside,
            Some(q) => !inside || self.spec.table.is_some_and(|t| t == q),
        }
    }

    /// Does the call at `i` (an identifier followed by `(`) read the tenant setting?
    fn call_reads_setting(&self, toks: &[Tok], i: usize) -> bool {
        let Tok::Ident { text, .. } = &toks[i] else {
            return false;
        };
        if !matches!(toks.get(i + 1), Some(Tok::LParen)) {
            return false;
        }
        if text == "current_setting" {
            let key = match toks.get(i + 2) {
                Some(Tok::Str(s)) => Some(s.as_str()),
                _ => None,
            };
            return self.setting_matches(key);
        }
        if self.is_identity_fn(toks, i) {
            return true;
        }
        if self.helper(toks, i).is_some_and(|h| h.reads_identity) {
            return true;
        }
        self.spec
            .setting_functions
            .get(text.as_str())
            .is_some_and(|keys| keys.iter().any(|k| self.setting_matches(k.as_deref())))
    }

    fn facts(&self, toks: &[Tok]) -> Facts {
        let mut f = Facts::default();
        for i in 0..toks.len() {
            if self.is_column(toks, i) {
                f.column_refs += 1;
            }
            if self.call_reads_setting(toks, i) {
                f.reads_setting = true;
            }
        }
        f.inner_fail_open = self.inner_fail_open(toks);
        f
    }

    fn span_has_column(&self, toks: &[Tok], from: usize, to: usize) -> bool {
        (from..to).any(|i| self.is_column(toks, i))
    }

    fn span_reads_setting(&self, toks: &[Tok], from: usize, to: usize) -> bool {
        (from..to).any(|i| self.call_reads_setting(toks, i))
    }

    /// `COALESCE(<setting>, <column>)` and `CASE ... THEN true` shapes.
    fn inner_fail_open(&self, toks: &[Tok]) -> Option<String> {
        for i in 0..toks.len() {
            let fallback_fn = ["coalesce", "ifnull", "nvl", "greatest", "least"]
                .iter()
                .any(|w| toks[i].is_word(w));
            if fallback_fn && matches!(toks.get(i + 1), Some(Tok::LParen)) {
                let close = matching(toks, i + 1).unwrap_or(toks.len() - 1);
                if self.span_reads_setting(toks, i + 2, close)
                    && self.span_has_column(toks, i + 2, close)
                {
                    return Some(format!(
                        "the setting falls back to the column itself (`{}`): an unset setting \
                         matches every row",
                        render(&toks[i..=close])
                    ));
                }
            }
            if toks[i].is_word("case") {
                let end = matching(toks, i).unwrap_or(toks.len() - 1);
                if let Some(r) = self.case_fail_open(toks, i, end) {
                    return Some(r);
                }
            }
        }
        None
    }

    /// A `CASE` (tokens `case..=end`) that answers `true` in a branch whose condition
    /// does not involve the tenant column (`ELSE true` counts as such a branch).
    fn case_fail_open(&self, toks: &[Tok], case: usize, end: usize) -> Option<String> {
        if !self.span_reads_setting(toks, case, end) {
            return None;
        }
        // Walk the top level of this CASE: WHEN cond THEN result ... ELSE result END.
        let mut depth = 0;
        let mut cond_start = None;
        let mut i = case + 1;
        while i < end {
            let t = &toks[i];
            if depth == 0 {
                if t.is_word("when") {
                    cond_start = Some(i + 1);
                } else if t.is_word("then") {
                    let guarded = cond_start.is_some_and(|s| self.span_has_column(toks, s, i));
                    if !guarded && self.branch_is_true(toks, i + 1, end) {
                        return Some(format!(
                            "a CASE answers true without the tenant column: `{}`",
                            render(&toks[case..=end])
                        ));
                    }
                } else if t.is_word("else") && self.branch_is_true(toks, i + 1, end) {
                    return Some(format!(
                        "a CASE answers true in its ELSE branch: `{}`",
                        render(&toks[case..=end])
                    ));
                }
            }
            depth += depth_delta(t);
            i += 1;
        }
        None
    }

    /// Is the CASE result starting at `from` the constant `true`?
    fn branch_is_true(&self, toks: &[Tok], from: usize, end: usize) -> bool {
        let mut to = from;
        let mut depth = 0;
        while to < end {
            let t = &toks[to];
            if depth == 0 && (t.is_word("when") || t.is_word("else")) {
                break;
            }
            depth += depth_delta(t);
            to += 1;
        }
        const_atom(&toks[from..to]) == Some(true)
    }

    fn is_key_atom(&self, toks: &[Tok]) -> bool {
        let f = self.facts(toks);
        f.reads_setting
            && (f.column_refs > 0 || self.spec.columns.is_empty() || self.binds_row_to_caller(toks))
            && self.self_comparison(toks).is_none()
            && self.editable_claim(toks).is_none()
            && !self.ignores_its_argument(toks)
    }

    /// With an identity model: `col = <the caller's identity>` for a column of the
    /// row itself (`user_id = auth.uid()`): rows that belong to one user.
    fn binds_row_to_caller(&self, toks: &[Tok]) -> bool {
        if !self.spec.model.is_some_and(|m| m.has_identity()) {
            return false;
        }
        let t = strip_cast(toks);
        let Some(eq) = t.iter().position(|x| x.is_op("=")) else {
            return false;
        };
        let own = |side: &[Tok]| {
            let side = strip_cast(side);
            match side {
                [Tok::Ident { text, quoted }] => *quoted || !KEYWORDS.contains(&text.as_str()),
                [Tok::Ident { text: q, .. }, Tok::Dot, Tok::Ident { .. }] => {
                    self.spec.table.is_some_and(|t| t == q)
                }
                _ => false,
            }
        };
        let reads = |side: &[Tok]| (0..side.len()).any(|i| self.call_reads_setting(side, i));
        let (l, r) = (&t[..eq], &t[eq + 1..]);
        (own(l) && reads(r)) || (own(r) && reads(l))
    }

    /// `helper(org_id)` whose body never mentions its parameters: it cannot bind
    /// the row it is given.
    fn ignores_its_argument(&self, toks: &[Tok]) -> bool {
        let t = strip_cast(toks);
        match t.iter().position(|x| *x == Tok::LParen) {
            Some(open)
                if open > 0
                    && matching(t, open) == Some(t.len() - 1)
                    && t[..open]
                        .iter()
                        .all(|x| matches!(x, Tok::Ident { .. } | Tok::Dot)) =>
            {
                self.helper(t, open - 1)
                    .is_some_and(|h| h.reads_identity && !h.uses_params)
            }
            _ => false,
        }
    }

    /// The first setting, other than the declared ones, that an atom comparing the
    /// row's tenant column reads (directly, or through a function that reads only such
    /// settings) — among the key atoms when `keyed`. The message names both.
    fn foreign_setting(&self, n: &Node, keyed: bool) -> Option<String> {
        let identity = self.spec.model.is_some_and(|m| m.has_identity());
        if self.spec.setting.is_none() && !identity {
            return None;
        }
        if !keyed && self.has_specific_finding(n) {
            return None;
        }
        let mut found: Option<String> = None;
        self.walk_atoms(n, &mut |t| {
            if found.is_some() || self.facts(t).column_refs == 0 {
                return;
            }
            if keyed && !self.is_key_atom(t) {
                return;
            }
            // Keyed: only a fallback between the declared setting and another one
            // (`COALESCE(other, declared)`) hands the tenant to the other setting.
            let spans: Vec<(usize, usize)> = if keyed {
                (0..t.len())
                    .filter(|&i| {
                        ["coalesce", "ifnull", "nvl"]
                            .iter()
                            .any(|w| t[i].is_word(w))
                            && matches!(t.get(i + 1), Some(Tok::LParen))
                    })
                    .filter_map(|i| Some((i + 2, matching(t, i + 1)?)))
                    .filter(|&(a, b)| self.span_reads_setting(t, a, b))
                    .collect()
            } else {
                vec![(0, t.len())]
            };
            for (from, to) in spans {
                if let Some(k) = self.foreign_in(t, from, to) {
                    found = Some(k);
                    return;
                }
            }
        });
        let declared = match (self.spec.setting, self.spec.model) {
            (Some(s), _) => format!("the declared tenant setting `{s}`"),
            (None, Some(m)) => format!(
                "the declared identity settings ({})",
                m.identity_settings.join(", ")
            ),
            (None, None) => "the declared settings".into(),
        };
        found.map(|k| {
            format!(
                "unverified: the tenant value comes from the setting {k}, not {declared}: another setting or claim (an active-org claim the caller may choose?) is not the tenant; declare it if it is, else the live probe decides"
            )
        })
    }

    /// The first call in `t[from..to]` reading a setting that is not declared.
    fn foreign_in(&self, t: &[Tok], from: usize, to: usize) -> Option<String> {
        for i in from..to {
            let Tok::Ident { text, .. } = &t[i] else {
                continue;
            };
            if !matches!(t.get(i + 1), Some(Tok::LParen)) {
                continue;
            }
            if text == "current_setting" {
                if let Some(Tok::Str(k)) = t.get(i + 2)
                    && !self.setting_matches(Some(k))
                {
                    return Some(format!("`{k}`"));
                }
            } else if let Some(keys) = self.spec.setting_functions.get(text.as_str())
                && !keys.is_empty()
                && !self.is_identity_fn(t, i)
                && keys
                    .iter()
                    .all(|k| k.as_deref().is_some_and(|k| !self.setting_matches(Some(k))))
            {
                let k = keys[0].clone().unwrap_or_default();
                return Some(format!("`{k}` (read by {text}())"));
            }
        }
        None
    }

    fn has_key(&self, n: &Node) -> bool {
        match n {
            Node::Atom(t) => self.is_key_atom(t),
            Node::Not(x) => self.has_key(x),
            Node::And(xs) | Node::Or(xs) => xs.iter().any(|x| self.has_key(x)),
        }
    }

    fn restricts(&self, n: &Node) -> bool {
        match n {
            Node::Atom(t) => self.is_key_atom(t) && self.facts(t).inner_fail_open.is_none(),
            Node::Not(_) => false,
            Node::And(xs) => xs.iter().any(|x| self.restricts(x)),
            Node::Or(xs) => xs.iter().all(|x| self.restricts(x)),
        }
    }

    fn eval(&self, n: &Node) -> Option<bool> {
        match n {
            Node::Atom(t) => const_atom(t),
            Node::Not(x) => self.eval(x).map(|b| !b),
            Node::And(xs) => {
                let v: Vec<_> = xs.iter().map(|x| self.eval(x)).collect();
                if v.contains(&Some(false)) {
                    Some(false)
                } else if v.iter().all(|x| *x == Some(true)) {
                    Some(true)
                } else {
                    None
                }
            }
            Node::Or(xs) => {
                let v: Vec<_> = xs.iter().map(|x| self.eval(x)).collect();
                if v.contains(&Some(true)) {
                    Some(true)
                } else if v.iter().all(|x| *x == Some(false)) {
                    Some(false)
                } else {
                    None
                }
            }
        }
    }

    /// An operand that is true exactly when the setting is unset or empty.
    fn is_unset_test(&self, n: &Node) -> bool {
        match n {
            Node::Atom(t) => {
                let f = self.facts(t);
                if !f.reads_setting || f.column_refs > 0 {
                    return false;
                }
                let is_null = t
                    .windows(2)
                    .any(|w| w[0].is_word("is") && w[1].is_word("null"));
                let eq_empty =
                    t.iter().any(|x| x.is_op("=")) && t.contains(&Tok::Str(String::new()));
                let len_zero = t
                    .iter()
                    .any(|x| x.is_word("length") || x.is_word("char_length"))
                    && t.windows(2)
                        .any(|w| w[0].is_op("=") && w[1] == Tok::Num("0".into()));
                is_null || eq_empty || len_zero
            }
            Node::Not(x) => matches!(&**x, Node::Atom(t) if {
                // NOT (setting IS NOT NULL), NOT (setting <> '')
                let f = self.facts(t);
                f.reads_setting && f.column_refs == 0
                    && (t.windows(3).any(|w| w[0].is_word("is") && w[1].is_word("not") && w[2].is_word("null"))
                        || (t.iter().any(|x| x.is_op("<>") || x.is_op("!=")) && t.contains(&Tok::Str(String::new()))))
            }),
            Node::And(xs) => xs.iter().any(|x| self.is_unset_test(x)) && !self.restricts(n),
            Node::Or(xs) => xs.iter().any(|x| self.is_unset_test(x)),
        }
    }

    fn find_fail_open(&self, n: &Node) -> Option<String> {
        match n {
            Node::Atom(t) => {
                if self.is_key_atom(t) {
                    self.facts(t).inner_fail_open
                } else {
                    None
                }
            }
            Node::Not(_) => None,
            Node::And(xs) => xs.iter().find_map(|x| self.find_fail_open(x)),
            Node::Or(xs) => {
                let keyed = xs.iter().any(|x| self.restricts(x) || self.has_key(x));
                if let Some(u) = xs.iter().find(|x| self.is_unset_test(x))
                    && keyed
                {
                    let mut via_fn = false;
                    self.walk_atoms(u, &mut |t| {
                        via_fn |= (0..t.len()).any(|i| self.is_identity_fn(t, i));
                    });
                    if via_fn {
                        return Some(format!(
                            "an anonymous caller passes: `{}` OR ... lets every row through when no one is signed in",
                            node_text(u)
                        ));
                    }
                    return Some(format!(
                        "an unset or empty setting lets every row through: `{}` OR ...",
                        node_text(u)
                    ));
                }
                xs.iter().find_map(|x| self.find_fail_open(x))
            }
        }
    }

    /// A self-comparison or an editable claim: findings with their own message.
    fn has_specific_finding(&self, n: &Node) -> bool {
        let mut found = false;
        self.walk_atoms(n, &mut |t| {
            found |= self.self_comparison(t).is_some() || self.editable_claim(t).is_some();
        });
        found
    }

    fn not_keyed_reason(&self, n: &Node) -> String {
        let mut columns = 0;
        let mut setting = false;
        let mut self_cmp = None;
        let mut editable = None;
        self.walk_atoms(n, &mut |t| {
            let f = self.facts(t);
            columns += f.column_refs;
            setting |= f.reads_setting;
            self_cmp = self_cmp.take().or_else(|| self.self_comparison(t));
            editable = editable.take().or_else(|| self.editable_claim(t));
        });
        let cols = self.spec.columns.join(", ");
        if let Some(c) = self_cmp {
            return format!(
                "compares a column with itself (`{c}`): always true, so the condition is not bound to the row; compare with the row's own {cols} (qualified by the policy's table)"
            );
        }
        if let Some(c) = editable {
            return format!(
                "reads the `{c}` claim, which the user can edit themselves: anyone can claim any tenant; key on a claim only the server sets (app_metadata) or on a membership table"
            );
        }
        let mut ignored = None;
        self.walk_atoms(n, &mut |t| {
            if ignored.is_none() && self.ignores_its_argument(t) {
                ignored = Some(render(t));
            }
        });
        if let Some(call) = ignored {
            return format!(
                "passes the row to a helper whose body never reads its parameters (`{call}`): it answers the same for every row"
            );
        }
        let identity = self.spec.model.is_some_and(|m| m.has_identity());
        if columns == 0 && setting && identity && !self.spec.columns.is_empty() {
            let mut exists = None;
            self.walk_atoms(n, &mut |t| {
                if exists.is_none() && t.iter().any(|x| x.is_word("exists")) {
                    exists = Some(render(t));
                }
            });
            return match exists {
                Some(e) => format!(
                    "has an EXISTS over a membership table that is not bound to the row (`{e}` never compares the row's {cols}): any member of any tenant passes"
                ),
                None => format!(
                    "checks only that there is a caller, not which tenant the row belongs to (no comparison with {cols}): any signed-in user passes"
                ),
            };
        }
        let setting_name = match self.spec.setting {
            Some(s) => format!("the tenant setting {s}"),
            None => "any current_setting(...)".to_string(),
        };
        if columns == 0 && !self.spec.columns.is_empty() && !setting {
            return format!(
                "references neither the tenant column ({}) nor {setting_name}",
                self.spec.columns.join(", ")
            );
        }
        if columns == 0 && !self.spec.columns.is_empty() {
            return format!(
                "does not reference the tenant column ({})",
                self.spec.columns.join(", ")
            );
        }
        if !setting {
            return format!("does not read {setting_name}");
        }
        if let Some(branch) = self.first_unkeyed_or_node(n) {
            let text = node_text(branch);
            if let Node::Not(x) = branch
                && matches!(&**x, Node::Atom(t) if t.first().is_some_and(|w| w.is_word("exists")))
            {
                return format!(
                    "has an OR NOT EXISTS escape (`{text}`): every row the sub-query finds nothing for passes, e.g. an org with no members yet, which anyone can then join"
                );
            }
            let mut f = Facts::default();
            self.walk_atoms(branch, &mut |t| {
                let x = self.facts(t);
                f.column_refs += x.column_refs;
                f.reads_setting |= x.reads_setting;
            });
            if identity && f.reads_setting && f.column_refs == 0 {
                return format!(
                    "has an OR operand that admits any signed-in user, whatever the tenant: `{text}`"
                );
            }
            return format!("an OR operand is not keyed on the tenant: `{text}`");
        }
        "the tenant column and the tenant setting are not compared in one condition".into()
    }

    fn first_unkeyed_or_node<'n>(&self, n: &'n Node) -> Option<&'n Node> {
        match n {
            Node::Atom(_) => None,
            Node::Not(x) => self.first_unkeyed_or_node(x),
            Node::And(xs) => xs.iter().find_map(|x| self.first_unkeyed_or_node(x)),
            Node::Or(xs) => xs
                .iter()
                .find(|x| !self.restricts(x))
                .or_else(|| xs.iter().find_map(|x| self.first_unkeyed_or_node(x))),
        }
    }

    fn walk_atoms(&self, n: &Node, f: &mut dyn FnMut(&[Tok])) {
        match n {
            Node::Atom(t) => f(t),
            Node::Not(x) => self.walk_atoms(x, f),
            Node::And(xs) | Node::Or(xs) => xs.iter().for_each(|x| self.walk_atoms(x, f)),
        }
    }
}

/// Strips a trailing `::type` cast (and a wrapping pair of parentheses).
fn strip_cast(mut t: &[Tok]) -> &[Tok] {
    loop {
        if t.len() >= 2 && t[0] == Tok::LParen && matching(t, 0) == Some(t.len() - 1) {
            t = &t[1..t.len() - 1];
            continue;
        }
        if let Some(pos) = t.iter().rposition(|x| x.is_op("::")) {
            let tail = &t[pos + 1..];
            if !tail.is_empty()
                && tail
                    .iter()
                    .all(|x| matches!(x, Tok::Ident { .. } | Tok::Dot))
            {
                t = &t[..pos];
                continue;
            }
        }
        return t;
    }
}

/// A literal's value as text, when `t` is one literal (cast allowed).
fn literal(t: &[Tok]) -> Option<String> {
    match strip_cast(t) {
        [Tok::Str(s)] => Some(s.clone()),
        [Tok::Num(n)] => Some(n.clone()),
        [Tok::Op(m), Tok::Num(n)] if m == "-" => Some(format!("-{n}")),
        [t] if t.is_word("true") => Some("true".into()),
        [t] if t.is_word("false") => Some("false".into()),
        _ => None,
    }
}

/// Constant value of an atom: `true`, `'on'::boolean`, `1 = 1`, `'a' <> 'b'`.
fn const_atom(t: &[Tok]) -> Option<bool> {
    let t = strip_cast(t);
    if !t.iter().any(is_cmp) {
        return match literal(t)?.to_lowercase().as_str() {
            "true" | "t" | "on" | "yes" | "y" | "1" => Some(true),
            "false" | "f" | "off" | "no" | "n" | "0" => Some(false),
            _ => None,
        };
    }
    let pos = t.iter().position(is_cmp)?;
    let (l, r) = (literal(&t[..pos])?, literal(&t[pos + 1..])?);
    let equal = match (l.parse::<f64>(), r.parse::<f64>()) {
        (Ok(a), Ok(b)) => a == b,
        _ => l == r,
    };
    match &t[pos] {
        Tok::Op(o) if o == "=" => Some(equal),
        Tok::Op(o) if o == "<>" || o == "!=" => Some(!equal),
        _ => None,
    }
}

fn is_cmp(t: &Tok) -> bool {
    matches!(t, Tok::Op(o) if o == "=" || o == "<>" || o == "!=")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with<'a>(
        cols: &'a [String],
        setting: Option<&'a str>,
        fns: &'a HashMap<String, Vec<Option<String>>>,
    ) -> KeySpec<'a> {
        KeySpec {
            columns: cols,
            setting,
            setting_functions: fns,
            table: None,
            model: None,
            identity_helpers: None,
        }
    }

    fn j(text: &str) -> Judgement {
        let cols = vec!["org_id".to_string()];
        let fns = HashMap::new();
        judge(text, &spec_with(&cols, Some("app.current_org_id"), &fns))
    }

    fn j_any(text: &str) -> Judgement {
        let cols = vec!["org_id".to_string()];
        let fns = HashMap::new();
        judge(text, &spec_with(&cols, None, &fns))
    }

    fn fail_open(j: &Judgement) -> bool {
        matches!(j, Judgement::FailOpen(_))
    }
    fn not_keyed(j: &Judgement) -> bool {
        matches!(j, Judgement::NotKeyed(_))
    }

    #[test]
    fn keyed_with_casts_as_deparsed() {
        assert_eq!(
            j("(org_id = (current_setting('app.current_org_id'::text, true))::uuid)"),
            Judgement::Keyed
        );
        assert_eq!(
            j("((org_id)::text = current_setting('app.current_org_id'::text))"),
            Judgement::Keyed
        );
        assert_eq!(
            j(
                "(org_id = (NULLIF(current_setting('app.current_org_id'::text, true), ''::text))::uuid)"
            ),
            Judgement::Keyed
        );
        // Setting names are case-insensitive; column qualified by the table.
        assert_eq!(
            j("(t.org_id = (current_setting('App.Current_Org_Id'::text, true))::bigint)"),
            Judgement::Keyed
        );
    }

    #[test]
    fn and_with_more_conditions_stays_keyed() {
        assert_eq!(
            j(
                "((org_id = (current_setting('app.current_org_id'::text, true))::uuid) AND (deleted_at IS NULL))"
            ),
            Judgement::Keyed
        );
        assert_eq!(
            j(
                "(((org_id = (current_setting('app.current_org_id'::text))::uuid) AND (name <> 'a OR b'::text)) AND CASE WHEN (id > 1) THEN true ELSE false END)"
            ),
            Judgement::Keyed
        );
    }

    #[test]
    fn or_of_keyed_operands_stays_keyed() {
        assert_eq!(
            j(
                "((org_id = (current_setting('app.current_org_id'::text, true))::uuid) OR (parent_org_id = org_id AND org_id = (current_setting('app.current_org_id'::text))::uuid))"
            ),
            Judgement::Keyed
        );
    }

    #[test]
    fn constant_true_forms() {
        assert_eq!(j("true"), Judgement::ConstantTrue);
        assert_eq!(j("(true)"), Judgement::ConstantTrue);
        assert_eq!(j("(1 = 1)"), Judgement::ConstantTrue);
        assert_eq!(j("('t'::boolean)"), Judgement::ConstantTrue);
        assert_eq!(j("('a'::text = 'a'::text)"), Judgement::ConstantTrue);
        assert_eq!(j("((deleted_at IS NULL) OR true)"), Judgement::ConstantTrue);
        assert!(not_keyed(&j("false")));
    }

    #[test]
    fn fail_open_forms() {
        assert!(fail_open(&j(
            "((current_setting('app.current_org_id'::text, true) IS NULL) OR (org_id = (current_setting('app.current_org_id'::text, true))::uuid))"
        )));
        assert!(fail_open(&j(
            "((COALESCE(current_setting('app.current_org_id'::text, true), ''::text) = ''::text) OR (org_id = (NULLIF(current_setting('app.current_org_id'::text, true), ''::text))::uuid))"
        )));
        assert!(fail_open(&j(
            "((org_id = (current_setting('app.current_org_id'::text, true))::uuid) OR true)"
        )));
        assert!(fail_open(&j(
            "(org_id = COALESCE((NULLIF(current_setting('app.current_org_id'::text, true), ''::text))::uuid, org_id))"
        )));
        assert!(fail_open(&j(
            "CASE WHEN (current_setting('app.current_org_id'::text, true) = ''::text) THEN true ELSE (org_id = (current_setting('app.current_org_id'::text, true))::uuid) END"
        )));
        assert!(fail_open(&j(
            "CASE WHEN (current_setting('app.current_org_id'::text, true) <> ''::text) THEN (org_id = (current_setting('app.current_org_id'::text, true))::uuid) ELSE true END"
        )));
        assert!(fail_open(&j(
            "((length(current_setting('app.current_org_id'::text, true)) = 0) OR ((org_id)::text = current_setting('app.current_org_id'::text, true)))"
        )));
    }

    #[test]
    fn case_keyed_on_column_is_not_fail_open() {
        assert_eq!(
            j(
                "CASE WHEN (org_id = (current_setting('app.current_org_id'::text, true))::uuid) THEN true ELSE false END"
            ),
            Judgement::Keyed
        );
    }

    #[test]
    fn coalesce_with_constant_fallback_is_keyed() {
        assert_eq!(
            j(
                "(org_id = (COALESCE(current_setting('app.current_org_id'::text, true), '00000000-0000-0000-0000-000000000000'::text))::uuid)"
            ),
            Judgement::Keyed
        );
    }

    #[test]
    fn not_keyed_forms() {
        let r = j("(owner_id = (current_setting('app.user_id'::text))::uuid)");
        assert!(
            matches!(&r, Judgement::NotKeyed(m) if m.contains("tenant column")),
            "{r:?}"
        );
        let r = j("(org_id IS NOT NULL)");
        assert!(
            matches!(&r, Judgement::NotKeyed(m) if m.contains("app.current_org_id")),
            "{r:?}"
        );
        // Right column, another setting than the declared one: unverified.
        let r = j("(org_id = (current_setting('app.user_org'::text))::uuid)");
        assert!(
            matches!(&r, Judgement::Unverified(m) if m.contains("`app.user_org`, not the declared tenant setting `app.current_org_id`")),
            "{r:?}"
        );
        // ... also when it comes first, before the declared one.
        let r = j(
            "(org_id = (COALESCE(current_setting('jwt.claims.active_org_id'::text, true), current_setting('app.current_org_id'::text, true)))::uuid)",
        );
        assert!(
            matches!(&r, Judgement::Unverified(m) if m.contains("`jwt.claims.active_org_id`")),
            "{r:?}"
        );
        // An admin escape hatch: OR operand on another setting.
        let r = j(
            "((org_id = (current_setting('app.current_org_id'::text, true))::uuid) OR (current_setting('app.is_admin'::text, true) = 'on'::text))",
        );
        assert!(
            matches!(&r, Judgement::NotKeyed(m) if m.contains("OR operand")),
            "{r:?}"
        );
        // Column and setting in different operands of an OR.
        let r = j(
            "((org_id IS NOT NULL) OR (current_setting('app.current_org_id'::text) <> ''::text))",
        );
        assert!(not_keyed(&r), "{r:?}");
        // NOT never restricts.
        assert!(not_keyed(&j(
            "(NOT (org_id <> (current_setting('app.current_org_id'::text))::uuid))"
        )));
    }

    #[test]
    fn any_setting_when_none_configured() {
        assert_eq!(
            j_any("(org_id = (current_setting('app.tenant'::text, true))::uuid)"),
            Judgement::Keyed
        );
        assert!(not_keyed(&j_any(
            "(org_id = '00000000-0000-0000-0000-000000000001'::uuid)"
        )));
    }

    #[test]
    fn quoting_and_escapes() {
        let cols = vec!["Org Id".to_string()];
        let fns = HashMap::new();
        let spec = spec_with(&cols, Some("app.current_org_id"), &fns);
        assert_eq!(
            judge(
                "(\"Org Id\" = (current_setting('app.current_org_id'::text, true))::uuid)",
                &spec
            ),
            Judgement::Keyed
        );
        // An unquoted org id is a different identifier than "Org Id".
        assert!(not_keyed(&judge(
            "(org_id = (current_setting('app.current_org_id'::text, true))::uuid)",
            &spec
        )));
        // Keywords and columns inside string literals do not count.
        assert!(not_keyed(&j(
            "(name = 'org_id OR current_setting(''app.current_org_id'')'::text)"
        )));
        assert!(not_keyed(&j("(name = E'org_id \\' OR true'::text)")));
    }

    #[test]
    fn subquery_membership_is_keyed_when_it_reads_the_setting() {
        let t = "(org_id IN ( SELECT m.org_id FROM memberships m WHERE ((m.user_id = (current_setting('app.user_id'::text))::uuid) AND (m.org_id = (current_setting('app.current_org_id'::text))::uuid))))";
        assert_eq!(j(t), Judgement::Keyed);
    }

    #[test]
    fn helper_functions_reading_the_setting_count() {
        let cols = vec!["org_id".to_string()];
        let mut fns = HashMap::new();
        fns.insert(
            "current_org_id".to_string(),
            settings_read_by(
                "SELECT nullif(current_setting('app.current_org_id', true), '')::uuid",
            ),
        );
        let spec = spec_with(&cols, Some("app.current_org_id"), &fns);
        assert_eq!(
            judge("(org_id = app.current_org_id())", &spec),
            Judgement::Keyed
        );
        assert_eq!(
            judge("(org_id = current_org_id())", &spec),
            Judgement::Keyed
        );
        assert!(not_keyed(&judge("(org_id = other_fn())", &spec)));
    }

    #[test]
    fn explicit_table_without_tenant_column_needs_the_setting_only() {
        let fns = HashMap::new();
        let spec = spec_with(&[], Some("app.current_org_id"), &fns);
        assert_eq!(
            judge(
                "(id = (current_setting('app.current_org_id'::text, true))::uuid)",
                &spec
            ),
            Judgement::Keyed
        );
        assert_eq!(judge("true", &spec), Judgement::ConstantTrue);
    }

    #[test]
    fn settings_read_by_function_bodies() {
        assert_eq!(
            settings_read_by("begin return current_setting('App.X', true)::uuid; end"),
            vec![Some("app.x".to_string())]
        );
        assert_eq!(settings_read_by("select current_setting(v)"), vec![None]);
    }

    #[test]
    fn garbage_is_never_keyed() {
        for t in [
            "",
            "(",
            ")",
            "((((",
            "'unterminated",
            "\"x",
            "CASE WHEN",
            "::",
            "a = ",
            "E'\\",
            // Truncated or unbalanced texts that hold every piece of a key.
            "(org_id = (current_setting('app.current_org_id'::text, true))::uuid",
            "org_id = current_setting('app.current_org_id'::text, true))::uuid)",
            "(org_id = (current_setting('app.current_org_id",
            "(org_id = CASE WHEN true THEN (current_setting('app.current_org_id'::text))::uuid",
            "(\"org_id = (current_setting('app.current_org_id'::text, true))::uuid)",
            "(org_id = (current_setting(E'app.current_org_id\\'::text, true))::uuid)",
        ] {
            // Fail closed: garbage is never judged keyed (nor does it panic).
            assert_ne!(j(t), Judgement::Keyed, "{t:?}");
            assert_ne!(j_any(t), Judgement::Keyed, "{t:?}");
        }
        // ...while the well-formed text is.
        assert_eq!(
            j("(org_id = (current_setting('app.current_org_id'::text, true))::uuid)"),
            Judgement::Keyed
        );
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    fn model() -> TenantModel {
        TenantModel::of(None, &[], &["app.user_id".to_string()], &[])
    }

    fn j(text: &str, fns: &[(&str, &str, &[&str])]) -> Judgement {
        let m = model();
        let bodies: Vec<FunctionBody> = fns
            .iter()
            .map(|(n, s, a)| FunctionBody {
                name: n.to_string(),
                source: s.to_string(),
                arg_names: a.iter().map(|x| x.to_string()).collect(),
            })
            .collect();
        let helpers = helpers(&bodies, None, Some(&m));
        let cols = vec!["org_id".to_string()];
        let none = HashMap::new();
        judge(
            text,
            &KeySpec {
                columns: &cols,
                setting: None,
                setting_functions: &none,
                table: Some("t"),
                model: Some(&m),
                identity_helpers: Some(&helpers),
            },
        )
    }

    const CUID: (&str, &str, &[&str]) = (
        "current_user_id",
        "SELECT nullif(current_setting('app.user_id', true), '')::uuid",
        &[],
    );

    fn supa(text: &str) -> Judgement {
        let m = TenantModel::supabase();
        let helpers = helpers(&[], None, Some(&m));
        let cols = vec!["account_id".to_string()];
        let none = HashMap::new();
        judge(
            text,
            &KeySpec {
                columns: &cols,
                setting: None,
                setting_functions: &none,
                table: Some("notes"),
                model: Some(&m),
                identity_helpers: Some(&helpers),
            },
        )
    }

    fn reason(j: Judgement) -> String {
        match j {
            Judgement::NotKeyed(r) | Judgement::FailOpen(r) | Judgement::Unverified(r) => r,
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn supabase_idioms_as_deparsed() {
        // Keyed: membership sub-query, bound EXISTS, server-set claim.
        for t in [
            "(account_id IN ( SELECT au.account_id FROM account_user au WHERE (au.user_id = ( SELECT auth.uid() AS uid))))",
            "(EXISTS ( SELECT 1 FROM account_user au WHERE ((au.account_id = notes.account_id) AND (au.user_id = auth.uid()))))",
            "(account_id = (((auth.jwt() -> 'app_metadata'::text) ->> 'account_id'::text))::uuid)",
        ] {
            assert_eq!(supa(t), Judgement::Keyed, "{t}");
        }
        // Each pitfall with its own words.
        for (t, words) in [
            (
                "(EXISTS ( SELECT 1 FROM account_user au WHERE ((au.account_id = au.account_id) AND (au.user_id = auth.uid()))))",
                "compares a column with itself",
            ),
            (
                "(EXISTS ( SELECT 1 FROM account_user au WHERE (au.user_id = auth.uid())))",
                "not bound to the row",
            ),
            (
                "(auth.role() = 'authenticated'::text)",
                "any signed-in user passes",
            ),
            ("(auth.uid() IS NOT NULL)", "any signed-in user passes"),
            (
                "((account_id IN ( SELECT au.account_id FROM account_user au WHERE (au.user_id = auth.uid()))) OR (auth.role() = 'authenticated'::text))",
                "admits any signed-in user",
            ),
            (
                "((account_id IN ( SELECT au.account_id FROM account_user au WHERE (au.user_id = auth.uid()))) OR (NOT (EXISTS ( SELECT 1 FROM account_user au WHERE (au.account_id = notes.account_id)))))",
                "OR NOT EXISTS escape",
            ),
            (
                "((auth.uid() IS NULL) OR (account_id IN ( SELECT au.account_id FROM account_user au WHERE (au.user_id = auth.uid()))))",
                "an anonymous caller passes",
            ),
            (
                "(account_id = (((auth.jwt() -> 'user_metadata'::text) ->> 'account_id'::text))::uuid)",
                "user_metadata",
            ),
        ] {
            let r = reason(supa(t));
            assert!(r.contains(words), "{t}: {r}");
        }
        // A function the audit cannot read: unverified, never keyed.
        assert!(matches!(
            supa("texteq((account_id)::text, 'x'::text)"),
            Judgement::Unverified(_)
        ));
    }

    #[test]
    fn a_row_bound_to_the_caller_is_keyed() {
        assert_eq!(
            j("(user_id = current_user_id())", &[CUID]),
            Judgement::Keyed
        );
        assert_eq!(
            j(
                "(user_id = (current_setting('app.user_id'::text, true))::uuid)",
                &[]
            ),
            Judgement::Keyed
        );
    }
}
