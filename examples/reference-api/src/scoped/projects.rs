//! `/orgs/{slug}/projects...`: the org's projects, read and written in the resolved
//! scope (three planted bugs live here: mass assignment, the id-only lookup and the
//! list of every member org).

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
use super::scope::{Area, Ctx, JsonBody, ScopedPath, required};
use crate::api::ApiError;
use crate::db::rfc3339;

const COLUMNS: &str = concat!("id, org_id, name, ", rfc3339!("created_at"));

fn project_json(row: &Row) -> Value {
    json!({
        "id": row.get::<_, i64>(0), "org_id": row.get::<_, i64>(1),
        "name": row.get::<_, String>(2), "created_at": row.get::<_, String>(3),
    })
}

/// `POST` and `PATCH` body. `org_id` and `org_slug` are read only so the planted
/// mass-assignment bug can honour them; the correct app ignores them.
#[derive(Deserialize)]
pub struct ProjectBody {
    name: Option<String>,
    #[serde(default)]
    org_id: Option<Value>,
    #[serde(default)]
    org_slug: Option<String>,
}

/// `GET /orgs/{slug}/projects`.
pub async fn list(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<Json<Value>, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Projects).await?;
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let rows = if state.bugs.contains(ScopedBug::ListAllMemberOrgs) {
        // Planted: "the caller's projects" instead of "this org's projects"; RLS agrees,
        // since the caller is a member of every org listed.
        tx.query(
            &format!(
                "SELECT {COLUMNS} FROM projects WHERE org_id IN \
                 (SELECT org_id FROM memberships WHERE user_id = $1) ORDER BY id"
            ),
            &[&ctx.caller.user_id],
        )
        .await?
    } else {
        tx.query(
            &format!("SELECT {COLUMNS} FROM projects WHERE org_id = $1 ORDER BY id"),
            &[&ctx.org.id],
        )
        .await?
    };
    tx.commit().await?;
    let items: Vec<Value> = rows.iter().map(project_json).collect();
    Ok(Json(json!({ "items": items })))
}

/// The org a planted mass assignment writes to: the body's `org_id` or `org_slug`.
async fn assigned_org(state: &ScopedState, body: &ProjectBody) -> Result<Option<i64>, ApiError> {
    let by_id = body.org_id.as_ref().and_then(|v| match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    });
    let admin = state.admin.get().await?;
    let row = match (by_id, body.org_slug.as_deref()) {
        (Some(id), _) => {
            admin
                .query_opt("SELECT id FROM orgs WHERE id = $1", &[&id])
                .await?
        }
        (None, Some(slug)) => {
            admin
                .query_opt("SELECT id FROM orgs WHERE slug = $1", &[&slug.trim()])
                .await?
        }
        (None, None) => None,
    };
    Ok(row.map(|r| r.get(0)))
}

/// `POST /orgs/{slug}/projects`.
pub async fn create(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
    JsonBody(body): JsonBody<ProjectBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let mut ctx = path.resolve(&state, caller, Area::Projects).await?;
    let name = required(&body.name, "name")?.to_string();
    if state.bugs.contains(ScopedBug::MassAssignment)
        && let Some(org) = assigned_org(&state, &body).await?
        && org != ctx.org.id
    {
        // Planted: the body's org wins over the path's, and the insert goes through
        // the privileged connection, which the membership policy would have refused.
        ctx.org.id = org;
        ctx.privileged = true;
    }
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let row = tx
        .query_one(
            &format!("INSERT INTO projects (org_id, name) VALUES ($1, $2) RETURNING {COLUMNS}"),
            &[&ctx.org.id, &name],
        )
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(project_json(&row))))
}

/// The `WHERE` of a lookup by id: in the scope's org, or (planted) by id alone, which
/// also needs the privileged connection since RLS would hide another org's row.
fn by_id(ctx: &mut Ctx, state: &ScopedState) -> &'static str {
    if state.bugs.contains(ScopedBug::CrossScopeId) {
        ctx.privileged = true;
        "id = $1 AND $2::bigint IS NOT NULL"
    } else {
        "id = $1 AND org_id = $2"
    }
}

/// `GET /orgs/{slug}/projects/{id}`.
pub async fn read(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<Json<Value>, ApiError> {
    let mut ctx = path.resolve(&state, caller, Area::Projects).await?;
    let id = path.id()?;
    let filter = by_id(&mut ctx, &state);
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM projects WHERE {filter}"),
            &[&id, &ctx.org.id],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(project_json(&row)))
}

/// `PATCH /orgs/{slug}/projects/{id}`: renames a project.
pub async fn rename(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
    JsonBody(body): JsonBody<ProjectBody>,
) -> Result<Json<Value>, ApiError> {
    let mut ctx = path.resolve(&state, caller, Area::Projects).await?;
    let id = path.id()?;
    let name = required(&body.name, "name")?.to_string();
    let filter = by_id(&mut ctx, &state);
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let row = tx
        .query_opt(
            &format!("UPDATE projects SET name = $3 WHERE {filter} RETURNING {COLUMNS}"),
            &[&id, &ctx.org.id, &name],
        )
        .await?
        .ok_or(ApiError::NotFound)?;
    tx.commit().await?;
    Ok(Json(project_json(&row)))
}

/// `DELETE /orgs/{slug}/projects/{id}`: the project and, by cascade, its invoices.
pub async fn remove(
    State(state): State<Arc<ScopedState>>,
    caller: Caller,
    path: ScopedPath,
) -> Result<StatusCode, ApiError> {
    let ctx = path.resolve(&state, caller, Area::Projects).await?;
    let id = path.id()?;
    let mut client = ctx.client(&state).await?;
    let tx = ctx.begin(&mut client).await?;
    let deleted = tx
        .execute(
            "DELETE FROM projects WHERE id = $1 AND org_id = $2",
            &[&id, &ctx.org.id],
        )
        .await?;
    tx.commit().await?;
    if deleted == 0 {
        return Err(ApiError::NotFound);
    }
    Ok(StatusCode::NO_CONTENT)
}
