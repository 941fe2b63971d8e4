//! Path scopes (run stage): `{{own.NAME}}` — the caller's own capture, A's in A's
//! control and B's in B's request — and the values that make up A's scope (its org id
//! and every `orgs.scope` capture), which the cross-scope and tenant-override variants
//! offer to B.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::Value;

use super::checks::{CheckPlan, Ctx, Sender, Variant, control_2xx};
use super::context::Values;
use super::http::Body;
use super::verdict::{Decision, show};
use crate::outcome::CheckResult;
use crate::suite::model::{Identity, Request, Suite};

/// A lookup where `own.NAME` is `a.NAME` or `b.NAME` for `own` (unknown for anon).
pub fn own_lookup<'a>(
    inner: &'a dyn Fn(&str) -> Option<String>,
    own: Option<Identity>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |name: &str| match name.strip_prefix("own.") {
        Some(n) => match own {
            Some(Identity::A) => inner(&format!("a.{n}")),
            Some(Identity::B) => inner(&format!("b.{n}")),
            _ => None,
        },
        None => inner(name),
    }
}

/// Whether a request names the caller's own scope (`{{own.NAME}}`): its check then
/// gets the cross-scope variants.
pub fn uses_own(r: &Request) -> bool {
    let mut tpls = vec![&r.url];
    tpls.extend(r.headers.iter().map(|(_, t)| t));
    tpls.extend(r.query.iter().map(|(_, t)| t));
    if let Some(j) = &r.json {
        tpls.extend(j.templates());
    }
    tpls.extend(r.body.as_deref());
    tpls.iter().any(|t| t.vars().any(|v| v.starts_with("own.")))
}

/// An org's scope values: each `orgs.scope` entry rendered with the org's captures, as
/// (name, value).
pub fn scope_values(suite: &Suite, values: &Values, org: Identity) -> Vec<(String, String)> {
    let Some(orgs) = &suite.orgs else {
        return vec![];
    };
    let lookup = values.lookup(Some(org), None, None);
    orgs.scope
        .iter()
        .filter_map(|(k, t)| t.render(&lookup).ok().map(|v| (k.name.clone(), v)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
}

/// The values a tenant-override variant offers, as (what, value): A's org id, then each
/// of A's scope values that differs from it.
pub fn override_values(a_org: Option<&str>, a_scope: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = a_org
        .map(|o| vec![("org id".to_string(), o.to_string())])
        .unwrap_or_default();
    for (n, v) in a_scope {
        if !out.iter().any(|(_, x)| x == v) {
            out.push((format!("scope `{n}`"), v.clone()));
        }
    }
    out
}

/// A never-issued twin for a short integer id: a nine-digit number starting with 9, far
/// above the ids a test target hands out, so that it cannot be another row's (a random
/// number of the same length might be B's own). `None` for other shapes.
pub fn integer_twin(v: &str) -> Option<String> {
    if v.is_empty() || v.len() > 8 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut b = [0u8; 4];
    crate::random::fill(&mut b).expect("system random source");
    let n = u32::from_le_bytes(b) % 100_000_000;
    Some(format!("9{n:08}"))
}

/// The value a mass-assignment body field names: a scope value for a `…slug` field (the
/// scope entry of that name, else the first), A's org id otherwise; a number stays a
/// JSON number.
fn field_value(field: &str, a_org: Option<&str>, a_scope: &[(String, String)]) -> Option<Value> {
    let v = if field.to_ascii_lowercase().contains("slug") {
        a_scope
            .iter()
            .find(|(n, _)| field.contains(n.as_str()))
            .or_else(|| a_scope.first())
            .map(|(_, v)| v.as_str())
            .or(a_org)
    } else {
        a_org.or_else(|| a_scope.first().map(|(_, v)| v.as_str()))
    }?;
    Some(match v.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::from(v),
    })
}

/// Text values of a JSON body of 8 or more characters: what identifies B's new row.
fn row_markers(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) if s.chars().count() >= 8 => out.push(s.clone()),
        Value::Object(o) => o.values().for_each(|x| row_markers(x, out)),
        Value::Array(a) => a.iter().for_each(|x| row_markers(x, out)),
        _ => {}
    }
}

/// The mass-assignment check: B creates in its own scope while naming A's org (id and
/// scope values) in the body; A's list, re-read as A, must not gain the row, and B's
/// own list must show it (else nothing can be concluded).
pub async fn mass_assign(
    ctx: &Ctx,
    plan: &CheckPlan,
    create: &Request,
    list: &Request,
    fields: &[String],
) -> Vec<CheckResult> {
    let start = Instant::now();
    let s = Sender::new(ctx);
    let d = mass_assign_decision(ctx, &s, create, list, fields)
        .await
        .unwrap_or_else(|d| d);
    let retries = s.retries.load(Ordering::Relaxed);
    vec![ctx.result(plan, &Variant::Base, d, start, retries)]
}

async fn mass_assign_decision(
    ctx: &Ctx,
    s: &Sender<'_>,
    create: &Request,
    list: &Request,
    fields: &[String],
) -> Result<Decision, Decision> {
    let a_list = ctx.prepare(list, Identity::A, None, None)?;
    let b_list = ctx.prepare(list, Identity::B, None, None)?;
    let a0 = control_2xx(ctx, list, "A's list does not answer A").await?;
    let mut p = ctx.prepare(create, Identity::B, None, None)?;
    let mut marks = Vec::new();
    let graphql = p.graphql.clone();
    match &mut p.body {
        Some(Body::Json(Value::Object(o))) if graphql.is_some() => {
            row_markers(o.get("variables").unwrap_or(&Value::Null), &mut marks);
            for f in fields {
                if let Some(v) = field_value(f, ctx.a_org.as_deref(), &ctx.a_scope) {
                    super::graphql::offer(&mut p, f, v);
                }
            }
        }
        Some(Body::Json(Value::Object(o))) => {
            row_markers(&Value::Object(o.clone()), &mut marks);
            for f in fields {
                if let Some(v) = field_value(f, ctx.a_org.as_deref(), &ctx.a_scope) {
                    o.insert(f.clone(), v);
                }
            }
        }
        _ => {
            return Err(Decision::error(
                "`create` needs a JSON object body to name A's org in",
            ));
        }
    }
    marks.retain(|m| !a0.body.contains(m.as_str()));
    if marks.is_empty() {
        return Err(Decision::error(
            "`create`'s body has no text of 8 or more characters that A's list lacks (add `{{run_id}}` to a name), so B's row cannot be recognised",
        ));
    }
    let rc = s.send(&p, "B's create").await?;
    if rc.is_server_error() {
        return Err(Decision::error(format!("B's create got {}", rc.status)).with("got", show(&rc)));
    }
    let a1 = s.send(&a_list, "A's list (after)").await?;
    if !a1.is_success() {
        return Err(Decision::error(format!(
            "A's list got {} after B's create",
            a1.status
        )));
    }
    if let Some(m) = marks.iter().find(|m| a1.body.contains(m.as_str())) {
        return Ok(Decision::fail(format!(
            "B created a row in its own scope naming A's org in the body ({}), and it appeared in A's list: the server takes the tenant from the body",
            fields.join(", ")
        ))
        .with("request", p.line())
        .with("new in A's list", m.clone()));
    }
    let refused = match &graphql {
        Some(field) => super::graphql::refused(&rc, field),
        None => !rc.is_success(),
    };
    if refused {
        let how = match &graphql {
            Some(field) => match super::graphql::answer(&rc, field) {
                Ok(super::graphql::Answer::Null { errors }) if !errors.is_empty() => {
                    format!("{}: {}", rc.status, errors.join("; "))
                }
                _ => format!(
                    "{}: {} is null",
                    rc.status,
                    super::graphql::field_path(&rc, field)
                ),
            },
            None => rc.status.to_string(),
        };
        return Ok(Decision::pass(format!(
            "B's create naming A's org was refused ({how}), and A's list did not change"
        )));
    }
    let b1 = s.send(&b_list, "B's list (after)").await?;
    if marks.iter().any(|m| b1.body.contains(m.as_str())) {
        Ok(Decision::pass("B's row landed in B's org only"))
    } else {
        Err(Decision::error(
            "B's create succeeded but its row is in neither A's list nor B's: the list cannot show where it went",
        )
        .with("B got", show(&b1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_names_follow_the_caller() {
        let inner = |n: &str| Some(format!("<{n}>"));
        let a = own_lookup(&inner, Some(Identity::A));
        assert_eq!(a("own.slug").as_deref(), Some("<a.slug>"));
        assert_eq!(a("b.slug").as_deref(), Some("<b.slug>"));
        let anon = own_lookup(&inner, None);
        assert_eq!(anon("own.slug"), None);
    }

    #[test]
    fn integer_twins_are_far_from_issued_ids() {
        let t = integer_twin("101").unwrap();
        assert_eq!(t.len(), 9);
        assert!(t.starts_with('9'));
        assert_eq!(integer_twin("abc"), None);
        assert_eq!(integer_twin("1234567890"), None);
    }

    #[test]
    fn override_values_hold_the_org_id_and_each_distinct_scope_value() {
        let v = override_values(
            Some("1"),
            &[("slug".into(), "tg-a".into()), ("id".into(), "1".into())],
        );
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].1, "tg-a");
    }

    #[test]
    fn short_ids_are_matched_as_whole_json_values() {
        let body = r#"{"user":{"id":10002},"orgs":[{"id":2}]}"#;
        let mentions = crate::run::verdict::holds_value;
        assert!(!mentions(body, "1"));
        assert!(mentions(body, "2"));
        // A short id in text is never evidence: only a whole JSON value is.
        assert!(!mentions("plain 1 text", "1"));
    }
}
