//! The runner against a small server with number ids (issue 8/9/11): a JSON body sends a
//! captured number as a number, and no override variant is judged against a base
//! request that never decided.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::support::{Run, unique};

#[derive(Default)]
struct App {
    /// token → org id.
    tokens: Mutex<HashMap<String, u64>>,
    /// project id → owning org id.
    projects: Mutex<HashMap<u64, u64>>,
    next: Mutex<u64>,
}

impl App {
    fn id(&self) -> u64 {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        1000 + *n
    }
    fn org_of(&self, h: &HeaderMap) -> Option<u64> {
        let t = h
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        self.tokens.lock().unwrap().get(t).copied()
    }
}

type S = State<Arc<App>>;

async fn signup(State(app): S) -> (StatusCode, Json<Value>) {
    let org = app.id();
    let token = format!("tok{}", crate::support::unique("t"));
    app.tokens.lock().unwrap().insert(token.clone(), org);
    (
        StatusCode::CREATED,
        Json(json!({"token": token, "org_id": org})),
    )
}

/// Refuses an `org_id` that is not a JSON number (a strict, typed API).
async fn create(State(app): S, h: HeaderMap, Json(b): Json<Value>) -> (StatusCode, Json<Value>) {
    let Some(org) = app.org_of(&h) else {
        return (StatusCode::UNAUTHORIZED, Json(json!({"error": "no"})));
    };
    if b["org_id"].as_u64() != Some(org) {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "org_id must be your org's id, as a number"})),
        );
    }
    let id = app.id();
    app.projects.lock().unwrap().insert(id, org);
    (
        StatusCode::CREATED,
        Json(json!({"id": id, "name": b["name"]})),
    )
}

/// The owner reads its project; anyone else gets a 500 for a project that exists and a
/// "soft" 200 `{}` for one that does not: the base read can never be decided.
async fn read(State(app): S, h: HeaderMap, Path(id): Path<String>) -> (StatusCode, Json<Value>) {
    let org = app.org_of(&h);
    let owner = id
        .parse::<u64>()
        .ok()
        .and_then(|i| app.projects.lock().unwrap().get(&i).copied());
    match (org, owner) {
        (None, _) => (StatusCode::UNAUTHORIZED, Json(json!({"error": "no"}))),
        (Some(o), Some(w)) if o == w => (StatusCode::OK, Json(json!({"id": id}))),
        (Some(_), Some(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": "boom"})),
        ),
        (Some(_), None) => (StatusCode::OK, Json(json!({}))),
    }
}

fn serve(rt: &tokio::runtime::Runtime) -> String {
    let router = Router::new()
        .route("/signup", post(signup))
        .route("/projects", post(create))
        .route("/projects/{id}", get(read))
        .route(
            "/link",
            get(|| async { Json(json!({"url": "http://127.0.0.1:9/steal"})) }),
        )
        .with_state(Arc::new(App::default()));
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    rt.spawn(async move { axum::serve(l, router).await });
    url
}

const SUITE: &str = r#"
version: 1
name: typed
target: { base_url: "URL" }
orgs:
  provision:
    - request: { method: POST, url: /signup, json: { name: "{{org}}" } }
      expect: { status: 201 }
      capture: { token: $.token, org_id: $.org_id }
seed:
  - name: create project
    request: { method: POST, url: /projects, json: { org_id: "{{a.org_id}}", name: "Acme {{run_id}}" } }
    expect: { status: 201 }
    capture: { project_id: $.id }
attacks: { pool_reuse: false }
checks:
  - name: project is invisible to B
    read: "/projects/{{a.project_id}}"
"#;

fn run_against(url: &str) -> Run {
    run_suite_text(&SUITE.replace("URL", url), &[])
}

fn run_suite_text(text: &str, extra: &[&str]) -> Run {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let suite = dir.join(format!("{}.yaml", unique("typed")));
    std::fs::write(&suite, text).unwrap();
    let json = dir.join(format!("{}.json", unique("r")));
    let junit = dir.join(format!("{}.xml", unique("r")));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
    cmd.arg("run")
        .arg(&suite)
        .arg("--json")
        .arg(&json)
        .args(extra)
        .env("NO_COLOR", "1");
    Run::of(cmd, json, junit)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_captured_number_is_sent_as_a_number_in_a_json_body() {
    let rt = runtime();
    let r = run_against(&serve(&rt));
    let setup: Vec<String> = r
        .ids("error")
        .into_iter()
        .filter(|i| i.starts_with("setup/"))
        .collect();
    assert!(setup.is_empty(), "{setup:?}\n{}", r.explain());
}

#[test]
fn no_variant_is_judged_against_a_base_that_errored() {
    let rt = runtime();
    let r = run_against(&serve(&rt));
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.ids("fail").is_empty(),
        "{:?}\n{}",
        r.ids("fail"),
        r.explain()
    );
    let results = r.json.as_ref().unwrap()["results"]
        .as_array()
        .unwrap()
        .clone();
    let base = results
        .iter()
        .find(|x| x["id"] == "project-is-invisible-to-b")
        .unwrap_or_else(|| panic!("{}", r.explain()));
    assert_eq!(base["verdict"], "error", "{base}");
    let overrides: Vec<&Value> = results
        .iter()
        .filter(|x| {
            x["id"]
                .as_str()
                .is_some_and(|i| i.starts_with("project-is-invisible-to-b/tenant_override:"))
        })
        .collect();
    assert!(!overrides.is_empty(), "{}", r.explain());
    for o in overrides {
        assert_eq!(o["verdict"], "error", "{o}");
        let s = o["summary"].as_str().unwrap();
        assert!(s.contains("not judged"), "{s}");
        assert!(!s.contains("changed B's answer"), "{s}");
    }
}

/// A URL built from a capture is checked when it is sent: another origin is refused
/// (an `error` naming it), unless `--allow-origin` allows it; every report says which
/// origins were allowed and which environment variables were read.
#[test]
fn a_url_from_a_capture_goes_only_to_an_allowed_origin() {
    let rt = runtime();
    let text = SUITE.replace("URL", &serve(&rt)).replace(
        "    capture: { project_id: $.id }\n",
        "    capture: { project_id: $.id }\n  - name: follow the link\n    request: { url: /link }\n    capture: { next: $.url }\n  - name: go there\n    request: { url: \"{{a.next}}\" }\n",
    );
    let seed_error = |r: &Run| {
        r.json.as_ref().unwrap()["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == "setup/seed")
            .unwrap_or_else(|| panic!("{}", r.explain()))["summary"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let r = run_suite_text(&text, &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let s = seed_error(&r);
    assert!(s.contains("refused to send to http://127.0.0.1:9"), "{s}");
    let j = r.json.as_ref().unwrap();
    assert_eq!(j["allowed_origins"].as_array().unwrap().len(), 1, "{j}");
    assert!(j["env_read"].is_array(), "{j}");
    assert!(
        r.stdout.contains("requests allowed to: http://127.0.0.1:"),
        "{}",
        r.stdout
    );

    let r = run_suite_text(&text, &["--allow-origin", "http://127.0.0.1:9"]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let s = seed_error(&r);
    assert!(!s.contains("refused to send"), "allowed, so sent: {s}");
    let origins = r.json.as_ref().unwrap()["allowed_origins"].to_string();
    assert!(origins.contains("http://127.0.0.1:9\""), "{origins}");
}
