//! Per-org API keys: created with the plaintext shown once, listed without it, revoked
//! by deletion, and accepted as an identity (`X-Api-Key` or `Authorization: ApiKey …`,
//! see [`super::Caller`]). Only the one-way form of a key is stored ([`crate::apikey`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_postgres::Row;
use uuid::Uuid;

use super::extract::{JsonBody, PathId, required};
use super::{ApiError, AppState, Caller, audit::record};
use crate::apikey::{self, Storage};
use crate::bugs::Bug;
use crate::db::{begin_tenant, rfc3339};

/// `POST /api-keys` body.
#[derive(Deserialize)]
pub struct KeyBody {
    name: Option<String>,
}

const COLUMNS: &str = concat!("id, org_id, name, ", rfc3339!("created_at"));

fn listed(row: &Row) -> Value {
    json!({
        "id": row.get::<_, Uuid>(0),
        "org_id": row.get::<_, Uuid>(1),
        "name": row.get::<_, String>(2),
        "created_at": row.get::<_, String>(3),
    })
}

/// How this app instance stores keys: salted unless a planted bug says otherwise.
fn storage(state: &AppState) -> Storage {
    if state.bugs.contains(Bug::ApiKeyPlaintext) {
        Storage::Plaintext
    } else if state.bugs.contains(Bug::ApiKeyUnsalted) {
        Storage::UnsaltedSha256
    } else {
        Storage::Salted
    }
}

/// `POST /api-keys`: 201 `{id, org_id, name, key, created_at}`; `key` is never shown
/// again.
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(body): JsonBody<KeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = required(&body.name, "name")?.to_string();
    let id = Uuid::new_v4();
    let key = apikey::generate(caller.org_id, id);
    let (k, how) = (key.clone(), storage(&state));
    // Hashing is CPU work; keep it off the async workers.
    let stored = tokio::task::spawn_blocking(move || apikey::stored_form(&k, how))
        .await
        .map_err(|e| ApiError::internal("hashing task", e))?;
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO api_keys (id, org_id, name, key_hash, created_by) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING {COLUMNS}"
            ),
            &[&id, &caller.org_id, &name, &stored, &caller.user_id],
        )
        .await?;
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "api_key.created",
        &format!("api key {name:?} created"),
    )
    .await?;
    tx.commit().await?;
    let mut answer = listed(&row);
    answer["key"] = json!(key);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// `GET /api-keys`: the org's keys, oldest first, without any key material.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let rows = tx
        .query(
            &format!("SELECT {COLUMNS} FROM api_keys WHERE org_id = $1 ORDER BY created_at, id"),
            &[&caller.org_id],
        )
        .await?;
    tx.commit().await?;
    let items: Vec<Value> = rows.iter().map(listed).collect();
    Ok(Json(json!({ "items": items })))
}

/// `DELETE /api-keys/{id}`: revokes the key.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            "DELETE FROM api_keys WHERE id = $1 AND org_id = $2 RETURNING name",
            &[&id, &caller.org_id],
        )
        .await?;
    let name: String = row.ok_or(ApiError::NotFound)?.get(0);
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "api_key.deleted",
        &format!("api key {name:?} deleted"),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The caller an API key stands for, or `None` when the key is unknown, revoked or
/// wrong. The lookup runs under RLS in the org the key names; the org is believed only
/// once the secret matched the stored hash.
pub(crate) async fn caller_for_key(
    state: &AppState,
    key: &str,
) -> Result<Option<Caller>, ApiError> {
    let Some((org, id)) = apikey::parse(key) else {
        return Ok(None);
    };
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, org).await?;
    let row = tx
        .query_opt(
            "SELECT key_hash, created_by FROM api_keys WHERE id = $1 AND org_id = $2",
            &[&id, &org],
        )
        .await?;
    tx.commit().await?;
    drop(client);
    let Some(row) = row else {
        return Ok(None);
    };
    let (stored, user): (String, Uuid) = (row.get(0), row.get(1));
    let key = key.trim().to_string();
    let matches = tokio::task::spawn_blocking(move || apikey::verify(&key, &stored))
        .await
        .map_err(|e| ApiError::internal("verifying task", e))?;
    Ok(matches.then(|| Caller {
        org_id: org,
        user_id: user,
        role: "api_key".to_string(),
    }))
}
