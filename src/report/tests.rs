//! Fixtures shared by the reporters' tests, and the tests of [`Reporters`] and the file
//! writers (fan-out, error collection, atomic writes, redaction).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::outcome::{Counts, Layer, Verdict};

/// A run header with every optional field set.
pub(crate) fn info() -> RunInfo {
    RunInfo {
        suite_name: "reference-api".into(),
        suite_path: Some("suites/reference.yaml".into()),
        suite_sha256: Some("9f86d081884c7d65".into()),
        run_id: "r7x2".into(),
        target: Some("http://127.0.0.1:8080".into()),
        tool_version: "0.1.0".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        partition: None,
        env_read: Vec::new(),
        allowed_origins: Vec::new(),
        load_notices: Vec::new(),
    }
}

/// One result of each verdict, in the order a run would produce them, and its summary
/// (exit 1, 1.234 s).
pub(crate) fn fixture() -> (Vec<CheckResult>, RunSummary) {
    let mut fail = CheckResult::new(
        "brand-is-invisible-to-b/tenant_override:header:X-Org-Id",
        "brand is invisible to B",
        "tenant_override:header:X-Org-Id",
        Layer::Attack,
        Verdict::Fail,
        "B got 200 with A's brand",
    )
    .with("request", "GET /brands/42 with X-Org-Id: org-a")
    .with("B got", "200 application/json")
    .with("body", "{\"id\": 42,\n \"name\": \"Acme <run>\"}")
    .timed(Duration::from_millis(120));
    fail.retries = 1;
    let results = vec![
        CheckResult::new(
            "brand-is-invisible-to-b",
            "brand is invisible to B",
            "base",
            Layer::Http,
            Verdict::Pass,
            "B got 404, same as a never-issued id",
        )
        .timed(Duration::from_millis(80)),
        fail,
        CheckResult::new(
            "mentions-list-holds-none-of-a-s-rows",
            "mentions list holds none of A's rows",
            "base",
            Layer::Http,
            Verdict::Error,
            "control as A returned 503",
        ),
        CheckResult::new(
            "public.unique_email.unique_without_tenant",
            "public.unique_email",
            "unique_without_tenant",
            Layer::Database,
            Verdict::Warn,
            "unique (email) without org_id lets one tenant probe another's values",
        )
        .with("fix", "include org_id in the unique constraint"),
        CheckResult::new(
            "token-forgery/token_forgery:expired",
            "token forgery",
            "token_forgery:expired",
            Layer::Attack,
            Verdict::Skip,
            "the suite does not mint tokens",
        ),
    ];
    let summary = summary_for(&results, false);
    let summary = RunSummary {
        duration: Duration::from_millis(1234),
        ..summary
    };
    (results, summary)
}

/// The summary a complete run of `results` would end with.
pub(crate) fn summary_for(results: &[CheckResult], deny_warnings: bool) -> RunSummary {
    let counts = Counts::of(results);
    RunSummary {
        counts,
        duration: Duration::from_millis(1234),
        exit_code: exit::for_counts(&counts, deny_warnings, false),
        incomplete: false,
        created: Vec::new(),
        notices: Vec::new(),
        catalog_sha256: None,
    }
}

/// A writer whose bytes can be read after it was moved into a reporter.
#[derive(Clone, Default)]
pub(crate) struct SharedBuf(Arc<Mutex<Vec<u8>>>);

impl SharedBuf {
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A writer that always fails, like a closed pipe.
pub(crate) struct Broken;

impl Write for Broken {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

fn run(reporters: &mut Reporters, results: &[CheckResult], summary: &RunSummary) {
    reporters.event(&Event::Started(info()));
    reporters.event(&Event::Phase("checks".into()));
    for r in results {
        reporters.event(&Event::Finished(r.clone()));
    }
    reporters.event(&Event::Ended(summary.clone()));
}

#[test]
fn writes_every_file_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("reports/run.json");
    let xml = dir.path().join("reports/junit.xml");
    let (results, summary) = fixture();
    let mut reporters = Reporters::new();
    reporters.push(Box::new(Json::new(json.clone())));
    reporters.push(Box::new(Junit::new(xml.clone(), false)));

    reporters.event(&Event::Started(info()));
    reporters.event(&Event::Finished(results[0].clone()));
    assert!(!json.exists() && !xml.exists(), "nothing before Ended");
    for r in &results[1..] {
        reporters.event(&Event::Finished(r.clone()));
    }
    reporters.event(&Event::Ended(summary.clone()));

    assert_eq!(reporters.errors(), [] as [String; 0]);
    let i = info();
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        JsonReport::new(&i, &results, &summary)
            .to_pretty_string()
            .unwrap()
    );
    let back =
        quick_junit::Report::deserialize_from_str(&std::fs::read_to_string(&xml).unwrap()).unwrap();
    assert_eq!(back.tests, 5);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 2, "no temp files left: {leftovers:?}");
}

#[test]
fn the_streamed_json_report_is_the_report_serialized_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let (mut results, summary) = fixture();
    // A multi-line evidence text: its line breaks are escaped, the indentation is not
    // disturbed by them.
    results[0] = results[0].clone().with("body", "line one\n  line two\n");
    for n in [0, 1, results.len()] {
        let json = dir.path().join(format!("r{n}.json"));
        let mut reporters = Reporters::new();
        reporters.push(Box::new(Json::new(json.clone())));
        run(&mut reporters, &results[..n], &summary);
        assert_eq!(reporters.errors(), [] as [String; 0]);
        let whole = JsonReport::new(&info(), &results[..n], &summary)
            .to_pretty_string()
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(&json).unwrap(),
            whole,
            "{n} results"
        );
    }
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files.len(), 3, "no spool left: {files:?}");
}

#[test]
fn an_unwritable_path_is_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    // A path below a regular file cannot be created, even by root.
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let json = file.join("run.json");
    let xml = file.join("junit.xml");
    let out = SharedBuf::default();

    let (results, summary) = fixture();
    let mut reporters = Reporters::new();
    reporters.push(Box::new(Json::new(json.clone())));
    reporters.push(Box::new(Junit::new(xml.clone(), false)));
    reporters.push(Box::new(Terminal::new(
        out.clone(),
        Box::new(io::sink()),
        TerminalOptions::default(),
    )));
    run(&mut reporters, &results, &summary);

    let errors = reporters.errors();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with(&format!(
            "cannot write the JSON report to {}: ",
            json.display()
        )),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with(&format!(
            "cannot write the JUnit report to {}: ",
            xml.display()
        )),
        "{errors:?}"
    );
    assert!(
        out.text()
            .ends_with("ISOLATION BROKEN (exit 1): 1 check failed\n"),
        "the other reporters still ran"
    );
}

#[test]
fn an_end_without_a_start_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let mut reporters = Reporters::new();
    reporters.push(Box::new(Json::new(dir.path().join("r.json"))));
    let (_, summary) = fixture();
    reporters.event(&Event::Ended(summary));
    assert_eq!(reporters.errors().len(), 1);
    assert!(reporters.errors()[0].contains("without a Started event"));
}

#[test]
fn the_file_writers_redact_what_slipped_through() {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Redactor::new();
    redactor.add("token b", "eyJ\"secret\\token");
    let (mut results, summary) = fixture();
    results[1] = results[1]
        .clone()
        .with("header", "Authorization: Bearer eyJ\"secret\\token");
    let json = dir.path().join("r.json");
    let xml = dir.path().join("j.xml");
    let mut reporters = Reporters::new();
    reporters.push(Box::new(
        Json::new(json.clone()).with_redactor(redactor.clone()),
    ));
    reporters.push(Box::new(
        Junit::new(xml.clone(), false).with_redactor(redactor.clone()),
    ));
    run(&mut reporters, &results, &summary);
    assert_eq!(reporters.errors(), [] as [String; 0]);

    let json = std::fs::read_to_string(json).unwrap();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(!redactor.contains_secret(&value.to_string()));
    assert!(json.contains("Bearer [redacted:token b]"));
    let xml = std::fs::read_to_string(xml).unwrap();
    assert!(!xml.contains("secret"));
    assert!(xml.contains("Bearer [redacted:token b]"));
}

#[test]
fn the_new_file_writers_redact_too() {
    let dir = tempfile::tempdir().unwrap();
    let redactor = Redactor::new();
    redactor.add("token b", "eyJ\"secret\\token");
    let (mut results, summary) = fixture();
    results[1] = results[1]
        .clone()
        .with("header", "Authorization: Bearer eyJ\"secret\\token");
    let mut info = info();
    info.target = Some("https://u:eyJ\"secret\\token@example.test".into());
    let paths = ReportPaths::resolve(
        &ReportFlags {
            reports: Some(dir.path().join("all")),
            ..Default::default()
        },
        None,
        None,
    );
    let mut reporters = Reporters::new();
    push_reporters(&mut reporters, &paths, false, &redactor, None);
    reporters.event(&Event::Started(info));
    for r in &results {
        reporters.event(&Event::Finished(r.clone()));
    }
    reporters.event(&Event::Ended(summary));
    assert_eq!(reporters.errors(), [] as [String; 0]);
    for name in files::REPORT_FILES {
        let text = std::fs::read_to_string(dir.path().join("all").join(name)).unwrap();
        assert!(!text.contains("secret"), "{name} leaks the secret");
        assert!(text.contains("[redacted:token b]"), "{name}");
    }
}

#[test]
fn a_rerun_replaces_the_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.json");
    std::fs::write(
        &path,
        "old contents that are much longer than nothing at all",
    )
    .unwrap();
    write_atomically(&path, b"new").unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn run_verdicts_follow_the_exit_codes() {
    assert_eq!(RunVerdict::from_exit_code(exit::PROVEN), RunVerdict::Proven);
    assert_eq!(
        RunVerdict::from_exit_code(exit::ISOLATION_FAILURE),
        RunVerdict::Broken
    );
    assert_eq!(
        RunVerdict::from_exit_code(exit::UNDECIDED),
        RunVerdict::Undecided
    );
    assert_eq!(RunVerdict::from_exit_code(3), RunVerdict::Undecided);
}
