//! The database audit against real PostgreSQL: the sound fixture must produce no Fail,
//! each pitfall fixture exactly its findings; the probe must roll everything back; a
//! connection problem is one redacted Error. `TG_SHOW_RESULTS=1 ... -- --nocapture` prints
//! every non-pass result of the pitfall fixtures.

use std::collections::BTreeSet;

use tenantgate::db::{self, AuditConfig, ProbeConfig, ProbeOrgs};
use tenantgate::outcome::{CheckResult, Layer, Verdict};
use tenantgate::redact::Redactor;

use crate::common::{TestDb, cluster, connect};

const ORG_A: &str = "00000000-0000-4000-8000-00000000000a";
const ORG_B: &str = "00000000-0000-4000-8000-00000000000b";

fn config(db: &mut TestDb) -> AuditConfig {
    AuditConfig {
        url: db.url(),
        app_role: Some(db.role("app_role")),
        tenant_setting: Some("app.current_org_id".into()),
        ..Default::default()
    }
}

/// Every result that is not Pass or Skip, as (id, verdict).
fn findings(results: &[CheckResult]) -> BTreeSet<(String, Verdict)> {
    results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Warn | Verdict::Error))
        .map(|r| (r.id.clone(), r.verdict))
        .collect()
}

fn show(results: &[CheckResult]) -> String {
    results
        .iter()
        .filter(|r| r.verdict != Verdict::Pass)
        .map(|r| {
            format!(
                "{} {} — {}\n{}",
                r.verdict.as_str(),
                r.id,
                r.summary,
                r.evidence
                    .iter()
                    .map(|e| format!("    {}: {}", e.label, e.text))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn get<'a>(results: &'a [CheckResult], id: &str) -> &'a CheckResult {
    results
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("no result {id} in:\n{}", show(results)))
}

/// Loads one pitfall fixture, audits it, and asserts the findings are exactly `expect`
/// (ids may hold `{{placeholders}}`).
async fn assert_pitfall(fixture: &str, expect: &[(&str, Verdict)]) -> Vec<CheckResult> {
    let mut db = TestDb::create(fixture).await;
    db.load(&[fixture]).await;
    let cfg = config(&mut db);
    let results = db::audit(&cfg, &Redactor::new()).await;
    let want: BTreeSet<(String, Verdict)> =
        expect.iter().map(|(id, v)| (db.render(id), *v)).collect();
    let got = findings(&results);
    if std::env::var_os("TG_SHOW_RESULTS").is_some() {
        eprintln!("== {fixture}\n{}", show(&results));
    }
    assert_eq!(got, want, "fixture {fixture}:\n{}", show(&results));
    // Every finding says how to fix it or why (evidence), and every tenant table has
    // one result per rule.
    for r in results.iter().filter(|r| r.verdict == Verdict::Fail) {
        assert!(!r.evidence.is_empty(), "{} has no evidence", r.id);
        assert_eq!(r.layer, Layer::Database);
    }
    db.drop().await;
    results
}

#[tokio::test]
async fn sound_schema_has_no_fail_and_no_warning() {
    let mut db = TestDb::create("sound").await;
    db.load(&["sound"]).await;
    let mut cfg = config(&mut db);
    cfg.probe = Some(ProbeConfig {
        url: db.app_url(),
        orgs: Some(ProbeOrgs {
            a: ORG_A.into(),
            b: ORG_B.into(),
        }),
        ..Default::default()
    });
    let results = db::audit(&cfg, &Redactor::new()).await;
    assert_eq!(findings(&results), BTreeSet::new(), "\n{}", show(&results));

    // Found by column: the tables, the partitioned table and each partition; not orgs.
    let found = get(&results, "database.tenant_tables_found");
    assert_eq!(found.verdict, Verdict::Pass);
    assert!(
        found.summary.starts_with("6 tenant tables (2 partitions)"),
        "{}",
        found.summary
    );
    assert!(!results.iter().any(|r| r.check == "public.orgs"));
    // One result per table per rule.
    for table in [
        "brands",
        "mentions",
        "events",
        "events_2025",
        "events_2026",
        "notes",
    ] {
        for rule in db::rules::TABLE_RULES {
            let r = get(&results, &format!("public.{table}.{rule}"));
            assert_eq!(r.verdict, Verdict::Pass, "{}: {}", r.id, r.summary);
        }
    }
    // The patterns naive audits flag by mistake are judged sound, with a reason.
    assert_eq!(
        get(&results, "public.signup(text).definer_function").verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, "public.brand_names.view_bypass").verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, "public.brand_counts.view_bypass").verdict,
        Verdict::Pass
    );
    let app = db.role("app_role");
    assert_eq!(
        get(&results, &format!("role.{app}.app_role_superuser")).verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, &format!("role.{app}.app_role_bypassrls")).verdict,
        Verdict::Pass
    );

    // The probe ran as the app role on every table.
    assert_eq!(
        get(&results, "public.brands.probe_b_sees_no_a").verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, "public.brands.probe_move_row").verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, "public.mentions.probe_move_row").verdict,
        Verdict::Pass
    );
    let skipped = get(&results, "public.events_2025.probe_move_row");
    assert_eq!(
        skipped.verdict,
        Verdict::Skip,
        "B has no row in events_2025"
    );
    assert!(results.iter().filter(|r| r.layer == Layer::Probe).count() >= 24);
    db.drop().await;
}

#[tokio::test]
async fn the_audit_role_needs_no_privilege_beyond_the_catalogs() {
    let mut db = TestDb::create("lowpriv").await;
    db.load(&["sound", "truncate"]).await;
    let mut cfg = config(&mut db);
    cfg.url = db.app_url(); // an ordinary login role
    let results = db::audit(&cfg, &Redactor::new()).await;
    assert_eq!(
        findings(&results),
        BTreeSet::from([(
            "public.invoices.app_role_truncate".to_string(),
            Verdict::Fail
        )]),
        "\n{}",
        show(&results)
    );
    db.drop().await;
}

use Verdict::{Fail, Warn};

/// One pitfall fixture: exactly these findings (ids may hold `{{placeholders}}`), then
/// the extra assertions of `then` on all the results.
struct Pitfall {
    fixture: &'static str,
    expect: &'static [(&'static str, Verdict)],
    then: Option<fn(&[CheckResult])>,
}

/// Every pitfall fixture of `fixtures/db/` and what it must produce.
const PITFALLS: &[Pitfall] = &[
    Pitfall {
        fixture: "rls_off",
        expect: &[("public.invoices.rls_enabled", Fail)],
        then: None,
    },
    Pitfall {
        fixture: "not_forced_app_owner",
        expect: &[
            ("public.invoices.rls_forced", Fail),
            ("public.invoices.app_role_owner", Fail),
            ("public.invoices.app_role_truncate", Fail),
        ],
        then: Some(|results| {
            let r = get(results, "public.invoices.rls_forced");
            assert!(r.evidence.iter().any(|e| e.label == "fix"
                && e.text == "ALTER TABLE public.invoices FORCE ROW LEVEL SECURITY;"));
        }),
    },
    Pitfall {
        fixture: "no_policy",
        expect: &[("public.invoices.policy_present", Warn)],
        then: None,
    },
    Pitfall {
        fixture: "missing_command",
        expect: &[("public.invoices.command_coverage", Warn)],
        then: Some(|results| {
            let r = get(results, "public.invoices.command_coverage");
            assert!(
                r.summary.contains("INSERT, UPDATE, DELETE"),
                "{}",
                r.summary
            );
        }),
    },
    Pitfall {
        fixture: "using_true",
        expect: &[("public.invoices.policy_constant_true", Fail)],
        then: Some(|results| {
            let r = get(results, "public.invoices.policy_constant_true");
            assert!(
                r.evidence.iter().any(|e| e.label == "policy"
                    && e.text.starts_with("invoices_all FOR ALL TO tg_app_role_")
                    && e.text.ends_with("USING (true)")),
                "{:?}",
                r.evidence
            );
        }),
    },
    Pitfall {
        fixture: "insert_with_check",
        expect: &[
            ("public.notes.insert_with_check", Warn),
            ("public.tags.insert_with_check", Fail),
            ("public.labels.insert_with_check", Fail),
        ],
        then: None,
    },
    Pitfall {
        fixture: "not_keyed",
        expect: &[("public.invoices.policy_tenant_key", Fail)],
        then: Some(|results| {
            let r = get(results, "public.invoices.policy_tenant_key");
            assert!(r.summary.contains("org_id"), "{}", r.summary);
        }),
    },
    Pitfall {
        fixture: "fail_open",
        expect: &[
            ("public.invoices.policy_fail_open", Fail),
            ("public.payments.policy_fail_open", Fail),
            ("public.refunds.policy_fail_open", Fail),
            ("public.credits.policy_fail_open", Fail),
        ],
        then: None,
    },
    Pitfall {
        fixture: "app_superuser",
        expect: &[
            ("role.{{app_role}}.app_role_superuser", Fail),
            ("public.invoices.app_role_truncate", Fail),
        ],
        then: None,
    },
    Pitfall {
        fixture: "bypassrls_via_role",
        expect: &[("role.{{app_role}}.app_role_bypassrls", Fail)],
        then: Some(|results| {
            let r = results
                .iter()
                .find(|r| r.variant == "app_role_bypassrls")
                .expect("result");
            let path = &r.evidence[0].text;
            assert_eq!(path.matches(" → ").count(), 2, "app → ops → etl: {path}");
        }),
    },
    Pitfall {
        fixture: "truncate",
        expect: &[("public.invoices.app_role_truncate", Fail)],
        then: None,
    },
    Pitfall {
        fixture: "definer_view",
        expect: &[("public.all_invoices.view_bypass", Fail)],
        then: Some(|results| {
            let r = get(results, "public.all_invoices.view_bypass");
            assert!(
                r.evidence
                    .iter()
                    .any(|e| e.text
                        == "ALTER VIEW public.all_invoices SET (security_invoker = true);")
            );
        }),
    },
    Pitfall {
        fixture: "definer_function",
        expect: &[("public.invoices_of(uuid).definer_function", Fail)],
        then: None,
    },
    Pitfall {
        fixture: "partition_no_rls",
        expect: &[
            ("public.events_2026.rls_enabled", Fail),
            ("public.events_2026.rls_forced", Fail),
        ],
        then: None,
    },
    Pitfall {
        fixture: "second_schema",
        expect: &[
            ("billing.invoices.rls_enabled", Fail),
            ("billing.invoices.rls_forced", Fail),
        ],
        then: None,
    },
    Pitfall {
        fixture: "matview",
        expect: &[("public.invoice_totals.matview_tenant_data", Fail)],
        then: None,
    },
    Pitfall {
        fixture: "unique_without_tenant",
        expect: &[("public.customers.unique_without_tenant", Warn)],
        then: None,
    },
    Pitfall {
        fixture: "derived_tenant_data",
        expect: &[("public.member_profiles.derived_tenant_data", Fail)],
        then: Some(|results| {
            let r = get(results, "public.member_profiles.derived_tenant_data");
            assert!(
                r.summary.contains("references tenant table public.members"),
                "{}",
                r.summary
            );
            assert!(!results.iter().any(|r| r.check == "public.plans"));
        }),
    },
    Pitfall {
        fixture: "other_setting",
        expect: &[
            ("public.active_org.policy_tenant_key", Warn),
            ("public.fallback_org.policy_tenant_key", Warn),
        ],
        then: Some(|results| {
            for t in ["active_org", "fallback_org"] {
                let r = get(results, &format!("public.{t}.policy_tenant_key"));
                assert!(
                        r.summary.contains("comes from the setting `jwt.claims.active_org_id`, not the declared tenant setting `app.current_org_id`"),
                        "{}",
                        r.summary
                    );
            }
        }),
    },
    Pitfall {
        fixture: "permissive_or",
        expect: &[("public.invoices.permissive_or", Warn)],
        then: None,
    },
];

/// Each pitfall fixture, loaded into a fresh database, produces exactly its findings.
/// The fixtures run concurrently; a failure names its fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pitfall_fixture_produces_exactly_its_findings() {
    let runs = PITFALLS.iter().map(|p| {
        tokio::spawn(async move {
            let results = assert_pitfall(p.fixture, p.expect).await;
            if let Some(then) = p.then {
                then(&results);
            }
        })
    });
    let mut failed = Vec::new();
    for (p, joined) in PITFALLS
        .iter()
        .zip(futures_util::future::join_all(runs).await)
    {
        if let Err(e) = joined {
            failed.push(format!("{}: {e}", p.fixture));
        }
    }
    assert!(
        failed.is_empty(),
        "failed pitfall fixtures:\n{}",
        failed.join("\n")
    );
}

/// Every fixture file is either the sound schema, the preamble or in [`PITFALLS`].
#[test]
fn every_fixture_file_is_in_the_table() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/db");
    for entry in std::fs::read_dir(dir).expect("fixtures/db") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .to_string();
        let Some(stem) = name.strip_suffix(".sql") else {
            continue;
        };
        assert!(
            SOUND_FIXTURES.contains(&stem)
                || PITFALLS.iter().any(|p| p.fixture == stem)
                || MODEL_CASES.iter().any(|c| c.fixtures.contains(&stem)),
            "fixtures/db/{name} is not in PITFALLS (nor a sound fixture)"
        );
    }
}

/// Fixtures that are not pitfalls: the preamble, shared plumbing and the sound schemas.
const SOUND_FIXTURES: &[&str] = &[
    "_setup",
    "sound",
    "supabase_auth",
    "supabase_sound",
    "membership_sound",
];

/// The identity models of issue 10's fixtures.
#[derive(Clone, Copy, Debug)]
enum Model {
    /// The supabase preset, its roles renamed per test (app role: authenticated).
    Supabase,
    /// A membership schema on plain PostgreSQL: the caller is `app.user_id`.
    Membership,
    /// Schema per tenant: `tg_tenant_*` schemas, each tenant's role named like it.
    Schemas,
}

fn model_config(db: &mut TestDb, model: Model) -> AuditConfig {
    match model {
        Model::Supabase => {
            let mut m = db::TenantModel::supabase();
            m.extra_app_roles = vec![db.role("anon")];
            AuditConfig {
                url: db.url(),
                app_role: Some(db.role("authenticated")),
                model: m,
                ..Default::default()
            }
        }
        Model::Membership => AuditConfig {
            url: db.url(),
            app_role: Some(db.role("app_role")),
            model: db::TenantModel::of(None, &[], &["app.user_id".to_string()], &[]),
            ..Default::default()
        },
        Model::Schemas => AuditConfig {
            url: db.url(),
            tenant_schemas: Some(db::SchemaTenants {
                schemas: vec!["tg_tenant_*".into()],
                role: "{schema}".into(),
                shared: vec!["public".into()],
            }),
            ..Default::default()
        },
    }
}

/// A fixture audited under an identity model: exactly `expect`, and each finding's
/// summary holds its key words (the finding's own message).
struct ModelCase {
    fixtures: &'static [&'static str],
    model: Model,
    expect: &'static [(&'static str, Verdict, &'static str)],
}

const MODEL_CASES: &[ModelCase] = &[
    ModelCase {
        fixtures: &["schema_tenants_sound"],
        model: Model::Schemas,
        expect: &[],
    },
    ModelCase {
        fixtures: &["schema_tenants_pitfalls"],
        model: Model::Schemas,
        expect: &[
            (
                "schema.{{tenant_a}}.schema_isolation",
                Fail,
                "can use other tenants' schemas",
            ),
            (
                "schema.{{tenant_c}}.schema_isolation",
                Fail,
                "granted to PUBLIC",
            ),
        ],
    },
    ModelCase {
        fixtures: &["supabase_auth", "supabase_sound"],
        model: Model::Supabase,
        expect: &[],
    },
    ModelCase {
        fixtures: &["membership_sound"],
        model: Model::Membership,
        expect: &[],
    },
    ModelCase {
        fixtures: &["supabase_auth", "supabase_pitfalls"],
        model: Model::Supabase,
        expect: &[
            (
                "public.self_join.policy_tenant_key",
                Fail,
                "compares a column with itself (`au.account_id = au.account_id`)",
            ),
            (
                "public.join_any.insert_with_check",
                Fail,
                "OR NOT EXISTS escape",
            ),
            (
                "public.anon_escape.policy_fail_open",
                Fail,
                "an anonymous caller passes",
            ),
            (
                "public.any_user.policy_tenant_key",
                Fail,
                "any signed-in user passes",
            ),
            (
                "public.signed_in.policy_tenant_key",
                Fail,
                "any signed-in user passes",
            ),
            (
                "public.or_role.policy_tenant_key",
                Fail,
                "OR operand that admits any signed-in user",
            ),
            (
                "public.metadata.policy_tenant_key",
                Fail,
                "`user_metadata` claim, which the user can edit",
            ),
            (
                "public.unbound.policy_tenant_key",
                Fail,
                "EXISTS over a membership table that is not bound to the row",
            ),
            (
                "public.accept_invite(uuid).definer_function",
                Fail,
                "temporary table account_user",
            ),
            (
                "public.wipe_accounts().definer_function",
                Fail,
                "never checks its caller",
            ),
        ],
    },
    ModelCase {
        fixtures: &["membership_pitfalls"],
        model: Model::Membership,
        expect: &[
            (
                "public.shadowed.policy_tenant_key",
                Fail,
                "compares a column with itself (`memberships.org_id = memberships.org_id`)",
            ),
            (
                "public.ignores_arg.policy_tenant_key",
                Fail,
                "never reads its parameters (`is_signed_in(org_id)`)",
            ),
            (
                "public.opaque.policy_tenant_key",
                Warn,
                "unverified: USING calls texteq(...)",
            ),
        ],
    },
];

/// Issue 10's identity models: the sound Supabase-style and membership schemas give
/// no error and no warning; each pitfall fails with its own message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_model_fixtures_produce_exactly_their_findings() {
    let runs = MODEL_CASES.iter().map(|c| {
        tokio::spawn(async move {
            let label = c.fixtures.last().copied().unwrap_or("model");
            let mut db = TestDb::create(label).await;
            db.load(c.fixtures).await;
            let cfg = model_config(&mut db, c.model);
            let results = db::audit(&cfg, &Redactor::new()).await;
            if std::env::var_os("TG_SHOW_RESULTS").is_some() {
                eprintln!("== {label}\n{}", show(&results));
            }
            let want: BTreeSet<(String, Verdict)> = c
                .expect
                .iter()
                .map(|(id, v, _)| (db.render(id), *v))
                .collect();
            assert_eq!(findings(&results), want, "{label}:\n{}", show(&results));
            for (id, _, words) in c.expect {
                let r = get(&results, &db.render(id));
                assert!(r.summary.contains(words), "{label} {id}: {}", r.summary);
            }
            // Fix SQL in the schema's model: never a setting the schema does not use.
            for r in &results {
                for e in r.evidence.iter().filter(|e| e.label == "fix") {
                    assert!(
                        !e.text.contains("app.current_org_id"),
                        "{label} {}: {}",
                        r.id,
                        e.text
                    );
                }
            }
            db.drop().await;
        })
    });
    let mut failed = Vec::new();
    for (c, joined) in MODEL_CASES
        .iter()
        .zip(futures_util::future::join_all(runs).await)
    {
        if let Err(e) = joined {
            failed.push(format!("{:?}: {e}", c.fixtures));
        }
    }
    assert!(
        failed.is_empty(),
        "failed model fixtures:\n{}",
        failed.join("\n")
    );
}

/// Row count and a checksum of every row of every table in `public`, as the superuser.
async fn snapshot(db: &TestDb) -> Vec<(String, i64, String)> {
    let c = connect(&db.url()).await;
    let tables: Vec<String> = c
        .query(
            "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables \
             WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .expect("tables")
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let row = c
            .query_one(
                &format!(
                    "SELECT count(*), md5(coalesce(string_agg(x::text, '|' ORDER BY x::text), '')) FROM {t} x"
                ),
                &[],
            )
            .await
            .expect("snapshot");
        out.push((t, row.get(0), row.get(1)));
    }
    out
}

#[tokio::test]
async fn the_probe_rolls_back_even_a_row_it_managed_to_move() {
    let mut db = TestDb::create("probe_rollback").await;
    db.load(&["insert_with_check", "fail_open"]).await;
    let before = snapshot(&db).await;
    let mut cfg = config(&mut db);
    cfg.probe = Some(ProbeConfig {
        url: db.app_url(),
        orgs: Some(ProbeOrgs {
            a: ORG_A.into(),
            b: ORG_B.into(),
        }),
        ..Default::default()
    });
    let results = db::audit(&cfg, &Redactor::new()).await;
    // labels' WITH CHECK drops the tenant: B really moves its row to A...
    let moved = get(&results, "public.labels.probe_move_row");
    assert_eq!(moved.verdict, Verdict::Fail, "{}", show(&results));
    assert_eq!(moved.layer, Layer::Probe);
    // ...and the fail-open policies show every row when no tenant is set.
    assert_eq!(
        get(&results, "public.invoices.probe_no_tenant").verdict,
        Verdict::Fail
    );
    assert_eq!(
        get(&results, "public.payments.probe_no_tenant").verdict,
        Verdict::Fail
    );
    assert_eq!(
        get(&results, "public.labels.probe_no_tenant").verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, "public.labels.probe_b_sees_no_a").verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, "public.labels.probe_random_tenant").verdict,
        Verdict::Pass
    );
    // Yet nothing changed.
    let after = snapshot(&db).await;
    assert_eq!(before, after);
    assert!(
        before
            .iter()
            .any(|(t, n, _)| t == "public.labels" && *n == 2)
    );
    db.drop().await;
}

#[tokio::test]
async fn the_probe_refuses_a_role_that_bypasses_rls() {
    let mut db = TestDb::create("probe_super").await;
    db.load(&["sound"]).await;
    let mut cfg = config(&mut db);
    cfg.probe = Some(ProbeConfig {
        url: db.url(), // the superuser
        orgs: None,
        ..Default::default()
    });
    let results = db::audit(&cfg, &Redactor::new()).await;
    let probe: Vec<&CheckResult> = results.iter().filter(|r| r.layer == Layer::Probe).collect();
    assert_eq!(probe.len(), 1, "{}", show(&results));
    assert_eq!(probe[0].verdict, Verdict::Error);
    assert!(
        probe[0].summary.contains("probe URL's role bypasses RLS"),
        "{}",
        probe[0].summary
    );
    db.drop().await;
}

#[tokio::test]
async fn probe_without_org_ids_skips_the_a_b_probes() {
    let mut db = TestDb::create("probe_noorgs").await;
    db.load(&["sound"]).await;
    let mut cfg = config(&mut db);
    cfg.probe = Some(ProbeConfig {
        url: db.app_url(),
        orgs: None,
        ..Default::default()
    });
    let results = db::audit(&cfg, &Redactor::new()).await;
    assert_eq!(findings(&results), BTreeSet::new(), "\n{}", show(&results));
    assert_eq!(
        get(&results, "database.probe_b_sees_no_a").verdict,
        Verdict::Skip
    );
    assert_eq!(
        get(&results, "database.probe_move_row").verdict,
        Verdict::Skip
    );
    assert_eq!(
        get(&results, "public.brands.probe_no_tenant").verdict,
        Verdict::Pass
    );
    db.drop().await;
}

#[tokio::test]
async fn the_audit_session_is_read_only() {
    let db = TestDb::create("readonly").await;
    let client = db::read_only_client(&db.url()).await.expect("connect");
    let err = client
        .batch_execute("CREATE TABLE t (x int)")
        .await
        .expect_err("a read-only session cannot write");
    assert_eq!(err.code().map(|c| c.code()), Some("25006"), "{err:?}");
    drop(client);
    db.drop().await;
}

#[tokio::test]
async fn wrong_password_is_one_redacted_error() {
    let mut db = TestDb::create("badpw").await;
    db.load(&[]).await;
    let app = db.role("app_role");
    let url = cluster().role_url(&app, "not-the-password-123", &db.name);
    if tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .is_ok()
    {
        eprintln!("skipped: this server (DATABASE_URL) accepts any password (trust auth)");
        db.drop().await;
        return;
    }
    let redactor = Redactor::new();
    let results = db::audit(
        &AuditConfig {
            url,
            ..Default::default()
        },
        &redactor,
    )
    .await;
    assert_eq!(results.len(), 1, "{}", show(&results));
    assert_eq!(results[0].verdict, Verdict::Error);
    assert!(
        results[0]
            .summary
            .contains("check the user name and password"),
        "{}",
        results[0].summary
    );
    let json = serde_json::to_string(&results).expect("json");
    assert!(!json.contains("not-the-password-123"));
    assert!(redactor.contains_secret("not-the-password-123"));
    db.drop().await;
}

#[tokio::test]
async fn unreachable_server_and_unmet_tls_demands_are_one_error_each() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let r = db::audit(
        &AuditConfig {
            url: format!("postgres://u:secret-pw-1@127.0.0.1:{port}/x"),
            ..Default::default()
        },
        &Redactor::new(),
    )
    .await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict, Verdict::Error);
    assert!(
        r[0].summary.contains("check that PostgreSQL is running"),
        "{}",
        r[0].summary
    );
    assert!(!r[0].summary.contains("secret-pw-1"));

    let r = db::audit(
        &AuditConfig {
            url: format!("{}?sslmode=require", cluster().url("postgres")),
            ..Default::default()
        },
        &Redactor::new(),
    )
    .await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].verdict, Verdict::Error);
    // The shared cluster has no TLS: require cannot be met, and the error says why.
    assert!(
        r[0].summary.contains("the server does not offer TLS")
            && r[0].summary.contains("sslmode=require"),
        "{}",
        r[0].summary
    );
}

#[tokio::test]
async fn an_audit_that_finds_nothing_cannot_pass() {
    let mut db = TestDb::create("empty").await;
    db.load(&[]).await;
    let cfg = config(&mut db);
    let results = db::audit(&cfg, &Redactor::new()).await;
    assert_eq!(
        get(&results, "database.tenant_tables_found").verdict,
        Verdict::Error
    );
    db.drop().await;
}

#[tokio::test]
async fn explicit_tables_exempt_and_schemas() {
    let mut db = TestDb::create("explicit").await;
    db.load(&["second_schema", "partition_no_rls"]).await;
    db.exec("CREATE TABLE orgs (id uuid PRIMARY KEY, name text)")
        .await;
    let mut cfg = config(&mut db);
    cfg.tables = vec!["orgs".into(), "public.missing".into()];
    cfg.exempt = vec!["billing.invoices".into(), "events_2026".into()];
    let results = db::audit(&cfg, &Redactor::new()).await;
    // orgs is audited now (no tenant column: keyed on the setting alone, which it lacks).
    assert_eq!(
        get(&results, "public.orgs.table_exists").verdict,
        Verdict::Pass
    );
    assert_eq!(
        get(&results, "public.orgs.rls_enabled").verdict,
        Verdict::Fail
    );
    assert_eq!(
        get(&results, "public.missing.table_exists").verdict,
        Verdict::Error
    );
    assert!(
        !results
            .iter()
            .any(|r| r.check == "billing.invoices" || r.check == "public.events_2026")
    );

    // Only the schemas asked for.
    let mut cfg = config(&mut db);
    cfg.schemas = vec!["billing".into()];
    let results = db::audit(&cfg, &Redactor::new()).await;
    assert!(results.iter().any(|r| r.check == "billing.invoices"));
    assert!(!results.iter().any(|r| r.check == "public.brands"));
    db.drop().await;
}

#[tokio::test]
async fn without_an_app_role_role_checks_are_skipped_never_passed() {
    let mut db = TestDb::create("noapp").await;
    db.load(&["sound"]).await;
    let mut cfg = config(&mut db);
    cfg.app_role = None;
    let results = db::audit(&cfg, &Redactor::new()).await;
    for rule in [
        "app_role_superuser",
        "app_role_bypassrls",
        "app_role_owner",
        "app_role_truncate",
        "command_coverage",
    ] {
        assert_eq!(
            get(&results, &format!("database.{rule}")).verdict,
            Verdict::Skip
        );
        assert!(
            !results
                .iter()
                .any(|r| r.variant == rule && r.verdict == Verdict::Pass)
        );
    }
    assert_eq!(findings(&results), BTreeSet::new(), "\n{}", show(&results));
    db.drop().await;
}

#[tokio::test]
async fn a_missing_app_role_is_an_error_not_a_pass() {
    let mut db = TestDb::create("noapprole").await;
    db.load(&["sound"]).await;
    let mut cfg = config(&mut db);
    cfg.app_role = Some("tg_no_such_role_x".into());
    let results = db::audit(&cfg, &Redactor::new()).await;
    assert_eq!(
        get(&results, "role.tg_no_such_role_x.app_role_exists").verdict,
        Verdict::Error
    );
    assert_eq!(
        get(&results, "database.app_role_superuser").verdict,
        Verdict::Skip
    );
    db.drop().await;
}

#[tokio::test]
async fn a_large_schema_is_read_in_parallel_and_judged_completely() {
    // Above the threshold where helper connections deparse the policies.
    let mut db = TestDb::create("large").await;
    db.load(&[]).await;
    let app = db.role("app_role");
    let owner = db.role("owner_role");
    db.exec(&format!(
        "SET ROLE {owner};
         DO $$ BEGIN
           FOR i IN 1..2100 LOOP
             EXECUTE format('CREATE TABLE t_%s (id bigint PRIMARY KEY, org_id uuid NOT NULL)', i);
             EXECUTE format('ALTER TABLE t_%s ENABLE ROW LEVEL SECURITY', i);
             EXECUTE format('ALTER TABLE t_%s FORCE ROW LEVEL SECURITY', i);
             EXECUTE format('CREATE POLICY tenant ON t_%s FOR ALL TO {app} USING \
               (org_id = current_setting(''app.current_org_id'', true)::uuid)', i);
           END LOOP;
         END $$;
         RESET ROLE;
         ALTER TABLE t_7 NO FORCE ROW LEVEL SECURITY;
         GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app};"
    ))
    .await;
    let cfg = config(&mut db);
    let results = db::audit(&cfg, &Redactor::new()).await;
    assert!(
        get(&results, "database.tenant_tables_found")
            .summary
            .starts_with("2100 tenant tables"),
    );
    assert_eq!(
        results
            .iter()
            .filter(|r| r.variant == "policy_present" && r.verdict == Verdict::Pass)
            .count(),
        2100
    );
    assert_eq!(
        findings(&results),
        BTreeSet::from([("public.t_7.rls_forced".to_string(), Verdict::Fail)]),
    );
    db.drop().await;
}

/// `tenantgate audit` through the real binary, on a database it has never seen, with no
/// suite: the exit code, the reports, the skipped role checks and no password anywhere.
fn audit_cli(args: &[&str], dir: &std::path::Path) -> (i32, String, serde_json::Value, String) {
    let json = dir.join("audit.json");
    let junit = dir.join("audit.xml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantgate"))
        .arg("audit")
        .args(args)
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .expect("run tenantgate audit");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("JSON report")).unwrap();
    let junit = std::fs::read_to_string(&junit).expect("JUnit report");
    (out.status.code().unwrap_or(-1), all, report, junit)
}

fn ids_with(report: &serde_json::Value, verdict: &str) -> Vec<String> {
    report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["verdict"] == verdict)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_command_proves_a_sound_database_and_fails_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = TestDb::create("cli").await;
    db.load(&["sound"]).await;
    let (url, app_url, app) = (db.url(), db.app_url(), db.role("app_role"));
    let password = tenantgate::redact::url_password(&url).unwrap();
    let args = [
        "--database-url",
        &url,
        "--app-role",
        &app,
        "--tenant-setting",
        "app.current_org_id",
        "--probe-url",
        &app_url,
    ];
    let (code, out, report, junit) = tokio::task::block_in_place(|| audit_cli(&args, dir.path()));
    assert_eq!(code, 0, "{out}");
    assert!(ids_with(&report, "fail").is_empty(), "{out}");
    assert_eq!(
        junit.matches("<testcase ").count(),
        report["results"].as_array().unwrap().len()
    );
    for text in [&out, &report.to_string(), &junit] {
        assert!(
            !text.contains(&password) && !text.contains(&db.app_password),
            "a password leaked"
        );
    }

    // Without --app-role the role checks are skipped, never passed.
    let (code, out, report, _) =
        tokio::task::block_in_place(|| audit_cli(&["--database-url", &url], dir.path()));
    assert_eq!(code, 0, "{out}");
    let skipped = ids_with(&report, "skip");
    for rule in [
        "app_role_superuser",
        "app_role_bypassrls",
        "app_role_owner",
        "app_role_truncate",
    ] {
        assert!(
            skipped.iter().any(|i| i.ends_with(rule)),
            "{rule} not skipped: {skipped:?}"
        );
        assert!(
            !ids_with(&report, "pass").iter().any(|i| i.ends_with(rule)),
            "{rule} passed"
        );
    }

    // A table added later without RLS is found by its column and fails the gate.
    db.exec("CREATE TABLE public.forgotten (id int PRIMARY KEY, org_id uuid NOT NULL)")
        .await;
    let (code, out, report, _) = tokio::task::block_in_place(|| audit_cli(&args, dir.path()));
    assert_eq!(code, 1, "{out}");
    assert!(
        ids_with(&report, "fail").contains(&"public.forgotten.rls_enabled".to_string()),
        "{out}"
    );
    assert!(out.contains("ALTER TABLE"), "the fix is shown:\n{out}");
    db.drop().await;
}

/// The suite's `database:` section takes the identity model (extension keys); an
/// unknown preset is a located load error.
#[test]
fn the_suite_declares_the_identity_model() {
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("suites/reference-api.yaml");
    let text = std::fs::read_to_string(path).expect("suite");
    let env = |n: &str| match n {
        "DATABASE_URL" | "APP_DATABASE_URL" => Some("postgres://u:p@127.0.0.1/db".to_string()),
        "JWT_SECRET" => Some("a-secret-of-thirty-two-characters!!".to_string()),
        _ => None,
    };
    let with = |keys: &str| text.replacen("database:\n", &format!("database:\n{keys}"), 1);
    let loaded = tenantgate::suite::load_str(
        "s.yaml",
        &with("  preset: supabase\n  identity_functions: [app.current_user_id]\n  app_roles: [reporting]\n"),
        &env,
    )
    .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
    let model = loaded
        .suite
        .database
        .as_ref()
        .expect("database")
        .tenant_model();
    assert_eq!(model.preset.as_deref(), Some("supabase"));
    assert!(model.identity_functions.contains(&"auth.uid".to_string()));
    assert!(
        model
            .identity_functions
            .contains(&"app.current_user_id".to_string())
    );
    assert!(model.extra_app_roles.contains(&"anon".to_string()));
    assert!(model.extra_app_roles.contains(&"reporting".to_string()));

    // Probe settings take the captures; an unknown one is a located error.
    let probe = |settings: &str| {
        text.replacen(
            "  probe: { url: \"${APP_DATABASE_URL}\" }",
            &format!("  probe: {{ url: \"${{APP_DATABASE_URL}}\", roles: [tg_app], settings: {{ {settings} }} }}"),
            1,
        )
    };
    let loaded = tenantgate::suite::load_str(
        "s.yaml",
        &probe("app.user_id: { a: \"{{a.org_id}}\", b: \"{{b.org_id}}\" }"),
        &env,
    )
    .unwrap_or_else(|e| panic!("{}", e.render(&Redactor::new())));
    let p = loaded
        .suite
        .database
        .as_ref()
        .unwrap()
        .probe
        .as_ref()
        .unwrap();
    assert_eq!(p.settings.iter().count(), 1);
    assert_eq!(p.roles, ["tg_app"]);
    let err = tenantgate::suite::load_str(
        "s.yaml",
        &probe("app.user_id: { a: \"{{a.nope}}\", b: \"{{b.org_id}}\" }"),
        &env,
    )
    .err()
    .expect("an unknown capture is refused");
    let out = err.render(&Redactor::new());
    assert!(
        out.contains("unknown placeholder `{{a.nope}}` in database.probe.settings.app.user_id"),
        "{out}"
    );

    let err = tenantgate::suite::load_str("s.yaml", &with("  preset: firebase\n"), &env)
        .err()
        .expect("an unknown preset is refused");
    let out = err.render(&Redactor::new());
    assert!(
        out.contains("database.preset `firebase` is not a known preset"),
        "{out}"
    );
    assert!(out.contains("supabase"), "{out}");
}

/// The identity flags and the two tenants through the real binary: a sound
/// Supabase-style schema passes for both app roles; `--tenant-a/--tenant-b` run the
/// A/B probes without a suite.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_command_takes_identity_models_and_two_tenants() {
    let dir = tempfile::tempdir().unwrap();
    let mut db = TestDb::create("cli_identity").await;
    db.load(&["supabase_auth", "supabase_sound"]).await;
    let (url, authenticated, anon) = (db.url(), db.role("authenticated"), db.role("anon"));
    let args = [
        "--database-url",
        &url,
        "--app-role",
        &authenticated,
        "--app-role",
        &anon,
        "--identity-function",
        "auth.uid",
        "--identity-function",
        "auth.jwt",
        "--identity-setting",
        "request.jwt.claim*",
    ];
    let (code, out, report, _) = tokio::task::block_in_place(|| audit_cli(&args, dir.path()));
    assert_eq!(code, 0, "{out}");
    assert!(ids_with(&report, "warn").is_empty(), "{out}");
    for role in [&authenticated, &anon] {
        assert!(
            ids_with(&report, "pass").contains(&format!("role.{role}.app_role_bypassrls")),
            "{role}: {out}"
        );
    }
    db.drop().await;

    let mut db = TestDb::create("cli_tenants").await;
    db.load(&["sound"]).await;
    let (url, app_url, app) = (db.url(), db.app_url(), db.role("app_role"));
    let args = [
        "--database-url",
        &url,
        "--app-role",
        &app,
        "--tenant-setting",
        "app.current_org_id",
        "--probe-url",
        &app_url,
        "--tenant-a",
        ORG_A,
        "--tenant-b",
        ORG_B,
    ];
    let (code, out, report, _) = tokio::task::block_in_place(|| audit_cli(&args, dir.path()));
    assert_eq!(code, 0, "{out}");
    let passed = ids_with(&report, "pass");
    assert!(
        passed.contains(&"public.brands.probe_b_sees_no_a".to_string()),
        "{out}"
    );
    assert!(
        passed.contains(&"public.brands.probe_move_row".to_string()),
        "{out}"
    );
    db.drop().await;

    // Claims for the two tenants, a login role that SET ROLEs to the app roles.
    let mut db = TestDb::create("cli_claims").await;
    db.load(&["supabase_auth", "supabase_sound"]).await;
    let sql = db.render(&format!(
        "GRANT {{{{anon}}}}, {{{{authenticated}}}} TO {{{{app_role}}}};
         INSERT INTO accounts (id, name) VALUES ('{ORG_A}', 'A'), ('{ORG_B}', 'B');
         INSERT INTO account_user (account_id, user_id) VALUES ('{ORG_A}', '{USER_A}'), ('{ORG_B}', '{USER_B}');
         INSERT INTO notes (account_id, body) VALUES ('{ORG_A}', 'a'), ('{ORG_B}', 'b');"
    ));
    db.exec(&sql).await;
    let (url, app_url, authenticated, anon) = (
        db.url(),
        db.app_url(),
        db.role("authenticated"),
        db.role("anon"),
    );
    let (ca, cb) = (
        format!("request.jwt.claims={}", claims(USER_A)),
        format!("request.jwt.claims={}", claims(USER_B)),
    );
    let mut args = vec![
        "--database-url",
        &url,
        "--identity-function",
        "auth.uid",
        "--identity-function",
        "auth.jwt",
        "--identity-setting",
        "request.jwt.claims",
        "--app-role",
        &authenticated,
        "--app-role",
        &anon,
        "--probe-url",
        &app_url,
        "--tenant-a",
        ORG_A,
        "--tenant-b",
        ORG_B,
        "--tenant-a-setting",
        &ca,
    ];
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_tenantgate"))
        .arg("audit")
        .args(&args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run tenantgate audit");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        refused.status.code(),
        Some(2),
        "a setting for A only: {err}"
    );
    assert!(
        err.contains("has no --tenant-b-setting request.jwt.claims"),
        "{err}"
    );
    args.extend(["--tenant-b-setting", &cb]);
    let (code, out, report, _) = tokio::task::block_in_place(|| audit_cli(&args, dir.path()));
    let passed = ids_with(&report, "pass");
    for id in [
        "public.notes.probe_b_sees_no_a".to_string(),
        format!("role.{authenticated}.probe_app_role"),
        format!("role.{anon}.probe_app_role"),
    ] {
        assert!(passed.contains(&id), "{id}: {out}");
    }
    assert_eq!(code, 0, "{out}");
    db.drop().await;
}

const USER_A: &str = "00000000-0000-4000-8000-0000000000a1";
const USER_B: &str = "00000000-0000-4000-8000-0000000000b1";

/// The claims PostgREST sets for a signed-in user.
fn claims(user: &str) -> String {
    format!(r#"{{"sub":"{user}","role":"authenticated"}}"#)
}

/// Issue 10 item 6 / issue 11 item 5: the probe logs in as a login role (Supabase's
/// `authenticator`), `SET ROLE`s to each app role inside its rolled-back transaction,
/// and probes as users: a random user, B's user (a member of account B only) through
/// the `request.jwt.claims` setting. An app role with BYPASSRLS behind the login role is
/// exercised and caught; empty tables say "nothing to see", or get a row created for
/// the tenant inside the rolled-back step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_probe_acts_as_each_app_role_and_as_users() {
    let mut db = TestDb::create("probe_roles").await;
    db.load(&["supabase_auth", "supabase_sound", "supabase_pitfalls"])
        .await;
    let sql = db.render(&format!(
        "CREATE ROLE {{{{reporting}}}} NOLOGIN BYPASSRLS;
         GRANT {{{{anon}}}}, {{{{authenticated}}}}, {{{{reporting}}}} TO {{{{app_role}}}};
         GRANT SELECT ON notes TO {{{{reporting}}}};
         INSERT INTO accounts (id, name) VALUES ('{ORG_A}', 'A'), ('{ORG_B}', 'B');
         INSERT INTO account_user (account_id, user_id) VALUES ('{ORG_A}', '{USER_A}'), ('{ORG_B}', '{USER_B}');
         INSERT INTO notes (account_id, body) VALUES ('{ORG_A}', 'a'), ('{ORG_B}', 'b');
         INSERT INTO self_join (id, account_id) VALUES (1, '{ORG_A}'), (2, '{ORG_B}');
         INSERT INTO any_user (id, account_id) VALUES (1, '{ORG_A}');"
    ));
    db.exec(&sql).await;
    let before = snapshot(&db).await;
    let (authenticated, anon, reporting) = (
        db.role("authenticated"),
        db.role("anon"),
        db.role("reporting"),
    );
    let mut cfg = model_config(&mut db, Model::Supabase);
    cfg.probe = Some(ProbeConfig {
        url: db.app_url(),
        orgs: Some(ProbeOrgs {
            a: ORG_A.into(),
            b: ORG_B.into(),
        }),
        settings: vec![db::ProbeSetting {
            name: "request.jwt.claims".into(),
            a: claims(USER_A),
            b: claims(USER_B),
        }],
        roles: Vec::new(), // the audit's app roles: authenticated, then anon
        seeds: Vec::new(),
    });
    let results = db::audit(&cfg, &Redactor::new()).await;
    let probe: Vec<CheckResult> = results
        .iter()
        .filter(|r| r.layer == Layer::Probe)
        .cloned()
        .collect();
    let verdict = |id: &str| get(&probe, id).verdict;
    for role in [&authenticated, &anon] {
        assert_eq!(
            verdict(&format!("role.{role}.probe_app_role")),
            Verdict::Pass,
            "{}",
            show(&probe)
        );
    }
    // The sound membership policy holds for B's user; A's control saw A's note.
    let notes = get(&probe, "public.notes.probe_b_sees_no_a");
    assert_eq!(notes.verdict, Verdict::Pass, "{}", show(&probe));
    assert!(
        notes
            .evidence
            .iter()
            .any(|e| e.label == "control as A" && e.text.contains("1 rows")),
        "{}",
        show(&probe)
    );
    assert_eq!(verdict("public.notes.probe_random_tenant"), Verdict::Pass);
    // The self-join typo: B's user sees A's row; the "any signed-in user" policy lets a
    // random user see it.
    assert_eq!(
        verdict("public.self_join.probe_b_sees_no_a"),
        Verdict::Fail,
        "{}",
        show(&probe)
    );
    assert_eq!(
        verdict("public.any_user.probe_random_tenant"),
        Verdict::Fail
    );
    assert_eq!(verdict("public.any_user.probe_b_sees_no_a"), Verdict::Fail);
    // documents is empty: the probe creates A's row inside its rolled-back step (the
    // members-only policy admits A's user) and B's user still sees none of it.
    let docs = get(&probe, "public.documents.probe_b_sees_no_a");
    assert_eq!(docs.verdict, Verdict::Pass, "{}", show(&probe));
    assert!(docs.summary.contains("created A's row"), "{}", docs.summary);
    let docs_move = get(&probe, "public.documents.probe_move_row");
    assert!(
        docs_move.evidence.iter().any(|e| e.label == "created"),
        "{}",
        show(&probe)
    );
    // invoices is empty and read-only to the app roles: nothing to see.
    let inv = get(&probe, "public.invoices.probe_no_tenant");
    assert_eq!(inv.verdict, Verdict::Skip, "{}", show(&probe));
    assert!(inv.summary.contains("nothing to see"), "{}", inv.summary);
    assert_eq!(
        verdict("public.invoices.probe_b_sees_no_a"),
        Verdict::Skip,
        "no row of A and none can be created"
    );

    // A BYPASSRLS role behind the login role: exercised, and caught.
    cfg.probe.as_mut().unwrap().roles = vec![reporting.clone()];
    let results = db::audit(&cfg, &Redactor::new()).await;
    let r = get(&results, &format!("role.{reporting}.probe_app_role"));
    assert_eq!(r.verdict, Verdict::Fail, "{}", show(&results));
    assert!(r.summary.contains("BYPASSRLS"), "{}", r.summary);
    assert_eq!(
        get(&results, "public.notes.probe_no_tenant").verdict,
        Verdict::Fail,
        "as the BYPASSRLS role every note shows"
    );
    // A role the login role cannot become is an error, never a pass.
    cfg.probe.as_mut().unwrap().roles = vec![db.role("service_role")];
    let results = db::audit(&cfg, &Redactor::new()).await;
    let r = get(
        &results,
        &format!("role.{}.probe_app_role", db.role("service_role")),
    );
    assert_eq!(r.verdict, Verdict::Error, "{}", show(&results));
    assert!(r.summary.contains("cannot SET ROLE"), "{}", r.summary);

    // Nothing any probe did outlives it.
    assert_eq!(snapshot(&db).await, before);
    db.drop().await;
}

/// Issue 10/11: probe settings from the captures. The scoped reference target keys RLS
/// on the user (`app.user_id`), not the org: with `database.probe.settings` naming A's
/// and B's user, the A/B probes run as those users, so the planted membership-policy
/// typo (`m.org_id = org_id`: any member sees every org) is seen by the probe — and the
/// correct target passes every probe.
#[test]
fn probe_settings_from_captures_catch_a_membership_typo_keyed_on_the_user() {
    use tenantgate_reference_api::{ScopedBugs, launch_scoped_at};
    let dir = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/scoped-api.yaml"),
    )
    .expect("suite")
    // The suite declares what it reads; the database section reads three more.
    .replace(
        "env: [SEED_PASSWORD, TARGET_URL]",
        "env: [SEED_PASSWORD, TARGET_URL, DATABASE_URL, APP_ROLE, APP_DATABASE_URL]",
    );
    let suite = dir.path().join("scoped-db.yaml");
    std::fs::write(
        &suite,
        format!(
            "{base}\ndatabase:\n  url: ${{DATABASE_URL}}\n  app_role: ${{APP_ROLE}}\n  tenant_column: org_id\n  identity_settings: [app.user_id]\n  probe:\n    url: \"${{APP_DATABASE_URL}}\"\n    settings:\n      app.user_id: {{ a: \"{{{{a.user_id}}}}\", b: \"{{{{b.user_id}}}}\" }}\n"
        ),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let admin = cluster().admin_url().to_string();
    for (bugs, typo) in [("", false), ("membership-policy-typo", true)] {
        let name = crate::support::unique("tgsd");
        let launched = rt
            .block_on(launch_scoped_at(
                &admin,
                &name,
                &name,
                ScopedBugs::parse(bugs).expect("bugs"),
            ))
            .expect("launch the scoped reference API");
        let json = dir.path().join(format!("{name}.json"));
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tenantgate"));
        cmd.arg("run")
            .arg(&suite)
            .arg("--json")
            .arg(&json)
            .env("TARGET_URL", &launched.base_url)
            .env("DATABASE_URL", &launched.admin_url)
            .env("APP_DATABASE_URL", &launched.app_url)
            .env("APP_ROLE", &launched.app_role)
            .env("NO_COLOR", "1");
        let out = cmd.output().expect("run tenantgate");
        rt.block_on(launched.api.shutdown());
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&json).expect("json report"))
                .expect("json");
        let probe = |verdict: &str| -> Vec<String> {
            report["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["layer"] == "probe" && r["verdict"] == verdict)
                .map(|r| r["id"].as_str().unwrap_or("").to_string())
                .collect()
        };
        let passed = probe("pass");
        assert!(
            passed
                .iter()
                .any(|id| id == "public.memberships.probe_b_sees_no_a"),
            "{stdout}"
        );
        if typo {
            let failed = probe("fail");
            for t in ["projects", "invoices", "api_keys"] {
                assert!(
                    failed.contains(&format!("public.{t}.probe_b_sees_no_a")),
                    "{t}: {failed:?}\n{stdout}"
                );
            }
            assert_eq!(out.status.code(), Some(1), "{stdout}");
        } else {
            assert_eq!(probe("fail"), Vec::<String>::new(), "{stdout}");
            assert_eq!(probe("error"), Vec::<String>::new(), "{stdout}");
            for t in ["projects", "invoices", "api_keys"] {
                assert!(
                    passed.contains(&format!("public.{t}.probe_b_sees_no_a")),
                    "{t}: {passed:?}\n{stdout}"
                );
            }
        }
    }
}

/// Issue 10 item 8, one verdict per layer: in `run`, the probe as A finds A's seeded
/// rows by primary key and `schema.table.layer_verdicts` puts the database verdict next
/// to the HTTP verdict. With subscribers not forced the API still holds: "isolated by
/// the application only" is a failure; on the correct app both layers hold.
#[test]
fn run_reports_one_verdict_per_layer_where_a_seeded_rows_landed() {
    use crate::support::{Target, bundled_suite};
    let suite = bundled_suite();
    let correct = Target::start("");
    let run = correct.run(&suite, &[]);
    let layer = |run: &crate::support::Run, id: &str| -> (String, String) {
        let r = run.json.as_ref().and_then(|j| {
            j["results"]
                .as_array()?
                .iter()
                .find(|r| r["id"] == id)
                .cloned()
        });
        let r = r.unwrap_or_else(|| panic!("no {id}:\n{}", run.explain()));
        (
            r["verdict"].as_str().unwrap_or("").to_string(),
            r["summary"].as_str().unwrap_or("").to_string(),
        )
    };
    let (v, s) = layer(&run, "public.brands.layer_verdicts");
    assert_eq!(v, "pass", "{s}\n{}", run.explain());
    assert!(s.contains("database holds on its own"), "{s}");
    assert_eq!(run.code, 0, "{}", run.explain());
    drop(correct);

    let broken = Target::start("subscribers-not-forced");
    let run = broken.run(&suite, &[]);
    let (v, s) = layer(&run, "public.subscribers.layer_verdicts");
    assert_eq!(v, "fail", "{s}");
    assert!(s.contains("isolated by the application only"), "{s}");
    assert!(s.contains("rls_forced"), "{s}");
    assert_eq!(layer(&run, "public.brands.layer_verdicts").0, "pass");
}

/// Schema per tenant with a probe: the pooled-session probe runs. On a direct connection
/// every session gets its own backend, so it says "nothing to see" (skip) — never a pass
/// it could not have failed — and the probe left no setting behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pooled_session_probe_skips_on_a_direct_connection() {
    let mut db = TestDb::create("carry_over").await;
    db.load(&["schema_tenants_sound"]).await;
    let mut cfg = model_config(&mut db, Model::Schemas);
    cfg.probe = Some(ProbeConfig {
        url: db.app_url(),
        orgs: None,
        ..Default::default()
    });
    let results = db::audit(&cfg, &Redactor::new()).await;
    let r = get(&results, db::carry_over::ID);
    assert_eq!(r.verdict, Verdict::Skip, "{}", show(&results));
    assert!(r.summary.starts_with("nothing to see"), "{}", r.summary);
    db.drop().await;
}
