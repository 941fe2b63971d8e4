//! Signup, login, the caller's identity, and deleting one's own org.

use std::sync::{Arc, OnceLock};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::extract::{JsonBody, PathId, required};
use super::{ApiError, AppState, Caller, audit::record};
use crate::bugs::Bug;
use crate::db::begin_tenant;
use crate::{password, token};

/// `POST /auth/signup` body. Fields are optional here so a missing one gets a precise
/// 400 message instead of serde's.
#[derive(Deserialize)]
pub struct SignupBody {
    org_name: Option<String>,
    email: Option<String>,
    password: Option<String>,
}

/// `POST /auth/login` body: login is tenant-scoped, so the org is part of it.
#[derive(Deserialize)]
pub struct LoginBody {
    org_id: String,
    email: String,
    password: String,
}

/// Hashing is CPU work; keep it off the async workers.
async fn hash_password(pw: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || password::hash(&pw))
        .await
        .map_err(|e| ApiError::internal("hashing task", e))
}

async fn verify_password(pw: String, stored: String) -> Result<bool, ApiError> {
    tokio::task::spawn_blocking(move || password::verify(&pw, &stored))
        .await
        .map_err(|e| ApiError::internal("verifying task", e))
}

fn sign(state: &AppState, user: Uuid, org: Uuid, role: &str) -> Result<String, ApiError> {
    token::issue(&state.jwt_secret, user, org, role).map_err(|e| ApiError::internal("token", e))
}

/// `POST /auth/signup`: a new org and its owner. The org id is generated here so the
/// transaction can be scoped to it before the org row exists.
pub async fn signup(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<SignupBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let org_name = required(&body.org_name, "org_name")?;
    let email = required(&body.email, "email")?;
    let pw = body
        .password
        .as_deref()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ApiError::BadRequest("password is required".into()))?;
    let hash = hash_password(pw.to_string()).await?;

    let org_id = Uuid::new_v4();
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, org_id).await?;
    tx.execute(
        "INSERT INTO orgs (id, name) VALUES ($1, $2)",
        &[&org_id, &org_name],
    )
    .await?;
    let row = tx
        .query_one(
            "INSERT INTO users (org_id, email, password_hash, role) \
             VALUES ($1, $2, $3, 'owner') RETURNING id",
            &[&org_id, &email, &hash],
        )
        .await?;
    let user_id: Uuid = row.get(0);
    record(
        &tx,
        org_id,
        user_id,
        "org.created",
        &format!("org {org_name:?} created with owner {email:?}"),
    )
    .await?;
    tx.commit().await?;

    let access_token = sign(&state, user_id, org_id, "owner")?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "access_token": access_token,
            "token_type": "Bearer",
            "org": {"id": org_id, "name": org_name},
            "user": {"id": user_id, "email": email},
        })),
    ))
}

/// A hash to check against when the user does not exist, so an unknown email costs the
/// same time as a wrong password.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| password::hash("not a password"))
}

/// `POST /auth/login`: looks the user up under RLS in the named org; any mismatch is 401.
pub async fn login(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let found = match Uuid::parse_str(body.org_id.trim()) {
        Ok(org_id) => {
            let mut client = state.app.get().await?;
            let tx = begin_tenant(&mut client, org_id).await?;
            let row = tx
                .query_opt(
                    "SELECT id, password_hash, role FROM users WHERE org_id = $1 AND email = $2",
                    &[&org_id, &body.email.trim()],
                )
                .await?;
            tx.commit().await?;
            row.map(|r| {
                (
                    org_id,
                    r.get::<_, Uuid>(0),
                    r.get::<_, String>(1),
                    r.get::<_, String>(2),
                )
            })
        }
        Err(_) => None,
    };
    let stored = found
        .as_ref()
        .map_or_else(|| dummy_hash().to_string(), |f| f.2.clone());
    let matches = verify_password(body.password, stored).await?;
    match found {
        Some((org_id, user_id, _, role)) if matches => Ok(Json(json!({
            "access_token": sign(&state, user_id, org_id, &role)?,
            "token_type": "Bearer",
        }))),
        _ => Err(ApiError::Unauthorized),
    }
}

/// `GET /me`: who the token says the caller is, confirmed against the users table. A
/// token for a user who no longer exists (org deleted) is 401.
pub async fn me(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            "SELECT email, role FROM users WHERE id = $1 AND org_id = $2",
            &[&caller.user_id, &caller.org_id],
        )
        .await?;
    tx.commit().await?;
    let row = row.ok_or(ApiError::Unauthorized)?;
    Ok(Json(json!({
        "org_id": caller.org_id,
        "user_id": caller.user_id,
        "email": row.get::<_, String>(0),
        "role": row.get::<_, String>(1),
    })))
}

/// `DELETE /orgs/{id}`: only the caller's own org; everything of it goes by cascade.
pub async fn delete_org(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    if state.bugs.contains(Bug::CannotDelete) {
        // Planted: this API offers no way to delete an org (as if the route did not exist).
        return Err(ApiError::MethodNotAllowed);
    }
    if id != caller.org_id {
        return Err(ApiError::NotFound);
    }
    if state.bugs.contains(Bug::DeleteKeepsData) {
        // Planted: the deletion is acknowledged and never happens.
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let deleted = tx
        .execute("DELETE FROM orgs WHERE id = $1", &[&caller.org_id])
        .await?;
    tx.commit().await?;
    if deleted == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}
