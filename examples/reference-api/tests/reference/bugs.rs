//! Each planted bug, alone, produces its symptom. HTTP bugs show in answers; database
//! bugs leave HTTP answers correct and show only to SQL as the app role.

use reqwest::Method;
use serde_json::json;

use crate::common::*;
use crate::database::{catalog, visible};

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

/// Database-only bugs: B's HTTP view of A is still empty.
async fn http_still_isolated(env: &Env) -> (Org, Seeded) {
    let (a, sa, b, _) = env.two_orgs().await;
    for list in [
        "/brands",
        "/monitoring/mentions",
        "/subscribers",
        "/audit-log",
    ] {
        assert!(
            !items_text(&env.get(list, &b.token).await).contains("marker-a"),
            "{list}"
        );
    }
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
