//! GraphQL APIs (issue 11) end to end: the real binary with `suites/graphql-api.yaml`
//! against the GraphQL reference target (`POST /graphql` over the reference RLS schema,
//! PostGraphile-style fields, 403 for a bad token) on a real PostgreSQL. The correct app
//! passes with every built-in attack on; each planted bug fails with the check one
//! would expect and no other.

use std::path::{Path, PathBuf};
use std::process::Command;

use tenantgate_reference_api::{GqlBugs, Launched, launch_graphql_at};

use crate::support::{Run, unique};

/// The GraphQL reference target running with some bugs.
struct Gql {
    rt: tokio::runtime::Runtime,
    launched: Option<Launched>,
    dir: tempfile::TempDir,
}

impl Gql {
    fn start(bugs: &str) -> Gql {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let name = unique("tgql");
        let bugs = GqlBugs::parse(bugs).expect("known bugs");
        let admin = crate::common::cluster().admin_url().to_string();
        let launched = rt
            .block_on(launch_graphql_at(&admin, &name, &name, bugs))
            .expect("launch the GraphQL reference API");
        Gql {
            rt,
            launched: Some(launched),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self) -> Run {
        let l = self.launched.as_ref().unwrap();
        let json = self.dir.path().join(format!("{}.json", unique("r")));
        let junit = self.dir.path().join(format!("{}.xml", unique("r")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
        cmd.arg("run")
            .arg(suite())
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .env("TARGET_URL", &l.base_url)
            .env("JWT_SECRET", &l.jwt_secret)
            .env("NO_COLOR", "1");
        Run::of(cmd, json, junit)
    }
}

impl Drop for Gql {
    fn drop(&mut self) {
        if let Some(l) = self.launched.take() {
            self.rt.block_on(l.api.shutdown());
        }
    }
}

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/graphql-api.yaml")
}

#[test]
fn the_correct_graphql_app_passes_with_every_attack_on() {
    let t = Gql::start("");
    let r = t.run();
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(r.ids("error").is_empty(), "{}", r.explain());
    let passed = r.ids("pass");
    for expected in [
        "brand-is-invisible-to-b",
        "brand-is-invisible-to-b/tenant_override:header:X-Org-Id",
        "brand-is-invisible-to-b/tenant_override:body:org_id",
        "brand-is-invisible-to-b/tenant_override:body:orgId",
        "brand-is-invisible-to-b/token_forgery:alg_none",
        "brand-is-invisible-to-b/token_forgery:tampered",
        "brand-is-invisible-to-b/token_forgery:random_key",
        "brand-is-invisible-to-b/token_forgery:expired",
        "brand-is-invisible-to-b/token_forgery:no_exp",
        "brand-list-holds-none-of-a-s",
        "brand-list-holds-none-of-a-s/token_forgery:alg_none",
        "anonymous-brand-list-holds-none-of-a-s",
        "b-cannot-rename-a-s-brand",
        "b-cannot-rename-a-s-brand/tenant_override:body:orgId",
        "brands-b-creates-stay-in-b",
        "jwt/claim_integrity:token",
        "pool-reuse",
    ] {
        assert!(
            passed.iter().any(|p| p == expected),
            "{expected} did not pass\n{}",
            r.explain()
        );
    }
    let created = r.json.as_ref().unwrap()["created"]
        .as_array()
        .unwrap()
        .clone();
    assert!(created.iter().all(|c| c["removed"] == true), "{created:?}");
}

/// Each planted bug and the patterns every failing result id must contain.
const BUGS: &[(&str, &[&str])] = &[
    ("definer-field", &["brand-is-invisible-to-b"]),
    (
        "view-connection",
        &["brand-list-holds-none-of-a-s", "anonymous-brand-list"],
    ),
    (
        "insert-without-tenant-check",
        &["brands-b-creates-stay-in-b"],
    ),
    (
        "anon-fail-open",
        &["anonymous-brand-list-holds-none-of-a-s"],
    ),
    ("alg-none", &["/token_forgery:alg_none"]),
];

fn assert_caught(bug: &str) {
    let patterns = BUGS
        .iter()
        .find(|(b, _)| *b == bug)
        .map(|(_, p)| *p)
        .expect("listed in BUGS");
    let t = Gql::start(bug);
    let r = t.run();
    assert_eq!(r.code, 1, "{bug}: {}", r.explain());
    let failed = r.ids("fail");
    assert!(
        failed.iter().any(|f| f.contains(patterns[0])),
        "{bug}: {failed:?}"
    );
    for f in &failed {
        assert!(
            patterns.iter().any(|p| f.contains(p)),
            "{bug}: unexpected failure {f}\nall failures: {failed:?}"
        );
    }
}

macro_rules! bug_tests {
    ($($test:ident => $bug:literal),* $(,)?) => {
        $(#[test] fn $test() { assert_caught($bug); })*
    };
}

bug_tests! {
    graphql_catches_definer_field => "definer-field",
    graphql_catches_view_connection => "view-connection",
    graphql_catches_insert_without_tenant_check => "insert-without-tenant-check",
    graphql_catches_anon_fail_open => "anon-fail-open",
    graphql_catches_alg_none => "alg-none",
}
