//! The runner (run stage): provision org A and org B (or mint their tokens), seed A,
//! run every check and attack variant as B, audit the database, tear down — and emit
//! every result as an [`Event`]. The runner never prints.
//!
//! Order is fixed here: setup steps run one at a time; read, list and identity checks
//! run concurrently (bounded by `jobs`); writes run one at a time afterwards, so a
//! write that leaks cannot be blamed on another variant's change; teardown always runs,
//! also after a failure, an error or an interrupt. Results are emitted in plan order.

pub mod checks;
pub mod context;
pub mod http;
pub mod jwt;
pub mod setup;
pub mod verdict;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use checks::{Channel, CheckPlan, Ctx, Forgery, Kind, Variant};
use context::{AuthSpec, OrgState, Preparer, Values};
use http::Http;

use crate::outcome::{CheckResult, Created, Event, Layer, RunInfo, RunSummary, Verdict};
use crate::redact::Redactor;
use crate::suite::Loaded;
use crate::suite::load::slug;
use crate::suite::model::{Attacks, Check, Identity, MarkerSpec, Step, Suite, Toggle};
use crate::suite::template::Tpl;

/// How a run behaves (from the command line).
#[derive(Clone, Debug)]
pub struct Options {
    /// Checks run at once.
    pub jobs: usize,
    /// Only checks and variants whose id or name contains this text (case-insensitive).
    pub filter: Option<String>,
    /// Warnings fail the gate.
    pub deny_warnings: bool,
    /// Accept any TLS certificate (reported in every output).
    pub insecure: bool,
    /// Retries of provision, seed and teardown requests on transport errors and
    /// 429/502/503.
    pub setup_retries: u32,
    /// The first wait before a setup retry; each later one doubles (a longer
    /// `Retry-After` from the server wins, up to [`http::MAX_RETRY_AFTER`]).
    pub setup_backoff: Duration,
    /// Retries of a check's request on transport errors only (reported per result).
    pub check_retries: u32,
}

impl Options {
    /// The retry policy of setup steps.
    pub fn setup_policy(&self) -> http::RetryPolicy {
        http::RetryPolicy {
            retries: self.setup_retries,
            backoff: self.setup_backoff,
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            jobs: default_jobs(),
            filter: None,
            deny_warnings: false,
            insecure: false,
            setup_retries: 3,
            setup_backoff: Duration::from_millis(100),
            check_retries: 0,
        }
    }
}

/// Four checks per CPU: checks wait on the network, not the CPU.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get() * 4)
        .unwrap_or(8)
        .min(32)
}

/// Set on Ctrl-C / SIGTERM: no new check starts; teardown still runs.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// RFC 3339 UTC for "now", without a date crate.
pub fn now_rfc3339() -> String {
    let secs = jwt::now();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn attack_on<T>(
    suite: &Suite,
    check: Option<&Check>,
    pick: impl Fn(&Attacks) -> Option<&Toggle<T>>,
) -> bool {
    check
        .and_then(|c| c.attacks.as_ref())
        .and_then(&pick)
        .or_else(|| suite.attacks.as_ref().and_then(&pick))
        .is_none_or(|t| t.enabled())
}

/// The headers, query parameters and body fields A's org id is offered under.
fn override_names(suite: &Suite, check: Option<&Check>) -> Vec<(Channel, String)> {
    let mut out: Vec<(Channel, String)> = Vec::new();
    let mut add = |ch: Channel, n: &str| {
        if !out
            .iter()
            .any(|(c, x)| *c == ch && x.eq_ignore_ascii_case(n))
        {
            out.push((ch, n.to_string()));
        }
    };
    for h in ["X-Org-Id", "X-Tenant-Id", "X-Organization-Id"] {
        add(Channel::Header, h);
    }
    for q in ["org_id", "tenant_id", "organization_id"] {
        add(Channel::Query, q);
    }
    for b in ["org_id", "tenant_id"] {
        add(Channel::Body, b);
    }
    for a in [
        suite.attacks.as_ref(),
        check.and_then(|c| c.attacks.as_ref()),
    ]
    .into_iter()
    .flatten()
    {
        if let Some(Toggle::Configured(o)) = &a.tenant_override {
            o.headers.iter().for_each(|n| add(Channel::Header, n));
            o.query.iter().for_each(|n| add(Channel::Query, n));
            o.body.iter().for_each(|n| add(Channel::Body, n));
        }
    }
    out
}

/// The checks and variants a suite asks for, in report order, filtered.
pub fn plan(suite: &Suite, has_signer: bool, filter: Option<&str>) -> Vec<CheckPlan> {
    let nf_suite = suite
        .not_found_status
        .as_ref()
        .map(|s| s.value)
        .unwrap_or(404);
    let mut plans = Vec::new();
    let overrides = |c: Option<&Check>, json_body: bool, reads: bool| -> Vec<Variant> {
        if !attack_on(suite, c, |a| a.tenant_override.as_ref()) {
            return vec![];
        }
        override_names(suite, c)
            .into_iter()
            .filter(|(ch, _)| *ch != Channel::Body || json_body)
            .filter(|(ch, _)| reads || *ch != Channel::Body || json_body)
            .map(|(ch, n)| Variant::Override(ch, n))
            .collect()
    };
    let forgeries = |c: Option<&Check>| -> Vec<Variant> {
        if !attack_on(suite, c, |a| a.token_forgery.as_ref()) {
            return vec![];
        }
        Forgery::ALL
            .into_iter()
            .filter(|f| *f != Forgery::Expired || has_signer)
            .map(Variant::Forgery)
            .collect()
    };
    for (i, c) in suite.checks.iter().enumerate() {
        let oracle = attack_on(suite, Some(c), |a| a.existence_oracle.as_ref());
        let not_found = c
            .not_found_status
            .as_ref()
            .map(|s| s.value)
            .unwrap_or(nf_suite);
        let json_obj = |r: &crate::suite::model::Request| {
            matches!(r.json, Some(crate::suite::model::JValue::Map(_)))
        };
        let (kind, mut variants) = if let Some(r) = &c.read {
            let mut v = vec![Variant::Base];
            v.extend(overrides(Some(c), json_obj(&r.request), true));
            v.extend(forgeries(Some(c)));
            (Kind::Read(i), v)
        } else if let Some(r) = &c.list {
            let mut v = vec![Variant::Base];
            v.extend(overrides(Some(c), json_obj(&r.request), true));
            (Kind::List(i), v)
        } else if let Some(w) = &c.write {
            let mut v = vec![Variant::Base];
            v.extend(overrides(Some(c), json_obj(&w.value), false));
            (Kind::Write(i), v)
        } else {
            (Kind::Request(i), vec![Variant::Base])
        };
        let mut p = CheckPlan {
            kind,
            name: c.name.value.clone(),
            slug: slug(&c.name.value),
            variants: vec![],
            not_found,
            oracle,
        };
        variants.retain(|v| keep(filter, &p, v));
        p.variants = variants;
        if !p.variants.is_empty() {
            plans.push(p);
        }
    }
    if let Some(orgs) = &suite.orgs {
        let claims_on = attack_on(suite, None, |a| a.claim_integrity.as_ref());
        if let Some(id) = &orgs.identity {
            let mut v = Vec::new();
            if claims_on {
                v.push(Variant::Base);
            }
            v.extend(overrides(
                None,
                matches!(id.request.json, Some(crate::suite::model::JValue::Map(_))),
                true,
            ));
            v.extend(forgeries(None));
            let mut p = CheckPlan {
                kind: Kind::Identity,
                name: "identity echoes B's org only".into(),
                slug: "identity".into(),
                variants: vec![],
                not_found: nf_suite,
                oracle: true,
            };
            v.retain(|x| keep(filter, &p, x));
            p.variants = v;
            if !p.variants.is_empty() {
                plans.push(p);
            }
        }
        let mut v = Vec::new();
        if claims_on {
            v.push(Variant::Base);
        }
        if attack_on(suite, None, |a| a.token_forgery.as_ref()) && !has_signer {
            // Reported once, so the gap is visible rather than silently untested.
            v.push(Variant::Forgery(Forgery::Expired));
        }
        let mut p = CheckPlan {
            kind: Kind::Jwt,
            name: "B's token carries B's org only".into(),
            slug: "jwt".into(),
            variants: vec![],
            not_found: nf_suite,
            oracle: true,
        };
        v.retain(|x| keep(filter, &p, x));
        p.variants = v;
        if !p.variants.is_empty() && !suite.checks.is_empty() {
            plans.push(p);
        }
    }
    plans
}

fn keep(filter: Option<&str>, p: &CheckPlan, v: &Variant) -> bool {
    match filter {
        None => true,
        Some(f) => {
            let f = f.to_ascii_lowercase();
            p.variant_id(v).to_ascii_lowercase().contains(&f)
                || p.name.to_ascii_lowercase().contains(&f)
        }
    }
}

/// Everything the run needs to emit, collected in order.
struct Emitter<'a> {
    sink: &'a mut dyn FnMut(Event),
    results: Vec<CheckResult>,
}

impl Emitter<'_> {
    fn result(&mut self, r: CheckResult) {
        self.results.push(r.clone());
        (self.sink)(Event::Finished(r));
    }
    fn phase(&mut self, s: impl Into<String>) {
        (self.sink)(Event::Phase(s.into()));
    }
}

fn setup_error(
    id: &str,
    name: &str,
    summary: String,
    evidence: Vec<(String, String)>,
    redactor: &Redactor,
) -> CheckResult {
    let mut r = CheckResult::new(
        id,
        name,
        "setup",
        Layer::Setup,
        Verdict::Error,
        one_line(&redactor.redact(&summary)),
    );
    for (l, t) in evidence {
        r = r.with(l, redactor.redact(&t));
    }
    r
}

/// A summary as the one line every report promises: line breaks (from a server's
/// message, a suite value, a library's error) become spaces.
pub(crate) fn one_line(s: &str) -> String {
    if !s.contains(['\n', '\r']) {
        return s.to_string();
    }
    s.split(['\n', '\r'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs a loaded suite to the end and returns the summary (also emitted as `Ended`).
pub async fn run_suite(
    loaded: Arc<Loaded>,
    opts: &Options,
    redactor: &Redactor,
    cancel: Cancel,
    sink: &mut dyn FnMut(Event),
) -> RunSummary {
    let started = Instant::now();
    let suite = &loaded.suite;
    let run_id = context::new_run_id();
    for e in &loaded.env {
        if e.secret {
            redactor.add(&e.name, &e.value);
        }
    }
    let base_url = suite.target.as_ref().and_then(|t| t.base_url.as_literal());
    sink(Event::Started(RunInfo {
        suite_name: suite.name.value.clone(),
        suite_path: Some(loaded.path.clone()),
        suite_sha256: Some(loaded.sha256.clone()),
        run_id: run_id.clone(),
        target: base_url.as_ref().map(|u| redactor.redact(u)),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: now_rfc3339(),
    }));
    let mut em = Emitter {
        sink,
        results: Vec::new(),
    };
    let mut created: Vec<Created> = Vec::new();
    let mut notices = Vec::new();
    if opts.insecure {
        notices.push("--insecure: TLS certificates were NOT verified; a verdict over an unverified connection proves less".to_string());
    }

    let signer = match signer_of(suite, redactor) {
        Ok(s) => s,
        Err(e) => {
            em.result(setup_error(
                "setup/signing-key",
                "signing key",
                e,
                vec![],
                redactor,
            ));
            None
        }
    };
    let plans = plan(suite, signer.is_some(), opts.filter.as_deref());
    if let (Some(f), true) = (&opts.filter, plans.is_empty() && suite.database.is_none()) {
        em.result(no_match(f, redactor));
    }

    let mut interrupted = false;
    let mut probe_orgs: Option<(String, String)> = None;
    let mut pending_teardown: Option<PendingTeardown> = None;
    if !plans.is_empty() && !em.results.iter().any(|r| r.verdict == Verdict::Error) {
        let outcome = http_phase(
            &loaded,
            opts,
            redactor,
            &cancel,
            &run_id,
            signer,
            plans,
            &mut em,
            &mut created,
        )
        .await;
        interrupted = outcome.interrupted;
        probe_orgs = outcome.orgs;
        pending_teardown = outcome.teardown;
    }

    if let Some(db) = &suite.database {
        if !cancel.is_cancelled() {
            em.phase("auditing the database");
            let cfg = audit_config(db, probe_orgs, redactor);
            notices.extend(crate::db::notices(&cfg));
            let filter = opts.filter.as_deref().map(str::to_ascii_lowercase);
            for r in crate::db::audit(&cfg, redactor).await {
                let keep = filter.as_deref().is_none_or(|f| {
                    r.id.to_ascii_lowercase().contains(f)
                        || r.check.to_ascii_lowercase().contains(f)
                });
                if keep {
                    em.result(r);
                }
            }
            if let (Some(f), true) = (&opts.filter, em.results.is_empty()) {
                em.result(no_match(f, redactor));
            }
        } else {
            interrupted = true;
        }
    }

    // Last, and always (also after failures, errors and interrupts).
    if let (Some(mut t), Some(orgs)) = (pending_teardown, suite.orgs.as_ref()) {
        teardown(
            &t.http,
            orgs,
            &t.auth,
            &mut t.values,
            &t.provisioned,
            opts,
            redactor,
            &mut em,
            &mut created,
        )
        .await;
    }

    let counts = crate::outcome::Counts::of(&em.results);
    let exit_code = crate::exit::for_counts(&counts, opts.deny_warnings, interrupted);
    let summary = RunSummary {
        counts,
        duration: started.elapsed(),
        exit_code,
        incomplete: interrupted,
        created,
        notices,
    };
    (em.sink)(Event::Ended(summary.clone()));
    summary
}

/// The error for a `--filter` that selects nothing: an empty run must never pass.
fn no_match(filter: &str, redactor: &Redactor) -> CheckResult {
    setup_error(
        "setup/filter",
        "--filter",
        format!(
            "no check, variant or database result matches --filter `{filter}`: nothing to prove"
        ),
        vec![],
        redactor,
    )
}

/// The audit configuration of a suite's `database:` section.
pub fn audit_config(
    db: &crate::suite::model::Database,
    orgs: Option<(String, String)>,
    redactor: &Redactor,
) -> crate::db::AuditConfig {
    let url = db.url.to_string();
    redactor.add_url_password("database password", &url);
    let probe = db.probe.as_ref().map(|p| {
        let u = p.url.to_string();
        redactor.add_url_password("app database password", &u);
        crate::db::ProbeConfig {
            url: u,
            orgs: orgs.map(|(a, b)| crate::db::ProbeOrgs { a, b }),
        }
    });
    crate::db::AuditConfig {
        url,
        tenant_columns: db.tenant_column.0.clone(),
        schemas: db.schemas.clone(),
        tables: db.tables.clone(),
        exempt: db.exempt.clone(),
        app_role: db.app_role.as_ref().map(|t| t.to_string()),
        tenant_setting: db.tenant_setting.clone(),
        probe,
        model: db.tenant_model(),
    }
}

fn signer_of(suite: &Suite, redactor: &Redactor) -> Result<Option<jwt::Signer>, String> {
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
fn tls_trust(
    target: &crate::suite::model::Target,
    opts: &Options,
) -> Result<http::TlsTrust, String> {
    let extra_roots = match target.tls.as_ref().and_then(|t| t.ca.as_ref()) {
        Some(ca) if !opts.insecure => http::TlsTrust::read_ca(&ca.to_string())?,
        _ => Vec::new(),
    };
    Ok(http::TlsTrust {
        insecure: opts.insecure,
        extra_roots,
    })
}

struct HttpOutcome {
    interrupted: bool,
    orgs: Option<(String, String)>,
    /// What teardown needs; it runs after the database probe, which needs both orgs'
    /// rows to still exist.
    teardown: Option<PendingTeardown>,
}

/// The orgs to tear down and how to reach them.
struct PendingTeardown {
    http: Http,
    auth: AuthSpec,
    values: Values,
    provisioned: Vec<Identity>,
}

#[allow(clippy::too_many_arguments)]
async fn http_phase(
    loaded: &Arc<Loaded>,
    opts: &Options,
    redactor: &Redactor,
    cancel: &Cancel,
    run_id: &str,
    signer: Option<jwt::Signer>,
    plans: Vec<CheckPlan>,
    em: &mut Emitter<'_>,
    created: &mut Vec<Created>,
) -> HttpOutcome {
    let suite = &loaded.suite;
    let Some(target) = &suite.target else {
        return HttpOutcome {
            interrupted: false,
            orgs: None,
            teardown: None,
        };
    };
    let Some(orgs) = &suite.orgs else {
        return HttpOutcome {
            interrupted: false,
            orgs: None,
            teardown: None,
        };
    };
    let timeout = target
        .timeout
        .map(|d| d.0)
        .filter(|d| !d.is_zero())
        .unwrap_or(Duration::from_secs(10));
    let mut values = Values {
        run_id: run_id.to_string(),
        ..Values::default()
    };
    // Vars, in order: each may use builtins and earlier vars.
    for (k, t) in suite.vars.iter() {
        let v = t
            .render(&values.lookup(None, None, None))
            .unwrap_or_default();
        if crate::suite::template::is_secret_name(&k.name) {
            redactor.add(&k.name, &v);
        }
        values.vars.insert(k.name.clone(), v);
    }
    let (base_url, default_headers) = {
        let lookup_plain = values.lookup(None, None, None);
        let base_url = target.base_url.render(&lookup_plain).unwrap_or_default();
        let mut default_headers = Vec::new();
        for (k, t) in target.headers.iter() {
            let v = t.render(&lookup_plain).unwrap_or_default();
            if crate::suite::template::is_secret_name(&k.name) {
                redactor.add(&k.name, &v);
            }
            default_headers.push((k.name.clone(), v));
        }
        (base_url, default_headers)
    };
    let tls = match tls_trust(target, opts) {
        Ok(t) => t,
        Err(e) => {
            em.result(setup_error("setup/tls", "target.tls", e, vec![], redactor));
            return HttpOutcome {
                interrupted: false,
                orgs: None,
                teardown: None,
            };
        }
    };
    let http = match Http::new(&base_url, timeout, default_headers, &tls) {
        Ok(h) => h,
        Err(e) => {
            em.result(setup_error(
                "setup/http-client",
                "HTTP client",
                e,
                vec![],
                redactor,
            ));
            return HttpOutcome {
                interrupted: false,
                orgs: None,
                teardown: None,
            };
        }
    };
    let auth = orgs
        .auth
        .as_ref()
        .map(|a| AuthSpec {
            header: a.header.value.clone(),
            value: a.value.clone(),
        })
        .unwrap_or_else(|| AuthSpec {
            header: "Authorization".into(),
            value: Tpl {
                parts: vec![
                    crate::suite::template::Part::Lit("Bearer ".into()),
                    crate::suite::template::Part::Var("token".into()),
                ],
                loc: Default::default(),
            },
        });

    // Provision (or mint) A then B.
    let mut provisioned: Vec<Identity> = Vec::new();
    let mut ok = true;
    for org in [Identity::A, Identity::B] {
        if cancel.is_cancelled() {
            ok = false;
            break;
        }
        em.phase(format!("provisioning org {}", org.as_str()));
        let r = match &orgs.mint {
            Some(m) => mint_org(m, org, &mut values, signer.as_ref(), redactor),
            None => {
                let steps = &orgs.provision;
                let r = run_steps(
                    &http,
                    &auth,
                    &mut values,
                    steps,
                    org,
                    Some(org),
                    &opts.setup_policy(),
                    redactor,
                    "provision",
                )
                .await;
                if r.is_ok() || values.org(org).is_some_and(|s| !s.captures.is_empty()) {
                    provisioned.push(org);
                    let ids = values
                        .org(org)
                        .map(|s| ids_of(&s.captures, redactor))
                        .unwrap_or_default();
                    created.push(Created {
                        org: org.as_str().into(),
                        what: "org".into(),
                        ids,
                        removed: false,
                    });
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
            ok = false;
            break;
        }
    }
    for org in [Identity::A, Identity::B] {
        if let Some(t) = values.org(org).and_then(|s| s.token()) {
            redactor.add(&format!("token {}", org.as_str()), t);
        }
    }

    // Seed as A.
    if ok && !suite.seed.is_empty() {
        em.phase("seeding org a");
        for step in &suite.seed {
            if cancel.is_cancelled() {
                ok = false;
                break;
            }
            let seeder = step.as_.unwrap_or(Identity::A);
            let state_of = |v: &Values| {
                if seeder == Identity::B {
                    v.b.clone()
                } else {
                    v.a.clone()
                }
            };
            let before: BTreeSet<String> = state_of(&values).captures.keys().cloned().collect();
            let r = run_steps(
                &http,
                &auth,
                &mut values,
                std::slice::from_ref(step),
                step.as_.unwrap_or(Identity::A),
                None,
                &opts.setup_policy(),
                redactor,
                "seed",
            )
            .await;
            let new: BTreeMap<String, String> = state_of(&values)
                .captures
                .iter()
                .filter(|(k, _)| !before.contains(*k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            created.push(Created {
                org: if seeder == Identity::B { "b" } else { "a" }.into(),
                what: step
                    .name
                    .clone()
                    .unwrap_or_else(|| step.request.value.url.to_string()),
                ids: ids_of(&new, redactor),
                removed: false,
            });
            if let Err(e) = r {
                em.result(setup_error(
                    "setup/seed",
                    "seed org a",
                    e.summary,
                    e.evidence,
                    redactor,
                ));
                ok = false;
                break;
            }
        }
    }

    let a_org = org_id_of(&values.a, suite);
    let b_org = org_id_of(&values.b, suite);
    let mut interrupted = cancel.is_cancelled();
    let teardown_http = http.clone();
    if ok {
        let markers = markers_of(suite, &values, redactor);
        let ctx = Arc::new(Ctx {
            loaded: loaded.clone(),
            http,
            redactor: redactor.clone(),
            values: values.clone(),
            auth: auth.clone(),
            markers,
            a_org: a_org.clone(),
            b_org: b_org.clone(),
            tenant_claim: orgs.tenant_claim.as_ref().map(|t| t.value.clone()),
            signer,
            check_retries: opts.check_retries,
            cancel: cancel.clone(),
        });
        interrupted |= run_plans(&ctx, plans, opts.jobs, cancel, em).await;
    }
    // Teardown (after the database probe, in `run_suite`) uses the same client: the
    // same trust and the same default headers (a gateway key in `target.headers` is
    // needed to delete as much as to create).
    let pending = Some(PendingTeardown {
        http: teardown_http,
        auth,
        values,
        provisioned,
    });
    interrupted |= cancel.is_cancelled();
    let orgs_pair = match (a_org, b_org) {
        (Some(a), Some(b)) if ok => Some((a, b)),
        _ => None,
    };
    HttpOutcome {
        interrupted,
        orgs: orgs_pair,
        teardown: pending,
    }
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
fn markers_of(suite: &Suite, values: &Values, _redactor: &Redactor) -> Vec<String> {
    let lookup = values.lookup(None, None, None);
    let b_values: BTreeSet<&String> = values.b.captures.values().collect();
    let mut out: Vec<String> = values
        .a
        .captures
        .values()
        .filter(|v| v.chars().count() >= 8)
        .filter(|v| !b_values.contains(v))
        .cloned()
        .collect();
    let mut excluded = Vec::new();
    for m in &suite.markers {
        match m {
            MarkerSpec::Include(t) => out.extend(t.render(&lookup).ok()),
            MarkerSpec::Exclude(t) => excluded.extend(t.render(&lookup).ok()),
        }
    }
    // Check-level markers are added per check by the plan; suite-wide ones suffice here.
    for c in &suite.checks {
        for m in &c.markers {
            match m {
                MarkerSpec::Include(t) => out.extend(t.render(&lookup).ok()),
                MarkerSpec::Exclude(t) => excluded.extend(t.render(&lookup).ok()),
            }
        }
    }
    out.retain(|m| !m.is_empty() && !excluded.contains(m));
    out.sort();
    out.dedup();
    out
}

fn mint_org(
    m: &crate::suite::model::Mint,
    org: Identity,
    values: &mut Values,
    signer: Option<&jwt::Signer>,
    redactor: &Redactor,
) -> Result<(), setup::StepError> {
    let err = |s: String| setup::StepError {
        summary: s,
        evidence: vec![],
    };
    let signer = signer.ok_or_else(|| err("no usable signing key for `orgs.mint`".into()))?;
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
            .map_err(err)?;
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
        // Provision/teardown captures belong to the org being set up; a seed step's to
        // the org it ran as (`as: b` seeds B's own rows, for the database probe).
        let owner = bare.unwrap_or(if identity == Identity::B {
            Identity::B
        } else {
            Identity::A
        });
        for (k, spec) in step.capture.iter() {
            let v = setup::capture(spec, &resp).map_err(|m| setup::StepError {
                summary: format!("{what} `{name}`: capture `{}`: {m}", k.name),
                evidence: vec![("answer".into(), verdict::show(&resp))],
            })?;
            if k.name == "token" || crate::suite::template::is_secret_name(&k.name) {
                redactor.add(&format!("{} {}", k.name, owner.as_str()), &v);
            }
            let state = if owner == Identity::A {
                &mut values.a
            } else {
                &mut values.b
            };
            state.captures.insert(k.name.clone(), v);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn teardown(
    http: &Http,
    orgs: &crate::suite::model::Orgs,
    auth: &AuthSpec,
    values: &mut Values,
    provisioned: &[Identity],
    opts: &Options,
    redactor: &Redactor,
    em: &mut Emitter<'_>,
    created: &mut [Created],
) {
    if orgs.teardown.is_empty() {
        return;
    }
    // B first: A's data is the evidence until the end.
    for org in provisioned.iter().rev() {
        em.phase(format!("tearing down org {}", org.as_str()));
        let mut all_ok = true;
        for step in &orgs.teardown {
            let r = run_steps(
                http,
                auth,
                values,
                std::slice::from_ref(step),
                *org,
                Some(*org),
                &opts.setup_policy(),
                redactor,
                "teardown",
            )
            .await;
            if let Err(e) = r {
                all_ok = false;
                em.result(setup_error(
                    &format!("setup/teardown-{}", org.as_str()),
                    &format!("teardown org {}", org.as_str()),
                    format!("{} (what it created may be left behind)", e.summary),
                    e.evidence,
                    redactor,
                ));
            }
        }
        if all_ok {
            for c in created.iter_mut().filter(|c| c.org == org.as_str()) {
                c.removed = true;
            }
        }
    }
}

/// Runs the planned checks: non-writes concurrently (at most `jobs` at once), then
/// writes one at a time; emits results in plan order. Returns true when interrupted.
/// On an interrupt no check starts; the running ones finish (each is bounded by the
/// timeout).
async fn run_plans(
    ctx: &Arc<Ctx>,
    plans: Vec<CheckPlan>,
    jobs: usize,
    cancel: &Cancel,
    em: &mut Emitter<'_>,
) -> bool {
    let suite = &ctx.loaded.suite;
    let n = plans.len();
    em.phase(format!("running {n} checks as org b"));
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Vec<CheckResult>)>();
    let sem = Arc::new(tokio::sync::Semaphore::new(jobs.max(1)));
    let mut writes = Vec::new();
    for (i, p) in plans.into_iter().enumerate() {
        if p.is_write(suite) {
            writes.push((i, p));
            continue;
        }
        let (ctx, tx, sem, cancel) = (ctx.clone(), tx.clone(), sem.clone(), cancel.clone());
        tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let results = if cancel.is_cancelled() {
                Vec::new()
            } else {
                guarded(ctx, p).await
            };
            let _ = tx.send((i, results));
        });
    }
    // The channel closes once every task has reported.
    drop(tx);
    let mut slots: BTreeMap<usize, Vec<CheckResult>> = BTreeMap::new();
    let mut next = 0usize;
    // Emission holds at the first write until the concurrent phase is over.
    let first_write = writes.first().map(|(i, _)| *i).unwrap_or(n);
    while let Some((i, rs)) = rx.recv().await {
        slots.insert(i, rs);
        emit_ready(&mut slots, &mut next, first_write, em);
    }
    for (i, p) in writes {
        let rs = if cancel.is_cancelled() {
            Vec::new()
        } else {
            guarded(ctx.clone(), p).await
        };
        slots.insert(i, rs);
    }
    emit_ready(&mut slots, &mut next, n, em);
    cancel.is_cancelled()
}

/// Runs one check on its own task, so that a panic in it (a bug in tenantgate) becomes an
/// `error` result for each of its variants instead of a lost result or a hung run.
async fn guarded(ctx: Arc<Ctx>, plan: CheckPlan) -> Vec<CheckResult> {
    match tokio::spawn(checks::run_check(ctx.clone(), plan.clone())).await {
        Ok(results) => results,
        Err(e) => checks::all_error(
            &ctx,
            &plan,
            format!(
                "internal error in tenantgate while running this check ({e}); please report it"
            ),
        ),
    }
}

/// Emits the results of consecutive checks, from `next` up to (not including) `limit`,
/// as long as they are available.
fn emit_ready(
    slots: &mut BTreeMap<usize, Vec<CheckResult>>,
    next: &mut usize,
    limit: usize,
    em: &mut Emitter<'_>,
) {
    while *next < limit {
        match slots.remove(next) {
            Some(rs) => rs.into_iter().for_each(|r| em.result(r)),
            None => break,
        }
        *next += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn suite(extra: &str) -> Suite {
        let text = format!(
            r#"
version: 1
name: t
target: {{ base_url: "http://x" }}
orgs:
  provision:
    - request: {{ method: POST, url: /signup }}
      capture: {{ token: $.t, org_id: $.o }}
  identity: /me
seed:
  - request: {{ method: POST, url: /things }}
    capture: {{ id: $.id }}
checks:
  - name: read it
    read: "/things/{{{{a.id}}}}"
  - name: write it
    write: {{ method: PATCH, url: "/things/{{{{a.id}}}}", json: {{ x: 1 }} }}
    verify: "/things/{{{{a.id}}}}"
{extra}
"#
        );
        crate::suite::load_str("t.yaml", &text, &|_| None)
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())))
            .suite
    }

    fn ids(plans: &[CheckPlan]) -> Vec<String> {
        plans
            .iter()
            .flat_map(|p| p.variants.iter().map(|v| p.variant_id(v)))
            .collect()
    }

    #[test]
    fn every_attack_variant_is_planned_with_a_stable_id() {
        let s = suite("");
        let all = ids(&plan(&s, false, None));
        assert!(all.contains(&"read-it".to_string()));
        assert!(all.contains(&"read-it/tenant_override:header:X-Org-Id".to_string()));
        assert!(all.contains(&"read-it/token_forgery:alg_none".to_string()));
        assert!(
            !all.contains(&"read-it/token_forgery:expired".to_string()),
            "no key: not per read"
        );
        assert!(
            all.contains(&"jwt/token_forgery:expired".to_string()),
            "…but reported once as a gap"
        );
        assert!(
            all.contains(&"write-it/tenant_override:body:org_id".to_string()),
            "JSON body"
        );
        assert!(
            !all.contains(&"read-it/tenant_override:body:org_id".to_string()),
            "no body on the read"
        );
        assert!(all.contains(&"identity/claim_integrity:identity".to_string()));
        assert!(all.contains(&"jwt/claim_integrity:token".to_string()));
        let with_key = ids(&plan(&s, true, None));
        assert!(with_key.contains(&"read-it/token_forgery:expired".to_string()));
    }

    #[test]
    fn attacks_switch_off_at_suite_and_check_level() {
        let s = suite("attacks: { tenant_override: false }");
        assert!(
            !ids(&plan(&s, false, None))
                .iter()
                .any(|i| i.contains("tenant_override"))
        );
        let s = suite("    attacks: { token_forgery: false }");
        let all = ids(&plan(&s, false, None));
        assert!(!all.iter().any(|i| i.starts_with("write-it/token")));
        let s = suite("attacks: { tenant_override: { headers: [X-Account] } }");
        assert!(
            ids(&plan(&s, false, None))
                .contains(&"read-it/tenant_override:header:X-Account".to_string())
        );
    }

    #[test]
    fn the_filter_keeps_matching_variants_only() {
        let s = suite("");
        let f = ids(&plan(&s, false, Some("alg_none")));
        assert!(!f.is_empty());
        assert!(f.iter().all(|i| i.ends_with("alg_none")), "{f:?}");
        assert!(plan(&s, false, Some("no-such-check")).is_empty());
    }

    #[test]
    fn rfc3339_now_is_well_formed() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
