//! GraphQL answers (run stage): a `graphql:` request is judged on one result field.
//! A GraphQL server answers `200` whether it found the row or not, so the status says
//! little: `{"data":{"projectById":null}}` is "not found", `{"errors":[…],
//! "data":{"updateProjectById":null}}` is "refused". These pure rules read an answer
//! that way; the twin comparison, the markers and the before/after diff stay those of
//! [`super::verdict`].
//!
//! Fail closed: a 5xx, a transport error, a redirect, or an answer that is not a
//! GraphQL response (not JSON, neither `data` nor `errors`) is never read as refused,
//! and a 200 whose field is `null` is never read as accepted.

use serde_json::Value;

use super::http::{Body, Prepared, Resp};
use super::verdict::{Decision, NotFoundInput, differences, mask, observed, show, unjudgeable};

/// What a 2xx GraphQL answer says about the field a check is judged on.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The field holds a value (not `null`) and there are no errors.
    Data,
    /// The field is `null` or absent, or the answer holds errors (each as
    /// `errors[i].path: message`).
    Null { errors: Vec<String> },
}

/// The path of the judged field, for evidence: `data.projectById`.
pub fn field_path(r: &Resp, field: &str) -> String {
    if !field.is_empty() {
        return format!("data.{field}");
    }
    let only = r
        .json()
        .and_then(|v| v.get("data").and_then(only_key))
        .unwrap_or_else(|| "<field>".into());
    format!("data.{only}")
}

fn only_key(data: &Value) -> Option<String> {
    match data {
        Value::Object(o) if o.len() == 1 => o.keys().next().cloned(),
        _ => None,
    }
}

/// Reads a GraphQL answer (any status) on `field` (dotted, under `data`; `""`: the only
/// field of `data`). `Err` says why it is not a GraphQL answer at all.
pub fn answer(r: &Resp, field: &str) -> Result<Answer, String> {
    let Some(v) = r.json() else {
        return Err("the answer is not JSON".into());
    };
    let Value::Object(o) = &v else {
        return Err("the answer is not a JSON object".into());
    };
    let (data, errors) = (o.get("data"), o.get("errors"));
    if data.is_none() && errors.is_none() {
        return Err("the answer has neither `data` nor `errors`".into());
    }
    let errors = match errors {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().enumerate().map(|(i, e)| describe(i, e)).collect(),
        Some(_) => return Err("`errors` is not a list".into()),
    };
    let value = match data {
        None | Some(Value::Null) => None,
        Some(d) if field.is_empty() => match d {
            Value::Object(m) if m.len() == 1 => m.values().next(),
            Value::Object(m) if m.is_empty() => None,
            Value::Object(_) => {
                return Err(
                    "`data` has several fields: name the judged one in `graphql.field`".into(),
                );
            }
            _ => return Err("`data` is not an object".into()),
        },
        Some(d) => field.split('.').try_fold(d, |v, k| v.get(k)),
    };
    Ok(match value {
        Some(v) if !v.is_null() && errors.is_empty() => Answer::Data,
        _ => Answer::Null { errors },
    })
}

/// One entry of `errors` as `errors[0].path updateBrandById: message`.
fn describe(i: usize, e: &Value) -> String {
    let msg = e.get("message").and_then(Value::as_str).unwrap_or("");
    let path = e
        .get("path")
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .map(|s| match s {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".")
        })
        .filter(|p| !p.is_empty());
    match path {
        Some(p) => format!("errors[{i}].path {p}: {msg}"),
        None => format!("errors[{i}]: {msg}"),
    }
}

/// Why a 2xx answer that must carry data (A's control, a list, a verify read) does not,
/// or `None` when it does.
pub fn data_problem(r: &Resp, field: &str) -> Option<String> {
    if !r.is_success() {
        return Some(format!("got {}, not 2xx", r.status));
    }
    match answer(r, field) {
        Err(why) => Some(format!("not a GraphQL answer: {why}")),
        Ok(Answer::Data) => None,
        Ok(Answer::Null { errors }) if errors.is_empty() => {
            Some(format!("{} is null", field_path(r, field)))
        }
        Ok(Answer::Null { errors }) => Some(format!(
            "{} is null with {}",
            field_path(r, field),
            errors.join("; ")
        )),
    }
}

/// Whether a write's answer says it was accepted: a 2xx whose field holds a value and
/// which has no errors. A `null` field is never "accepted".
pub fn accepted(r: &Resp, field: &str) -> bool {
    r.is_success() && answer(r, field) == Ok(Answer::Data)
}

/// Whether an answer refused the operation: a 4xx, or a 2xx GraphQL answer whose field
/// is null or which holds errors.
pub fn refused(r: &Resp, field: &str) -> bool {
    (400..500).contains(&r.status)
        || (r.is_success() && matches!(answer(r, field), Ok(Answer::Null { .. })))
}

/// The read rule for GraphQL: B's answer for A's id must be the field `null` (or an
/// error), indistinguishable from the answer for a never-issued id.
pub fn read_rule(i: &NotFoundInput, field: &str) -> Decision {
    let NotFoundInput {
        b,
        twin,
        twin_again,
        ids,
        markers_in_b,
        oracle,
        ..
    } = *i;
    let path = field_path(twin, field);
    let evidence = |d: Decision| {
        let d = d
            .with("B got (A's id)", show(b))
            .with("B got (never-issued id)", show(twin));
        match answer(b, field) {
            Ok(Answer::Null { errors }) if !errors.is_empty() => {
                d.with("errors (A's id)", errors.join("\n"))
            }
            _ => d,
        }
    };
    if b.is_server_error() || twin.is_server_error() {
        let who = if b.is_server_error() { b } else { twin };
        return evidence(Decision::error(format!(
            "server error {}: the answer cannot be judged",
            who.status
        )));
    }
    if !markers_in_b.is_empty() {
        return evidence(Decision::fail(format!(
            "B got {} holding A's data ({})",
            b.status,
            markers_in_b.join(", ")
        )));
    }
    let never = |_: u16| false;
    if let Some(why) = unjudgeable(b, never).or_else(|| unjudgeable(twin, never)) {
        return evidence(Decision::error(format!(
            "{why}: the answer cannot be judged"
        )));
    }
    // The twin must itself be "not found": a 2xx GraphQL answer whose field is null.
    let twin_answer = if twin.is_success() {
        answer(twin, field)
    } else {
        Err(format!("got {}, not 2xx", twin.status))
    };
    match twin_answer {
        Err(why) => {
            return evidence(Decision::error(format!(
                "B's operation for a never-issued id: {why}: B's identity or the operation is broken, so this check cannot tell anything"
            )));
        }
        Ok(Answer::Data) => {
            return evidence(Decision::error(format!(
                "B's operation for a never-issued id got a value in {path}: the field does not read the id, so this check cannot tell anything"
            )));
        }
        Ok(Answer::Null { .. }) => {}
    }
    if b.is_success() {
        match answer(b, field) {
            Err(why) => {
                return evidence(Decision::error(format!(
                    "B's answer for A's id is not a GraphQL answer ({why}): it cannot be judged"
                )));
            }
            Ok(Answer::Data) => {
                return evidence(Decision::fail(format!(
                    "B got a value in {path} for A's id; a never-issued id gets null"
                )));
            }
            Ok(Answer::Null { .. }) => {}
        }
    }
    if oracle || b.status != twin.status {
        let stable = mask(&twin.body, ids) == mask(&twin_again.body, ids);
        let mut diffs = differences(b, twin, ids, stable);
        if diffs.iter().any(|d| d == "body") {
            let lines = super::verdict::json_diff(
                &mask(&twin.body, ids),
                &mask(&b.body, ids),
                &Default::default(),
            );
            if !lines.is_empty() {
                diffs.retain(|d| d != "body");
                diffs.push(format!("never-issued → A's id: {}", lines.join("; ")));
            }
        }
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
        return with_errors(
            Decision::pass(format!(
                "{path} is null for A's id, same as for a never-issued id{note}"
            ))
            .with("observed", observed(b)),
            b,
            field,
        );
    }
    with_errors(
        Decision::pass(format!("{path} is null for A's id")).with("observed", observed(b)),
        b,
        field,
    )
}

/// The answer's errors (`errors[0].path updateBrandById: …`) as evidence, when it has any.
fn with_errors(d: Decision, r: &Resp, field: &str) -> Decision {
    match answer(r, field) {
        Ok(Answer::Null { errors }) if !errors.is_empty() => d.with("errors", errors.join("\n")),
        _ => d,
    }
}

/// Offers `value` under `name` in a GraphQL request: in `variables` and in every input
/// object inside them (`variables.input`, `variables.input.patch`), never at the top
/// level of the body next to `query`, where a server ignores it. `false` when `p` is
/// not a GraphQL request.
pub fn offer(p: &mut Prepared, name: &str, value: Value) -> bool {
    if p.graphql.is_none() {
        return false;
    }
    let Some(Body::Json(Value::Object(body))) = &mut p.body else {
        return false;
    };
    let vars = body
        .entry("variables")
        .or_insert_with(|| Value::Object(Default::default()));
    if !vars.is_object() {
        *vars = Value::Object(Default::default());
    }
    fn walk(v: &mut Value, name: &str, value: &Value) {
        match v {
            Value::Object(o) => {
                for x in o.values_mut() {
                    walk(x, name, value);
                }
                o.insert(name.to_string(), value.clone());
            }
            Value::Array(a) => a.iter_mut().for_each(|x| walk(x, name, value)),
            _ => {}
        }
    }
    walk(vars, name, &value);
    true
}

#[cfg(test)]
mod tests {
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

    const NULL: &str = r#"{"data":{"brandById":null}}"#;

    fn read(b: &Resp, twin: &Resp, markers: &[String]) -> Decision {
        read_rule(
            &NotFoundInput {
                b,
                twin,
                twin_again: twin,
                not_found: 404,
                ids: &[],
                markers_in_b: markers,
                oracle: true,
            },
            "",
        )
    }

    #[test]
    fn answers_are_read_on_their_field() {
        assert_eq!(
            answer(&resp(200, NULL), ""),
            Ok(Answer::Null { errors: vec![] })
        );
        assert_eq!(
            answer(&resp(200, r#"{"data":{"brandById":{"id":"x"}}}"#), ""),
            Ok(Answer::Data)
        );
        let e = r#"{"errors":[{"message":"No values were updated","path":["updateBrandById"]}],"data":{"updateBrandById":null}}"#;
        assert_eq!(
            answer(&resp(200, e), "updateBrandById"),
            Ok(Answer::Null {
                errors: vec!["errors[0].path updateBrandById: No values were updated".into()]
            })
        );
        assert_eq!(
            answer(&resp(200, r#"{"data":{"a":{"nodes":[]}}}"#), "a.nodes"),
            Ok(Answer::Data)
        );
        for bad in ["<html>", "[]", r#"{"ok":true}"#, r#"{"errors":"x"}"#] {
            assert!(answer(&resp(200, bad), "").is_err(), "{bad}");
        }
        assert!(!accepted(&resp(200, NULL), ""), "null is never accepted");
        assert!(refused(&resp(200, e), "updateBrandById"));
        assert!(!refused(&resp(502, "bad gateway"), ""));
    }

    #[test]
    fn a_null_field_like_the_twins_passes_and_a_value_fails() {
        let d = read(&resp(200, NULL), &resp(200, NULL), &[]);
        assert_eq!(d.verdict, crate::outcome::Verdict::Pass, "{d:?}");
        assert!(
            d.summary.contains("data.brandById is null"),
            "{}",
            d.summary
        );
        let d = read(
            &resp(200, r#"{"data":{"brandById":{"id":"x"}}}"#),
            &resp(200, NULL),
            &[],
        );
        assert_eq!(d.verdict, crate::outcome::Verdict::Fail, "{d:?}");
        assert!(d.summary.contains("data.brandById"), "{}", d.summary);
    }

    #[test]
    fn an_error_only_for_as_id_is_an_oracle_named_by_its_path() {
        let e = r#"{"errors":[{"message":"permission denied for brand","path":["brandById"]}],"data":{"brandById":null}}"#;
        let d = read(&resp(200, e), &resp(200, NULL), &[]);
        assert_eq!(d.verdict, crate::outcome::Verdict::Fail, "{d:?}");
        assert!(d.summary.contains("$.errors"), "{}", d.summary);
        assert!(
            d.evidence
                .iter()
                .any(|e| e.text.contains("errors[0].path brandById")),
            "{d:?}"
        );
    }

    #[test]
    fn faults_and_broken_twins_are_errors_never_verdicts() {
        use crate::outcome::Verdict::Error;
        for (b, t) in [
            (resp(500, "{}"), resp(200, NULL)),
            (resp(200, NULL), resp(503, "{}")),
            (resp(200, "<html>"), resp(200, NULL)),
            (resp(200, NULL), resp(200, "not json")),
            (
                resp(200, NULL),
                resp(200, r#"{"data":{"brandById":{"id":"y"}}}"#),
            ),
            (
                resp(200, NULL),
                resp(403, r#"{"errors":[{"message":"bad jwt"}]}"#),
            ),
            (resp(302, ""), resp(200, NULL)),
        ] {
            let d = read(&b, &t, &[]);
            assert_eq!(d.verdict, Error, "{} / {}: {d:?}", b.body, t.body);
        }
        let d = read(&resp(200, NULL), &resp(200, NULL), &["Acme-secret".into()]);
        assert_eq!(d.verdict, crate::outcome::Verdict::Fail);
    }

    #[test]
    fn a_mutation_is_judged_on_its_field_and_on_as_re_read() {
        use crate::outcome::Verdict;
        use crate::run::verdict::write_rule_with;
        let refused = resp(
            200,
            r#"{"errors":[{"message":"No values were updated","path":["updateBrandById"]}],"data":{"updateBrandById":null}}"#,
        );
        let done = resp(200, r#"{"data":{"updateBrandById":{"brand":{"id":"x"}}}}"#);
        let quiet = resp(200, r#"{"data":{"updateBrandById":null}}"#);
        let before = resp(200, r#"{"data":{"brandById":{"name":"Acme"}}}"#);
        let after = resp(200, r#"{"data":{"brandById":{"name":"renamed"}}}"#);
        let judge = |b: &Resp, after: &Resp| {
            let nf = NotFoundInput {
                b,
                twin: &refused,
                twin_again: &refused,
                not_found: 404,
                ids: &[],
                markers_in_b: &[],
                oracle: true,
            };
            let accepted = accepted(b, "updateBrandById").then(|| "accepted".to_string());
            write_rule_with(&nf, &before, after, &Default::default(), accepted, &|nf| {
                read_rule(nf, "updateBrandById")
            })
        };
        let d = judge(&refused, &before);
        assert_eq!(d.verdict, Verdict::Pass, "{d:?}");
        assert!(d.summary.contains("A's data unchanged"), "{}", d.summary);
        assert_eq!(judge(&done, &before).verdict, Verdict::Fail);
        // A 200 with a null field is no acceptance, but A's changed data is a failure
        // named by its path; unchanged, it differs from the twin's errors: an oracle.
        let d = judge(&quiet, &after);
        assert_eq!(d.verdict, Verdict::Fail, "{d:?}");
        assert!(
            d.evidence
                .iter()
                .any(|e| e.text.contains("$.data.brandById.name")),
            "{d:?}"
        );
        assert_eq!(judge(&quiet, &before).verdict, Verdict::Fail);
        assert_eq!(judge(&resp(502, ""), &before).verdict, Verdict::Error);
    }

    #[test]
    fn offers_go_inside_variables_and_input_objects() {
        let mut p = Prepared {
            method: "POST".into(),
            url: "/graphql".into(),
            headers: vec![],
            query: vec![],
            body: Some(Body::Json(serde_json::json!({
                "query": "mutation($input: X!) { f(input: $input) { id } }",
                "variables": { "input": { "id": "1", "patch": { "name": "n" } } }
            }))),
            graphql: Some(String::new()),
        };
        assert!(offer(&mut p, "org_id", Value::from("A")));
        let Some(Body::Json(v)) = &p.body else {
            panic!()
        };
        assert!(v.get("org_id").is_none(), "not next to `query`: {v}");
        assert_eq!(v["variables"]["org_id"], "A");
        assert_eq!(v["variables"]["input"]["org_id"], "A");
        assert_eq!(v["variables"]["input"]["patch"]["org_id"], "A");
        let mut rest = Prepared {
            graphql: None,
            ..p.clone()
        };
        assert!(!offer(&mut rest, "org_id", Value::from("A")));
    }
}
