//! The correct app (no bugs): everything tenantgate's suite asserts must hold.

use reqwest::Method;
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn b_can_neither_read_nor_write_a_data() {
    let env = env("clean_cross", "").await;
    let (a, sa, b, _) = env.two_orgs().await;

    for path in [
        format!("/brands/{}", sa.brand),
        format!("/ghost-presence/{}/config", sa.brand),
        format!("/monitoring/mentions/{}", sa.mention),
        format!("/subscribers/{}", sa.subscriber),
    ] {
        let r = env.get(&path, &b.token).await;
        assert_eq!(r.status, 404, "{path}: {r:?}");
        assert_eq!(r.raw, r#"{"error":"not_found"}"#);
        assert_eq!(env.get(&path, &a.token).await.status, 200, "{path}");
    }
    for list in [
        "/brands",
        "/monitoring/mentions",
        "/subscribers",
        "/audit-log",
    ] {
        let text = items_text(&env.get(list, &b.token).await);
        assert!(!text.contains("marker-a"), "{list} leaks A: {text}");
        assert!(!text.contains(&a.id), "{list} leaks A's org id: {text}");
        assert!(
            text.contains("marker-b"),
            "{list} misses B's own rows: {text}"
        );
    }

    // Writes as B on A's resources: 404 and nothing changes.
    let config = format!("/ghost-presence/{}/config", sa.brand);
    let before = env.get(&config, &a.token).await.body;
    let r = env
        .patch(
            &config,
            &b.token,
            json!({"enabled": false, "keywords": ["pwned"]}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(env.get(&config, &a.token).await.body, before);
    let brand = format!("/brands/{}", sa.brand);
    assert_eq!(
        env.patch(&brand, &b.token, json!({"name": "pwned"}))
            .await
            .status,
        404
    );
    assert_eq!(env.delete(&brand, &b.token).await.status, 404);
    let subscriber = format!("/subscribers/{}", sa.subscriber);
    assert_eq!(env.delete(&subscriber, &b.token).await.status, 404);
    // Children of A's brand cannot be created by B either.
    let r = env
        .post(
            "/monitoring/mentions",
            &b.token,
            json!({"brand_id": sa.brand, "text": "x"}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    let r = env
        .post(
            "/subscribers",
            &b.token,
            json!({"brand_id": sa.brand, "email": "x@y.test"}),
        )
        .await;
    assert_eq!(r.status, 404, "{r:?}");
    assert_eq!(
        env.get(&brand, &a.token).await.body["name"],
        "brand marker-a"
    );
    assert_eq!(env.get(&subscriber, &a.token).await.status, 200);

    // A's own writes work and are audited by name.
    let r = env
        .patch(&config, &a.token, json!({"keywords": ["k1", "k2"]}))
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["keywords"], json!(["k1", "k2"]));
    assert_eq!(r.body["enabled"], true);
    assert_eq!(
        env.patch(&brand, &a.token, json!({"name": "renamed"}))
            .await
            .status,
        200
    );
    assert_eq!(env.delete(&subscriber, &a.token).await.status, 204);
    let audit = items_text(&env.get("/audit-log", &a.token).await);
    for detail in [
        r#"org \"OrgA\" created"#,
        r#"brand \"brand marker-a\" created"#,
        r#"mention \"mention marker-a\" on brand"#,
        r#"subscriber \"marker-a@subscriber.test\" of brand"#,
        r#"ghost-presence config of brand \"brand marker-a\" updated"#,
        r#"brand \"brand marker-a\" renamed to \"renamed\""#,
        r#"subscriber \"marker-a@subscriber.test\" deleted"#,
    ] {
        assert!(audit.contains(detail), "{detail} missing from {audit}");
    }
    assert_eq!(env.delete(&brand, &a.token).await.status, 204);
    assert_eq!(
        env.get(&config, &a.token).await.status,
        404,
        "config cascades"
    );
}

#[tokio::test]
async fn forged_tokens_are_401() {
    let env = env("clean_tokens", "").await;
    let (a, _, b, _) = env.two_orgs().await;
    let as_a = claims_for(&a, now() + 600);
    let forged = [
        ("alg none", alg_none(&as_a)),
        ("tampered payload", tampered(&b.token, &as_a)),
        ("wrong key", sign("not-the-secret", &as_a)),
        ("expired", env.sign(&claims_for(&a, now() - 3600))),
        ("garbage", "not.a.token".to_string()),
    ];
    for (what, token) in forged {
        let r = env.get("/brands", &token).await;
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert_eq!(r.raw, r#"{"error":"unauthorized"}"#, "{what}");
    }
    let r = env.call(Method::GET, "/brands", None, None, &[]).await;
    assert_eq!(r.status, 401);
    let r = env
        .call(
            Method::GET,
            "/brands",
            None,
            None,
            &[("authorization", "Basic eDp5")],
        )
        .await;
    assert_eq!(r.status, 401);
    // A well-signed token works, and /me tells who it is.
    let r = env.get("/me", &env.sign(&as_a)).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["org_id"], a.id.as_str());
    assert_eq!(r.body["email"], a.email.as_str());
    assert_eq!(r.body["role"], "owner");
}

#[tokio::test]
async fn org_overrides_from_the_client_are_ignored() {
    let env = env("clean_override", "").await;
    let (a, sa, b, _) = env.two_orgs().await;
    for header in ["X-Org-Id", "X-Tenant-Id", "X-Organization-Id"] {
        let r = env
            .call(
                Method::GET,
                "/brands",
                Some(&b.token),
                None,
                &[(header, &a.id)],
            )
            .await;
        assert!(!items_text(&r).contains("marker-a"), "{header}");
        let r = env
            .call(
                Method::GET,
                &format!("/brands/{}", sa.brand),
                Some(&b.token),
                None,
                &[(header, &a.id)],
            )
            .await;
        assert_eq!(r.status, 404, "{header}");
    }
    let r = env.get(&format!("/brands?org_id={}", a.id), &b.token).await;
    assert!(!items_text(&r).contains("marker-a"));
    // An org_id in a body is ignored: the brand lands in B.
    let r = env
        .post(
            "/brands",
            &b.token,
            json!({"name": "smuggled", "org_id": a.id}),
        )
        .await;
    assert_eq!(r.status, 201);
    assert_eq!(r.body["org_id"], b.id.as_str());
    assert!(!items_text(&env.get("/brands", &a.token).await).contains("smuggled"));
}

#[tokio::test]
async fn not_found_looks_the_same_whatever_the_cause() {
    let env = env("clean_notfound", "").await;
    let (_, sa, b, _) = env.two_orgs().await;
    let missing = "00000000-0000-4000-8000-000000000000";
    for base in ["/brands", "/monitoring/mentions", "/subscribers"] {
        let other_org = match base {
            "/brands" => &sa.brand,
            "/monitoring/mentions" => &sa.mention,
            _ => &sa.subscriber,
        };
        let answers: Vec<Resp> =
            get_each(&env, &b.token, base, [other_org, missing, "not-a-uuid"]).await;
        for r in &answers {
            assert_eq!(r.status, 404, "{base}: {r:?}");
            assert_eq!(r.raw, answers[0].raw);
            assert_eq!(r.content_type, "application/json");
        }
    }
    let r = env.get("/no/such/route", &b.token).await;
    assert_eq!(
        (r.status, r.raw.as_str()),
        (404, r#"{"error":"not_found"}"#)
    );
    // Bad bodies are 400 JSON, not axum's plain text.
    let r = env
        .call(Method::POST, "/brands", Some(&b.token), None, &[])
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["error"], "bad_request");
    let r = env
        .call(
            Method::POST,
            "/auth/signup",
            None,
            Some(json!({"email": "x@y.test"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    assert_eq!(r.body["message"], "org_name is required");
}

/// GETs `{base}/{id}` for each id, in order.
async fn get_each(env: &Env, token: &str, base: &str, ids: [&str; 3]) -> Vec<Resp> {
    let mut out = Vec::new();
    for id in ids {
        out.push(env.get(&format!("{base}/{id}"), token).await);
    }
    out
}

#[tokio::test]
async fn login_is_tenant_scoped() {
    let env = env("clean_login", "").await;
    let a = env.signup("OrgA").await;
    let b = env.signup("OrgB").await;
    let login =
        |org: &str, email: &str, pw: &str| json!({"org_id": org, "email": email, "password": pw});
    let r = env
        .call(
            Method::POST,
            "/auth/login",
            None,
            Some(login(&a.id, &a.email, "pw-123456")),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.body["token_type"], "Bearer");
    let me = env.get("/me", &str_at(&r.body, "/access_token")).await;
    assert_eq!(me.body["user_id"], a.user_id.as_str());
    for body in [
        login(&a.id, &a.email, "wrong"),
        login(&b.id, &a.email, "pw-123456"),
        login("not-a-uuid", &a.email, "pw-123456"),
        login(&a.id, "nobody@x.test", "pw-123456"),
    ] {
        let r = env
            .call(Method::POST, "/auth/login", None, Some(body.clone()), &[])
            .await;
        assert_eq!(r.status, 401, "{body}: {r:?}");
    }
}

#[tokio::test]
async fn deleting_an_org_takes_only_that_org() {
    let env = env("clean_delete", "").await;
    let (a, sa, b, sb) = env.two_orgs().await;
    assert_eq!(
        env.delete(&format!("/orgs/{}", a.id), &b.token)
            .await
            .status,
        404
    );
    assert_eq!(
        env.delete(&format!("/orgs/{}", b.id), &b.token)
            .await
            .status,
        204
    );
    assert_eq!(env.get("/me", &b.token).await.status, 401, "user is gone");
    assert_eq!(
        env.get(&format!("/brands/{}", sb.brand), &b.token)
            .await
            .status,
        404
    );
    assert_eq!(
        env.get(&format!("/brands/{}", sa.brand), &a.token)
            .await
            .status,
        200
    );
    let sql = env.admin_sql().await;
    for table in [
        "users",
        "brands",
        "mentions",
        "ghost_presence_configs",
        "subscribers",
        "audit_log",
    ] {
        let n: i64 = sql
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE org_id = $1::text::uuid"),
                &[&b.id],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} keeps rows of the deleted org");
    }
}
