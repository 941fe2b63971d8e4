//! Brands and their per-brand ghost-presence config.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::extract::{JsonBody, PathId, required};
use super::{ApiError, AppState, Caller, audit::record};
use crate::bugs::Bug;
use crate::db::{begin_tenant, rfc3339};

/// A brand as the API shows it.
#[derive(Serialize)]
struct Brand {
    id: Uuid,
    org_id: Uuid,
    name: String,
    created_at: String,
}

impl Brand {
    fn from_row(row: &Row) -> Brand {
        Brand {
            id: row.get(0),
            org_id: row.get(1),
            name: row.get(2),
            created_at: row.get(3),
        }
    }
}

const BRAND_COLUMNS: &str = concat!("id, org_id, name, ", rfc3339!("created_at"));

/// A ghost-presence config as the API shows it.
#[derive(Serialize)]
struct Config {
    brand_id: Uuid,
    enabled: bool,
    keywords: Value,
    updated_at: String,
}

impl Config {
    fn from_row(row: &Row) -> Config {
        Config {
            brand_id: row.get(0),
            enabled: row.get(1),
            keywords: row.get(2),
            updated_at: row.get(3),
        }
    }
}

const CONFIG_COLUMNS: &str = concat!("brand_id, enabled, keywords, ", rfc3339!("updated_at"));

/// The config update shared by the correct path and the planted bug; callers append
/// the org filter (or, planted, do not).
const UPDATE_CONFIG: &str = "UPDATE ghost_presence_configs \
     SET enabled = COALESCE($2, enabled), keywords = COALESCE($3, keywords), \
     updated_at = now() WHERE brand_id = $1";

/// `POST /brands` and `PATCH /brands/{id}` body. Any `org_id` sent along is ignored.
#[derive(Deserialize)]
pub struct BrandBody {
    name: Option<String>,
}

/// `PATCH /ghost-presence/{brand_id}/config` body: absent fields stay as they are.
#[derive(Deserialize)]
pub struct ConfigBody {
    enabled: Option<bool>,
    keywords: Option<Vec<String>>,
}

/// The name of one of the org's brands, or `None` when the org has no such brand. Other
/// handlers use it to refuse references to brands the caller cannot see.
pub(crate) async fn brand_name(
    tx: &impl GenericClient,
    org: Uuid,
    brand: Uuid,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(tx
        .query_opt(
            "SELECT name FROM brands WHERE id = $1 AND org_id = $2",
            &[&brand, &org],
        )
        .await?
        .map(|r| r.get(0)))
}

/// `POST /brands`: the brand and its default config (enabled, no keywords).
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(body): JsonBody<BrandBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = required(&body.name, "name")?;
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_one(
            &format!("INSERT INTO brands (org_id, name) VALUES ($1, $2) RETURNING {BRAND_COLUMNS}"),
            &[&caller.org_id, &name],
        )
        .await?;
    let brand = Brand::from_row(&row);
    tx.execute(
        "INSERT INTO ghost_presence_configs (brand_id, org_id) VALUES ($1, $2)",
        &[&brand.id, &caller.org_id],
    )
    .await?;
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "brand.created",
        &format!("brand {name:?} created"),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!(brand))))
}

/// `GET /brands`: the caller's brands, oldest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let rows = tx
        .query(
            &format!(
                "SELECT {BRAND_COLUMNS} FROM brands WHERE org_id = $1 ORDER BY created_at, id"
            ),
            &[&caller.org_id],
        )
        .await?;
    tx.commit().await?;
    let items: Vec<Brand> = rows.iter().map(Brand::from_row).collect();
    Ok(Json(json!({ "items": items })))
}

/// `GET /brands/{id}`.
pub async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            &format!("SELECT {BRAND_COLUMNS} FROM brands WHERE id = $1 AND org_id = $2"),
            &[&id, &caller.org_id],
        )
        .await?;
    tx.commit().await?;
    if let Some(row) = row {
        return Ok(Json(json!(Brand::from_row(&row))));
    }
    if state.bugs.contains(Bug::ForbiddenNot404) {
        // Planted: asking the privileged connection whether the id exists elsewhere
        // turns the answer into an existence oracle.
        let admin = state.admin.get().await?;
        if admin
            .query_opt("SELECT 1 FROM brands WHERE id = $1", &[&id])
            .await?
            .is_some()
        {
            return Err(ApiError::Forbidden);
        }
    }
    Err(ApiError::NotFound)
}

/// `PATCH /brands/{id}`: renames a brand.
pub async fn rename(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
    JsonBody(body): JsonBody<BrandBody>,
) -> Result<Json<Value>, ApiError> {
    let name = required(&body.name, "name")?;
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let old = brand_name(&tx, caller.org_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let row = tx
        .query_one(
            &format!(
                "UPDATE brands SET name = $3 WHERE id = $1 AND org_id = $2 RETURNING {BRAND_COLUMNS}"
            ),
            &[&id, &caller.org_id, &name],
        )
        .await?;
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "brand.updated",
        &format!("brand {old:?} renamed to {name:?}"),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!(Brand::from_row(&row))))
}

/// `DELETE /brands/{id}`: the brand and, by cascade, its config, mentions and
/// subscribers.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            "DELETE FROM brands WHERE id = $1 AND org_id = $2 RETURNING name",
            &[&id, &caller.org_id],
        )
        .await?;
    let name: String = row.ok_or(ApiError::NotFound)?.get(0);
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "brand.deleted",
        &format!("brand {name:?} deleted"),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /ghost-presence/{brand_id}/config`.
pub async fn read_config(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(brand_id): PathId,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            &format!(
                "SELECT {CONFIG_COLUMNS} FROM ghost_presence_configs \
                 WHERE brand_id = $1 AND org_id = $2"
            ),
            &[&brand_id, &caller.org_id],
        )
        .await?;
    tx.commit().await?;
    let row = row.ok_or(ApiError::NotFound)?;
    Ok(Json(json!(Config::from_row(&row))))
}

/// `PATCH /ghost-presence/{brand_id}/config`: sets `enabled` and/or `keywords`.
pub async fn update_config(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(brand_id): PathId,
    JsonBody(body): JsonBody<ConfigBody>,
) -> Result<Json<Value>, ApiError> {
    let keywords = body.keywords.map(|k| json!(k));
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = if state.bugs.contains(Bug::WriteBypassesRls) {
        // Planted: the write goes through the superuser connection with no org filter,
        // so any org's config can be changed by id.
        let admin = state.admin.get().await?;
        admin
            .query_opt(
                &format!("{UPDATE_CONFIG} RETURNING {CONFIG_COLUMNS}"),
                &[&brand_id, &body.enabled, &keywords],
            )
            .await?
    } else {
        tx.query_opt(
            &format!("{UPDATE_CONFIG} AND org_id = $4 RETURNING {CONFIG_COLUMNS}"),
            &[&brand_id, &body.enabled, &keywords, &caller.org_id],
        )
        .await?
    };
    let config = Config::from_row(&row.ok_or(ApiError::NotFound)?);
    let brand = brand_name(&tx, caller.org_id, brand_id)
        .await?
        .unwrap_or_else(|| brand_id.to_string());
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "ghost_presence.updated",
        &format!("ghost-presence config of brand {brand:?} updated"),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(json!(config)))
}
