//! The check kinds and their attack variants (run stage). Each check runs its positive
//! control as A once, then every variant as B, and turns answers into decisions with
//! the pure rules of [`super::verdict`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use super::context::{AuthSpec, Preparer, Sending, SharedControls, SharedTwins, Twins, Values};
use super::error::RunError;
use super::http::{Body, Http, Prepared, Resp};
use super::jwt::{self, Signer};
use super::setup::unmet;
use super::verdict::{self, Decision, NotFoundInput, markers_in, show};
use crate::outcome::{CheckResult, Layer, Verdict};
use crate::redact::Redactor;
use crate::suite::model::{Identity, Request};

pub use crate::plan::{Channel, CheckPlan, Forgery, Kind, RequestCheck, Variant};

/// Everything a check needs, shared by all check tasks.
pub struct Ctx {
    pub http: Http,
    pub redactor: Redactor,
    pub values: Values,
    pub auth: AuthSpec,
    pub markers: verdict::Markers,
    pub a_org: Option<String>,
    pub b_org: Option<String>,
    pub tenant_claim: Option<String>,
    pub signer: Option<Signer>,
    pub check_retries: u32,
    /// Set on an interrupt: a running check stops at its next variant.
    pub cancel: super::Cancel,
    /// A's scope values (`orgs.scope`), offered with A's org id in overrides.
    pub a_scope: Vec<(String, String)>,
    /// `orgs.credentials`: name, header, value template.
    pub credentials: Vec<(String, String, crate::suite::template::Tpl)>,
    /// `orgs.session` and what its attacks need.
    pub session: Option<super::session::SessionCfg>,
    /// `attacks.token_forgery.reject_status`: the status a rejected token gets, when
    /// the suite says (else a forged token is compared with a never-issued one).
    pub reject_status: Option<crate::suite::model::StatusSpec>,
    /// The twins' answers checks share ([`SharedTwins`]).
    pub shared_twins: SharedTwins,
    /// A's implicit controls checks share ([`SharedControls`]).
    pub shared_controls: SharedControls,
}

impl Ctx {
    /// The context of the checks once setup has made both orgs.
    pub(crate) fn new(
        loaded: &crate::suite::Loaded,
        t: &super::orgs::Tenants,
        markers: verdict::Markers,
        signer: Option<Signer>,
        redactor: &Redactor,
        opts: &super::Options,
        cancel: &super::Cancel,
    ) -> Self {
        let suite = &loaded.suite;
        Ctx {
            http: t.http.clone(),
            redactor: redactor.clone(),
            values: t.values.clone(),
            auth: t.auth.clone(),
            markers,
            a_org: t.a_org.clone(),
            b_org: t.b_org.clone(),
            tenant_claim: suite
                .orgs
                .as_ref()
                .and_then(|o| o.tenant_claim.as_ref())
                .map(|t| t.value.clone()),
            signer,
            check_retries: opts.check_retries,
            cancel: cancel.clone(),
            a_scope: super::scope::scope_values(suite, &t.values, Identity::A),
            credentials: suite
                .orgs
                .iter()
                .flat_map(|o| o.credentials.iter())
                .map(|(k, c)| (k.name.clone(), c.header.value.clone(), c.value.clone()))
                .collect(),
            session: super::session::SessionCfg::of(suite),
            reject_status: match suite
                .attacks
                .as_ref()
                .and_then(|a| a.token_forgery.as_ref())
            {
                Some(crate::suite::model::Toggle::Configured(t)) => t.reject_status.clone(),
                _ => None,
            },
            shared_twins: SharedTwins::default(),
            shared_controls: SharedControls::default(),
        }
    }
}

/// Sends for one variant, counting transport retries.
pub(super) struct Sender<'a> {
    ctx: &'a Ctx,
    pub(super) retries: AtomicU32,
}

impl<'a> Sender<'a> {
    pub(super) fn new(ctx: &'a Ctx) -> Self {
        Sender {
            ctx,
            retries: AtomicU32::new(0),
        }
    }

    /// Sends; a transport error (after the configured retries) becomes an error decision.
    pub(super) async fn send(&self, p: &Prepared, what: &str) -> Result<Resp, Decision> {
        let mut attempt = 0;
        loop {
            match self.ctx.http.send(p).await {
                Ok(r) => return Ok(r),
                Err(e) if attempt >= self.ctx.check_retries => {
                    return Err(Decision::error(format!("{what}: {} {e}", p.line())));
                }
                Err(_) => {
                    attempt += 1;
                    self.retries.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

impl Ctx {
    pub(super) fn preparer(&self) -> Preparer<'_> {
        Preparer {
            values: &self.values,
            auth: &self.auth,
            redactor: &self.redactor,
        }
    }

    pub(super) fn prepare(
        &self,
        req: &Request,
        as_: Identity,
        twins: Option<&Twins>,
        token: Option<&str>,
    ) -> Result<Prepared, Decision> {
        self.preparer()
            .prepare(req, as_, None, twins, token)
            .map_err(|e| Decision::error(format!("cannot build the request: {e}")))
    }

    pub(super) fn result(
        &self,
        plan: &CheckPlan,
        v: &Variant,
        d: Decision,
        start: Instant,
        retries: u32,
    ) -> CheckResult {
        let layer = match (v, &plan.kind) {
            (Variant::Base, Kind::Identity { .. } | Kind::Jwt | Kind::PoolReuse(_)) => {
                Layer::Attack
            }
            (Variant::Base, _) => Layer::Http,
            _ => Layer::Attack,
        };
        let mut r = CheckResult::new(
            plan.variant_id(v),
            plan.name.clone(),
            plan.variant_name(v),
            layer,
            d.verdict,
            super::emit::one_line(&self.redactor.redact(&d.summary)),
        )
        .timed(start.elapsed());
        if retries > 0 {
            r = r.with(
                "retries",
                format!(
                    "{retries} transport error(s) retried; the verdict is from the last attempt"
                ),
            );
        }
        // Redacted once, by the emitter every result passes (`emit.rs`); the summary
        // above is redacted here because `one_line` would break a multi-line secret.
        for e in d.evidence {
            r.evidence
                .push(crate::outcome::Evidence::new(e.label, e.text));
        }
        if let (Variant::Override(ch, name), Some(org)) = (v, &self.a_org)
            && !r.evidence.iter().any(|e| e.label == "offered")
        {
            let how = match ch {
                Channel::Header => format!("header `{name}: {org}`"),
                Channel::Query => format!("query parameter `{name}={org}`"),
                Channel::Body => format!("body field `\"{name}\": \"{org}\"`"),
            };
            r.evidence.push(crate::outcome::Evidence::new(
                "offered",
                format!("A's org id as {how}"),
            ));
        }
        r.retries = retries;
        r
    }

    /// A forged token for a variant, or why there is none.
    fn forge(&self, f: Forgery) -> Result<String, RunError> {
        let token = self.values.b.token().ok_or(RunError::NoToken)?;
        if !self.auth.uses_token() {
            return Err(RunError::AuthSendsNoToken);
        }
        let t = jwt::decode(token).ok_or(RunError::NotJwt)?;
        let claim = jwt::tenant_claim_name(&t.payload, self.tenant_claim.as_deref())
            .ok_or(RunError::NoTenantClaim)?;
        let a_org = self.a_org.as_deref().ok_or(RunError::NoAOrg)?;
        let forged = match f {
            Forgery::AlgNone => jwt::forge_alg_none(&t, &claim, a_org),
            Forgery::Tampered => jwt::forge_tampered(&t, &claim, a_org),
            Forgery::RandomKey => jwt::forge_random_key(&t, &claim, a_org),
            Forgery::Expired => {
                let s = self.signer.as_ref().ok_or(RunError::NoSigningKey)?;
                jwt::forge_expired(&t, &claim, a_org, s)?
            }
            Forgery::NoExp => {
                let s = self.signer.as_ref().ok_or(RunError::NoSigningKey)?;
                jwt::forge_no_exp(&t, &claim, a_org, s)?
            }
        };
        self.redactor
            .add(&format!("forged token ({})", f.name()), &forged);
        Ok(forged)
    }
}

impl Ctx {
    /// A never-issued token of B's shape ([`jwt::never_issued`]), or why there is none.
    fn never_issued_token(&self) -> Result<String, RunError> {
        let token = self.values.b.token().ok_or(RunError::NoToken)?;
        let t = jwt::decode(token).ok_or(RunError::NotJwt)?;
        let invalid = jwt::never_issued(&t);
        self.redactor.add("never-issued token", &invalid);
        Ok(invalid)
    }
}

/// Adds A's org id to a request through one channel; `None` when the channel does not
/// apply (no JSON object body). For a GraphQL request a body field goes inside
/// `variables` and its input objects ([`super::graphql::offer`]).
pub fn apply_override(p: &Prepared, ch: Channel, name: &str, a_org: &str) -> Option<Prepared> {
    let mut p = p.clone();
    match ch {
        Channel::Header => p.set_header(name, a_org),
        Channel::Query => {
            p.query.retain(|(k, _)| k != name);
            p.query.push((name.to_string(), a_org.to_string()));
        }
        Channel::Body if p.graphql.is_some() => {
            if !super::graphql::offer(&mut p, name, serde_json::Value::from(a_org)) {
                return None;
            }
        }
        Channel::Body => match &mut p.body {
            Some(Body::Json(serde_json::Value::Object(o))) => {
                o.insert(name.to_string(), serde_json::Value::from(a_org));
            }
            _ => return None,
        },
    }
    Some(p)
}

/// B's request and its never-issued twin for a variant: as they are for the base check,
/// or, for a `tenant_override` variant, one pair per value of A's offered the same way
/// in both (A's org id, then each A scope value), with what was offered; or why the
/// variant does not apply (skip).
fn variant_pairs(
    ctx: &Ctx,
    v: &Variant,
    base: &Prepared,
    twin: &Prepared,
) -> Result<Vec<(Prepared, Prepared, String)>, Decision> {
    let Variant::Override(ch, name) = v else {
        return Ok(vec![(base.clone(), twin.clone(), String::new())]);
    };
    let values = super::scope::override_values(ctx.a_org.as_deref(), &ctx.a_scope);
    if values.is_empty() {
        return Err(Decision::skip(
            "A's org id is unknown: capture `org_id` when provisioning",
        ));
    }
    let mut out = Vec::new();
    for (what, value) in values {
        if let (Some(b), Some(t)) = (
            apply_override(base, *ch, name, &value),
            apply_override(twin, *ch, name, &value),
        ) {
            // A's org id is described by the result's own "offered" line.
            let what = if what == "org id" {
                String::new()
            } else {
                format!("{what} `{value}`")
            };
            out.push((b, t, what));
        }
    }
    if out.is_empty() {
        return Err(Decision::skip(
            "the request has no JSON object body to add the field to",
        ));
    }
    Ok(out)
}

/// B's request and its never-issued twin for a cross-scope variant (B in A's scope, under
/// a credential of B's for a `credential` variant), with the ids to mask.
fn scoped_pair(
    ctx: &Ctx,
    req: &Request,
    v: &Variant,
) -> Result<(Prepared, Prepared, Vec<String>), Decision> {
    let credential = match v {
        Variant::Credential(n) => {
            let c = ctx
                .credentials
                .iter()
                .find(|(k, _, _)| k == n)
                .ok_or_else(|| {
                    Decision::error(format!("no credential `{n}` in `orgs.credentials`"))
                })?;
            Some((c.1.as_str(), &c.2))
        }
        _ => None,
    };
    let how = Sending {
        as_: Identity::B,
        own: Some(Identity::A),
        credential,
    };
    let twins = Twins::default();
    let err = |e: RunError| Decision::error(format!("cannot build the request: {e}"));
    let b = ctx
        .preparer()
        .prepare_sending(req, &how, None, None, None)
        .map_err(err)?;
    let t = ctx
        .preparer()
        .prepare_sending(req, &how, None, Some(&twins), None)
        .map_err(err)?;
    Ok((b, t, twins.ids()))
}

/// The decision of several tries of one variant: a failure first, then an error, then
/// a pass; the offered value is named when it is not A's org id.
fn worst(ds: Vec<(Decision, String)>) -> Decision {
    let rank = |v: Verdict| match v {
        Verdict::Fail => 0,
        Verdict::Error => 1,
        Verdict::Pass => 2,
        _ => 3,
    };
    ds.into_iter()
        .min_by_key(|(d, _)| rank(d.verdict))
        .map(|(d, what)| {
            if what.is_empty() {
                d
            } else {
                d.with("offered", format!("A's {what}, in the variant's place"))
            }
        })
        .unwrap_or_else(|| Decision::skip("nothing to send"))
}

/// Runs one check and all its variants.
pub async fn run_check(ctx: Arc<Ctx>, plan: Arc<CheckPlan>) -> Vec<CheckResult> {
    match &plan.kind {
        Kind::Read { request } => read(&ctx, &plan, request).await,
        Kind::List { request, as_ } => list(&ctx, &plan, request, *as_).await,
        Kind::Write { write: w, verify } => write(&ctx, &plan, w, verify).await,
        Kind::Request(rc) => request(&ctx, &plan, rc).await,
        Kind::Identity { request } => identity(&ctx, &plan, request).await,
        Kind::Jwt => jwt_claims(&ctx, &plan),
        Kind::PoolReuse(pr) => pool_reuse(&ctx, &plan, pr).await,
        Kind::MassAssign {
            create,
            list,
            fields,
        } => super::scope::mass_assign(&ctx, &plan, create, list, fields).await,
        Kind::Session => super::session::run(&ctx, &plan).await,
    }
}

/// Every variant of `plan` as an `error` with the same reason.
pub fn all_error(ctx: &Ctx, plan: &CheckPlan, reason: String) -> Vec<CheckResult> {
    all(ctx, plan, Decision::error(reason), Instant::now())
}

/// The decision for a variant not started because the run was interrupted: a running
/// check stops at its next variant, so teardown starts within one variant's time
/// (CI gives a few seconds between SIGTERM and SIGKILL).
pub(super) fn interrupted(ctx: &Ctx) -> Option<Decision> {
    ctx.cancel
        .is_cancelled()
        .then(|| Decision::skip("not run: the run was interrupted"))
}

/// Every variant gets the same decision (a failed control makes all undecidable).
pub(super) fn all(ctx: &Ctx, plan: &CheckPlan, d: Decision, start: Instant) -> Vec<CheckResult> {
    plan.variants
        .iter()
        .map(|v| ctx.result(plan, v, d.clone(), start, 0))
        .collect()
}

/// The control of a `read`, `list` or `write`: its explicit `control:` when it has one
/// (its request, default the check's, as its `as`, default A, meeting its `expect`),
/// else `req` as A answering 2xx ([`shared_control`]). Returns, when `list`, whether the
/// answer was JSON; else false (nothing else reads it).
async fn plan_control(
    ctx: &Ctx,
    plan: &CheckPlan,
    req: &Request,
    what: &str,
    list: bool,
) -> Result<bool, Decision> {
    let Some(c) = &plan.control else {
        return shared_control(ctx, req, what, list).await;
    };
    let s = Sender::new(ctx);
    let creq = c.request.as_ref().map(|r| &r.value).unwrap_or(req);
    let p = ctx.prepare(creq, c.as_.unwrap_or(Identity::A), None, None)?;
    let r = s.send(&p, "control").await?;
    let lookup = ctx.values.lookup(None, None, None);
    let problems = unmet(Some(&c.expect), &r, &lookup, true);
    if !problems.is_empty() {
        return Err(Decision::error(format!(
            "the control did not meet its expect ({}), so this check could not fail",
            problems.join("; ")
        ))
        .with("control got", show(&r)));
    }
    Ok(list && r.json().is_some())
}

/// `req` as A answering 2xx (for a `list`, holding one of A's markers), or the
/// same request's answer another check got, when it may stand in for this one
/// ([`SharedControls`]: under a second old, and no request that may change state in
/// flight or started since). Returns, for a list, whether the answer was JSON.
async fn shared_control(
    ctx: &Ctx,
    req: &Request,
    what: &str,
    list: bool,
) -> Result<bool, Decision> {
    let p = ctx.prepare(&for_a(ctx, req), Identity::A, None, None)?;
    let key = p.key();
    let seen = ctx
        .shared_controls
        .get(&key, Instant::now(), |m| ctx.http.unchanged_since(m));
    if let Some(c) = seen.filter(|c| c.has_marker || !list) {
        return Ok(c.is_json);
    }
    let (sent, mark) = (Instant::now(), ctx.http.quiet());
    let r = control_2xx_of(ctx, &p, what).await?;
    // A read needs neither (nor the cost of a marker scan and a JSON parse): its entry
    // says "no marker", so a list never borrows it.
    let (has_marker, is_json) = if list {
        (
            verdict::any_marker_in(&r.body, &ctx.markers),
            r.json().is_some(),
        )
    } else {
        (false, false)
    };
    if list && !has_marker {
        return Err(Decision::error(
            "A's own list holds none of A's markers: it does not list the seeded data (or the seed did not land), so B's list proves nothing",
        )
        .with("A got", show(&r)));
    }
    // A control that may change state itself (a GraphQL query is a `POST`) moves the
    // mark: no later check could use it.
    if let Some(mark) = mark.filter(|_| !super::http::may_change_state(&p.method)) {
        ctx.shared_controls
            .offer(key, sent, mark, is_json, has_marker);
    }
    Ok(is_json)
}

pub(super) async fn control_2xx(ctx: &Ctx, req: &Request, what: &str) -> Result<Resp, Decision> {
    let p = ctx.prepare(&for_a(ctx, req), Identity::A, None, None)?;
    control_2xx_of(ctx, &p, what).await
}

/// [`control_2xx`] of a request already prepared as A.
async fn control_2xx_of(ctx: &Ctx, p: &Prepared, what: &str) -> Result<Resp, Decision> {
    let s = Sender::new(ctx);
    let r = s.send(p, "control as A").await?;
    if !r.is_success() {
        return Err(Decision::error(format!(
            "control as A got {}, not 2xx: {what}, so this check could not fail",
            r.status
        ))
        .with("A got", show(&r)));
    }
    if let Some(field) = &p.graphql
        && let Some(why) = super::graphql::data_problem(&r, field)
    {
        return Err(Decision::error(format!(
            "control as A: {why}: {what}, so this check could not fail"
        ))
        .with("A got", show(&r)));
    }
    Ok(r)
}

/// `req` without the headers that carry the org's credential (`orgs.auth.header`), so
/// that A's control is sent under A's own credential: an explicit `Authorization` on a
/// check is B's (or another identity's) and never sent for A.
fn for_a(ctx: &Ctx, req: &Request) -> Request {
    without_auth_header(&ctx.auth, req)
}

fn without_auth_header(auth: &AuthSpec, req: &Request) -> Request {
    let mut r = req.clone();
    let h = &auth.header;
    if !h.is_empty() {
        r.headers.0.retain(|(k, _)| !k.name.eq_ignore_ascii_case(h));
    }
    r
}

async fn read(ctx: &Ctx, plan: &CheckPlan, req: &Request) -> Vec<CheckResult> {
    let start = Instant::now();
    if let Err(d) = plan_control(
        ctx,
        plan,
        req,
        "the path is wrong or A's resource does not exist",
        false,
    )
    .await
    {
        return all(ctx, plan, d, start);
    }
    let twins = Twins::default();
    let (base, twin) = match (
        ctx.prepare(req, Identity::B, None, None),
        ctx.prepare(req, Identity::B, Some(&twins), None),
    ) {
        (Ok(b), Ok(t)) => (b, t),
        (Err(d), _) | (_, Err(d)) => return all(ctx, plan, d, start),
    };
    // A request that names only the caller's own scope (`/orgs/{{own.slug}}`) has
    // nothing of A's in B's scope: only its cross-scope variants can be judged.
    let own_only = base == twin;
    if own_only && !plan.variants.contains(&Variant::CrossScope) {
        let d = Decision::error(
            "the request names no value captured for A (`{{a.NAME}}`), so there is no never-issued id to compare with",
        );
        return all(ctx, plan, d, start);
    }
    let ids: Vec<String> = twins.ids();
    let mut base_decision: Option<Decision> = None;
    let mut forgery_refs = ForgeryRefs::default();
    let mut out = Vec::new();
    for v in &plan.variants {
        let vstart = Instant::now();
        let s = Sender::new(ctx);
        if let Some(d) = interrupted(ctx) {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        // No variant is judged against a base that did not decide.
        if let Variant::Override(..) = v
            && let Some(d) = verdict::against_base(base_decision.as_ref(), &plan.variant_name(v))
        {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        let d = match v {
            Variant::Base | Variant::Override(..) if own_only => Decision::skip(
                "the request names none of A's values, only the caller's own scope: its cross_scope variant puts B in A's scope",
            ),
            Variant::Base | Variant::Override(..) => match variant_pairs(ctx, v, &base, &twin) {
                Err(d) => d,
                Ok(pairs) => {
                    let mut ds = Vec::new();
                    for (b, t, what) in pairs {
                        let d = match not_found_variant(&s, plan, &b, &t, &ids, &ctx.markers).await
                        {
                            Err(d) => d,
                            Ok((d, b_status, twin_status))
                                if matches!(v, Variant::Override(..)) && b.graphql.is_none() =>
                            {
                                verdict::read_override_rule(
                                    d,
                                    b_status,
                                    twin_status,
                                    plan.not_found,
                                    &plan.variant_name(v),
                                )
                            }
                            Ok((d, _, _)) => d,
                        };
                        ds.push((d, what));
                    }
                    worst(ds)
                }
            },
            Variant::CrossScope | Variant::Credential(_) => match scoped_pair(ctx, req, v) {
                Err(d) => d,
                Ok((b, t, ids)) => {
                    match not_found_variant(&s, plan, &b, &t, &ids, &ctx.markers).await {
                        Ok((d, _, _)) | Err(d) => d,
                    }
                }
            },
            Variant::Forgery(f) => {
                forgery_variant(ctx, &s, req, &base, *f, &mut forgery_refs).await
            }
            Variant::SharedMember => super::member::read(ctx, &s, plan, req)
                .await
                .unwrap_or_else(|d| d),
            Variant::Session(_) => Decision::skip("not applicable"),
        };
        if let Variant::Base = v {
            base_decision = Some(d.clone());
        }
        out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
    }
    out
}

/// The never-issued twin's answer a second time, when it can change the verdict: the
/// rules compare the twin's body twice only to tell a body that differs from B's from
/// one that varies per request ([`verdict::NotFoundInput::twin_again`]). When B's body
/// and the twin's are the same once A's and the twin's ids are masked there is nothing
/// to tell, and the request is not sent.
async fn twin_again(
    s: &Sender<'_>,
    t: &Prepared,
    label: &str,
    b: &Resp,
    twin: &Resp,
    ids: &[String],
) -> Result<Option<Resp>, Decision> {
    if verdict::mask(&b.body, ids) == verdict::mask(&twin.body, ids) {
        return Ok(None);
    }
    s.send(t, label).await.map(Some)
}

/// The not-found rule's input for B's answer `b`, the twin's, and the twin's second
/// answer when [`twin_again`] asked for one (else the first stands for both).
fn not_found_input<'a>(
    plan: &CheckPlan,
    b: &'a Resp,
    twin: &'a Resp,
    again: &'a Option<Resp>,
    ids: &'a [String],
    found: &'a [String],
) -> NotFoundInput<'a> {
    NotFoundInput {
        b,
        twin,
        twin_again: again.as_ref().unwrap_or(twin),
        not_found: plan.not_found,
        ids,
        markers_in_b: found,
        oracle: plan.oracle,
    }
}

/// B's request and the twin's (twice, when needed), judged by the not-found rule; with the twin's
/// status (a `tenant_override` variant is judged on it too).
pub(super) async fn not_found_variant(
    s: &Sender<'_>,
    plan: &CheckPlan,
    b: &Prepared,
    t: &Prepared,
    ids: &[String],
    markers: &verdict::Markers,
) -> Result<(Decision, u16, u16), Decision> {
    let a = b_and_twin(s, b, t, ids, READ_LABELS).await?;
    let found = markers_in(&a.b.body, markers);
    let input = not_found_input(plan, &a.b, &a.twin, &a.again, &a.ids, &found);
    let d = match &b.graphql {
        Some(field) => super::graphql::read_rule(&input, field),
        None => verdict::not_found_rule(&input),
    }
    .with("request", b.line());
    Ok((d, a.b.status, a.twin.status))
}

/// B's answer and the never-issued twin's it is judged against.
struct Answers {
    b: Resp,
    twin: Resp,
    /// The twin's second answer, when [`twin_again`] asked for one.
    again: Option<Resp>,
    /// The ids to mask: the check's own, and a shared twin's.
    ids: Vec<String>,
}

/// What the twin, B's request and the twin's second request are called in errors.
type Labels = [&'static str; 3];
const READ_LABELS: Labels = ["B (never-issued id)", "B", "B (never-issued id, again)"];
const WRITE_LABELS: Labels = [
    "B's write (never-issued id)",
    "B's write",
    "B's write (never-issued id, again)",
];

/// Sends B's request `b` and gets the answer of its never-issued twin `t`: the one another
/// check got for the same twin request when B's answer is the same as it (status, content
/// type, masked body: [`super::context::SharedTwins`]); else this check's own twin, asked
/// before B's request the first time a twin request is seen and after it otherwise, and
/// again when needed ([`twin_again`]) — then the rule sees what it saw without sharing.
async fn b_and_twin(
    s: &Sender<'_>,
    b: &Prepared,
    t: &Prepared,
    ids: &[String],
    [twin_label, b_label, again_label]: Labels,
) -> Result<Answers, Decision> {
    let shared = &s.ctx.shared_twins;
    let key = SharedTwins::key(t, ids);
    // B's answer when it was asked first, for a shared twin it turned out not to match.
    let mut asked = None;
    if let Some(seen) = key.as_deref().and_then(|k| shared.get(k)) {
        let rb = s.send(b, b_label).await?;
        let mut with = ids.to_vec();
        with.extend(seen.twins.iter().cloned());
        if verdict::differences(&rb, &seen.resp, &with, true).is_empty() {
            return Ok(Answers {
                b: rb,
                twin: seen.resp.clone(),
                again: None,
                ids: with,
            });
        }
        asked = Some(rb);
    }
    let twin = s.send(t, twin_label).await?;
    if let Some(k) = key {
        shared.offer(k, &twin, ids);
    }
    let rb = match asked {
        Some(rb) => rb,
        None => s.send(b, b_label).await?,
    };
    let again = twin_again(s, t, again_label, &rb, &twin, ids).await?;
    Ok(Answers {
        b: rb,
        twin,
        again,
        ids: ids.to_vec(),
    })
}

/// What forged tokens of one check are compared with, fetched once per check: B's own
/// answer and a never-issued token's.
#[derive(Default)]
struct ForgeryRefs {
    control: Option<Resp>,
    invalid: Option<Resp>,
}

/// A forged token sent where B's own token is answered normally, judged against a
/// never-issued token's answer ([`verdict::forgery_compare_rule`]).
async fn forgery_variant(
    ctx: &Ctx,
    s: &Sender<'_>,
    req: &Request,
    base: &Prepared,
    f: Forgery,
    refs: &mut ForgeryRefs,
) -> Decision {
    let forged = match ctx.forge(f) {
        Ok(t) => t,
        Err(why) => return Decision::skip(why.to_string()),
    };
    if refs.control.is_none() {
        match s.send(base, "B (control for forged tokens)").await {
            Ok(r) => refs.control = Some(r),
            Err(d) => return d,
        }
    }
    if refs.invalid.is_none() && ctx.reject_status.is_none() {
        let invalid = match ctx.never_issued_token() {
            Ok(t) => t,
            Err(why) => return Decision::skip(why.to_string()),
        };
        let p = match ctx.prepare(req, Identity::B, None, Some(&invalid)) {
            Ok(p) => p,
            Err(d) => return d,
        };
        match s.send(&p, "B with a never-issued token").await {
            Ok(r) => refs.invalid = Some(r),
            Err(d) => return d,
        }
    }
    let p = match ctx.prepare(req, Identity::B, None, Some(&forged)) {
        Ok(p) => p,
        Err(d) => return d,
    };
    let r = match s.send(&p, "B with a forged token").await {
        Ok(r) => r,
        Err(d) => return d,
    };
    let control = refs.control.as_ref().unwrap_or(&r);
    let d = match (&ctx.reject_status, &refs.invalid) {
        (Some(want), _) => verdict::forgery_compare_rule(
            &r,
            &verdict::ForgeryRefs {
                control,
                invalid: control,
                reject_status: Some(want),
            },
            &ctx.markers,
        ),
        (None, Some(invalid)) => verdict::forgery_compare_rule(
            &r,
            &verdict::ForgeryRefs {
                control,
                invalid,
                reject_status: None,
            },
            &ctx.markers,
        ),
        (None, None) => verdict::forgery_rule(&r, control.status, &ctx.markers),
    };
    // A reference answer that could not be judged (a redirect, a 5xx) decides nothing for
    // the next forgery: fetched again then.
    if refs
        .invalid
        .as_ref()
        .is_some_and(|i| !verdict::judgeable_status(i.status))
    {
        refs.invalid = None;
    }
    if refs
        .control
        .as_ref()
        .is_some_and(|c| !verdict::judgeable_status(c.status))
    {
        refs.control = None;
    }
    d.with("request", p.line())
}

async fn list(ctx: &Ctx, plan: &CheckPlan, req: &Request, as_: Identity) -> Vec<CheckResult> {
    let start = Instant::now();
    let control_is_json = match plan_control(ctx, plan, req, "the path is wrong", true).await {
        Err(d) => return all(ctx, plan, d, start),
        Ok(is_json) => is_json,
    };
    let base = match ctx.prepare(req, as_, None, None) {
        Ok(b) => b,
        Err(d) => return all(ctx, plan, d, start),
    };
    let mut out = Vec::new();
    let mut base_status: Option<u16> = None;
    let mut base_decision: Option<Decision> = None;
    let mut forgery_refs = ForgeryRefs::default();
    for v in &plan.variants {
        let vstart = Instant::now();
        let s = Sender::new(ctx);
        if let Some(d) = interrupted(ctx) {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        // No variant is judged against a base that did not decide.
        if let Variant::Override(..) = v
            && let Some(d) = verdict::against_base(base_decision.as_ref(), &plan.variant_name(v))
        {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        if let Variant::Forgery(f) = v {
            let d = forgery_variant(ctx, &s, req, &base, *f, &mut forgery_refs).await;
            out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
            continue;
        }
        if let Variant::SharedMember = v {
            let d = super::member::list(ctx, &s, req, control_is_json)
                .await
                .unwrap_or_else(|d| d);
            out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
            continue;
        }
        if matches!(v, Variant::CrossScope | Variant::Credential(_)) {
            let d = match scoped_pair(ctx, req, v) {
                Err(d) => d,
                Ok((b, t, ids)) => {
                    match not_found_variant(&s, plan, &b, &t, &ids, &ctx.markers).await {
                        Ok((d, _, _)) | Err(d) => d,
                    }
                }
            };
            out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
            continue;
        }
        let tries: Vec<(Prepared, String)> = match variant_pairs(ctx, v, &base, &base) {
            Err(d) => {
                out.push(ctx.result(plan, v, d, vstart, 0));
                continue;
            }
            Ok(pairs) => pairs.into_iter().map(|(b, _, what)| (b, what)).collect(),
        };
        let mut ds = Vec::new();
        for (p, what) in tries {
            let d = match s.send(&p, "B").await {
                Ok(r) => {
                    if matches!(v, Variant::Base) {
                        base_status = Some(r.status);
                    }
                    let d = verdict::list_rule(&r, &ctx.markers, control_is_json);
                    let d = match &p.graphql {
                        Some(field) => graphql_list(d, &r, field, v, base_status),
                        None => d,
                    };
                    match (v, d.verdict, base_status) {
                        (Variant::Override(..), Verdict::Error, Some(base))
                            if (200..300).contains(&base) =>
                        {
                            verdict::override_changed(&plan.variant_name(v), base, r.status)
                                .unwrap_or(d)
                        }
                        _ => d,
                    }
                    .with("request", p.line())
                }
                Err(d) => d,
            };
            ds.push((d, what));
        }
        let d = worst(ds);
        if let Variant::Base = v {
            base_decision = Some(d.clone());
        }
        out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
    }
    out
}

/// A GraphQL list after the list rule (`d`): a list without data (errors, a null
/// connection, not a GraphQL answer) shows nothing and is an error — unless it is an
/// override variant refused with errors while B's plain list passed, which is the safe
/// behaviour (a pass). A's markers in the body stay a failure.
fn graphql_list(d: Decision, r: &Resp, field: &str, v: &Variant, base: Option<u16>) -> Decision {
    if d.verdict != Verdict::Pass {
        return d;
    }
    let Some(why) = super::graphql::data_problem(r, field) else {
        return d;
    };
    if matches!(v, Variant::Override(..))
        && base.is_some_and(|b| (200..300).contains(&b))
        && super::graphql::refused(r, field)
    {
        return Decision::pass(format!(
            "offering A's org id was refused ({why}): the server does not take the tenant from the request"
        ))
        .with("observed", verdict::observed(r));
    }
    Decision::error(format!(
        "B's list: {why}: it cannot show whether A's data leaks"
    ))
    .with("B got", show(r))
}

async fn write(ctx: &Ctx, plan: &CheckPlan, req: &Request, verify: &Request) -> Vec<CheckResult> {
    let start = Instant::now();
    if plan.control.is_some()
        && let Err(d) = plan_control(ctx, plan, verify, "the control failed", false).await
    {
        return all(ctx, plan, d, start);
    }
    let twins = Twins::default();
    let (base, twin, verify_p) = match (
        ctx.prepare(req, Identity::B, None, None),
        ctx.prepare(req, Identity::B, Some(&twins), None),
        ctx.prepare(verify, Identity::A, None, None),
    ) {
        (Ok(b), Ok(t), Ok(v)) => (b, t, v),
        (Err(d), _, _) | (_, Err(d), _) | (_, _, Err(d)) => return all(ctx, plan, d, start),
    };
    if base == twin {
        let d = Decision::error(
            "the write names no value captured for A (`{{a.NAME}}`), so there is no never-issued id to compare with",
        );
        return all(ctx, plan, d, start);
    }
    let ids: Vec<String> = twins.ids();
    let mut out = Vec::new();
    // Set once a variant's write was accepted: A's resource may be gone or changed, so
    // later variants cannot be judged against it (the check has already failed).
    let mut damaged: Option<String> = None;
    // A's resource as last read (see `write_variant`).
    let mut last: Option<Resp> = None;
    for v in &plan.variants {
        let vstart = Instant::now();
        let s = Sender::new(ctx);
        if let Some(d) = interrupted(ctx) {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        let pairs = match v {
            Variant::CrossScope | Variant::Credential(_) => {
                scoped_pair(ctx, req, v).map(|(b, t, ids)| vec![(b, t, String::new(), ids)])
            }
            Variant::Forgery(_) | Variant::Session(_) | Variant::SharedMember => {
                Err(Decision::skip("not applicable"))
            }
            _ => variant_pairs(ctx, v, &base, &twin).map(|ps| {
                ps.into_iter()
                    .map(|(b, t, w)| (b, t, w, ids.clone()))
                    .collect()
            }),
        };
        let d = match pairs {
            Err(d) => d,
            Ok(pairs) => {
                let mut ds = Vec::new();
                for (b, t, what, ids) in pairs {
                    let d = match write_variant(&s, plan, &b, &t, &verify_p, &ids, &mut last).await
                    {
                        Ok(d) => d,
                        Err(WriteStop::VerifyBefore(d)) => match &damaged {
                            Some(by) => Decision::skip(format!(
                                "not judged: the accepted write of variant {by} already changed A's data"
                            )),
                            None => d,
                        },
                        Err(WriteStop::Other(d)) => d,
                    };
                    let failed = d.verdict == Verdict::Fail;
                    ds.push((d, what));
                    if failed {
                        break;
                    }
                }
                worst(ds)
            }
        };
        if d.verdict == Verdict::Fail && damaged.is_none() {
            damaged = Some(plan.variant_name(v));
        }
        out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
    }
    out
}

/// Why a write variant stopped before its rule could judge it.
enum WriteStop {
    /// A's `verify` read was not 2xx before B's write (after an accepted write of an
    /// earlier variant: A's resource is gone, so this variant is not judged).
    VerifyBefore(Decision),
    /// A request could not be sent.
    Other(Decision),
}

async fn write_variant(
    s: &Sender<'_>,
    plan: &CheckPlan,
    b: &Prepared,
    t: &Prepared,
    verify: &Prepared,
    ids: &[String],
    last: &mut Option<Resp>,
) -> Result<Decision, WriteStop> {
    let markers = &s.ctx.markers;
    // The previous variant's last read of A's resource, when it was 2xx, is this one's
    // read before B's write: no write of the check's resource can come between them
    // (the schedule runs one write check at a time per resource, and its variants one
    // after another), so a read now would show the same, but for volatile fields.
    let v0 = match last.take() {
        Some(r) if r.is_success() => r,
        _ => s
            .send(verify, "verify as A (before)")
            .await
            .map_err(WriteStop::Other)?,
    };
    if !v0.is_success() {
        return Err(WriteStop::VerifyBefore(
            Decision::error(format!(
                "verify as A got {} before B's write, not 2xx: the check could not see a change",
                v0.status
            ))
            .with("A got", show(&v0)),
        ));
    }
    if let Some(field) = &verify.graphql
        && let Some(why) = super::graphql::data_problem(&v0, field)
    {
        return Err(WriteStop::VerifyBefore(
            Decision::error(format!(
                "verify as A before B's write: {why}: the check could not see a change"
            ))
            .with("A got", show(&v0)),
        ));
    }
    let a = b_and_twin(s, b, t, ids, WRITE_LABELS)
        .await
        .map_err(WriteStop::Other)?;
    let v1 = s
        .send(verify, "verify as A (after)")
        .await
        .map_err(WriteStop::Other)?;
    // Volatile fields (read timestamps, request ids) are found by reading A's resource
    // once more, and only when the two reads differ: when they are the same, nothing
    // changed, whatever a third read would show. (A field that differs between two
    // reads is ignored; the first and the last read show no difference.) The extra read
    // comes after B's write, where a pair of reads used to come before it: a field
    // that changes on every read changes either way, and a change B made shows in both
    // reads after it. An after-read that cannot be judged is reported by the rule.
    let (volatile, latest) = if v1.status == v0.status && v1.body == v0.body
        || verdict::unjudgeable(&v1, |st| st == v0.status).is_some()
    {
        (verdict::Volatile::default(), None)
    } else {
        let v1b = s
            .send(verify, "verify as A (after, again)")
            .await
            .map_err(WriteStop::Other)?;
        match verdict::unjudgeable(&v1b, |st| st == v0.status) {
            None => (
                verdict::Volatile::Paths(verdict::volatile_paths(&v1.body, &v1b.body)),
                Some(v1b),
            ),
            Some(why) => {
                let got = show(&v1b);
                (verdict::Volatile::Unknown { why, got }, None)
            }
        }
    };
    let rb = &a.b;
    let found = markers_in(&rb.body, markers);
    let input = not_found_input(plan, rb, &a.twin, &a.again, &a.ids, &found);
    let d = match &b.graphql {
        None => verdict::write_rule(&input, &v0, &v1, &volatile),
        Some(field) => {
            // A 200 is no acceptance: the mutation's field must hold a value, without
            // errors; a refusal is compared with the never-issued id's like a read.
            // A's re-read must itself be a GraphQL answer without errors before a
            // difference can be blamed on B (a `null` without errors is a deleted row).
            let broken_after = verify
                .graphql
                .as_ref()
                .and_then(|vf| match super::graphql::answer(&v1, vf) {
                    Err(why) => Some(why),
                    Ok(super::graphql::Answer::Null { errors }) if !errors.is_empty() => {
                        Some(format!("it holds errors ({})", errors.join("; ")))
                    }
                    Ok(_) => None,
                });
            if let Some(why) = broken_after
                && found.is_empty()
                && !super::graphql::accepted(rb, field)
                && v1.is_success()
            {
                return Ok(Decision::error(format!(
                    "verify as A (after): {why}: A's data cannot be compared"
                ))
                .with("A got (after)", show(&v1))
                .with("request", b.line())
                .with("verify", verify.line()));
            }
            let accepted = super::graphql::accepted(rb, field).then(|| {
                format!(
                    "B's mutation was accepted: {} holds a value and there are no errors",
                    super::graphql::field_path(rb, field)
                )
            });
            verdict::write_rule_with(&input, &v0, &v1, &volatile, accepted, &|nf| {
                super::graphql::read_rule(nf, field)
            })
        }
    };
    // The last read of A's resource, for the next variant (not after an unjudgeable one).
    *last = matches!(volatile, verdict::Volatile::Paths(_)).then(|| latest.unwrap_or(v1));
    Ok(d.with("request", b.line()).with("verify", verify.line()))
}

async fn request(ctx: &Ctx, plan: &CheckPlan, c: &RequestCheck) -> Vec<CheckResult> {
    let start = Instant::now();
    let req = &c.request;
    let s = Sender::new(ctx);
    let lookup = ctx.values.lookup(None, None, None);
    if let Some(control) = &c.control {
        let control = async {
            let creq = control.request.as_ref().map(|r| &r.value).unwrap_or(req);
            let p = ctx.prepare(creq, control.as_.unwrap_or(Identity::A), None, None)?;
            let r = s.send(&p, "control").await?;
            let problems = unmet(Some(&control.expect), &r, &lookup, false);
            if !problems.is_empty() {
                return Err(Decision::error(format!(
                    "the control did not meet its expect ({}), so this check could not fail",
                    problems.join("; ")
                ))
                .with("control got", show(&r)));
            }
            Ok(())
        };
        if let Err(d) = control.await {
            return all(ctx, plan, d, start);
        }
    }
    let p = match ctx.prepare(req, c.as_, None, None) {
        Ok(p) => p,
        Err(d) => return all(ctx, plan, d, start),
    };
    let mut out = Vec::new();
    let mut base_decision: Option<Decision> = None;
    let mut forgery_refs = ForgeryRefs::default();
    for v in &plan.variants {
        let vstart = Instant::now();
        let vs = Sender::new(ctx);
        if let Some(d) = interrupted(ctx) {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        if !matches!(v, Variant::Base)
            && let Some(d) = verdict::against_base(base_decision.as_ref(), &plan.variant_name(v))
        {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        let d = match v {
            Variant::Base => {
                let d = match vs.send(&p, "request").await {
                    Err(d) => d,
                    Ok(r) => request_rule(c, &r, &p, &lookup, None),
                };
                base_decision = Some(d.clone());
                d
            }
            Variant::Override(..) => match variant_pairs(ctx, v, &p, &p) {
                Err(d) => d,
                Ok(pairs) => {
                    let mut ds = Vec::new();
                    for (b, _, what) in pairs {
                        let d = match vs.send(&b, "B with A's org id offered").await {
                            Err(d) => d,
                            Ok(r) => request_rule(c, &r, &b, &lookup, Some(&ctx.markers)),
                        };
                        ds.push((d, what));
                    }
                    worst(ds)
                }
            },
            Variant::Forgery(f) => forgery_variant(ctx, &vs, req, &p, *f, &mut forgery_refs).await,
            _ => Decision::skip("not applicable"),
        };
        let retries = s.retries.load(Ordering::Relaxed) + vs.retries.load(Ordering::Relaxed);
        out.push(ctx.result(plan, v, d, vstart, retries));
    }
    out
}

/// A `request` check's answer against its `expect`. For a `tenant_override` variant
/// (`markers` given) an unmet expectation is a failure only when the answer is a 2xx or
/// holds A's data: a request refused because it named another tenant is safe.
fn request_rule(
    c: &RequestCheck,
    r: &Resp,
    p: &Prepared,
    lookup: &dyn Fn(&str) -> Option<String>,
    markers: Option<&verdict::Markers>,
) -> Decision {
    let problems = unmet(c.expect.as_ref(), r, lookup, false);
    // A 5xx, redirect, 429 or 408 the suite did not expect is the target failing:
    // an error, not an unmet expectation (which would be a failure).
    let expected = |st: u16| {
        c.expect
            .as_ref()
            .and_then(|e| e.status.as_ref())
            .is_some_and(|s| s.matches(st))
    };
    if let Some(why) = verdict::unjudgeable(r, expected) {
        return Decision::error(format!("{why}: the answer cannot be judged")).with("got", show(r));
    }
    if problems.is_empty() {
        return Decision::pass(format!("{} as expected", r.status))
            .with("observed", verdict::observed(r));
    }
    if let Some(m) = markers {
        let found = markers_in(&r.body, m);
        if found.is_empty() && !r.is_success() {
            return Decision::pass(format!(
                "refused ({}) when A's org id was offered: the server does not take the tenant from the request",
                r.status
            ))
            .with("observed", verdict::observed(r));
        }
    }
    Decision::fail(problems.join("; "))
        .with("got", show(r))
        .with("request", p.line())
}

async fn identity(ctx: &Ctx, plan: &CheckPlan, req: &Request) -> Vec<CheckResult> {
    let start = Instant::now();
    match control_2xx(ctx, req, "the identity endpoint does not answer A").await {
        Err(d) => return all(ctx, plan, d, start),
        Ok(r) => {
            if let Some(a) = &ctx.a_org
                && !verdict::holds_value(&r.body, a)
            {
                let d = Decision::error("A's identity answer does not contain A's org id: it does not echo the tenant, so it proves nothing")
                        .with("A got", show(&r));
                return all(ctx, plan, d, start);
            }
        }
    }
    let base = match ctx.prepare(req, Identity::B, None, None) {
        Ok(b) => b,
        Err(d) => return all(ctx, plan, d, start),
    };
    let mut base_status = None;
    let mut forgery_refs = ForgeryRefs::default();
    let mut out = Vec::new();
    for v in &plan.variants {
        let vstart = Instant::now();
        let s = Sender::new(ctx);
        if let Some(d) = interrupted(ctx) {
            out.push(ctx.result(plan, v, d, vstart, 0));
            continue;
        }
        let d = match v {
            Variant::Forgery(f) => {
                forgery_variant(ctx, &s, req, &base, *f, &mut forgery_refs).await
            }
            Variant::CrossScope
            | Variant::Credential(_)
            | Variant::Session(_)
            | Variant::SharedMember => Decision::skip("not applicable"),
            Variant::Base | Variant::Override(..) => {
                let p = match v {
                    Variant::Override(ch, name) => ctx
                        .a_org
                        .as_deref()
                        .and_then(|org| apply_override(&base, *ch, name, org)),
                    _ => Some(base.clone()),
                };
                match p {
                    None => {
                        Decision::skip("A's org id is unknown, or the request has no JSON body")
                    }
                    Some(p) => match s.send(&p, "B's identity").await {
                        Err(d) => d,
                        Ok(r) => {
                            if matches!(v, Variant::Base) {
                                base_status = Some(r.status);
                            }
                            let d =
                                verdict::echo_rule(&r, ctx.a_org.as_deref(), ctx.b_org.as_deref());
                            match (v, d.verdict, base_status) {
                                (Variant::Override(..), Verdict::Error, Some(base))
                                    if (200..300).contains(&base) =>
                                {
                                    verdict::override_changed(&plan.variant_name(v), base, r.status)
                                        .map(|f| f.with("got", show(&r)))
                                        .unwrap_or(d)
                                }
                                _ => d,
                            }
                            .with("request", p.line())
                        }
                    },
                }
            }
        };
        out.push(ctx.result(plan, v, d, vstart, s.retries.load(Ordering::Relaxed)));
    }
    out
}

fn jwt_claims(ctx: &Ctx, plan: &CheckPlan) -> Vec<CheckResult> {
    let start = Instant::now();
    plan.variants
        .iter()
        .map(|v| {
            let d = match v {
                Variant::Base => verdict::claim_rule(&verdict::ClaimInput {
                    b_token: ctx.values.b.token(),
                    a_token: ctx.values.a.token(),
                    tenant_claim: ctx.tenant_claim.as_deref(),
                    a_org: ctx.a_org.as_deref(),
                    b_org: ctx.b_org.as_deref(),
                }),
                Variant::Forgery(f) => match ctx.forge(*f) {
                    // Forgeries are sent per read URL and to identity; here only the
                    // reason a variant cannot run is reported once.
                    Err(why) => Decision::skip(why.to_string()),
                    Ok(_) => Decision::skip("sent to every read and list URL and to identity"),
                },
                _ => Decision::skip("not applicable"),
            };
            ctx.result(plan, v, d, start, 0)
        })
        .collect()
}

/// The pool-reuse attack: per round, A's authenticated request, then each probe (an
/// anonymous check, B's list, B's identity) right after it; judged by
/// [`verdict::pool_reuse_rule`].
async fn pool_reuse(ctx: &Ctx, plan: &CheckPlan, pr: &crate::plan::PoolReuse) -> Vec<CheckResult> {
    let start = Instant::now();
    let s = Sender::new(ctx);
    let (primer, b_primer) = match (
        ctx.prepare(&pr.primer, Identity::A, None, None),
        ctx.prepare(&pr.primer, Identity::B, None, None),
    ) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(d), _) | (_, Err(d)) => return all(ctx, plan, d, start),
    };
    let mut probes = Vec::new();
    let mut notes = Vec::new();
    for (who, req) in &pr.probes {
        let p = match ctx.prepare(req, *who, None, None) {
            Ok(p) => p,
            Err(d) => return all(ctx, plan, d, start),
        };
        // A probe whose answer holds A's data even right after B's request (not A's) is
        // its own check's finding, not a pooled connection's: left out, and said.
        let _ = s.send(&b_primer, "B's request before the probe").await;
        match s.send(&p, "the probe after B's request").await {
            Ok(r) if !leaks(ctx, &r).is_empty() => notes.push(p.line()),
            _ => probes.push((*who, p)),
        }
    }
    let mut seen = Vec::new();
    'rounds: for round in 1..=pr.rounds {
        for (who, probe) in &probes {
            if let Some(d) = interrupted(ctx) {
                return all(ctx, plan, d, start);
            }
            // A failed primer only weakens this round; the probe is still judged.
            let _ = s.send(&primer, "A's request before the probe").await;
            let what = if *who == Identity::Anon {
                "anonymous"
            } else {
                "B"
            };
            let obs = match s.send(probe, what).await {
                Err(d) => verdict::PoolObservation {
                    round,
                    request: format!("{what}: {}", probe.line()),
                    status: None,
                    leaked: vec![],
                    got: d.summary,
                },
                Ok(r) => verdict::PoolObservation {
                    round,
                    request: format!("{what}: {}", probe.line()),
                    status: Some(r.status),
                    leaked: leaks(ctx, &r),
                    got: show(&r),
                },
            };
            let leak = !obs.leaked.is_empty();
            seen.push(obs);
            if leak {
                break 'rounds;
            }
        }
    }
    let mut d = verdict::pool_reuse_rule(&seen, pr.rounds, probes.len())
        .with("before each probe", format!("as A: {}", primer.line()));
    if !notes.is_empty() {
        d = d.with(
            "left out",
            format!(
                "holds A's data after B's request too (its own check reports it): {}",
                notes.join(", ")
            ),
        );
    }
    if probes.is_empty() && d.verdict == Verdict::Pass {
        d = Decision::skip("every probe already holds A's data on its own: nothing left to attribute to a pooled connection")
            .with("left out", notes.join(", "));
    }
    vec![ctx.result(
        plan,
        &Variant::Base,
        d,
        start,
        s.retries.load(Ordering::Relaxed),
    )]
}

/// A's markers, and A's org id as a value, in an answer to an anonymous request or to B.
fn leaks(ctx: &Ctx, r: &Resp) -> Vec<String> {
    let mut leaked = markers_in(&r.body, &ctx.markers);
    if let Some(a) = ctx.a_org.as_deref()
        && verdict::holds_value(&r.body, a)
        && !leaked.iter().any(|m| m == a)
    {
        leaked.push(a.to_string());
    }
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::model::Key;
    use crate::suite::template::Tpl;

    #[test]
    fn a_checks_own_credential_is_never_sent_for_as_control() {
        let auth = AuthSpec {
            header: "Authorization".into(),
            value: Tpl::literal("Bearer {{token}}"),
            cookies: vec![],
            member: None,
        };
        let mut req = Request::get(Tpl::literal("/things"));
        for (k, v) in [("authorization", "Bearer B-KEY"), ("X-Trace", "1")] {
            req.headers.0.push((
                Key {
                    name: k.into(),
                    loc: Default::default(),
                },
                Tpl::literal(v),
            ));
        }
        let a = without_auth_header(&auth, &req);
        let names: Vec<&str> = a.headers.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(names, vec!["X-Trace"]);
    }
}
