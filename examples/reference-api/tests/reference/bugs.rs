//! Each planted bug, alone, produces its symptom. HTTP bugs show in answers; database
//! bugs leave HTTP answers correct and show only to SQL as the app role.

use reqwest::Method;
use serde_json::json;

use crate::common::*;
use crate::database::{catalog, visible};
use crate::features::{ROUNDS, audit_rewrites, sha256_hex};

#[tokio::test]
async fn tenant_from_header() {
    let env = env("bug_header", "tenant-from-header").await;
    let (a, sa, b, _) = env.two_orgs().await;
    let r = env
        .call(
            Method::GET,
            "/brands",
            Some(&b.token),
            None,
            &[("X-Org-Id", &a.id)],
        )
        .await;
    assert!(items_text(&r).contains("marker-a"), "{r:?}");
    let r = env
        .call(
            Method::GET,
            &format!("/brands/{}", sa.brand),
            Some(&b.token),
            None,
            &[("X-Org-Id", &a.id)],
        )
        .await;
    assert_eq!(r.status, 200);
    // Other headers are still ignored.
    let r = env
        .call(
            Method::GET,
            "/brands",
            Some(&b.token),
            None,
            &[("X-Tenant-Id", &a.id)],
        )
        .await;
    assert!(!items_text(&r).contains("marker-a"));
}

#[tokio::test]
async fn forbidden_not_404() {
    let env = env("bug_forbidden", "forbidden-not-404").await;
    let (_, sa, b, _) = env.two_orgs().await;
    let r = env.get(&format!("/brands/{}", sa.brand), &b.token).await;
    assert_eq!(
        (r.status, r.raw.as_str()),
        (403, r#"{"error":"forbidden"}"#)
    );
    let missing = env
        .get("/brands/00000000-0000-4000-8000-000000000000", &b.token)
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn mentions_rls_off() {
    let env = env("bug_mentions", "mentions-rls-off").await;
    let (_, sa, b, _) = env.two_orgs().await;
    assert!(items_text(&env.get("/monitoring/mentions", &b.token).await).contains("marker-a"));
    let mentions = catalog(&env.admin_sql().await)
        .await
        .into_iter()
        .find(|t| t.0 == "mentions")
        .unwrap();
    assert!(!mentions.1, "RLS should be disabled on mentions");
    // The read-by-id still filters.
    let r = env
        .get(&format!("/monitoring/mentions/{}", sa.mention), &b.token)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn write_bypasses_rls() {
    let env = env("bug_write", "write-bypasses-rls").await;
    let (a, sa, b, _) = env.two_orgs().await;
    let config = format!("/ghost-presence/{}/config", sa.brand);
    let r = env
        .patch(&config, &b.token, json!({"keywords": ["pwned"]}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        env.get(&config, &a.token).await.body["keywords"],
        json!(["pwned"])
    );
    assert_eq!(
        env.get(&config, &b.token).await.status,
        404,
        "GET stays correct"
    );
}

#[tokio::test]
async fn alg_none_accepted() {
    let env = env("bug_alg_none", "alg-none").await;
    let (a, _, _, _) = env.two_orgs().await;
    let r = env
        .get("/brands", &alg_none(&claims_for(&a, now() + 600)))
        .await;
    assert!(items_text(&r).contains("marker-a"));
    let r = env
        .get("/brands", &sign("random-key", &claims_for(&a, now() + 600)))
        .await;
    assert_eq!(r.status, 401, "other forgeries still fail");
}

#[tokio::test]
async fn signature_not_verified_accepted() {
    let env = env("bug_signature", "signature-not-verified").await;
    let (a, _, b, _) = env.two_orgs().await;
    let as_a = claims_for(&a, now() + 600);
    assert!(items_text(&env.get("/brands", &tampered(&b.token, &as_a)).await).contains("marker-a"));
    assert!(items_text(&env.get("/brands", &sign("random-key", &as_a)).await).contains("marker-a"));
    let expired = sign("random-key", &claims_for(&a, now() - 3600));
    assert_eq!(
        env.get("/brands", &expired).await.status,
        401,
        "exp still checked"
    );
}

#[tokio::test]
async fn expired_accepted() {
    let env = env("bug_expired", "expired-accepted").await;
    let (a, _, _, _) = env.two_orgs().await;
    let expired = env.sign(&claims_for(&a, now() - 3600));
    assert!(items_text(&env.get("/brands", &expired).await).contains("marker-a"));
    let wrong_key = sign("random-key", &claims_for(&a, now() - 3600));
    assert_eq!(
        env.get("/brands", &wrong_key).await.status,
        401,
        "signature still checked"
    );
}

#[tokio::test]
async fn audit_privileged() {
    let env = env("bug_audit", "audit-privileged").await;
    let (_, _, b, _) = env.two_orgs().await;
    assert!(items_text(&env.get("/audit-log", &b.token).await).contains("marker-a"));
}

/// Database-only bugs: B's HTTP view of A is still empty (also A's API keys and the
/// attestation).
async fn http_still_isolated(env: &Env) -> (Org, Seeded) {
    let (a, sa, b, _) = env.two_orgs().await;
    for list in [
        "/brands",
        "/monitoring/mentions",
        "/subscribers",
        "/audit-log",
        "/api-keys",
    ] {
        assert!(
            !items_text(&env.get(list, &b.token).await).contains("marker-a"),
            "{list}"
        );
    }
    let r = env.get("/.well-known/tenant-isolation", &b.token).await;
    assert!(r.status == 200 && !r.raw.contains(&a.id), "{r:?}");
    let r = env
        .get(&format!("/subscribers/{}", sa.subscriber), &b.token)
        .await;
    assert_eq!(r.status, 404);
    (a, sa)
}

#[tokio::test]
async fn subscribers_not_forced() {
    let env = env("bug_notforced", "subscribers-not-forced").await;
    http_still_isolated(&env).await;
    let app = env.app_sql().await;
    assert_eq!(visible(&app, "subscribers").await, 2, "the owner skips RLS");
    assert_eq!(visible(&app, "brands").await, 0);
    let subscribers = catalog(&env.admin_sql().await)
        .await
        .into_iter()
        .find(|t| t.0 == "subscribers")
        .unwrap();
    assert_eq!(
        (subscribers.1, subscribers.2, subscribers.3.as_str()),
        (true, false, "bug_notforced_app")
    );
}

#[tokio::test]
async fn fail_open_policy() {
    let env = env("bug_failopen", "fail-open-policy").await;
    http_still_isolated(&env).await;
    let app = env.app_sql().await;
    assert_eq!(
        visible(&app, "brands").await,
        2,
        "no setting = every tenant"
    );
    assert_eq!(visible(&app, "mentions").await, 0);
}

#[tokio::test]
async fn app_role_bypassrls() {
    let env = env("bug_bypass", "app-role-bypassrls").await;
    http_still_isolated(&env).await;
    let app = env.app_sql().await;
    assert_eq!(visible(&app, "brands").await, 0);
    app.batch_execute("SET ROLE bug_bypass_maintenance")
        .await
        .unwrap();
    assert_eq!(
        visible(&app, "brands").await,
        2,
        "BYPASSRLS through membership"
    );
}

#[tokio::test]
async fn pool_session_leak() {
    let env = env("bug_pool", "pool-session-leak").await;
    let (a, _, b, _) = env.two_orgs().await;
    // Every round: A's authenticated request, then at once the anonymous one on the
    // connection A just gave back.
    for round in 0..ROUNDS {
        assert_eq!(env.get("/brands", &a.token).await.status, 200);
        let r = env.anon(Method::GET, "/public/featured-brands").await;
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.raw.contains("marker-a"), "round {round}: {r:?}");
        assert!(
            r.raw.contains(&a.id) && !r.raw.contains(&b.id),
            "round {round}"
        );
    }
    // After B, B's brands show instead: it is whoever came last.
    assert_eq!(env.get("/brands", &b.token).await.status, 200);
    let r = env.anon(Method::GET, "/public/featured-brands").await;
    assert!(
        r.raw.contains("marker-b") && !r.raw.contains("marker-a"),
        "{r:?}"
    );
    // Authenticated answers stay correct: each request sets its own tenant first.
    assert!(!items_text(&env.get("/brands", &b.token).await).contains("marker-a"));
}

#[tokio::test]
async fn cannot_delete() {
    let env = env("bug_nodelete", "cannot-delete").await;
    let (a, sa, _, _) = env.two_orgs().await;
    let r = env.delete(&format!("/orgs/{}", a.id), &a.token).await;
    assert_eq!(
        (r.status, r.raw.as_str()),
        (405, r#"{"error":"method_not_allowed"}"#)
    );
    assert_eq!(env.get("/me", &a.token).await.status, 200, "the org stays");
    // What has its own delete route still goes: a subscriber, a brand (its config and
    // mentions cascade).
    let subscriber = format!("/subscribers/{}", sa.subscriber);
    assert_eq!(env.delete(&subscriber, &a.token).await.status, 204);
    assert_eq!(env.get(&subscriber, &a.token).await.status, 404);
    let brand = format!("/brands/{}", sa.brand);
    assert_eq!(env.delete(&brand, &a.token).await.status, 204);
    // Nothing of A went away in the database.
    let sql = env.admin_sql().await;
    let orgs: i64 = sql
        .query_one(
            "SELECT count(*) FROM orgs WHERE id = $1::text::uuid",
            &[&a.id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orgs, 1);
    let audit: i64 = sql
        .query_one(
            "SELECT count(*) FROM audit_log WHERE org_id = $1::text::uuid",
            &[&a.id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(audit >= 5, "the audit rows stay too: {audit}");
}

/// Creates a key for A and returns it with its stored form; the key works as A.
async fn stored_key(env: &Env, a: &Org) -> (String, String) {
    let (_, key) = env.api_key(a, "ci").await;
    assert!(items_text(&env.with_key(Method::GET, "/brands", &key).await).contains("marker-a"));
    let listed = env.get("/api-keys", &a.token).await;
    assert!(
        !listed.raw.contains(&key),
        "answers are unchanged: {listed:?}"
    );
    let stored: String = env
        .admin_sql()
        .await
        .query_one("SELECT key_hash FROM api_keys", &[])
        .await
        .unwrap()
        .get(0);
    (key, stored)
}

#[tokio::test]
async fn api_key_plaintext() {
    let env = env("bug_key_plain", "api-key-plaintext").await;
    let (a, _) = http_still_isolated(&env).await;
    let (key, stored) = stored_key(&env, &a).await;
    assert_eq!(stored, key, "stored as the key itself");
    // Readable by the app role in A's tenant: what a probe as A would find.
    let mut app = env.app_sql().await;
    let tx = app.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('app.current_org_id', $1, true)",
        &[&a.id],
    )
    .await
    .unwrap();
    let found: i64 = tx
        .query_one("SELECT count(*) FROM api_keys WHERE key_hash = $1", &[&key])
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, 1);
}

#[tokio::test]
async fn api_key_unsalted() {
    let env = env("bug_key_sha", "api-key-unsalted").await;
    let (a, _) = http_still_isolated(&env).await;
    let (key, stored) = stored_key(&env, &a).await;
    assert_eq!(stored, sha256_hex(&key), "an unsalted SHA-256 hex digest");
}

#[tokio::test]
async fn audit_updatable() {
    let env = env("bug_audit_upd", "audit-updatable").await;
    let (a, _) = http_still_isolated(&env).await;
    assert_eq!(audit_rewrites(&env, &a).await, (true, true));
    // RLS still keeps the rewrite to A's own rows.
    let mut app = env.app_sql().await;
    let tx = app.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('app.current_org_id', $1, true)",
        &[&a.id],
    )
    .await
    .unwrap();
    let n = tx
        .execute(
            "UPDATE audit_log SET detail = 'x' WHERE org_id <> $1::text::uuid",
            &[&a.id],
        )
        .await
        .unwrap();
    assert_eq!(n, 0);
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn attestation_overclaims() {
    let env = env("bug_overclaim", "attestation-overclaims").await;
    let (a, _) = http_still_isolated(&env).await;
    let r = env.get("/.well-known/tenant-isolation", &a.token).await;
    let claimed = r.body["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "ghost_presence_configs")
        .unwrap()
        .clone();
    assert_eq!(claimed["rls_forced"], true, "{claimed}");
    let measured = catalog(&env.admin_sql().await)
        .await
        .into_iter()
        .find(|t| t.0 == "ghost_presence_configs")
        .unwrap();
    assert_eq!(
        (measured.1, measured.2),
        (true, false),
        "enabled, not forced"
    );
    assert_eq!(
        r.body["summary"]["rls_forced"], 8,
        "the summary overclaims too"
    );
}

#[tokio::test]
async fn attestation_leaks_rows() {
    let env = env("bug_attest_rows", "attestation-leaks-rows").await;
    let (a, _, b, _) = env.two_orgs().await;
    let r = env.get("/.well-known/tenant-isolation", &b.token).await;
    assert_eq!(r.status, 200);
    assert!(r.raw.contains("marker-a") && r.raw.contains(&a.id), "{r:?}");
    // The flags themselves stay honest.
    assert_eq!(r.body["summary"]["rls_forced"], 8);
}
