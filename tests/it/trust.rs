//! Trust on a new user's own suite (issue 8), end to end through the real binary against
//! the reference API: exit 1 only for a proven leak, markers that cannot false-alarm,
//! secrets that never leave, teardown that tells the truth.

use crate::support::{Run, Target, edited_suite};

fn result<'a>(r: &'a Run, id: &str) -> &'a serde_json::Value {
    r.json.as_ref().expect("a JSON report")["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("no result {id}\n{}", r.explain()))
}

fn notices(r: &Run) -> Vec<String> {
    r.json.as_ref().expect("a JSON report")["notices"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.as_str().map(String::from))
        .collect()
}

#[test]
fn a_misspelt_tenant_claim_is_the_suites_mistake_not_a_leak() {
    let t = Target::start("");
    let suite = edited_suite(
        t.dir.path(),
        &[("tenant_claim: org_id", "tenant_claim: orgid")],
    );
    let r = t.run(&suite, &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.ids("fail").is_empty(),
        "{:?}\n{}",
        r.ids("fail"),
        r.explain()
    );
    let jwt = result(&r, "jwt/claim_integrity:token");
    assert_eq!(jwt["verdict"], "error", "{jwt}");
    let summary = jwt["summary"].as_str().unwrap();
    assert!(
        summary.contains("did you mean `org_id`?"),
        "{summary}\n{}",
        r.explain()
    );
}

#[test]
fn a_marker_inside_bs_own_value_never_fails_a_correct_app() {
    let t = Target::start("");
    // B gets a subscriber whose address contains A's: `b-reader-…` holds `reader-…`.
    let suite = edited_suite(
        t.dir.path(),
        &[(
            "    capture: { brand_id: $.id }\n",
            "    capture: { brand_id: $.id }\n  - name: give B a subscriber\n    as: b\n    request: { method: POST, url: /subscribers, json: { email: \"b-reader-{{run_id}}@example.test\", brand_id: \"{{b.brand_id}}\" } }\n    expect: { status: 201 }\n    capture: { subscriber_email: $.email }\n",
        )],
    );
    let r = t.run(&suite, &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(r.ids("fail").is_empty(), "{:?}", r.ids("fail"));
    let n = notices(&r);
    assert!(
        n.iter()
            .any(|x| x.contains("A's `subscriber_email` is not used as a marker")),
        "{n:?}"
    );
}

#[test]
fn a_typo_in_the_token_capture_never_prints_the_token() {
    let t = Target::start("");
    let suite = edited_suite(
        t.dir.path(),
        &[(
            "capture: { token: $.access_token,",
            "capture: { token: $.acces_token,",
        )],
    );
    let r = t.run(&suite, &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let setup = result(&r, "setup/provision-a");
    assert_eq!(setup["verdict"], "error");
    let evidence = setup["evidence"].to_string();
    assert!(
        evidence.contains("access_token"),
        "the answer is shown: {evidence}"
    );
    // Neither stdout, stderr, the JSON report nor JUnit holds a token (JWTs start `eyJ`).
    let all = r.all_output();
    assert!(!all.contains("eyJ"), "a token leaked:\n{all}");
    for s in t.secrets() {
        assert!(!all.contains(&s), "secret {s:?} leaked");
    }
}

#[test]
fn forged_tokens_reach_lists_and_a_token_without_exp_is_sent() {
    let t = Target::start("");
    let r = t.run(&crate::support::bundled_suite(), &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let passed = r.ids("pass");
    for id in [
        "brand-is-invisible-to-b/token_forgery:no_exp",
        "identity/token_forgery:no_exp",
        "brands-list-holds-none-of-a-s-rows/token_forgery:alg_none",
        "brands-list-holds-none-of-a-s-rows/token_forgery:no_exp",
    ] {
        assert!(
            passed.iter().any(|p| p == id),
            "{id} did not pass\n{}",
            r.explain()
        );
    }
    // Evidence on passes: what B actually got, briefly.
    for (id, starts) in [
        ("brand-is-invisible-to-b", "404 application/json"),
        ("brands-list-holds-none-of-a-s-rows", "200 application/json"),
        ("brand-is-invisible-to-b/token_forgery:alg_none", "401"),
    ] {
        let ev = result(&r, id)["evidence"].to_string();
        assert!(
            ev.contains("\"observed\"") && ev.contains(starts),
            "{id}: {ev}"
        );
    }
    drop(t);
    // A list answering a forged token with A's org id is caught on the list too.
    let t = Target::start("alg-none");
    let r = t.run(&crate::support::bundled_suite(), &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let failed = r.ids("fail");
    assert!(
        failed
            .iter()
            .any(|f| f == "brands-list-holds-none-of-a-s-rows/token_forgery:alg_none"),
        "{failed:?}"
    );
}

#[test]
fn filters_and_excludes_select_by_id_or_glob_and_a_dead_filter_is_an_error() {
    let t = Target::start("");
    let suite = crate::support::bundled_suite();
    let r = t.run(
        &suite,
        &[
            "--filter",
            "brand-is-invisible-to-b",
            "--filter",
            "public.brands.*",
            "--exclude",
            "*/token_forgery:*",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let ids: Vec<String> = ["pass", "skip", "warn"]
        .iter()
        .flat_map(|v| r.ids(v))
        .collect();
    assert!(
        ids.iter().any(|i| i == "brand-is-invisible-to-b"),
        "{ids:?}"
    );
    assert!(
        ids.iter().any(|i| i.starts_with("public.brands.")),
        "{ids:?}"
    );
    assert!(
        ids.iter().all(|i| (i.starts_with("brand-is-invisible-to-b")
            || i.starts_with("public.brands."))
            && !i.contains("token_forgery")),
        "{ids:?}"
    );
    // `public` alone is no longer a substring of every database id.
    let r = t.run(&suite, &["--filter", "public"]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let n = notices(&r);
    assert!(
        n.iter().any(|x| x.contains("--filter `public` matches no")),
        "{n:?}"
    );
    assert!(
        r.ids("error").iter().all(|i| i != "setup/filter"),
        "not a result row"
    );
    // Without a database section the mistake is caught before anything is sent.
    let nodb = t.dir.path().join("nodb.yaml");
    let text = std::fs::read_to_string(&suite).unwrap();
    std::fs::write(&nodb, text.split_once("\ndatabase:").unwrap().0).unwrap();
    let r = t.run(&nodb, &["--filter", "brand-is-invisibel-to-b"]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains("did you mean `brand-is-invisible-to-b`?"),
        "{}",
        r.explain()
    );
    assert!(r.json.is_none(), "nothing ran");
}

#[test]
fn one_bug_reads_as_one_block_per_check() {
    let t = Target::start("forbidden-not-404");
    let r = t.run(&crate::support::bundled_suite(), &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let failed = r.ids("fail");
    assert!(failed.len() > 5, "{failed:?}");
    // Every failing variant is named, but its evidence is printed once per check.
    assert!(r.stdout.contains("variants, same finding"), "{}", r.stdout);
    for id in &failed {
        assert!(
            r.stdout.contains(id.as_str()),
            "{id} not named\n{}",
            r.stdout
        );
    }
    let blocks = r.stdout.matches("\nFAIL  ").count();
    assert!(
        blocks < failed.len(),
        "{blocks} blocks for {} failures",
        failed.len()
    );
    let lines = r.stdout.lines().count();
    assert!(lines < 150, "{lines} lines\n{}", r.stdout);
}

fn created(r: &Run) -> Vec<serde_json::Value> {
    r.json.as_ref().expect("a JSON report")["created"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The reference API's `cannot-delete` bug (`DELETE /orgs/{id}` answers 405): the bundled
/// suite's teardown fails, which is an `error` (exit 2), and every item is listed as left
/// behind; "all removed" is never said.
#[test]
fn a_teardown_that_fails_leaves_everything_listed_and_the_run_undecided() {
    let t = Target::start("cannot-delete");
    let r = t.run(&crate::support::bundled_suite(), &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(r.ids("fail").is_empty(), "{:?}", r.ids("fail"));
    let errors = r.ids("error");
    assert!(
        errors.contains(&"setup/teardown-a".to_string())
            && errors.contains(&"setup/teardown-b".to_string()),
        "{errors:?}\n{}",
        r.explain()
    );
    let c = created(&r);
    assert!(!c.is_empty());
    assert!(c.iter().all(|x| x["removed"] == false), "{c:?}");
    assert!(!r.stdout.contains("all removed"), "{}", r.stdout);
    assert!(r.stdout.contains("LEFT ON THE TARGET"), "{}", r.stdout);
}

/// The same API with the suite declaring that orgs cannot be deleted: the failing step is
/// a notice, the run is proven (exit 0), and what stays is listed as kept, with the reason.
#[test]
fn what_the_suite_declares_kept_is_listed_with_its_reason() {
    let t = Target::start("cannot-delete");
    let suite = edited_suite(
        t.dir.path(),
        &[(
            "  teardown:\n    - name: delete org",
            "  teardown:\n    keeps: [{ capture: org_id, reason: \"this API cannot delete orgs\" }]\n    steps:\n    - name: delete org",
        )],
    );
    let r = t.run(&suite, &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let c = created(&r);
    assert!(c.iter().all(|x| x["removed"] == false), "{c:?}");
    let org = c.iter().find(|x| x["what"] == "org").expect("an org item");
    assert_eq!(org["kept"], "this API cannot delete orgs", "{c:?}");
    assert!(
        c.iter().all(|x| x["kept"].is_string()),
        "everything stays with its org: {c:?}"
    );
    assert!(
        notices(&r)
            .iter()
            .any(|n| n.contains("as the suite declares")),
        "{:?}",
        notices(&r)
    );
    assert!(
        r.stdout.contains("(kept: this API cannot delete orgs)"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("all removed"), "{}", r.stdout);
}

/// A teardown that deletes only A's subscriber: that item is removed, nothing else is
/// counted as removed, and B (which never captured a subscriber) skips the step.
#[test]
fn only_what_a_step_addressed_counts_as_removed() {
    let t = Target::start("");
    let suite = edited_suite(
        t.dir.path(),
        &[(
            "      request: { method: DELETE, url: \"/orgs/{{org_id}}\" }",
            "      request: { method: DELETE, url: \"/subscribers/{{subscriber_id}}\" }",
        )],
    );
    let r = t.run(&suite, &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let c = created(&r);
    let removed: Vec<&serde_json::Value> = c.iter().filter(|x| x["removed"] == true).collect();
    assert_eq!(removed.len(), 1, "{c:?}");
    assert_eq!(removed[0]["what"], "add a subscriber", "{c:?}");
    assert!(
        notices(&r)
            .iter()
            .any(|n| n.contains("skipped for org b") && n.contains("subscriber_id")),
        "{:?}",
        notices(&r)
    );
    assert!(r.stdout.contains("LEFT ON THE TARGET"), "{}", r.stdout);
    assert!(!r.stdout.contains("all removed"), "{}", r.stdout);
}

/// `validate --list` names the database results too, marked as needing the database.
#[test]
fn validate_list_names_the_database_rules() {
    let dir = tempfile::tempdir().unwrap();
    let run = |suite: &std::path::Path| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantgate"))
            .args(["validate", "--list", "--no-env"])
            .arg(suite)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let found = run(&crate::support::bundled_suite());
    assert!(
        found.contains("<schema>.<table>.rls_forced  (database: per tenant table found)"),
        "{found}"
    );
    assert!(found.contains("<object>.app_role_bypassrls"), "{found}");
    let declared = edited_suite(
        dir.path(),
        &[(
            "  tenant_column: org_id\n",
            "  tenant_column: org_id\n  tables: [public.brands]\n",
        )],
    );
    let listed = run(&declared);
    assert!(
        listed.contains("public.brands.unique_without_tenant  (database)"),
        "{listed}"
    );
}

/// A table with a global unique e-mail: `unique_without_tenant` warns on it (RLS is sound).
fn add_a_warning(t: &Target) {
    let admin = t.l().admin_url.clone();
    let app = t.l().app_role.clone();
    t.rt.block_on(async move {
        let c = crate::common::connect(&admin).await;
        c.batch_execute(&format!(
            "CREATE TABLE public.newsletter (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), \
               org_id uuid NOT NULL, email text NOT NULL UNIQUE);
             ALTER TABLE public.newsletter ENABLE ROW LEVEL SECURITY;
             ALTER TABLE public.newsletter FORCE ROW LEVEL SECURITY;
             CREATE POLICY tenant_isolation ON public.newsletter FOR ALL TO {app}
               USING (org_id = NULLIF(current_setting('app.current_org_id', true), '')::uuid)
               WITH CHECK (org_id = NULLIF(current_setting('app.current_org_id', true), '')::uuid);
             GRANT SELECT, INSERT ON public.newsletter TO {app};"
        ))
        .await
        .expect("create the table");
    });
}

const WARNING: &str = "public.newsletter.unique_without_tenant";

#[test]
fn an_accepted_warning_stays_visible_and_does_not_fail_deny_warnings() {
    let t = Target::start("");
    add_a_warning(&t);
    // Without an accept entry the warning fails --deny-warnings.
    // (The attestation promise counts the tables, so the extra one contradicts it.)
    let plain = t.run(
        &crate::support::bundled_suite(),
        &["--deny-warnings", "--exclude", "promise.attestation*"],
    );
    assert_eq!(plain.code, 1, "{}", plain.explain());
    assert!(
        plain.stdout.contains("1 warning denied by --deny-warnings"),
        "{}",
        plain.stdout
    );
    assert_eq!(result(&plain, WARNING)["verdict"], "warn");
    assert!(result(&plain, WARNING).get("accepted").is_none());

    // Accepted by a glob, with a reason: exit 0, and every report says so.
    let suite = edited_suite(
        t.dir.path(),
        &[(
            "\ndatabase:\n",
            "\naccept:\n  - { id: \"public.newsletter.*\", reason: \"newsletter e-mails are global by design\" }\n  - { id: \"public.nothing.rls_forced\", reason: \"stale entry\" }\ndatabase:\n",
        )],
    );
    let sarif = t.dir.path().join("r.sarif");
    let html = t.dir.path().join("r.html");
    let r = t.run(
        &suite,
        &[
            "--deny-warnings",
            "--exclude",
            "promise.attestation*",
            "--sarif",
            sarif.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let w = result(&r, WARNING);
    assert_eq!(w["verdict"], "warn", "the verdict stays a warning");
    assert_eq!(w["accepted"], "newsletter e-mails are global by design");
    assert_eq!(
        r.json.as_ref().unwrap()["counts"]["accepted"],
        1,
        "{}",
        r.explain()
    );
    assert!(
        r.stdout.contains("accepted: newsletter e-mails are global"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 warning (1 accepted)"), "{}", r.stdout);
    assert!(
        notices(&r)
            .iter()
            .any(|n| n.contains("accept `public.nothing.rls_forced` matched no warning")),
        "{:?}",
        notices(&r)
    );
    let junit = r.junit.as_deref().unwrap();
    assert!(
        junit.contains("warning (accepted: newsletter e-mails are global by design)"),
        "{junit}"
    );
    let sarif: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sarif).unwrap()).unwrap();
    let res = sarif["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["properties"]["id"] == WARNING)
        .expect("the accepted warning is in the SARIF log");
    assert_eq!(res["suppressions"][0]["kind"], "inSource");
    assert_eq!(
        res["suppressions"][0]["justification"],
        "newsletter e-mails are global by design"
    );
    assert!(
        std::fs::read_to_string(&html)
            .unwrap()
            .contains("— accepted: newsletter e-mails are global by design")
    );
}

#[test]
fn an_accept_entry_needs_a_real_reason_and_never_accepts_a_failure() {
    let t = Target::start("mentions-rls-off");
    let placeholder = edited_suite(
        t.dir.path(),
        &[(
            "\ndatabase:\n",
            "\naccept:\n  - { id: \"public.mentions.*\", reason: \"TODO: why this is acceptable\" }\n  - { id: \"\", reason: \"x\" }\ndatabase:\n",
        )],
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tenantgate"))
        .args(["validate", "--no-env"])
        .arg(&placeholder)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("accepting `public.mentions.*` needs a reason a reviewer can check"),
        "{err}"
    );
    assert!(
        err.contains("an `accept:` entry needs the id of the warning it accepts"),
        "{err}"
    );

    // A reason does not turn a failure into anything else.
    let suite = edited_suite(
        t.dir.path(),
        &[(
            "\ndatabase:\n",
            "\naccept:\n  - { id: \"public.mentions.*\", reason: \"we know\" }\ndatabase:\n",
        )],
    );
    let r = t.run(&suite, &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let f = result(&r, "public.mentions.rls_enabled");
    assert_eq!(f["verdict"], "fail");
    assert!(f.get("accepted").is_none());
    assert!(
        notices(&r)
            .iter()
            .any(|n| n.contains("only warnings can be accepted")),
        "{:?}",
        notices(&r)
    );
}

/// `delete-keeps-data`: `DELETE /orgs/{id}` answers 204 and deletes nothing. A's re-read of
/// its brand (the URL of the suite's read check) still answers 200, so the brand and its
/// org are listed as left behind and the run is undecided; on the correct API the same
/// re-read gets 404 and everything counts as removed.
#[test]
fn a_teardown_that_only_says_it_deleted_is_found_out_by_a_re_read() {
    let t = Target::start("delete-keeps-data");
    let r = t.run(&crate::support::bundled_suite(), &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(r.ids("fail").is_empty(), "{:?}", r.ids("fail"));
    assert!(
        r.ids("error")
            .contains(&"setup/teardown-a/left".to_string()),
        "{}",
        r.explain()
    );
    assert!(
        r.stdout.contains("answered success, but A still reads"),
        "{}",
        r.stdout
    );
    let c = created(&r);
    for what in ["org", "create brand"] {
        let item = c
            .iter()
            .find(|x| x["org"] == "a" && x["what"] == what)
            .unwrap_or_else(|| panic!("no {what} in {c:?}"));
        assert_eq!(item["removed"], false, "{item:?}");
    }
    assert!(!r.stdout.contains("all removed"), "{}", r.stdout);

    let clean = Target::start("");
    let r = clean.run(&crate::support::bundled_suite(), &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(created(&r).iter().all(|x| x["removed"] == true));
    assert!(r.stdout.contains("all removed by teardown"), "{}", r.stdout);
}

/// A seed step run `as: anon` makes something no org owns (here a third org, signed up
/// anonymously): it is listed under `anon` and as left behind — never "all removed" —
/// unless `teardown.keeps` names its capture, when it is reported as kept.
#[test]
fn what_an_anonymous_seed_step_made_is_listed_as_left_behind() {
    let t = Target::start("");
    let step = "seed:\n  - name: an anonymous sign-up\n    as: anon\n    request: { method: POST, url: /auth/signup, json: { org_name: \"tg-{{run_id}}-stray\", email: \"stray-{{run_id}}@example.test\", password: \"correct-horse-battery-staple\" } }\n    expect: { status: 201 }\n    capture: { stray_org: $.org.id }\n";
    let suite = edited_suite(t.dir.path(), &[("seed:\n", step)]);
    let r = t.run(&suite, &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let c = created(&r);
    let stray = c
        .iter()
        .find(|x| x["what"] == "an anonymous sign-up")
        .unwrap_or_else(|| panic!("{c:?}"));
    assert_eq!(stray["org"], "anon", "{stray:?}");
    assert_eq!(stray["removed"], false, "{stray:?}");
    assert!(r.stdout.contains("LEFT ON THE TARGET"), "{}", r.stdout);
    assert!(!r.stdout.contains("all removed"), "{}", r.stdout);

    let kept = edited_suite(
        t.dir.path(),
        &[
            ("seed:\n", step),
            (
                "  teardown:\n    - name: delete org",
                "  teardown:\n    keeps: [{ capture: stray_org, reason: \"signed up without credentials; deleted by the nightly cleanup\" }]\n    steps:\n    - name: delete org",
            ),
        ],
    );
    let r = t.run(&kept, &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let c = created(&r);
    let stray = c.iter().find(|x| x["org"] == "anon").unwrap();
    assert_eq!(
        stray["kept"],
        "signed up without credentials; deleted by the nightly cleanup"
    );
}
