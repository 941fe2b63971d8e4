//! The suite format, version 1, as types (parse stage). Field names are the public
//! contract (`docs/suite-format.md`): never change the meaning of one. Unknown keys are
//! rejected by `deny_unknown_fields`; values that have their own syntax (durations,
//! JSONPath, statuses, methods) are checked while deserializing and their problems
//! collected with their location, so that one load reports every problem at once.

use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

use super::template::{Loc, Part, RenderError, Tpl, collect_error};

/// A whole suite file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Suite {
    /// Must be 1.
    #[schemars(with = "u32")]
    pub version: Spanned<u32>,
    /// The suite's name, used in reports.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Free text for the reader (extension).
    #[serde(default)]
    pub description: Option<String>,
    /// The environment variables the suite may read as `${NAME}` (extension). When
    /// absent, every name the suite uses counts as declared (and a notice says so).
    #[serde(default)]
    #[schemars(with = "Option<Vec<String>>")]
    pub env: Option<Vec<Spanned<String>>>,
    /// Where requests go.
    #[serde(default)]
    pub target: Option<Target>,
    /// Named values usable as `{{name}}`, in order (a var may use earlier vars).
    #[serde(default)]
    pub vars: Map<Tpl>,
    /// How to get org A and org B.
    #[serde(default)]
    pub orgs: Option<Orgs>,
    /// Steps run as org A, in order.
    #[serde(default)]
    pub seed: Vec<Step>,
    /// Checks run as org B.
    #[serde(default)]
    pub checks: Vec<Check>,
    /// The database audit and probe.
    #[serde(default)]
    pub database: Option<Database>,
    /// Extra markers (and exclusions) for every list check.
    #[serde(default)]
    pub markers: Vec<MarkerSpec>,
    /// Built-in attacks, switched or configured.
    #[serde(default)]
    pub attacks: Option<Attacks>,
    /// The status a not-found answer has (default 404).
    #[serde(default)]
    #[schemars(with = "Option<u16>")]
    pub not_found_status: Option<Spanned<u16>>,
    /// The vendor's other promises, opt-in (extension; [`super::promises`]).
    #[serde(default)]
    pub promises: Option<super::promises::Promises>,
    /// The OpenAPI coverage gate (extension): the document and the exempt operations.
    #[serde(default)]
    pub openapi: Option<OpenApi>,
    /// Warnings accepted with a reason (extension; `tenantgate baseline` writes them):
    /// still shown in every report, marked accepted, and not failing `--deny-warnings`.
    #[serde(default)]
    pub accept: Vec<Accept>,
}

/// One `accept:` entry: the result id (exact, a check's slug, or a glob such as
/// `public.users.*`) of warnings accepted, and why.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Accept {
    /// The result id or pattern, as `--filter` matches ids.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// Why it is acceptable (required; a reviewer reads it in every report).
    #[schemars(with = "String")]
    pub reason: Spanned<String>,
}

/// `openapi:` (extension): every tenant-scoped operation of `spec` must be covered by a
/// check or listed in `exempt` with a reason (see `crate::openapi`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenApi {
    /// The OpenAPI 3 document, relative to the suite file (`run --openapi` wins).
    #[serde(default)]
    pub spec: Option<String>,
    /// Operations no check needs to cover, each with why.
    #[serde(default)]
    pub exempt: Vec<OpenApiExempt>,
}

/// One `openapi.exempt` entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenApiExempt {
    /// `METHOD /path/{param}` as in the document, e.g. `GET /health`.
    pub operation: String,
    /// Why no check covers it (required).
    pub reason: String,
}

/// `target:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    pub base_url: Tpl,
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Headers sent with every request (extension), e.g. a staging gateway key.
    #[serde(default)]
    pub headers: Map<Tpl>,
    /// How the target's TLS certificate is verified (extension).
    #[serde(default)]
    pub tls: Option<Tls>,
    /// Origins (`https://auth.example.com`) requests may go to besides `base_url`'s
    /// (extension); any other absolute URL is refused at load.
    #[serde(default)]
    pub allowed_origins: Vec<Tpl>,
    /// The GraphQL endpoint (extension) a `graphql:` request without a `url` is sent to;
    /// default `/graphql`.
    #[serde(default)]
    pub graphql: Option<Tpl>,
}

/// `target.tls:` (extension): trust for targets behind a private CA.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// A PEM bundle of CA certificates added to the system's trust roots (not replacing
    /// them). A relative path is taken from the working directory, like a signing `key`.
    #[serde(default)]
    pub ca: Option<Tpl>,
}

/// `orgs:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Orgs {
    #[serde(default)]
    pub provision: Vec<Step>,
    #[serde(default)]
    pub mint: Option<Mint>,
    /// How a token is sent; default `Authorization: Bearer {{token}}`.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// The JWT claim that carries the tenant; a dotted path for nested claims.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub tenant_claim: Option<Spanned<String>>,
    /// An endpoint that echoes the caller's tenant.
    #[serde(default)]
    pub identity: Option<ReqOrUrl>,
    /// Steps run for both orgs at the end, also after failures; a list of steps, or
    /// `{ steps, keeps, reason }` (extension) naming what the API cannot delete.
    #[serde(default)]
    pub teardown: Teardown,
    /// Captures that hold the tenant in the path (extension), e.g. `{ slug: "{{slug}}" }`:
    /// `{{own.slug}}` is then the caller's own, and every A value is offered in overrides.
    #[serde(default)]
    pub scope: Map<Tpl>,
    /// More identities of each org (extension), e.g. an API key: reads, lists and writes
    /// also run under each of B's.
    #[serde(default)]
    pub credentials: Map<Credential>,
    /// Attacks on opaque session ids (extension).
    #[serde(default)]
    pub session: Option<SessionSpec>,
    /// A third identity (extension): a user who is a member of both orgs.
    #[serde(default)]
    pub member: Option<Member>,
}

/// `orgs.member:` a user who belongs to org A and org B (extension). Its steps run once
/// both orgs are provisioned and A is seeded, as the member unless a step says `as:`;
/// their captures are the member's (`member.NAME`, bare names in its steps and auth).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Steps that make the member (sign it up, have A and B add it, log it in).
    pub provision: Vec<Step>,
    /// How the member's requests are authenticated; default `orgs.auth` with the
    /// member's own names.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Steps that remove what the member's provision made, run first at teardown.
    #[serde(default)]
    pub teardown: Vec<Step>,
}

/// `orgs.credentials.NAME:` a header and its value (bare org names allowed).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Credential {
    #[schemars(with = "String")]
    pub header: Spanned<String>,
    pub value: Tpl,
}

/// `orgs.session:` the session cookie, the provision step that logs in, and logout.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionSpec {
    /// The name of the session cookie.
    #[schemars(with = "String")]
    pub cookie: Spanned<String>,
    /// The name of the provision step that logs in (run again for the logout attack).
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub login: Option<Spanned<String>>,
    /// The request that logs out.
    #[serde(default)]
    #[schemars(with = "Option<Request>")]
    pub logout: Option<Spanned<Request>>,
    /// How many neighbours on each side of B's id are tried (default 3).
    #[serde(default)]
    #[schemars(with = "Option<u32>")]
    pub neighbours: Option<Spanned<u32>>,
}

/// `orgs.teardown:` either a list of steps (the original form) or
/// `{ steps: [...], keeps: [...], reason: "..." }` (extension), where `keeps` names the
/// captures of what the API cannot delete, so a run reports them as kept on purpose
/// rather than as a failed teardown.
#[derive(Debug, Default)]
pub struct Teardown {
    pub steps: Vec<Step>,
    pub keeps: Vec<Keep>,
    /// Why the API keeps what `keeps` names (shown for every kept item without its own).
    pub reason: Option<String>,
}

impl Teardown {
    /// The reason a capture is kept on purpose, if the suite declares it in `keeps`.
    pub fn kept(&self, capture: &str) -> Option<String> {
        self.keeps
            .iter()
            .find(|k| k.capture.value == capture)
            .map(|k| {
                k.reason
                    .clone()
                    .or_else(|| self.reason.clone())
                    .unwrap_or_else(|| "declared in `teardown.keeps`".into())
            })
    }
}

/// One entry of `teardown.keeps`: a capture name, or `{ capture, reason }`.
#[derive(Debug)]
pub struct Keep {
    pub capture: Spanned<String>,
    pub reason: Option<String>,
}

impl<'de> Deserialize<'de> for Teardown {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            #[serde(default)]
            steps: Vec<Step>,
            #[serde(default)]
            keeps: Vec<Keep>,
            #[serde(default)]
            reason: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Teardown;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of steps, or { steps, keeps, reason }")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Teardown, A::Error> {
                let steps = Vec::<Step>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(Teardown {
                    steps,
                    ..Teardown::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Teardown, A::Error> {
                let f = Full::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Teardown {
                    steps: f.steps,
                    keeps: f.keeps,
                    reason: f.reason,
                })
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Keep {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Full {
            capture: Spanned<String>,
            #[serde(default)]
            reason: Option<String>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Name(Spanned<String>),
            Full(Full),
        }
        Ok(match Raw::deserialize(d)? {
            Raw::Name(capture) => Keep {
                capture,
                reason: None,
            },
            Raw::Full(f) => Keep {
                capture: f.capture,
                reason: f.reason,
            },
        })
    }
}

/// `orgs.auth:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// With `value`: the header that carries the credential.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub header: Option<Spanned<String>>,
    #[serde(default)]
    pub value: Option<Tpl>,
    /// Cookies sent as `name=value` (extension), e.g. `{ sid: "{{session}}" }`.
    #[serde(default)]
    pub cookie: Map<Tpl>,
}

/// `orgs.mint:` tokens minted by tenantgate instead of provisioned through the API.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mint {
    #[schemars(with = "String")]
    pub algorithm: Spanned<String>,
    /// HMAC secret (HS256/384/512).
    #[serde(default)]
    pub secret: Option<Tpl>,
    /// PEM private key path (RS256, ES256).
    #[serde(default)]
    pub key: Option<Tpl>,
    #[serde(default)]
    pub ttl: Option<Dur>,
    pub claims: Map<JValue>,
    pub a: Map<Tpl>,
    pub b: Map<Tpl>,
}

/// A signing key (used by `attacks.token_forgery.sign_with`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignKey {
    #[schemars(with = "String")]
    pub algorithm: Spanned<String>,
    #[serde(default)]
    pub secret: Option<Tpl>,
    #[serde(default)]
    pub key: Option<Tpl>,
}

/// Which identity sends a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    A,
    B,
    Anon,
    /// The user who is a member of both orgs (`orgs.member`, extension).
    Member,
}

impl Identity {
    pub fn as_str(self) -> &'static str {
        match self {
            Identity::A => "a",
            Identity::B => "b",
            Identity::Anon => "anon",
            Identity::Member => "member",
        }
    }
}

/// A provision, seed or teardown step.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    #[serde(default)]
    pub name: Option<String>,
    #[schemars(with = "Request")]
    pub request: Spanned<Request>,
    #[serde(default, rename = "as")]
    pub as_: Option<Identity>,
    #[serde(default)]
    pub expect: Option<Expect>,
    #[serde(default)]
    pub capture: Map<CaptureSpec>,
}

/// `request: { method, url, headers, query, json, body }`
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Request {
    #[serde(default)]
    pub method: Method,
    /// Required unless `graphql` is given (checked by validation).
    #[serde(default)]
    pub url: Tpl,
    #[serde(default)]
    pub headers: Map<Tpl>,
    #[serde(default)]
    pub query: Map<Tpl>,
    #[serde(default)]
    pub json: Option<JValue>,
    // Boxed: rare, and a suite holds thousands of requests.
    #[serde(default)]
    #[schemars(with = "Option<Tpl>")]
    pub body: Option<Box<Tpl>>,
    /// A GraphQL operation (extension): sent as `POST` of
    /// `{query, operationName, variables}` to `url` (default `target.graphql`, else
    /// `/graphql`), and judged by the GraphQL rules.
    #[serde(default)]
    pub graphql: Option<Box<GraphQl>>,
}

impl Request {
    /// A GET of `url`.
    pub fn get(url: Tpl) -> Request {
        Request {
            method: Method::default(),
            url,
            headers: Map::default(),
            query: Map::default(),
            json: None,
            body: None,
            graphql: None,
        }
    }

    /// The GraphQL result field this request is judged on (`Some("")`: the only field
    /// of `data`), or `None` for a plain HTTP request.
    pub fn graphql_field(&self) -> Option<&str> {
        self.graphql
            .as_ref()
            .map(|g| g.field.as_deref().unwrap_or(""))
    }
}

/// `graphql: { query, operation, variables, field }` on a request (extension).
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphQl {
    /// The document (no `{{...}}` placeholders: values go in `variables`).
    #[schemars(with = "String")]
    pub query: Spanned<String>,
    /// `operationName`, when the document holds several operations.
    #[serde(default)]
    pub operation: Option<String>,
    /// The variables; strings are templates (`{{a.brand_id}}`), typed as in `json:`.
    #[serde(default)]
    pub variables: Option<JValue>,
    /// The dotted path under `data` the check is judged on (`projectById`,
    /// `allBrands.nodes`); default: the only field of `data`.
    #[serde(default)]
    pub field: Option<String>,
}

/// An HTTP method, upper-cased: one of [`Method::KNOWN`] (a static string, not one
/// allocation per request of the suite).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Method(pub &'static str);

impl Default for Method {
    fn default() -> Self {
        Method("GET")
    }
}

impl Method {
    /// The methods a suite may use.
    pub const KNOWN: [&'static str; 7] =
        ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

    /// GET, HEAD and OPTIONS do not change anything on a well-behaved server.
    pub fn is_safe(&self) -> bool {
        matches!(self.0, "GET" | "HEAD" | "OPTIONS")
    }
}

impl<'de> Deserialize<'de> for Method {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<String>::deserialize(d)?;
        let m = s.value.to_ascii_uppercase();
        match Method::KNOWN.iter().find(|k| **k == m) {
            Some(k) => Ok(Method(k)),
            None => {
                // Reported; the suite does not load, so the stand-in is never sent.
                collect_error(
                    Loc::of(&s),
                    format!("`{}` is not an HTTP method", s.value),
                    Some(format!("use one of {}", Method::KNOWN.join(", "))),
                );
                Ok(Method::default())
            }
        }
    }
}

/// `read: URL` or `read: {request}` (likewise `list`, `verify`, `identity`).
#[derive(Debug)]
pub struct ReqOrUrl {
    /// Shared with the plans made from it (a plan used to copy it: at 10,000 checks
    /// the copies were a fifth of the run's memory).
    pub request: std::sync::Arc<Request>,
    pub loc: Loc,
}

impl<'de> Deserialize<'de> for ReqOrUrl {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Raw {
            Url(String),
            Req(Box<Request>),
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL or a request mapping { method, url, ... }")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::Url(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Raw, A::Error> {
                Request::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(|r| Raw::Req(Box::new(r)))
            }
        }
        impl<'de> Deserialize<'de> for Raw {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(V)
            }
        }
        let s = Spanned::<Raw>::deserialize(d)?;
        let loc = Loc::of(&s);
        let request = match s.value {
            Raw::Url(u) => {
                let (tpl, errors) = Tpl::parse(&u, loc);
                for e in errors {
                    collect_error(e.loc, e.message, e.hint);
                }
                Request::get(tpl)
            }
            Raw::Req(r) => *r,
        };
        Ok(ReqOrUrl {
            request: std::sync::Arc::new(request),
            loc,
        })
    }
}

/// `expect: { status, body_contains, body_excludes, json }`
#[derive(Clone, Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    #[serde(default)]
    pub status: Option<StatusSpec>,
    #[serde(default)]
    pub body_contains: OneOrMany<Tpl>,
    #[serde(default)]
    pub body_excludes: OneOrMany<Tpl>,
    /// JSONPath → expected value (the first match is compared).
    #[serde(default)]
    pub json: Map<JValue>,
}

/// One accepted status: an exact code or a class such as `2xx`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusPat {
    Exact(u16),
    Class(u16),
}

impl StatusPat {
    pub fn matches(self, status: u16) -> bool {
        match self {
            StatusPat::Exact(s) => s == status,
            StatusPat::Class(c) => status / 100 == c,
        }
    }
}

impl fmt::Display for StatusPat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusPat::Exact(s) => write!(f, "{s}"),
            StatusPat::Class(c) => write!(f, "{c}xx"),
        }
    }
}

/// `status:` a number, a class, or a list of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusSpec(pub Vec<StatusPat>);

impl StatusSpec {
    pub fn matches(&self, status: u16) -> bool {
        self.0.iter().any(|p| p.matches(status))
    }
}

impl fmt::Display for StatusSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<String> = self.0.iter().map(|p| p.to_string()).collect();
        f.write_str(&v.join(" or "))
    }
}

impl<'de> Deserialize<'de> for StatusSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<JValue>::deserialize(d)?;
        let loc = Loc::of(&s);
        let one = |v: &JValue| -> Option<StatusPat> {
            match v {
                JValue::Int(n) if (100..=599).contains(n) => Some(StatusPat::Exact(*n as u16)),
                JValue::Str(t) => {
                    let lit = t.as_literal()?;
                    let l = lit.to_ascii_lowercase();
                    if let Some(c) = l.strip_suffix("xx") {
                        c.parse::<u16>()
                            .ok()
                            .filter(|c| (1..=5).contains(c))
                            .map(StatusPat::Class)
                    } else {
                        l.parse::<u16>()
                            .ok()
                            .filter(|n| (100..=599).contains(n))
                            .map(StatusPat::Exact)
                    }
                }
                _ => None,
            }
        };
        let items: Vec<&JValue> = match &s.value {
            JValue::Seq(v) => v.iter().collect(),
            v => vec![v],
        };
        let given = !items.is_empty();
        let mut pats = Vec::new();
        for it in items {
            match one(it) {
                Some(p) => pats.push(p),
                None => collect_error(
                    loc,
                    format!("`{}` is not a status", it.describe()),
                    Some("write a code (`404`), a class (`2xx`) or a list (`[200, 204]`)".into()),
                ),
            }
        }
        if !given {
            collect_error(
                loc,
                "empty status list".into(),
                Some("give at least one status".into()),
            );
        }
        Ok(StatusSpec(pats))
    }
}

/// What a capture reads from a response.
#[derive(Clone, Debug)]
pub enum CaptureSource {
    /// RFC 9535 JSONPath into the JSON body.
    Path(Box<serde_json_path::JsonPath>, String),
    /// `$status`
    Status,
    /// `$header.NAME`
    Header(String),
    /// `$cookie.NAME`: the value of one cookie the answer sets (extension).
    Cookie(String),
}

/// One `capture:` entry's source, with its location.
#[derive(Clone, Debug)]
pub struct CaptureSpec {
    pub source: CaptureSource,
    pub loc: Loc,
}

impl<'de> Deserialize<'de> for CaptureSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<String>::deserialize(d)?;
        let loc = Loc::of(&s);
        let source = parse_capture(&s.value).unwrap_or_else(|msg| {
            let hint = if s.value.starts_with('$') {
                "use RFC 9535 JSONPath such as `$.id` or `$.items[0].id`, `$status`, or `$header.Location`".to_string()
            } else {
                format!("a capture starts with `$`: did you mean `$.{}`?", s.value)
            };
            collect_error(
                loc,
                format!("`{}` is not a valid capture: {msg}", s.value),
                Some(hint),
            );
            CaptureSource::Status
        });
        Ok(CaptureSpec { source, loc })
    }
}

/// A value of the suite that has its own syntax and is wrong: the message of its
/// diagnostic (the location and the hint are added where it is found).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("`{0}` does not start with a whole number")]
    DurationNoNumber(String),
    #[error("`{0}` has no unit")]
    DurationNoUnit(String),
    #[error("`{0}` is not a unit")]
    DurationBadUnit(String),
    #[error("no header name")]
    CaptureNoHeader,
    #[error("no cookie name")]
    CaptureNoCookie,
    /// The JSONPath parser's own message.
    #[error("{0}")]
    CaptureJsonPath(String),
    #[error("expected a string, found {0}")]
    NotAString(String),
    #[error("`{0}`: placeholders are not allowed here")]
    Placeholder(String),
}

/// Parses a capture source: `$status`, `$header.NAME`, or a JSONPath.
pub fn parse_capture(s: &str) -> Result<CaptureSource, ValueError> {
    if s == "$status" {
        return Ok(CaptureSource::Status);
    }
    if let Some(c) = s.strip_prefix("$cookie.") {
        if c.is_empty() {
            return Err(ValueError::CaptureNoCookie);
        }
        return Ok(CaptureSource::Cookie(c.to_string()));
    }
    if let Some(h) = s.strip_prefix("$header.") {
        if h.is_empty() {
            return Err(ValueError::CaptureNoHeader);
        }
        return Ok(CaptureSource::Header(h.to_string()));
    }
    serde_json_path::JsonPath::parse(s)
        .map(|p| CaptureSource::Path(Box::new(p), s.to_string()))
        .map_err(|e| ValueError::CaptureJsonPath(e.to_string()))
}

/// A check, as written; exactly one of `read`, `list`, `write`, `request` is set
/// (checked by validation, which can point at the check).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Check {
    // The parts only some checks have are boxed: inline, every kind's request made a
    // check 2,176 bytes and a suite of 10,000 checks 22 MB (docs/performance.md).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    #[serde(default)]
    pub read: Option<Box<ReqOrUrl>>,
    #[serde(default)]
    pub list: Option<Box<ReqOrUrl>>,
    #[serde(default)]
    #[schemars(with = "Option<Box<Request>>")]
    pub write: Option<Box<Spanned<Request>>>,
    #[serde(default)]
    pub verify: Option<Box<ReqOrUrl>>,
    #[serde(default)]
    #[schemars(with = "Option<Box<Request>>")]
    pub request: Option<Box<Spanned<Request>>>,
    /// With `list`: the mass-assignment check (extension) — B creates in its own scope
    /// naming A's org in the body; A's list must not grow, B's must show the row.
    #[serde(default)]
    #[schemars(with = "Option<Request>")]
    pub create: Option<Box<Spanned<Request>>>,
    #[serde(default, rename = "as")]
    pub as_: Option<Identity>,
    #[serde(default)]
    pub expect: Option<Box<Expect>>,
    #[serde(default)]
    pub control: Option<Box<Control>>,
    #[serde(default)]
    pub markers: Vec<MarkerSpec>,
    #[serde(default)]
    pub attacks: Option<Box<Attacks>>,
    #[serde(default)]
    #[schemars(with = "Option<u16>")]
    pub not_found_status: Option<Box<Spanned<u16>>>,
}

/// `control:` of a `request` check: the same request (or another) as A, with its own
/// expectation; when it is not met the check is undecided.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Control {
    #[serde(default)]
    #[schemars(with = "Option<Request>")]
    pub request: Option<Spanned<Request>>,
    #[serde(default, rename = "as")]
    pub as_: Option<Identity>,
    pub expect: Expect,
}

/// A marker, or a value excluded from the markers.
#[derive(Debug)]
pub enum MarkerSpec {
    Include(Tpl),
    Exclude(Tpl),
}

impl<'de> Deserialize<'de> for MarkerSpec {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Strings go through `Tpl` (for its location and `${VAR}`); maps are exclusions.
        let s = Spanned::<JValue>::deserialize(d)?;
        let loc = Loc::of(&s);
        let bad = |what: String| {
            collect_error(
                loc,
                format!("a marker is a string or `{{ exclude: VALUE }}`, not {what}"),
                Some("write `markers: [\"text\", { exclude: \"text\" }]`".into()),
            );
            Ok(MarkerSpec::Include(Tpl::literal("")))
        };
        match s.value {
            JValue::Str(t) => Ok(MarkerSpec::Include(t)),
            JValue::Map(m) if m.0.len() == 1 && m.0[0].0.name == "exclude" => {
                match m.0.into_iter().next().map(|(_, v)| v) {
                    Some(JValue::Str(t)) => Ok(MarkerSpec::Exclude(t)),
                    Some(other) => bad(other.describe()),
                    None => bad("an empty mapping".into()),
                }
            }
            other => bad(other.describe()),
        }
    }
}

/// `attacks:` at suite or check level.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attacks {
    #[serde(default)]
    pub tenant_override: Option<Toggle<TenantOverride>>,
    #[serde(default)]
    pub token_forgery: Option<Toggle<TokenForgery>>,
    #[serde(default)]
    pub claim_integrity: Option<Toggle<NoOptions>>,
    #[serde(default)]
    pub existence_oracle: Option<Toggle<NoOptions>>,
    /// Extension: A's authenticated request right before each anonymous check, B's lists
    /// and the identity endpoint, over many rounds (a tenant setting left on a pooled
    /// connection). On by default; suite level only.
    #[serde(default)]
    pub pool_reuse: Option<Toggle<PoolReuse>>,
    /// Extension: with `orgs.member`, the member's request in B's scope must hold none
    /// of A's data (on every read and list that uses `{{own.NAME}}`).
    #[serde(default)]
    pub shared_member: Option<Toggle<NoOptions>>,
}

/// `attacks.pool_reuse:` options (extension).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolReuse {
    /// Rounds of (A's request, then every probe); default 20, enough to cycle a pool.
    #[serde(default)]
    pub rounds: Option<u32>,
}

/// An attack switched on/off (`false`) or configured (a mapping, which switches it on).
#[derive(Debug)]
pub enum Toggle<T> {
    Enabled(bool),
    Configured(T),
}

impl<T> Toggle<T> {
    pub fn enabled(&self) -> bool {
        !matches!(self, Toggle::Enabled(false))
    }
    pub fn options(&self) -> Option<&T> {
        match self {
            Toggle::Configured(t) => Some(t),
            Toggle::Enabled(_) => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Toggle<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("true, false, or a mapping of options")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Toggle<T>, E> {
                Ok(Toggle::Enabled(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Toggle<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Toggle::Configured)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Options of an attack that has none: only `{}` is accepted as a mapping.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoOptions {}

/// `attacks.tenant_override:` extra names to offer A's org id under.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantOverride {
    #[serde(default, deserialize_with = "header_names")]
    pub headers: Vec<String>,
    #[serde(default)]
    pub query: Vec<String>,
    #[serde(default)]
    pub body: Vec<String>,
}

/// A list of HTTP header names; a bad one is reported with its location.
fn header_names<'de, D: de::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let names = Vec::<Spanned<String>>::deserialize(d)?;
    for n in &names {
        let h = &n.value;
        if h.is_empty()
            || !h
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            collect_error(
                Loc::of(n),
                format!("`{h}` is not a valid header name"),
                Some("a header name is letters, digits, `-` and `_`, e.g. `X-Org-Id`".into()),
            );
        }
    }
    Ok(names.into_iter().map(|n| n.value).collect())
}

/// `attacks.token_forgery:` options (extension).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenForgery {
    /// The target's real signing key: enables the `expired` variant for provisioned
    /// tokens (minted suites use the mint key).
    #[serde(default)]
    pub sign_with: Option<SignKey>,
    /// The status a rejected token gets (extension); when absent a forged token is
    /// rejected when it is answered like a never-issued token.
    #[serde(default)]
    pub reject_status: Option<StatusSpec>,
    /// Each forgery kind on or off (extension; default on).
    #[serde(default)]
    pub alg_none: Option<bool>,
    #[serde(default)]
    pub tampered: Option<bool>,
    #[serde(default)]
    pub random_key: Option<bool>,
    #[serde(default)]
    pub expired: Option<bool>,
    #[serde(default)]
    pub no_exp: Option<bool>,
}

/// `database:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Database {
    pub url: Tpl,
    #[serde(default)]
    pub tenant_column: OneOrMany<String>,
    #[serde(default)]
    pub schemas: Vec<String>,
    #[serde(default)]
    pub tables: Vec<String>,
    #[serde(default)]
    pub exempt: Vec<String>,
    #[serde(default)]
    pub app_role: Option<Tpl>,
    #[serde(default)]
    pub tenant_setting: Option<String>,
    #[serde(default)]
    pub probe: Option<Probe>,
    /// A tenant identity model preset (extension): `supabase`.
    #[serde(default)]
    #[schemars(with = "Option<String>")]
    pub preset: Option<Spanned<String>>,
    /// Functions returning the caller's identity or claims (extension): `auth.uid`.
    #[serde(default)]
    pub identity_functions: Vec<String>,
    /// Settings carrying the caller's identity or claims (extension).
    #[serde(default)]
    pub identity_settings: Vec<String>,
    /// More application roles, each judged like `app_role` (extension).
    #[serde(default)]
    pub app_roles: Vec<String>,
    /// Schema-per-tenant mode (extension).
    #[serde(default)]
    pub tenant_schemas: Option<TenantSchemas>,
}

/// `database.tenant_schemas:` tenants as schemas.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSchemas {
    /// Schema names or patterns (`tenant_*`).
    pub schemas: Vec<String>,
    /// The role of each tenant schema, `{schema}` replaced (default `{schema}`).
    #[serde(default)]
    pub role: Option<String>,
    /// Shared schemas that are never tenants.
    #[serde(default)]
    pub shared: Vec<String>,
}

impl Database {
    /// The identity model this section declares, for the database layer.
    pub fn tenant_model(&self) -> crate::db::TenantModel {
        crate::db::TenantModel::of(
            self.preset.as_ref().map(|p| p.value.as_str()),
            &self.identity_functions,
            &self.identity_settings,
            &self.app_roles,
        )
    }
}

/// `database.probe:`
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub url: Tpl,
    /// Settings the probe sets as A and as B besides the tenant setting (extension):
    /// `app.user_id: { a: "{{a.user_id}}", b: "{{b.user_id}}" }`, rendered from the
    /// captures after setup.
    #[serde(default)]
    pub settings: Map<ProbeSettingSpec>,
    /// The roles the probe acts as through `SET ROLE` (extension); default: the app
    /// roles.
    #[serde(default)]
    pub roles: Vec<String>,
}

/// `database.probe.settings.NAME`: its value as A and as B.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProbeSettingSpec {
    pub a: Tpl,
    pub b: Tpl,
}

/// A duration such as `500ms`, `10s`, `2m`, `1h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dur(pub Duration);

/// Parses `500ms`, `10s`, `2m`, `1h` (a whole number and a unit). Returns the message
/// as a `String` because the command line's value parsers (outside the suite layer)
/// call it that way; [`Dur::parse`] is the typed form.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    Dur::parse(s).map_err(|e| e.to_string())
}

impl Dur {
    /// Parses `500ms`, `10s`, `2m`, `1h` (a whole number and a unit).
    pub fn parse(s: &str) -> Result<Duration, ValueError> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| ValueError::DurationNoNumber(s.to_string()))?;
        let d = match unit.trim() {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.saturating_mul(60)),
            "h" => Duration::from_secs(n.saturating_mul(3600)),
            "" => return Err(ValueError::DurationNoUnit(s.to_string())),
            u => return Err(ValueError::DurationBadUnit(u.to_string())),
        };
        Ok(d)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<JValue>::deserialize(d)?;
        let loc = Loc::of(&s);
        let text = match &s.value {
            JValue::Str(t) => t.as_literal().unwrap_or_default(),
            other => other.describe(),
        };
        match Dur::parse(&text) {
            Ok(d) => Ok(Dur(d)),
            Err(msg) => {
                collect_error(
                    loc,
                    format!("invalid duration: {msg}"),
                    Some("write a whole number and a unit: `500ms`, `10s`, `2m`, `1h`".into()),
                );
                Ok(Dur::default())
            }
        }
    }
}

/// One value or a list of them.
#[derive(Debug, Clone)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        OneOrMany(Vec::new())
    }
}

/// A type a scalar of the suite can be converted into (for [`OneOrMany`]).
pub trait FromScalar: Sized {
    fn from_scalar(v: JValue) -> Result<Self, ValueError>;
}

impl FromScalar for Tpl {
    fn from_scalar(v: JValue) -> Result<Self, ValueError> {
        match v {
            JValue::Str(t) => Ok(t),
            JValue::Int(n) => Ok(Tpl::literal(n.to_string())),
            other => Err(ValueError::NotAString(other.describe())),
        }
    }
}

impl FromScalar for String {
    fn from_scalar(v: JValue) -> Result<Self, ValueError> {
        match v {
            JValue::Str(t) => t
                .as_literal()
                .ok_or_else(|| ValueError::Placeholder(t.to_string())),
            other => Err(ValueError::NotAString(other.describe())),
        }
    }
}

impl<'de, T: FromScalar> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<JValue>::deserialize(d)?;
        let loc = Loc::of(&s);
        let items = match s.value {
            JValue::Seq(v) => v,
            v => vec![v],
        };
        let mut out = Vec::new();
        for it in items {
            match T::from_scalar(it) {
                Ok(x) => out.push(x),
                Err(e) => {
                    let hint = if matches!(e, ValueError::Placeholder(_)) {
                        "this value is read before any request; use `${ENV_VAR}` instead"
                    } else {
                        "write a string, or a list of strings such as `[\"a\", \"b\"]`"
                    };
                    collect_error(loc, e.to_string(), Some(hint.into()))
                }
            }
        }
        Ok(OneOrMany(out))
    }
}

/// A mapping key with its location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Key {
    pub name: String,
    pub loc: Loc,
}

/// A mapping that keeps its order and the location of every key.
#[derive(Debug, Clone)]
pub struct Map<V>(pub Vec<(Key, V)>);

impl<V> Default for Map<V> {
    fn default() -> Self {
        Map(Vec::new())
    }
}

impl<V> Map<V> {
    pub fn get(&self, name: &str) -> Option<&V> {
        self.0.iter().find(|(k, _)| k.name == name).map(|(_, v)| v)
    }
    pub fn iter(&self) -> impl Iterator<Item = (&Key, &V)> {
        self.0.iter().map(|(k, v)| (k, v))
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Map<V> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for Vis<V> {
            type Value = Map<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Map<V>, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let loc = Loc::of(&k);
                    let v = map.next_value::<V>()?;
                    out.push((Key { name: k.value, loc }, v));
                }
                Ok(Map(out))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

/// A JSON-like value from the suite (a request body, an expected value, a claim) whose
/// strings are templates.
#[derive(Debug, Clone)]
pub enum JValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Tpl),
    Seq(Vec<JValue>),
    Map(Map<JValue>),
}

impl JValue {
    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            JValue::Null => "null".into(),
            JValue::Bool(b) => b.to_string(),
            JValue::Int(n) => n.to_string(),
            JValue::Float(f) => f.to_string(),
            JValue::Str(t) => t.to_string(),
            JValue::Seq(_) => "a list".into(),
            JValue::Map(_) => "a mapping".into(),
        }
    }

    /// Every template inside.
    pub fn templates(&self) -> Vec<&Tpl> {
        let mut out = Vec::new();
        fn walk<'a>(v: &'a JValue, out: &mut Vec<&'a Tpl>) {
            match v {
                JValue::Str(t) => out.push(t),
                JValue::Seq(s) => s.iter().for_each(|v| walk(v, out)),
                JValue::Map(m) => m.0.iter().for_each(|(_, v)| walk(v, out)),
                _ => {}
            }
        }
        walk(self, &mut out);
        out
    }

    /// Renders to JSON, filling placeholders.
    pub fn render(
        &self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        Ok(match self {
            JValue::Null => J::Null,
            JValue::Bool(b) => J::Bool(*b),
            JValue::Int(n) => J::from(*n),
            JValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
            JValue::Str(t) => J::String(t.render(lookup)?),
            JValue::Seq(s) => J::Array(
                s.iter()
                    .map(|v| v.render(lookup))
                    .collect::<Result<_, _>>()?,
            ),
            JValue::Map(m) => {
                let mut o = serde_json::Map::new();
                for (k, v) in &m.0 {
                    o.insert(k.name.clone(), v.render(lookup)?);
                }
                J::Object(o)
            }
        })
    }
}

impl JValue {
    /// Renders to JSON with typed placeholders: a string that is exactly one
    /// placeholder (`"{{a.client_id}}"`) becomes the value `lookup` gives, with its JSON
    /// type (a captured number stays a number, a boolean a boolean, an object an
    /// object); a placeholder inside other text is replaced by the value's text (a
    /// string as it is, anything else as its JSON). `lookup` returns a plain text value
    /// (a var, `run_id`, a header capture) as a JSON string.
    pub fn render_typed(
        &self,
        lookup: &dyn Fn(&str) -> Option<serde_json::Value>,
    ) -> Result<serde_json::Value, RenderError> {
        use serde_json::Value as J;
        Ok(match self {
            JValue::Str(t) => match t.parts.as_slice() {
                [Part::Var(v)] => lookup(v).ok_or_else(|| RenderError::NoValue(v.clone()))?,
                _ => J::String(t.try_render(&|n| lookup(n).map(|v| json_text(&v)))?),
            },
            JValue::Seq(s) => J::Array(
                s.iter()
                    .map(|v| v.render_typed(lookup))
                    .collect::<Result<_, _>>()?,
            ),
            JValue::Map(m) => {
                let mut o = serde_json::Map::new();
                for (k, v) in &m.0 {
                    o.insert(k.name.clone(), v.render_typed(lookup)?);
                }
                J::Object(o)
            }
            JValue::Null => J::Null,
            JValue::Bool(b) => J::Bool(*b),
            JValue::Int(n) => J::from(*n),
            JValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(J::Number)
                .unwrap_or(J::Null),
        })
    }
}

/// The text a JSON value stands for inside a longer string: a string as it is, anything
/// else as its JSON.
pub fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl<'de> Deserialize<'de> for JValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        enum Raw {
            V(JValue),
            S(String),
        }
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Raw;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_unit<E>(self) -> Result<Raw, E> {
                Ok(Raw::V(JValue::Null))
            }
            fn visit_none<E>(self) -> Result<Raw, E> {
                Ok(Raw::V(JValue::Null))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Raw, E> {
                Ok(Raw::V(JValue::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Raw, E> {
                Ok(Raw::V(JValue::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
                Ok(Raw::V(
                    i64::try_from(v)
                        .map(JValue::Int)
                        .unwrap_or(JValue::Float(v as f64)),
                ))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Raw, E> {
                Ok(Raw::V(JValue::Float(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Raw, E> {
                Ok(Raw::S(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Raw, E> {
                Ok(Raw::S(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = seq.next_element::<JValue>()? {
                    v.push(x);
                }
                Ok(Raw::V(JValue::Seq(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw, A::Error> {
                let mut out = Vec::new();
                while let Some(k) = map.next_key::<Spanned<String>>()? {
                    let loc = Loc::of(&k);
                    let v = map.next_value::<JValue>()?;
                    out.push((Key { name: k.value, loc }, v));
                }
                Ok(Raw::V(JValue::Map(Map(out))))
            }
        }
        impl<'de> Deserialize<'de> for Raw {
            fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(Vis)
            }
        }
        let s = Spanned::<Raw>::deserialize(d)?;
        let loc = Loc::of(&s);
        Ok(match s.value {
            Raw::V(v) => v,
            Raw::S(raw) => {
                let (tpl, errors) = Tpl::parse(&raw, loc);
                for e in errors {
                    collect_error(e.loc, e.message, e.hint);
                }
                JValue::Str(tpl)
            }
        })
    }
}
