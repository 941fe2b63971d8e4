//! Each planted bug of the path-scoped target, alone, makes its attack succeed; the
//! database-only bug leaves HTTP answers correct and shows only to SQL as the app role.

use reqwest::Method;
use serde_json::json;

use crate::scoped::*;

#[tokio::test]
async fn guessable_session() {
    let env = scoped("scb_guessable", "guessable-session").await;
    let (a, _, b, _) = env.two_tenants().await;
    let b_sid: i64 = b.sid.parse().expect("a serial number");
    let forged = (b_sid - 1).to_string();
    assert_eq!(forged, a.sid);
    let me = env.get("/me", Who::Sid(&forged)).await;
    assert_eq!(int_at(&me.body, "/user/id"), a.user_id, "{me:?}");
    let r = env.get("/orgs/org-a/invoices", Who::Sid(&forged)).await;
    assert!(items_text(&r).contains("marker-a"));
}

#[tokio::test]
async fn weak_session_entropy() {
    let env = scoped("scb_weak", "weak-session-entropy").await;
    let (a, _, b, _) = env.two_tenants().await;
    for sid in [&a.sid, &b.sid] {
        assert_eq!(sid.len(), 8, "32 bits: {sid}");
    }
    assert_eq!(env.get("/me", Who::Sid(&a.sid)).await.status, 200);
}

#[tokio::test]
async fn logout_keeps_session() {
    let env = scoped("scb_logout", "logout-keeps-session").await;
    let (_, _, b, _) = env.two_tenants().await;
    let r = env
        .call(Method::POST, "/auth/logout", Who::Sid(&b.sid), None, &[])
        .await;
    assert_eq!(r.status, 204);
    assert!(
        r.set_cookie.unwrap().contains("Max-Age=0"),
        "the cookie is cleared"
    );
    assert_eq!(env.get("/me", Who::Sid(&b.sid)).await.status, 200);
}

#[tokio::test]
async fn api_key_any_org() {
    let env = scoped("scb_key", "api-key-any-org").await;
    let (_, sa, b, _) = env.two_tenants().await;
    let b_key = env.api_key(&b).await;
    let r = env.get("/orgs/org-a/projects", Who::Key(&b_key)).await;
    assert!(items_text(&r).contains("marker-a"));
    let r = env
        .get(
            &format!("/orgs/org-a/invoices/{}", sa.invoice),
            Who::Key(&b_key),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Only keys: B's session is still kept out of A.
    assert_not_found(
        &env.get("/orgs/org-a/projects", Who::Sid(&b.sid)).await,
        "session",
    );
}

#[tokio::test]
async fn slug_header_override() {
    let env = scoped("scb_override", "slug-header-override").await;
    let (_, sa, b, _) = env.two_tenants().await;
    let r = env
        .call(
            Method::GET,
            "/orgs/org-b/projects",
            Who::Sid(&b.sid),
            None,
            &[("X-Org", "org-a")],
        )
        .await;
    assert!(items_text(&r).contains("marker-a"));
    let r = env
        .get(
            &format!("/orgs/org-b/invoices/{}?org=org-a", sa.invoice),
            Who::Sid(&b.sid),
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    // Without a hint, and with B in A's path, the app is still correct.
    assert!(
        !items_text(&env.get("/orgs/org-b/projects", Who::Sid(&b.sid)).await).contains("marker-a")
    );
    assert_not_found(
        &env.get("/orgs/org-a/projects", Who::Sid(&b.sid)).await,
        "path",
    );
}

#[tokio::test]
async fn member_check_missing() {
    let env = scoped("scb_member", "member-check-missing").await;
    let (a, sa, b, _) = env.two_tenants().await;
    let r = env.get("/orgs/org-a/invoices", Who::Sid(&b.sid)).await;
    assert!(items_text(&r).contains("marker-a"));
    let path = format!("/orgs/org-a/invoices/{}", sa.invoice);
    let r = env
        .patch(&path, Who::Sid(&b.sid), json!({"status": "void"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        env.get(&path, Who::Sid(&a.sid)).await.body["status"],
        "void"
    );
    // Projects still check membership; an unknown slug is still 404.
    assert_not_found(
        &env.get("/orgs/org-a/projects", Who::Sid(&b.sid)).await,
        "projects",
    );
    assert_not_found(
        &env.get(
            &format!("/orgs/{NEVER_ISSUED_SLUG}/invoices"),
            Who::Sid(&b.sid),
        )
        .await,
        "never issued",
    );
}

#[tokio::test]
async fn integer_id_oracle() {
    let env = scoped("scb_oracle", "integer-id-oracle").await;
    let (_, sa, b, _) = env.two_tenants().await;
    let r = env
        .get(
            &format!("/orgs/org-b/invoices/{}", sa.invoice),
            Who::Sid(&b.sid),
        )
        .await;
    assert_eq!(
        (r.status, r.raw.as_str()),
        (403, r#"{"error":"forbidden"}"#)
    );
    let never = env
        .get(
            &format!("/orgs/org-b/invoices/{NEVER_ISSUED_ID}"),
            Who::Sid(&b.sid),
        )
        .await;
    assert_not_found(&never, "never issued");
}

#[tokio::test]
async fn mass_assignment() {
    let env = scoped("scb_mass", "mass-assignment").await;
    let (a, _, b, _) = env.two_tenants().await;
    for body in [
        json!({"name": "planted by b 1", "org_id": a.org_id}),
        json!({"name": "planted by b 2", "org_slug": a.slug}),
    ] {
        let r = env
            .post("/orgs/org-b/projects", Who::Sid(&b.sid), body)
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(int_at(&r.body, "/org_id"), a.org_id);
    }
    let a_list = items_text(&env.get("/orgs/org-a/projects", Who::Sid(&a.sid)).await);
    assert!(a_list.contains("planted by b 1") && a_list.contains("planted by b 2"));
    let b_list = items_text(&env.get("/orgs/org-b/projects", Who::Sid(&b.sid)).await);
    assert!(!b_list.contains("planted by b"));
}

#[tokio::test]
async fn cross_scope_id() {
    let env = scoped("scb_cross", "cross-scope-id").await;
    let (a, sa, b, _) = env.two_tenants().await;
    let path = format!("/orgs/org-b/projects/{}", sa.project);
    let r = env.get(&path, Who::Sid(&b.sid)).await;
    assert!(r.raw.contains("marker-a"), "{r:?}");
    let r = env
        .patch(&path, Who::Sid(&b.sid), json!({"name": "renamed by b"}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    let own = env
        .get(
            &format!("/orgs/org-a/projects/{}", sa.project),
            Who::Sid(&a.sid),
        )
        .await;
    assert_eq!(own.body["name"], "renamed by b");
    // B in A's scope is still refused: the scope check is intact.
    assert_not_found(
        &env.get("/orgs/org-a/projects", Who::Sid(&b.sid)).await,
        "scope",
    );
}

#[tokio::test]
async fn membership_policy_typo() {
    let env = scoped("scb_typo", "membership-policy-typo").await;
    let (a, sa, b, _) = env.two_tenants().await;
    // HTTP answers exactly as the correct app's.
    assert_not_found(
        &env.get("/orgs/org-a/projects", Who::Sid(&b.sid)).await,
        "scope",
    );
    assert_not_found(
        &env.get(
            &format!("/orgs/org-b/projects/{}", sa.project),
            Who::Sid(&b.sid),
        )
        .await,
        "id",
    );
    assert!(
        !items_text(&env.get("/orgs/org-b/invoices", Who::Sid(&b.sid)).await).contains("marker-a")
    );
    // SQL as the app role, acting as B's user: every org's rows are visible.
    let mut app = env.app_sql().await;
    for table in ["projects", "invoices", "api_keys"] {
        let n = visible_as(&mut app, b.user_id, table, a.org_id).await;
        if table == "api_keys" {
            assert_eq!(n, 0, "A has no keys");
        } else {
            assert!(n > 0, "{table}: B's user sees none of A's rows");
        }
    }
    // Orgs and memberships are keyed differently and stay correct.
    assert_eq!(visible_as(&mut app, b.user_id, "orgs", a.org_id).await, 0);
    assert_eq!(
        visible_as(&mut app, b.user_id, "memberships", a.org_id).await,
        0
    );
    // A user with no membership at all still sees nothing.
    assert_eq!(visible_as(&mut app, 0, "projects", a.org_id).await, 0);
}

#[tokio::test]
async fn slug_existence_oracle() {
    let env = scoped("scb_slug_oracle", "slug-existence-oracle").await;
    let (_, _, b, _) = env.two_tenants().await;
    let r = env.get("/orgs/org-a/projects", Who::Sid(&b.sid)).await;
    assert_eq!(
        (r.status, r.raw.as_str()),
        (403, r#"{"error":"forbidden"}"#)
    );
    let never = env
        .get(
            &format!("/orgs/{NEVER_ISSUED_SLUG}/projects"),
            Who::Sid(&b.sid),
        )
        .await;
    assert_not_found(&never, "never issued");
}

#[tokio::test]
async fn list_all_member_orgs() {
    let env = scoped("scb_member_orgs", "list-all-member-orgs").await;
    let (a, _, b, _) = env.two_tenants().await;
    // B alone is in one org: its list is right.
    let own = items_text(&env.get("/orgs/org-b/projects", Who::Sid(&b.sid)).await);
    assert!(!own.contains("marker-a"));
    // A user in both orgs sees A's projects in B's scope.
    let m = env.tenant("org-m").await;
    for t in [&a, &b] {
        let r = env
            .post(
                &format!("/orgs/{}/members", t.slug),
                Who::Sid(&t.sid),
                json!({"email": m.email}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let in_b = items_text(&env.get("/orgs/org-b/projects", Who::Sid(&m.sid)).await);
    assert!(
        in_b.contains("marker-a") && in_b.contains("marker-b"),
        "{in_b}"
    );
}
