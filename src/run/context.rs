//! What a run knows once org A and org B exist (run stage): vars, each org's captures
//! and token, A's markers; and how a suite request becomes a [`Prepared`] one for a
//! given identity, optionally with A's identifiers swapped for never-issued twins.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use serde_json::Value;

use super::error::RunError;
use super::http::{Body, Prepared};
use super::verdict::twin_of;
use crate::redact::Redactor;
use crate::suite::model::{Identity, Request};
use crate::suite::template::{Tpl, is_secret_name};

/// One org's state: everything captured for it (provision, mint values, seed for A).
#[derive(Clone, Debug, Default)]
pub struct OrgState {
    pub captures: BTreeMap<String, String>,
    /// The org's cookie jar: what the target set during setup, sent back as the org.
    pub jar: BTreeMap<String, String>,
    /// The JSON value of captures that were not JSON strings (a number, a boolean, an
    /// object), so that a `json:` body whose value is only `{{a.NAME}}` sends that type.
    pub typed: BTreeMap<String, Value>,
}

impl OrgState {
    pub fn token(&self) -> Option<&str> {
        self.captures.get("token").map(|s| s.as_str())
    }
}

/// Values for placeholders.
#[derive(Clone, Debug, Default)]
pub struct Values {
    pub run_id: String,
    pub vars: BTreeMap<String, String>,
    pub a: OrgState,
    pub b: OrgState,
    /// The user who is a member of both orgs (`orgs.member`): its captures and jar.
    pub member: OrgState,
    /// What seed steps run `as: anon` captured (`{{anon.NAME}}`).
    pub anon: OrgState,
}

/// A fresh random (v4) UUID.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    crate::random::fill(&mut b).expect("system random source");
    uuid::Builder::from_random_bytes(b).into_uuid().to_string()
}

/// A short, URL-safe, unique-enough run id: 10 lowercase base32 characters.
pub fn new_run_id() -> String {
    let mut b = [0u8; 10];
    crate::random::fill(&mut b).expect("system random source");
    const ALPHA: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    b.iter()
        .map(|x| ALPHA[(*x % 32) as usize] as char)
        .collect()
}

/// Swaps A's identifiers for never-issued ones, the same twin for the same value.
#[derive(Default)]
pub struct Twins {
    map: Mutex<BTreeMap<String, String>>,
}

impl Twins {
    /// The twin of `v`.
    pub fn of(&self, v: &str) -> String {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(v.to_string())
            .or_insert_with(|| super::scope::integer_twin(v).unwrap_or_else(|| twin_of(v)))
            .clone()
    }

    /// Every original and twin handed out, as one list (masked before bodies are
    /// compared).
    pub fn ids(&self) -> Vec<String> {
        self.pairs().into_iter().flat_map(|(a, t)| [a, t]).collect()
    }

    /// Every (original, twin) pair handed out.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// The twins among [`Twins::ids`]: every second value (the list is pairs, flattened).
pub fn twins_among(ids: &[String]) -> impl Iterator<Item = &str> {
    ids.iter().skip(1).step_by(2).map(String::as_str)
}

/// Twins shorter than this are never shared between checks: a short random value could
/// also be a path segment of another request, and two different requests would then
/// read as one.
const MIN_SHARED_TWIN: usize = 8;

/// At most this many twin answers are kept (a suite of distinct routes has as many
/// shapes as checks; past this, checks ask their own twins as before).
const MAX_SHARED_TWINS: usize = 512;

/// The never-issued twins' answers of this run, shared between checks that send the same
/// twin request but for its random ids (every read of `/items/{{a.item_N}}` sends
/// `/items/<never-issued>` as B). A shared answer stands in for a check's own twin only
/// when B's answer has the same status, content type and masked body as it: the rule
/// then judges what a fresh, identical twin would have given it; any difference, and
/// the check asks its own twin, twice when needed, exactly as without sharing.
#[derive(Default)]
pub struct SharedTwins {
    map: Mutex<std::collections::HashMap<String, std::sync::Arc<SharedTwin>>>,
}

/// One twin answer another check got, with that check's twin ids (masked with the
/// borrowing check's own).
#[derive(Debug)]
pub struct SharedTwin {
    pub resp: super::http::Resp,
    pub twins: Vec<String>,
}

impl SharedTwins {
    /// The key of a twin request: the request with its twin values blanked; `None` when
    /// one is too short to be blanked safely.
    pub fn key(t: &Prepared, ids: &[String]) -> Option<String> {
        let mut twins: Vec<&str> = twins_among(ids).collect();
        if twins.is_empty() || twins.iter().any(|t| t.len() < MIN_SHARED_TWIN) {
            return None;
        }
        twins.sort_by_key(|t| std::cmp::Reverse(t.len()));
        let mut key = t.key();
        for twin in twins {
            key = key.replace(twin, "\u{0}");
        }
        Some(key)
    }

    pub fn get(&self, key: &str) -> Option<std::sync::Arc<SharedTwin>> {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Keeps `resp` (the twin answer of a check whose ids are `ids`) for the checks that
    /// send the same twin request: only a plain refusal (4xx but 408 and 429), never a
    /// server error, a rate limit or a success, and only the first one.
    pub fn offer(&self, key: String, resp: &super::http::Resp, ids: &[String]) {
        if !(400..500).contains(&resp.status) || !super::verdict::judgeable_status(resp.status) {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_SHARED_TWINS && !map.contains_key(&key) {
            let twins = twins_among(ids).map(str::to_string).collect();
            map.insert(
                key,
                std::sync::Arc::new(SharedTwin {
                    resp: resp.clone(),
                    twins,
                }),
            );
        }
    }
}

/// A shared control of A's stands in for a check's own only while it is younger than
/// this: the control proves A's resource as it is when B asks, and nothing but
/// tenantgate's own requests is watched (a target's background job is not).
pub const MAX_SHARED_CONTROL_AGE: std::time::Duration = std::time::Duration::from_secs(1);

/// At most this many controls are kept (past this, checks ask their own).
const MAX_SHARED_CONTROLS: usize = 512;

/// A's implicit controls (`read` and `list` without `control:`: the check's request as
/// A, answering 2xx) of this run, shared between checks that send exactly the same
/// request as A: every read of `/items/{{a.item_3}}` asks A for the same item. A shared
/// answer stands in for a check's own control only while it is younger than
/// [`MAX_SHARED_CONTROL_AGE`] and no request that may change state (any method but
/// `GET`, `HEAD`, `OPTIONS`, by any identity) was in flight when it was sent or has
/// started since ([`super::http::Http::quiet`]): then the same request as A would be
/// answered the same way when B asks, as far as anything tenantgate sent goes. Reads
/// and lists run before every write, so that holds for nearly all of them.
#[derive(Default)]
pub struct SharedControls {
    map: Mutex<std::collections::HashMap<String, SharedControl>>,
}

/// What a check needs of A's successful control, and when and after which requests it
/// was sent.
#[derive(Clone, Copy, Debug)]
pub struct SharedControl {
    /// Whether the answer was JSON (known from a list's control only).
    pub is_json: bool,
    /// Whether it held one of A's markers, which a list's control must (looked for in a
    /// list's control only; a read's says false, so no list borrows it).
    pub has_marker: bool,
    sent: std::time::Instant,
    mark: u64,
}

impl SharedControls {
    /// The control another check got for `key` (the request as A, [`Prepared::key`]), if
    /// it may stand in for one sent now:
    /// sent less than [`MAX_SHARED_CONTROL_AGE`] before `now`, and `unchanged(mark)`
    /// (no request that may change state started since it was sent).
    pub fn get(
        &self,
        key: &str,
        now: std::time::Instant,
        unchanged: impl Fn(u64) -> bool,
    ) -> Option<SharedControl> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let c = *map.get(key)?;
        (now.saturating_duration_since(c.sent) < MAX_SHARED_CONTROL_AGE && unchanged(c.mark))
            .then_some(c)
    }

    /// Keeps a successful control for the checks that send the same request as A: sent
    /// at `sent`, when the client was quiet at `mark`. A newer one replaces an older.
    pub fn offer(
        &self,
        key: String,
        sent: std::time::Instant,
        mark: u64,
        is_json: bool,
        has_marker: bool,
    ) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let c = SharedControl {
            is_json,
            has_marker,
            sent,
            mark,
        };
        let room = map.len() < MAX_SHARED_CONTROLS;
        match map.entry(key) {
            Entry::Occupied(mut o) if o.get().sent <= sent => {
                o.insert(c);
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(v) if room => {
                v.insert(c);
            }
            Entry::Vacant(_) => {}
        }
    }
}

impl Values {
    /// The typed lookup for JSON bodies, over the text lookup `text` (same `bare`): a
    /// capture that was a JSON number, boolean or object is that value again (a twin of
    /// a number stays a number when it still reads as one); anything else is a JSON
    /// string of its text.
    pub fn typed<'a>(
        &'a self,
        text: &'a dyn Fn(&str) -> Option<String>,
        bare: Option<Identity>,
    ) -> impl Fn(&str) -> Option<Value> + 'a {
        move |name: &str| {
            let s = text(name)?;
            if self.vars.contains_key(name) || ["run_id", "uuid", "org"].contains(&name) {
                return Some(Value::String(s));
            }
            let (state, n) = match name.split_once('.') {
                Some(("a", n)) => (&self.a, n),
                Some(("b", n)) => (&self.b, n),
                Some(("member", n)) => (&self.member, n),
                Some(("anon", n)) => (&self.anon, n),
                Some(_) => return Some(Value::String(s)),
                None => (self.org(bare?)?, name),
            };
            Some(match state.typed.get(n) {
                Some(v) if crate::suite::model::json_text(v) == s => v.clone(),
                Some(Value::Number(_)) => serde_json::from_str::<serde_json::Number>(&s)
                    .map(Value::Number)
                    .unwrap_or(Value::String(s)),
                _ => Value::String(s),
            })
        }
    }

    /// The placeholder lookup. `bare` makes `org` and bare capture names refer to that
    /// org (provision, auth, teardown). `twins` swaps every `a.NAME` (but the token).
    pub fn lookup<'a>(
        &'a self,
        bare: Option<Identity>,
        twins: Option<&'a Twins>,
        token_override: Option<&'a str>,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |name: &str| {
            match name {
                "run_id" => return Some(self.run_id.clone()),
                "uuid" => return Some(uuid_v4()),
                _ => {}
            }
            if let Some(v) = self.vars.get(name) {
                return Some(v.clone());
            }
            if let Some((org, n)) = name.split_once('.') {
                let state = match org {
                    "a" => &self.a,
                    "b" => &self.b,
                    "member" => &self.member,
                    "anon" => &self.anon,
                    _ => return None,
                };
                let v = state.captures.get(n)?.clone();
                return Some(match twins {
                    Some(t) if org == "a" && n != "token" => t.of(&v),
                    _ => v,
                });
            }
            let org = bare?;
            if name == "org" {
                return Some(org.as_str().to_string());
            }
            if name == "token"
                && let Some(t) = token_override
            {
                return Some(t.to_string());
            }
            match org {
                Identity::A => self.a.captures.get(name).cloned(),
                Identity::B => self.b.captures.get(name).cloned(),
                Identity::Member => self.member.captures.get(name).cloned(),
                Identity::Anon => None,
            }
        }
    }

    /// The org's state for an identity.
    pub fn org(&self, id: Identity) -> Option<&OrgState> {
        match id {
            Identity::A => Some(&self.a),
            Identity::B => Some(&self.b),
            Identity::Member => Some(&self.member),
            Identity::Anon => None,
        }
    }
}

/// How identities are sent: `header: value` with `{{token}}` and the org's captures
/// (no header when `header` is empty), plus cookies sent as `name=value`.
#[derive(Clone, Debug)]
pub struct AuthSpec {
    pub header: String,
    pub value: Tpl,
    /// `orgs.auth.cookie`: cookie name and value template.
    pub cookies: Vec<(String, Tpl)>,
    /// `orgs.member.auth`, when the member authenticates differently from the orgs.
    pub member: Option<Box<AuthSpec>>,
}

impl AuthSpec {
    /// How `as_` is authenticated: the member's own auth when it has one, else this.
    pub fn of(&self, as_: Identity) -> &AuthSpec {
        match (as_, &self.member) {
            (Identity::Member, Some(m)) => m,
            _ => self,
        }
    }

    /// Whether forged tokens can be sent (the value uses `{{token}}`).
    pub fn uses_token(&self) -> bool {
        self.value.vars().any(|v| v == "token")
    }
}

/// Who sends a request and how: the identity, whose values `{{own.NAME}}` takes
/// (normally the sender's), and a credential replacing the org's auth.
#[derive(Clone, Copy, Debug)]
pub struct Sending<'a> {
    pub as_: Identity,
    pub own: Option<Identity>,
    /// A header name and value template (`orgs.credentials`).
    pub credential: Option<(&'a str, &'a Tpl)>,
}

impl Sending<'_> {
    /// As `as_`, in its own scope, with the org's auth.
    pub fn of(as_: Identity) -> Self {
        Sending {
            as_,
            own: (as_ != Identity::Anon).then_some(as_),
            credential: None,
        }
    }
}

/// Renders a suite request.
pub struct Preparer<'a> {
    pub values: &'a Values,
    pub auth: &'a AuthSpec,
    pub redactor: &'a Redactor,
}

impl Preparer<'_> {
    /// `req` as `as_`, with `bare` names of an org, twins, and a token override (forgery).
    pub fn prepare(
        &self,
        req: &Request,
        as_: Identity,
        bare: Option<Identity>,
        twins: Option<&Twins>,
        token_override: Option<&str>,
    ) -> Result<Prepared, RunError> {
        self.prepare_sending(req, &Sending::of(as_), bare, twins, token_override)
    }

    /// `req` sent as `how` says: `{{own.NAME}}` is `how.own`'s capture, and the
    /// credential is `how.credential` instead of the org's auth when one is given.
    pub fn prepare_sending(
        &self,
        req: &Request,
        how: &Sending<'_>,
        bare: Option<Identity>,
        twins: Option<&Twins>,
        token_override: Option<&str>,
    ) -> Result<Prepared, RunError> {
        let as_ = how.as_;
        let inner = self.values.lookup(bare, twins, None);
        let lookup = super::scope::own_lookup(&inner, how.own);
        let url = req.url.render(&lookup)?;
        let mut headers = Vec::new();
        for (k, v) in req.headers.iter() {
            headers.push((k.name.clone(), v.render(&lookup)?));
        }
        let mut query = Vec::new();
        for (k, v) in req.query.iter() {
            query.push((k.name.clone(), v.render(&lookup)?));
        }
        let body = match (&req.json, &req.body) {
            (Some(j), _) => {
                let typed = self.values.typed(&lookup, bare);
                let v = j
                    .render_typed(&typed)
                    .map_err(|e| RunError::Template(e.to_string()))?;
                self.register_body_secrets(&v);
                Some(Body::Json(v))
            }
            (None, Some(t)) => Some(Body::Text(t.render(&lookup)?)),
            (None, None) => None,
        };
        let mut p = Prepared {
            method: req.method.0.to_string(),
            url,
            headers,
            query,
            body,
            graphql: req.graphql_field().map(str::to_string),
        };
        if let (Some((header, value)), true) = (how.credential, as_ != Identity::Anon) {
            let auth_lookup = self.values.lookup(Some(as_), None, None);
            p.set_header(header, &value.render(&auth_lookup)?);
        } else if as_ != Identity::Anon {
            // The identity's own names fill the auth value (its token); without a token
            // yet (the first provision step) the request goes without credentials.
            let auth_lookup = self.values.lookup(Some(as_), None, token_override);
            let auth = self.auth.of(as_);
            super::cookies::add_cookies(&mut p, auth, self.values.org(as_), &auth_lookup);
            if let Ok(value) = auth.value.render(&auth_lookup)
                && !auth.header.is_empty()
                && !p
                    .headers
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case(&auth.header))
            {
                p.headers.push((auth.header.clone(), value));
            }
        }
        Ok(p)
    }

    /// Passwords and keys sent in JSON bodies are secrets.
    fn register_body_secrets(&self, v: &Value) {
        match v {
            Value::Object(o) => {
                for (k, x) in o {
                    if let Value::String(s) = x
                        && is_secret_name(k)
                    {
                        self.redactor.add(k, s);
                    }
                    self.register_body_secrets(x);
                }
            }
            Value::Array(a) => a.iter().for_each(|x| self.register_body_secrets(x)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::http::Resp;

    fn get(url: &str) -> Prepared {
        Prepared {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("Authorization".into(), "Bearer b".into())],
            query: Vec::new(),
            body: None,
            graphql: None,
        }
    }

    fn ids(pairs: &[(&str, &str)]) -> Vec<String> {
        let t = Twins::default();
        let mut m = t.map.lock().unwrap();
        for (a, twin) in pairs {
            m.insert(a.to_string(), twin.to_string());
        }
        drop(m);
        t.ids()
    }

    fn answer(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: "{\"error\":\"not found\"}".into(),
            elapsed: std::time::Duration::ZERO,
        }
    }

    #[test]
    fn a_control_stands_in_only_while_young_and_nothing_that_may_change_state_started() {
        let c = SharedControls::default();
        let key = get("/items/a-id-00000001").key();
        let t0 = std::time::Instant::now();
        let (young, old) = (
            t0 + std::time::Duration::from_millis(999),
            t0 + MAX_SHARED_CONTROL_AGE,
        );
        assert!(c.get(&key, t0, |_| true).is_none(), "nothing offered yet");
        c.offer(key.clone(), t0, 7, false, false);
        assert!(c.get(&key, young, |m| m == 7).is_some());
        assert!(c.get(&key, old, |m| m == 7).is_none(), "a second old");
        assert!(
            c.get(&key, young, |m| m == 8).is_none(),
            "a write started since"
        );
        // Another request (here another URL) never borrows it.
        let other = get("/items/a-id-00000002").key();
        assert!(c.get(&other, young, |_| true).is_none());
        // A newer control replaces it; an older one does not.
        let t1 = t0 + std::time::Duration::from_millis(500);
        c.offer(key.clone(), t1, 8, true, true);
        c.offer(key.clone(), t0, 7, false, false);
        let got = c.get(&key, old, |m| m == 8).unwrap();
        assert!(got.is_json && got.has_marker);
    }

    #[test]
    fn no_more_controls_than_the_cap_are_kept() {
        let c = SharedControls::default();
        let t0 = std::time::Instant::now();
        for i in 0..=MAX_SHARED_CONTROLS {
            c.offer(format!("k{i}"), t0, 0, false, false);
        }
        assert!(c.get("k0", t0, |_| true).is_some());
        let last = format!("k{MAX_SHARED_CONTROLS}");
        assert!(c.get(&last, t0, |_| true).is_none());
    }

    #[test]
    fn twin_requests_that_differ_only_in_their_twins_share_a_key() {
        let x = ids(&[("a-id-00000001", "t-id-11111111")]);
        let y = ids(&[("a-id-00000002", "t-id-22222222")]);
        let kx = SharedTwins::key(&get("/items/t-id-11111111"), &x).unwrap();
        let ky = SharedTwins::key(&get("/items/t-id-22222222"), &y).unwrap();
        assert_eq!(kx, ky);
        // Anything else that differs keeps them apart: the route, a header, the body.
        let other = SharedTwins::key(&get("/projects/t-id-22222222"), &y).unwrap();
        assert_ne!(kx, other);
        let mut h = get("/items/t-id-22222222");
        h.set_header("X-Tenant-Id", "org-a");
        assert_ne!(kx, SharedTwins::key(&h, &y).unwrap());
        let mut b = get("/items/t-id-22222222");
        b.body = Some(Body::Text("x".into()));
        assert_ne!(kx, SharedTwins::key(&b, &y).unwrap());
        // A's own value in the request is not blanked (only the twins are).
        let ka = SharedTwins::key(&get("/a-id-00000002/t-id-22222222"), &y).unwrap();
        assert!(ka.contains("a-id-00000002"), "{ka}");
    }

    #[test]
    fn short_twins_are_never_shared() {
        let x = ids(&[("7", "4")]);
        assert_eq!(SharedTwins::key(&get("/v1/items/4"), &x), None);
        assert_eq!(SharedTwins::key(&get("/items"), &[]), None);
    }

    #[test]
    fn only_a_plain_refusal_is_kept_and_only_the_first() {
        let x = ids(&[("a-id-00000001", "t-id-11111111")]);
        let shared = SharedTwins::default();
        for status in [200, 302, 408, 429, 500, 503] {
            shared.offer("k".into(), &answer(status), &x);
            assert!(shared.get("k").is_none(), "{status} kept");
        }
        shared.offer("k".into(), &answer(404), &x);
        shared.offer("k".into(), &answer(410), &x);
        let kept = shared.get("k").unwrap();
        assert_eq!(kept.resp.status, 404);
        assert_eq!(kept.twins, ["t-id-11111111"]);
    }
}
