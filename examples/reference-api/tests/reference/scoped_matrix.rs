//! Precision of the scoped target: one battery of attacks, run against the correct app
//! and against each planted bug alone. The correct app refuses all of them; each bug
//! opens exactly the attacks listed for it and no other, so a check that fires can be
//! traced to one cause.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::json;
use tenantgate_reference_api::ScopedBug;

use crate::scoped::*;

/// What the battery needs: A and B with data and keys, and M, a member of both.
struct World {
    a: Tenant,
    sa: Seeded,
    b: Tenant,
    a_key: String,
    b_key: String,
    m: Tenant,
}

async fn world(env: &Scoped) -> World {
    let (a, sa, b, _) = env.two_tenants().await;
    let a_key = env.api_key(&a).await;
    let b_key = env.api_key(&b).await;
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
    World {
        a,
        sa,
        b,
        a_key,
        b_key,
        m,
    }
}

/// Whether B's answer in A's scope differs from its answer in a never-issued scope.
async fn differs_from_never_issued_scope(env: &Scoped, who: Who<'_>, suffix: &str) -> bool {
    let attack = env.get(&format!("/orgs/org-a{suffix}"), who).await;
    let never = env
        .get(&format!("/orgs/{NEVER_ISSUED_SLUG}{suffix}"), who)
        .await;
    (attack.status, attack.raw) != (never.status, never.raw)
}

/// The session attacks: neighbouring ids, entropy, logout.
async fn session_attacks(env: &Scoped, w: &World, opened: &mut BTreeSet<&'static str>) {
    if let Ok(n) = w.b.sid.parse::<i64>() {
        for guess in [n - 1, n + 1, n - 2] {
            let r = env.get("/me", Who::Sid(&guess.to_string())).await;
            if r.status == 200 && r.body["user"]["id"] != json!(w.b.user_id) {
                opened.insert("neighbour-session");
            }
        }
    }
    // Hex digits carry 4 bits; fewer than 128 bits is guessable at scale.
    if w.b.sid.len() * 4 < 128 {
        opened.insert("low-entropy-session");
    }
    let fresh = env.login(&w.b.email).await;
    let r = env
        .call(Method::POST, "/auth/logout", Who::Sid(&fresh), None, &[])
        .await;
    assert_eq!(r.status, 204);
    if env.get("/me", Who::Sid(&fresh)).await.status != 401 {
        opened.insert("logout-kept");
    }
}

/// The scope attacks: B (session or key) in A's scope, A's ids in B's scope, org hints.
async fn scope_attacks(env: &Scoped, w: &World, opened: &mut BTreeSet<&'static str>) {
    let inv = format!("/invoices/{}", w.sa.invoice);
    for suffix in ["", "/projects", "/invoices", inv.as_str()] {
        if differs_from_never_issued_scope(env, Who::Sid(&w.b.sid), suffix).await {
            opened.insert("session-in-a-scope");
        }
        if differs_from_never_issued_scope(env, Who::Key(&w.b_key), suffix).await {
            opened.insert("key-in-a-scope");
        }
    }
    for (kind, id) in [("projects", w.sa.project), ("invoices", w.sa.invoice)] {
        let attack = env
            .get(&format!("/orgs/org-b/{kind}/{id}"), Who::Sid(&w.b.sid))
            .await;
        let never = env
            .get(
                &format!("/orgs/org-b/{kind}/{NEVER_ISSUED_ID}"),
                Who::Sid(&w.b.sid),
            )
            .await;
        if (attack.status, attack.raw) != (never.status, never.raw) {
            opened.insert("a-id-in-b-scope");
        }
    }
    let r = env
        .patch(
            &format!("/orgs/org-b/projects/{}", w.sa.project),
            Who::Sid(&w.b.sid),
            json!({"name": "renamed by b"}),
        )
        .await;
    let own = format!("/orgs/org-a/projects/{}", w.sa.project);
    if r.status != 404 || env.get(&own, Who::Key(&w.a_key)).await.body["name"] != "project marker-a"
    {
        opened.insert("cross-scope-write");
    }
    for (path, headers) in [
        ("/orgs/org-b/projects", vec![("X-Org", "org-a")]),
        ("/orgs/org-b/invoices?org=org-a", vec![]),
    ] {
        let r = env
            .call(Method::GET, path, Who::Sid(&w.b.sid), None, &headers)
            .await;
        if r.raw.contains("marker-a") {
            opened.insert("slug-override");
        }
    }
}

/// Mass assignment, the member of both orgs, and the database probe.
async fn data_attacks(env: &Scoped, w: &World, opened: &mut BTreeSet<&'static str>) {
    for (i, extra) in [("org_id", json!(w.a.org_id)), ("org_slug", json!("org-a"))]
        .into_iter()
        .enumerate()
    {
        let mut body = json!({"name": format!("made by b {i}")});
        body[extra.0] = extra.1;
        let r = env
            .post("/orgs/org-b/projects", Who::Sid(&w.b.sid), body)
            .await;
        assert_eq!(r.status, 201, "{r:?}");
    }
    let a_list = env.get("/orgs/org-a/projects", Who::Key(&w.a_key)).await;
    if a_list.raw.contains("made by b") {
        opened.insert("mass-assignment");
    }
    let in_b = env.get("/orgs/org-b/projects", Who::Sid(&w.m.sid)).await;
    if in_b.raw.contains("marker-a") {
        opened.insert("shared-member-list");
    }
    let mut app = env.app_sql().await;
    for table in ["projects", "invoices", "api_keys", "orgs", "memberships"] {
        if visible_as(&mut app, w.b.user_id, table, w.a.org_id).await > 0 {
            opened.insert("db-probe");
        }
    }
}

async fn opened_by(name: &str, bugs: &str) -> BTreeSet<&'static str> {
    let env = scoped(name, bugs).await;
    let w = world(&env).await;
    let mut opened = BTreeSet::new();
    session_attacks(&env, &w, &mut opened).await;
    scope_attacks(&env, &w, &mut opened).await;
    data_attacks(&env, &w, &mut opened).await;
    opened
}

/// The attacks each bug must open, and only those.
fn expected(bug: ScopedBug) -> &'static [&'static str] {
    match bug {
        ScopedBug::GuessableSession => &["neighbour-session", "low-entropy-session"],
        ScopedBug::WeakSessionEntropy => &["low-entropy-session"],
        ScopedBug::LogoutKeepsSession => &["logout-kept"],
        ScopedBug::ApiKeyAnyOrg => &["key-in-a-scope"],
        ScopedBug::SlugHeaderOverride => &["slug-override"],
        // The invoice routes skip the check for every caller, keys included.
        ScopedBug::MemberCheckMissing => &["session-in-a-scope", "key-in-a-scope"],
        ScopedBug::IntegerIdOracle => &["a-id-in-b-scope"],
        ScopedBug::SlugExistenceOracle => &["session-in-a-scope", "key-in-a-scope"],
        ScopedBug::MassAssignment => &["mass-assignment"],
        ScopedBug::CrossScopeId => &["a-id-in-b-scope", "cross-scope-write"],
        ScopedBug::ListAllMemberOrgs => &["shared-member-list"],
        ScopedBug::MembershipPolicyTypo => &["db-probe"],
    }
}

#[tokio::test]
async fn the_correct_app_refuses_the_whole_battery() {
    assert_eq!(opened_by("scm_clean", "").await, BTreeSet::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bug_opens_exactly_its_own_attacks() {
    // Concurrently: each bug has its own database and role prefix.
    let mut runs = tokio::task::JoinSet::new();
    for bug in ScopedBug::ALL {
        runs.spawn(async move {
            let db = format!("scm_{}", bug.name().replace('-', "_"));
            (bug, opened_by(&db, bug.name()).await)
        });
    }
    let mut wrong = Vec::new();
    while let Some(run) = runs.join_next().await {
        let (bug, opened) = run.expect("a battery run");
        let want: BTreeSet<&str> = expected(bug).iter().copied().collect();
        if opened != want {
            wrong.push(format!("{bug}: opened {opened:?}, expected {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
