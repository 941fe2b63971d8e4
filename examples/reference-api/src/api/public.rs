//! The one unauthenticated read: the landing page's "featured brands".
//!
//! Brands are tenant data and there is deliberately no cross-tenant public data, so this
//! endpoint sets no tenant and relies on RLS alone: in the correct app its answer is
//! always `{"items":[]}`, whoever asked before. It exists to make a pooled-connection
//! hazard observable — with the planted `pool-session-leak` bug the previous caller's
//! session-level tenant setting is still on the connection, and its brands show here.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{ApiError, AppState};
use crate::db::begin_anonymous;

/// At most this many brands are featured.
const FEATURED: i64 = 20;

/// `GET /public/featured-brands`: `{items: [{id, org_id, name}]}`, no token needed.
pub async fn featured_brands(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_anonymous(&mut client).await?;
    // No org filter on purpose: which rows are visible is RLS's decision, and without a
    // tenant setting it grants none.
    let rows = tx
        .query(
            "SELECT id, org_id, name FROM brands ORDER BY created_at, id LIMIT $1",
            &[&FEATURED],
        )
        .await?;
    tx.commit().await?;
    let items: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "id": r.get::<_, Uuid>(0),
                "org_id": r.get::<_, Uuid>(1),
                "name": r.get::<_, String>(2),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}
