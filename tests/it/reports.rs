//! The report files end to end: the real binary against the reference API with a planted
//! bug and a hostile `<script>` in A's data, every report read back by an independent
//! reader — JUnit by Python's junitparser, SARIF by the `jsonschema` package against
//! the official SARIF 2.1.0 schema, the HTML page by a real headless Chromium — and
//! compared with the JSON report.
//!
//! The tools are installed by `.ci/run`, which then sets `TENANTGATE_REPORT_TOOLS=required`
//! so that a missing tool fails the test there; elsewhere a missing tool skips that part
//! with a message saying what to install.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::{Run, Target, edited_suite};

const EVIL: &str = "<script>alert('tg')</script>";

pub(crate) fn tools_required() -> bool {
    std::env::var("TENANTGATE_REPORT_TOOLS").is_ok_and(|v| v == "required")
}

/// `Some(())` when `check` succeeds; else panics under `TENANTGATE_REPORT_TOOLS=required`,
/// or prints why the part is skipped.
pub(crate) fn tool(what: &str, install: &str, check: &mut Command) -> Option<()> {
    let ok = check.output().is_ok_and(|o| o.status.success());
    if ok {
        return Some(());
    }
    assert!(
        !tools_required(),
        "{what} is required (TENANTGATE_REPORT_TOOLS=required) but missing: {install}"
    );
    eprintln!("SKIPPED: the {what} check: {what} is not installed ({install})");
    None
}

pub(crate) fn python(script: &str, args: &[&Path]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/tools")
        .join(script);
    let out = Command::new("python3")
        .arg(path)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "{script} found problems:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the checker prints JSON")
}

fn read_json(p: &Path) -> Value {
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// One run with `--reports DIR`: the run, and the directory.
fn run_into(t: &Target, suite: &Path, label: &str) -> (Run, PathBuf) {
    let dir = t.dir.path().join(label);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
    cmd.arg("run").arg(suite).arg("--reports").arg(&dir);
    for (k, v) in t.env() {
        cmd.env(k, v);
    }
    cmd.env("NO_COLOR", "1");
    let r = Run::of(cmd, dir.join("report.json"), dir.join("junit.xml"));
    (r, dir)
}

#[test]
fn every_report_is_read_back_by_an_independent_reader() {
    let t = Target::start("tenant-from-header");
    let suite = edited_suite(
        t.dir.path(),
        &[(
            "name: \"Acme {{run_id}}\"",
            &format!("name: \"{EVIL} Acme {{{{run_id}}}}\""),
        )],
    );
    let (r, dir) = run_into(&t, &suite, "one");
    assert_eq!(r.code, 1, "{}", r.explain());
    for f in tenantgate::report::files::REPORT_FILES {
        assert!(dir.join(f).is_file(), "{f} not written\n{}", r.explain());
    }
    let json = read_json(&dir.join("report.json"));
    assert_eq!(
        &json,
        r.json.as_ref().unwrap(),
        "--reports and --json agree"
    );
    let counts = &json["counts"];
    let ids = |verdicts: &[&str]| -> BTreeSet<String> {
        json["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| verdicts.contains(&x["verdict"].as_str().unwrap()))
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };

    // Attestation: the suite's digest, and the ids by outcome.
    let st = read_json(&dir.join("attestation.intoto.json"));
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        st["predicateType"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    assert_eq!(
        st["subject"][0]["digest"]["sha256"],
        json["suite"]["sha256"]
    );
    assert_eq!(st["predicate"]["result"], "FAILED");
    // The configuration names the database state the verdict is about.
    let catalog = json["catalog_sha256"]
        .as_str()
        .expect("the audit's catalog digest");
    assert_eq!(catalog.len(), 64, "{catalog}");
    assert!(
        st["predicate"]["configuration"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "database-catalog-snapshot" && c["digest"]["sha256"] == catalog),
        "{}",
        st["predicate"]
    );
    let list = |k: &str| -> BTreeSet<String> {
        st["predicate"][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list("failedTests"), ids(&["fail", "error"]));
    assert_eq!(list("passedTests"), ids(&["pass"]));

    // SARIF: one result per finding, each check's at its line in the suite file.
    let sarif = read_json(&dir.join("report.sarif"));
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let findings = ids(&["fail", "error", "warn"]);
    assert_eq!(results.len(), findings.len());
    let source = std::fs::read_to_string(&suite).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    for x in results {
        let check = x["properties"]["check"].as_str().unwrap();
        let line = x["locations"][0]["physicalLocation"]["region"]["startLine"]
            .as_u64()
            .unwrap_or_else(|| panic!("no line: {x}"));
        let text = lines[line as usize - 1];
        // Suite checks at their `name:`; the built-in identity check at `identity:`.
        let id = x["properties"]["id"].as_str().unwrap();
        assert!(
            text.contains(&format!("name: {check}"))
                || (id.starts_with("identity/") && text.contains("identity")),
            "line {line} ({text:?}) is not {id}'s"
        );
    }

    // The same findings, run again: the same fingerprints and the same JUnit names.
    let (again, dir2) = run_into(&t, &suite, "two");
    assert_eq!(again.code, 1, "{}", again.explain());
    let fingerprints = |v: &Value| -> BTreeSet<String> {
        v["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["partialFingerprints"].to_string())
            .collect()
    };
    let sarif2 = read_json(&dir2.join("report.sarif"));
    assert_eq!(fingerprints(&sarif), fingerprints(&sarif2));
    assert_eq!(fingerprints(&sarif).len(), findings.len());

    // JUnit and SARIF by independent readers.
    let py = || {
        let mut c = Command::new("python3");
        c.args(["-c", "import junitparser, jsonschema"]);
        c
    };
    if tool(
        "python3 with junitparser and jsonschema",
        "pip install junitparser jsonschema",
        &mut py(),
    )
    .is_some()
    {
        let one = python(
            "check_junit.py",
            &[&dir.join("junit.xml"), &dir.join("report.json")],
        );
        let two = python(
            "check_junit.py",
            &[&dir2.join("junit.xml"), &dir2.join("report.json")],
        );
        assert_eq!(
            one["pairs"], two["pairs"],
            "JUnit names are stable across runs"
        );
        assert_eq!(one["counts"]["fail"], counts["fail"]);
        let schema =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/sarif/sarif-schema-2.1.0.json");
        let v = python("check_sarif.py", &[&schema, &dir.join("report.sarif")]);
        assert_eq!(v["results"], findings.len());
        // The standalone audit: no suite file, logical locations only.
        let audit = t.dir.path().join("audit.sarif");
        let out = Command::new(env!("CARGO_BIN_EXE_tenantgate"))
            .args(["audit", "--sarif", audit.to_str().unwrap()])
            .env("DATABASE_URL", &t.l().admin_url)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        assert!(audit.is_file(), "{}", String::from_utf8_lossy(&out.stderr));
        python("check_sarif.py", &[&schema, &audit]);
    }

    html_in_a_browser(&dir.join("report.html"), counts);

    // No secret in any of the files.
    let mut all = String::new();
    for f in tenantgate::report::files::REPORT_FILES {
        all.push_str(&std::fs::read_to_string(dir.join(f)).unwrap());
    }
    for s in t.secrets() {
        assert!(!all.contains(&s), "secret {s:?} leaked into a report");
    }
}

/// Loads the page in headless Chromium: no console message (script error, blocked
/// resource), its own script ran, the hostile body is text, and the counts are the
/// JSON report's.
fn html_in_a_browser(page: &Path, counts: &Value) {
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("&lt;script&gt;alert(&#39;tg&#39;)&lt;/script&gt;"));
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        assert!(
            !tools_required(),
            "chromium is required (TENANTGATE_REPORT_TOOLS=required) but missing"
        );
        eprintln!(
            "SKIPPED: the browser check: chromium is not installed (apt-get install chromium)"
        );
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let dom_file = profile.path().join("dom.html");
    let log_file = profile.path().join("chromium.log");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--enable-logging=stderr",
            "--log-level=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.path().join("p").display()
        ))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdout(std::fs::File::create(&dom_file).unwrap())
        .stderr(std::fs::File::create(&log_file).unwrap())
        .spawn()
        .expect("run chromium");
    // Bounded: a browser that hangs fails the test instead of stalling the suite.
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > std::time::Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let dom = std::fs::read_to_string(&dom_file).unwrap();
    let log = std::fs::read_to_string(&log_file).unwrap_or_default();
    assert!(status.success(), "chromium failed:\n{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(
        console.is_empty(),
        "the page logged:\n{}",
        console.join("\n")
    );
    assert!(
        dom.contains("data-script=\"ran\""),
        "the page's script did not run"
    );
    assert_eq!(
        dom.matches("<script").count(),
        1,
        "only the page's own script"
    );
    assert!(dom.contains("&lt;script&gt;alert('tg')&lt;/script&gt;"));
    for key in ["pass", "fail", "error", "warn", "skip"] {
        let marker = format!("data-count=\"{key}\"><b>");
        let at = dom
            .find(&marker)
            .unwrap_or_else(|| panic!("no {key} count"))
            + marker.len();
        let n: u64 = dom[at..]
            .split('<')
            .next()
            .unwrap()
            .parse()
            .unwrap_or_else(|e| panic!("{key}: {e}"));
        assert_eq!(n, counts[key].as_u64().unwrap(), "{key} count");
    }
    let evidence = dom.matches("<article ").count() as u64;
    let c = |k: &str| counts[k].as_u64().unwrap();
    assert_eq!(evidence, c("fail") + c("error") + c("warn"));
}
