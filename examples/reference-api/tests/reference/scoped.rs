//! The path-scoped target without bugs: every attack tenantgate would try is refused,
//! over real HTTP and real PostgreSQL. Also the fixtures the scoped bug tests share.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};
use tenantgate_reference_api::pg::TempPostgres;
use tenantgate_reference_api::{ScopedBugs, ScopedLaunched, launch_scoped};

use crate::common::{cluster, connect};

/// One launched scoped API with its own database and role prefix.
pub struct Scoped {
    pub launched: ScopedLaunched,
    http: reqwest::Client,
    _pg: Arc<TempPostgres>,
}

/// How a request authenticates.
#[derive(Clone, Copy)]
pub enum Who<'a> {
    Anon,
    Sid(&'a str),
    Key(&'a str),
}

/// An HTTP answer, with the `Set-Cookie` header if any.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub raw: String,
    pub body: Value,
    pub set_cookie: Option<String>,
}

/// A signed-up, logged-in person and the org sign-up made for them.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub user_id: i64,
    pub org_id: i64,
    pub slug: String,
    pub email: String,
    pub sid: String,
}

/// What [`Scoped::seed`] created in an org.
#[derive(Debug, Clone)]
pub struct Seeded {
    pub project: i64,
    pub invoice: i64,
}

/// Launches the scoped API in database `name` with role prefix `name`.
pub async fn scoped(name: &str, bugs: &str) -> Scoped {
    let pg = cluster();
    let bugs = ScopedBugs::parse(bugs).expect("bug names");
    let launched = launch_scoped(&pg, name, name, bugs)
        .await
        .expect("launch the scoped API");
    Scoped {
        launched,
        http: reqwest::Client::new(),
        _pg: pg,
    }
}

pub const PASSWORD: &str = "pw-123456";
/// An id no table will reach in a test.
pub const NEVER_ISSUED_ID: i64 = 9_000_000_000;
pub const NEVER_ISSUED_SLUG: &str = "never-issued-org";

impl Scoped {
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        who: Who<'_>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.launched.base_url));
        match who {
            Who::Anon => {}
            Who::Sid(sid) => req = req.header("Cookie", format!("sid={sid}")),
            Who::Key(key) => req = req.header("X-Api-Key", key),
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let resp = req.send().await.expect("HTTP request");
        let status = resp.status().as_u16();
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let raw = resp.text().await.expect("HTTP body");
        let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
        Answer {
            status,
            raw,
            body,
            set_cookie,
        }
    }

    pub async fn get(&self, path: &str, who: Who<'_>) -> Answer {
        self.call(Method::GET, path, who, None, &[]).await
    }

    pub async fn post(&self, path: &str, who: Who<'_>, body: Value) -> Answer {
        self.call(Method::POST, path, who, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, who: Who<'_>, body: Value) -> Answer {
        self.call(Method::PATCH, path, who, Some(body), &[]).await
    }

    /// Signs up `slug`'s owner and org without logging in.
    pub async fn signup(&self, slug: &str) -> (i64, i64, String) {
        let email = format!("owner@{slug}.test");
        let r = self
            .post(
                "/auth/signup",
                Who::Anon,
                json!({"email": email, "password": PASSWORD,
                       "org_name": format!("Org {slug}"), "org_slug": slug}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        assert!(r.set_cookie.is_none(), "sign-up does not log in");
        (
            int_at(&r.body, "/user/id"),
            int_at(&r.body, "/org/id"),
            email,
        )
    }

    /// Logs in and returns the `sid` cookie's value.
    pub async fn login(&self, email: &str) -> String {
        let r = self
            .post(
                "/auth/login",
                Who::Anon,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(r.status, 200, "{r:?}");
        let cookie = r.set_cookie.expect("login sets a cookie");
        let (pair, attrs) = cookie.split_once(';').expect("cookie attributes");
        assert_eq!(attrs, " HttpOnly; Path=/; SameSite=Lax");
        pair.strip_prefix("sid=")
            .expect("the sid cookie")
            .to_string()
    }

    /// Sign-up then login.
    pub async fn tenant(&self, slug: &str) -> Tenant {
        let (user_id, org_id, email) = self.signup(slug).await;
        let sid = self.login(&email).await;
        Tenant {
            user_id,
            org_id,
            slug: slug.to_string(),
            email,
            sid,
        }
    }

    /// A project and an invoice on it, named after `marker`.
    pub async fn seed(&self, t: &Tenant, marker: &str) -> Seeded {
        let r = self
            .post(
                &format!("/orgs/{}/projects", t.slug),
                Who::Sid(&t.sid),
                json!({"name": format!("project {marker}")}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        let project = int_at(&r.body, "/id");
        let r = self
            .post(
                &format!("/orgs/{}/invoices", t.slug),
                Who::Sid(&t.sid),
                json!({"project_id": project, "customer": format!("customer {marker}"),
                       "amount_cents": 12_300}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        Seeded {
            project,
            invoice: int_at(&r.body, "/id"),
        }
    }

    /// A (`org-a`, data `marker-a`) and B (`org-b`, `marker-b`), logged in in that order:
    /// A's session row comes right before B's.
    pub async fn two_tenants(&self) -> (Tenant, Seeded, Tenant, Seeded) {
        let (a_user, a_org, a_email) = self.signup("org-a").await;
        let a_sid = self.login(&a_email).await;
        let (b_user, b_org, b_email) = self.signup("org-b").await;
        let b_sid = self.login(&b_email).await;
        let a = Tenant {
            user_id: a_user,
            org_id: a_org,
            slug: "org-a".into(),
            email: a_email,
            sid: a_sid,
        };
        let b = Tenant {
            user_id: b_user,
            org_id: b_org,
            slug: "org-b".into(),
            email: b_email,
            sid: b_sid,
        };
        let sa = self.seed(&a, "marker-a").await;
        let sb = self.seed(&b, "marker-b").await;
        (a, sa, b, sb)
    }

    /// An API key of `t`'s org, minted by `t`.
    pub async fn api_key(&self, t: &Tenant) -> String {
        let r = self
            .post(
                &format!("/orgs/{}/api-keys", t.slug),
                Who::Sid(&t.sid),
                json!({"name": format!("ci key {}", t.slug)}),
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        r.body["key"].as_str().expect("the key").to_string()
    }

    pub async fn admin_sql(&self) -> tokio_postgres::Client {
        connect(&self.launched.admin_url).await
    }

    pub async fn app_sql(&self) -> tokio_postgres::Client {
        connect(&self.launched.app_url).await
    }
}

/// The integer at a JSON pointer; panics with the document when missing.
pub fn int_at(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or_else(|| panic!("no integer at {pointer} in {v}"))
}

/// The `items` of a list answer as text: a leak shows as a marker in it.
pub fn items_text(r: &Answer) -> String {
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body["items"].is_array(), "{r:?}");
    r.body["items"].to_string()
}

/// The exact answer for anything the caller may not see.
pub const NOT_FOUND: &str = r#"{"error":"not_found"}"#;

/// Asserts `r` is the not-found answer, byte for byte.
pub fn assert_not_found(r: &Answer, what: &str) {
    assert_eq!(
        (r.status, r.raw.as_str()),
        (404, NOT_FOUND),
        "{what}: {r:?}"
    );
}

/// Rows of `table` in `org` visible to the app role acting as `user`.
pub async fn visible_as(app: &mut tokio_postgres::Client, user: i64, table: &str, org: i64) -> i64 {
    let tx = app.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('app.user_id', $1, true)",
        &[&user.to_string()],
    )
    .await
    .unwrap();
    let column = if table == "orgs" { "id" } else { "org_id" };
    let n: i64 = tx
        .query_one(
            &format!("SELECT count(*) FROM {table} WHERE {column} = $1"),
            &[&org],
        )
        .await
        .unwrap()
        .get(0);
    tx.rollback().await.unwrap();
    n
}

#[tokio::test]
async fn b_in_a_scope_is_a_never_issued_scope() {
    let env = scoped("sc_clean_scope", "").await;
    let (a, sa, b, _) = env.two_tenants().await;
    // Id ranges that do not line up: user 10002 is not org 2.
    assert_eq!((a.org_id, b.org_id, b.user_id), (1, 2, 10002));
    assert!(sa.project > 100 && sa.invoice > 500, "{sa:?}");
    for suffix in [
        String::new(),
        "/projects".to_string(),
        format!("/projects/{}", sa.project),
        "/invoices".to_string(),
        format!("/invoices/{}", sa.invoice),
        "/api-keys".to_string(),
    ] {
        let control = env
            .get(&format!("/orgs/org-a{suffix}"), Who::Sid(&a.sid))
            .await;
        assert_eq!(control.status, 200, "control {suffix}: {control:?}");
        if suffix.contains("projects") || suffix.contains("invoices") {
            assert!(control.raw.contains("marker-a"), "{control:?}");
        }
        let attack = env
            .get(&format!("/orgs/org-a{suffix}"), Who::Sid(&b.sid))
            .await;
        assert_not_found(&attack, &format!("B in A's scope {suffix}"));
        let never = env
            .get(
                &format!("/orgs/{NEVER_ISSUED_SLUG}{suffix}"),
                Who::Sid(&b.sid),
            )
            .await;
        assert_eq!((attack.status, &attack.raw), (never.status, &never.raw));
    }
}

#[tokio::test]
async fn a_ids_in_b_scope_are_never_issued_ids_and_writes_change_nothing() {
    let env = scoped("sc_clean_ids", "").await;
    let (a, sa, b, _) = env.two_tenants().await;
    for (kind, id) in [("projects", sa.project), ("invoices", sa.invoice)] {
        let attack = env
            .get(&format!("/orgs/{}/{kind}/{id}", b.slug), Who::Sid(&b.sid))
            .await;
        assert_not_found(&attack, kind);
        let never = env
            .get(
                &format!("/orgs/{}/{kind}/{NEVER_ISSUED_ID}", b.slug),
                Who::Sid(&b.sid),
            )
            .await;
        assert_eq!(attack.raw, never.raw);
        for malformed in ["abc", "0", "-1", "1.0"] {
            let r = env
                .get(
                    &format!("/orgs/{}/{kind}/{malformed}", b.slug),
                    Who::Sid(&b.sid),
                )
                .await;
            assert_not_found(&r, malformed);
        }
    }
    let project = format!("/orgs/{}/projects/{}", a.slug, sa.project);
    let invoice = format!("/orgs/{}/invoices/{}", a.slug, sa.invoice);
    let before = (
        env.get(&project, Who::Sid(&a.sid)).await.raw,
        env.get(&invoice, Who::Sid(&a.sid)).await.raw,
    );
    for scope in [&a.slug, &b.slug] {
        let r = env
            .patch(
                &format!("/orgs/{scope}/projects/{}", sa.project),
                Who::Sid(&b.sid),
                json!({"name": "pwned"}),
            )
            .await;
        assert_not_found(&r, "rename");
        let r = env
            .patch(
                &format!("/orgs/{scope}/invoices/{}", sa.invoice),
                Who::Sid(&b.sid),
                json!({"status": "void"}),
            )
            .await;
        assert_not_found(&r, "void");
        let r = env
            .call(
                Method::DELETE,
                &format!("/orgs/{scope}/projects/{}", sa.project),
                Who::Sid(&b.sid),
                None,
                &[],
            )
            .await;
        assert_not_found(&r, "delete");
    }
    // An invoice in B's org on A's project is refused too (composite foreign key).
    let r = env
        .post(
            &format!("/orgs/{}/invoices", b.slug),
            Who::Sid(&b.sid),
            json!({"project_id": sa.project, "customer": "x", "amount_cents": 1}),
        )
        .await;
    assert_not_found(&r, "invoice on A's project");
    let after = (
        env.get(&project, Who::Sid(&a.sid)).await.raw,
        env.get(&invoice, Who::Sid(&a.sid)).await.raw,
    );
    assert_eq!(before, after);
    for list in ["projects", "invoices"] {
        let text = items_text(
            &env.get(&format!("/orgs/{}/{list}", b.slug), Who::Sid(&b.sid))
                .await,
        );
        assert!(
            text.contains("marker-b") && !text.contains("marker-a"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn org_hints_and_body_org_fields_are_ignored() {
    let env = scoped("sc_clean_override", "").await;
    let (a, _, b, _) = env.two_tenants().await;
    for list in ["projects", "invoices"] {
        let path = format!("/orgs/{}/{list}", b.slug);
        for (p, headers) in [
            (path.clone(), vec![("X-Org", a.slug.as_str())]),
            (format!("{path}?org={}", a.slug), vec![]),
            (path.clone(), vec![("X-Org-Id", "1")]),
        ] {
            let r = env
                .call(Method::GET, &p, Who::Sid(&b.sid), None, &headers)
                .await;
            assert!(!items_text(&r).contains("marker-a"), "{p}");
        }
    }
    let a_org = a.org_id.to_string();
    for body in [
        json!({"name": "mass b 1", "org_id": a.org_id}),
        json!({"name": "mass b 2", "org_id": a_org}),
        json!({"name": "mass b 3", "org_slug": a.slug}),
    ] {
        let r = env
            .post(
                &format!("/orgs/{}/projects", b.slug),
                Who::Sid(&b.sid),
                body,
            )
            .await;
        assert_eq!(r.status, 201, "{r:?}");
        assert_eq!(int_at(&r.body, "/org_id"), b.org_id);
    }
    let a_list = items_text(&env.get("/orgs/org-a/projects", Who::Sid(&a.sid)).await);
    assert!(!a_list.contains("mass b"), "{a_list}");
    let b_list = items_text(&env.get("/orgs/org-b/projects", Who::Sid(&b.sid)).await);
    assert!(b_list.contains("mass b 3"), "{b_list}");
    // Typed ids: a string where an integer belongs is a 400, not a coercion.
    let r = env
        .post(
            "/orgs/org-b/invoices",
            Who::Sid(&b.sid),
            json!({"project_id": "1", "customer": "x", "amount_cents": 1}),
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
}

#[tokio::test]
async fn sessions_are_unguessable_and_end_at_logout() {
    let env = scoped("sc_clean_sessions", "").await;
    let (a, _, b, _) = env.two_tenants().await;
    for sid in [&a.sid, &b.sid] {
        assert_eq!(sid.len(), 64, "{sid}");
        assert!(sid.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert_ne!(a.sid, b.sid);
    for guess in ["1", "2", "3", "0", &a.sid[..8]] {
        let r = env.get("/me", Who::Sid(guess)).await;
        assert_eq!(r.status, 401, "{guess}");
    }
    assert_eq!(env.get("/me", Who::Anon).await.status, 401);
    assert_eq!(env.get("/orgs/org-a/projects", Who::Anon).await.status, 401);
    let me = env.get("/me", Who::Sid(&b.sid)).await;
    assert_eq!(int_at(&me.body, "/user/id"), b.user_id);
    assert_eq!(
        me.body["orgs"],
        json!([{"id": b.org_id, "slug": "org-b", "name": "Org org-b", "role": "owner"}])
    );

    let r = env
        .call(Method::POST, "/auth/logout", Who::Sid(&b.sid), None, &[])
        .await;
    assert_eq!(r.status, 204, "{r:?}");
    assert_eq!(
        r.set_cookie.as_deref(),
        Some("sid=; HttpOnly; Path=/; SameSite=Lax; Max-Age=0")
    );
    assert_eq!(env.get("/me", Who::Sid(&b.sid)).await.status, 401);
    assert_eq!(
        env.get("/orgs/org-b/projects", Who::Sid(&b.sid))
            .await
            .status,
        401
    );
    // A's session is untouched, and a wrong password is refused.
    assert_eq!(env.get("/me", Who::Sid(&a.sid)).await.status, 200);
    let r = env
        .post(
            "/auth/login",
            Who::Anon,
            json!({"email": a.email, "password": "nope"}),
        )
        .await;
    assert_eq!((r.status, r.set_cookie.is_none()), (401, true));
}

#[tokio::test]
async fn api_keys_work_in_their_own_org_only() {
    let env = scoped("sc_clean_keys", "").await;
    let (a, sa, b, _) = env.two_tenants().await;
    let a_key = env.api_key(&a).await;
    let b_key = env.api_key(&b).await;
    assert!(a_key.starts_with("tgk_") && a_key.len() == 68);
    let own = env.get("/orgs/org-a/projects", Who::Key(&a_key)).await;
    assert!(items_text(&own).contains("marker-a"));
    for path in [
        "/orgs/org-a/projects".to_string(),
        format!("/orgs/org-a/projects/{}", sa.project),
        "/orgs/org-a/invoices".to_string(),
        format!("/orgs/org-a/invoices/{}", sa.invoice),
    ] {
        let attack = env.get(&path, Who::Key(&b_key)).await;
        assert_not_found(&attack, &path);
    }
    let me = env.get("/me", Who::Key(&b_key)).await;
    assert_eq!(me.body["user"]["kind"], "api_key");
    assert_eq!(me.body["orgs"].as_array().map(Vec::len), Some(1));
    assert_eq!(me.body["orgs"][0]["slug"], "org-b");
    // Keys cannot mint keys; a bad key is 401.
    let r = env
        .post(
            "/orgs/org-b/api-keys",
            Who::Key(&b_key),
            json!({"name": "k2"}),
        )
        .await;
    assert_eq!(r.status, 403, "{r:?}");
    assert_eq!(
        env.get("/orgs/org-b/projects", Who::Key("tgk_00"))
            .await
            .status,
        401
    );
    // The list shows names, never secrets.
    let keys = env.get("/orgs/org-a/api-keys", Who::Sid(&a.sid)).await;
    assert!(!keys.raw.contains(&a_key[4..]) && keys.raw.contains("ci key org-a"));
}

#[tokio::test]
async fn a_user_in_two_orgs_sees_both_and_nothing_else() {
    let env = scoped("sc_clean_multi", "").await;
    let (a, _, b, _) = env.two_tenants().await;
    let c = env.tenant("org-c").await;
    env.seed(&c, "marker-c").await;
    let r = env
        .post(
            "/orgs/org-a/members",
            Who::Sid(&a.sid),
            json!({"email": c.email}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = env
        .post(
            "/orgs/org-a/members",
            Who::Sid(&a.sid),
            json!({"email": c.email}),
        )
        .await;
    assert_eq!(r.status, 409, "{r:?}");
    // B cannot add itself to A.
    let r = env
        .post(
            "/orgs/org-a/members",
            Who::Sid(&b.sid),
            json!({"email": b.email}),
        )
        .await;
    assert_not_found(&r, "B adds itself to A");

    let me = env.get("/me", Who::Sid(&c.sid)).await;
    let slugs: Vec<&str> = me.body["orgs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["org-a", "org-c"]);
    assert!(
        items_text(&env.get("/orgs/org-a/projects", Who::Sid(&c.sid)).await).contains("marker-a")
    );
    let own = items_text(&env.get("/orgs/org-c/projects", Who::Sid(&c.sid)).await);
    assert!(own.contains("marker-c") && !own.contains("marker-a"));
    assert_not_found(
        &env.get("/orgs/org-b/projects", Who::Sid(&c.sid)).await,
        "C in B",
    );
    let in_a = items_text(&env.get("/orgs/org-a/projects", Who::Sid(&c.sid)).await);
    assert!(!in_a.contains("marker-c"), "{in_a}");
    // A member is not an admin: no keys, no deleting the org.
    let r = env
        .post(
            "/orgs/org-a/api-keys",
            Who::Sid(&c.sid),
            json!({"name": "k"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = env
        .call(Method::DELETE, "/orgs/org-a", Who::Sid(&c.sid), None, &[])
        .await;
    assert_eq!(r.status, 403);
    // A second org of one's own.
    let r = env
        .post(
            "/orgs",
            Who::Sid(&b.sid),
            json!({"name": "B two", "slug": "org-b2"}),
        )
        .await;
    assert_eq!(r.status, 201, "{r:?}");
    let r = env
        .call(Method::DELETE, "/orgs/org-b2", Who::Sid(&b.sid), None, &[])
        .await;
    assert_eq!(r.status, 204);
    assert_not_found(
        &env.get("/orgs/org-b2", Who::Sid(&b.sid)).await,
        "deleted org",
    );
}

#[tokio::test]
async fn membership_rls_hides_other_orgs_from_the_app_role() {
    let env = scoped("sc_clean_db", "").await;
    let (a, _, b, _) = env.two_tenants().await;
    let admin = env.admin_sql().await;
    let rows = admin
        .query(
            "SELECT relname::text, relrowsecurity, relforcerowsecurity, \
             pg_get_userbyid(relowner)::text FROM pg_class \
             WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let (table, enabled, forced, owner): (String, bool, bool, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!(owner, "sc_clean_db_owner", "{table}");
        let expected = !["users", "sessions"].contains(&table.as_str());
        assert_eq!((enabled, forced), (expected, expected), "{table}");
    }
    let mut app = env.app_sql().await;
    let role = app
        .query_one(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert!(!role.get::<_, bool>(0));
    for table in ["orgs", "memberships", "api_keys", "projects", "invoices"] {
        // No user: nothing at all.
        let n: i64 = app
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 0, "{table} without app.user_id");
        assert_eq!(
            visible_as(&mut app, b.user_id, table, a.org_id).await,
            0,
            "{table}"
        );
    }
    assert!(visible_as(&mut app, a.user_id, "projects", a.org_id).await > 0);
    // The setting is transaction-local: gone once the request's transaction ends.
    let n: i64 = app
        .query_one("SELECT count(*) FROM projects", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Moving B's project into A's org is refused by the policy's check.
    let tx = app.transaction().await.unwrap();
    tx.execute(
        "SELECT set_config('app.user_id', $1, true)",
        &[&b.user_id.to_string()],
    )
    .await
    .unwrap();
    let err = tx
        .execute(
            "UPDATE projects SET org_id = $1 WHERE org_id = $2",
            &[&a.org_id, &b.org_id],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("db error") || err.as_db_error().is_some());
}

/// Kills the server when the test ends, pass or fail.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_scoped_binary_prepares_serves_and_redacts() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let pg = cluster();
    let admin = connect(&pg.superuser_url("postgres")).await;
    admin
        .batch_execute("DROP DATABASE IF EXISTS sc_bin WITH (FORCE); ")
        .await
        .unwrap();
    admin.batch_execute("CREATE DATABASE sc_bin").await.unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_reference-api-scoped"))
            .args(["--database-url", &pg.superuser_url("sc_bin")])
            .args(["--listen", "127.0.0.1:0", "--role-prefix", "sc_bin"])
            .args(["--bugs", "guessable-session"])
            .env_remove("REFAPI_SCOPED_BUGS")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .spawn()
            .expect("run reference-api-scoped"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let printed: Vec<String> = (0..3)
        .map(|_| lines.next().expect("a line").expect("utf-8"))
        .collect();
    let base = printed[0]
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{printed:?}"))
        .to_string();
    assert!(printed[1].contains("sc_bin_app:***@"), "{printed:?}");
    assert!(printed[2].ends_with("guessable-session"), "{printed:?}");
    let resp = reqwest::Client::new()
        .post(format!("{base}/auth/signup"))
        .json(&json!({"email": "e@x.test", "password": "p", "org_name": "O", "org_slug": "o-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let out = Command::new(env!("CARGO_BIN_EXE_reference-api-scoped"))
        .arg("--list-bugs")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for bug in tenantgate_reference_api::ScopedBug::ALL {
        assert!(text.contains(bug.name()), "{text}");
    }
}

/// Every policy of the public schema as `table.policy: USING | WITH CHECK`, deparsed.
async fn policies(sql: &tokio_postgres::Client) -> String {
    sql.query(
        "SELECT tablename::text || '.' || policyname::text || ': ' || \
         coalesce(qual, '') || ' | ' || coalesce(with_check, '') FROM pg_policies \
         WHERE schemaname = 'public' ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect::<Vec<_>>()
    .join("\n")
}

#[tokio::test]
async fn the_migration_converges_and_the_catalog_shows_the_typo() {
    use tenantgate_reference_api::scoped::prepare_scoped_database;

    let env = scoped("sc_converge", "membership-policy-typo").await;
    let admin = env.admin_sql().await;
    // PostgreSQL itself resolves the unqualified column to the membership row.
    let planted = policies(&admin).await;
    assert!(planted.contains("m.org_id = m.org_id"), "{planted}");
    prepare_scoped_database(&env.launched.admin_url, "sc_converge", &ScopedBugs::none())
        .await
        .unwrap();
    let clean = policies(&admin).await;
    assert!(!clean.contains("m.org_id = m.org_id"), "{clean}");
    assert!(clean.contains("m.org_id = projects.org_id"), "{clean}");
    assert_eq!(planted.lines().count(), clean.lines().count());
}
