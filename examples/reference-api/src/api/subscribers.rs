//! Email subscribers to a brand's updates.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_postgres::Row;
use uuid::Uuid;

use super::brands::brand_name;
use super::extract::{JsonBody, PathId, required};
use super::{ApiError, AppState, Caller, audit::record};
use crate::db::{begin_tenant, rfc3339};

/// A subscriber as the API shows it.
#[derive(Serialize)]
struct Subscriber {
    id: Uuid,
    org_id: Uuid,
    brand_id: Uuid,
    email: String,
    created_at: String,
}

impl Subscriber {
    fn from_row(row: &Row) -> Subscriber {
        Subscriber {
            id: row.get(0),
            org_id: row.get(1),
            brand_id: row.get(2),
            email: row.get(3),
            created_at: row.get(4),
        }
    }
}

const COLUMNS: &str = concat!("id, org_id, brand_id, email, ", rfc3339!("created_at"));

/// `POST /subscribers` body.
#[derive(Deserialize)]
pub struct SubscriberBody {
    email: Option<String>,
    brand_id: Uuid,
}

/// `POST /subscribers`: the brand must be one of the caller's (404 otherwise).
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(body): JsonBody<SubscriberBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let email = required(&body.email, "email")?;
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let brand = brand_name(&tx, caller.org_id, body.brand_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO subscribers (org_id, brand_id, email) VALUES ($1, $2, $3) \
                 RETURNING {COLUMNS}"
            ),
            &[&caller.org_id, &body.brand_id, &email],
        )
        .await?;
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "subscriber.created",
        &format!("subscriber {email:?} of brand {brand:?} created"),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!(Subscriber::from_row(&row)))))
}

/// `GET /subscribers`: the caller's subscribers, oldest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let rows = tx
        .query(
            &format!("SELECT {COLUMNS} FROM subscribers WHERE org_id = $1 ORDER BY created_at, id"),
            &[&caller.org_id],
        )
        .await?;
    tx.commit().await?;
    let items: Vec<Subscriber> = rows.iter().map(Subscriber::from_row).collect();
    Ok(Json(json!({ "items": items })))
}

/// `GET /subscribers/{id}`.
pub async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM subscribers WHERE id = $1 AND org_id = $2"),
            &[&id, &caller.org_id],
        )
        .await?;
    tx.commit().await?;
    let row = row.ok_or(ApiError::NotFound)?;
    Ok(Json(json!(Subscriber::from_row(&row))))
}

/// `DELETE /subscribers/{id}`.
pub async fn remove(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<StatusCode, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            "DELETE FROM subscribers WHERE id = $1 AND org_id = $2 RETURNING email",
            &[&id, &caller.org_id],
        )
        .await?;
    let email: String = row.ok_or(ApiError::NotFound)?.get(0);
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "subscriber.deleted",
        &format!("subscriber {email:?} deleted"),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
