//! The CI commands end to end through the real binary: `run --partition K/N` slices of
//! the bundled suite against the reference API merged by `tenantgate merge` into the
//! same results as one unpartitioned run; a missing or foreign slice refused with exit
//! 2; `list` and `baseline` on real files.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::{Target, bundled_suite, unique};

fn ids(report: &serde_json::Value) -> BTreeSet<String> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

fn tenantgate(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tenantgate"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run tenantgate")
}

fn merge(dir: &Path, reports: &[&Path]) -> (i32, String, Option<serde_json::Value>) {
    let json = dir.join(format!("{}.json", unique("merged")));
    let sarif = dir.join(format!("{}.sarif", unique("merged")));
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "merge".as_ref(),
        "--json".as_ref(),
        json.as_ref(),
        "--sarif".as_ref(),
        sarif.as_ref(),
    ];
    args.extend(reports.iter().map(|p| p.as_os_str()));
    let out = tenantgate(&args);
    let report = std::fs::read_to_string(&json)
        .ok()
        .map(|t| serde_json::from_str(&t).unwrap());
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        report,
    )
}

#[test]
fn three_slices_merged_equal_one_unpartitioned_run() {
    let t = Target::start("");
    let whole = t.run(&bundled_suite(), &[]);
    assert_eq!(whole.code, 0, "{}", whole.explain());
    let whole_ids = ids(whole.json.as_ref().unwrap());

    let mut paths = Vec::new();
    let mut check_ids: Vec<BTreeSet<String>> = Vec::new();
    for k in 1..=3 {
        let slice = format!("{k}/3");
        let r = t.run(&bundled_suite(), &["--partition", &slice, "--quiet"]);
        assert_eq!(r.code, 0, "slice {slice}: {}", r.explain());
        assert_eq!(r.stdout.lines().count(), 1, "--quiet: {}", r.stdout);
        let json = r.json.clone().unwrap();
        assert_eq!(
            json["partition"],
            serde_json::json!({"index": k, "total": 3})
        );
        let db = json["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["layer"] == "database");
        assert_eq!(db, k == 1, "the database audit runs in slice 1 only");
        check_ids.push(
            json["results"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["layer"] == "http" || r["layer"] == "attack")
                .map(|r| r["id"].as_str().unwrap().to_string())
                .collect(),
        );
        let p = t.dir.path().join(format!("slice{k}.json"));
        std::fs::write(&p, serde_json::to_string(&json).unwrap()).unwrap();
        paths.push(p);
    }
    for (i, a) in check_ids.iter().enumerate() {
        assert!(!a.is_empty(), "slice {} ran no check", i + 1);
        for b in &check_ids[i + 1..] {
            assert!(a.is_disjoint(b), "a check ran in two slices");
        }
    }

    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let (code, stderr, merged) = merge(t.dir.path(), &refs);
    assert_eq!(code, 0, "{stderr}");
    let merged = merged.expect("the merged JSON report");
    assert_eq!(ids(&merged), whole_ids);
    assert_eq!(merged["exit_code"], 0);
    assert!(merged.get("partition").is_none());

    // A missing slice, or a slice of another suite, is undecided and writes nothing.
    let (code, stderr, report) = merge(t.dir.path(), &refs[..2]);
    assert_eq!(code, 2);
    assert!(stderr.contains("slice(s) 3 of 3 missing"), "{stderr}");
    assert!(report.is_none());
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&paths[2]).unwrap()).unwrap();
    other["suite"]["sha256"] = "0000".into();
    let foreign = t.dir.path().join("foreign.json");
    std::fs::write(&foreign, other.to_string()).unwrap();
    let (code, stderr, _) = merge(t.dir.path(), &[refs[0], refs[1], &foreign]);
    assert_eq!(code, 2);
    assert!(stderr.contains("suite digest"), "{stderr}");

    // Every slice auditing the database: the database results appear once each.
    let all = t.run(
        &bundled_suite(),
        &["--partition", "2/3", "--partition-db", "all"],
    );
    assert!(
        all.json.as_ref().unwrap()["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["layer"] == "database"),
        "{}",
        all.explain()
    );
}

#[test]
fn a_bad_partition_is_a_located_command_line_error() {
    for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
        let out = tenantgate(&[
            "run".as_ref(),
            bundled_suite().as_os_str(),
            "--partition".as_ref(),
            bad.as_ref(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--partition"),
            "{bad}"
        );
    }
}

#[test]
fn list_shows_the_plan_without_environment() {
    let out = tenantgate(&["list".as_ref(), bundled_suite().as_os_str()]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let validate = tenantgate(&[
        "validate".as_ref(),
        "--no-env".as_ref(),
        "--list".as_ref(),
        bundled_suite().as_os_str(),
    ]);
    let listed: Vec<&str> = std::str::from_utf8(&validate.stdout)
        .unwrap()
        .lines()
        .skip(3)
        .collect();
    assert!(!listed.is_empty());
    for line in listed {
        // A database line carries what it needs after its id: `ID  (database)`.
        let id = line.split("  ").next().unwrap_or(line);
        assert!(
            text.contains(&format!("  {id}  [")),
            "{id} missing from:\n{text}"
        );
    }
    assert!(text.contains("<schema>.<table>.rls_enabled  ["), "{text}");
}

#[test]
fn baseline_writes_an_accept_list_of_the_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    std::fs::write(
        &report,
        serde_json::json!({"results": [
            {"id": "public.users.unique_without_tenant", "check": "public.users", "variant": "unique_without_tenant",
             "layer": "database", "verdict": "warn", "summary": "unique (email) without org_id", "evidence": [], "duration_ms": 0},
            {"id": "brand", "check": "brand", "variant": "base", "layer": "http", "verdict": "pass",
             "summary": "ok", "evidence": [], "duration_ms": 3}
        ]})
        .to_string(),
    )
    .unwrap();
    let accept = dir.path().join("accept.yaml");
    let out = tenantgate(&[
        "baseline".as_ref(),
        report.as_os_str(),
        "-o".as_ref(),
        accept.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let y = std::fs::read_to_string(&accept).unwrap();
    assert!(y.contains(
        "- { id: \"public.users.unique_without_tenant\", reason: \"TODO: why this is acceptable\" }"
    ), "{y}");
    assert!(!y.contains("\"brand\""));
    let out = tenantgate(&[
        "baseline".as_ref(),
        dir.path().join("none.json").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_command_line_definition_is_consistent() {
    use clap::CommandFactory as _;
    tenantgate::cli::Cli::command().debug_assert();
}

fn reference_openapi() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/reference-api/openapi.yaml")
}

#[test]
fn init_writes_a_starter_suite_that_validates() {
    let dir = tempfile::tempdir().unwrap();
    let suite = dir.path().join("starter.yaml");
    let out = tenantgate(&[
        "init".as_ref(),
        "--openapi".as_ref(),
        reference_openapi().as_os_str(),
        "-o".as_ref(),
        suite.as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&suite).unwrap();
    for want in [
        "read: \"/brands/{{a.brands_id}}\"",
        "list: \"/monitoring/mentions\"",
        "write: { method: PATCH, url: \"/brands/{{a.brands_id}}\"",
        "capture: { brands_id: $.id }",
        "# TODO",
        "openapi:\n  spec: ",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let v = tenantgate(&["validate".as_ref(), "--no-env".as_ref(), suite.as_os_str()]);
    assert_eq!(
        v.status.code(),
        Some(0),
        "{}\n{text}",
        String::from_utf8_lossy(&v.stderr)
    );
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "swagger: '2.0'\npaths: {}\n").unwrap();
    let out = tenantgate(&["init".as_ref(), "--openapi".as_ref(), bad.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an OpenAPI 3 document"));
}

#[test]
fn the_coverage_gate_never_passes_an_uncovered_operation() {
    let t = Target::start("");
    let spec = reference_openapi();
    let spec = spec.to_str().unwrap();
    let r = t.run(&bundled_suite(), &["--openapi", spec]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let passed = r.ids("pass");
    assert!(
        passed.iter().any(|i| i == "openapi/GET /brands/{id}"),
        "{passed:?}"
    );
    assert!(r.ids("skip").iter().any(|i| i == "openapi/POST /brands"));
    // Without its exemption, an operation no check covers makes the run undecided.
    let edited = crate::support::edited_suite(
        t.dir.path(),
        &[(
            "    - operation: POST /brands\n",
            "    - operation: POST /not-in-the-spec\n",
        )],
    );
    let r = t.run(&edited, &["--openapi", spec]);
    assert_eq!(r.code, 2, "{}", r.explain());
    let errors = r.ids("error");
    assert!(
        errors.iter().any(|i| i == "openapi/POST /brands"),
        "{errors:?}"
    );
    assert!(
        errors.iter().any(|i| i == "openapi/POST /not-in-the-spec"),
        "{errors:?}"
    );
}

fn suites_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("suites")
}

/// `tenantgate schema` is what `suites/suite.schema.json` holds: the committed copy is
/// regenerated whenever the suite model changes.
#[test]
fn the_committed_suite_schema_is_current() {
    let out = tenantgate(&["schema".as_ref()]);
    assert_eq!(out.status.code(), Some(0));
    let committed = std::fs::read_to_string(suites_dir().join("suite.schema.json")).unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout) == committed,
        "suites/suite.schema.json is stale: run `cargo run -q -- schema > suites/suite.schema.json`"
    );
}

/// Every bundled suite names the schema in its modeline and validates against it (by
/// Python's `jsonschema`, an independent reader), and a wrong suite does not.
#[test]
fn bundled_suites_carry_the_modeline_and_validate_against_the_schema() {
    let dir = tempfile::tempdir().unwrap();
    let mut good = Vec::new();
    for e in std::fs::read_dir(suites_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(
            text.starts_with("# yaml-language-server: $schema=./suite.schema.json\n"),
            "{} has no schema modeline",
            p.display()
        );
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        let j = dir
            .path()
            .join(p.file_name().unwrap())
            .with_extension("json");
        std::fs::write(&j, v.to_string()).unwrap();
        good.push(j);
    }
    assert!(good.len() >= 4, "{good:?}");
    let mut bad = Vec::new();
    for (i, doc) in [
        serde_json::json!({"version": 1, "name": "x", "frobnicate": true}),
        serde_json::json!({"version": 1, "name": "x", "checks": [{"name": "c", "read": 5}]}),
        serde_json::json!({"version": 1, "name": "x", "attacks": {"token_forgery": "yes"}}),
        serde_json::json!({"name": "x"}),
    ]
    .iter()
    .enumerate()
    {
        let p = dir.path().join(format!("bad{i}.json"));
        std::fs::write(&p, doc.to_string()).unwrap();
        bad.push(p);
    }
    let mut py = std::process::Command::new("python3");
    py.args(["-c", "import jsonschema"]);
    if crate::reports::tool("python3 with jsonschema", "pip install jsonschema", &mut py).is_none()
    {
        return;
    }
    let schema = suites_dir().join("suite.schema.json");
    let mut args: Vec<&Path> = vec![&schema];
    args.extend(good.iter().map(|p| p.as_path()));
    args.push(Path::new("--"));
    args.extend(bad.iter().map(|p| p.as_path()));
    let got = crate::reports::python("check_suite_schema.py", &args);
    assert_eq!(got["bad"], 4, "{got}");
}
