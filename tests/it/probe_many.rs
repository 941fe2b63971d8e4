//! The live probe over many tables (run → database → probe on several connections, a
//! real PostgreSQL): every table gets every probe kind, in table order as with one
//! connection; a hole in any connection's part is found; and nothing any connection
//! did outlives the probe.

use tenantgate::db::{self, AuditConfig, ProbeConfig, ProbeOrgs};
use tenantgate::outcome::{CheckResult, Layer, Verdict};
use tenantgate::redact::Redactor;

use crate::common::{TestDb, connect};

const ORG_A: &str = "00000000-0000-4000-8000-00000000000a";
const ORG_B: &str = "00000000-0000-4000-8000-00000000000b";
const TABLES: usize = 100;
/// A WITH CHECK that drops the tenant: B can move its row to A (in a later part).
const MOVABLE: usize = 71;
/// A fail-open policy: every row with no tenant set (in the first part).
const OPEN: usize = 3;

fn schema_sql() -> String {
    let mut sql = String::from("SET ROLE {{owner_role}};\n");
    for i in 0..TABLES {
        let check = if i == MOVABLE {
            "WITH CHECK (name <> '')".to_string()
        } else {
            String::new()
        };
        let using = if i == OPEN {
            "(current_setting('app.current_org_id', true) IS NULL OR org_id = current_setting('app.current_org_id', true)::uuid)"
        } else {
            "(org_id = current_setting('app.current_org_id', true)::uuid)"
        };
        sql.push_str(&format!(
            "CREATE TABLE t_{i:03} (id int PRIMARY KEY, org_id uuid NOT NULL, name text NOT NULL);
             ALTER TABLE t_{i:03} ENABLE ROW LEVEL SECURITY;
             ALTER TABLE t_{i:03} FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant ON t_{i:03} FOR ALL TO {{{{app_role}}}} USING {using} {check};
             GRANT SELECT, INSERT, UPDATE, DELETE ON t_{i:03} TO {{{{app_role}}}};\n"
        ));
    }
    sql.push_str("RESET ROLE;\n");
    for i in 0..TABLES {
        sql.push_str(&format!(
            "INSERT INTO t_{i:03} VALUES (1, '{ORG_A}', 'a'), (2, '{ORG_B}', 'b');\n"
        ));
    }
    sql
}

async fn rows_by_org(db: &TestDb) -> Vec<(i64, i64)> {
    let c = connect(&db.url()).await;
    let mut out = Vec::new();
    for i in 0..TABLES {
        let row = c
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE org_id = '{ORG_A}'), \
                     count(*) FILTER (WHERE org_id = '{ORG_B}') FROM t_{i:03}"
                ),
                &[],
            )
            .await
            .expect("count rows");
        out.push((row.get(0), row.get(1)));
    }
    out
}

fn verdict_of<'a>(probe: &'a [&CheckResult], id: &str) -> &'a CheckResult {
    probe
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no result {id}"))
}

#[tokio::test]
async fn a_hundred_tables_are_probed_on_several_connections_in_order_and_rolled_back() {
    let mut db = TestDb::create("probe_many").await;
    db.load(&[]).await;
    let sql = db.render(&schema_sql());
    db.exec(&sql).await;
    let before = rows_by_org(&db).await;
    let cfg = AuditConfig {
        url: db.url(),
        app_role: Some(db.role("app_role")),
        tenant_setting: Some("app.current_org_id".into()),
        probe: Some(ProbeConfig {
            url: db.app_url(),
            orgs: Some(ProbeOrgs {
                a: ORG_A.into(),
                b: ORG_B.into(),
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let results = db::audit(&cfg, &Redactor::new()).await;
    let probe: Vec<&CheckResult> = results.iter().filter(|r| r.layer == Layer::Probe).collect();
    // Every table, every kind, in the order one connection gives: kind by kind, table
    // by table.
    let ids: Vec<String> = probe.iter().map(|r| r.id.clone()).collect();
    let expected: Vec<String> = [
        "probe_no_tenant",
        "probe_random_tenant",
        "probe_b_sees_no_a",
        "probe_move_row",
    ]
    .iter()
    .flat_map(|k| (0..TABLES).map(move |i| format!("public.t_{i:03}.{k}")))
    .collect();
    assert_eq!(ids, expected);
    let moved = verdict_of(&probe, &format!("public.t_{MOVABLE:03}.probe_move_row"));
    assert_eq!(moved.verdict, Verdict::Fail, "{}", moved.summary);
    let open = verdict_of(&probe, &format!("public.t_{OPEN:03}.probe_no_tenant"));
    assert_eq!(open.verdict, Verdict::Fail, "{}", open.summary);
    let others: Vec<&&CheckResult> = probe
        .iter()
        .filter(|r| r.id != moved.id && r.id != open.id)
        .filter(|r| r.verdict != Verdict::Pass)
        .collect();
    assert!(
        others.is_empty(),
        "{:?}",
        others
            .iter()
            .map(|r| format!("{} {} {}", r.id, r.verdict.as_str(), r.summary))
            .collect::<Vec<_>>()
    );
    // B's row really moved during the probe, and yet no row changed: every part's
    // transactions were rolled back.
    assert_eq!(rows_by_org(&db).await, before);
    assert!(before.iter().all(|c| *c == (1, 1)));
    db.drop().await;
}
