//! Who is calling: session cookies and API keys, and the routes that make them (sign-up,
//! login, logout, `/me`). Runs first on every request, before the org scope is resolved.
//!
//! Session ids and API keys are stored only as SHA-256 hashes. A request carries either
//! `X-Api-Key` (an org's key: its bot user, member of that one org) or the `sid`
//! cookie; neither is ever taken from a body or the query string.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ScopedState;
use super::bugs::ScopedBug;
use super::scope::{JsonBody, begin_as, required, valid_slug};
use crate::api::ApiError;
use crate::password;

/// The cookie that carries the session id.
pub const SESSION_COOKIE: &str = "sid";
/// The header that carries an API key.
pub const API_KEY_HEADER: &str = "x-api-key";

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A session cookie; the session's row id.
    Session(i64),
    /// An org's API key (its bot user is the caller).
    ApiKey,
}

/// The authenticated caller: a person with a session, or an API key's bot user.
#[derive(Debug, Clone, Copy)]
pub struct Caller {
    /// The user every query runs as (`app.user_id`).
    pub user_id: i64,
    /// The credential used.
    pub via: Via,
}

impl Caller {
    /// Whether the caller is an API key.
    pub fn is_key(&self) -> bool {
        self.via == Via::ApiKey
    }
}

/// Lowercase hex SHA-256: how session ids and keys are stored.
pub(crate) fn digest_hex(secret: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value of cookie `name` among every `Cookie` header.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
}

impl FromRequestParts<Arc<ScopedState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ScopedState>,
    ) -> Result<Caller, ApiError> {
        let client = state.app.get().await?;
        if let Some(key) = parts.headers.get(API_KEY_HEADER) {
            let key = key.to_str().map_err(|_| ApiError::Unauthorized)?.trim();
            let row = client
                .query_opt(
                    "SELECT id FROM users WHERE api_key_hash = $1 AND kind = 'api_key'",
                    &[&digest_hex(key)],
                )
                .await?
                .ok_or(ApiError::Unauthorized)?;
            return Ok(Caller {
                user_id: row.get(0),
                via: Via::ApiKey,
            });
        }
        let sid = cookie(&parts.headers, SESSION_COOKIE)
            .filter(|s| !s.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let row = client
            .query_opt(
                "SELECT id, user_id FROM sessions WHERE sid_hash = $1 \
                 AND revoked_at IS NULL AND expires_at > now()",
                &[&digest_hex(&sid)],
            )
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            user_id: row.get(1),
            via: Via::Session(row.get(0)),
        })
    }
}

/// `POST /auth/signup` body.
#[derive(Deserialize)]
pub struct SignupBody {
    email: Option<String>,
    password: Option<String>,
    org_name: Option<String>,
    org_slug: Option<String>,
}

/// `POST /auth/login` body.
#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

/// Hashing is CPU work; keep it off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal("password task", e))
}

/// `POST /auth/signup`: a user, their first org, and their owner membership. It does not
/// log in, so the sessions a run creates are exactly its logins.
pub async fn signup(
    State(state): State<Arc<ScopedState>>,
    JsonBody(body): JsonBody<SignupBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let email = required(&body.email, "email")?.to_ascii_lowercase();
    let org_name = required(&body.org_name, "org_name")?.to_string();
    let slug = valid_slug(required(&body.org_slug, "org_slug")?)?;
    let pw = body
        .password
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::BadRequest("password is required".into()))?;
    let hash = blocking(move || password::hash(&pw)).await?;

    let mut client = state.app.get().await?;
    let tx = client.transaction().await?;
    let user_id: i64 = tx
        .query_one(
            "INSERT INTO users (email, password_hash) VALUES ($1, $2) RETURNING id",
            &[&email, &hash],
        )
        .await?
        .get(0);
    tx.execute(
        "SELECT set_config('app.user_id', $1, true)",
        &[&user_id.to_string()],
    )
    .await?;
    let org = super::orgs::create_org(&tx, user_id, &slug, &org_name).await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"user": {"id": user_id, "email": email}, "org": org})),
    ))
}

/// A hash to check against when the user does not exist, so an unknown email costs the
/// same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash("not a password"))
}

/// A new session id: 256 random bits, unless a planted bug weakens it.
async fn new_session(state: &ScopedState, user_id: i64) -> Result<String, ApiError> {
    let bugs = &state.bugs;
    let mut sid = if bugs.contains(ScopedBug::WeakSessionEntropy) {
        crate::pg::random_hex(4)
    } else {
        crate::pg::random_hex(32)
    };
    let mut client = state.app.get().await?;
    let tx = client.transaction().await?;
    let id: i64 = tx
        .query_one(
            "INSERT INTO sessions (sid_hash, user_id) VALUES ($1, $2) RETURNING id",
            &[&digest_hex(&sid), &user_id],
        )
        .await?
        .get(0);
    if bugs.contains(ScopedBug::GuessableSession) {
        // Planted: the row's serial number doubles as the session id.
        sid = id.to_string();
        tx.execute(
            "UPDATE sessions SET sid_hash = $1 WHERE id = $2",
            &[&digest_hex(&sid), &id],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(sid)
}

fn set_cookie(value: &str, extra: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; HttpOnly; Path=/; SameSite=Lax{extra}"
    ))
    .map_err(|e| ApiError::internal("cookie", e))
}

/// `POST /auth/login`: email and password; answers the user and sets the `sid` cookie.
pub async fn login(
    State(state): State<Arc<ScopedState>>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let email = body.email.trim().to_ascii_lowercase();
    let client = state.app.get().await?;
    let found = client
        .query_opt(
            "SELECT id, password_hash FROM users WHERE email = $1 AND kind = 'person'",
            &[&email],
        )
        .await?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)));
    drop(client);
    let stored = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |f| f.1.clone());
    let pw = body.password;
    let matches = blocking(move || password::verify(&pw, &stored)).await?;
    let Some((user_id, _)) = found.filter(|_| matches) else {
        return Err(ApiError::Unauthorized);
    };
    let sid = new_session(&state, user_id).await?;
    let mut response = Json(json!({"user": {"id": user_id, "email": email}})).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie(&sid, "")?);
    Ok(response)
}

/// `POST /auth/logout`: revokes the session and expires the cookie.
pub async fn logout(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let Via::Session(session) = caller.via else {
        return Err(ApiError::BadRequest(
            "an API key has no session to end".into(),
        ));
    };
    if !state.bugs.contains(ScopedBug::LogoutKeepsSession) {
        let client = state.app.get().await?;
        client
            .execute(
                "UPDATE sessions SET revoked_at = now() WHERE id = $1",
                &[&session],
            )
            .await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, set_cookie("", "; Max-Age=0")?);
    Ok(response)
}

/// `GET /me`: the caller and every org they are a member of, read under RLS as them.
pub async fn me(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_as(&mut client, caller.user_id).await?;
    let user = tx
        .query_one(
            "SELECT email, kind FROM users WHERE id = $1",
            &[&caller.user_id],
        )
        .await?;
    let orgs = tx
        .query(
            "SELECT o.id, o.slug, o.name, m.role FROM memberships m \
             JOIN orgs o ON o.id = m.org_id WHERE m.user_id = $1 ORDER BY o.id",
            &[&caller.user_id],
        )
        .await?;
    tx.commit().await?;
    let orgs: Vec<Value> = orgs
        .iter()
        .map(|r| {
            json!({"id": r.get::<_, i64>(0), "slug": r.get::<_, String>(1),
                   "name": r.get::<_, String>(2), "role": r.get::<_, String>(3)})
        })
        .collect();
    Ok(Json(json!({
        "user": {"id": caller.user_id, "email": user.get::<_, Option<String>>(0),
                 "kind": user.get::<_, String>(1)},
        "orgs": orgs,
    })))
}
