//! Attacks on opaque session ids (run stage): neighbouring values of B's id, an entropy
//! estimate, and a logged-out session — each sent to `orgs.identity`, which tells
//! whether a session id opens a session. Session ids are secrets: every one tried is
//! registered with the redactor before it is sent.

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::checks::{CheckPlan, Ctx, Sender, Variant, all, interrupted};
use super::cookies::cookie_value;
use super::http::Prepared;
use super::verdict::{Decision, show, twin_of};
use crate::outcome::CheckResult;
use crate::plan::SessionAttack;
use crate::suite::model::{Identity, Request, Suite};

/// Estimated bits below which a session id is guessable (OWASP asks for at least 64).
pub const MIN_BITS: f64 = 64.0;

/// What the session attacks need from the suite.
#[derive(Clone, Debug)]
pub struct SessionCfg {
    pub cookie: String,
    pub identity: Option<Request>,
    pub login: Option<Request>,
    pub logout: Option<Request>,
    pub neighbours: u32,
}

impl SessionCfg {
    /// From `orgs.session` (with `orgs.identity` and the login provision step).
    pub fn of(suite: &Suite) -> Option<SessionCfg> {
        let o = suite.orgs.as_ref()?;
        let s = o.session.as_ref()?;
        let login = s.login.as_ref().and_then(|l| {
            o.provision
                .iter()
                .find(|p| p.name.as_deref() == Some(l.value.as_str()))
                .map(|p| p.request.value.clone())
        });
        Some(SessionCfg {
            cookie: s.cookie.value.clone(),
            identity: o.identity.as_ref().map(|i| Request::clone(&i.request)),
            login,
            logout: s.logout.as_ref().map(|l| l.value.clone()),
            neighbours: s
                .neighbours
                .as_ref()
                .map(|n| n.value)
                .unwrap_or(3)
                .clamp(1, 50),
        })
    }
}

/// The estimated entropy of an id in bits: its length times the bits of the smallest
/// usual alphabet its characters fit (digits, hex, letters, alphanumerics, base64).
pub fn entropy_bits(id: &str) -> f64 {
    let all = |f: fn(char) -> bool| id.chars().all(f);
    let alphabet: f64 = if all(|c| c.is_ascii_digit()) {
        10.0
    } else if all(|c| c.is_ascii_hexdigit()) {
        16.0
    } else if all(|c| c.is_ascii_alphabetic()) {
        52.0
    } else if all(|c| c.is_ascii_alphanumeric()) {
        62.0
    } else if all(|c| c.is_ascii_alphanumeric() || "-_+/=".contains(c)) {
        64.0
    } else {
        95.0
    };
    id.chars().count() as f64 * alphabet.log2()
}

/// The ids next to `id` (±1..±n on its trailing number, keeping its width); empty when
/// it does not end in digits.
pub fn neighbours(id: &str, n: u32) -> Vec<(i64, String)> {
    let digits = id.len() - id.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits == 0 || digits > 18 {
        return vec![];
    }
    let (stem, num) = id.split_at(id.len() - digits);
    let Ok(v) = num.parse::<i64>() else {
        return vec![];
    };
    let width = if num.starts_with('0') { digits } else { 0 };
    let mut out = Vec::new();
    for d in 1..=i64::from(n) {
        for off in [-d, d] {
            let x = v + off;
            if x >= 0 {
                out.push((off, format!("{stem}{x:0width$}")));
            }
        }
    }
    out
}

/// The identity request sent with only cookie `name=value`.
fn with_session(ctx: &Ctx, req: &Request, cookie: &str, value: &str) -> Result<Prepared, Decision> {
    ctx.redactor.add("session id", value);
    let mut p = ctx.prepare(req, Identity::Anon, None, None)?;
    p.set_header("Cookie", &format!("{cookie}={value}"));
    Ok(p)
}

/// Runs the session attacks.
pub async fn run(ctx: &Ctx, plan: &CheckPlan) -> Vec<CheckResult> {
    let start = Instant::now();
    let Some(cfg) = ctx.session.clone() else {
        return all(ctx, plan, Decision::error("no `orgs.session`"), start);
    };
    let b_sid = ctx.values.b.jar.get(&cfg.cookie).cloned().or_else(|| {
        let lookup = ctx.values.lookup(Some(Identity::B), None, None);
        ctx.auth
            .cookies
            .iter()
            .find(|(n, _)| *n == cfg.cookie)
            .and_then(|(_, t)| t.render(&lookup).ok())
    });
    let Some(b_sid) = b_sid else {
        let d = Decision::error(format!(
            "B has no `{}` cookie: capture it when logging in (`$cookie.{}`)",
            cfg.cookie, cfg.cookie
        ));
        return all(ctx, plan, d, start);
    };
    let mut out = Vec::new();
    for v in &plan.variants {
        let vstart = Instant::now();
        let s = Sender::new(ctx);
        let d = if let Some(d) = interrupted(ctx) {
            d
        } else {
            match v {
                Variant::Session(SessionAttack::Entropy) => entropy(&b_sid),
                Variant::Session(a) => match &cfg.identity {
                    None => Decision::skip("needs `orgs.identity` to tell whether a session opens"),
                    Some(id) => {
                        let r = match a {
                            SessionAttack::Neighbours => {
                                neighbours_attack(ctx, &s, &cfg, id, &b_sid).await
                            }
                            _ => logout_attack(ctx, &s, &cfg, id).await,
                        };
                        r.unwrap_or_else(|d| d)
                    }
                },
                _ => Decision::skip("not applicable"),
            }
        };
        out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
    }
    out
}

fn entropy(sid: &str) -> Decision {
    let bits = entropy_bits(sid);
    if bits < MIN_BITS {
        Decision::fail(format!(
            "B's session id carries about {bits:.0} bits ({} characters): below {MIN_BITS:.0} bits a session id can be guessed",
            sid.chars().count()
        ))
    } else {
        Decision::pass(format!("B's session id carries about {bits:.0} bits"))
    }
}

/// Whether `value` opens a session: a 2xx from the identity endpoint.
async fn opens(
    ctx: &Ctx,
    s: &Sender<'_>,
    cfg: &SessionCfg,
    id: &Request,
    value: &str,
    what: &str,
) -> Result<bool, Decision> {
    let p = with_session(ctx, id, &cfg.cookie, value)?;
    let r = s.send(&p, what).await?;
    if r.is_server_error() {
        return Err(Decision::error(format!("{what} got {}", r.status)).with("got", show(&r)));
    }
    Ok(r.is_success())
}

/// The identity endpoint must open B's session and refuse a never-issued one, or it
/// cannot tell.
async fn controls(
    ctx: &Ctx,
    s: &Sender<'_>,
    cfg: &SessionCfg,
    id: &Request,
    sid: &str,
) -> Result<(), Decision> {
    if !opens(ctx, s, cfg, id, sid, "B's own session (control)").await? {
        return Err(Decision::error(
            "orgs.identity does not answer B's own session with 2xx: it cannot tell whether a session opens",
        ));
    }
    // A short serial's twin could be a live session: a far-off number cannot.
    let never = super::scope::integer_twin(sid).unwrap_or_else(|| twin_of(sid));
    if opens(ctx, s, cfg, id, &never, "a never-issued session (control)").await? {
        return Err(Decision::error(
            "orgs.identity answers a never-issued session id with 2xx: it cannot tell whether a session opens",
        ));
    }
    Ok(())
}

async fn neighbours_attack(
    ctx: &Ctx,
    s: &Sender<'_>,
    cfg: &SessionCfg,
    id: &Request,
    sid: &str,
) -> Result<Decision, Decision> {
    let near = neighbours(sid, cfg.neighbours);
    if near.is_empty() {
        return Ok(Decision::pass(
            "B's session id does not end in a number: it has no neighbours to try",
        ));
    }
    controls(ctx, s, cfg, id, sid).await?;
    for (off, cand) in &near {
        if opens(ctx, s, cfg, id, cand, "a neighbouring session id").await? {
            return Ok(Decision::fail(format!(
                "B's session id {off:+} opens another session: session ids are guessable"
            )));
        }
    }
    Ok(Decision::pass(format!(
        "none of the {} neighbouring session ids opens a session",
        near.len()
    )))
}

async fn logout_attack(
    ctx: &Ctx,
    s: &Sender<'_>,
    cfg: &SessionCfg,
    id: &Request,
) -> Result<Decision, Decision> {
    let (Some(login), Some(logout)) = (&cfg.login, &cfg.logout) else {
        return Ok(Decision::skip("needs `orgs.session.login` and `logout`"));
    };
    let p = ctx
        .preparer()
        .prepare(login, Identity::Anon, Some(Identity::B), None, None)
        .map_err(|e| Decision::error(format!("cannot build the login: {e}")))?;
    let r = s.send(&p, "a fresh login as B").await?;
    let Some(fresh) = cookie_value(&r, &cfg.cookie) else {
        return Err(Decision::error(format!(
            "a fresh login as B got {} and set no `{}` cookie",
            r.status, cfg.cookie
        )));
    };
    ctx.redactor.add("session id", &fresh);
    controls(ctx, s, cfg, id, &fresh).await?;
    let out = with_session(ctx, logout, &cfg.cookie, &fresh)?;
    let r = s.send(&out, "logout").await?;
    if !r.is_success() {
        return Err(
            Decision::error(format!("logout got {}, not 2xx", r.status)).with("got", show(&r))
        );
    }
    if opens(ctx, s, cfg, id, &fresh, "the logged-out session").await? {
        Ok(Decision::fail(
            "a session still opens after logout: logout does not revoke the session",
        ))
    } else {
        Ok(Decision::pass("the logged-out session is refused"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_estimates_separate_serials_short_hex_and_random_ids() {
        assert!(entropy_bits("42") < MIN_BITS);
        assert!(entropy_bits("deadbeef") < MIN_BITS);
        assert!(entropy_bits(&"ab12".repeat(16)) >= MIN_BITS);
    }

    #[test]
    fn neighbours_keep_the_stem_and_width() {
        let n = neighbours("s-0041", 2);
        let vals: Vec<&str> = n.iter().map(|(_, v)| v.as_str()).collect();
        assert_eq!(vals, ["s-0040", "s-0042", "s-0039", "s-0043"]);
        assert!(neighbours("abc", 3).is_empty());
        assert_eq!(neighbours("1", 2).len(), 3);
    }
}
