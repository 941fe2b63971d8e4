//! OpenAPI 3 documents (parse stage, beside the suite): a small model of the operations
//! (method, path template, whether tenant-scoped), read with the suite's own YAML
//! parser; the coverage gate (plan → run: every tenant-scoped operation no check covers
//! is an `error` result, so the run can never exit 0 while one is uncovered unless the
//! suite exempts it with a reason); and the starter suite of `tenantgate init --openapi`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::outcome::{CheckResult, Layer, Verdict};
use crate::suite::model::Suite;
use crate::suite::template::{Part, Tpl};

/// Why an OpenAPI document could not be used.
#[derive(Debug, thiserror::Error)]
pub enum OpenApiError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not YAML or JSON: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: not an OpenAPI 3 document: {what}")]
    NotOpenApi { path: PathBuf, what: String },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The HTTP methods an OpenAPI path item may hold, in document order of the spec.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation of the document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Upper case: `GET`, `PATCH`, ...
    pub method: String,
    /// The path template as written: `/brands/{id}`.
    pub path: String,
    /// `operationId`, if any.
    pub operation_id: Option<String>,
    /// `summary`, if any.
    pub summary: Option<String>,
    /// `x-tenant-scoped`; when absent, tenant-scoped unless the operation (or the
    /// document) has `security: []` (fail closed: unknown means it needs a check).
    pub tenant_scoped: bool,
    /// Whether it declares a request body.
    pub has_body: bool,
}

impl Operation {
    /// `GET /brands/{id}`: how exemptions name an operation.
    pub fn key(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

/// Reads an OpenAPI 3 document (YAML or JSON).
pub fn load(path: &Path) -> Result<Vec<Operation>, OpenApiError> {
    let text = std::fs::read_to_string(path).map_err(|source| OpenApiError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let doc: Value = serde_saphyr::from_str(&text).map_err(|e| OpenApiError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    operations(&doc).map_err(|what| OpenApiError::NotOpenApi {
        path: path.to_path_buf(),
        what,
    })
}

/// The operations of a parsed document, in document order.
pub fn operations(doc: &Value) -> Result<Vec<Operation>, String> {
    let version = doc.get("openapi").and_then(Value::as_str).unwrap_or("");
    if !version.starts_with("3.") {
        return Err(format!(
            "`openapi: 3.x` expected, found {}",
            if version.is_empty() { "none" } else { version }
        ));
    }
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or("no `paths` object")?;
    let global_public = is_public(doc);
    let mut ops = Vec::new();
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            return Err(format!("path `{path}` is not an object"));
        };
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let flag = op.get("x-tenant-scoped").and_then(Value::as_bool);
            let public = op.get("security").map_or(global_public, |_| is_public(op));
            ops.push(Operation {
                method: m.to_ascii_uppercase(),
                path: path.clone(),
                operation_id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(String::from),
                summary: op.get("summary").and_then(Value::as_str).map(String::from),
                tenant_scoped: flag.unwrap_or(!public),
                has_body: op.get("requestBody").is_some(),
            });
        }
    }
    Ok(ops)
}

/// `security: []`: no credential needed.
fn is_public(v: &Value) -> bool {
    v.get("security")
        .and_then(Value::as_array)
        .is_some_and(|a| a.is_empty())
}

/// A URL of the suite as path segments: placeholders become `None` (they match any
/// parameter); scheme, host and query are dropped.
fn url_segments(t: &Tpl) -> Vec<Option<String>> {
    let mut s = String::new();
    for p in &t.parts {
        match p {
            Part::Lit(l) => s.push_str(l),
            // A character no literal path holds stands for the placeholder.
            Part::Var(_) => s.push('\u{0}'),
        }
    }
    let s = match s.find("://") {
        Some(i) => {
            let rest = &s[i + 3..];
            rest.find('/').map_or("", |j| &rest[j..]).to_string()
        }
        None => s,
    };
    let s = s.split(['?', '#']).next().unwrap_or("");
    s.trim_matches('/')
        .split('/')
        .map(|seg| (!seg.contains('\u{0}')).then(|| seg.to_string()))
        .collect()
}

/// Whether a suite URL (as segments) is the operation's path template.
fn matches(template: &str, url: &[Option<String>]) -> bool {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    t.len() == url.len()
        && t.iter().zip(url).all(|(t, u)| match u {
            None => true,
            Some(u) => (t.starts_with('{') && t.ends_with('}') && !u.is_empty()) || t == u,
        })
}

/// What the suite sends as org B: (method, URL, the check's name).
fn checked_requests(suite: &Suite) -> Vec<(String, &Tpl, String)> {
    let mut v = Vec::new();
    for c in &suite.checks {
        let name = c.name.value.clone();
        if let Some(r) = &c.read {
            v.push((
                r.request.method.0.to_ascii_uppercase(),
                &r.request.url,
                name.clone(),
            ));
        }
        if let Some(r) = &c.list {
            v.push((
                r.request.method.0.to_ascii_uppercase(),
                &r.request.url,
                name.clone(),
            ));
        }
        if let Some(w) = &c.write {
            v.push((
                w.value.method.0.to_ascii_uppercase(),
                &w.value.url,
                name.clone(),
            ));
        }
        if let Some(r) = &c.request {
            v.push((
                r.value.method.0.to_ascii_uppercase(),
                &r.value.url,
                name.clone(),
            ));
        }
    }
    if let Some(id) = suite.orgs.as_ref().and_then(|o| o.identity.as_ref()) {
        v.push((
            id.request.method.0.to_ascii_uppercase(),
            &id.request.url,
            "identity".to_string(),
        ));
    }
    v
}

/// An exemption: an operation and why no check covers it.
#[derive(Clone, Debug)]
pub struct Exempt {
    /// `METHOD /path/template`.
    pub operation: String,
    /// Why: required, non-empty.
    pub reason: String,
}

/// The coverage gate's results: per tenant-scoped operation, `pass` (covered, naming
/// the check), `skip` (exempt, with the reason) or `error` (no check and no
/// exemption); an exemption naming no operation, or with an empty reason, is an
/// `error` too. Ids: `openapi/METHOD /path`.
pub fn coverage(ops: &[Operation], suite: &Suite, exempt: &[Exempt]) -> Vec<CheckResult> {
    let requests: Vec<(String, Vec<Option<String>>, String)> = checked_requests(suite)
        .into_iter()
        .map(|(m, u, n)| (m, url_segments(u), n))
        .collect();
    let mut out = Vec::new();
    let result = |key: &str, v: Verdict, summary: String| {
        CheckResult::new(
            format!("openapi/{key}"),
            key,
            "openapi_coverage",
            Layer::Setup,
            v,
            summary,
        )
    };
    for op in ops.iter().filter(|o| o.tenant_scoped) {
        let key = op.key();
        let by: Vec<&str> = requests
            .iter()
            .filter(|(m, u, _)| *m == op.method && matches(&op.path, u))
            .map(|(_, _, n)| n.as_str())
            .collect();
        let ex = exempt.iter().find(|e| same_operation(&e.operation, &key));
        let r = if let Some(first) = by.first() {
            result(&key, Verdict::Pass, format!("covered by `{first}`"))
        } else if let Some(e) = ex.filter(|e| !e.reason.trim().is_empty()) {
            result(&key, Verdict::Skip, format!("exempt: {}", e.reason.trim()))
        } else {
            result(
                &key,
                Verdict::Error,
                "tenant-scoped operation covered by no check: add a check, or exempt it under `openapi.exempt` with a reason".into(),
            )
            .with("fix", format!("openapi:\n  exempt:\n    - {{ operation: \"{key}\", reason: \"...\" }}"))
        };
        out.push(r);
    }
    for e in exempt {
        if !ops.iter().any(|o| same_operation(&e.operation, &o.key())) {
            out.push(result(
                &e.operation,
                Verdict::Error,
                "exempt operation is not in the OpenAPI document (write it as `METHOD /path/{param}`)".into(),
            ));
        } else if e.reason.trim().is_empty() {
            out.push(result(
                &format!("{}/reason", e.operation),
                Verdict::Error,
                "an exemption needs a reason".into(),
            ));
        }
    }
    out
}

fn same_operation(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        let (m, p) = s.trim().split_once(' ').unwrap_or((s, ""));
        format!("{} {}", m.to_ascii_uppercase(), p.trim())
    };
    norm(a) == norm(b)
}

/// The name a seed step's id capture gets for a collection path: `/monitoring/mentions`
/// → `mentions_id`.
fn capture_name(collection: &str) -> String {
    let last = collection
        .trim_matches('/')
        .rsplit('/')
        .find(|s| !s.starts_with('{'))
        .unwrap_or("item");
    let s: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{}_id", s.trim_matches('_'))
}

/// A path template with its parameters replaced by A's captures, or `None` when a
/// parameter has no capture a person has not yet to decide.
fn fill(path: &str, seeds: &[(String, String)]) -> Option<String> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let mut out = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        let Some(param) = s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
            out.push(s.to_string());
            continue;
        };
        let parent = format!("/{}", segs[..i].join("/"));
        // `{brand_id}` names its capture; `/brands/{id}` is the collection's.
        let by_name = seeds.iter().find(|(_, c)| {
            param.len() > 3
                && (c == param
                    || c.trim_end_matches("_id").trim_end_matches('s')
                        == param.trim_end_matches("_id"))
        });
        let by_parent = seeds.iter().find(|(p, _)| *p == parent);
        let (_, cap) = by_name.or(by_parent)?;
        out.push(format!("{{{{a.{cap}}}}}"));
    }
    Some(format!("/{}", out.join("/")))
}

/// YAML double-quoted (a JSON string).
fn q(s: &str) -> String {
    Value::from(s).to_string()
}

/// A starter suite for the operations of `ops` (see `tenantgate init --openapi`):
/// provision from a public sign-up operation (or a TODO), seed steps from the
/// tenant-scoped creates, read checks for item GETs, list checks for collection GETs,
/// write checks for PATCH/PUT/DELETE, and `# TODO` where a person must decide. `spec`
/// is the document's path as the suite should name it (relative to the suite file).
pub fn starter_suite(title: &str, ops: &[Operation], spec: &str) -> String {
    let mut y = String::new();
    y.push_str(&format!(
        "# A starter suite generated by `tenantgate init --openapi` from {spec}.\n\
         # Every `# TODO` needs a person: bodies, captures, and the operations left out.\n\
         # Check it with `tenantgate validate --no-env` and run it against staging.\n\
         version: 1\nname: {}\nenv: [TARGET_URL, SEED_PASSWORD]\n\ntarget:\n  base_url: ${{TARGET_URL}}\n\n",
        q(&format!("{title} isolation"))
    ));
    let signup = ops.iter().find(|o| {
        o.method == "POST"
            && !o.tenant_scoped
            && ["signup", "sign-up", "register", "orgs", "organizations"]
                .iter()
                .any(|w| o.path.to_ascii_lowercase().contains(w))
    });
    let signup_path = signup.map_or("/TODO/signup", |o| o.path.as_str());
    y.push_str(&format!(
        "orgs:\n  provision:\n    # TODO: the body your sign-up takes, and where the token and org id are in its answer.\n    - name: sign up\n      request:\n        method: POST\n        url: {}\n        json: {{ org_name: \"tg-{{{{run_id}}}}-{{{{org}}}}\", email: \"{{{{org}}}}-{{{{run_id}}}}@example.test\", password: \"${{SEED_PASSWORD:-change-me-{{{{run_id}}}}}}\" }}\n      capture: {{ token: $.access_token, org_id: $.org.id }}\n  auth: {{ header: Authorization, value: \"Bearer {{{{token}}}}\" }}\n  # TODO: a teardown step deleting each org, so nothing is left on the target.\n\n",
        q(signup_path)
    ));
    let scoped: Vec<&Operation> = ops.iter().filter(|o| o.tenant_scoped).collect();
    let mut seeds: Vec<(String, String)> = Vec::new();
    let mut seed_text = String::new();
    for o in scoped
        .iter()
        .filter(|o| o.method == "POST" && !o.path.contains('{'))
    {
        let cap = capture_name(&o.path);
        seed_text.push_str(&format!(
            "  - name: {}\n    # TODO: a body that creates it, holding a value unique to the run (a marker).\n    request: {{ method: POST, url: {}, json: {{ name: \"tg {{{{run_id}}}}\" }} }}\n    capture: {{ {cap}: $.id }}\n",
            q(&format!("{} (POST {})", o.operation_id.as_deref().unwrap_or("create"), o.path)),
            q(&o.path)
        ));
        seeds.push((o.path.clone(), cap));
    }
    if seed_text.is_empty() {
        y.push_str("# TODO: seed steps creating A's data.\nseed: []\n\n");
    } else {
        y.push_str("seed:\n");
        y.push_str(&seed_text);
        y.push('\n');
    }
    let mut checks = String::new();
    let mut todo: Vec<String> = Vec::new();
    for o in &scoped {
        let name = |verb: &str| {
            q(&format!(
                "{verb} {} ({} {})",
                o.operation_id.as_deref().unwrap_or("operation"),
                o.method,
                o.path
            ))
        };
        let filled = fill(&o.path, &seeds);
        let has_get = scoped.iter().any(|g| g.method == "GET" && g.path == o.path);
        match (o.method.as_str(), filled) {
            ("GET", Some(url)) if o.path.contains('{') => {
                checks.push_str(&format!(
                    "  - name: {}\n    read: {}\n",
                    name("B cannot read A's"),
                    q(&url)
                ));
            }
            ("GET", Some(url)) => {
                checks.push_str(&format!(
                    "  - name: {}\n    list: {}\n",
                    name("B's list holds none of A's"),
                    q(&url)
                ));
            }
            ("PATCH" | "PUT" | "DELETE", Some(url)) if has_get && o.path.contains('{') => {
                let body = if o.method == "DELETE" {
                    String::new()
                } else {
                    ", json: { name: \"changed by B\" }".to_string()
                };
                checks.push_str(&format!(
                    "  - name: {}\n    # TODO: {}\n    write: {{ method: {}, url: {}{body} }}\n    verify: {}\n",
                    name("B cannot change A's"),
                    if o.method == "DELETE" { "a delete that succeeds removes A's seed for later checks: keep it last" } else { "a body B would send" },
                    o.method,
                    q(&url),
                    q(&url)
                ));
            }
            ("POST", _) if !o.path.contains('{') => {
                todo.push(format!(
                    "{} (a create: run as A by the seed; exempt it with a reason or write a check)",
                    o.key()
                ));
            }
            _ => todo.push(format!(
                "{} (no capture for its parameters, or no GET to verify with)",
                o.key()
            )),
        }
    }
    y.push_str("checks:\n");
    y.push_str(if checks.is_empty() { "  []\n" } else { &checks });
    y.push_str(&format!(
        "\n# The coverage gate: each tenant-scoped operation needs a check or an exemption.\nopenapi:\n  spec: {}\n",
        q(spec)
    ));
    if todo.is_empty() {
        y.push_str("  exempt: []\n");
    } else {
        y.push_str(
            "  # TODO: cover or exempt (with a reason) each of these; until then a run exits 2:\n",
        );
        for t in &todo {
            y.push_str(&format!("  #   {t}\n"));
        }
        y.push_str("  exempt: []\n");
    }
    y
}

/// The `init --openapi` command: writes the starter suite to `output` (or stdout).
pub fn init(spec: &Path, output: Option<&Path>) -> Result<(), OpenApiError> {
    let ops = load(spec)?;
    let text = std::fs::read_to_string(spec).unwrap_or_default();
    let doc: Value = serde_saphyr::from_str(&text).unwrap_or(Value::Null);
    let title = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("my-api");
    let named = output.map_or_else(|| spec.display().to_string(), |o| relative(spec, o));
    let suite = starter_suite(title, &ops, &named);
    match output {
        Some(o) => std::fs::write(o, suite).map_err(|source| OpenApiError::Write {
            path: o.to_path_buf(),
            source,
        }),
        None => {
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(suite.as_bytes());
            Ok(())
        }
    }
}

/// `spec` as seen from the directory of `suite` (both made absolute first).
fn relative(spec: &Path, suite: &Path) -> String {
    let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let spec = abs(spec);
    let dir = abs(suite)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let (s, d): (Vec<_>, Vec<_>) = (spec.components().collect(), dir.components().collect());
    let common = s.iter().zip(&d).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..d.len() {
        out.push("..");
    }
    for c in &s[common..] {
        out.push(c);
    }
    out.display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops() -> Vec<Operation> {
        let doc: Value = serde_saphyr::from_str(
            r#"
openapi: 3.0.3
security: [{ bearer: [] }]
paths:
  /health: { get: { security: [] } }
  /brands: { get: {}, post: { requestBody: {} } }
  /brands/{id}: { get: { x-tenant-scoped: true }, patch: {}, delete: {} }
  /public: { get: { x-tenant-scoped: false } }
"#,
        )
        .unwrap();
        operations(&doc).unwrap()
    }

    #[test]
    fn operations_and_their_scope_are_read() {
        let o = ops();
        let keys: Vec<(String, bool)> = o.iter().map(|o| (o.key(), o.tenant_scoped)).collect();
        assert_eq!(keys[0], ("GET /health".into(), false));
        assert_eq!(keys[1], ("GET /brands".into(), true));
        assert!(o[2].has_body);
        assert_eq!(keys.last().unwrap(), &("GET /public".into(), false));
        let bad: Value = serde_saphyr::from_str("swagger: '2.0'\npaths: {}\n").unwrap();
        assert!(operations(&bad).unwrap_err().contains("openapi: 3.x"));
    }

    #[test]
    fn urls_match_path_templates() {
        let (t, _) = Tpl::parse("/brands/{{a.brand_id}}?x=1", Default::default());
        let u = url_segments(&t);
        assert!(matches("/brands/{id}", &u));
        assert!(!matches("/brands", &u));
        assert!(!matches("/brands/{id}/config", &u));
        let (t, _) = Tpl::parse("https://h.example/brands/7", Default::default());
        assert!(matches("/brands/{id}", &url_segments(&t)));
        let (t, _) = Tpl::parse("/brands/mine", Default::default());
        assert!(!matches("/brands/{id}/x", &url_segments(&t)));
        assert!(matches("/brands/mine", &url_segments(&t)));
    }
}
