//! `/orgs/{slug}/invoices...`: the org's invoices, each tied to one of its projects
//! (two planted bugs live here: the missing membership check and the 403 oracle).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_postgres::Row;

use super::ScopedState;
use super::auth::Caller;
use super::bugs::ScopedBug;
use super::scope::{Area, JsonBody, ScopedPath, required};
use crate::api::ApiError;
use crate::db::rfc3339;

const COLUMNS: &str = concat!(
    "id, org_id, project_id, customer, amount_cents, status, ",
    rfc3339!("created_at")
);

fn invoice_json(row: &Row) -> Value {
    json!({
        "id": row.get::<_, i64>(0), "org_id": row.get::<_, i64>(1),
        "project_id": row.get::<_, i64>(2), "customer": row.get::<_, String>(3),
        "amount_cents": row.get::<_, i64>(4), "status": row.get::<_, String>(5),
        "created_at": row.get::<_, String>(6),
    })
}

/// `POST /orgs/{slug}/invoices` body. Ids are JSON integers: `"501"` is refused (400),
/// as strictly typed APIs do.
#[derive(Deserialize)]
pub struct NewInvoice {
    project_id: Option<i64>,
    customer: Option<String>,
    amount_cents: Option<i64>,
}

/// `PATCH /orgs/{slug}/invoices/{id}` body: absent fields stay as they are.
#[derive(Deserialize)]
pub struct InvoicePatch {
    status: Option<String>,
    amount_cents: Option<i64>,
}

const STATUSES: [&str; 4] = ["draft", "sent", "paid", "void"];

/// `GET /orgs/{slug}/invoices`.
pub async fn list(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<Json<Value>, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Invoices).await?;
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let rows = tx
        .query(
            &format!("SELECT {COLUMNS} FROM invoices WHERE org_id = $1 ORDER BY id"),
            &[&ctx.org.id],
        )
        .await?;
    tx.commit().await?;
    let items: Vec<Value> = rows.iter().map(invoice_json).collect();
    Ok(Json(json!({ "items": items })))
}

/// `POST /orgs/{slug}/invoices`: the project must be one of this org's (the composite
/// foreign key refuses any other, answered as 404).
pub async fn create(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
    JsonBody(body): JsonBody<NewInvoice>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let ctx = path.resolve(&state, caller, Area::Invoices).await?;
    let project = body
        .project_id
        .ok_or_else(|| ApiError::BadRequest("project_id is required".into()))?;
    let customer = required(&body.customer, "customer")?.to_string();
    let amount = body.amount_cents.filter(|a| *a >= 0).ok_or_else(|| {
        ApiError::BadRequest("amount_cents must be a non-negative integer".into())
    })?;
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO invoices (org_id, project_id, customer, amount_cents) \
                 VALUES ($1, $2, $3, $4) RETURNING {COLUMNS}"
            ),
            &[&ctx.org.id, &project, &customer, &amount],
        )
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(invoice_json(&row))))
}

/// `GET /orgs/{slug}/invoices/{id}`.
pub async fn read(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<Json<Value>, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Invoices).await?;
    let id = path.id()?;
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM invoices WHERE id = $1 AND org_id = $2"),
            &[&id, &ctx.org.id],
        )
        .await?;
    tx.commit().await?;
    if let Some(row) = row {
        return Ok(Json(invoice_json(&row)));
    }
    if state.bugs.contains(ScopedBug::IntegerIdOracle) {
        // Planted: "exists, but not yours" is told apart from "never issued".
        let admin = state.admin.get().await?;
        if admin
            .query_opt("SELECT 1 FROM invoices WHERE id = $1", &[&id])
            .await?
            .is_some()
        {
            return Err(ApiError::Forbidden);
        }
    }
    Err(ApiError::NotFound)
}

/// `PATCH /orgs/{slug}/invoices/{id}`: sets `status` and/or `amount_cents`.
pub async fn update(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
    JsonBody(body): JsonBody<InvoicePatch>,
) -> Result<Json<Value>, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Invoices).await?;
    let id = path.id()?;
    if let Some(status) = body.status.as_deref()
        && !STATUSES.contains(&status)
    {
        return Err(ApiError::BadRequest(format!(
            "status must be one of {}",
            STATUSES.join(", ")
        )));
    }
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let row = tx
        .query_opt(
            &format!(
                "UPDATE invoices SET status = COALESCE($3, status), \
                 amount_cents = COALESCE($4, amount_cents) \
                 WHERE id = $1 AND org_id = $2 RETURNING {COLUMNS}"
            ),
            &[&id, &ctx.org.id, &body.status, &body.amount_cents],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(invoice_json(&row)))
}
