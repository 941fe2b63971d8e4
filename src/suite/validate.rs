//! Validation of a parsed suite (parse stage, after YAML → [`Suite`]): the rules the
//! types cannot express — structure, placeholders that name nothing, signing keys, CA
//! files. A [`Validator`] owns the file name and collects every problem it finds, so
//! one load reports them all.

use std::collections::BTreeSet;

use super::model::*;
use super::template::{Loc, Tpl};
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

/// The names a template may use in one place of the suite.
struct Scope<'a> {
    vars: &'a [String],
    /// `org` and bare capture names are allowed (provision, auth, teardown, mint claims).
    bare: Option<&'a BTreeSet<String>>,
    /// `a.NAME` / `b.NAME` allowed with these names.
    a: Option<&'a BTreeSet<String>>,
    b: Option<&'a BTreeSet<String>>,
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
                // The caller's own: both orgs must have it.
                "own" => {
                    self.a.is_some_and(|s| s.contains(n)) && self.b.is_some_and(|s| s.contains(n))
                }
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
        if let Some(a) = self.a {
            k.extend(a.iter().map(|n| format!("a.{n}")));
        }
        if let Some(b) = self.b {
            k.extend(b.iter().map(|n| format!("b.{n}")));
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
    /// What provision (or mint) gives each org: bare names in provision and teardown.
    org: BTreeSet<String>,
    /// `a.NAME`: the org captures and A's seed captures.
    a: BTreeSet<String>,
    /// `b.NAME`: the org captures and B's own seed captures (`as: b`).
    b: BTreeSet<String>,
}

/// Checks a parsed suite and collects every problem, located in `file`.
pub(super) struct Validator<'a> {
    file: &'a str,
    /// Offsets of values that already have a problem (a missing variable, a bad
    /// placeholder): not checked again, one mistake, one message.
    broken: &'a BTreeSet<usize>,
    diags: Vec<Diagnostic>,
}

impl<'a> Validator<'a> {
    pub(super) fn new(file: &'a str, broken: &'a BTreeSet<usize>) -> Self {
        Validator {
            file,
            broken,
            diags: Vec::new(),
        }
    }

    /// Every problem of `s` the types cannot express, in the order found.
    pub(super) fn validate(mut self, s: &Suite) -> Vec<Diagnostic> {
        self.header(s);
        let vars = self.vars(s);
        self.target(s, &vars);
        let org = self.orgs(s, &vars);
        let caps = self.seed(s, &vars, org);
        let full = Scope {
            vars: &vars,
            bare: None,
            a: Some(&caps.a),
            b: Some(&caps.b),
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
        let mut seen: Vec<(String, Loc)> = Vec::new();
        for c in &s.checks {
            self.check(c, &full, &mut seen);
        }
        if let Some(db) = &s.database {
            self.database(db);
        }
        self.diags
    }

    fn at(&mut self, loc: Loc, message: impl Into<String>, hint: Option<String>) {
        self.diags
            .push(Diagnostic::at(self.file, loc, message, hint));
    }

    fn whole(&mut self, message: &str, hint: &str) {
        self.diags
            .push(Diagnostic::file(self.file, message, Some(hint.into())));
    }

    /// Every placeholder of `t` must be known in `scope`.
    fn placeholders(&mut self, scope: &Scope, t: &Tpl, place: &str) {
        for v in t.vars() {
            if scope.allows(v) {
                continue;
            }
            let known = scope.known();
            let hint = match did_you_mean(v, known.iter().map(|s| s.as_str())) {
                Some(s) => format!("did you mean `{{{{{s}}}}}`?"),
                None if known.is_empty() => "no names are known here".to_string(),
                None => format!("known here: {}", known.join(", ")),
            };
            let why = if v.starts_with("a.") || v.starts_with("b.") {
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
                self.request(&l.value);
            }
        }
    }

    /// Seed steps run as A (or `as: b`); their captures become `a.NAME` (`b.NAME`).
    fn seed(&mut self, s: &Suite, vars: &[String], org: BTreeSet<String>) -> Captures {
        let mut a = org.clone();
        let mut b = org.clone();
        for step in &s.seed {
            let scope = Scope {
                vars,
                bare: None,
                a: Some(&a),
                b: Some(&b),
            };
            for t in step_templates(step) {
                self.placeholders(&scope, t, "a seed step");
            }
            self.step(step);
            // A seed step run `as: b` seeds B's own rows; its captures are `b.NAME`.
            let owner = if step.as_ == Some(Identity::B) {
                &mut b
            } else {
                &mut a
            };
            owner.extend(step.capture.iter().map(|(k, _)| k.name.clone()));
        }
        Captures { org, a, b }
    }

    fn identity_and_teardown(&mut self, o: &Orgs, vars: &[String], caps: &Captures, full: &Scope) {
        if let Some(id) = &o.identity {
            for t in request_templates(&id.request) {
                self.placeholders(full, t, "orgs.identity");
            }
        }
        let teardown = Scope {
            vars,
            bare: Some(&caps.org),
            a: Some(&caps.a),
            b: Some(&caps.b),
        };
        for step in &o.teardown {
            for t in step_templates(step) {
                self.placeholders(&teardown, t, "a teardown step");
            }
            self.step(step);
        }
    }

    /// One check: its name, its kind, its requests and expectations.
    fn check(&mut self, c: &Check, full: &Scope, seen: &mut Vec<(String, Loc)>) {
        let name_loc = Loc::of(&c.name);
        let sl = slug(&c.name.value);
        if sl.is_empty() {
            self.at(
                name_loc,
                "a check needs a name with letters or digits",
                Some("results are identified by the name: write what the check proves, e.g. `brand is invisible to B`".into()),
            );
        } else if let Some((_, prev)) = seen.iter().find(|(s, _)| *s == sl) {
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
            seen.push((sl, name_loc));
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
                ("as", c.as_.is_some()),
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
            c.read.as_ref().map(|r| &r.request),
            c.list.as_ref().map(|r| &r.request),
            c.write.as_ref().map(|r| &r.value),
            c.verify.as_ref().map(|r| &r.request),
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
            self.request(r);
            for t in request_templates(r) {
                self.placeholders(full, t, &place);
            }
        }
        for e in [c.expect.as_ref(), c.control.as_ref().map(|c| &c.expect)]
            .into_iter()
            .flatten()
        {
            for t in expect_templates(e) {
                self.placeholders(full, t, &place);
            }
            self.expect(e);
        }
    }

    fn database(&mut self, db: &Database) {
        self.no_placeholders(&db.url, "database.url");
        if let Some(r) = &db.app_role {
            self.no_placeholders(r, "database.app_role");
        }
        if let Some(p) = &db.probe {
            self.no_placeholders(&p.url, "database.probe.url");
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

    fn request(&mut self, r: &Request) {
        if r.json.is_some() && r.body.is_some() {
            self.at(
                r.url.loc,
                "a request has both `json` and `body`",
                Some("send one: `json` for a JSON body, `body` for raw text".into()),
            );
        }
    }

    fn step(&mut self, s: &Step) {
        self.request(&s.request.value);
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
