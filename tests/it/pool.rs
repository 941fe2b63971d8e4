//! The pool-reuse attack (issue 8) against a small server that mimics the lab pattern:
//! a tenant setting made with session scope (`set_config(..., false)`) on pooled
//! connections handed out last-in first-out, read by an endpoint that sets no tenant.
//! The same server without the leak (a transaction-scoped setting) must pass.

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::support::{Run, unique};

#[derive(Default)]
struct App {
    /// The pool: each connection's tenant setting; `pop` takes the last one returned.
    pool: Mutex<Vec<Option<String>>>,
    tokens: Mutex<HashMap<String, String>>,
    items: Mutex<Vec<(String, String, String)>>,
    /// Session-scoped settings survive the request on the connection.
    leak: bool,
}

fn hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl App {
    /// Runs `f` on a pooled connection's setting, as `org` when authenticated.
    fn on_conn<T>(&self, org: Option<&str>, f: impl FnOnce(Option<&str>) -> T) -> T {
        let mut conn = self.pool.lock().unwrap().pop().unwrap_or(None);
        if let Some(o) = org {
            conn = Some(o.to_string());
        }
        let out = f(conn.as_deref());
        if !self.leak && org.is_some() {
            conn = None; // transaction-scoped: gone at commit
        }
        self.pool.lock().unwrap().push(conn);
        out
    }

    fn org_of(&self, h: &HeaderMap) -> Option<String> {
        let t = h
            .get("authorization")?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        self.tokens.lock().unwrap().get(t).cloned()
    }

    fn items_of(&self, org: Option<&str>) -> Vec<Value> {
        self.items
            .lock()
            .unwrap()
            .iter()
            .filter(|(o, _, _)| Some(o.as_str()) == org)
            .map(|(_, id, name)| json!({"id": id, "name": name}))
            .collect()
    }
}

type S = State<Arc<App>>;

async fn signup(State(app): S) -> (StatusCode, Json<Value>) {
    let (org, token) = (hex(8), format!("tok{}", hex(12)));
    app.tokens
        .lock()
        .unwrap()
        .insert(token.clone(), org.clone());
    (
        StatusCode::CREATED,
        Json(json!({"token": token, "org_id": org})),
    )
}

async fn create(State(app): S, h: HeaderMap, Json(b): Json<Value>) -> (StatusCode, Json<Value>) {
    let Some(org) = app.org_of(&h) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthenticated"})),
        );
    };
    let name = b["name"].as_str().unwrap_or("").to_string();
    let id = hex(8);
    app.on_conn(Some(&org), |_| {
        app.items
            .lock()
            .unwrap()
            .push((org.clone(), id.clone(), name.clone()))
    });
    (StatusCode::CREATED, Json(json!({"id": id, "name": name})))
}

async fn list(State(app): S, h: HeaderMap) -> (StatusCode, Json<Value>) {
    let Some(org) = app.org_of(&h) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthenticated"})),
        );
    };
    let items = app.on_conn(Some(&org), |setting| app.items_of(setting));
    (StatusCode::OK, Json(json!({ "items": items })))
}

async fn me(State(app): S, h: HeaderMap) -> (StatusCode, Json<Value>) {
    match app.org_of(&h) {
        Some(org) => (StatusCode::OK, Json(json!({ "org_id": org }))),
        None => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "unauthenticated"})),
        ),
    }
}

/// Sets no tenant: reads whatever the connection it gets still holds.
async fn public_summary(State(app): S) -> Json<Value> {
    let items = app.on_conn(None, |setting| app.items_of(setting));
    Json(json!({ "items": items }))
}

fn serve(rt: &tokio::runtime::Runtime, leak: bool) -> String {
    let app = Arc::new(App {
        leak,
        ..App::default()
    });
    let router = Router::new()
        .route("/signup", post(signup))
        .route("/items", post(create).get(list))
        .route("/me", get(me))
        .route("/public/summary", get(public_summary))
        .with_state(app);
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    rt.spawn(async move { axum::serve(l, router).await });
    url
}

const SUITE: &str = r#"
version: 1
name: pool
target: { base_url: "URL" }
orgs:
  provision:
    - request: { method: POST, url: /signup, json: { org: "{{org}}" } }
      expect: { status: 201 }
      capture: { token: $.token, org_id: $.org_id }
  identity: /me
seed:
  - request: { method: POST, url: /items, json: { name: "Acme {{run_id}}" } }
    expect: { status: 201 }
    capture: { item_id: $.id, item_name: $.name }
checks:
  - name: items list holds none of A's rows
    list: /items
  - name: the public summary answers anyone
    request: { url: /public/summary }
    as: anon
    expect: { status: 200 }
"#;

fn run(dir: &std::path::Path, url: &str, extra: &str) -> Run {
    let suite = dir.join(format!("{}.yaml", unique("pool")));
    std::fs::write(&suite, format!("{}{extra}", SUITE.replace("URL", url))).unwrap();
    let json = dir.join(format!("{}.json", unique("r")));
    let junit = dir.join(format!("{}.xml", unique("r")));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
    cmd.arg("run")
        .arg(&suite)
        .arg("--json")
        .arg(&json)
        .env("NO_COLOR", "1");
    Run::of(cmd, json, junit)
}

#[test]
fn a_tenant_left_on_a_pooled_connection_is_caught_every_time() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let leaky = serve(&rt, true);
    for i in 0..5 {
        let r = run(dir.path(), &leaky, "");
        assert_eq!(r.code, 1, "run {i}: {}", r.explain());
        assert_eq!(
            r.ids("fail"),
            vec!["pool-reuse"],
            "run {i}: {}",
            r.explain()
        );
    }
    // The attack switches off, and then the leak goes unseen: the switch is honoured.
    let r = run(dir.path(), &leaky, "attacks: { pool_reuse: false }\n");
    assert!(
        r.ids("pass").iter().all(|i| i != "pool-reuse"),
        "{}",
        r.explain()
    );
    assert!(!r.ids("fail").iter().any(|i| i == "pool-reuse"));
    // A transaction-scoped setting leaves nothing behind: the same suite passes.
    let clean = serve(&rt, false);
    for i in 0..3 {
        let r = run(
            dir.path(),
            &clean,
            "attacks: { pool_reuse: { rounds: 30 } }\n",
        );
        assert_eq!(r.code, 0, "run {i}: {}", r.explain());
        assert!(
            r.ids("pass").iter().any(|p| p == "pool-reuse"),
            "{}",
            r.explain()
        );
    }
}
