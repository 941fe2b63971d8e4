//! The isolation attestation: `GET /.well-known/tenant-isolation`, a machine-readable
//! account of how this deployment isolates tenants, for a customer's security team.
//!
//! Honest by construction: every flag is read live from the catalogs (`pg_class`,
//! `pg_policy`, `pg_roles`) by the app role itself, inside the caller's tenant
//! transaction, and the only data figures are counts of the *caller's own* rows. It
//! never names another tenant, holds no row contents and no cross-tenant totals (a
//! global count would let one customer watch another's activity).
//!
//! Two planted bugs break that: `attestation-overclaims` answers from a static list
//! ("enabled and forced everywhere") while the migration left one table without FORCE,
//! and `attestation-leaks-rows` adds the latest audit entries of every org.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use tokio_postgres::GenericClient;

use super::{ApiError, AppState, Caller};
use crate::bugs::Bug;
use crate::db::{begin_tenant, rfc3339};
use crate::schema::TENANT_TABLES;

/// How many foreign audit entries the planted `attestation-leaks-rows` shows.
const LEAKED_ENTRIES: i64 = 5;

/// `GET /.well-known/tenant-isolation`.
pub async fn report(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let mut client = state.app.get().await?;
    let tx = begin_tenant(&mut client, caller.org_id).await?;
    let mut tables = Vec::new();
    let catalog = live_tables(&tx).await?;
    for (table, enabled, forced, policies) in catalog {
        let key = if table == "orgs" { "id" } else { "org_id" };
        let rows: i64 = tx
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE {key} = $1"),
                &[&caller.org_id],
            )
            .await?
            .get(0);
        let (enabled, forced, policies) = if state.bugs.contains(Bug::AttestationOverclaims) {
            // Planted: the static claim of the security page, not the catalog.
            (true, true, 1)
        } else {
            (enabled, forced, policies)
        };
        tables.push(json!({
            "schema": "public",
            "table": table,
            "rls_enabled": enabled,
            "rls_forced": forced,
            "policies": policies,
            "caller_rows": rows,
        }));
    }
    let role = tx
        .query_one(
            "SELECT current_user::text, r.rolsuper, r.rolbypassrls, \
             EXISTS (SELECT 1 FROM pg_roles m WHERE m.rolbypassrls AND m.oid <> r.oid \
                     AND pg_has_role(r.oid, m.oid, 'MEMBER')) \
             FROM pg_roles r WHERE r.rolname = current_user",
            &[],
        )
        .await?;
    tx.commit().await?;
    let count = |flag: &str| tables.iter().filter(|t| t[flag] == true).count();
    let mut answer = json!({
        "version": 1,
        "tenant": { "org_id": caller.org_id },
        "enforcement": {
            "tenant_from": "verified token or API key",
            "tenant_setting": "app.current_org_id",
            "setting_scope": "transaction",
            "cross_tenant_answer": 404,
        },
        "app_role": {
            "name": role.get::<_, String>(0),
            "superuser": role.get::<_, bool>(1),
            "bypassrls": role.get::<_, bool>(2),
            "member_of_bypassrls_role": role.get::<_, bool>(3),
        },
        "summary": {
            "tenant_tables": tables.len(),
            "rls_enabled": count("rls_enabled"),
            "rls_forced": count("rls_forced"),
        },
        "tables": tables,
    });
    if state.bugs.contains(Bug::AttestationLeaksRows) {
        answer["recent_activity"] = json!(recent_activity_of_everyone(&state).await?);
    }
    Ok(Json(answer))
}

/// `(table, rls enabled, rls forced, policy count)` of every tenant table, from the
/// catalogs, in [`TENANT_TABLES`] order.
async fn live_tables(
    tx: &impl GenericClient,
) -> Result<Vec<(String, bool, bool, i64)>, tokio_postgres::Error> {
    let rows = tx
        .query(
            "SELECT c.relname::text, c.relrowsecurity, c.relforcerowsecurity, \
             (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
             FROM unnest($1::text[]) WITH ORDINALITY AS t(name, n) \
             JOIN pg_class c ON c.relname = t.name \
              AND c.relnamespace = 'public'::regnamespace \
             ORDER BY t.n",
            &[&TENANT_TABLES.to_vec()],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// Planted `attestation-leaks-rows`: the newest audit entries of every org, through the
/// privileged connection.
async fn recent_activity_of_everyone(state: &AppState) -> Result<Vec<Value>, ApiError> {
    let admin = state.admin.get().await?;
    let rows = admin
        .query(
            concat!(
                "SELECT org_id, action, detail, ",
                rfc3339!("created_at"),
                " FROM audit_log ORDER BY id DESC LIMIT $1"
            ),
            &[&LEAKED_ENTRIES],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            json!({
                "org_id": r.get::<_, uuid::Uuid>(0),
                "action": r.get::<_, String>(1),
                "detail": r.get::<_, String>(2),
                "created_at": r.get::<_, String>(3),
            })
        })
        .collect())
}
