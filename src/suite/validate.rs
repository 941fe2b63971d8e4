//! Validation of a parsed suite (parse stage, after YAML → [`Suite`]): the rules the
//! types cannot express — structure, placeholders that name nothing, signing keys, CA
//! files. A `Validator` owns the file name and collects every problem it finds, so
//! one load reports them all.

use std::collections::{BTreeSet, HashMap};

use reqwest::Url;

use super::model::*;
use super::recover::Blank;
use super::template::{Loc, Part, Tpl};
use crate::diag::{Diagnostic, did_you_mean};

/// Names every template may use.
pub const BUILTINS: [&str; 2] = ["run_id", "uuid"];

/// The JWT algorithms tenantgate can sign with.
pub const ALGORITHMS: [&str; 7] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256",
];

/// The URL-safe slug of a check name, used in result ids.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    s.trim_end_matches('-').to_string()
}

/// Whether `url` is absolute (a scheme, or `//host`): it does not go to the target
/// unless its origin is the target's.
pub fn is_absolute(url: &str) -> bool {
    let u = url.trim_start();
    u.starts_with("//")
        || u.split_once("://").is_some_and(|(scheme, _)| {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
}

/// The origin (`https://host:port`) of an absolute URL; `None` for a relative one or
/// one that does not parse.
pub fn origin_of_url(url: &str) -> Option<String> {
    let u = url.trim_start();
    let u = if u.starts_with("//") {
        Url::parse(&format!("https:{u}")).ok()?
    } else {
        Url::parse(u).ok()?
    };
    Some(u.origin().ascii_serialization())
}

/// Where a request URL goes, as far as the load can tell.
enum UrlOrigin {
    /// A path: joined to the target.
    Relative,
    /// An absolute URL of this origin.
    Of(String),
    /// Absolute, with a placeholder in its host: unknown before the run.
    Host,
    /// The URL starts with a capture: only the run can tell (it checks then).
    RunTime,
}

/// The URL's text up to its first placeholder that is not a literal var, and whether
/// it stopped there.
fn url_origin(t: &Tpl, vars: &[String], s: &Suite, base: &Url) -> UrlOrigin {
    let mut known = String::new();
    let mut stopped = false;
    for p in &t.parts {
        match p {
            Part::Lit(l) => known.push_str(l),
            Part::Var(v) => match s.vars.get(v).and_then(Tpl::as_literal) {
                Some(val) if vars.iter().any(|x| x == v) => known.push_str(&val),
                _ => {
                    stopped = true;
                    break;
                }
            },
        }
    }
    if known.trim().is_empty() && stopped {
        return UrlOrigin::RunTime;
    }
    if !is_absolute(&known) {
        return UrlOrigin::Relative;
    }
    // The authority must be complete before the first placeholder.
    let after = known.split_once("//").map(|(_, r)| r).unwrap_or("");
    if stopped && !after.contains(['/', '?', '#']) {
        return UrlOrigin::Host;
    }
    match base.join(known.trim()) {
        Ok(u) => UrlOrigin::Of(u.origin().ascii_serialization()),
        Err(_) => UrlOrigin::Host,
    }
}

/// The names a template may use in one place of the suite.
struct Scope<'a> {
    vars: &'a [String],
    /// `org` and bare capture names are allowed (provision, auth, teardown, mint claims).
    bare: Option<&'a BTreeSet<String>>,
    /// `a.NAME` / `b.NAME` allowed with these names.
    a: Option<&'a BTreeSet<String>>,
    b: Option<&'a BTreeSet<String>>,
    /// `member.NAME` allowed with these names (`orgs.member`).
    member: Option<&'a BTreeSet<String>>,
    /// `own.NAME` allowed (not in the member's steps: the member has no scope of its own).
    own: bool,
    /// `anon.NAME`: captures of seed steps run `as: anon` (extension).
    anon: Option<&'a BTreeSet<String>>,
    /// `a.NAME` / `b.NAME` may be suggested. Not in teardown: it runs once per org, as
    /// that org, and a hint towards `{{a.NAME}}` would have B's teardown touch A's data.
    suggest_orgs: bool,
}

impl Scope<'_> {
    fn allows(&self, name: &str) -> bool {
        if BUILTINS.contains(&name) || self.vars.iter().any(|v| v == name) {
            return true;
        }
        if let Some((org, n)) = name.split_once('.') {
            return match org {
                "a" => self.a.is_some_and(|s| s.contains(n)),
                "b" => self.b.is_some_and(|s| s.contains(n)),
                "anon" => self.anon.is_some_and(|s| s.contains(n)),
                // The caller's own: both orgs must have it.
                "own" => {
                    self.own
                        && self.a.is_some_and(|s| s.contains(n))
                        && self.b.is_some_and(|s| s.contains(n))
                }
                "member" => self.member.is_some_and(|s| s.contains(n)),
                _ => false,
            };
        }
        match self.bare {
            Some(b) => name == "org" || b.contains(name),
            None => false,
        }
    }

    fn known(&self) -> Vec<String> {
        let mut k: Vec<String> = BUILTINS.iter().map(|s| s.to_string()).collect();
        k.extend(self.vars.iter().cloned());
        if let Some(b) = self.bare {
            k.push("org".into());
            k.extend(b.iter().cloned());
        }
        if !self.suggest_orgs {
            return k;
        }
        if let Some(a) = self.a {
            k.extend(a.iter().map(|n| format!("a.{n}")));
        }
        if let Some(b) = self.b {
            k.extend(b.iter().map(|n| format!("b.{n}")));
        }
        if let Some(m) = self.member {
            k.extend(m.iter().map(|n| format!("member.{n}")));
        }
        if let Some(x) = self.anon {
            k.extend(x.iter().map(|n| format!("anon.{n}")));
        }
        k
    }
}

fn request_templates(r: &Request) -> Vec<&Tpl> {
    let mut v = vec![&r.url];
    v.extend(r.headers.iter().map(|(_, t)| t));
    v.extend(r.query.iter().map(|(_, t)| t));
    if let Some(j) = &r.json {
        v.extend(j.templates());
    }
    if let Some(b) = &r.body {
        v.push(b);
    }
    v
}

fn expect_templates(e: &Expect) -> Vec<&Tpl> {
    let mut v: Vec<&Tpl> = e
        .body_contains
        .0
        .iter()
        .chain(e.body_excludes.0.iter())
        .collect();
    for (_, j) in e.json.iter() {
        v.extend(j.templates());
    }
    v
}

fn step_templates(s: &Step) -> Vec<&Tpl> {
    let mut v = request_templates(&s.request.value);
    if let Some(e) = &s.expect {
        v.extend(expect_templates(e));
    }
    v
}

/// The names captures give each side, built up in the order the suite runs.
struct Captures {
    /// `a.NAME`: the org captures and A's seed captures.
    a: BTreeSet<String>,
    /// `b.NAME`: the org captures and B's own seed captures (`as: b`).
    b: BTreeSet<String>,
    /// `anon.NAME`: captures of seed steps run `as: anon`.
    anon: BTreeSet<String>,
}

/// Checks a parsed suite and collects every problem, located in `file`.
pub(super) struct Validator<'a> {
    file: &'a str,
    /// Offsets of values that already have a problem (a missing variable, a bad
    /// placeholder) or were not read (`--no-env`): not checked again, one mistake, one
    /// message.
    broken: &'a BTreeSet<usize>,
    /// Entries blanked after a wrong key or value: what they held is not reported as
    /// missing, nor is a problem of the mapping that held them (likely a consequence).
    blanks: &'a [Blank],
    /// Origins the command line allows (`--allow-origin`).
    cli_origins: &'a [String],
    diags: Vec<Diagnostic>,
}

/// What validation found: the problems, and the origins requests may go to.
pub(super) struct Checked {
    pub diags: Vec<Diagnostic>,
    pub origins: Vec<String>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(
        file: &'a str,
        broken: &'a BTreeSet<usize>,
        blanks: &'a [Blank],
        cli_origins: &'a [String],
    ) -> Self {
        Validator {
            file,
            broken,
            blanks,
            cli_origins,
            diags: Vec::new(),
        }
    }

    /// Every problem of `s` the types cannot express, in the order found.
    pub(super) fn validate(mut self, s: &Suite) -> Checked {
        self.header(s);
        self.env_list(s);
        self.accept_list(s);
        let vars = self.vars(s);
        self.target(s, &vars);
        let origins = self.origins(s);
        let org = self.orgs(s, &vars);
        let caps = self.seed(s, &vars, org);
        let member = s
            .orgs
            .as_ref()
            .and_then(|o| o.member.as_ref())
            .map(|m| self.member(m, &vars, &caps));
        self.member_identity(s);
        let full = Scope {
            vars: &vars,
            bare: None,
            a: Some(&caps.a),
            b: Some(&caps.b),
            member: member.as_ref(),
            own: true,
            anon: Some(&caps.anon),
            suggest_orgs: true,
        };
        if let Some(o) = &s.orgs {
            self.identity_and_teardown(o, &vars, &caps, &full);
        }
        for m in &s.markers {
            let (MarkerSpec::Include(t) | MarkerSpec::Exclude(t)) = m;
            self.placeholders(&full, t, "markers");
        }
        if let Some(a) = &s.attacks {
            self.attacks(a);
        }
        // A map, not a list: the duplicate check was quadratic (10,000 checks: 0.5–0.9 s).
        let mut seen: HashMap<String, Loc> = HashMap::with_capacity(s.checks.len());
        for c in &s.checks {
            self.check(c, &full, &mut seen);
        }
        if let Some(db) = &s.database {
            self.database(db, &full);
        }
        if let Some((base, allowed)) = &origins {
            self.request_origins(s, &vars, base, allowed);
        }
        Checked {
            diags: self.diags,
            origins: origins.map(|(_, o)| o).unwrap_or_default(),
        }
    }

    fn at(&mut self, loc: Loc, message: impl Into<String>, hint: Option<String>) {
        if self.blanks.iter().any(|b| b.covers_line(loc.line)) {
            return;
        }
        self.diags
            .push(Diagnostic::at(self.file, loc, message, hint));
    }

    fn whole(&mut self, message: &str, hint: &str) {
        // A section that is missing may be one that was blanked for a wrong value.
        if !self.blanks.is_empty() {
            return;
        }
        self.diags
            .push(Diagnostic::file(self.file, message, Some(hint.into())));
    }

    /// Every placeholder of `t` must be known in `scope`.
    fn placeholders(&mut self, scope: &Scope, t: &Tpl, place: &str) {
        for v in t.vars() {
            if scope.allows(v) {
                continue;
            }
            // A capture or var given in a blanked entry: its mistake is reported there.
            let bare = v.rsplit('.').next().unwrap_or(v);
            if self.blanks.iter().any(|b| b.text.contains(bare)) {
                continue;
            }
            let known = scope.known();
            let hint = match did_you_mean(v, known.iter().map(|s| s.as_str())) {
                Some(s) => format!("did you mean `{{{{{s}}}}}`?"),
                None if known.is_empty() => "no names are known here".to_string(),
                None => format!("known here: {}", known.join(", ")),
            };
            let why = if v.starts_with("a.") || v.starts_with("b.") || v.starts_with("member.") {
                " (no earlier step captures it)"
            } else if scope.bare.is_none() && !v.contains('.') && !scope.vars.iter().any(|x| x == v)
            {
                " (outside provision and teardown, captures are `a.NAME` or `b.NAME`)"
            } else {
                ""
            };
            self.at(
                t.loc,
                format!("unknown placeholder `{{{{{v}}}}}` in {place}{why}"),
                Some(hint),
            );
        }
    }

    fn no_placeholders(&mut self, t: &Tpl, place: &str) {
        if let Some(v) = t.vars().next() {
            self.at(
                t.loc,
                format!("`{{{{{v}}}}}` in {place}: placeholders are not allowed here"),
                Some("this value is read before any request; use `${ENV_VAR}` instead".into()),
            );
        }
    }

    /// `version`, `name`, something to prove, the suite's `not_found_status`.
    fn header(&mut self, s: &Suite) {
        if s.version.value != 1 {
            self.at(
                Loc::of(&s.version),
                format!("suite format version {} is not supported", s.version.value),
                Some(
                    "this tenantgate reads version 1; upgrade tenantgate or write `version: 1`"
                        .into(),
                ),
            );
        }
        if s.name.value.trim().is_empty() {
            self.at(
                Loc::of(&s.name),
                "the suite's name is empty",
                Some("name the suite: the name appears in every report".into()),
            );
        }
        if s.checks.is_empty() && s.database.is_none() {
            self.whole(
                "the suite has no checks and no database section: it cannot prove anything",
                "add `checks:` (read, list, write) or a `database:` section",
            );
        }
        if let Some(nf) = &s.not_found_status {
            self.not_found(nf);
        }
        super::promises::validate(self.file, s, &mut self.diags);
    }

    /// `vars:` each may use builtins and earlier vars; returns their names in order.
    fn vars(&mut self, s: &Suite) -> Vec<String> {
        let mut vars: Vec<String> = Vec::new();
        for (k, t) in s.vars.iter() {
            let scope = Scope {
                vars: &vars,
                bare: None,
                a: None,
                b: None,
                member: None,
                own: true,
                anon: None,
                suggest_orgs: true,
            };
            self.placeholders(&scope, t, &format!("var `{}`", k.name));
            if BUILTINS.contains(&k.name.as_str())
                || k.name == "org"
                || k.name == "a"
                || k.name == "b"
            {
                self.at(
                    k.loc,
                    format!("`{}` is a reserved name", k.name),
                    Some("rename the var".into()),
                );
            }
            vars.push(k.name.clone());
        }
        vars
    }

    fn target(&mut self, s: &Suite, vars: &[String]) {
        let plain = Scope {
            vars,
            bare: None,
            a: None,
            b: None,
            member: None,
            own: true,
            anon: None,
            suggest_orgs: true,
        };
        let Some(t) = &s.target else {
            if !s.checks.is_empty() {
                self.whole(
                    "the suite has checks but no `target:`",
                    "add `target: { base_url: https://... }`",
                );
            }
            return;
        };
        self.placeholders(&plain, &t.base_url, "target.base_url");
        let url = t.base_url.to_string();
        // An empty or broken URL (a missing variable, an unclosed `${`): already reported.
        if !(url.is_empty()
            || self.broken.contains(&t.base_url.loc.offset)
            || url.starts_with("http://")
            || url.starts_with("https://"))
        {
            self.at(
                t.base_url.loc,
                format!("target.base_url `{url}` is not an http:// or https:// URL"),
                Some("write the API's base URL, e.g. `https://staging.example.com`".into()),
            );
        }
        for (_, h) in t.headers.iter() {
            self.placeholders(&plain, h, "target.headers");
        }
        if let Some(ca) = t.tls.as_ref().and_then(|t| t.ca.as_ref()) {
            self.ca(ca);
        }
    }

    /// `orgs:` provision or mint, auth, tenant claim; returns the org captures.
    fn orgs(&mut self, s: &Suite, vars: &[String]) -> BTreeSet<String> {
        let mut org_caps: BTreeSet<String> = BTreeSet::new();
        let Some(o) = &s.orgs else {
            if !s.checks.is_empty() {
                self.whole(
                    "the suite has checks but no `orgs:`",
                    "add `orgs:` with `provision:` steps (sign up through the API) or `mint:` (sign tokens)",
                );
            }
            return org_caps;
        };
        match (&o.mint, o.provision.is_empty()) {
            (Some(_), false) => self.at(
                Loc::of(&o.provision[0].request),
                "`orgs` has both `provision` and `mint`",
                Some(
                    "use one: provision signs up through the API, mint signs tokens itself".into(),
                ),
            ),
            (None, true) => self.whole(
                "`orgs` has neither `provision` nor `mint`",
                "add `provision:` steps or a `mint:` section",
            ),
            _ => {}
        }
        for step in &o.provision {
            let scope = Scope {
                vars,
                bare: Some(&org_caps),
                a: None,
                b: None,
                member: None,
                own: true,
                anon: None,
                suggest_orgs: true,
            };
            for t in step_templates(step) {
                self.placeholders(&scope, t, "a provision step");
            }
            self.step(step);
            org_caps.extend(step.capture.iter().map(|(k, _)| k.name.clone()));
        }
        if let Some(m) = &o.mint {
            self.mint(m, vars);
            org_caps.extend(m.a.iter().map(|(k, _)| k.name.clone()));
            org_caps.insert("token".into());
        }
        let no_source = o.mint.is_none() && o.provision.is_empty();
        if o.auth.is_some() && !no_source {
            let scope = Scope {
                vars,
                bare: Some(&org_caps),
                a: None,
                b: None,
                member: None,
                own: true,
                anon: None,
                suggest_orgs: true,
            };
            self.auth(o, &scope);
        } else if o.auth.is_none()
            && !no_source
            && !org_caps.contains("token")
            && !s.checks.is_empty()
        {
            self.whole(
                "`orgs` has no `auth`, and no step captures `token` for the default `Authorization: Bearer {{token}}`",
                "capture the token (`capture: { token: $.access_token }`) or add `auth: { header, value }`",
            );
        }
        if let Some(tc) = &o.tenant_claim
            && tc.value.trim().is_empty()
        {
            self.at(
                Loc::of(tc),
                "`tenant_claim` is empty",
                Some(
                    "name the JWT claim that carries the tenant, e.g. `org_id`, or remove the key"
                        .into(),
                ),
            );
        }
        org_caps
    }

    /// `orgs.auth` (a header with its value, cookies, or both), `orgs.credentials`,
    /// `orgs.scope` and `orgs.session`: their placeholders are the org's own names.
    fn auth(&mut self, o: &Orgs, scope: &Scope) {
        if let Some(auth) = &o.auth {
            match (&auth.header, &auth.value) {
                (Some(_), Some(v)) => self.placeholders(scope, v, "orgs.auth.value"),
                (None, None) if !auth.cookie.is_empty() => {}
                _ => self.whole(
                    "`orgs.auth` needs `header` with `value`, or `cookie`",
                    "write `auth: { header: Authorization, value: \"Bearer {{token}}\" }` or `auth: { cookie: { sid: \"{{session}}\" } }`",
                ),
            }
            for (k, t) in auth.cookie.iter() {
                self.placeholders(scope, t, &format!("orgs.auth.cookie.{}", k.name));
            }
        }
        for (k, c) in o.credentials.iter() {
            self.placeholders(scope, &c.value, &format!("orgs.credentials.{}", k.name));
        }
        for (k, t) in o.scope.iter() {
            self.placeholders(scope, t, &format!("orgs.scope.{}", k.name));
        }
        if let Some(sess) = &o.session {
            if let Some(login) = &sess.login
                && !o
                    .provision
                    .iter()
                    .any(|s| s.name.as_deref() == Some(login.value.as_str()))
            {
                self.at(
                    Loc::of(login),
                    format!("no provision step is named `{}`", login.value),
                    Some("name the provision step that logs in (its `name:`)".into()),
                );
            }
            if let Some(l) = &sess.logout {
                self.request(&l.value, Loc::of(l));
            }
        }
    }

    /// Seed steps run as A (or `as: b`); their captures become `a.NAME` (`b.NAME`).
    /// `org` holds what provision (or mint) gives each org.
    fn seed(&mut self, s: &Suite, vars: &[String], org: BTreeSet<String>) -> Captures {
        let mut a = org.clone();
        let mut b = org;
        let mut anon = BTreeSet::new();
        for step in &s.seed {
            let scope = Scope {
                vars,
                bare: None,
                a: Some(&a),
                b: Some(&b),
                member: None,
                own: true,
                anon: Some(&anon),
                suggest_orgs: true,
            };
            for t in step_templates(step) {
                self.placeholders(&scope, t, "a seed step");
            }
            self.step(step);
            // A seed step run `as: b` seeds B's own rows; its captures are `b.NAME`
            // (`as: anon`: `anon.NAME`).
            let owner = match step.as_ {
                Some(Identity::B) => &mut b,
                Some(Identity::Anon) => &mut anon,
                _ => &mut a,
            };
            owner.extend(step.capture.iter().map(|(k, _)| k.name.clone()));
        }
        Captures { a, b, anon }
    }

    /// `orgs.member`: its steps run after provision and seed, as the member unless `as:`
    /// says otherwise; bare names (and `member.NAME`) are the member's own captures, and
    /// `a.NAME` / `b.NAME` are usable. Returns the member's captures.
    fn member(&mut self, m: &Member, vars: &[String], caps: &Captures) -> BTreeSet<String> {
        let mut mine: BTreeSet<String> = BTreeSet::new();
        if m.provision.is_empty() {
            self.whole(
                "`orgs.member.provision` has no steps",
                "add the steps that make a user a member of both orgs (sign it up, have A and B add it, log it in)",
            );
        }
        for step in &m.provision {
            let scope = Scope {
                vars,
                bare: Some(&mine),
                a: Some(&caps.a),
                b: Some(&caps.b),
                member: Some(&mine),
                own: false,
                anon: None,
                suggest_orgs: true,
            };
            for t in step_templates(step) {
                self.placeholders(&scope, t, "a member step");
            }
            self.step(step);
            mine.extend(step.capture.iter().map(|(k, _)| k.name.clone()));
        }
        let scope = Scope {
            vars,
            bare: Some(&mine),
            a: None,
            b: None,
            member: None,
            own: false,
            anon: None,
            suggest_orgs: true,
        };
        if let Some(auth) = &m.auth {
            match (&auth.header, &auth.value) {
                (Some(_), Some(v)) => self.placeholders(&scope, v, "orgs.member.auth.value"),
                (None, None) if !auth.cookie.is_empty() => {}
                _ => self.whole(
                    "`orgs.member.auth` needs `header` with `value`, or `cookie`",
                    "write `auth: { cookie: { sid: \"{{session}}\" } }`, or leave it out to send the member as `orgs.auth` says",
                ),
            }
            for (k, t) in auth.cookie.iter() {
                self.placeholders(&scope, t, &format!("orgs.member.auth.cookie.{}", k.name));
            }
        }
        let teardown = Scope {
            suggest_orgs: false,
            ..scope
        };
        for step in &m.teardown {
            for t in step_templates(step) {
                self.placeholders(&teardown, t, "a member teardown step");
            }
            self.step(step);
        }
        mine
    }

    /// `as: member` only where the member exists: its own steps, and `request` checks
    /// (and their controls) of a suite with `orgs.member`.
    fn member_identity(&mut self, s: &Suite) {
        let has_member = s.orgs.as_ref().is_some_and(|o| o.member.is_some());
        let steps = s
            .orgs
            .iter()
            .flat_map(|o| o.provision.iter().chain(&o.teardown.steps))
            .chain(&s.seed);
        for step in steps {
            if step.as_ == Some(Identity::Member) {
                self.at(
                    Loc::of(&step.request),
                    "`as: member` in a provision, seed or teardown step: the member of both orgs is made after them",
                    Some("move the step into `orgs.member.provision` (or `orgs.member.teardown`), or say `as: a` or `as: b`".into()),
                );
            }
        }
        for c in &s.checks {
            let member = c.as_ == Some(Identity::Member)
                || c.control.as_ref().and_then(|c| c.as_) == Some(Identity::Member);
            if member && !has_member {
                self.at(
                    Loc::of(&c.name),
                    format!(
                        "check `{}` runs `as: member`, but the suite has no `orgs.member`",
                        c.name.value
                    ),
                    Some("add `orgs.member: { provision: [...] }`, the user who is a member of both orgs".into()),
                );
            }
        }
    }

    fn identity_and_teardown(&mut self, o: &Orgs, vars: &[String], caps: &Captures, full: &Scope) {
        if let Some(id) = &o.identity {
            for t in request_templates(&id.request) {
                self.placeholders(full, t, "orgs.identity");
            }
        }
        // Teardown runs once per org, as that org: a bare name is the torn-down org's own
        // capture (provision, or its own seed steps). `a.NAME` / `b.NAME` still load,
        // for suites written before, but are never suggested.
        let own: BTreeSet<String> = caps.a.union(&caps.b).cloned().collect();
        let teardown = Scope {
            vars,
            bare: Some(&own),
            a: Some(&caps.a),
            b: Some(&caps.b),
            member: None,
            own: true,
            anon: None,
            suggest_orgs: false,
        };
        for step in &o.teardown.steps {
            for t in step_templates(step) {
                self.placeholders(&teardown, t, "a teardown step");
            }
            self.step(step);
        }
        // What an anonymous seed step captured can be kept too (no org removes it).
        let keepable: BTreeSet<String> = own.union(&caps.anon).cloned().collect();
        for k in &o.teardown.keeps {
            if !keepable.contains(&k.capture.value) {
                let names: Vec<String> = keepable.iter().cloned().collect();
                self.at(
                    Loc::of(&k.capture),
                    format!(
                        "`teardown.keeps` names `{}`, which no provision or seed step captures",
                        k.capture.value
                    ),
                    Some(format!(
                        "name the capture of what the API cannot delete{}",
                        crate::run::verdict::did_you_mean(&k.capture.value, &names)
                    )),
                );
            }
        }
    }

    /// One check: its name, its kind, its requests and expectations.
    fn check(&mut self, c: &Check, full: &Scope, seen: &mut HashMap<String, Loc>) {
        let name_loc = Loc::of(&c.name);
        let sl = slug(&c.name.value);
        if sl.is_empty() {
            self.at(
                name_loc,
                "a check needs a name with letters or digits",
                Some("results are identified by the name: write what the check proves, e.g. `brand is invisible to B`".into()),
            );
        } else if let Some(prev) = seen.get(&sl) {
            let line = prev.line;
            self.at(
                name_loc,
                format!(
                    "check name `{}` repeats the check at line {line}",
                    c.name.value
                ),
                Some("check names must be unique: results are identified by them".into()),
            );
        } else {
            seen.insert(sl, name_loc);
        }
        self.check_kind(c, name_loc);
        self.check_requests(c, full);
        for m in &c.markers {
            let (MarkerSpec::Include(t) | MarkerSpec::Exclude(t)) = m;
            self.placeholders(full, t, &format!("check `{}`", c.name.value));
        }
        if let Some(a) = &c.attacks {
            self.attacks(a);
        }
        if let Some(nf) = &c.not_found_status {
            self.not_found(nf);
        }
    }

    /// Exactly one kind, and only the keys that kind takes.
    fn check_kind(&mut self, c: &Check, name_loc: Loc) {
        let kinds: Vec<&str> = [
            c.read.as_ref().map(|_| "read"),
            c.list
                .as_ref()
                .map(|_| if c.create.is_some() { "create" } else { "list" }),
            c.write.as_ref().map(|_| "write"),
            c.request.as_ref().map(|_| "request"),
        ]
        .into_iter()
        .flatten()
        .collect();
        match kinds.len() {
            0 => self.at(
                name_loc,
                format!("check `{}` says nothing to do", c.name.value),
                Some("give one of `read: URL`, `list: URL`, `write: {request}` with `verify: URL`, or `request: {...}` with `expect`".into()),
            ),
            1 => {}
            _ => self.at(
                name_loc,
                format!(
                    "check `{}` has {}: a check does one thing",
                    c.name.value,
                    kinds.join(" and ")
                ),
                Some("split it into one check per kind".into()),
            ),
        }
        let kind = kinds.first().copied().unwrap_or("");
        if c.create.is_some() && c.list.is_none() {
            self.at(
                name_loc,
                format!("create check `{}` has no `list`", c.name.value),
                Some("add `list: URL`: the list B's row must appear in, and A's must not".into()),
            );
        }
        if c.verify.is_some() && kind != "write" {
            self.at(
                name_loc,
                "`verify` belongs to a `write` check",
                Some(format!(
                    "remove `verify`; a `{}` check has fixed rules (see the README)",
                    if kind.is_empty() { "read" } else { kind }
                )),
            );
        }
        if kind == "write" && c.verify.is_none() {
            self.at(
                name_loc,
                format!("write check `{}` has no `verify`", c.name.value),
                Some("add `verify: URL`, read as A before and after B's write to prove nothing changed".into()),
            );
        }
        if kind != "request" {
            // `read`, `list` and `write` accept an explicit `control:` (extension).
            let control_ok = matches!(kind, "read" | "list" | "write");
            for (key, present) in [
                ("expect", c.expect.is_some()),
                ("control", c.control.is_some() && !control_ok),
                ("as", c.as_.is_some() && kind != "list"),
            ] {
                if present {
                    self.at(
                        name_loc,
                        format!("`{key}` belongs to a `request` check, not a `{kind}` check"),
                        Some(format!(
                            "`{kind}` checks have fixed rules (see the README); remove `{key}`"
                        )),
                    );
                }
            }
        } else if c.expect.is_none() {
            self.at(
                name_loc,
                format!("request check `{}` has no `expect`", c.name.value),
                Some("say what B must get, e.g. `expect: { status: 404 }`".into()),
            );
        }
        if let Some(w) = &c.write
            && w.value.method.is_safe()
        {
            self.at(
                Loc::of(w),
                format!(
                    "a write check sends {}: it changes nothing",
                    w.value.method.0
                ),
                Some("use PATCH, PUT, POST or DELETE; to test a read, use `read:`".into()),
            );
        }
    }

    /// The check's requests and expectations: shape and placeholders.
    fn check_requests(&mut self, c: &Check, full: &Scope) {
        let requests: Vec<&Request> = [
            c.read.as_ref().map(|r| &*r.request),
            c.list.as_ref().map(|r| &*r.request),
            c.write.as_ref().map(|r| &r.value),
            c.verify.as_ref().map(|r| &*r.request),
            c.request.as_ref().map(|r| &r.value),
            c.create.as_ref().map(|r| &r.value),
            c.control
                .as_ref()
                .and_then(|c| c.request.as_ref())
                .map(|r| &r.value),
        ]
        .into_iter()
        .flatten()
        .collect();
        let place = format!("check `{}`", c.name.value);
        for r in requests {
            self.request(r, Loc::of(&c.name));
            for t in request_templates(r) {
                self.placeholders(full, t, &place);
            }
        }
        for e in [c.expect.as_deref(), c.control.as_ref().map(|c| &c.expect)]
            .into_iter()
            .flatten()
        {
            for t in expect_templates(e) {
                self.placeholders(full, t, &place);
            }
            self.expect(e);
        }
    }

    fn database(&mut self, db: &Database, full: &Scope) {
        self.no_placeholders(&db.url, "database.url");
        if let Some(r) = &db.app_role {
            self.no_placeholders(r, "database.app_role");
        }
        if let Some(p) = &db.probe {
            self.no_placeholders(&p.url, "database.probe.url");
            for (k, v) in p.settings.iter() {
                let place = format!("database.probe.settings.{}", k.name);
                self.placeholders(full, &v.a, &place);
                self.placeholders(full, &v.b, &place);
            }
        }
        if let Some(p) = &db.preset
            && crate::db::TenantModel::preset_named(&p.value).is_none()
        {
            self.at(
                Loc::of(p),
                format!("database.preset `{}` is not a known preset", p.value),
                Some(format!("write one of: {}", crate::db::PRESETS.join(", "))),
            );
        }
        let url = db.url.to_string();
        if !(self.broken.contains(&db.url.loc.offset)
            || db.url.vars().next().is_some()
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://")
            || url.contains('='))
        {
            self.at(
                db.url.loc,
                "database.url is not a PostgreSQL connection URL",
                Some("write `postgres://user:password@host:5432/dbname` (from an environment variable: `${DATABASE_URL}`)".into()),
            );
        }
    }

    /// A declared not-found status must be a 4xx other than 403: a redirect (3xx) is
    /// never read as not-found, nor is "forbidden", which says the resource exists.
    fn not_found(&mut self, nf: &serde_saphyr::Spanned<u16>) {
        if !(400..500).contains(&nf.value) || nf.value == 403 {
            self.at(
                Loc::of(nf),
                format!("not_found_status {} is not a not-found answer", nf.value),
                Some("use the 4xx status the API gives a missing resource (404, sometimes 410); never 403".into()),
            );
        }
    }

    fn request(&mut self, r: &Request, at: Loc) {
        if let Some(g) = &r.graphql {
            if g.query.value.trim().is_empty() {
                self.at(
                    Loc::of(&g.query),
                    "`graphql.query` is empty",
                    Some("write the operation, e.g. `query($id: ID!) { projectById(id: $id) { id name } }`".into()),
                );
            }
            if let Some(v) = &g.variables
                && !matches!(v, crate::suite::model::JValue::Map(_))
            {
                self.at(
                    Loc::of(&g.query),
                    "`graphql.variables` must be a mapping",
                    Some("write `variables: { id: \"{{a.project_id}}\" }`".into()),
                );
            }
        } else if r.url.parts.is_empty() {
            self.at(
                at,
                "a request has no `url`",
                Some("add `url: /path` (only a `graphql:` request may leave it out)".into()),
            );
        }
        if r.json.is_some() && r.body.is_some() {
            self.at(
                r.url.loc,
                "a request has both `json` and `body`",
                Some("send one: `json` for a JSON body, `body` for raw text".into()),
            );
        }
    }

    fn step(&mut self, s: &Step) {
        self.request(&s.request.value, Loc::of(&s.request));
        if let Some(e) = &s.expect {
            self.expect(e);
        }
    }

    fn expect(&mut self, e: &Expect) {
        for (k, _) in e.json.iter() {
            if let Err(msg) = serde_json_path::JsonPath::parse(&k.name) {
                let hint = if k.name.starts_with('$') {
                    "use RFC 9535 JSONPath such as `$.name` or `$.items[0].id`".to_string()
                } else {
                    format!("a JSONPath starts with `$`: did you mean `$.{}`?", k.name)
                };
                self.at(
                    k.loc,
                    format!("`{}` is not a valid JSONPath: {msg}", k.name),
                    Some(hint),
                );
            }
        }
    }

    fn attacks(&mut self, a: &Attacks) {
        // Header names of `tenant_override` are checked, with their location, while
        // deserializing.
        if let Some(Toggle::Configured(tf)) = &a.token_forgery
            && let Some(k) = &tf.sign_with
        {
            self.key(&k.algorithm, k.secret.as_ref(), k.key.as_ref());
        }
    }

    /// `target.tls.ca` must name a readable PEM bundle holding at least one certificate:
    /// found now, the mistake points at the suite line instead of failing the first
    /// request with a TLS error.
    fn ca(&mut self, ca: &Tpl) {
        self.no_placeholders(ca, "target.tls.ca");
        let Some(path) = ca.as_literal() else { return };
        // An empty path means its environment variable was missing: already reported.
        if path.is_empty() {
            return;
        }
        let hint = Some(
            "give the path of a PEM file of CA certificates (`-----BEGIN CERTIFICATE-----`)"
                .to_string(),
        );
        match std::fs::read(&path) {
            Err(e) => self.at(
                ca.loc,
                format!("CA file `{path}` cannot be read: {e}"),
                hint,
            ),
            Ok(pem) => match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => {}
                Ok(_) => self.at(
                    ca.loc,
                    format!("CA file `{path}` holds no PEM certificate"),
                    hint,
                ),
                Err(e) => self.at(
                    ca.loc,
                    format!("CA file `{path}` is not a PEM certificate bundle: {e}"),
                    hint,
                ),
            },
        }
    }

    /// A signing key: a supported algorithm with its secret (HS*) or key file (RS*, ES*).
    fn key(
        &mut self,
        alg: &serde_saphyr::Spanned<String>,
        secret: Option<&Tpl>,
        key: Option<&Tpl>,
    ) {
        let loc = Loc::of(alg);
        let a = alg.value.to_ascii_uppercase();
        if !ALGORITHMS.contains(&a.as_str()) {
            self.at(
                loc,
                format!("`{}` is not a supported JWT algorithm", alg.value),
                Some(format!("use one of {}", ALGORITHMS.join(", "))),
            );
            return;
        }
        if let Some(t) = secret {
            self.no_placeholders(t, "a signing secret");
        }
        if let Some(t) = key {
            self.no_placeholders(t, "a key path");
        }
        if a.starts_with("HS") {
            match secret {
                None => self.at(
                    loc,
                    format!("{a} needs a `secret`"),
                    Some("add `secret: ${JWT_SECRET}`".into()),
                ),
                // A missing variable or a placeholder: already reported.
                Some(t) if self.broken.contains(&t.loc.offset) => {}
                Some(t) => {
                    if t.as_literal().is_some_and(|s| s.is_empty()) {
                        self.at(
                            t.loc,
                            format!("the {a} secret is empty"),
                            Some("give the signing secret, e.g. `secret: ${JWT_SECRET}` with JWT_SECRET set".into()),
                        );
                    }
                }
            }
        } else {
            match key {
                None => self.at(
                    loc,
                    format!("{a} needs a `key` (the path of a PEM private key)"),
                    Some("add `key: ${JWT_KEY_FILE}` or `key: path/to/private.pem`".into()),
                ),
                Some(t) if self.broken.contains(&t.loc.offset) => {}
                Some(t) => {
                    if let Some(p) = t.as_literal()
                        && std::fs::metadata(&p).is_err()
                    {
                        self.at(
                            t.loc,
                            format!("key file `{p}` cannot be read"),
                            Some("give the path of a PEM private key (a relative path starts where tenantgate runs)".into()),
                        );
                    }
                }
            }
        }
    }

    /// `accept:` entries: an id or pattern, and a reason a reviewer can check (never
    /// empty, never the placeholder `tenantgate baseline` writes), each id once.
    fn accept_list(&mut self, s: &Suite) {
        let mut seen: HashMap<&str, Loc> = HashMap::new();
        for a in &s.accept {
            let id = a.id.value.trim();
            if id.is_empty() {
                self.at(
                    Loc::of(&a.id),
                    "an `accept:` entry needs the id of the warning it accepts",
                    Some("copy the id from a report, e.g. `public.users.unique_without_tenant`, or write a glob such as `public.users.*`".into()),
                );
            } else if let Some(first) = seen.insert(id, Loc::of(&a.id)) {
                self.at(
                    Loc::of(&a.id),
                    format!("`{id}` is accepted twice (first at line {})", first.line),
                    Some("keep one entry per id, with one reason".into()),
                );
            }
            let reason = a.reason.value.trim();
            if reason.is_empty() || reason.starts_with(crate::baseline::REASON_PLACEHOLDER) {
                self.at(
                    Loc::of(&a.reason),
                    format!("accepting `{id}` needs a reason a reviewer can check"),
                    Some("write why this warning is acceptable here (accepting is a decision: the reason is shown in every report)".into()),
                );
            }
        }
    }

    /// `env:` names must be environment variable names.
    fn env_list(&mut self, s: &Suite) {
        for n in s.env.iter().flatten() {
            let ok = !n.value.is_empty()
                && n.value
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !n.value.starts_with(|c: char| c.is_ascii_digit());
            if !ok {
                self.at(
                    Loc::of(n),
                    format!("`{}` in `env:` is not an environment variable name", n.value),
                    Some("list names such as `TARGET_URL` (letters, digits and `_`, not starting with a digit)".into()),
                );
            }
        }
    }

    /// The target's base URL and every origin requests may go to (the target's first,
    /// then `target.allowed_origins`, then the command line's); `None` when the base
    /// URL is not known at load (unset with `--no-env`, or already reported).
    fn origins(&mut self, s: &Suite) -> Option<(Url, Vec<String>)> {
        let t = s.target.as_ref()?;
        if self.broken.contains(&t.base_url.loc.offset) {
            return None;
        }
        let base = Url::parse(&t.base_url.as_literal()?).ok()?;
        let mut origins = vec![base.origin().ascii_serialization()];
        for o in &t.allowed_origins {
            if self.broken.contains(&o.loc.offset) {
                continue;
            }
            let text = o.as_literal().unwrap_or_else(|| o.to_string());
            match Url::parse(&text).ok().filter(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.fragment().is_none()
            }) {
                Some(u) => origins.push(u.origin().ascii_serialization()),
                None => self.at(
                    o.loc,
                    format!("`{text}` in target.allowed_origins is not an origin"),
                    Some(
                        "write an origin only: `https://host` or `https://host:port`, no path"
                            .into(),
                    ),
                ),
            }
        }
        for o in self.cli_origins {
            match Url::parse(o).ok().filter(|u| matches!(u.scheme(), "http" | "https")) {
                Some(u) => origins.push(u.origin().ascii_serialization()),
                None => self.diags.push(Diagnostic::file(
                    self.file,
                    format!("`--allow-origin {o}` is not an origin"),
                    Some("give an origin such as `https://auth.example.com` or `http://127.0.0.1:8081`".into()),
                )),
            }
        }
        origins.dedup();
        Some((base, origins))
    }

    /// Every request URL known at load goes to an allowed origin: a suite is untrusted
    /// input, and a URL of another origin (written out or built from `${VAR}`) could
    /// carry the runner's secrets away.
    fn request_origins(&mut self, s: &Suite, vars: &[String], base: &Url, allowed: &[String]) {
        let mut urls: Vec<&Tpl> = Vec::new();
        if let Some(o) = &s.orgs {
            let member = o
                .member
                .iter()
                .flat_map(|m| m.provision.iter().chain(&m.teardown));
            let steps = o.provision.iter().chain(&o.teardown.steps).chain(member);
            urls.extend(steps.map(|st| &st.request.value.url));
            urls.extend(o.identity.iter().map(|i| &i.request.url));
        }
        urls.extend(s.seed.iter().map(|st| &st.request.value.url));
        for c in &s.checks {
            urls.extend(
                c.read
                    .iter()
                    .chain(&c.list)
                    .chain(&c.verify)
                    .map(|r| &r.request.url),
            );
            urls.extend(c.write.iter().chain(&c.request).map(|r| &r.value.url));
            let control = c.control.as_ref().and_then(|c| c.request.as_ref());
            urls.extend(control.map(|r| &r.value.url));
        }
        for t in urls {
            // A value with a problem already reported (an unknown placeholder): one
            // mistake, one message.
            if self.broken.contains(&t.loc.offset)
                || self.diags.iter().any(|d| d.loc == Some(t.loc))
            {
                continue;
            }
            match url_origin(t, vars, s, base) {
                UrlOrigin::Relative | UrlOrigin::RunTime => {}
                UrlOrigin::Host => self.at(
                    t.loc,
                    "the host of this URL comes from a placeholder: where it goes cannot be checked before the run",
                    Some("write a path (joined to `target.base_url`) or an origin listed in `target.allowed_origins`".into()),
                ),
                UrlOrigin::Of(o) if allowed.contains(&o) => {}
                UrlOrigin::Of(o) => self.at(
                    t.loc,
                    format!(
                        "this request would go to `{o}`, not to the target's origin `{}` or one the suite allows",
                        allowed[0]
                    ),
                    Some("requests go only to `target.base_url`'s origin: write a path, or declare the origin in `target.allowed_origins` (the command line can allow one with `--allow-origin`)".into()),
                ),
            }
        }
    }

    fn mint(&mut self, m: &Mint, vars: &[String]) {
        self.key(&m.algorithm, m.secret.as_ref(), m.key.as_ref());
        for (which, map) in [("a", &m.a), ("b", &m.b)] {
            if map.get("org_id").is_none() {
                // Point into the org's mapping when it has a key; an empty one has no span.
                let loc = map
                    .iter()
                    .next()
                    .map(|(k, _)| k.loc)
                    .unwrap_or(Loc::of(&m.algorithm));
                self.at(
                    loc,
                    format!("`mint.{which}` has no `org_id`"),
                    Some(format!(
                        "add `{which}: {{ org_id: \"${{ORG_{}_ID}}\" }}`",
                        which.to_uppercase()
                    )),
                );
            }
            for (k, t) in map.iter() {
                self.no_placeholders(t, &format!("mint.{which}.{}", k.name));
            }
        }
        // A claim may use a name only when both orgs define it.
        // `org_id` counts as given: when one is missing that is reported above.
        let both: BTreeSet<String> =
            m.a.iter()
                .map(|(k, _)| k.name.clone())
                .filter(|n| m.b.get(n).is_some())
                .chain(["org_id".to_string()])
                .collect();
        let scope = Scope {
            vars,
            bare: Some(&both),
            a: None,
            b: None,
            member: None,
            own: true,
            anon: None,
            suggest_orgs: true,
        };
        for (_, v) in m.claims.iter() {
            for t in v.templates() {
                self.placeholders(
                    &scope,
                    t,
                    "mint.claims (a name must be given in both `a` and `b`)",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("Brand is invisible to B!"), "brand-is-invisible-to-b");
        assert_eq!(slug("  --x--  "), "x");
    }
}
