//! The database layer of the correct app, checked as the app role with raw SQL: RLS is
//! enabled and forced everywhere, the app owns nothing and bypasses nothing, and the
//! tenant setting does not outlive its transaction.

use tenantgate_reference_api::schema::TENANT_TABLES;
use tenantgate_reference_api::{Bug, Bugs, prepare_database};
use tokio_postgres::{Client, GenericClient};

use crate::common::*;

/// `(table, rls enabled, rls forced, owner)` for every tenant table.
pub async fn catalog(sql: &Client) -> Vec<(String, bool, bool, String)> {
    sql.query(
        "SELECT relname::text, relrowsecurity, relforcerowsecurity, pg_get_userbyid(relowner)::text \
         FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relname = ANY($1) \
         ORDER BY relname",
        &[&TENANT_TABLES.to_vec()],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// Rows of `table` the session can see.
pub async fn visible(sql: &impl GenericClient, table: &str) -> i64 {
    sql.query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn the_app_role_sees_nothing_without_a_tenant() {
    let env = env("db_clean", "").await;
    let (a, _, _, _) = env.two_orgs().await;

    let admin = env.admin_sql().await;
    let tables = catalog(&admin).await;
    assert_eq!(tables.len(), TENANT_TABLES.len());
    for (table, enabled, forced, owner) in tables {
        assert!(
            enabled && forced,
            "{table}: RLS enabled={enabled} forced={forced}"
        );
        assert_eq!(owner, "db_clean_owner", "{table}");
    }

    let mut app = env.app_sql().await;
    let row = app
        .query_one(
            "SELECT rolsuper, rolbypassrls, \
             pg_has_role(current_user, 'db_clean_maintenance', 'MEMBER') \
             FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((row.get(0), row.get(1), row.get(2)), (false, false, false));
    for table in TENANT_TABLES {
        assert_eq!(visible(&app, table).await, 0, "{table} without a tenant");
    }

    // With A's setting: only A's rows, and the setting dies with the transaction.
    let tx = app.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('app.current_org_id', $1, true)",
        &[&a.id],
    )
    .await
    .unwrap();
    assert_eq!(visible(&tx, "orgs").await, 1);
    assert_eq!(visible(&tx, "brands").await, 1);
    let foreign: i64 = tx
        .query_one(
            "SELECT count(*) FROM brands WHERE org_id::text <> $1",
            &[&a.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(foreign, 0);
    tx.commit().await.unwrap();
    let after: String = app
        .query_one(
            "SELECT coalesce(current_setting('app.current_org_id', true), '')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(after, "", "the setting leaked past commit");
    assert_eq!(visible(&app, "brands").await, 0);

    // No TRUNCATE anywhere; the audit log cannot be rewritten.
    for stmt in [
        "TRUNCATE brands",
        "UPDATE audit_log SET detail = 'x'",
        "DELETE FROM audit_log",
        "CREATE TABLE sneaky (id int)",
        "SET ROLE db_clean_maintenance",
    ] {
        let err = app.batch_execute(stmt).await.expect_err(stmt);
        assert!(
            err.code().is_some(),
            "{stmt}: expected a permission error, got {err:?}"
        );
    }
}

#[tokio::test]
async fn prepare_database_converges_to_the_requested_bugs() {
    let env = env("db_converge", "").await;
    let url = &env.launched.admin_url;
    let database_bugs: Bugs = Bug::ALL
        .into_iter()
        .filter(|b| b.layer() == tenantgate_reference_api::bugs::Layer::Database)
        .chain([Bug::MentionsRlsOff, Bug::AttestationOverclaims])
        .collect();
    prepare_database(url, "db_converge", &database_bugs)
        .await
        .unwrap();
    let admin = env.admin_sql().await;
    let broken = catalog(&admin).await;
    assert!(broken.iter().any(|t| t.0 == "mentions" && !t.1));
    assert!(
        broken
            .iter()
            .any(|t| t.0 == "subscribers" && !t.2 && t.3 == "db_converge_app")
    );
    assert!(
        broken
            .iter()
            .any(|t| t.0 == "ghost_presence_configs" && t.1 && !t.2)
    );
    assert_eq!(audit_privileges(&admin).await, (true, true));

    let role = prepare_database(url, "db_converge", &Bugs::none())
        .await
        .unwrap();
    for (table, enabled, forced, owner) in catalog(&admin).await {
        assert!(enabled && forced && owner == "db_converge_owner", "{table}");
    }
    let app = connect(&role.app_url).await;
    let member: bool = app
        .query_one(
            "SELECT pg_has_role(current_user, 'db_converge_maintenance', 'MEMBER')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!member);
    assert_eq!(audit_privileges(&admin).await, (false, false));
    let policies: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_policies WHERE policyname = 'tenant_isolation' \
             AND qual NOT LIKE '%current_setting%IS NULL%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(policies, TENANT_TABLES.len() as i64);
}

/// Whether `db_converge_app` holds `(UPDATE, DELETE)` on `audit_log`.
async fn audit_privileges(admin: &Client) -> (bool, bool) {
    let row = admin
        .query_one(
            "SELECT has_table_privilege('db_converge_app', 'audit_log', 'UPDATE'), \
             has_table_privilege('db_converge_app', 'audit_log', 'DELETE')",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}
