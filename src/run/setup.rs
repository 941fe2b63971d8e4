//! Steps (run stage): provision, seed and teardown requests with their `expect` and
//! `capture`, and the same `expect` evaluation for `request` checks.

use serde_json::Value;

use super::error::RunError;
use super::http::{Http, Resp, RetryPolicy};
use super::verdict::show;
use crate::suite::model::{CaptureSource, CaptureSpec, Expect};

/// Why a step failed: a one-line reason and evidence lines.
#[derive(Clone, Debug)]
pub struct StepError {
    pub summary: String,
    pub evidence: Vec<(String, String)>,
}

/// Reads one capture from an answer.
pub fn capture(spec: &CaptureSpec, resp: &Resp) -> Result<String, RunError> {
    capture_typed(spec, resp).map(|(s, _)| s)
}

/// A capture's text, and its JSON value when it was not a JSON string (a number, a
/// boolean, an object), so a JSON body can send it with its type.
pub fn capture_typed(spec: &CaptureSpec, resp: &Resp) -> Result<(String, Option<Value>), RunError> {
    match &spec.source {
        CaptureSource::Status => Ok((resp.status.to_string(), None)),
        CaptureSource::Header(h) => resp
            .header(h)
            .map(|s| (s.to_string(), None))
            .ok_or_else(|| RunError::NoHeader(h.to_string())),
        CaptureSource::Cookie(c) => super::cookies::cookie_value(resp, c)
            .map(|v| (v, None))
            .ok_or_else(|| RunError::NoCookie(c.to_string())),
        CaptureSource::Path(path, text) => {
            let json = resp
                .json()
                .ok_or_else(|| RunError::NotJson(text.to_string()))?;
            match path.query(&json).first() {
                Some(Value::String(s)) => Ok((s.clone(), None)),
                Some(Value::Null) => Err(RunError::Null(text.to_string())),
                Some(v) => Ok((v.to_string(), Some((*v).clone()))),
                None => Err(RunError::NoMatch(text.to_string())),
            }
        }
    }
}

/// Every way an answer misses its `expect`. Without a `status` in `expect`, `default_2xx`
/// requires a 2xx (setup steps must succeed to count).
pub fn unmet(
    expect: Option<&Expect>,
    resp: &Resp,
    lookup: &dyn Fn(&str) -> Option<String>,
    default_2xx: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    match expect.and_then(|e| e.status.as_ref()) {
        Some(s) if !s.matches(resp.status) => {
            out.push(format!("status {} is not {s}", resp.status))
        }
        None if default_2xx && !resp.is_success() => {
            out.push(format!("status {} is not 2xx", resp.status))
        }
        _ => {}
    }
    let Some(e) = expect else { return out };
    for t in &e.body_contains.0 {
        match t.render(lookup) {
            Ok(s) if !resp.body.contains(&s) => {
                out.push(format!("the body does not contain `{s}`"))
            }
            Err(m) => out.push(m),
            _ => {}
        }
    }
    for t in &e.body_excludes.0 {
        match t.render(lookup) {
            Ok(s) if resp.body.contains(&s) => out.push(format!("the body contains `{s}`")),
            Err(m) => out.push(m),
            _ => {}
        }
    }
    if !e.json.is_empty() {
        let json = resp.json();
        for (k, v) in e.json.iter() {
            let Ok(path) = serde_json_path::JsonPath::parse(&k.name) else {
                continue;
            };
            let want = match v.render(lookup) {
                Ok(w) => w,
                Err(m) => {
                    out.push(m);
                    continue;
                }
            };
            let got = json.as_ref().and_then(|j| path.query(j).first().cloned());
            match got {
                Some(g) if json_eq(&g, &want) => {}
                Some(g) => out.push(format!("`{}` is {g}, not {want}", k.name)),
                None => out.push(format!("`{}` matched nothing", k.name)),
            }
        }
    }
    out
}

/// Equality that lets `"5"` in a suite match `5` in an answer (YAML authors quote freely).
fn json_eq(got: &Value, want: &Value) -> bool {
    got == want
        || match (got, want) {
            (Value::Number(n), Value::String(s)) | (Value::String(s), Value::Number(n)) => {
                n.to_string() == *s
            }
            (Value::Bool(b), Value::String(s)) | (Value::String(s), Value::Bool(b)) => {
                b.to_string() == *s
            }
            _ => false,
        }
}

/// Sends a setup request with retries and judges it: transport errors, 5xx and unmet
/// expectations are errors; the answer is returned for captures. When retries were
/// made, the reason says how many, so "503" after four attempts reads as an outage and
/// not as a single unlucky answer.
pub async fn send_step(
    http: &Http,
    p: &super::http::Prepared,
    expect: Option<&Expect>,
    lookup: &(dyn Fn(&str) -> Option<String> + Sync),
    policy: &RetryPolicy,
) -> Result<(Resp, u32), StepError> {
    let (r, tries) = http.send_retrying(p, policy).await;
    let after = match tries {
        0 => String::new(),
        1 => " (after 1 retry)".to_string(),
        n => format!(" (after {n} retries)"),
    };
    let resp = r.map_err(|e| StepError {
        summary: format!("{}: {e}{after}", p.line()),
        evidence: if tries > 0 {
            vec![("retries".into(), tries.to_string())]
        } else {
            vec![]
        },
    })?;
    let problems = unmet(expect, &resp, lookup, true);
    if !problems.is_empty() {
        return Err(StepError {
            summary: format!(
                "{} got {}{after}: {}",
                p.line(),
                resp.status,
                problems.join("; ")
            ),
            evidence: vec![("answer".into(), show(&resp))],
        });
    }
    Ok((resp, tries))
}
