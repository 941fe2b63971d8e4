//! Unit tests of the rules on hand-built catalogs.

use std::time::Duration;

use super::super::catalog::*;
use super::policies::{parenthesized, policy_def};
use super::roles::Roles;
use super::*;
use crate::outcome::{CheckResult, Verdict};

fn rel(oid: Oid, name: &str, owner: Oid) -> RelRow {
    RelRow {
        oid,
        schema: "public".into(),
        name: name.into(),
        kind: 'r',
        rls: true,
        force: true,
        owner,
        parent: None,
        security_invoker: false,
        privs: Some(Privs {
            select: true,
            insert: true,
            update: true,
            delete: true,
            truncate: false,
        }),
    }
}

fn role(oid: Oid, name: &str) -> RoleRow {
    RoleRow {
        oid,
        name: name.into(),
        superuser: false,
        bypassrls: false,
        inherit: true,
    }
}

fn policy(
    rel: Oid,
    name: &str,
    cmd: char,
    permissive: bool,
    using: Option<&str>,
    check: Option<&str>,
) -> PolicyRow {
    PolicyRow {
        rel,
        name: name.into(),
        cmd,
        permissive,
        roles: vec![0],
        using: using.map(str::to_string),
        with_check: check.map(str::to_string),
    }
}

const KEY: &str = "(org_id = (current_setting('app.current_org_id'::text, true))::uuid)";

fn base() -> Catalog {
    Catalog {
        server_version_num: 150000,
        current_user: "postgres".into(),
        roles: vec![role(10, "owner"), role(20, "app"), role(30, "admin")],
        app_role: Some(20),
        schemas: vec![SchemaRow {
            name: "public".into(),
            app_usage: Some(true),
        }],
        relations: vec![rel(100, "brands", 10)],
        tenant_columns: vec![ColRow {
            rel: 100,
            name: "org_id".into(),
            type_name: "uuid".into(),
        }],
        ..Default::default()
    }
}

fn run(cat: &Catalog) -> Vec<CheckResult> {
    let cols = vec!["org_id".to_string()];
    let opts = Options {
        tenant_columns: &cols,
        schemas: &[],
        tables: &[],
        exempt: &[],
        app_role: Some("app"),
        tenant_setting: Some("app.current_org_id"),
        model: None,
    };
    judge(cat, &opts, Duration::ZERO).results
}

fn findings(rs: &[CheckResult]) -> Vec<(String, Verdict)> {
    let mut v: Vec<_> = rs
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Warn | Verdict::Error))
        .map(|r| (r.id.clone(), r.verdict))
        .collect();
    v.sort();
    v
}

#[test]
fn sound_all_policy_without_with_check_is_clean() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "tenant", '*', true, Some(KEY), None));
    let rs = run(&cat);
    assert_eq!(findings(&rs), vec![]);
    // One result per rule per table.
    let n = rs.iter().filter(|r| r.check == "public.brands").count();
    assert_eq!(n, TABLE_RULES.len());
}

#[test]
fn restrictive_gate_makes_using_true_sound() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "read_all", 'r', true, Some("true"), None));
    cat.policies
        .push(policy(100, "gate", '*', false, Some(KEY), None));
    cat.policies
        .push(policy(100, "ins", 'a', true, None, Some(KEY)));
    cat.policies
        .push(policy(100, "upd", 'w', true, Some(KEY), None));
    cat.policies
        .push(policy(100, "del", 'd', true, Some(KEY), None));
    assert_eq!(findings(&run(&cat)), vec![]);
}

#[test]
fn using_true_without_gate_fails() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "open", '*', true, Some("true"), None));
    assert_eq!(
        findings(&run(&cat)),
        vec![("public.brands.policy_constant_true".into(), Verdict::Fail)]
    );
}

#[test]
fn insert_checks() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "sel", 'r', true, Some(KEY), None));
    cat.policies.push(policy(100, "ins", 'a', true, None, None));
    cat.policies
        .push(policy(100, "upd", 'w', true, Some(KEY), None));
    cat.policies
        .push(policy(100, "del", 'd', true, Some(KEY), None));
    assert_eq!(
        findings(&run(&cat)),
        vec![("public.brands.insert_with_check".into(), Verdict::Warn)]
    );
    cat.policies[1].with_check = Some("true".into());
    assert_eq!(
        findings(&run(&cat)),
        vec![("public.brands.insert_with_check".into(), Verdict::Fail)]
    );
    // ALL with a WITH CHECK that drops the tenant.
    cat.policies = vec![policy(
        100,
        "all",
        '*',
        true,
        Some(KEY),
        Some("(name IS NOT NULL)"),
    )];
    assert_eq!(
        findings(&run(&cat)),
        vec![("public.brands.insert_with_check".into(), Verdict::Fail)]
    );
}

#[test]
fn policies_for_other_roles_are_ignored() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "tenant", '*', true, Some(KEY), None));
    let mut admin = policy(100, "admin_all", '*', true, Some("true"), None);
    admin.roles = vec![30];
    cat.policies.push(admin.clone());
    assert_eq!(findings(&run(&cat)), vec![]);
    // ...unless the app inherits that role.
    cat.members.push(MemberRow {
        role: 30,
        member: 20,
        inherit: true,
        set: true,
    });
    let f = findings(&run(&cat));
    assert!(
        f.contains(&("public.brands.policy_constant_true".into(), Verdict::Fail)),
        "{f:?}"
    );
    assert!(
        f.contains(&("public.brands.permissive_or".into(), Verdict::Warn)),
        "{f:?}"
    );
}

#[test]
fn bypassrls_through_two_hops_with_set_only() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "tenant", '*', true, Some(KEY), None));
    cat.roles.push(RoleRow {
        bypassrls: true,
        ..role(40, "etl")
    });
    cat.members.push(MemberRow {
        role: 30,
        member: 20,
        inherit: false,
        set: true,
    });
    cat.members.push(MemberRow {
        role: 40,
        member: 30,
        inherit: false,
        set: true,
    });
    let rs = run(&cat);
    let r = rs
        .iter()
        .find(|r| r.id == "role.app.app_role_bypassrls")
        .expect("result");
    assert_eq!(r.verdict, Verdict::Fail);
    assert!(
        r.evidence.iter().any(|e| e.text == "app → admin → etl"),
        "{:?}",
        r.evidence
    );
}

#[test]
fn owner_membership_counts_for_unforced_tables() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "tenant", '*', true, Some(KEY), None));
    cat.relations[0].force = false;
    cat.members.push(MemberRow {
        role: 10,
        member: 20,
        inherit: true,
        set: true,
    });
    assert_eq!(
        findings(&run(&cat)),
        vec![
            ("public.brands.app_role_owner".into(), Verdict::Fail),
            ("public.brands.rls_forced".into(), Verdict::Fail),
        ]
    );
}

#[test]
fn definer_function_owner_judgement() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "tenant", '*', true, Some(KEY), None));
    cat.definer_functions.push(FuncRow {
        schema: "public".into(),
        name: "signup".into(),
        args: "text".into(),
        owner: 10,
        executable: true,
        source: "INSERT INTO brands (name) VALUES ($1) RETURNING id".into(),
        config: vec!["search_path=public, pg_temp".into()],
        trigger: false,
    });
    assert_eq!(findings(&run(&cat)), vec![]);
    cat.relations[0].force = false; // now the owner bypasses on brands
    let f = findings(&run(&cat));
    assert!(
        f.contains(&("public.signup(text).definer_function".into(), Verdict::Fail)),
        "{f:?}"
    );
    let verdict = |cat: &Catalog| {
        run(cat)
            .into_iter()
            .find(|r| r.id == "public.signup(text).definer_function")
            .map(|r| (r.verdict, r.summary))
            .expect("result")
    };
    // Triage: a trigger function, one naming no tenant table, one checking its caller.
    cat.definer_functions[0].trigger = true;
    assert_eq!(verdict(&cat).0, Verdict::Pass);
    cat.definer_functions[0].trigger = false;
    cat.definer_functions[0].source = "INSERT INTO orgs (name) VALUES ($1)".into();
    assert_eq!(verdict(&cat).0, Verdict::Pass);
    cat.definer_functions[0].source =
        "DELETE FROM brands WHERE org_id = current_setting('app.current_org_id')::uuid".into();
    assert_eq!(verdict(&cat).0, Verdict::Pass);
    // pg_temp first (not listed last) and an unqualified table: shadowable.
    cat.relations[0].force = true;
    cat.definer_functions[0].config = vec!["search_path=public".into()];
    let (v, summary) = verdict(&cat);
    assert_eq!(v, Verdict::Fail);
    assert!(summary.contains("temporary table brands"), "{summary}");
}

#[test]
fn no_app_role_skips_role_checks() {
    let mut cat = base();
    cat.app_role = None;
    cat.policies
        .push(policy(100, "tenant", '*', true, Some(KEY), None));
    let cols = vec!["org_id".to_string()];
    let opts = Options {
        tenant_columns: &cols,
        schemas: &[],
        tables: &[],
        exempt: &[],
        app_role: None,
        tenant_setting: None,
        model: None,
    };
    let rs = judge(&cat, &opts, Duration::ZERO).results;
    for rule in [
        "app_role_superuser",
        "app_role_bypassrls",
        "app_role_owner",
        "app_role_truncate",
        "command_coverage",
    ] {
        let r = rs
            .iter()
            .find(|r| r.id == format!("database.{rule}"))
            .expect(rule);
        assert_eq!(r.verdict, Verdict::Skip);
    }
    assert!(
        !rs.iter()
            .any(|r| r.variant.starts_with("app_role") && r.verdict == Verdict::Pass)
    );
}

#[test]
fn nothing_found_is_an_error_and_missing_tables_too() {
    let mut cat = base();
    cat.tenant_columns.clear();
    let cols = vec!["org_id".to_string()];
    let tables = vec!["public.nope".to_string()];
    let opts = Options {
        tenant_columns: &cols,
        schemas: &[],
        tables: &tables,
        exempt: &[],
        app_role: Some("app"),
        tenant_setting: None,
        model: None,
    };
    let rs = judge(&cat, &opts, Duration::ZERO).results;
    let f = findings(&rs);
    assert!(
        f.contains(&("database.tenant_tables_found".into(), Verdict::Error)),
        "{f:?}"
    );
    assert!(
        f.contains(&("public.nope.table_exists".into(), Verdict::Error)),
        "{f:?}"
    );
}

#[test]
fn exempt_removes_tables() {
    let mut cat = base();
    cat.relations[0].rls = false;
    let cols = vec!["org_id".to_string()];
    let exempt = vec!["brands".to_string()];
    let opts = Options {
        tenant_columns: &cols,
        schemas: &[],
        tables: &[],
        exempt: &exempt,
        app_role: Some("app"),
        tenant_setting: None,
        model: None,
    };
    let rs = judge(&cat, &opts, Duration::ZERO).results;
    assert!(!rs.iter().any(|r| r.check == "public.brands"));
}

#[test]
fn policy_text_is_readable() {
    let cat = base();
    let roles = Roles::new(&cat);
    let p = PolicyRow {
        roles: vec![20],
        ..policy(100, "Tenant", '*', false, Some(KEY), Some("true"))
    };
    assert_eq!(
        policy_def(&p, &roles),
        format!("\"Tenant\" AS RESTRICTIVE FOR ALL TO app USING {KEY} WITH CHECK (true)")
    );
    assert_eq!(parenthesized("(a) OR (b)"), "((a) OR (b))");
}

#[test]
fn unforced_rls_says_who_really_bypasses_it() {
    let mut cat = base();
    cat.policies
        .push(policy(100, "tenant", '*', true, Some(KEY), None));
    cat.relations[0].force = false;
    let evidence = |cat: &Catalog, label: &str| {
        run(cat)
            .into_iter()
            .find(|r| r.id == "public.brands.rls_forced")
            .and_then(|r| r.evidence.into_iter().find(|e| e.label == label))
            .map(|e| e.text)
            .unwrap_or_default()
    };
    assert!(evidence(&cat, "owner").contains("cannot act as"));
    cat.roles[0].superuser = true;
    assert!(evidence(&cat, "owner").contains("FORCE cannot stop it"));
    assert!(evidence(&cat, "fix").contains("OWNER TO"));
    cat.roles[0].superuser = false;
    cat.members.push(MemberRow {
        role: 10,
        member: 20,
        inherit: true,
        set: true,
    });
    assert!(evidence(&cat, "owner").contains("a live leak"));
}
