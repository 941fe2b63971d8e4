//! The plan (plan stage, between parse and run): a loaded suite becomes the ordered list
//! of [`CheckPlan`]s a run executes — each carrying its own request(s), its kind, its
//! attack variants and their stable result ids — after the command line's selection.
//! `run` and `validate --list` share it, so what is listed is what runs.

use std::sync::Arc;

use crate::suite::load::slug;
use crate::suite::model::{
    Attacks, Check, Control, Expect, Identity, JValue, Request, Suite, Toggle,
};

/// Where A's org id is offered in a `tenant_override` variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Header,
    Query,
    Body,
}

impl Channel {
    /// The channel's name in variant ids.
    pub fn name(self) -> &'static str {
        match self {
            Channel::Header => "header",
            Channel::Query => "query",
            Channel::Body => "body",
        }
    }
}

/// A forged-token variant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    AlgNone,
    Tampered,
    RandomKey,
    Expired,
    /// Validly signed with the suite's key, but without `exp`: a token that never expires.
    NoExp,
}

impl Forgery {
    pub const ALL: [Forgery; 5] = [
        Forgery::AlgNone,
        Forgery::Tampered,
        Forgery::RandomKey,
        Forgery::Expired,
        Forgery::NoExp,
    ];
    /// The forgery's name in variant ids.
    pub fn name(self) -> &'static str {
        match self {
            Forgery::AlgNone => "alg_none",
            Forgery::Tampered => "tampered",
            Forgery::RandomKey => "random_key",
            Forgery::Expired => "expired",
            Forgery::NoExp => "no_exp",
        }
    }
    /// Whether this forgery needs the suite's signing key.
    pub fn needs_key(self) -> bool {
        matches!(self, Forgery::Expired | Forgery::NoExp)
    }
}

/// One result-producing variant of a check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The check itself (for the identity and jwt checks: `claim_integrity`).
    Base,
    /// A's org id offered through a channel under a name.
    Override(Channel, String),
    /// A forged token instead of B's.
    Forgery(Forgery),
    /// B in A's scope (`{{own.NAME}}` as A's), against a never-issued scope.
    CrossScope,
    /// B in A's scope under B's credential of this name (`orgs.credentials`).
    Credential(String),
    /// An attack on B's opaque session id.
    Session(SessionAttack),
    /// The member of both orgs (`orgs.member`) in B's scope: it must see none of A's
    /// data there, while it does see A's in A's scope.
    SharedMember,
}

/// An attack on opaque session ids (`orgs.session`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionAttack {
    /// Neighbouring values of B's id must open no session.
    Neighbours,
    /// B's id must carry enough entropy.
    Entropy,
    /// A logged-out session must be refused.
    Logout,
}

impl SessionAttack {
    /// The attack's name in variant ids.
    pub fn name(self) -> &'static str {
        match self {
            SessionAttack::Neighbours => "neighbours",
            SessionAttack::Entropy => "entropy",
            SessionAttack::Logout => "logout",
        }
    }
}

/// A `request` check: the request, who sends it, its expectation and its control.
#[derive(Clone, Debug)]
pub struct RequestCheck {
    pub request: Request,
    pub as_: Identity,
    pub expect: Option<Expect>,
    pub control: Option<Control>,
}

/// What a check does, with everything it sends.
#[derive(Clone, Debug)]
pub enum Kind {
    /// B reads A's resource; the twin is a never-issued id.
    Read { request: Arc<Request> },
    /// B's list must hold none of A's markers; `as_` is who sends it (`as:` on the
    /// check, default B; A's control is always A).
    List {
        request: Arc<Request>,
        as_: Identity,
    },
    /// B writes A's resource; A's `verify` read must be unchanged.
    Write {
        write: Box<Request>,
        verify: Arc<Request>,
    },
    /// A request with a declared expectation.
    Request(Box<RequestCheck>),
    /// The `orgs.identity` endpoint.
    Identity { request: Arc<Request> },
    /// B's token's claims.
    Jwt,
    /// The pool-reuse attack: per round, A's authenticated request (`primer`), then
    /// every probe right after it.
    PoolReuse(Box<PoolReuse>),
    /// Mass assignment: B creates in its own scope naming A's org; A's list must not
    /// gain the row, B's must show it.
    MassAssign {
        create: Box<Request>,
        list: Arc<Request>,
        /// The body fields A's org id or scope value is named under.
        fields: Vec<String>,
    },
    /// Attacks on B's opaque session id.
    Session,
}

/// The pool-reuse attack's requests.
#[derive(Clone, Debug)]
pub struct PoolReuse {
    /// Rounds of (A's request, then every probe).
    pub rounds: u32,
    /// An authenticated request sent as A before each probe.
    pub primer: Arc<Request>,
    /// What is sent right after it, and as whom (anonymous, or B).
    pub probes: Vec<(Identity, Arc<Request>)>,
}

/// Rounds of the pool-reuse attack unless the suite says otherwise.
pub const POOL_REUSE_ROUNDS: u32 = 20;

/// A check with its variants, in the order results are reported.
#[derive(Clone, Debug)]
pub struct CheckPlan {
    pub kind: Kind,
    pub name: String,
    pub slug: String,
    pub variants: Vec<Variant>,
    /// The status a missing resource gets (404 unless the suite says otherwise).
    pub not_found: u16,
    /// Whether the existence-oracle rule is on.
    pub oracle: bool,
    /// An explicit `control:` of a `read`, `list` or `write` (extension), replacing the
    /// default control as A. Boxed: rare, and a plan is held per check.
    pub control: Option<Box<Control>>,
}

impl CheckPlan {
    /// The variant's name in reports.
    pub fn variant_name(&self, v: &Variant) -> String {
        match (v, &self.kind) {
            (Variant::Base, Kind::Identity { .. }) => "claim_integrity:identity".into(),
            (Variant::Base, Kind::Jwt) => "claim_integrity:token".into(),
            (Variant::Base, Kind::PoolReuse(_)) => "pool_reuse".into(),
            (Variant::Base, _) => "base".into(),
            (Variant::Override(c, n), _) => format!("tenant_override:{}:{n}", c.name()),
            (Variant::Forgery(f), _) => format!("token_forgery:{}", f.name()),
            (Variant::CrossScope, _) => "cross_scope".into(),
            (Variant::Credential(n), _) => format!("credential:{n}"),
            (Variant::Session(a), _) => format!("session:{}", a.name()),
            (Variant::SharedMember, _) => "shared_member".into(),
        }
    }

    /// The variant's result id: `slug` or `slug/variant`.
    pub fn variant_id(&self, v: &Variant) -> String {
        match (v, &self.kind) {
            (
                Variant::Base,
                Kind::Read { .. }
                | Kind::List { .. }
                | Kind::Write { .. }
                | Kind::Request(_)
                | Kind::PoolReuse(_)
                | Kind::MassAssign { .. },
            ) => self.slug.clone(),
            _ => format!("{}/{}", self.slug, self.variant_name(v)),
        }
    }

    /// Whether the check must run alone (it changes data).
    pub fn is_write(&self) -> bool {
        match &self.kind {
            Kind::Write { .. } | Kind::MassAssign { .. } => true,
            Kind::Request(r) => !r.request.method.is_safe(),
            // Alone, so nothing else reorders the connections between A's request and
            // the probe.
            Kind::PoolReuse(_) => true,
            _ => false,
        }
    }

    /// Every result id of this check, in order.
    pub fn ids(&self) -> impl Iterator<Item = String> + '_ {
        self.variants.iter().map(|v| self.variant_id(v))
    }
}

/// The command line's selection of results: `--filter` (repeatable; a result is kept
/// when any filter matches it) and `--exclude` (repeatable; a result any exclude matches
/// is left out). A pattern matches a result id exactly, or as a check's slug (all of its
/// variants: `brand-is-invisible-to-b` keeps `brand-is-invisible-to-b/…`), or as a glob
/// over the whole id when it holds `*` or `?` (`*/token_forgery:*`, `public.brands.*`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    filters: Vec<String>,
    excludes: Vec<String>,
}

impl Selection {
    /// Everything.
    pub fn all() -> Self {
        Selection::default()
    }

    /// The results `filters` keep, minus those `excludes` leave out.
    pub fn new(filters: Vec<String>, excludes: Vec<String>) -> Self {
        Selection { filters, excludes }
    }

    /// One filter, or none.
    pub fn filter(filter: Option<&str>) -> Self {
        Selection::new(filter.map(str::to_string).into_iter().collect(), vec![])
    }

    /// The filters as given.
    pub fn filters(&self) -> &[String] {
        &self.filters
    }

    /// Whether a result with this id is selected. (`_name`, the check's name, is kept in
    /// the signature for callers; names are not matched: ids are the stable handle.)
    pub fn keeps(&self, id: &str, _name: &str) -> bool {
        (self.filters.is_empty() || self.filters.iter().any(|f| pattern_matches(f, id)))
            && !self.excludes.iter().any(|x| pattern_matches(x, id))
    }

    /// Whether there are filters (`--filter`): without, nothing can be unmatched.
    pub fn has_filters(&self) -> bool {
        !self.filters.is_empty()
    }

    /// The filters that match none of `ids`.
    pub fn unmatched<'a>(&'a self, ids: &[String]) -> Vec<&'a str> {
        self.filters
            .iter()
            .filter(|f| !ids.iter().any(|id| pattern_matches(f, id)))
            .map(String::as_str)
            .collect()
    }
}

/// One slice of a partitioned run (`--partition K/N`): slice `index` (1-based) of
/// `total`. Checks are dealt round-robin over the ordered, selected plan — check number
/// `i` (0-based) belongs to slice `i % total + 1` — with all of a check's variants in
/// the same slice, so every check lands in exactly one slice and the slices differ in
/// size by at most one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Partition {
    /// This slice, from 1 to `total`.
    pub index: u32,
    /// How many slices there are (at least 1).
    pub total: u32,
}

impl Partition {
    /// Keeps only this slice's checks of `plans` (in order).
    pub fn slice(&self, plans: Vec<CheckPlan>) -> Vec<CheckPlan> {
        let (k, n) = (self.index as usize - 1, self.total as usize);
        plans
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % n == k)
            .map(|(_, p)| p)
            .collect()
    }
}

impl std::fmt::Display for Partition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

impl std::str::FromStr for Partition {
    type Err = String;
    /// `K/N` with `1 <= K <= N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a slice K/N with 1 <= K <= N (e.g. 2/3)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u32 = k.trim().parse().map_err(|_| bad())?;
        let total: u32 = n.trim().parse().map_err(|_| bad())?;
        if index == 0 || total == 0 || index > total {
            return Err(bad());
        }
        Ok(Partition { index, total })
    }
}

/// Whether `pattern` selects the result `id` (see [`Selection`]).
pub fn pattern_matches(pattern: &str, id: &str) -> bool {
    if pattern.contains(['*', '?']) {
        return glob(pattern.as_bytes(), id.as_bytes());
    }
    id == pattern
        || id
            .strip_prefix(pattern)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A whole-string glob: `*` any run of characters (`/` and `.` included), `?` one.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// Whether the suite configures a signing key (minted tokens or `sign_with`), so that
/// key-signed forgeries can be planned.
pub fn has_signing_key(suite: &Suite) -> bool {
    suite.orgs.as_ref().is_some_and(|o| o.mint.is_some())
        || matches!(
            suite.attacks.as_ref().and_then(|a| a.token_forgery.as_ref()),
            Some(Toggle::Configured(t)) if t.sign_with.is_some()
        )
}

/// The checks and variants a suite asks for, in report order, selected.
pub fn plan(suite: &Suite, has_signer: bool, selection: &Selection) -> Vec<CheckPlan> {
    let p = Planner { suite, has_signer };
    let nf_suite = suite
        .not_found_status
        .as_ref()
        .map(|s| s.value)
        .unwrap_or(404);
    // Sized once for the few plans added below: a doubling here was the run's peak
    // memory at 10,000 checks.
    let mut plans: Vec<CheckPlan> = Vec::with_capacity(suite.checks.len() + 8);
    plans.extend(suite.checks.iter().map(|c| p.suite_check(c, nf_suite)));
    if let Some(orgs) = &suite.orgs {
        let claims_on = attack_on(suite, None, |a| a.claim_integrity.as_ref());
        if let Some(id) = &orgs.identity {
            let mut v = Vec::new();
            if claims_on {
                v.push(Variant::Base);
            }
            v.extend(p.overrides(None, is_json_object(&id.request), true));
            v.extend(p.forgeries(None));
            plans.push(CheckPlan {
                kind: Kind::Identity {
                    request: id.request.clone(),
                },
                name: "identity echoes B's org only".into(),
                slug: "identity".into(),
                variants: v,
                not_found: nf_suite,
                oracle: true,
                control: None,
            });
        }
        if let Some(sess) = &orgs.session {
            let mut v = vec![
                Variant::Session(SessionAttack::Neighbours),
                Variant::Session(SessionAttack::Entropy),
            ];
            if sess.login.is_some() && sess.logout.is_some() {
                v.push(Variant::Session(SessionAttack::Logout));
            }
            plans.push(CheckPlan {
                kind: Kind::Session,
                name: "B's session id opens no other session".into(),
                slug: "session".into(),
                variants: v,
                not_found: nf_suite,
                oracle: true,
                control: None,
            });
        }
        let mut v = Vec::new();
        if claims_on {
            v.push(Variant::Base);
        }
        if attack_on(suite, None, |a| a.token_forgery.as_ref()) && !has_signer {
            // Reported once, so the gap is visible rather than silently untested.
            v.extend(
                Forgery::ALL
                    .into_iter()
                    .filter(|f| f.needs_key() && forgery_kind_on(suite, None, *f))
                    .map(Variant::Forgery),
            );
        }
        // Cookie-only auth sends no token: there are no claims to judge.
        let sends_token = orgs.auth.as_ref().is_none_or(|a| a.value.is_some());
        if !suite.checks.is_empty() && sends_token {
            plans.push(CheckPlan {
                kind: Kind::Jwt,
                name: "B's token carries B's org only".into(),
                slug: "jwt".into(),
                variants: v,
                not_found: nf_suite,
                oracle: true,
                control: None,
            });
        }
    }
    plans.extend(pool_reuse(suite, &plans, nf_suite));
    for p in &mut plans {
        let snapshot = p.clone();
        p.variants
            .retain(|v| selection.keeps(&snapshot.variant_id(v), &snapshot.name));
    }
    plans.retain(|p| !p.variants.is_empty());
    plans
}

/// The suite and what the run can do, for building each check's variants.
struct Planner<'a> {
    suite: &'a Suite,
    has_signer: bool,
}

impl Planner<'_> {
    fn suite_check(&self, c: &Check, nf_suite: u16) -> CheckPlan {
        let not_found = c
            .not_found_status
            .as_ref()
            .map(|s| s.value)
            .unwrap_or(nf_suite);
        let base = || vec![Variant::Base];
        let (kind, mut variants) = if let (Some(create), Some(l)) = (&c.create, &c.list) {
            (
                Kind::MassAssign {
                    create: Box::new(create.value.clone()),
                    list: l.request.clone(),
                    fields: override_names(self.suite, Some(c))
                        .into_iter()
                        .filter(|(ch, _)| *ch == Channel::Body)
                        .map(|(_, n)| n)
                        .collect(),
                },
                base(),
            )
        } else if let Some(r) = c
            .read
            .as_ref()
            .filter(|r| !names_a(&r.request) && crate::run::scope_uses_own(&r.request))
        {
            // Only the caller's own scope (`/orgs/{{own.slug}}`): nothing of A's is in B's
            // scope, so only the cross-scope variants (added below) can be judged.
            (
                Kind::Read {
                    request: r.request.clone(),
                },
                vec![],
            )
        } else if let Some(r) = &c.read {
            let mut v = base();
            v.extend(self.overrides(Some(c), is_json_object(&r.request), true));
            v.extend(self.forgeries(Some(c)));
            (
                Kind::Read {
                    request: r.request.clone(),
                },
                v,
            )
        } else if let Some(r) = &c.list {
            let as_ = c.as_.unwrap_or(Identity::B);
            let mut v = base();
            v.extend(self.overrides(Some(c), is_json_object(&r.request), true));
            if as_ == Identity::B {
                // Only B's own token is forged; another identity has none to forge.
                v.extend(self.forgeries(Some(c)));
            }
            (
                Kind::List {
                    request: r.request.clone(),
                    as_,
                },
                v,
            )
        } else if let (Some(w), Some(verify)) = (&c.write, &c.verify) {
            let mut v = base();
            v.extend(self.overrides(Some(c), is_json_object(&w.value), false));
            (
                Kind::Write {
                    write: Box::new(w.value.clone()),
                    verify: verify.request.clone(),
                },
                v,
            )
        } else {
            // The loader guarantees a check has exactly one of read, list, write (with
            // verify) or request; an empty GET of "" would only be reached by a loader bug.
            let request = c
                .request
                .as_ref()
                .map(|r| r.value.clone())
                .unwrap_or_else(|| Request::get(Default::default()));
            let as_ = c.as_.unwrap_or(Identity::B);
            let mut v = base();
            if as_ == Identity::B && reads_only(&request) {
                // B's request, repeated with A's org id offered and with forged tokens:
                // its `expect` must hold for every one. (Not a write: repeating it would
                // create what no teardown knows of.)
                v.extend(self.overrides(Some(c), is_json_object(&request), true));
                v.extend(self.forgeries(Some(c)));
            }
            (
                Kind::Request(Box::new(RequestCheck {
                    request,
                    as_,
                    expect: c.expect.as_deref().cloned(),
                    control: c.control.as_deref().cloned(),
                })),
                v,
            )
        };
        variants.extend(self.scoped(&kind, c));
        CheckPlan {
            kind,
            name: c.name.value.clone(),
            slug: slug(&c.name.value),
            variants,
            not_found,
            oracle: attack_on(self.suite, Some(c), |a| a.existence_oracle.as_ref()),
            control: c.control.clone().filter(|_| c.request.is_none()),
        }
    }

    /// The `tenant_override` variants of a check (body fields only for JSON object
    /// bodies).
    fn overrides(&self, c: Option<&Check>, json_body: bool, reads: bool) -> Vec<Variant> {
        if !attack_on(self.suite, c, |a| a.tenant_override.as_ref()) {
            return vec![];
        }
        override_names(self.suite, c)
            .into_iter()
            .filter(|(ch, _)| *ch != Channel::Body || json_body)
            .filter(|(ch, _)| reads || *ch != Channel::Body || json_body)
            .map(|(ch, n)| Variant::Override(ch, n))
            .collect()
    }

    /// The cross-scope and credential variants of a read, list or write that names the
    /// caller's own scope (`{{own.NAME}}`), and, with `orgs.member`, the shared-member
    /// variant of such a list, or of such a read of A's object.
    fn scoped(&self, kind: &Kind, c: &Check) -> Vec<Variant> {
        let req = match kind {
            Kind::Read { request } | Kind::List { request, .. } => request,
            Kind::Write { write, .. } => &**write,
            _ => return vec![],
        };
        if !crate::run::scope_uses_own(req) {
            return vec![];
        }
        let mut v = vec![Variant::CrossScope];
        if let Some(o) = &self.suite.orgs {
            v.extend(
                o.credentials
                    .iter()
                    .map(|(k, _)| Variant::Credential(k.name.clone())),
            );
            let member_can_judge = match kind {
                Kind::List { .. } => true,
                Kind::Read { request } => names_a(request),
                _ => false,
            };
            if o.member.is_some()
                && member_can_judge
                && attack_on(self.suite, Some(c), |a| a.shared_member.as_ref())
            {
                v.push(Variant::SharedMember);
            }
        }
        v
    }

    /// The `token_forgery` variants of a check (key-signed ones only with a key).
    fn forgeries(&self, c: Option<&Check>) -> Vec<Variant> {
        if !attack_on(self.suite, c, |a| a.token_forgery.as_ref()) {
            return vec![];
        }
        Forgery::ALL
            .into_iter()
            .filter(|f| !f.needs_key() || self.has_signer)
            .filter(|f| forgery_kind_on(self.suite, c, *f))
            .map(Variant::Forgery)
            .collect()
    }
}

/// The pool-reuse attack over the planned checks: the anonymous `request` checks, the
/// lists (as B) and the identity endpoint (as B), each right after an authenticated
/// request as A (the first list, else the identity endpoint, else the first read).
fn pool_reuse(suite: &Suite, plans: &[CheckPlan], not_found: u16) -> Option<CheckPlan> {
    let toggle = suite.attacks.as_ref().and_then(|a| a.pool_reuse.as_ref());
    if !toggle.is_none_or(|t| t.enabled()) {
        return None;
    }
    let rounds = toggle
        .and_then(|t| t.options())
        .and_then(|o| o.rounds)
        .unwrap_or(POOL_REUSE_ROUNDS)
        .max(1);
    let mut probes = Vec::new();
    for p in plans {
        match &p.kind {
            Kind::Request(r) if r.as_ == Identity::Anon && r.request.method.is_safe() => {
                probes.push((Identity::Anon, Arc::new(r.request.clone())))
            }
            Kind::List { request, as_ } => probes.push((*as_, request.clone())),
            Kind::Identity { request } => probes.push((Identity::B, request.clone())),
            _ => {}
        }
    }
    let primer = plans
        .iter()
        .find_map(|p| match &p.kind {
            Kind::List { request, .. } => Some(request),
            _ => None,
        })
        .or_else(|| {
            plans.iter().find_map(|p| match &p.kind {
                Kind::Identity { request } | Kind::Read { request } => Some(request),
                _ => None,
            })
        })?
        .clone();
    (!probes.is_empty()).then(|| CheckPlan {
        kind: Kind::PoolReuse(Box::new(PoolReuse {
            rounds,
            primer,
            probes,
        })),
        name: "no tenant outlives A's request on a pooled connection".into(),
        slug: "pool-reuse".into(),
        variants: vec![Variant::Base],
        not_found,
        oracle: true,
        control: None,
    })
}

/// Whether a request names a value captured for A (`{{a.NAME}}`).
fn names_a(r: &Request) -> bool {
    let mut tpls = vec![&r.url];
    tpls.extend(r.headers.iter().map(|(_, t)| t));
    tpls.extend(r.query.iter().map(|(_, t)| t));
    if let Some(j) = &r.json {
        tpls.extend(j.templates());
    }
    tpls.extend(r.body.as_deref());
    tpls.iter().any(|t| t.vars().any(|v| v.starts_with("a.")))
}

/// Whether a request only reads: a safe method, or a GraphQL document without a
/// `mutation`.
fn reads_only(r: &Request) -> bool {
    match &r.graphql {
        Some(g) => !g.query.value.contains("mutation"),
        None => r.method.is_safe(),
    }
}

fn is_json_object(r: &Request) -> bool {
    matches!(r.json, Some(JValue::Map(_)))
}

/// Whether an attack is on for a check: the check's own switch, else the suite's, else on.
fn attack_on<T>(
    suite: &Suite,
    check: Option<&Check>,
    pick: impl Fn(&Attacks) -> Option<&Toggle<T>>,
) -> bool {
    check
        .and_then(|c| c.attacks.as_deref())
        .and_then(&pick)
        .or_else(|| suite.attacks.as_ref().and_then(&pick))
        .is_none_or(|t| t.enabled())
}

/// Whether one forgery kind is on (`attacks.token_forgery: { alg_none: false }`): the
/// check's own setting, else the suite's, else on.
fn forgery_kind_on(suite: &Suite, check: Option<&Check>, f: Forgery) -> bool {
    let setting = |a: &Attacks| match &a.token_forgery {
        Some(Toggle::Configured(t)) => match f.name() {
            "alg_none" => t.alg_none,
            "tampered" => t.tampered,
            "random_key" => t.random_key,
            "expired" => t.expired,
            _ => t.no_exp,
        },
        _ => None,
    };
    check
        .and_then(|c| c.attacks.as_deref())
        .and_then(setting)
        .or_else(|| suite.attacks.as_ref().and_then(setting))
        .unwrap_or(true)
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
        check.and_then(|c| c.attacks.as_deref()),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Redactor;

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
        plans.iter().flat_map(|p| p.ids()).collect()
    }

    fn all(s: &Suite, key: bool) -> Vec<String> {
        ids(&plan(s, key, &Selection::all()))
    }

    #[test]
    fn every_attack_variant_is_planned_with_a_stable_id() {
        let s = suite("");
        let all_ids = all(&s, false);
        for (want, present, why) in [
            ("read-it", true, "the base read"),
            (
                "read-it/tenant_override:header:X-Org-Id",
                true,
                "override header",
            ),
            ("read-it/token_forgery:alg_none", true, "forgery"),
            (
                "read-it/token_forgery:expired",
                false,
                "no key: not per read",
            ),
            (
                "jwt/token_forgery:expired",
                true,
                "…but reported once as a gap",
            ),
            ("write-it/tenant_override:body:org_id", true, "JSON body"),
            (
                "read-it/tenant_override:body:org_id",
                false,
                "no body on the read",
            ),
            ("identity/claim_integrity:identity", true, "identity"),
            ("jwt/claim_integrity:token", true, "jwt"),
        ] {
            assert_eq!(
                all_ids.contains(&want.to_string()),
                present,
                "{why}: {want}"
            );
        }
        assert!(all(&s, true).contains(&"read-it/token_forgery:expired".to_string()));
    }

    #[test]
    fn plans_carry_their_own_requests() {
        let s = suite("");
        let plans = plan(&s, false, &Selection::all());
        match &plans[0].kind {
            Kind::Read { request } => assert_eq!(request.url.to_string(), "/things/{{a.id}}"),
            k => panic!("{k:?}"),
        }
        assert!(matches!(plans[1].kind, Kind::Write { .. }));
        assert!(plans[1].is_write() && !plans[0].is_write());
    }

    #[test]
    fn attacks_switch_off_at_suite_and_check_level() {
        let s = suite("attacks: { tenant_override: false }");
        assert!(!all(&s, false).iter().any(|i| i.contains("tenant_override")));
        let s = suite("    attacks: { token_forgery: false }");
        assert!(
            !all(&s, false)
                .iter()
                .any(|i| i.starts_with("write-it/token"))
        );
        let s = suite("attacks: { tenant_override: { headers: [X-Account] } }");
        assert!(all(&s, false).contains(&"read-it/tenant_override:header:X-Account".to_string()));
    }

    #[test]
    fn own_scoped_checks_get_cross_scope_and_credential_variants() {
        let text = r#"
version: 1
name: t
target: { base_url: "http://x" }
orgs:
  provision:
    - request: { method: POST, url: /signup }
      capture: { session: $cookie.sid, org_id: $.o, slug: $.s, key: $.k }
  scope: { slug: "{{slug}}" }
  auth: { cookie: { sid: "{{session}}" } }
  credentials: { api_key: { header: X-Api-Key, value: "{{key}}" } }
  session: { cookie: sid }
  identity: /me
seed:
  - request: { method: POST, url: "/orgs/{{own.slug}}/things" }
    capture: { id: $.id }
checks:
  - { name: org, read: "/orgs/{{own.slug}}" }
  - { name: thing, read: "/orgs/{{own.slug}}/things/{{a.id}}", control: { expect: { status: 200 } } }
  - name: made
    create: { method: POST, url: "/orgs/{{own.slug}}/things", json: { name: "x {{run_id}}" } }
    list: "/orgs/{{own.slug}}/things"
"#;
        let s = crate::suite::load_str("t.yaml", text, &|_| None)
            .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())))
            .suite;
        let got = all(&s, false);
        for want in [
            "org/cross_scope",
            "org/credential:api_key",
            "thing",
            "thing/cross_scope",
            "thing/credential:api_key",
            "thing/tenant_override:header:X-Org-Id",
            "made",
            "session/session:neighbours",
            "session/session:entropy",
        ] {
            assert!(got.contains(&want.to_string()), "{want} in {got:?}");
        }
        assert!(!got.contains(&"org".to_string()), "own scope only: {got:?}");
        assert!(
            !got.iter().any(|i| i.starts_with("jwt")),
            "no token: {got:?}"
        );
        assert!(!got.contains(&"session/session:logout".to_string()));
        assert!(
            !got.iter().any(|i| i.ends_with("/shared_member")),
            "no member, no shared_member: {got:?}"
        );
        let member = "  member:\n    provision:\n      - request: { method: POST, url: /signup }\n        capture: { session: $cookie.sid }\n  identity: /me\n";
        let with = text.replacen("  identity: /me\n", member, 1);
        let load = |t: &str| {
            crate::suite::load_str("t.yaml", t, &|_| None)
                .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())))
                .suite
        };
        let got = all(&load(&with), false);
        assert!(got.contains(&"thing/shared_member".to_string()), "{got:?}");
        assert!(
            !got.contains(&"org/shared_member".to_string()),
            "a read naming nothing of A's: {got:?}"
        );
        assert!(!got.contains(&"made/shared_member".to_string()), "{got:?}");
        let list = "  - { name: things, list: \"/orgs/{{own.slug}}/things\" }\n  - { name: flat, list: /things }\n";
        let with_list = format!("{with}{list}");
        let got = all(&load(&with_list), false);
        assert!(got.contains(&"things/shared_member".to_string()), "{got:?}");
        assert!(
            !got.contains(&"flat/shared_member".to_string()),
            "not own-scoped: {got:?}"
        );
        let off = format!("{with_list}attacks: {{ shared_member: false }}\n");
        let got = all(&load(&off), false);
        assert!(
            !got.iter().any(|i| i.ends_with("/shared_member")),
            "{got:?}"
        );
        let off_one = with_list.replace(
            "list: \"/orgs/{{own.slug}}/things\" }",
            "list: \"/orgs/{{own.slug}}/things\", attacks: { shared_member: false } }",
        );
        let got = all(&load(&off_one), false);
        assert!(
            !got.contains(&"things/shared_member".to_string()),
            "{got:?}"
        );
        assert!(got.contains(&"thing/shared_member".to_string()), "{got:?}");
        let plans = plan(&s, false, &Selection::all());
        assert!(
            plans[1].control.is_some(),
            "the explicit control is planned"
        );
    }

    #[test]
    fn graphql_lists_as_others_and_request_checks_get_their_variants() {
        let s = suite(concat!(
            "  - name: gql\n",
            "    read: { graphql: { query: \"query($id: ID!) { thingById(id: $id) { id } }\", variables: { id: \"{{a.id}}\" } } }\n",
            "  - name: anon list\n",
            "    as: anon\n",
            "    list: { graphql: { query: \"{ allThings { nodes { id } } }\" } }\n",
            "  - name: by hand\n",
            "    request: { url: \"/things/{{a.id}}\" }\n",
            "    expect: { status: 404 }\n",
            "  - name: a write by hand\n",
            "    request: { method: POST, url: /things }\n",
            "    expect: { status: 201 }\n",
            "attacks: { token_forgery: { alg_none: false } }\n",
        ));
        let plans = plan(&s, false, &Selection::all());
        let gql = plans.iter().find(|p| p.slug == "gql").unwrap();
        let Kind::Read { request } = &gql.kind else {
            panic!("{:?}", gql.kind)
        };
        assert_eq!(request.method.0, "POST");
        assert_eq!(request.url.to_string(), "/graphql");
        assert_eq!(request.graphql_field(), Some(""));
        let got = ids(&plans);
        for want in [
            "gql/tenant_override:body:org_id",
            "gql/token_forgery:tampered",
            "anon-list/tenant_override:header:X-Org-Id",
            "by-hand/tenant_override:header:X-Org-Id",
            "by-hand/token_forgery:random_key",
        ] {
            assert!(got.contains(&want.to_string()), "{want} in {got:?}");
        }
        assert!(!got.iter().any(|i| i.ends_with("alg_none")), "{got:?}");
        assert!(!got.iter().any(|i| i.starts_with("anon-list/token_forgery")));
        assert!(
            !got.iter().any(|i| i.starts_with("a-write-by-hand/")),
            "{got:?}"
        );
        let anon = plans.iter().find(|p| p.slug == "anon-list").unwrap();
        assert!(matches!(
            anon.kind,
            Kind::List {
                as_: Identity::Anon,
                ..
            }
        ));
    }

    #[test]
    fn the_filter_keeps_matching_variants_only() {
        let s = suite("");
        let f = ids(&plan(
            &s,
            false,
            &Selection::filter(Some("*/token_forgery:alg_none")),
        ));
        assert!(!f.is_empty());
        assert!(f.iter().all(|i| i.ends_with("alg_none")), "{f:?}");
        assert!(plan(&s, false, &Selection::filter(Some("no-such-check"))).is_empty());
        let sel = Selection::new(vec!["read-it".into()], vec!["*:alg_none".into()]);
        let f = ids(&plan(&s, false, &sel));
        assert!(
            f.contains(&"read-it".to_string())
                && f.contains(&"read-it/token_forgery:tampered".to_string()),
            "{f:?}"
        );
        assert!(
            !f.iter()
                .any(|i| i.ends_with("alg_none") || i.starts_with("write-it")),
            "{f:?}"
        );
    }

    #[test]
    fn patterns_match_exact_ids_slugs_and_globs() {
        // (pattern, id, matches)
        for (p, id, want) in [
            (
                "public.brands.rls_enabled",
                "public.brands.rls_enabled",
                true,
            ),
            ("public", "public.brands.rls_enabled", false),
            ("public.*", "public.brands.rls_enabled", true),
            ("public.*.rls_*", "public.brands.rls_enabled", true),
            ("read-it", "read-it/token_forgery:tampered", true),
            ("read", "read-it/token_forgery:tampered", false),
            ("read-it/", "read-it/token_forgery:tampered", false),
            ("*/token_forgery:*", "read-it/token_forgery:tampered", true),
            ("*/token_forgery:*", "read-it", false),
            ("read-i?", "read-it", true),
            ("*", "anything", true),
        ] {
            assert_eq!(pattern_matches(p, id), want, "{p} vs {id}");
        }
        let sel = Selection::new(vec!["a".into(), "b*".into()], vec![]);
        assert_eq!(sel.unmatched(&["a/x".to_string()]), vec!["b*"]);
    }
}

#[cfg(test)]
mod partition_tests {
    use super::*;

    #[test]
    fn partitions_parse_and_deal_every_check_to_exactly_one_slice() {
        for bad in ["0/3", "4/3", "3", "a/3", "1/0", ""] {
            assert!(bad.parse::<Partition>().is_err(), "{bad}");
        }
        let p: Partition = "2/3".parse().unwrap();
        assert_eq!((p.index, p.total, p.to_string()), (2, 3, "2/3".to_string()));
        let plans: Vec<CheckPlan> = (0..7)
            .map(|i| CheckPlan {
                kind: Kind::Jwt,
                name: format!("c{i}"),
                slug: format!("c{i}"),
                variants: vec![Variant::Base],
                not_found: 404,
                oracle: false,
                control: None,
            })
            .collect();
        let mut all: Vec<String> = Vec::new();
        for k in 1..=3 {
            let slice = Partition { index: k, total: 3 }.slice(plans.clone());
            assert!((2..=3).contains(&slice.len()));
            all.extend(slice.into_iter().map(|p| p.slug));
        }
        all.sort();
        let mut want: Vec<String> = plans.iter().map(|p| p.slug.clone()).collect();
        want.sort();
        assert_eq!(all, want);
    }
}
