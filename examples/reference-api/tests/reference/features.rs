//! The correct app's newer promises, each over real HTTP and real PostgreSQL: the public
//! endpoint shows no tenant whoever asked before, API keys are stored only as salted
//! hashes and work as identities of their org only, the audit log is append-only, and
//! the attestation endpoint is read live and holds only the caller's counts.

use reqwest::Method;
use serde_json::{Value, json};
use tenantgate_reference_api::schema::TENANT_TABLES;

use crate::common::*;

/// How many "A, then anonymous" rounds the pool tests run: enough to cycle the app's
/// pool (8 connections) more than twice.
pub const ROUNDS: usize = 20;

#[tokio::test]
async fn the_public_endpoint_shows_no_tenant_whoever_asked_before() {
    let env = env("feat_public", "").await;
    let (a, _, b, _) = env.two_orgs().await;
    for round in 0..ROUNDS {
        let caller = if round % 2 == 0 { &a } else { &b };
        // An authenticated request first: its connection is the next one handed out.
        assert_eq!(env.get("/brands", &caller.token).await.status, 200);
        let r = env.anon(Method::GET, "/public/featured-brands").await;
        assert_eq!(r.status, 200, "round {round}: {r:?}");
        assert_eq!(r.body, json!({"items": []}), "round {round}");
    }
    // The connections went back clean: no tenant setting survives a transaction.
    let sql = env.app_sql().await;
    let brands: i64 = sql
        .query_one("SELECT count(*) FROM brands", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(brands, 0);
}

#[tokio::test]
async fn api_keys_are_salted_hashes_and_identify_their_org_only() {
    let env = env("feat_keys", "").await;
    let (a, _, b, _) = env.two_orgs().await;
    let (id, key) = env.api_key(&a, "ci").await;
    let (_, key2) = env.api_key(&a, "deploy").await;
    assert!(key.starts_with("tgk_") && key.len() > 100, "{key}");

    // The key is an identity of A, by header or by Authorization scheme.
    let r = env.with_key(Method::GET, "/brands", &key).await;
    assert!(items_text(&r).contains("marker-a"), "{r:?}");
    let r = env
        .call(
            Method::GET,
            "/me",
            None,
            None,
            &[("Authorization", &format!("ApiKey {key}"))],
        )
        .await;
    assert_eq!(r.body["org_id"], a.id.as_str(), "{r:?}");
    // Listed without key material, and never shown to B.
    let listed = env.get("/api-keys", &a.token).await;
    assert_eq!(listed.body["items"].as_array().unwrap().len(), 2);
    assert!(!listed.raw.contains(&key) && !listed.raw.contains(&key2));
    assert_eq!(
        items_text(&env.get("/api-keys", &b.token).await),
        "[]",
        "B sees A's keys"
    );

    // Stored only as salted PHC hashes: neither the key nor an unsalted digest of it.
    let sql = env.admin_sql().await;
    let stored: Vec<String> = sql
        .query(
            "SELECT key_hash FROM api_keys WHERE org_id = $1::text::uuid ORDER BY name",
            &[&a.id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(stored.len(), 2);
    for (hash, plain) in stored.iter().zip([&key, &key2]) {
        assert!(hash.starts_with("$pbkdf2-sha256$i=10000,l=32$"), "{hash}");
        assert!(!hash.contains(plain.as_str()));
        assert!(!hash.contains(&sha256_hex(plain)));
    }
    assert_ne!(
        stored[0].split('$').nth(3),
        stored[1].split('$').nth(3),
        "one salt per key"
    );
    let everything = sql
        .query_one("SELECT string_agg(t::text, ' ') FROM api_keys t", &[])
        .await
        .unwrap()
        .get::<_, String>(0);
    assert!(
        !everything.contains(&key[key.len() - 64..]),
        "the secret is stored"
    );
    // Passwords too: a salted PHC string, never the password or its plain digest.
    let password: String = sql
        .query_one(
            "SELECT password_hash FROM users WHERE org_id = $1::text::uuid",
            &[&a.id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        password.starts_with("$pbkdf2-sha256$i=10000,l=32$"),
        "{password}"
    );
    assert!(!password.contains("pw-123456") && !password.contains(&sha256_hex("pw-123456")));

    // Wrong, tampered or mismatched keys are 401, exactly like a bad token.
    let last = if key.ends_with('0') { "1" } else { "0" };
    let tampered = format!("{}{last}", &key[..key.len() - 1]);
    let other_org = key.replacen(&a.id.replace('-', ""), &b.id.replace('-', ""), 1);
    for (what, bad) in [
        ("tampered", tampered.as_str()),
        ("another org named", other_org.as_str()),
        ("garbage", "tgk_nope"),
    ] {
        let r = env.with_key(Method::GET, "/brands", bad).await;
        assert_eq!(
            (r.status, r.raw.as_str()),
            (401, r#"{"error":"unauthorized"}"#),
            "{what}"
        );
    }
    // Revoked keys stop working; the audit names keys, never their secret.
    assert_eq!(
        env.delete(&format!("/api-keys/{id}"), &b.token)
            .await
            .status,
        404
    );
    assert_eq!(
        env.delete(&format!("/api-keys/{id}"), &a.token)
            .await
            .status,
        204
    );
    assert_eq!(env.with_key(Method::GET, "/brands", &key).await.status, 401);
    assert_eq!(
        env.with_key(Method::GET, "/brands", &key2).await.status,
        200
    );
    let audit = items_text(&env.get("/audit-log", &a.token).await);
    assert!(audit.contains(r#"api key \"ci\" created"#), "{audit}");
    assert!(audit.contains(r#"api key \"ci\" deleted"#), "{audit}");
    assert!(!audit.contains(&key) && !audit.contains(&key2));
}

/// The lowercase hex SHA-256 of `s`.
pub fn sha256_hex(s: &str) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What the app role may do to the audit log inside A's tenant transaction:
/// `(update allowed, delete allowed)`; a refusal must be a permission error.
pub async fn audit_rewrites(env: &Env, org: &Org) -> (bool, bool) {
    let mut sql = env.app_sql().await;
    let mut allowed = Vec::new();
    for stmt in [
        "UPDATE audit_log SET detail = 'rewritten'",
        "DELETE FROM audit_log",
    ] {
        let tx = sql.transaction().await.unwrap();
        tx.execute(
            "SELECT set_config('app.current_org_id', $1, true)",
            &[&org.id],
        )
        .await
        .unwrap();
        match tx.execute(stmt, &[]).await {
            Ok(n) => {
                assert!(n > 0, "{stmt} touched nothing");
                allowed.push(true);
            }
            Err(e) => {
                assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{stmt}: {e:?}");
                allowed.push(false);
            }
        }
        // Never keep a rewrite: the test only asks whether it was possible.
        tx.rollback().await.unwrap();
    }
    (allowed[0], allowed[1])
}

#[tokio::test]
async fn the_audit_log_is_append_only_and_records_every_seeded_write() {
    let env = env("feat_audit", "").await;
    let (a, _, b, _) = env.two_orgs().await;
    assert_eq!(audit_rewrites(&env, &a).await, (false, false));
    let mut sql = env.app_sql().await;
    let err = sql
        .batch_execute("TRUNCATE audit_log")
        .await
        .expect_err("TRUNCATE");
    assert_eq!(err.code().map(|c| c.code()), Some("42501"));
    // Appending is allowed, for the tenant in the setting only.
    let tx = sql.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('app.current_org_id', $1, true)",
        &[&a.id],
    )
    .await
    .unwrap();
    let foreign = tx
        .execute(
            "INSERT INTO audit_log (org_id, action, detail) VALUES ($1::text::uuid, 'x', 'x')",
            &[&b.id],
        )
        .await
        .expect_err("an entry for another org");
    assert_eq!(
        foreign.code().map(|c| c.code()),
        Some("42501"),
        "{foreign:?}"
    );
    tx.rollback().await.unwrap();

    // Each seeded write of A is one entry A sees and B does not.
    let a_log = items_text(&env.get("/audit-log", &a.token).await);
    let b_log = items_text(&env.get("/audit-log", &b.token).await);
    for action in [
        "org.created",
        "brand.created",
        "mention.created",
        "subscriber.created",
    ] {
        let entries: Vec<Value> = env.get("/audit-log", &a.token).await.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == action)
            .cloned()
            .collect();
        assert_eq!(entries.len(), 1, "{action} in {a_log}");
        assert_eq!(entries[0]["org_id"], a.id.as_str());
    }
    assert!(a_log.contains("marker-a") && !b_log.contains("marker-a"));
}

#[tokio::test]
async fn the_attestation_is_read_live_and_holds_only_the_callers_counts() {
    let env = env("feat_attest", "").await;
    let (a, _, b, _) = env.two_orgs().await;
    env.api_key(&a, "ci").await;
    assert_eq!(
        env.anon(Method::GET, "/.well-known/tenant-isolation")
            .await
            .status,
        401
    );
    let r = env.get("/.well-known/tenant-isolation", &a.token).await;
    assert_eq!(r.status, 200, "{r:?}");
    let tables = r.body["tables"].as_array().unwrap();
    let names: Vec<&str> = tables
        .iter()
        .map(|t| t["table"].as_str().unwrap())
        .collect();
    assert_eq!(names, TENANT_TABLES);
    for t in tables {
        assert_eq!(
            (&t["rls_enabled"], &t["rls_forced"], &t["policies"]),
            (&json!(true), &json!(true), &json!(1)),
            "{t}"
        );
    }
    let rows = |table: &str| {
        tables.iter().find(|t| t["table"] == table).unwrap()["caller_rows"]
            .as_i64()
            .unwrap()
    };
    for (table, n) in [
        ("orgs", 1),
        ("users", 1),
        ("brands", 1),
        ("mentions", 1),
        ("ghost_presence_configs", 1),
        ("subscribers", 1),
        ("api_keys", 1),
    ] {
        assert_eq!(rows(table), n, "{table}");
    }
    assert_eq!(rows("audit_log"), 5, "org, brand, mention, subscriber, key");
    assert_eq!(r.body["summary"]["rls_forced"], TENANT_TABLES.len());
    assert_eq!(
        r.body["app_role"],
        json!({"name": "feat_attest_app", "superuser": false, "bypassrls": false,
               "member_of_bypassrls_role": false})
    );
    // Counts only: no row contents of anyone, no other tenant.
    for never in ["marker-a", "marker-b", &b.id, "OrgA", "@"] {
        assert!(!r.raw.contains(never), "{never} in {}", r.raw);
    }
    // B gets B's counts.
    let rb = env.get("/.well-known/tenant-isolation", &b.token).await;
    assert_eq!(rb.body["tenant"]["org_id"], b.id.as_str());
    assert!(!rb.raw.contains(&a.id));

    // Live, not a static claim: take FORCE away and the answer says so.
    let admin = env.admin_sql().await;
    admin
        .batch_execute("ALTER TABLE mentions NO FORCE ROW LEVEL SECURITY")
        .await
        .unwrap();
    let r = env.get("/.well-known/tenant-isolation", &a.token).await;
    let mentions = r.body["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "mentions")
        .unwrap()
        .clone();
    assert_eq!(mentions["rls_forced"], false, "{mentions}");
    assert_eq!(r.body["summary"]["rls_forced"], TENANT_TABLES.len() - 1);
    admin
        .batch_execute("ALTER TABLE mentions FORCE ROW LEVEL SECURITY")
        .await
        .unwrap();
}
