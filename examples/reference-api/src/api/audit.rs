//! The audit log: appended by every write, readable by the org it belongs to, and never
//! rewritten (the app role holds only SELECT and INSERT on it).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

use super::{ApiError, AppState, Caller};
use crate::bugs::Bug;
use crate::db::{begin_tenant, rfc3339};

/// One audit entry as the API shows it.
#[derive(Serialize)]
struct Entry {
    id: i64,
    org_id: Uuid,
    actor: Option<Uuid>,
    action: String,
    detail: String,
    created_at: String,
}

impl Entry {
    fn from_row(row: &Row) -> Entry {
        Entry {
            id: row.get(0),
            org_id: row.get(1),
            actor: row.get(2),
            action: row.get(3),
            detail: row.get(4),
            created_at: row.get(5),
        }
    }
}

const SELECT: &str = concat!(
    "SELECT id, org_id, actor, action, detail, ",
    rfc3339!("created_at"),
    " FROM audit_log"
);

/// Appends an entry inside the caller's transaction, so the entry and the change it
/// describes commit or vanish together.
pub(crate) async fn record(
    tx: &impl GenericClient,
    org: Uuid,
    actor: Uuid,
    action: &str,
    detail: &str,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        "INSERT INTO audit_log (org_id, actor, action, detail) VALUES ($1, $2, $3, $4)",
        &[&org, &actor, &action, &detail],
    )
    .await
    .map(drop)
}

/// `GET /audit-log`: the caller's org's entries, oldest first.
pub async fn list(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let rows = if state.bugs.contains(Bug::AuditPrivileged) {
        // Planted: the superuser connection bypasses RLS and nothing filters by org.
        let client = state.admin.get().await?;
        client.query(&format!("{SELECT} ORDER BY id"), &[]).await?
    } else {
        let mut client = state.app.get().await?;
        let tx = begin_tenant(&mut client, caller.org_id).await?;
        let rows = tx
            .query(
                &format!("{SELECT} WHERE org_id = $1 ORDER BY id"),
                &[&caller.org_id],
            )
            .await?;
        tx.commit().await?;
        rows
    };
    let items: Vec<Entry> = rows.iter().map(Entry::from_row).collect();
    Ok(Json(json!({ "items": items })))
}
