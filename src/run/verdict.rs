//! The verdict rules of the contract, as pure functions (run stage): given the answers
//! B, A and the never-issued twin got, decide pass, fail or error, with evidence.
//! No I/O here, so every rule is unit-tested on its own.
//!
//! The rules, in order of precedence: an answer that cannot be judged (5xx) is an
//! error; B served A's data is a failure; an answer that says nothing about isolation
//! (a redirect tenantgate does not follow, a 429 rate limit, a 408) is an error; a twin
//! that is not itself not-found means the check cannot tell anything (error); any way
//! B's answer differs from the twin's is an existence oracle (failure).
//!
//! Fail closed: a fault of the target or the network must never read as a pass, and
//! never as a failure either (exit 1 means a proven leak, nothing else).

use std::collections::BTreeSet;

use serde_json::Value;

use super::http::Resp;
use super::jwt;
use crate::outcome::{Evidence, Verdict};

/// A decided check: the verdict, its one-line reason, and evidence (not yet redacted).
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub verdict: Verdict,
    pub summary: String,
    pub evidence: Vec<Evidence>,
}

impl Decision {
    pub fn pass(s: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Pass,
            summary: s.into(),
            evidence: vec![],
        }
    }
    pub fn fail(s: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Fail,
            summary: s.into(),
            evidence: vec![],
        }
    }
    pub fn error(s: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Error,
            summary: s.into(),
            evidence: vec![],
        }
    }
    pub fn skip(s: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Skip,
            summary: s.into(),
            evidence: vec![],
        }
    }
    pub fn with(mut self, label: &str, text: impl Into<String>) -> Self {
        self.evidence.push(Evidence::new(label, text));
        self
    }
}

/// A decision of B's rules (`not_found_rule`, `list_rule`) retold for the member of
/// both orgs, who sent the request in B's scope: "B got" becomes "the member got, in
/// B's scope,", "B's list" "the member's list in B's scope", and so on.
pub fn as_member(mut d: Decision) -> Decision {
    fn retell(s: &str) -> String {
        s.replace("B's list", "the member's list in B's scope")
            .replace(
                "B's request for a never-issued id",
                "the member's request for a never-issued id in B's scope",
            )
            .replace("B's answer", "the member's answer in B's scope")
            .replace("B got", "the member got, in B's scope,")
            .replace("tells B", "tells the member")
            .replace("B's identity", "the member's identity")
    }
    d.summary = retell(&d.summary);
    for e in &mut d.evidence {
        e.label = e
            .label
            .replace("B got", "the member got")
            .replace("never-issued id)", "never-issued id, in B's scope)")
            .replace("(A's id)", "(A's id in B's scope)");
    }
    d
}

/// Whether a status can be judged by an isolation rule at all. Not: 5xx (the server
/// failed), 3xx (tenantgate does not follow redirects, so what lies behind one is
/// unknown), 429 and 408 (a rate limiter or a proxy answered, not the application).
pub fn judgeable_status(status: u16) -> bool {
    !(status >= 500 || (300..400).contains(&status) || status == 429 || status == 408)
}

/// Why an answer cannot be judged (see [`judgeable_status`]), in a few words, or `None`.
/// `expected` is a status the suite declared normal here (an `expect.status`), which is
/// then judged like any other.
pub fn unjudgeable(r: &Resp, expected: impl Fn(u16) -> bool) -> Option<String> {
    if judgeable_status(r.status) || expected(r.status) {
        return None;
    }
    Some(match r.status {
        300..=399 => format!(
            "redirect {} to `{}` (tenantgate does not follow redirects)",
            r.status,
            r.header("location").unwrap_or("nowhere")
        ),
        429 => "rate limited (429)".to_string(),
        408 => "request timeout (408)".to_string(),
        s => format!("server error {s}"),
    })
}

/// One answer in evidence form: `404 application/json {"error":"not_found"}`.
pub fn show(r: &Resp) -> String {
    let ct = r.content_type();
    format!(
        "{} {}{}",
        r.status,
        if ct.is_empty() {
            String::new()
        } else {
            format!("{ct} ")
        },
        r.excerpt(300)
    )
}

/// What B got, briefly, as evidence on a pass (status, content type, a short excerpt):
/// an auditor can see what was observed, not only that it passed.
pub fn observed(r: &Resp) -> String {
    let ct = r.content_type();
    let sep = if ct.is_empty() { "" } else { " " };
    format!("{} {ct}{sep}{}", r.status, r.excerpt(120))
}

/// Replaces every identifier (A's and the twin's) in a body by `<id>`.
pub fn mask(body: &str, ids: &[String]) -> String {
    let mut ids: Vec<&String> = ids.iter().filter(|i| !i.is_empty()).collect();
    ids.sort_by_key(|i| std::cmp::Reverse(i.len()));
    let mut out = body.to_string();
    for id in ids {
        out = out.replace(id.as_str(), "<id>");
    }
    out
}

/// What distinguishes B's answer for A's resource from the twin's answer for a
/// never-issued one. `body_stable` is false when the twin's body changed between two
/// identical requests (request ids, timestamps): then bodies are not compared.
pub fn differences(b: &Resp, twin: &Resp, ids: &[String], body_stable: bool) -> Vec<String> {
    let mut d = Vec::new();
    if b.status != twin.status {
        d.push(format!("status {} vs {}", b.status, twin.status));
    }
    if b.content_type() != twin.content_type() {
        d.push(format!(
            "content type `{}` vs `{}`",
            b.content_type(),
            twin.content_type()
        ));
    }
    if body_stable && mask(&b.body, ids) != mask(&twin.body, ids) {
        d.push("body".to_string());
    }
    d
}

/// Inputs of the not-found rule shared by read and write checks.
pub struct NotFoundInput<'a> {
    /// B's answer for A's resource.
    pub b: &'a Resp,
    /// B's answer for the never-issued twin, twice (to tell a volatile body).
    pub twin: &'a Resp,
    pub twin_again: &'a Resp,
    /// The not-found status (404 unless the suite says otherwise).
    pub not_found: u16,
    /// A's identifiers and the twin's, masked before bodies are compared.
    pub ids: &'a [String],
    /// A's markers found in B's body (a leak even under an odd status).
    pub markers_in_b: &'a [String],
    /// Whether the existence-oracle rule is on.
    pub oracle: bool,
}

/// The not-found + indistinguishable rule (read checks, and the status part of writes).
pub fn not_found_rule(i: &NotFoundInput) -> Decision {
    let NotFoundInput {
        b,
        twin,
        twin_again,
        not_found,
        ids,
        markers_in_b,
        oracle,
    } = *i;
    let evidence = |d: Decision| {
        d.with("B got (A's id)", show(b))
            .with("B got (never-issued id)", show(twin))
    };
    if b.is_server_error() || twin.is_server_error() {
        let who = if b.is_server_error() {
            b.status
        } else {
            twin.status
        };
        return evidence(Decision::error(format!(
            "server error {who}: the answer cannot be judged"
        )));
    }
    if !markers_in_b.is_empty() {
        return evidence(Decision::fail(format!(
            "B got {} holding A's data ({})",
            b.status,
            markers_in_b.join(", ")
        )));
    }
    // A redirect or a rate limit for A's id and a 404 for the twin would otherwise read
    // as an existence oracle: a transient fault must not become exit 1. (The loader
    // accepts only a 4xx not-found status other than 403, so no declared not-found
    // status is exempt here.)
    let never = |_: u16| false;
    if let Some(why) = unjudgeable(b, never).or_else(|| unjudgeable(twin, never)) {
        return evidence(Decision::error(format!(
            "{why}: the answer cannot be judged"
        )));
    }
    if b.is_success() && twin.status == not_found {
        return evidence(Decision::fail(format!(
            "B got {} for A's resource; a never-issued id gets {not_found}",
            b.status
        )));
    }
    if twin.status != not_found {
        return evidence(Decision::error(format!(
            "B's request for a never-issued id got {}, not {not_found}: B's identity or the path is broken, so this check cannot tell anything",
            twin.status
        )));
    }
    if b.status == 403 {
        return evidence(Decision::fail(format!(
            "403 tells B that A's id exists (a never-issued id gets {not_found})"
        )));
    }
    if b.status != not_found {
        return evidence(Decision::fail(format!(
            "B got {}, not {not_found}: the answer tells A's id from a missing one",
            b.status
        )));
    }
    if oracle {
        let stable = mask(&twin.body, ids) == mask(&twin_again.body, ids);
        let diffs = differences(b, twin, ids, stable);
        if !diffs.is_empty() {
            return evidence(Decision::fail(format!(
                "existence oracle: B's answer for A's id differs from a never-issued id's ({})",
                diffs.join(", ")
            )));
        }
        let note = if stable {
            ""
        } else {
            " (bodies vary per request: compared status and type)"
        };
        return Decision::pass(format!("{not_found}, same as a never-issued id{note}"))
            .with("observed", observed(b));
    }
    Decision::pass(format!("{not_found}")).with("observed", observed(b))
}

/// A's markers, with an automaton that finds every one of them in one pass over a body
/// (a list answer is searched for each marker twice otherwise: raw and decoded).
pub struct Markers {
    list: Vec<String>,
    finder: Option<aho_corasick::AhoCorasick>,
}

impl Markers {
    pub fn new(list: Vec<String>) -> Markers {
        let finder = aho_corasick::AhoCorasick::new(&list).ok();
        Markers { list, finder }
    }

    /// Which markers occur as substrings of any of `texts` (all of them, without a
    /// finder).
    fn candidates(&self, texts: &[&str]) -> Vec<bool> {
        let Some(f) = &self.finder else {
            return vec![true; self.list.len()];
        };
        let mut seen = vec![false; self.list.len()];
        for t in texts {
            for m in f.find_overlapping_iter(*t) {
                seen[m.pattern().as_usize()] = true;
            }
        }
        seen
    }
}

impl std::ops::Deref for Markers {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.list
    }
}

impl From<Vec<String>> for Markers {
    fn from(list: Vec<String>) -> Markers {
        Markers::new(list)
    }
}

impl std::fmt::Debug for Markers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(&self.list).finish()
    }
}

/// The markers (A's values) that occur in a body (see [`holds_value`]). Only markers
/// found as a substring of the body or of its decoded strings can hold (a whole JSON
/// value is in the decoded text, numbers too), so the rest are not looked at again.
pub fn markers_in(body: &str, markers: &Markers) -> Vec<String> {
    let (json, decoded) = decode(body);
    let texts: Vec<&str> = std::iter::once(body).chain(decoded.as_deref()).collect();
    let candidates = markers.candidates(&texts);
    markers
        .iter()
        .zip(candidates)
        .filter(|(m, c)| *c && holds(body, json.as_ref(), decoded.as_deref(), m))
        .map(|(m, _)| m.clone())
        .collect()
}

/// Whether any marker occurs in a body ([`markers_in`] without looking past the first:
/// A's own list, the positive control, holds them all).
pub fn any_marker_in(body: &str, markers: &Markers) -> bool {
    let (json, decoded) = decode(body);
    markers
        .iter()
        .any(|m| holds(body, json.as_ref(), decoded.as_deref(), m))
}

/// Values shorter than this, and values of digits only, are matched only as whole JSON
/// values: `1` or `acme` inside other text is a coincidence, not evidence.
pub const MIN_TEXT_MARKER: usize = 8;

/// Whether `value` (one of A's values) occurs in `body` as evidence: as a whole JSON
/// value (a string or a number) anywhere in a JSON body; or, for a value of at least
/// [`MIN_TEXT_MARKER`] characters that is not all digits, in the text (raw, or once JSON
/// strings are decoded, so `a\/b` cannot hide `a/b`) on token boundaries — so
/// `reader-X@example.test` is not found inside `b-reader-X@example.test`.
pub fn holds_value(body: &str, value: &str) -> bool {
    let (json, decoded) = decode(body);
    holds(body, json.as_ref(), decoded.as_deref(), value)
}

/// A body as JSON, when it is, and the text of its strings, keys and numbers.
fn decode(body: &str) -> (Option<Value>, Option<String>) {
    let json = serde_json::from_str::<Value>(body).ok();
    let decoded = json.as_ref().map(|v| {
        let mut s = String::new();
        collect_strings(v, &mut s);
        s
    });
    (json, decoded)
}

fn holds(body: &str, json: Option<&Value>, decoded: Option<&str>, value: &str) -> bool {
    if value.is_empty() {
        return false;
    }
    if json.is_some_and(|j| whole_value(j, value)) {
        return true;
    }
    let short =
        value.chars().count() < MIN_TEXT_MARKER || value.chars().all(|c| c.is_ascii_digit());
    !short && (on_boundaries(body, value) || decoded.is_some_and(|d| on_boundaries(d, value)))
}

fn whole_value(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => s == want,
        Value::Number(n) => n.to_string() == want,
        Value::Array(a) => a.iter().any(|x| whole_value(x, want)),
        Value::Object(o) => o.values().any(|x| whole_value(x, want)),
        _ => false,
    }
}

/// Characters that continue a token: an identifier, an e-mail address, a slug.
fn word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '@' | '+')
}

/// Whether `needle` occurs in `hay` with no token character right before or after it (a
/// `.` counts as one only when a token character follows it: `x.example` continues,
/// a sentence's full stop does not).
pub fn on_boundaries(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let starts = needle.starts_with(word_char_or_dot);
    let ends = needle.ends_with(word_char_or_dot);
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let mut after = hay[i + needle.len()..].chars();
        let (a1, a2) = (after.next(), after.next());
        let before_ok = !starts || !before.is_some_and(|c| word_char(c) || c == '.');
        let after_ok = !ends
            || match a1 {
                None => true,
                Some('.') => !a2.is_some_and(word_char),
                Some(c) => !word_char(c),
            };
        before_ok && after_ok
    })
}

fn word_char_or_dot(c: char) -> bool {
    word_char(c) || c == '.'
}

fn collect_strings(v: &Value, out: &mut String) {
    match v {
        Value::String(s) => {
            out.push_str(s);
            out.push('\u{1}');
        }
        Value::Array(a) => a.iter().for_each(|x| collect_strings(x, out)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            out.push_str(k);
            out.push('\u{1}');
            collect_strings(x, out)
        }),
        Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push('\u{1}');
        }
        _ => {}
    }
}

/// A short window of `body` around the first occurrence of `marker`.
pub fn context_of(body: &str, marker: &str) -> String {
    match body.find(marker) {
        Some(i) => {
            let start = body[..i]
                .char_indices()
                .rev()
                .nth(60)
                .map(|(j, _)| j)
                .unwrap_or(0);
            let end_from = i + marker.len();
            let end = body[end_from..]
                .char_indices()
                .nth(60)
                .map(|(j, _)| end_from + j)
                .unwrap_or(body.len());
            format!("…{}…", &body[start..end])
        }
        None => String::new(),
    }
}

/// The list rule: B's list must be 2xx and hold none of A's markers. When A's own list
/// (the control) was JSON, B's must be too: an HTML error page or a body cut short
/// holds no markers because it holds no list, which proves nothing.
pub fn list_rule(b: &Resp, markers: &Markers, control_is_json: bool) -> Decision {
    if !b.is_success() {
        return Decision::error(format!(
            "B's list got {}, not 2xx: it cannot show whether A's data leaks",
            b.status
        ))
        .with("B got", show(b));
    }
    let found = markers_in(&b.body, markers);
    if found.is_empty() && control_is_json && b.json().is_none() {
        return Decision::error(format!(
            "B's list got {} but its body is not JSON (A's is): it cannot show whether A's data leaks",
            b.status
        ))
        .with("B got", show(b));
    }
    if let Some(first) = found.first() {
        return Decision::fail(format!("B's list holds A's data: {}", found.join(", ")))
            .with("B got", show(b))
            .with("where", context_of(&b.body, first));
    }
    Decision::pass(format!(
        "{} with none of A's {} markers",
        b.status,
        markers.len()
    ))
    .with("observed", observed(b))
}

/// The JSON paths whose values differ between two JSON values (`$.a.b: 1 → 2`), or a
/// text comparison when either side is not JSON. Paths in `ignore` are skipped.
pub fn json_diff(before: &str, after: &str, ignore: &BTreeSet<String>) -> Vec<String> {
    match (
        serde_json::from_str::<Value>(before),
        serde_json::from_str::<Value>(after),
    ) {
        (Ok(x), Ok(y)) => {
            let mut out = Vec::new();
            diff_values("$", &x, &y, ignore, &mut out);
            out.into_iter().map(|(_, line)| line).collect()
        }
        _ if before == after => vec![],
        _ => vec![format!("body: {} → {}", excerpt(before), excerpt(after))],
    }
}

fn excerpt(s: &str) -> String {
    let s: String = s.chars().take(120).collect();
    format!("{s:?}")
}

/// Each difference as its path and its line (`$.a.b: 1 → 2`). The path is kept apart:
/// a key may itself hold `: `.
fn diff_values(
    path: &str,
    x: &Value,
    y: &Value,
    ignore: &BTreeSet<String>,
    out: &mut Vec<(String, String)>,
) {
    if ignore.contains(path) || x == y {
        return;
    }
    match (x, y) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for k in keys {
                let p = format!("{path}.{k}");
                match (a.get(k), b.get(k)) {
                    (Some(v), Some(w)) => diff_values(&p, v, w, ignore, out),
                    (Some(v), None) if !ignore.contains(&p) => {
                        let line = format!("{p}: {v} → (removed)");
                        out.push((p, line))
                    }
                    (None, Some(w)) if !ignore.contains(&p) => {
                        let line = format!("{p}: (absent) → {w}");
                        out.push((p, line))
                    }
                    _ => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                diff_values(&format!("{path}[{i}]"), v, w, ignore, out);
            }
        }
        _ => out.push((path.to_string(), format!("{path}: {x} → {y}"))),
    }
}

/// Paths that differ between two reads of the same unchanged resource: volatile fields
/// (timestamps of reads, request ids) that a write check must not count as a change.
pub fn volatile_paths(first: &str, second: &str) -> BTreeSet<String> {
    match (
        serde_json::from_str::<Value>(first),
        serde_json::from_str::<Value>(second),
    ) {
        (Ok(x), Ok(y)) => {
            let mut out = Vec::new();
            diff_values("$", &x, &y, &BTreeSet::new(), &mut out);
            out.into_iter().map(|(p, _)| p).collect()
        }
        _ => BTreeSet::new(),
    }
}

/// What the reads of A's resource tell about its volatile fields, for the write rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Volatile {
    /// The paths that differ between two reads of the unchanged resource (none when the
    /// reads before and after B's write are the same).
    Paths(BTreeSet<String>),
    /// The re-read that would tell them apart could not be judged (why, and what it
    /// got): no difference is blamed on B, and the check cannot pass either.
    Unknown { why: String, got: String },
}

impl Default for Volatile {
    fn default() -> Self {
        Volatile::Paths(BTreeSet::new())
    }
}

/// The write rule: B's write must be not-found like the twin's, and A's `verify` answer
/// must be unchanged.
pub fn write_rule(
    nf: &NotFoundInput,
    verify_before: &Resp,
    verify_after: &Resp,
    volatile: &Volatile,
) -> Decision {
    let accepted =
        nf.b.is_success()
            .then(|| format!("B's write got {}: it was accepted", nf.b.status));
    write_rule_with(
        nf,
        verify_before,
        verify_after,
        volatile,
        accepted,
        &not_found_rule,
    )
}

/// [`write_rule`] with the acceptance of B's write (`Some(why)` when it was accepted)
/// and the rule its refusal is compared with the twin's by given: a GraphQL mutation
/// answers 200 either way, so whether it was accepted is read from its field
/// ([`super::graphql`]).
pub fn write_rule_with(
    nf: &NotFoundInput,
    verify_before: &Resp,
    verify_after: &Resp,
    volatile: &Volatile,
    accepted: Option<String>,
    refusal_rule: &dyn Fn(&NotFoundInput) -> Decision,
) -> Decision {
    let (ignore, unknown) = match volatile {
        Volatile::Paths(p) => (std::borrow::Cow::Borrowed(p), None),
        Volatile::Unknown { why, got } => (
            std::borrow::Cow::Owned(volatile_paths(&verify_before.body, &verify_after.body)),
            Some((why, got)),
        ),
    };
    let d = judge_write(
        nf,
        verify_before,
        verify_after,
        &ignore,
        accepted,
        refusal_rule,
    );
    // A failure stands (B's write was accepted, or A's status changed); anything else
    // rests on differences nobody could tell from volatile fields.
    match unknown {
        Some((why, got)) if !matches!(d.verdict, Verdict::Fail | Verdict::Error) => {
            Decision::error(format!(
                "A's data differs after B's write, and reading it again to tell volatile fields apart got {why}: A's data cannot be compared"
            ))
            .with(
                "A's data after B's write",
                json_diff(&verify_before.body, &verify_after.body, &BTreeSet::new()).join("\n"),
            )
            .with("A got (after, again)", got.clone())
        }
        _ => d,
    }
}

/// [`write_rule_with`], the volatile fields known.
fn judge_write(
    nf: &NotFoundInput,
    verify_before: &Resp,
    verify_after: &Resp,
    volatile: &BTreeSet<String>,
    accepted: Option<String>,
    refusal_rule: &dyn Fn(&NotFoundInput) -> Decision,
) -> Decision {
    let mut changes = Vec::new();
    if verify_after.status != verify_before.status {
        changes.push(format!(
            "status: {} → {}",
            verify_before.status, verify_after.status
        ));
    }
    changes.extend(json_diff(&verify_before.body, &verify_after.body, volatile));
    let with_diff = |d: Decision| {
        if changes.is_empty() {
            d
        } else {
            d.with("A's data after B's write", changes.join("\n"))
        }
    };
    if nf.b.is_server_error() || nf.twin.is_server_error() {
        return with_diff(refusal_rule(nf));
    }
    if let Some(why) = accepted {
        let what = if changes.is_empty() {
            ""
        } else {
            " and A's data changed"
        };
        return with_diff(Decision::fail(format!("{why}{what}")).with("B got", show(nf.b)));
    }
    // A's verify answer after the write must itself be judgeable before a difference
    // can be blamed on B: a 503, a redirect or a body cut short is the target failing,
    // not A's data changing.
    if let Some(why) = unjudgeable(verify_after, |s| s == verify_before.status) {
        return Decision::error(format!(
            "verify as A (after) got {why}: A's data cannot be compared"
        ))
        .with("A got (after)", show(verify_after));
    }
    if verify_before.json().is_some() && verify_after.json().is_none() {
        return Decision::error(
            "verify as A (after) is not JSON where it was before: A's data cannot be compared",
        )
        .with("A got (after)", show(verify_after));
    }
    if !changes.is_empty() {
        return with_diff(
            Decision::fail(format!(
                "A's data changed after B's write ({})",
                changes.len()
            ))
            .with("B got", show(nf.b)),
        );
    }
    let d = refusal_rule(nf);
    if d.verdict == Verdict::Pass {
        Decision {
            summary: format!("{}; A's data unchanged", d.summary),
            ..d
        }
    } else {
        d
    }
}

/// A value of the same shape as `id` that was never issued: a UUID for a UUID, digits
/// for digits, the same pattern of letter case and digits otherwise.
pub fn twin_of(id: &str) -> String {
    let mut rnd = [0u8; 64];
    for _ in 0..8 {
        crate::random::fill(&mut rnd).expect("system random source");
        let t = shape_fill(id, &rnd);
        if t != id {
            return t;
        }
    }
    format!("{id}0")
}

fn shape_fill(id: &str, rnd: &[u8; 64]) -> String {
    let is_uuid = id.len() == 36
        && id.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if is_uuid {
        let mut b = [0u8; 16];
        b.copy_from_slice(&rnd[..16]);
        let u = uuid::Builder::from_random_bytes(b).into_uuid().to_string();
        return if id.chars().any(|c| c.is_ascii_uppercase()) {
            u.to_ascii_uppercase()
        } else {
            u
        };
    }
    // A type prefix (`cus_`, `brd-`) is part of the id's shape: keep it, or the API may
    // reject the twin as malformed instead of answering that it does not exist.
    let prefix_len = id
        .find(['_', '-'])
        .filter(|&i| (1..=8).contains(&i) && id[..i].chars().all(|c| c.is_ascii_alphabetic()))
        .map(|i| i + 1)
        .unwrap_or(0);
    let (prefix, rest) = id.split_at(prefix_len);
    let all_hex_lower = rest
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    let body: String = rest
        .chars()
        .enumerate()
        .map(|(i, c)| {
            let r = rnd[i % 64].wrapping_add((i / 64) as u8 * 31);
            if c.is_ascii_digit() {
                let d = (r % 10) as u32;
                // Keep numbers free of a leading zero, which some APIs parse differently.
                let d = if i == 0 && d == 0 && rest.len() > 1 {
                    1 + (r as u32 % 9)
                } else {
                    d
                };
                char::from_digit(d, 10).unwrap_or('1')
            } else if all_hex_lower && c.is_ascii_hexdigit() {
                char::from_digit((r % 16) as u32, 16).unwrap_or('a')
            } else if c.is_ascii_lowercase() {
                (b'a' + r % 26) as char
            } else if c.is_ascii_uppercase() {
                (b'A' + r % 26) as char
            } else {
                c
            }
        })
        .collect();
    format!("{prefix}{body}")
}

/// The tenant offered in a header, query parameter or body field must be ignored. When
/// offering A's org id turns B's usual answer (`base`) into a 2xx, the server reads the
/// tenant from the request (a failure); into a 4xx, the server refused the request that
/// named another tenant — which is safe (a pass). `None` when the answer did not change
/// or cannot be judged (a 503, a redirect, a 429 is the target failing: an error).
pub fn override_changed(channel_name: &str, base: u16, with_override: u16) -> Option<Decision> {
    if base == with_override || !judgeable_status(with_override) {
        return None;
    }
    Some(if (200..300).contains(&with_override) {
        Decision::fail(format!(
            "offering A's org id as {channel_name} changed B's answer from {base} to {with_override}: the server reads the tenant from the request"
        ))
    } else {
        Decision::pass(format!(
            "offering A's org id as {channel_name} was refused ({with_override}): the server does not take the tenant from the request"
        ))
    })
}

/// A variant is judged against the base request's answer (B's plain request): when that
/// base errored or was skipped, nothing is known to compare with, so the variant is
/// undecided too (`error`, or `skip` after a skipped base) with the base's reason —
/// never a `fail` measured against an answer that was never decided. `None` when the
/// base decided (pass or fail) or did not run in this plan.
pub fn against_base(base: Option<&Decision>, variant_name: &str) -> Option<Decision> {
    let b = base?;
    let why = format!(
        "not judged: B's plain request (without {variant_name}) was undecided, so there is no answer to compare with: {}",
        b.summary
    );
    match b.verdict {
        Verdict::Pass | Verdict::Fail | Verdict::Warn => None,
        Verdict::Skip => Some(Decision::skip(why)),
        Verdict::Error => Some(Decision::error(why)),
    }
}

/// A `tenant_override` variant of a read, after the not-found rule (`d`). When the twin
/// stops being not-found only because A's org id was offered, the server reads the
/// tenant from the request (twin 2xx: a failure), or refuses a request that names
/// another tenant (the same 4xx for A's id and for the twin: a pass). Anything else
/// stays as the not-found rule decided.
pub fn read_override_rule(
    d: Decision,
    b_status: u16,
    twin_status: u16,
    not_found: u16,
    channel_name: &str,
) -> Decision {
    if d.verdict != Verdict::Error || twin_status == not_found {
        return d;
    }
    let refused_alike = !(200..300).contains(&twin_status) && b_status == twin_status;
    match override_changed(channel_name, not_found, twin_status) {
        Some(f) if f.verdict == Verdict::Fail || refused_alike => Decision {
            evidence: d.evidence,
            ..f
        },
        _ => d,
    }
}

/// The rule for a forged token: it must be answered 401.
pub fn forgery_rule(r: &Resp, control_status: u16, markers: &Markers) -> Decision {
    if control_status == 401 {
        return Decision::error(
            "B's own valid token is answered 401 here too: a 401 for a forged one proves nothing",
        );
    }
    if r.status == 401 {
        return Decision::pass("401: the forged token was rejected").with("observed", observed(r));
    }
    // A redirect (to a login page, say) or a 429 neither accepts nor rejects the token
    // in a way tenantgate can see.
    if let Some(why) = unjudgeable(r, |_| false) {
        return Decision::error(format!("{why}: the answer cannot be judged")).with("got", show(r));
    }
    let found = markers_in(&r.body, markers);
    let d = if r.is_success() {
        Decision::fail(format!(
            "the forged token was accepted: {}{}",
            r.status,
            if found.is_empty() {
                String::new()
            } else {
                format!(" with A's data ({})", found.join(", "))
            }
        ))
    } else {
        Decision::fail(format!(
            "a forged token got {}, not 401: it was not rejected as unauthenticated",
            r.status
        ))
    };
    d.with("got", show(r))
}

/// What a forged token is compared with (extension): B's own token's answer (the
/// positive control: it must answer normally) and a never-issued token's (B's token
/// under a random signature: obviously invalid), and the status the suite says a
/// rejected token gets, when it says one.
pub struct ForgeryRefs<'a> {
    /// B's own token, same request.
    pub control: &'a Resp,
    /// A never-issued token, same request.
    pub invalid: &'a Resp,
    /// `attacks.token_forgery.reject_status`.
    pub reject_status: Option<&'a crate::suite::model::StatusSpec>,
}

/// A forged token is rejected when its answer is indistinguishable (status and JSON
/// shape) from a never-issued token's, whatever status the server uses for that (401,
/// or 403 as PostGraphile does), or when it gets the status the suite declared; it was
/// accepted when it gets A's data, a 2xx, or B's own token's answer. B's own token
/// answered like the never-issued one proves nothing (error); so does a refusal that
/// looks like neither (error, unverified): exit 1 is for a proven acceptance only.
pub fn forgery_compare_rule(r: &Resp, refs: &ForgeryRefs, markers: &Markers) -> Decision {
    let found = markers_in(&r.body, markers);
    if !found.is_empty() {
        return Decision::fail(format!(
            "the forged token was accepted: {} with A's data ({})",
            r.status,
            found.join(", ")
        ))
        .with("got", show(r));
    }
    if let Some(why) = unjudgeable(r, |_| false) {
        return Decision::error(format!("{why}: the answer cannot be judged")).with("got", show(r));
    }
    let accepted = |why: String| {
        Decision::fail(format!("the forged token was accepted: {why}"))
            .with("got", show(r))
            .with("a never-issued token got", show(refs.invalid))
    };
    if let Some(want) = refs.reject_status {
        if want.matches(refs.control.status) {
            return Decision::error(format!(
                "B's own valid token is answered {} here too: a {want} for a forged one proves nothing",
                refs.control.status
            ));
        }
        if want.matches(r.status) {
            return Decision::pass(format!(
                "{}: the forged token was rejected (the suite's `reject_status`)",
                r.status
            ))
            .with("observed", observed(r));
        }
        if r.is_success() {
            return accepted(format!("{}, not {want}", r.status));
        }
        return Decision::fail(format!(
            "a forged token got {}, not {want} (the suite's `reject_status`)",
            r.status
        ))
        .with("got", show(r));
    }
    if let Some(why) = unjudgeable(refs.invalid, |_| false) {
        return Decision::error(format!(
            "a never-issued token got {why}: there is no rejection to compare with"
        ))
        .with("a never-issued token got", show(refs.invalid));
    }
    let same = |x: &Resp, y: &Resp| x.status == y.status && shape(&x.body) == shape(&y.body);
    if same(refs.control, refs.invalid) {
        return Decision::error(format!(
            "B's own token is answered like a never-issued token ({}): a rejection of a forged one proves nothing",
            refs.invalid.status
        ))
        .with("B got", show(refs.control));
    }
    if same(r, refs.invalid) {
        return Decision::pass(format!(
            "{}: the forged token was rejected like a never-issued token",
            r.status
        ))
        .with("observed", observed(r));
    }
    if r.status == 401 {
        return Decision::pass("401: the forged token was rejected").with("observed", observed(r));
    }
    if same(r, refs.control) {
        return accepted(format!(
            "{}, answered like B's own token (a never-issued token gets {})",
            r.status, refs.invalid.status
        ));
    }
    if r.is_success() {
        return accepted(format!(
            "{} (a never-issued token gets {})",
            r.status, refs.invalid.status
        ));
    }
    Decision::error(format!(
        "a forged token got {}, like neither a never-issued token ({}) nor B's own ({}): unverified",
        r.status, refs.invalid.status, refs.control.status
    ))
    .with("got", show(r))
    .with("a never-issued token got", show(refs.invalid))
}

/// The shape of a body: its JSON structure with every value replaced by its type (the
/// keys of objects, the shapes in arrays), or `text` when it is not JSON. Two refusals
/// that differ only in their message have the same shape.
pub fn shape(body: &str) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(o) => {
                out.push('{');
                for (k, x) in o {
                    out.push_str(k);
                    out.push(':');
                    walk(x, out);
                    out.push(',');
                }
                out.push('}');
            }
            Value::Array(a) => {
                let mut seen = BTreeSet::new();
                for x in a {
                    let mut s = String::new();
                    walk(x, &mut s);
                    seen.insert(s);
                }
                out.push('[');
                out.push_str(&seen.into_iter().collect::<Vec<_>>().join("|"));
                out.push(']');
            }
            Value::Null => out.push_str("null"),
            Value::Bool(_) => out.push_str("bool"),
            Value::Number(_) => out.push_str("number"),
            Value::String(_) => out.push_str("string"),
        }
    }
    match serde_json::from_str::<Value>(body) {
        Ok(v) => {
            let mut s = String::new();
            walk(&v, &mut s);
            s
        }
        Err(_) => "text".into(),
    }
}

/// The identity endpoint as B must echo B's org and never A's.
pub fn echo_rule(r: &Resp, a_org: Option<&str>, b_org: Option<&str>) -> Decision {
    if r.is_server_error() {
        return Decision::error(format!("server error {}", r.status)).with("got", show(r));
    }
    if !r.is_success() {
        return Decision::error(format!("B's identity got {}, not 2xx", r.status))
            .with("got", show(r));
    }
    if let Some(a) = a_org
        && holds_value(&r.body, a)
    {
        return Decision::fail("the identity endpoint answered B with A's org id: B acts as A")
            .with("got", show(r));
    }
    match b_org {
        Some(b) if !holds_value(&r.body, b) => {
            Decision::fail("the identity endpoint does not echo B's org id for B's token")
                .with("got", show(r))
        }
        Some(_) => Decision::pass("echoes B's org only").with("observed", observed(r)),
        None => Decision::pass("never echoes A's org").with("observed", observed(r)),
    }
}

/// What the claim rule looks at: B's token and what the run knows of both orgs.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClaimInput<'a> {
    pub b_token: Option<&'a str>,
    /// A's token: the control (what A's token does not show either is no evidence).
    pub a_token: Option<&'a str>,
    /// `orgs.tenant_claim`, when the suite names it.
    pub tenant_claim: Option<&'a str>,
    pub a_org: Option<&'a str>,
    pub b_org: Option<&'a str>,
}

/// B's token carries exactly one tenant, B's, and nowhere A's org id.
pub fn claim_rule(i: &ClaimInput) -> Decision {
    let Some(token) = i.b_token else {
        return Decision::skip("B has no token (nothing captured as `token`)");
    };
    let Some(t) = jwt::decode(token) else {
        return Decision::skip("B's token is not a JWT (an opaque token carries no claims)");
    };
    let Some(claim) = jwt::tenant_claim_name(&t.payload, i.tenant_claim) else {
        return Decision::error(
            "B's token has none of the usual tenant claims; set `orgs.tenant_claim`",
        );
    };
    let payload_text = t.payload.to_string();
    if let Some(a) = i.a_org
        && whole_value(&t.payload, a)
    {
        return Decision::fail("B's token carries A's org id").with("claims", payload_text);
    }
    // A's own token is the control: what it does not show either is the suite's
    // mistake (a misspelt claim, a capture that is not the tenant), not a leak.
    let a_payload = i.a_token.and_then(jwt::decode).map(|t| t.payload);
    let a_claim = a_payload.as_ref().and_then(|p| jwt::claim(p, &claim));
    let undecided = |why: String| Decision::error(why).with("claims", payload_text.clone());
    match jwt::claim(&t.payload, &claim) {
        None if a_claim.is_none() => undecided(format!(
            "neither A's nor B's token has a `{claim}` claim: `orgs.tenant_claim` names a claim the target does not issue{}",
            did_you_mean(&claim, &claim_names(&t.payload))
        )),
        None => Decision::fail(format!("B's token has no `{claim}` claim (A's has)"))
            .with("claims", payload_text),
        Some(serde_json::Value::Array(v)) if v.len() != 1 => {
            if matches!(a_claim, Some(serde_json::Value::Array(a)) if a.len() != 1) {
                return undecided(format!(
                    "A's token carries several tenants in `{claim}` too: the claim lists memberships, so one tenant per token cannot be checked"
                ));
            }
            Decision::fail(format!(
                "B's token carries {} tenants in `{claim}`",
                v.len()
            ))
            .with("claims", payload_text)
        }
        Some(v) => {
            let got = first_tenant(v);
            match i.b_org {
                Some(b) if got != b => {
                    let a_matches = match (a_claim, i.a_org) {
                        (Some(c), Some(a)) => first_tenant(c) == a,
                        _ => false,
                    };
                    if !a_matches {
                        return undecided(format!(
                            "`{claim}` in A's token is not A's org id either: the claim, or the captured `org_id`, is not the tenant"
                        ));
                    }
                    Decision::fail(format!(
                        "B's token carries tenant `{got}` in `{claim}`, not B's org"
                    ))
                    .with("claims", payload_text)
                }
                Some(_) => Decision::pass(format!("`{claim}` is B's org only")),
                None => Decision::pass(format!("`{claim}` holds one tenant, not A's")),
            }
        }
    }
}

fn first_tenant(v: &Value) -> String {
    match v {
        Value::Array(a) => a.first().map(jwt::claim_text).unwrap_or_default(),
        v => jwt::claim_text(v),
    }
}

/// Every claim name of a payload, nested ones dotted (`app.tenant`).
fn claim_names(payload: &Value) -> Vec<String> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<String>) {
        if let Value::Object(o) = v {
            for (k, x) in o {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(&name, x, out);
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk("", payload, &mut out);
    out
}

/// `; did you mean `org_id`?` when one of `names` is close to `wanted`, else nothing.
pub fn did_you_mean(wanted: &str, names: &[String]) -> String {
    let squash = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    let w = squash(wanted);
    names
        .iter()
        .map(|n| {
            let d = if squash(n) == w {
                0
            } else {
                strsim::damerau_levenshtein(&w, &squash(n))
            };
            (d, n)
        })
        .filter(|(d, n)| *d <= 2.max(wanted.len() / 4) && n.as_str() != wanted)
        .min()
        .map(|(_, n)| format!("; did you mean `{n}`?"))
        .unwrap_or_default()
}

/// One probe of the pool-reuse attack, right after A's authenticated request.
#[derive(Clone, Debug, Default)]
pub struct PoolObservation {
    pub round: u32,
    /// Who sent what (`anonymous: GET /public/summary`).
    pub request: String,
    /// The answer's status; `None` when no answer came (a transport error).
    pub status: Option<u16>,
    /// A's markers (and A's org id) found in the answer.
    pub leaked: Vec<String>,
    /// The answer in evidence form, or why there was none.
    pub got: String,
}

/// The pool-reuse rule: any of A's data in an answer to an anonymous request or to B,
/// right after A's request, is a failure (a tenant setting outlived A's request on a
/// pooled connection); otherwise a transport error or a 5xx leaves it undecided; else a
/// pass over `rounds` × `probes`.
pub fn pool_reuse_rule(seen: &[PoolObservation], rounds: u32, probes: usize) -> Decision {
    if let Some(o) = seen.iter().find(|o| !o.leaked.is_empty()) {
        return Decision::fail(format!(
            "right after A's request, {} got A's data ({}) in round {}: a tenant setting outlived A's request on a pooled connection",
            o.request,
            o.leaked.join(", "),
            o.round
        ))
        .with("got", o.got.clone());
    }
    let failed = |o: &&PoolObservation| o.status.is_none_or(|s| s >= 500);
    if let Some(o) = seen.iter().find(failed) {
        let n = seen.iter().filter(failed).count();
        return Decision::error(format!(
            "{n} of {} probes got no judgeable answer (first: {} in round {}): the pool cannot be shown clean",
            seen.len(),
            o.request,
            o.round
        ))
        .with("got", o.got.clone());
    }
    Decision::pass(format!(
        "{rounds} rounds × {probes} probes right after A's requests: none held A's data"
    ))
}

#[cfg(test)]
mod forgery_compare_tests {
    use super::*;
    use std::time::Duration;

    fn resp(status: u16, body: &str) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            elapsed: Duration::ZERO,
        }
    }

    fn judge(r: &Resp, control: &Resp, invalid: &Resp) -> Decision {
        forgery_compare_rule(
            r,
            &ForgeryRefs {
                control,
                invalid,
                reject_status: None,
            },
            &vec!["Acme-1234567".into()].into(),
        )
    }

    #[test]
    fn a_forged_token_answered_like_a_never_issued_one_is_rejected_whatever_the_status() {
        let ok = resp(200, r#"{"data":{"brandById":null}}"#);
        let invalid = resp(403, r#"{"errors":[{"message":"invalid signature"}]}"#);
        let forged = resp(403, r#"{"errors":[{"message":"jwt malformed"}]}"#);
        assert_eq!(judge(&forged, &ok, &invalid).verdict, Verdict::Pass);
        // B's own answer, a 2xx, or A's data: accepted.
        assert_eq!(judge(&ok, &ok, &invalid).verdict, Verdict::Fail);
        let other = resp(200, r#"{"data":{"brandById":{"id":"x"}}}"#);
        assert_eq!(judge(&other, &ok, &invalid).verdict, Verdict::Fail);
        let leak = resp(404, r#"{"name":"Acme-1234567"}"#);
        assert_eq!(judge(&leak, &ok, &invalid).verdict, Verdict::Fail);
        // Faults, a control that looks rejected, and a refusal like neither: undecided.
        assert_eq!(
            judge(&resp(503, "{}"), &ok, &invalid).verdict,
            Verdict::Error
        );
        assert_eq!(judge(&forged, &invalid, &invalid).verdict, Verdict::Error);
        assert_eq!(
            judge(&resp(400, r#"{"x":1}"#), &ok, &invalid).verdict,
            Verdict::Error
        );
        // 401 is a rejection by the contract.
        assert_eq!(
            judge(&resp(401, "{}"), &ok, &invalid).verdict,
            Verdict::Pass
        );
    }

    #[test]
    fn a_configured_reject_status_wins() {
        let ok = resp(200, "{}");
        let want =
            crate::suite::model::StatusSpec(vec![crate::suite::model::StatusPat::Exact(403)]);
        let with = |r: &Resp, control: &Resp| {
            forgery_compare_rule(
                r,
                &ForgeryRefs {
                    control,
                    invalid: control,
                    reject_status: Some(&want),
                },
                &Markers::new(Vec::new()),
            )
            .verdict
        };
        assert_eq!(with(&resp(403, "{}"), &ok), Verdict::Pass);
        assert_eq!(with(&resp(401, "{}"), &ok), Verdict::Fail);
        assert_eq!(with(&resp(403, "{}"), &resp(403, "{}")), Verdict::Error);
    }

    #[test]
    fn shapes_ignore_values_but_not_structure() {
        assert_eq!(
            shape(r#"{"a":"x","b":[1,2]}"#),
            shape(r#"{"a":"y","b":[3]}"#)
        );
        assert_ne!(shape(r#"{"errors":[]}"#), shape(r#"{"data":{}}"#));
        assert_eq!(shape("<html>"), "text");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_decisions_are_retold_for_the_member_in_b_scope() {
        let d = as_member(
            Decision::fail("B's list holds A's data: Apollo x").with("B got (A's id)", "200"),
        );
        assert_eq!(
            d.summary,
            "the member's list in B's scope holds A's data: Apollo x"
        );
        assert_eq!(d.evidence[0].label, "the member got (A's id in B's scope)");
        let d = as_member(Decision::fail(
            "B got 200 for A's resource; a never-issued id gets 404",
        ));
        assert!(d.summary.starts_with("the member got, in B's scope, 200"));
    }
    use std::time::Duration;

    fn resp(status: u16, ct: &str, body: &str) -> Resp {
        Resp {
            status,
            headers: vec![("content-type".into(), ct.into())],
            body: body.into(),
            elapsed: Duration::ZERO,
        }
    }

    const NF: &str = r#"{"error":"not_found"}"#;
    const P: Verdict = Verdict::Pass;
    const F: Verdict = Verdict::Fail;
    const E: Verdict = Verdict::Error;
    const S: Verdict = Verdict::Skip;

    fn json(status: u16, body: &str) -> Resp {
        resp(status, "application/json", body)
    }

    fn redirect(status: u16) -> Resp {
        let mut r = resp(status, "text/html", "");
        r.headers.push(("location".into(), "/login".into()));
        r
    }

    /// Checks one table row: the verdict and the key words of the summary, naming the
    /// case on failure.
    fn expect(case: &str, d: &Decision, verdict: Verdict, words: &[&str]) {
        assert_eq!(d.verdict, verdict, "{case}: {d:?}");
        for w in words {
            assert!(
                d.summary.contains(w),
                "{case}: `{w}` not in `{}`",
                d.summary
            );
        }
    }

    #[test]
    fn not_found_rule_table() {
        let nf = || json(404, NF);
        // (case, B's answer, the twin's, the twin's second answer, markers in B, verdict, words)
        type Case<'a> = (
            &'a str,
            Resp,
            Resp,
            Resp,
            Vec<String>,
            Verdict,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "both not found",
                nf(),
                nf(),
                nf(),
                vec![],
                P,
                vec!["404", "same as"],
            ),
            (
                "B reads A's resource",
                json(200, "{}"),
                nf(),
                nf(),
                vec![],
                F,
                vec!["200", "never-issued id gets 404"],
            ),
            (
                "403 tells existence",
                json(403, NF),
                nf(),
                nf(),
                vec![],
                F,
                vec!["403", "exists"],
            ),
            (
                "another 4xx tells A's id apart",
                json(400, NF),
                nf(),
                nf(),
                vec![],
                F,
                vec!["400, not 404"],
            ),
            (
                "different body is an oracle",
                json(404, r#"{"error":"not yours"}"#),
                nf(),
                nf(),
                vec![],
                F,
                vec!["existence oracle", "body"],
            ),
            (
                "echoed ids are masked",
                json(404, r#"{"id":"AID"}"#),
                json(404, r#"{"id":"TWIN"}"#),
                json(404, r#"{"id":"TWIN"}"#),
                vec![],
                P,
                vec!["same as"],
            ),
            (
                "volatile twin bodies compare status only",
                json(404, r#"{"e":1,"rid":"r1"}"#),
                json(404, r#"{"e":1,"rid":"r2"}"#),
                json(404, r#"{"e":1,"rid":"r3"}"#),
                vec![],
                P,
                vec!["vary"],
            ),
            (
                "a twin that is not not-found decides nothing",
                nf(),
                json(401, "{}"),
                json(401, "{}"),
                vec![],
                E,
                vec!["never-issued id got 401"],
            ),
            (
                "server error",
                resp(500, "text/plain", "boom"),
                nf(),
                nf(),
                vec![],
                E,
                vec!["server error 500"],
            ),
            (
                "server error on the twin",
                nf(),
                resp(502, "", ""),
                nf(),
                vec![],
                E,
                vec!["server error 502"],
            ),
            (
                "markers leak under any status",
                nf(),
                nf(),
                nf(),
                vec!["Acme 1234".into()],
                F,
                vec!["A's data", "Acme 1234"],
            ),
            (
                "a redirect is a fault, not an oracle",
                redirect(302),
                nf(),
                nf(),
                vec![],
                E,
                vec!["redirect 302", "/login", "cannot be judged"],
            ),
            (
                "a rate limit is a fault",
                json(429, "{}"),
                nf(),
                nf(),
                vec![],
                E,
                vec!["rate limited", "cannot be judged"],
            ),
            (
                "a 408 is a fault",
                resp(408, "", ""),
                nf(),
                nf(),
                vec![],
                E,
                vec!["408", "cannot be judged"],
            ),
            (
                "a redirect on the twin is a fault",
                nf(),
                redirect(301),
                nf(),
                vec![],
                E,
                vec!["redirect 301"],
            ),
        ];
        let ids = vec!["AID".to_string(), "TWIN".to_string()];
        for (case, b, twin, again, markers, verdict, words) in cases {
            let d = not_found_rule(&NotFoundInput {
                b: &b,
                twin: &twin,
                twin_again: &again,
                not_found: 404,
                ids: &ids,
                markers_in_b: &markers,
                oracle: true,
            });
            expect(case, &d, verdict, &words);
        }
    }

    #[test]
    fn the_oracle_rule_switches_off() {
        let ids = vec![];
        let (b, twin) = (json(404, r#"{"error":"not yours"}"#), json(404, NF));
        let d = not_found_rule(&NotFoundInput {
            b: &b,
            twin: &twin,
            twin_again: &twin,
            not_found: 404,
            ids: &ids,
            markers_in_b: &[],
            oracle: false,
        });
        expect("oracle off", &d, P, &["404"]);
    }

    #[test]
    fn list_rule_table() {
        let m = vec!["Acme run42".to_string()];
        // (case, B's answer, A's list was JSON, verdict, words)
        let cases = [
            (
                "empty list",
                json(200, r#"{"items":[]}"#),
                true,
                P,
                vec!["200", "none of A's 1 markers"],
            ),
            (
                "A's marker in B's list",
                json(200, r#"{"items":[{"name":"Acme run42"}]}"#),
                true,
                F,
                vec!["A's data", "Acme run42"],
            ),
            ("not 2xx", json(401, "{}"), true, E, vec!["401, not 2xx"]),
            (
                "JSON escaping hides nothing",
                json(200, r#"["Acme run42\/x"]"#),
                true,
                F,
                vec!["Acme run42"],
            ),
            (
                "an HTML page where A's list was JSON",
                resp(200, "text/html", "<html>maintenance</html>"),
                true,
                E,
                vec!["not JSON"],
            ),
            (
                "HTML where A's was HTML too",
                resp(200, "text/html", "<html>maintenance</html>"),
                false,
                P,
                vec![],
            ),
        ];
        for (case, b, control_json, verdict, words) in cases {
            expect(
                case,
                &list_rule(&b, &m.clone().into(), control_json),
                verdict,
                &words,
            );
        }
    }

    #[test]
    fn a_write_whose_volatile_fields_are_unknown_neither_passes_nor_blames_the_difference() {
        let nf = json(404, NF);
        let before = json(200, r#"{"enabled":true,"read_at":1}"#);
        let after = json(200, r#"{"enabled":true,"read_at":2}"#);
        let unknown = Volatile::Unknown {
            why: "server error 503".into(),
            got: "503".into(),
        };
        let judge = |b: &Resp, after: &Resp| {
            let input = NotFoundInput {
                b,
                twin: &nf,
                twin_again: &nf,
                not_found: 404,
                ids: &[],
                markers_in_b: &[],
                oracle: true,
            };
            write_rule(&input, &before, after, &unknown)
        };
        // Refused, A's data differs in a field that may be volatile: undecided.
        let d = judge(&nf, &after);
        expect(
            "refused",
            &d,
            E,
            &["volatile fields apart got server error 503"],
        );
        assert!(
            d.evidence
                .iter()
                .any(|e| e.text.contains("$.read_at: 1 → 2")),
            "{d:?}"
        );
        // Accepted, or A's resource gone: a failure whatever the volatile fields.
        let ok = json(200, r#"{"enabled":false}"#);
        expect("accepted", &judge(&ok, &after), F, &["it was accepted"]);
        expect(
            "gone",
            &judge(&nf, &json(404, NF)),
            F,
            &["A's data changed"],
        );
    }

    #[test]
    fn write_rule_table() {
        let nf = json(404, NF);
        let before = json(200, r#"{"enabled":true,"read_at":1}"#);
        let same = json(200, r#"{"enabled":true,"read_at":2}"#);
        let changed = json(200, r#"{"enabled":false,"read_at":3}"#);
        let vol = volatile_paths(&before.body, &same.body);
        assert!(vol.contains("$.read_at"));
        let ids: Vec<String> = vec![];
        // (case, B's write answer, A's verify after, verdict, words)
        let cases = [
            (
                "refused and unchanged",
                nf.clone(),
                same.clone(),
                P,
                vec!["A's data unchanged"],
            ),
            (
                "refused but A's data changed",
                nf.clone(),
                changed.clone(),
                F,
                vec!["A's data changed"],
            ),
            (
                "accepted",
                json(200, r#"{"ok":1}"#),
                changed.clone(),
                F,
                vec!["accepted", "A's data changed"],
            ),
            (
                "accepted, nothing visible changed",
                json(204, ""),
                same.clone(),
                F,
                vec!["accepted"],
            ),
            (
                "verify 503 after",
                nf.clone(),
                json(503, "{}"),
                E,
                vec!["cannot be compared"],
            ),
            (
                "verify redirect after",
                nf.clone(),
                redirect(302),
                E,
                vec!["cannot be compared"],
            ),
            (
                "verify HTML after",
                nf.clone(),
                resp(200, "text/html", "<html>x</html>"),
                E,
                vec!["cannot be compared"],
            ),
            (
                "verify body cut short after",
                nf.clone(),
                json(200, r#"{"enabled":tr"#),
                E,
                vec!["cannot be compared"],
            ),
            (
                "B's write 500",
                resp(500, "", ""),
                same.clone(),
                E,
                vec!["server error 500"],
            ),
        ];
        for (case, b, after, verdict, words) in cases {
            let input = NotFoundInput {
                b: &b,
                twin: &nf,
                twin_again: &nf,
                not_found: 404,
                ids: &ids,
                markers_in_b: &[],
                oracle: true,
            };
            let d = write_rule(&input, &before, &after, &Volatile::Paths(vol.clone()));
            expect(case, &d, verdict, &words);
            if case == "refused but A's data changed" {
                assert!(
                    d.evidence
                        .iter()
                        .any(|e| e.text.contains("$.enabled: true → false")),
                    "{case}: {d:?}"
                );
            }
        }
    }

    #[test]
    fn forgery_rule_table() {
        let m = vec!["Acme run42".to_string()];
        // (case, answer to the forged token, B's own token's status, verdict, words)
        let cases = [
            ("rejected", json(401, "{}"), 200, P, vec!["401", "rejected"]),
            ("accepted", json(200, "{}"), 200, F, vec!["accepted: 200"]),
            (
                "accepted with A's data",
                json(200, r#"{"n":"Acme run42"}"#),
                200,
                F,
                vec!["A's data", "Acme run42"],
            ),
            (
                "403 is not unauthenticated",
                json(403, "{}"),
                200,
                F,
                vec!["403, not 401"],
            ),
            (
                "B's own token gets 401 too",
                json(401, "{}"),
                401,
                E,
                vec!["proves nothing"],
            ),
            (
                "a redirect to a login page",
                redirect(302),
                200,
                E,
                vec!["redirect 302", "cannot be judged"],
            ),
            (
                "a rate limit",
                json(429, "{}"),
                200,
                E,
                vec!["rate limited"],
            ),
            (
                "a server error",
                json(503, "{}"),
                200,
                E,
                vec!["server error 503"],
            ),
        ];
        for (case, r, control, verdict, words) in cases {
            expect(
                case,
                &forgery_rule(&r, control, &m.clone().into()),
                verdict,
                &words,
            );
        }
    }

    #[test]
    fn override_rules_table() {
        // (case, B's usual status, with A's org id offered, the verdict when changed)
        for (case, base, with, changed) in [
            ("same answer", 200, 200, None),
            ("404 → 200", 404, 200, Some(F)),
            ("200 → 403 is a refusal", 200, 403, Some(P)),
            ("200 → 400 is a refusal", 200, 400, Some(P)),
            ("a 503 is the target failing", 200, 503, None),
            ("a redirect is not a change", 200, 302, None),
            ("a rate limit is not a change", 200, 429, None),
        ] {
            let d = override_changed("header `X-Org-Id`", base, with);
            assert_eq!(d.as_ref().map(|d| d.verdict), changed, "{case}");
            match d {
                Some(d) if d.verdict == F => expect(
                    case,
                    &d,
                    F,
                    &["X-Org-Id", "reads the tenant from the request"],
                ),
                Some(d) => expect(case, &d, P, &["X-Org-Id", "refused"]),
                None => {}
            }
        }
        let undecided = Decision::error("never-issued id got 200").with("x", "y");
        // (case, decision of the not-found rule, B's status, twin status, verdict, words)
        for (case, d, b, twin, verdict, words) in [
            (
                "twin stays not-found",
                undecided.clone(),
                404,
                404,
                E,
                vec!["never-issued"],
            ),
            (
                "twin answered because of the override",
                undecided.clone(),
                200,
                200,
                F,
                vec!["from 404 to 200"],
            ),
            (
                "both refused alike",
                undecided.clone(),
                403,
                403,
                P,
                vec!["refused (403)"],
            ),
            (
                "twin refused, A's id answered",
                undecided.clone(),
                200,
                403,
                E,
                vec!["never-issued"],
            ),
            (
                "twin 503",
                undecided.clone(),
                404,
                503,
                E,
                vec!["never-issued"],
            ),
            (
                "a pass stays a pass",
                Decision::pass("404"),
                200,
                200,
                P,
                vec!["404"],
            ),
        ] {
            let got = read_override_rule(d, b, twin, 404, "header `X-Org-Id`");
            expect(case, &got, verdict, &words);
            if verdict == F {
                assert_eq!(got.evidence.len(), 1, "{case}: the evidence is kept");
            }
        }
    }

    #[test]
    fn no_variant_is_judged_against_an_undecided_base() {
        let name = "header `X-Org-Id`";
        for (case, base, want) in [
            ("base passed", Some(Decision::pass("404 as expected")), None),
            ("base failed", Some(Decision::fail("B read A's row")), None),
            (
                "base warned",
                Some(Decision {
                    verdict: Verdict::Warn,
                    ..Decision::pass("w")
                }),
                None,
            ),
            ("base not in plan", None, None),
            (
                "base errored",
                Some(Decision::error("B got 503")),
                Some(Verdict::Error),
            ),
            (
                "base skipped",
                Some(Decision::skip("no org id")),
                Some(Verdict::Skip),
            ),
        ] {
            let got = against_base(base.as_ref(), name);
            assert_eq!(got.as_ref().map(|d| d.verdict), want, "{case}");
            if let (Some(d), Some(b)) = (got, base) {
                assert!(d.summary.contains(&b.summary), "{case}: {}", d.summary);
                assert!(d.summary.contains(name), "{case}: {}", d.summary);
                assert!(!d.summary.contains("changed B's answer"), "{case}");
            }
        }
    }

    #[test]
    fn pool_reuse_rule_table() {
        let ok = |round| PoolObservation {
            round,
            request: "anonymous: GET /public".into(),
            status: Some(200),
            leaked: vec![],
            got: "200 {}".into(),
        };
        let leak = PoolObservation {
            leaked: vec!["Acme run42".into()],
            ..ok(3)
        };
        let down = PoolObservation {
            status: Some(503),
            ..ok(2)
        };
        // (case, observations, verdict, words)
        for (case, seen, verdict, words) in [
            ("clean", vec![ok(1), ok(2)], P, vec!["20 rounds × 2 probes"]),
            (
                "A's data after A's request",
                vec![ok(1), down.clone(), leak],
                F,
                vec!["round 3", "Acme run42", "pooled connection"],
            ),
            (
                "a 503 leaves it undecided",
                vec![ok(1), down],
                E,
                vec!["1 of 2 probes", "round 2"],
            ),
        ] {
            expect(case, &pool_reuse_rule(&seen, 20, 2), verdict, &words);
        }
    }

    #[test]
    fn echo_rule_table() {
        // (case, B's identity answer, verdict, words)
        for (case, r, verdict, words) in [
            (
                "B's org only",
                json(200, r#"{"org":"org-b"}"#),
                P,
                vec!["B's org only"],
            ),
            (
                "A's org id",
                json(200, r#"{"org":"org-a"}"#),
                F,
                vec!["A's org id"],
            ),
            (
                "not B's",
                json(200, r#"{"org":"org-c"}"#),
                F,
                vec!["does not echo B's"],
            ),
            ("server error", json(500, "{}"), E, vec!["server error 500"]),
            ("not 2xx", json(401, "{}"), E, vec!["401, not 2xx"]),
        ] {
            expect(
                case,
                &echo_rule(&r, Some("org-a"), Some("org-b")),
                verdict,
                &words,
            );
        }
        expect(
            "B's id unknown",
            &echo_rule(&json(200, "{}"), Some("org-a"), None),
            P,
            &["never echoes A's"],
        );
    }

    #[test]
    fn claim_rule_table() {
        let signer =
            jwt::Signer::new("HS256", Some("a-test-secret-of-some-length"), None).expect("signer");
        let tok = |claims: serde_json::Value| signer.sign(&claims).expect("sign");
        let a_ok = tok(serde_json::json!({"org_id": "org-a"}));
        let a_odd = tok(serde_json::json!({"org_id": "org-z"}));
        let a_many = tok(serde_json::json!({"org_ids": ["org-a", "org-c"]}));
        let a_num = tok(serde_json::json!({"org_id": 1}));
        let b_only = tok(serde_json::json!({"org_id": "org-b"}));
        let with_a = tok(serde_json::json!({"org_id": "org-b", "x": "org-a"}));
        let other = tok(serde_json::json!({"org_id": "org-c"}));
        let two = tok(serde_json::json!({"org_ids": ["org-b", "org-c"]}));
        let none = tok(serde_json::json!({"sub": "u1"}));
        let b_num = tok(serde_json::json!({"org_id": 2, "sub": "u-1-x"}));
        // (case, B's token, A's token, tenant_claim, A's org, B's org, verdict, words)
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            Option<&'a str>,
            Option<&'a str>,
            &'a str,
            &'a str,
            Verdict,
            Vec<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "B's org only",
                Some(&b_only),
                Some(&a_ok),
                None,
                "org-a",
                "org-b",
                P,
                vec!["`org_id` is B's org only"],
            ),
            (
                "A's org id anywhere",
                Some(&with_a),
                Some(&a_ok),
                None,
                "org-a",
                "org-b",
                F,
                vec!["A's org id"],
            ),
            (
                "another tenant",
                Some(&other),
                Some(&a_ok),
                None,
                "org-a",
                "org-b",
                F,
                vec!["`org-c`", "not B's org"],
            ),
            (
                "another tenant, and A's is not A's either",
                Some(&other),
                Some(&a_odd),
                None,
                "org-a",
                "org-b",
                E,
                vec!["not A's org id either"],
            ),
            (
                "two tenants",
                Some(&two),
                Some(&a_ok),
                Some("org_ids"),
                "org-a",
                "org-b",
                F,
                vec!["2 tenants"],
            ),
            (
                "several tenants by design",
                Some(&two),
                Some(&a_many),
                Some("org_ids"),
                "org-x",
                "org-b",
                E,
                vec!["several tenants", "too"],
            ),
            (
                "no tenant claim",
                Some(&none),
                Some(&a_ok),
                None,
                "org-a",
                "org-b",
                E,
                vec!["none of the usual tenant claims"],
            ),
            (
                "a misspelt tenant_claim",
                Some(&b_only),
                Some(&a_ok),
                Some("orgid"),
                "org-a",
                "org-b",
                E,
                vec!["neither A's nor B's", "did you mean `org_id`?"],
            ),
            (
                "B lacks the claim A has",
                Some(&none),
                Some(&a_ok),
                Some("org_id"),
                "org-a",
                "org-b",
                F,
                vec!["no `org_id` claim (A's has)"],
            ),
            (
                "short ids match whole values only",
                Some(&b_num),
                Some(&a_num),
                None,
                "1",
                "2",
                P,
                vec!["B's org only"],
            ),
            (
                "no token",
                None,
                Some(&a_ok),
                None,
                "org-a",
                "org-b",
                S,
                vec!["no token"],
            ),
            (
                "an opaque token",
                Some("opaque-token-value"),
                None,
                None,
                "org-a",
                "org-b",
                S,
                vec!["not a JWT"],
            ),
        ];
        for (case, b_token, a_token, claim, a_org, b_org, verdict, words) in cases {
            let d = claim_rule(&ClaimInput {
                b_token,
                a_token,
                tenant_claim: claim,
                a_org: Some(a_org),
                b_org: Some(b_org),
            });
            expect(case, &d, verdict, &words);
        }
    }

    #[test]
    fn markers_match_whole_values_or_on_token_boundaries() {
        // (case, body, marker, found)
        for (case, body, marker, found) in [
            (
                "a whole JSON string",
                r#"{"e":"reader-X@example.test"}"#,
                "reader-X@example.test",
                true,
            ),
            (
                "inside B's own longer value",
                r#"{"e":"b-reader-X@example.test"}"#,
                "reader-X@example.test",
                false,
            ),
            (
                "a prefix of a longer value",
                r#"{"e":"reader-X@example.test.org"}"#,
                "reader-X@example.test",
                false,
            ),
            (
                "in a sentence",
                r#"{"t":"Acme run42 is great."}"#,
                "Acme run42",
                true,
            ),
            (
                "at a sentence's end",
                r#"{"t":"we love Acme run42."}"#,
                "Acme run42",
                true,
            ),
            (
                "inside a URL path",
                r#"{"u":"/brands/0b6f5d2e-8a41-4c7e-9f0a-1234567890ab/x"}"#,
                "0b6f5d2e-8a41-4c7e-9f0a-1234567890ab",
                true,
            ),
            ("JSON escaping", r#"["a\/bcdefghij"]"#, "a/bcdefghij", true),
            ("a short id as a whole value", r#"{"org_id":1}"#, "1", true),
            ("a short id inside a number", r#"{"n":21}"#, "1", false),
            (
                "a short id inside a string",
                r#"{"id":"org-1"}"#,
                "1",
                false,
            ),
            (
                "digits inside a longer number",
                r#"{"n":"1234567890"}"#,
                "12345678",
                false,
            ),
            (
                "digits as a whole value",
                r#"{"n":12345678}"#,
                "12345678",
                true,
            ),
            (
                "plain text, long marker",
                "hello Acme run42 bye",
                "Acme run42",
                true,
            ),
            ("plain text, short marker", "org 1 here", "1", false),
        ] {
            let got = !markers_in(body, &vec![marker.to_string()].into()).is_empty();
            assert_eq!(got, found, "{case}: {marker:?} in {body}");
        }
    }

    #[test]
    fn volatile_keys_may_hold_a_colon() {
        // Found by fuzzing: the path was cut at the first `: ` of the diff line.
        let vol = volatile_paths(r#"{"at: read": 1}"#, r#"{"at: read": 2}"#);
        assert_eq!(vol, BTreeSet::from(["$.at: read".to_string()]));
        assert!(json_diff(r#"{"at: read": 1}"#, r#"{"at: read": 2}"#, &vol).is_empty());
    }

    #[test]
    fn twins_keep_the_shape() {
        let u = "0b6f5d2e-8a41-4c7e-9f0a-1234567890ab";
        let t = twin_of(u);
        assert_ne!(t, u);
        assert_eq!(t.len(), 36);
        assert_eq!(&t[14..15], "4");
        let n = twin_of("12345");
        assert_eq!(n.len(), 5);
        assert!(n.chars().all(|c| c.is_ascii_digit()));
        assert!(!n.starts_with('0'));
        for _ in 0..500 {
            let s = twin_of("cus_Ab12");
            assert!(
                s.starts_with("cus_") && s.len() == 8 && s != "cus_Ab12",
                "{s}"
            );
        }
        let s = twin_of("brd_Ab12");
        assert!(s.starts_with("brd_"));
        assert!(s[4..5].chars().all(|c| c.is_ascii_uppercase()));
        assert_ne!(twin_of("7"), "7");
    }
}
