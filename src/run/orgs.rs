//! The setup and teardown stages (run stage): build the HTTP client, provision (or
//! mint) org A and org B, seed A — giving a [`Tenants`] value that says what exists on
//! the target — and, at the very end, tear that value down.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::context::{AuthSpec, OrgState, Preparer, Values};
use super::emit::{Emitter, setup_error};
use super::error::RunError;
use super::http::{self, Http};
use super::options::{Cancel, Options};
use super::{jwt, setup, verdict};
use crate::outcome::Created;
use crate::redact::Redactor;
use crate::suite::model::{Identity, MarkerSpec, Step, Suite, Target, Toggle};
use crate::suite::template::{Part, Tpl, is_secret_name};

/// What setup made on the target, and how to reach it again (the checks and teardown
/// use the same client: the same trust, the same default headers).
pub(crate) struct Tenants {
    pub http: Http,
    pub auth: AuthSpec,
    pub values: Values,
    /// The orgs whose provisioning sent something (they are torn down).
    pub provisioned: Vec<Identity>,
    /// What was created, per org, for the report.
    pub created: Vec<Created>,
    /// The capture names of each `created` item (same order): what a teardown step must
    /// use to count as addressing it.
    pub created_caps: Vec<BTreeSet<String>>,
    pub a_org: Option<String>,
    pub b_org: Option<String>,
    /// Provision and seed all succeeded: the checks can run.
    pub ready: bool,
}

impl Tenants {
    /// Both org ids, when setup completed (the database probe needs both).
    pub fn both_orgs(&self) -> Option<(String, String)> {
        match (&self.a_org, &self.b_org) {
            (Some(a), Some(b)) if self.ready => Some((a.clone(), b.clone())),
            _ => None,
        }
    }

    /// A's markers (what B must never see), and notices for markers dropped because
    /// they would prove nothing.
    pub fn markers(&self, suite: &Suite) -> (Vec<String>, Vec<String>) {
        markers_of(suite, &self.values)
    }
}

/// Provisions both orgs and seeds A. `None` when the suite sends nothing (no target or
/// no orgs) or the client cannot be built (reported as an error).
#[allow(clippy::too_many_arguments)]
pub(crate) async fn setup(
    suite: &Suite,
    opts: &Options,
    redactor: &Redactor,
    cancel: &Cancel,
    run_id: &str,
    signer: Option<&jwt::Signer>,
    origins: &[String],
    em: &mut Emitter<'_>,
) -> Option<Tenants> {
    let (target, orgs) = (suite.target.as_ref()?, suite.orgs.as_ref()?);
    let mut values = Values {
        run_id: run_id.to_string(),
        ..Values::default()
    };
    let mut http = client(suite, target, opts, redactor, &mut values, em)?;
    http.allow_only(origins.to_vec());
    let mut auth = auth_spec(orgs.auth.as_ref());
    auth.member = orgs
        .member
        .as_ref()
        .and_then(|m| m.auth.as_ref())
        .map(|a| Box::new(auth_spec(Some(a))));
    let mut t = Tenants {
        http,
        auth,
        values,
        provisioned: Vec::new(),
        created: Vec::new(),
        created_caps: Vec::new(),
        a_org: None,
        b_org: None,
        ready: false,
    };
    t.ready = provision(&mut t, orgs, opts, redactor, cancel, signer, em).await;
    for org in [Identity::A, Identity::B] {
        if let Some(tok) = t.values.org(org).and_then(|s| s.token()) {
            redactor.add(&format!("token {}", org.as_str()), tok);
        }
    }
    if t.ready && !suite.seed.is_empty() {
        t.ready = seed(&mut t, suite, opts, redactor, cancel, em).await;
    }
    if t.ready
        && let Some(m) = &orgs.member
    {
        t.ready = provision_member(&mut t, m, opts, redactor, cancel, em).await;
    }
    t.a_org = org_id_of(&t.values.a, suite);
    t.b_org = org_id_of(&t.values.b, suite);
    Some(t)
}

/// How an `auth:` section sends an identity; none is `Authorization: Bearer {{token}}`.
fn auth_spec(a: Option<&crate::suite::model::Auth>) -> AuthSpec {
    match a {
        Some(a) => AuthSpec {
            header: a
                .header
                .as_ref()
                .map(|h| h.value.clone())
                .unwrap_or_default(),
            value: a.value.clone().unwrap_or_else(|| Tpl::literal("")),
            cookies: a
                .cookie
                .iter()
                .map(|(k, t)| (k.name.clone(), t.clone()))
                .collect(),
            member: None,
        },
        None => AuthSpec {
            header: "Authorization".into(),
            value: Tpl {
                parts: vec![Part::Lit("Bearer ".into()), Part::Var("token".into())],
                loc: Default::default(),
            },
            cookies: Vec::new(),
            member: None,
        },
    }
}

/// Makes the user who is a member of both orgs (`orgs.member`), once both orgs exist and
/// A is seeded. What it made is torn down first (`orgs.member.teardown`), or reported as
/// left behind. False when a step failed or the run was interrupted.
async fn provision_member(
    t: &mut Tenants,
    m: &crate::suite::model::Member,
    opts: &Options,
    redactor: &Redactor,
    cancel: &Cancel,
    em: &mut Emitter<'_>,
) -> bool {
    if cancel.is_cancelled() {
        return false;
    }
    em.phase("provisioning the member of both orgs");
    let r = run_steps(
        &t.http,
        &t.auth,
        &mut t.values,
        &m.provision,
        Identity::Member,
        Some(Identity::Member),
        &opts.setup_policy(),
        redactor,
        "member",
    )
    .await;
    if let Some(tok) = t.values.member.token() {
        redactor.add("token member", tok);
    }
    // A step that sent something may have made something (a user, its own org).
    if r.is_ok() || !t.values.member.captures.is_empty() {
        t.provisioned.push(Identity::Member);
        t.created.push(Created {
            org: "member".into(),
            what: "member of both orgs".into(),
            ids: ids_of(&t.values.member.captures, redactor),
            removed: false,
            kept: None,
        });
        t.created_caps
            .push(t.values.member.captures.keys().cloned().collect());
    }
    match r {
        Ok(()) => true,
        Err(e) => {
            em.result(setup_error(
                "setup/provision-member",
                "provision the member of both orgs",
                e.summary,
                e.evidence,
                redactor,
            ));
            false
        }
    }
}

/// The vars, the default headers and the HTTP client of a run.
fn client(
    suite: &Suite,
    target: &Target,
    opts: &Options,
    redactor: &Redactor,
    values: &mut Values,
    em: &mut Emitter<'_>,
) -> Option<Http> {
    let timeout = target
        .timeout
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(10));
    // Vars, in order: each may use builtins and earlier vars.
    for (k, t) in suite.vars.iter() {
        let v = t
            .render(&values.lookup(None, None, None))
            .unwrap_or_default();
        if is_secret_name(&k.name) {
            redactor.add(&k.name, &v);
        }
        values.vars.insert(k.name.clone(), v);
    }
    let lookup_plain = values.lookup(None, None, None);
    let base_url = target.base_url.render(&lookup_plain).unwrap_or_default();
    let mut default_headers = Vec::new();
    for (k, t) in target.headers.iter() {
        let v = t.render(&lookup_plain).unwrap_or_default();
        if is_secret_name(&k.name) {
            redactor.add(&k.name, &v);
        }
        default_headers.push((k.name.clone(), v));
    }
    let tls = match tls_trust(target, opts) {
        Ok(t) => t,
        Err(e) => {
            em.result(setup_error("setup/tls", "target.tls", e, vec![], redactor));
            return None;
        }
    };
    match Http::new(&base_url, timeout, default_headers, &tls) {
        Ok(h) => Some(h),
        Err(e) => {
            em.result(setup_error(
                "setup/http-client",
                "HTTP client",
                e,
                vec![],
                redactor,
            ));
            None
        }
    }
}

/// Provisions (or mints) A then B. False when either failed or the run was interrupted.
async fn provision(
    t: &mut Tenants,
    orgs: &crate::suite::model::Orgs,
    opts: &Options,
    redactor: &Redactor,
    cancel: &Cancel,
    signer: Option<&jwt::Signer>,
    em: &mut Emitter<'_>,
) -> bool {
    for org in [Identity::A, Identity::B] {
        if cancel.is_cancelled() {
            return false;
        }
        em.phase(format!("provisioning org {}", org.as_str()));
        let r = match &orgs.mint {
            Some(m) => mint_org(m, org, &mut t.values, signer, redactor),
            None => {
                let r = run_steps(
                    &t.http,
                    &t.auth,
                    &mut t.values,
                    &orgs.provision,
                    org,
                    Some(org),
                    &opts.setup_policy(),
                    redactor,
                    "provision",
                )
                .await;
                if r.is_ok() || t.values.org(org).is_some_and(|s| !s.captures.is_empty()) {
                    t.provisioned.push(org);
                    let ids = t
                        .values
                        .org(org)
                        .map(|s| ids_of(&s.captures, redactor))
                        .unwrap_or_default();
                    t.created.push(Created {
                        org: org.as_str().into(),
                        what: "org".into(),
                        ids,
                        removed: false,
                        kept: None,
                    });
                    t.created_caps.push(
                        t.values
                            .org(org)
                            .map(|s| s.captures.keys().cloned().collect())
                            .unwrap_or_default(),
                    );
                }
                r
            }
        };
        if let Err(e) = r {
            em.result(setup_error(
                &format!("setup/provision-{}", org.as_str()),
                &format!("provision org {}", org.as_str()),
                e.summary,
                e.evidence,
                redactor,
            ));
            return false;
        }
    }
    true
}

/// Runs the seed steps (as A unless a step says `as: b`). False when one failed or the
/// run was interrupted.
async fn seed(
    t: &mut Tenants,
    suite: &Suite,
    opts: &Options,
    redactor: &Redactor,
    cancel: &Cancel,
    em: &mut Emitter<'_>,
) -> bool {
    em.phase("seeding org a");
    for step in &suite.seed {
        if cancel.is_cancelled() {
            return false;
        }
        let seeder = step.as_.unwrap_or(Identity::A);
        let captures_of = |v: &Values| match seeder {
            Identity::A => v.a.captures.clone(),
            Identity::B => v.b.captures.clone(),
            Identity::Anon => v.anon.captures.clone(),
            Identity::Member => v.member.captures.clone(),
        };
        let before: BTreeSet<String> = captures_of(&t.values).into_keys().collect();
        let r = run_steps(
            &t.http,
            &t.auth,
            &mut t.values,
            std::slice::from_ref(step),
            seeder,
            None,
            &opts.setup_policy(),
            redactor,
            "seed",
        )
        .await;
        let new: BTreeMap<String, String> = captures_of(&t.values)
            .into_iter()
            .filter(|(k, _)| !before.contains(k))
            .collect();
        t.created.push(Created {
            // Made without credentials it belongs to no org: no org's teardown removes it.
            org: seeder.as_str().into(),
            what: step
                .name
                .clone()
                .unwrap_or_else(|| step.request.value.url.to_string()),
            ids: ids_of(&new, redactor),
            removed: false,
            kept: None,
        });
        t.created_caps.push(new.keys().cloned().collect());
        if let Err(e) = r {
            em.result(setup_error(
                "setup/seed",
                "seed org a",
                e.summary,
                e.evidence,
                redactor,
            ));
            return false;
        }
    }
    true
}

/// Tears down what setup made, B first (A's data is the evidence until the end), and
/// returns the created list with what teardown removed, and notices. Runs always: also
/// after failures, errors and interrupts.
///
/// Truthful: an item counts as removed only when a step that uses one of its captures
/// succeeded; a step that uses the org's `org_id` (or a capture of `orgs.scope`, such as
/// its slug) and succeeded removes the org and what it holds. What the suite declares in `teardown.keeps` is reported as kept, with its
/// reason; a failing step that addresses only kept items is a notice, any other failing
/// step an `error`. A step that needs a capture the org lacks is skipped, with a notice.
pub(crate) async fn teardown(
    mut t: Tenants,
    suite: &Suite,
    opts: &Options,
    redactor: &Redactor,
    em: &mut Emitter<'_>,
) -> (Vec<Created>, Vec<String>) {
    let mut notices = Vec::new();
    let Some(orgs) = suite.orgs.as_ref() else {
        return (t.created, notices);
    };
    let td = &orgs.teardown;
    for org in t.provisioned.clone().iter().rev() {
        let mine: Vec<usize> = (0..t.created.len())
            .filter(|&i| t.created[i].org == org.as_str())
            .collect();
        // The member (provisioned last, so torn down first) has its own steps.
        let steps = match (org, &orgs.member) {
            (Identity::Member, Some(m)) => &m.teardown,
            (Identity::Member, None) => continue,
            _ => &td.steps,
        };
        if !steps.is_empty() {
            em.phase(format!("tearing down org {}", org.as_str()));
        }
        for step in steps {
            let name = step.name.clone().unwrap_or_else(|| "step".into());
            let uses: BTreeSet<String> = step_uses(step, *org)
                .into_iter()
                .filter(|u| !["run_id", "uuid", "org"].contains(&u.as_str()))
                .filter(|u| !t.values.vars.contains_key(u))
                .collect();
            let have: BTreeSet<String> = t
                .values
                .org(*org)
                .map(|s| s.captures.keys().cloned().collect())
                .unwrap_or_default();
            if let Some(missing) = uses.iter().find(|u| !have.contains(*u)) {
                notices.push(format!(
                    "teardown `{name}` skipped for org {}: it uses `{missing}`, which org {} never captured",
                    org.as_str(),
                    org.as_str()
                ));
                continue;
            }
            let addressed: Vec<usize> = mine
                .iter()
                .copied()
                .filter(|&i| {
                    t.created_caps[i]
                        .iter()
                        .any(|c| c != "token" && uses.contains(c))
                })
                .collect();
            let r = run_steps(
                &t.http,
                &t.auth,
                &mut t.values,
                std::slice::from_ref(step),
                *org,
                Some(*org),
                &opts.setup_policy(),
                redactor,
                "teardown",
            )
            .await;
            match r {
                Ok(()) => {
                    // The org itself, by its id or by a scope value (a slug), goes with
                    // everything it holds.
                    let whole_org = uses.contains("org_id")
                        || orgs.scope.iter().any(|(k, tpl)| {
                            uses.contains(k.name.as_str()) || tpl.vars().any(|v| uses.contains(v))
                        });
                    let gone = if whole_org { &mine } else { &addressed };
                    for &i in gone {
                        t.created[i].removed = true;
                    }
                    // Where a read check knows the item's URL, A must now get not-found.
                    let gone = gone.clone();
                    for (i, why) in confirm_gone(&t, suite, *org, &gone, opts, redactor).await {
                        match why {
                            Reread::StillThere(what) => {
                                t.created[i].removed = false;
                                // Its org's data is still there: the org was not removed.
                                if whole_org {
                                    for &j in &mine {
                                        if t.created[j].what == "org" {
                                            t.created[j].removed = false;
                                        }
                                    }
                                }
                                if kept_reason(td, &t.created_caps[i]).is_none() {
                                    em.result(setup_error(
                                        &format!("setup/teardown-{}/left", org.as_str()),
                                        &format!("teardown org {}", org.as_str()),
                                        format!(
                                            "teardown `{name}` answered success, but A still reads what it should have removed ({what})"
                                        ),
                                        vec![],
                                        redactor,
                                    ));
                                }
                            }
                            Reread::Unconfirmed(what) => notices.push(format!(
                                "teardown `{name}`: the removal of org {}'s {} could not be confirmed ({what})",
                                org.as_str(),
                                t.created[i].what
                            )),
                        }
                    }
                }
                Err(e) => {
                    let declared = !addressed.is_empty()
                        && addressed
                            .iter()
                            .all(|&i| kept_reason(td, &t.created_caps[i]).is_some());
                    if declared {
                        notices.push(format!(
                            "teardown `{name}` failed for org {}, as the suite declares (`teardown.keeps`): {}",
                            org.as_str(),
                            e.summary
                        ));
                    } else {
                        em.result(setup_error(
                            &format!("setup/teardown-{}", org.as_str()),
                            &format!("teardown org {}", org.as_str()),
                            format!("{} (what it created may be left behind)", e.summary),
                            e.evidence,
                            redactor,
                        ));
                    }
                }
            }
        }
        mark_kept(&mut t, td, &mine);
    }
    // What an anonymous seed step made belongs to no org: only `keeps` can speak for it.
    let anon: Vec<usize> = (0..t.created.len())
        .filter(|&i| t.created[i].org == Identity::Anon.as_str())
        .collect();
    mark_kept(&mut t, td, &anon);
    (t.created, notices)
}

/// What re-reading an item after its teardown step showed, when it was not not-found.
enum Reread {
    /// A still got it (2xx): the step did not remove it.
    StillThere(String),
    /// Neither found nor not-found (401 once the org is gone, a 5xx, a transport error):
    /// the step's success is all there is.
    Unconfirmed(String),
}

/// Re-reads, as A, each of org A's `items` that a `read` check addresses (its URL uses
/// one of the item's captures): the item counts as removed only when A now gets the
/// check's not-found status (or 404 / 410). Org B's items have no known read URL.
async fn confirm_gone(
    t: &Tenants,
    suite: &Suite,
    org: Identity,
    items: &[usize],
    opts: &Options,
    redactor: &Redactor,
) -> Vec<(usize, Reread)> {
    let mut out = Vec::new();
    if org != Identity::A {
        return out;
    }
    let prep = Preparer {
        values: &t.values,
        auth: &t.auth,
        redactor,
    };
    for &i in items {
        let caps = &t.created_caps[i];
        let read = suite.checks.iter().find_map(|c| {
            let r = c.read.as_ref()?;
            r.request
                .url
                .vars()
                .filter_map(|v| v.strip_prefix("a."))
                .any(|v| v != "token" && caps.contains(v))
                .then_some((c, &r.request))
        });
        let Some((check, req)) = read else { continue };
        let not_found = check
            .not_found_status
            .as_deref()
            .or(suite.not_found_status.as_ref())
            .map_or(404, |s| s.value);
        let Ok(p) = prep.prepare(req, Identity::A, None, None, None) else {
            continue;
        };
        let line = redactor.redact(&p.line());
        let (got, _) = t.http.send_retrying(&p, &opts.setup_policy()).await;
        let why = match got {
            Ok(r) if r.status == not_found || r.status == 404 || r.status == 410 => continue,
            Ok(r) if r.is_success() => Reread::StillThere(format!("{line} answered {}", r.status)),
            Ok(r) => Reread::Unconfirmed(format!("{line} answered {}", r.status)),
            Err(e) => Reread::Unconfirmed(format!("{line}: {}", redactor.redact(&e.to_string()))),
        };
        out.push((i, why));
    }
    out
}

/// Marks what teardown left behind on purpose: items naming a capture in `keeps`, and
/// everything of an org that is itself kept (it stays, so what it holds stays).
fn mark_kept(t: &mut Tenants, td: &crate::suite::model::Teardown, mine: &[usize]) {
    let org_kept = mine
        .iter()
        .find(|&&i| t.created[i].what == "org" && !t.created[i].removed)
        .and_then(|&i| kept_reason(td, &t.created_caps[i]));
    for &i in mine {
        if t.created[i].removed {
            continue;
        }
        t.created[i].kept = kept_reason(td, &t.created_caps[i]).or_else(|| {
            org_kept
                .as_ref()
                .map(|r| format!("stays with its org, which the API keeps: {r}"))
        });
    }
}

/// The suite's reason for keeping an item with these captures, if it declares one.
fn kept_reason(td: &crate::suite::model::Teardown, caps: &BTreeSet<String>) -> Option<String> {
    caps.iter().find_map(|c| td.kept(c))
}

/// The captures of the torn-down org a teardown step uses: bare names and `a.`/`b.`
/// names of that org (vars and built-ins such as `run_id` are not captures).
fn step_uses(step: &Step, org: Identity) -> BTreeSet<String> {
    let r = &step.request.value;
    let mut tpls: Vec<&Tpl> = vec![&r.url];
    tpls.extend(r.headers.iter().map(|(_, t)| t));
    tpls.extend(r.query.iter().map(|(_, t)| t));
    if let Some(j) = &r.json {
        tpls.extend(j.templates());
    }
    tpls.extend(r.body.as_deref());
    let prefix = format!("{}.", org.as_str());
    tpls.iter()
        .flat_map(|t| t.parts.iter())
        .filter_map(|p| match p {
            Part::Var(v) if v.starts_with(&prefix) => Some(v[prefix.len()..].to_string()),
            Part::Var(v) if !v.contains('.') => Some(v.clone()),
            _ => None,
        })
        .collect()
}

/// Identifiers for the "created" list: captured values that are not secrets.
fn ids_of(caps: &BTreeMap<String, String>, redactor: &Redactor) -> Vec<String> {
    caps.iter()
        .filter(|(k, _)| k.as_str() != "token")
        .map(|(k, v)| format!("{k}={}", redactor.redact(v)))
        .collect()
}

/// An org's id: its `org_id` capture, else its token's tenant claim.
fn org_id_of(state: &OrgState, suite: &Suite) -> Option<String> {
    if let Some(v) = state.captures.get("org_id") {
        return Some(v.clone());
    }
    let t = jwt::decode(state.token()?)?;
    let preferred = suite
        .orgs
        .as_ref()
        .and_then(|o| o.tenant_claim.as_ref())
        .map(|t| t.value.as_str());
    let name = jwt::tenant_claim_name(&t.payload, preferred)?;
    jwt::claim(&t.payload, &name).map(jwt::claim_text)
}

/// A's markers: every value captured for A of 8 or more characters, plus the suite's,
/// minus exclusions and minus anything B also has (a value both orgs hold, such as a
/// plan name, is no evidence of a leak).
fn markers_of(suite: &Suite, values: &Values) -> (Vec<String>, Vec<String>) {
    let lookup = values.lookup(None, None, None);
    let b_values: BTreeSet<&String> = values.b.captures.values().collect();
    // (marker, where it came from) — the name is what a notice shows.
    let mut out: Vec<(String, String)> = values
        .a
        .captures
        .iter()
        .filter(|(_, v)| v.chars().count() >= 8)
        .filter(|(_, v)| !b_values.contains(v))
        .map(|(k, v)| (v.clone(), format!("A's `{k}`")))
        .collect();
    let mut excluded = Vec::new();
    // Check-level markers are added per check by the plan; suite-wide ones suffice here.
    let specs = suite
        .markers
        .iter()
        .chain(suite.checks.iter().flat_map(|c| c.markers.iter()));
    for m in specs {
        match m {
            MarkerSpec::Include(t) => out.extend(
                t.render(&lookup)
                    .ok()
                    .map(|v| (v, format!("the marker `{t}`"))),
            ),
            MarkerSpec::Exclude(t) => excluded.extend(t.render(&lookup).ok()),
        }
    }
    out.retain(|(m, _)| !m.is_empty() && !excluded.contains(m));
    out.sort();
    out.dedup_by(|x, y| x.0 == y.0);
    // A marker inside one of B's own values (`reader-1@x` in `b-reader-1@x`) would be
    // found in B's correct answers: it proves nothing, so it is dropped, and said.
    let mut notices = Vec::new();
    out.retain(|(m, from)| {
        // The same for the member of both orgs, whose answers in B's scope are judged.
        let inside = [("B's", &values.b), ("the member's", &values.member)]
            .into_iter()
            .find_map(|(who, state)| {
                state
                    .captures
                    .iter()
                    .find(|(k, v)| {
                        k.as_str() != "token" && v.as_str() != m && v.contains(m.as_str())
                    })
                    .map(|(k, _)| (who, k))
            });
        if let Some((who, k)) = inside {
            notices.push(format!(
                "{from} is not used as a marker: it is part of {who} own `{k}`, so finding it in {who} answers would prove nothing"
            ));
        }
        inside.is_none()
    });
    (out.into_iter().map(|(m, _)| m).collect(), notices)
}

fn mint_org(
    m: &crate::suite::model::Mint,
    org: Identity,
    values: &mut Values,
    signer: Option<&jwt::Signer>,
    redactor: &Redactor,
) -> Result<(), setup::StepError> {
    let err = |e: RunError| setup::StepError {
        summary: e.to_string(),
        evidence: vec![],
    };
    let signer = signer.ok_or_else(|| err(RunError::NoMintKey))?;
    let map = if org == Identity::A { &m.a } else { &m.b };
    let state = if org == Identity::A {
        &mut values.a
    } else {
        &mut values.b
    };
    for (k, t) in map.iter() {
        state
            .captures
            .insert(k.name.clone(), t.as_literal().unwrap_or_default());
    }
    let mut claims = serde_json::Map::new();
    for (k, v) in m.claims.iter() {
        let rendered = v
            .render(&values.lookup(Some(org), None, None))
            .map_err(|e| err(RunError::Template(e)))?;
        claims.insert(k.name.clone(), rendered);
    }
    let now = jwt::now();
    let ttl = m
        .ttl
        .map(|d| d.0.as_secs() as i64)
        .filter(|t| *t > 0)
        .unwrap_or(3600);
    claims.entry("iat").or_insert(serde_json::Value::from(now));
    claims
        .entry("exp")
        .or_insert(serde_json::Value::from(now + ttl));
    let token = signer
        .sign(&serde_json::Value::Object(claims))
        .map_err(err)?;
    redactor.add(&format!("token {}", org.as_str()), &token);
    let state = if org == Identity::A {
        &mut values.a
    } else {
        &mut values.b
    };
    state.captures.insert("token".into(), token);
    Ok(())
}

/// Runs setup steps in order as `as_` (provision/teardown: `bare` = the org), storing
/// captures in the org the step belongs to (`bare`, else A for seed).
#[allow(clippy::too_many_arguments)]
async fn run_steps(
    http: &Http,
    auth: &AuthSpec,
    values: &mut Values,
    steps: &[Step],
    as_: Identity,
    bare: Option<Identity>,
    retries: &http::RetryPolicy,
    redactor: &Redactor,
    what: &str,
) -> Result<(), setup::StepError> {
    for (i, step) in steps.iter().enumerate() {
        let identity = step.as_.unwrap_or(as_);
        let name = step
            .name
            .clone()
            .unwrap_or_else(|| format!("step {}", i + 1));
        let p = Preparer {
            values,
            auth,
            redactor,
        }
        .prepare(&step.request.value, identity, bare, None, None)
        .map_err(|e| setup::StepError {
            summary: format!("{what} `{name}`: {e}"),
            evidence: vec![],
        })?;
        let lookup = values.lookup(bare, None, None);
        let (resp, _tries) = setup::send_step(http, &p, step.expect.as_ref(), &lookup, retries)
            .await
            .map_err(|mut e| {
                e.summary = format!("{what} `{name}`: {}", e.summary);
                e
            })?;
        drop(lookup);
        // A GraphQL step answers 200 when it failed too: its errors fail the step.
        if p.graphql.is_some()
            && let Some(errors) = resp
                .json()
                .and_then(|v| v.get("errors").and_then(|e| e.as_array()).cloned())
                .filter(|e| !e.is_empty())
        {
            return Err(setup::StepError {
                summary: format!(
                    "{what} `{name}`: the GraphQL answer holds {} error(s)",
                    errors.len()
                ),
                evidence: vec![("answer".into(), verdict::show(&resp))],
            });
        }
        // The sender keeps what the target sets (its jar), as a browser would.
        match identity {
            Identity::A => super::cookies::update_jar(&mut values.a.jar, &resp),
            Identity::B => super::cookies::update_jar(&mut values.b.jar, &resp),
            Identity::Member => super::cookies::update_jar(&mut values.member.jar, &resp),
            Identity::Anon => {}
        }
        // Provision/teardown captures belong to the org being set up; a seed step's to
        // the org it ran as (`as: b` seeds B's own rows, for the database probe).
        let owner = bare.unwrap_or(identity);
        for (k, spec) in step.capture.iter() {
            let (v, typed) = setup::capture_typed(spec, &resp).map_err(|m| setup::StepError {
                summary: format!("{what} `{name}`: capture `{}`: {m}", k.name),
                evidence: vec![("answer".into(), verdict::show(&resp))],
            })?;
            let is_cookie = matches!(spec.source, crate::suite::model::CaptureSource::Cookie(_));
            if k.name == "token" || is_cookie || is_secret_name(&k.name) || from_secret_field(spec)
            {
                redactor.add(&format!("{} {}", k.name, owner.as_str()), &v);
            }
            // A step's captures are the identity's it ran as (`as: anon`: `anon.NAME`).
            let state = match owner {
                Identity::A => &mut values.a,
                Identity::B => &mut values.b,
                Identity::Member => &mut values.member,
                Identity::Anon => &mut values.anon,
            };
            match typed {
                Some(j) => state.typed.insert(k.name.clone(), j),
                None => state.typed.remove(&k.name),
            };
            state.captures.insert(k.name.clone(), v);
        }
    }
    Ok(())
}

pub(crate) fn signer_of(
    suite: &Suite,
    redactor: &Redactor,
) -> Result<Option<jwt::Signer>, RunError> {
    let key = suite
        .orgs
        .as_ref()
        .and_then(|o| o.mint.as_ref())
        .map(|m| (&m.algorithm.value, m.secret.as_ref(), m.key.as_ref()))
        .or_else(|| {
            suite.attacks.as_ref().and_then(|a| match &a.token_forgery {
                Some(Toggle::Configured(tf)) => tf
                    .sign_with
                    .as_ref()
                    .map(|k| (&k.algorithm.value, k.secret.as_ref(), k.key.as_ref())),
                _ => None,
            })
        });
    let Some((alg, secret, pem)) = key else {
        return Ok(None);
    };
    let secret = secret.and_then(Tpl::as_literal);
    if let Some(s) = &secret {
        redactor.add("signing secret", s);
    }
    let pem = pem.and_then(Tpl::as_literal);
    jwt::Signer::new(alg, secret.as_deref(), pem.as_deref()).map(Some)
}

/// The TLS trust of a run: `--insecure`, or the system roots plus `target.tls.ca`.
fn tls_trust(target: &Target, opts: &Options) -> Result<http::TlsTrust, RunError> {
    let extra_roots = match target.tls.as_ref().and_then(|t| t.ca.as_ref()) {
        Some(ca) if !opts.insecure => http::TlsTrust::read_ca(&ca.to_string())?,
        _ => Vec::new(),
    };
    Ok(http::TlsTrust {
        insecure: opts.insecure,
        extra_roots,
    })
}

/// Whether a capture reads a field whose name says it is a secret (`$.access_token`,
/// `$.auth.refresh_token`, a `Set-Cookie` header).
fn from_secret_field(spec: &crate::suite::model::CaptureSpec) -> bool {
    use crate::suite::model::CaptureSource;
    let secretish = |n: &str| {
        let n = n.to_ascii_lowercase();
        [
            "token",
            "password",
            "passwd",
            "secret",
            "authorization",
            "cookie",
        ]
        .iter()
        .any(|w| n.contains(w))
    };
    match &spec.source {
        CaptureSource::Status => false,
        CaptureSource::Header(h) => secretish(h),
        CaptureSource::Path(_, text) => secretish(text),
        CaptureSource::Cookie(_) => true,
    }
}
