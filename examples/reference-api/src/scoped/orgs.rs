//! Orgs, their members and their API keys: creating a second org, adding a user to an
//! org, and minting an org's key. Runs after authentication and scope resolution.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_postgres::GenericClient;

use super::ScopedState;
use super::auth::{Caller, digest_hex};
use super::scope::{Area, JsonBody, Org, ScopedPath, begin_as, required, valid_slug};
use crate::api::ApiError;
use crate::db::rfc3339;

/// Inserts an org created by `user_id` and their owner membership, in a transaction
/// where `app.user_id` is already `user_id`.
pub(crate) async fn create_org(
    tx: &impl GenericClient,
    user_id: i64,
    slug: &str,
    name: &str,
) -> Result<Org, ApiError> {
    let row = tx
        .query_one(
            "INSERT INTO orgs (slug, name, created_by) VALUES ($1, $2, $3) \
             RETURNING id, slug, name",
            &[&slug, &name, &user_id],
        )
        .await?;
    let org = Org {
        id: row.get(0),
        slug: row.get(1),
        name: row.get(2),
    };
    tx.execute(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'owner')",
        &[&org.id, &user_id],
    )
    .await?;
    Ok(org)
}

/// `POST /orgs` body.
#[derive(Deserialize)]
pub struct OrgBody {
    name: Option<String>,
    slug: Option<String>,
}

/// `POST /orgs`: another org, owned by the calling person.
pub async fn create(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    JsonBody(body): JsonBody<OrgBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if caller.is_key() {
        return Err(ApiError::Forbidden);
    }
    let name = required(&body.name, "name")?.to_string();
    let slug = valid_slug(required(&body.slug, "slug")?)?;
    let mut client = state.app.get().await?;
    let tx = begin_as(&mut client, caller.user_id).await?;
    let org = create_org(&tx, caller.user_id, &slug, &name).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!(org))))
}

/// `GET /orgs/{slug}`: the org and the caller's role in it.
pub async fn read(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<Json<Value>, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Org).await?;
    Ok(Json(json!({
        "id": ctx.org.id, "slug": ctx.org.slug, "name": ctx.org.name, "role": ctx.role,
    })))
}

/// `DELETE /orgs/{slug}`: owners only; everything of the org goes by cascade.
pub async fn remove(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<StatusCode, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Org).await?;
    ctx.require_role(&["owner"])?;
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let deleted = tx
        .execute("DELETE FROM orgs WHERE id = $1", &[&ctx.org.id])
        .await?;
    tx.commit().await?;
    if deleted == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /orgs/{slug}/members` body.
#[derive(Deserialize)]
pub struct MemberBody {
    email: Option<String>,
    role: Option<String>,
}

/// `POST /orgs/{slug}/members`: an owner or admin adds an existing person (by email)
/// as `admin` or `member` (the default).
pub async fn add_member(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
    JsonBody(body): JsonBody<MemberBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ctx = path.resolve(&state, caller, Area::Org).await?;
    ctx.require_role(&["owner", "admin"])?;
    let email = required(&body.email, "email")?.to_ascii_lowercase();
    let role = body.role.as_deref().unwrap_or("member");
    if !["admin", "member"].contains(&role) {
        return Err(ApiError::BadRequest("role must be admin or member".into()));
    }
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let user_id: i64 = tx
        .query_opt(
            "SELECT id FROM users WHERE email = $1 AND kind = 'person'",
            &[&email],
        )
        .await?
        .ok_or(ApiError::NotFound)?
        .get(0);
    // No RETURNING: the new row is someone else's membership, which the caller's own
    // RLS view does not include.
    tx.execute(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, $3)",
        &[&ctx.org.id, &user_id, &role],
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"org_id": ctx.org.id, "user_id": user_id, "email": email, "role": role})),
    ))
}

/// `POST /orgs/{slug}/api-keys` body.
#[derive(Deserialize)]
pub struct KeyBody {
    name: Option<String>,
}

const KEY_COLUMNS: &str = concat!("id, org_id, user_id, name, ", rfc3339!("created_at"));

fn key_json(row: &tokio_postgres::Row) -> Value {
    json!({
        "id": row.get::<_, i64>(0), "org_id": row.get::<_, i64>(1),
        "user_id": row.get::<_, i64>(2), "name": row.get::<_, String>(3),
        "created_at": row.get::<_, String>(4),
    })
}

/// `POST /orgs/{slug}/api-keys`: an owner or admin (with a session) mints a key for the
/// org. The key is a bot user who is a member of this org only; it is shown once.
pub async fn create_key(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
    JsonBody(body): JsonBody<KeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ctx = path.resolve(&state, caller, Area::Org).await?;
    if caller.is_key() {
        return Err(ApiError::Forbidden);
    }
    ctx.require_role(&["owner", "admin"])?;
    let name = required(&body.name, "name")?.to_string();
    let key = format!("tgk_{}", crate::pg::random_hex(32));
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let bot: i64 = tx
        .query_one(
            "INSERT INTO users (kind, api_key_hash) VALUES ('api_key', $1) RETURNING id",
            &[&digest_hex(&key)],
        )
        .await?
        .get(0);
    tx.execute(
        "INSERT INTO memberships (org_id, user_id, role) VALUES ($1, $2, 'api')",
        &[&ctx.org.id, &bot],
    )
    .await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO api_keys (org_id, user_id, name, created_by) \
                 VALUES ($1, $2, $3, $4) RETURNING {KEY_COLUMNS}"
            ),
            &[&ctx.org.id, &bot, &name, &caller.user_id],
        )
        .await?;
    tx.commit().await?;
    let mut answer = key_json(&row);
    answer["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /orgs/{slug}/api-keys`: the org's keys, never their secrets.
pub async fn list_keys(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<Json<Value>, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Org).await?;
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let rows = tx
        .query(
            &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY id"),
            &[&ctx.org.id],
        )
        .await?;
    tx.commit().await?;
    let items: Vec<Value> = rows.iter().map(key_json).collect();
    Ok(Json(json!({ "items": items })))
}
