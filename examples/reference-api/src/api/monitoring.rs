//! Monitoring mentions: things said about a brand somewhere on the web.

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
use crate::bugs::Bug;
use crate::db::{begin_tenant, rfc3339};

/// A mention as the API shows it.
#[derive(Serialize)]
struct Mention {
    id: Uuid,
    org_id: Uuid,
    brand_id: Uuid,
    text: String,
    source_url: Option<String>,
    created_at: String,
}

impl Mention {
    fn from_row(row: &Row) -> Mention {
        Mention {
            id: row.get(0),
            org_id: row.get(1),
            brand_id: row.get(2),
            text: row.get(3),
            source_url: row.get(4),
            created_at: row.get(5),
        }
    }
}

const COLUMNS: &str = concat!(
    "id, org_id, brand_id, text, source_url, ",
    rfc3339!("created_at")
);

/// `POST /monitoring/mentions` body.
#[derive(Deserialize)]
pub struct MentionBody {
    brand_id: Uuid,
    text: Option<String>,
    source_url: Option<String>,
}

/// At most this many characters of a mention's text go into its audit entry.
const AUDIT_EXCERPT_CHARS: usize = 80;

/// `POST /monitoring/mentions`: the brand must be one of the caller's (404 otherwise).
pub async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    JsonBody(body): JsonBody<MentionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let text = required(&body.text, "text")?;
    let source_url = body.source_url.as_deref().map(str::trim);
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let brand = brand_name(&tx, caller.org_id, body.brand_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO mentions (org_id, brand_id, text, source_url) \
                 VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
            ),
            &[&caller.org_id, &body.brand_id, &text, &source_url],
        )
        .await?;
    let excerpt: String = text.chars().take(AUDIT_EXCERPT_CHARS).collect();
    record(
        &tx,
        caller.org_id,
        caller.user_id,
        "mention.created",
        &format!("mention {excerpt:?} on brand {brand:?} created"),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(json!(Mention::from_row(&row)))))
}

/// `GET /monitoring/mentions`: the caller's mentions, oldest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let rows = if state.bugs.contains(Bug::MentionsRlsOff) {
        // Planted: no org filter, and the migration left the table without RLS, so
        // nothing stands between the caller and every org's mentions.
        tx.query(
            &format!("SELECT {COLUMNS} FROM mentions ORDER BY created_at, id"),
            &[],
        )
        .await?
    } else {
        tx.query(
            &format!("SELECT {COLUMNS} FROM mentions WHERE org_id = $1 ORDER BY created_at, id"),
            &[&caller.org_id],
        )
        .await?
    };
    tx.commit().await?;
    let items: Vec<Mention> = rows.iter().map(Mention::from_row).collect();
    Ok(Json(json!({ "items": items })))
}

/// `GET /monitoring/mentions/{id}`.
pub async fn read(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM mentions WHERE id = $1 AND org_id = $2"),
            &[&id, &caller.org_id],
        )
        .await?;
    tx.commit().await?;
    let row = row.ok_or(ApiError::NotFound)?;
    Ok(Json(json!(Mention::from_row(&row))))
}
