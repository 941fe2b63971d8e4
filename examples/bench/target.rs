//! The benchmark's target: a minimal in-memory multi-tenant API (no database, no JWT),
//! so that a run measures tenantgate's own cost. It is correct: another org's id is
//! answered exactly like a never-issued one (404, same body), lists hold only the
//! caller's rows, and writes to another org's rows change nothing. Every request is
//! counted here, at the target.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tenantgate_reference_api::pg::random_hex;

/// One item row: its org and its name.
struct Item {
    org: String,
    name: String,
}

/// The in-memory store and the request counter.
#[derive(Default)]
pub struct Store {
    /// token → org id.
    tokens: RwLock<HashMap<String, String>>,
    /// item id → row.
    items: RwLock<HashMap<String, Item>>,
    /// Requests answered (all routes, all statuses).
    pub requests: AtomicU64,
    /// Added to every answer: a target with network or database latency, where the
    /// scheduling of checks matters more than the tool's CPU cost.
    latency: std::time::Duration,
    /// At most this many requests handled at once (`--workers N`; a small app with a
    /// fixed pool of workers, which queues the rest): a target with a knee.
    workers: Option<tokio::sync::Semaphore>,
}

type Shared = Arc<Store>;

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

fn org_of(store: &Store, headers: &HeaderMap) -> Option<String> {
    let value = headers.get("authorization")?.to_str().ok()?;
    let token = value.strip_prefix("Bearer ")?;
    store
        .tokens
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(token)
        .cloned()
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, Json(json!({"error": "sign in"}))).into_response()
}

async fn count(State(s): State<Shared>, req: Request, next: Next) -> Response {
    s.requests.fetch_add(1, Ordering::Relaxed);
    let _worker = match &s.workers {
        Some(w) => w.acquire().await.ok(),
        None => None,
    };
    if !s.latency.is_zero() {
        tokio::time::sleep(s.latency).await;
    }
    next.run(req).await
}

async fn signup(State(s): State<Shared>) -> Response {
    let (org, token) = (random_hex(16), random_hex(24));
    s.tokens
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(token.clone(), org.clone());
    (
        StatusCode::CREATED,
        Json(json!({"token": token, "org_id": org})),
    )
        .into_response()
}

async fn create(State(s): State<Shared>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let Some(org) = org_of(&s, &headers) else {
        return unauthorized();
    };
    let name = body["name"].as_str().unwrap_or("unnamed").to_string();
    let id = random_hex(16);
    s.items.write().unwrap_or_else(|e| e.into_inner()).insert(
        id.clone(),
        Item {
            org,
            name: name.clone(),
        },
    );
    (StatusCode::CREATED, Json(json!({"id": id, "name": name}))).into_response()
}

async fn list(State(s): State<Shared>, headers: HeaderMap) -> Response {
    let Some(org) = org_of(&s, &headers) else {
        return unauthorized();
    };
    let items = s.items.read().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<Value> = items
        .iter()
        .filter(|(_, it)| it.org == org)
        .map(|(id, it)| json!({"id": id, "name": it.name}))
        .collect();
    rows.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    Json(json!({ "items": rows })).into_response()
}

async fn read(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let Some(org) = org_of(&s, &headers) else {
        return unauthorized();
    };
    let items = s.items.read().unwrap_or_else(|e| e.into_inner());
    match items.get(&id) {
        Some(it) if it.org == org => Json(json!({"id": id, "name": it.name})).into_response(),
        _ => not_found(),
    }
}

async fn update(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Response {
    let Some(org) = org_of(&s, &headers) else {
        return unauthorized();
    };
    let mut items = s.items.write().unwrap_or_else(|e| e.into_inner());
    match items.get_mut(&id) {
        Some(it) if it.org == org => {
            if let Some(n) = body["name"].as_str() {
                it.name = n.to_string();
            }
            Json(json!({"id": id, "name": it.name})).into_response()
        }
        _ => not_found(),
    }
}

async fn delete_org(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    match org_of(&s, &headers) {
        Some(org) if org == id => {
            s.items
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, it| it.org != org);
            s.tokens
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|_, o| *o != org);
            StatusCode::NO_CONTENT.into_response()
        }
        Some(_) => not_found(),
        None => unauthorized(),
    }
}

/// The routes: `POST /signup`, `POST|GET /items`, `GET|PATCH /items/{id}`,
/// `DELETE /orgs/{id}`.
pub fn router(store: Shared) -> Router {
    Router::new()
        .route("/signup", post(signup))
        .route("/items", post(create).get(list))
        .route("/items/{id}", get(read).patch(update))
        .route("/orgs/{id}", delete(delete_org))
        .layer(axum::middleware::from_fn_with_state(store.clone(), count))
        .with_state(store)
}

/// Serves on 127.0.0.1 (a free port) on `rt`, adding `latency` to every answer and
/// handling at most `workers` requests at once (`None`: no limit); returns the base URL
/// and the store.
pub fn serve(
    rt: &tokio::runtime::Runtime,
    latency: std::time::Duration,
    workers: Option<usize>,
) -> std::io::Result<(String, Shared)> {
    let store: Shared = Arc::new(Store {
        latency,
        workers: workers.map(tokio::sync::Semaphore::new),
        ..Store::default()
    });
    let listener = rt.block_on(tokio::net::TcpListener::bind(SocketAddr::from((
        [127, 0, 0, 1],
        0,
    ))))?;
    let addr = listener.local_addr()?;
    let app = router(store.clone());
    rt.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), store))
}
