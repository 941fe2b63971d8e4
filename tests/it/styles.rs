//! The API styles of issue 9 end to end: the real binary with `suites/scoped-api.yaml`
//! against the path-scoped reference target (slugs in paths, integer ids, session
//! cookies, API keys) on a real PostgreSQL. The correct app passes; each planted HTTP bug
//! fails with the checks one would expect and no other.

use std::path::{Path, PathBuf};
use std::process::Command;

use tenantgate_reference_api::{ScopedBugs, ScopedLaunched, launch_scoped_at};

use crate::support::{Run, unique};

/// The scoped reference target running with some bugs.
struct Scoped {
    rt: tokio::runtime::Runtime,
    launched: Option<ScopedLaunched>,
    dir: tempfile::TempDir,
}

impl Scoped {
    fn start(bugs: &str) -> Scoped {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let name = unique("tgsc");
        let bugs = ScopedBugs::parse(bugs).expect("known bugs");
        let admin = crate::common::cluster().admin_url().to_string();
        let launched = rt
            .block_on(launch_scoped_at(&admin, &name, &name, bugs))
            .expect("launch the scoped reference API");
        Scoped {
            rt,
            launched: Some(launched),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn run(&self) -> Run {
        self.run_suite(&suite())
    }

    fn run_suite(&self, suite: &Path) -> Run {
        let json = self.dir.path().join(format!("{}.json", unique("r")));
        let junit = self.dir.path().join(format!("{}.xml", unique("r")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
        cmd.arg("run")
            .arg(suite)
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .env("TARGET_URL", &self.launched.as_ref().unwrap().base_url)
            .env("NO_COLOR", "1");
        Run::of(cmd, json, junit)
    }
}

impl Drop for Scoped {
    fn drop(&mut self) {
        if let Some(l) = self.launched.take() {
            self.rt.block_on(l.api.shutdown());
        }
    }
}

fn suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/scoped-api.yaml")
}

#[test]
fn the_correct_scoped_app_passes_every_check() {
    let t = Scoped::start("");
    let r = t.run();
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(r.ids("error").is_empty(), "{}", r.explain());
    let passed = r.ids("pass");
    for expected in [
        "org-is-invisible-to-b/cross_scope",
        "project-is-invisible-to-b",
        "project-is-invisible-to-b/cross_scope",
        "project-is-invisible-to-b/credential:api_key",
        "project-is-invisible-to-b/tenant_override:header:X-Org",
        "project-list-holds-none-of-a-s/cross_scope",
        "project-list-holds-none-of-a-s/shared_member",
        "invoice-list-holds-none-of-a-s/shared_member",
        "project-is-invisible-to-b/shared_member",
        "invoice-is-invisible-to-b/shared_member",
        "b-cannot-rename-a-s-project",
        "b-cannot-void-a-s-invoice/cross_scope",
        "projects-b-creates-stay-in-b",
        "identity/claim_integrity:identity",
        "session/session:neighbours",
        "session/session:entropy",
        "session/session:logout",
    ] {
        assert!(
            passed.iter().any(|p| p == expected),
            "{expected} did not pass\n{}",
            r.explain()
        );
    }
    // Session ids and API keys are secrets: none is printed (they are 64 hex digits).
    // (The suite file's sha256 is the one long hex string that belongs there.)
    let sha = r.json.as_ref().unwrap()["suite"]["sha256"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let all = r.all_output().replace(&sha, "");
    assert!(!sha.is_empty());
    let hexrun = all
        .as_bytes()
        .split(|b| !b.is_ascii_hexdigit())
        .map(<[u8]>::len)
        .max()
        .unwrap_or(0);
    assert!(
        hexrun < 32,
        "a long hex secret appears in the output:\n{all}"
    );
    let created = r.json.as_ref().unwrap()["created"]
        .as_array()
        .unwrap()
        .clone();
    assert!(created.iter().all(|c| c["removed"] == true), "{created:?}");
    // The member of both orgs made something (its own org): torn down too.
    assert!(created.iter().any(|c| c["org"] == "member"), "{created:?}");
}

/// Fail closed: a "member" that A never added sees nothing of A's anywhere, so its
/// clean answers in B's scope prove nothing — every shared_member variant is an error
/// naming the likely cause, never a pass, and the run exits 2.
#[test]
fn a_member_that_is_not_in_a_is_an_error_not_a_pass() {
    let text = std::fs::read_to_string(suite()).unwrap();
    let start = text.find("      - name: A adds it").unwrap();
    let end = text.find("      - name: B adds it").unwrap();
    let text = format!("{}{}", &text[..start], &text[end..]);
    let t = Scoped::start("");
    let path = t.dir.path().join("member-of-b-only.yaml");
    std::fs::write(&path, text).unwrap();
    let r = t.run_suite(&path);
    assert_eq!(r.code, 2, "{}", r.explain());
    let errors = r.ids("error");
    for id in [
        "project-list-holds-none-of-a-s/shared_member",
        "project-is-invisible-to-b/shared_member",
    ] {
        assert!(errors.iter().any(|e| e == id), "{id}: {}", r.explain());
    }
    assert!(
        errors.iter().all(|e| e.ends_with("/shared_member")),
        "{errors:?}"
    );
    assert!(r.ids("fail").is_empty(), "{}", r.explain());
    assert!(
        r.all_output().contains("is it a member of A?"),
        "{}",
        r.explain()
    );
}

/// The failure names the member and B's scope, and shows A's project in its list.
#[test]
fn the_member_sees_a_s_projects_in_b_s_list_with_list_all_member_orgs() {
    let t = Scoped::start("list-all-member-orgs");
    let r = t.run();
    assert_eq!(r.code, 1, "{}", r.explain());
    let results = r.json.as_ref().unwrap()["results"].as_array().unwrap();
    let res = results
        .iter()
        .find(|x| x["id"] == "project-list-holds-none-of-a-s/shared_member")
        .expect("the shared_member result");
    assert_eq!(res["verdict"], "fail", "{res}");
    let summary = res["summary"].as_str().unwrap_or_default();
    assert!(
        summary.starts_with("the member's list in B's scope holds A's data: ")
            && summary.contains("Apollo "),
        "{res}"
    );
}

/// Each planted HTTP bug and the patterns every failing result id must contain.
const BUGS: &[(&str, &[&str])] = &[
    ("guessable-session", &["session/session:"]),
    ("weak-session-entropy", &["session/session:entropy"]),
    ("logout-keeps-session", &["session/session:logout"]),
    ("api-key-any-org", &["/credential:api_key"]),
    (
        "slug-header-override",
        &[
            "/tenant_override:header:X-Org",
            "/tenant_override:query:org",
        ],
    ),
    ("member-check-missing", &["invoice"]),
    ("integer-id-oracle", &["invoice-is-invisible-to-b"]),
    (
        "slug-existence-oracle",
        &["/cross_scope", "/credential:api_key"],
    ),
    ("mass-assignment", &["projects-b-creates-stay-in-b"]),
    (
        "list-all-member-orgs",
        &["project-list-holds-none-of-a-s/shared_member"],
    ),
    (
        "cross-scope-id",
        &["project-is-invisible-to-b", "b-cannot-rename-a-s-project"],
    ),
];

fn assert_caught(bug: &str) {
    let patterns = BUGS
        .iter()
        .find(|(b, _)| *b == bug)
        .map(|(_, p)| *p)
        .expect("listed in BUGS");
    let t = Scoped::start(bug);
    let r = t.run();
    assert_eq!(r.code, 1, "{bug}: {}", r.explain());
    let failed = r.ids("fail");
    assert!(!failed.is_empty(), "{bug}");
    for f in &failed {
        assert!(
            patterns.iter().any(|p| f.contains(p)),
            "{bug}: unexpected failure {f}\nall failures: {failed:?}"
        );
    }
    assert!(
        r.ids("error").is_empty(),
        "{bug}: errors {:?}\n{}",
        r.ids("error"),
        r.explain()
    );
}

macro_rules! bug_tests {
    ($($test:ident => $bug:literal),* $(,)?) => {
        $(#[test] fn $test() { assert_caught($bug); })*
    };
}

bug_tests! {
    scoped_catches_guessable_session => "guessable-session",
    scoped_catches_weak_session_entropy => "weak-session-entropy",
    scoped_catches_logout_keeps_session => "logout-keeps-session",
    scoped_catches_api_key_any_org => "api-key-any-org",
    scoped_catches_slug_header_override => "slug-header-override",
    scoped_catches_member_check_missing => "member-check-missing",
    scoped_catches_integer_id_oracle => "integer-id-oracle",
    scoped_catches_slug_existence_oracle => "slug-existence-oracle",
    scoped_catches_mass_assignment => "mass-assignment",
    scoped_catches_cross_scope_id => "cross-scope-id",
    scoped_catches_list_all_member_orgs => "list-all-member-orgs",
}
