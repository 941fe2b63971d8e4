//! Cookies (run stage): reading the cookies an answer sets (`$cookie.NAME` captures, each
//! org's jar) and sending an org's cookies back as one `Cookie: name=value` header —
//! never the attributes (`HttpOnly; Path=/`) a raw `Set-Cookie` capture would carry.

use std::collections::BTreeMap;

use super::context::{AuthSpec, OrgState};
use super::http::{Prepared, Resp};

/// One `Set-Cookie` of an answer: its name, and its value unless it deletes the cookie
/// (an empty value, `Max-Age=0` or less, or an expiry in 1970).
fn parse_one(line: &str) -> Option<(String, Option<String>)> {
    let mut parts = line.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let name = name.trim();
    if name.is_empty() {
        return None;
    }
    let value = value.trim().trim_matches('"').to_string();
    let removed = value.is_empty()
        || parts.any(|a| {
            let a = a.trim().to_ascii_lowercase();
            a.strip_prefix("max-age=")
                .and_then(|n| n.trim().parse::<i64>().ok())
                .is_some_and(|n| n <= 0)
                || (a.starts_with("expires=") && a.contains("1970"))
        });
    Some((name.to_string(), (!removed).then_some(value)))
}

/// Every cookie the answer sets, in order (`None`: the cookie is deleted).
pub fn set_cookies(resp: &Resp) -> Vec<(String, Option<String>)> {
    resp.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .filter_map(|(_, v)| parse_one(v))
        .collect()
}

/// The value the answer sets for cookie `name`, if it sets one.
pub fn cookie_value(resp: &Resp, name: &str) -> Option<String> {
    set_cookies(resp)
        .into_iter()
        .rev()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v)
}

/// Keeps what the answer sets in the jar (and drops what it deletes).
pub fn update_jar(jar: &mut BTreeMap<String, String>, resp: &Resp) {
    for (name, value) in set_cookies(resp) {
        match value {
            Some(v) => jar.insert(name, v),
            None => jar.remove(&name),
        };
    }
}

/// Adds the org's cookies — its jar, overlaid with `orgs.auth.cookie` — as one `Cookie`
/// header, unless the request sets its own. A cookie whose value cannot be rendered yet
/// (before login) is left out.
pub fn add_cookies(
    p: &mut Prepared,
    auth: &AuthSpec,
    org: Option<&OrgState>,
    lookup: &dyn Fn(&str) -> Option<String>,
) {
    if p.headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    let mut all: BTreeMap<String, String> = org.map(|o| o.jar.clone()).unwrap_or_default();
    for (name, t) in &auth.cookies {
        if let Ok(v) = t.render(lookup) {
            all.insert(name.clone(), v);
        }
    }
    if let Some(h) = header(all.iter()) {
        p.headers.push(("Cookie".into(), h));
    }
}

/// `a=1; b=2`, or `None` for no cookies.
pub fn header<'a>(pairs: impl Iterator<Item = (&'a String, &'a String)>) -> Option<String> {
    let v: Vec<String> = pairs.map(|(k, v)| format!("{k}={v}")).collect();
    (!v.is_empty()).then(|| v.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_lines_give_name_and_value_only() {
        assert_eq!(
            parse_one("sid=abc123; HttpOnly; Path=/; SameSite=Lax"),
            Some(("sid".into(), Some("abc123".into())))
        );
        assert_eq!(
            parse_one("sid=; Max-Age=0; Path=/"),
            Some(("sid".into(), None))
        );
        assert_eq!(
            parse_one("sid=x; Expires=Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(("sid".into(), None))
        );
        assert_eq!(parse_one("garbage"), None);
    }
}
