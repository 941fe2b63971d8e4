//! The JUnit XML reporter (report stage): what CI systems (Jenkins, GitLab, GitHub test
//! reporters) ingest to show which isolation checks failed.
//!
//! Mapping, chosen so that a CI viewer's red and yellow mean what ours do:
//!
//! | result | JUnit |
//! |---|---|
//! | pass | passed `<testcase>` |
//! | fail | `<failure type="isolation" message=SUMMARY>` with the evidence as text |
//! | error | `<error type="undecided" message=SUMMARY>` with the evidence as text |
//! | warn | passed, `<system-out>warning: ...`; with `--deny-warnings` a `<failure type="warning">` |
//! | skip | `<skipped message=REASON>` |
//!
//! One `<testsuite>` per group present: `tenantgate.setup`, `tenantgate.checks` (a
//! check's base result and all its attack variants, under one classname per check) and
//! `tenantgate.database` (catalog rules and probes, one classname per object); a
//! `tenantgate.run` suite holds a synthetic error testcase when the run was interrupted
//! or nothing ran, so that a CI viewer never shows such a run as green. The XML itself
//! (escaping, structure) is written by quick-junit, the serializer cargo-nextest uses.

use std::collections::HashSet;
use std::io;
use std::path::PathBuf;
use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::{
    Collected, RunVerdict, context, display_name, evidence_text, redacted, write_atomically,
};
use crate::outcome::{CheckResult, Event, Layer, RunInfo, RunSummary, Verdict};
use crate::redact::Redactor;

/// Writes a JUnit XML file at [`Event::Ended`], atomically.
pub struct Junit {
    path: PathBuf,
    deny_warnings: bool,
    collected: Collected,
}

impl Junit {
    /// A JUnit reporter writing to `path`. With `deny_warnings`, warnings become
    /// `<failure type="warning">`, as they fail the gate.
    pub fn new(path: PathBuf, deny_warnings: bool) -> Self {
        Junit {
            path,
            deny_warnings,
            collected: Collected::default(),
        }
    }

    /// Redacts every registered secret from the file before it is written (a last line
    /// of defence: results should already be redacted).
    pub fn with_redactor(mut self, redactor: Redactor) -> Self {
        self.collected.redactor = Some(redactor);
        self
    }
}

impl super::Reporter for Junit {
    fn event(&mut self, event: &Event) -> io::Result<()> {
        let Some(summary) = self.collected.take(event) else {
            return Ok(());
        };
        let what = "JUnit report";
        let info = self.collected.info(what)?;
        let report = match &self.collected.redactor {
            Some(r) => {
                let (info, results, summary) = redacted(r, info, &self.collected.results, summary);
                junit_report(&info, &results, &summary, self.deny_warnings)
            }
            None => junit_report(info, &self.collected.results, summary, self.deny_warnings),
        };
        let xml = report
            .to_string()
            .map_err(|e| context(what, &self.path, io::Error::other(e)))?;
        write_atomically(&self.path, xml.as_bytes()).map_err(|e| context(what, &self.path, e))
    }
}

/// The JUnit report for a run: pure, so tests can inspect it without touching a file.
pub fn junit_report(
    info: &RunInfo,
    results: &[CheckResult],
    summary: &RunSummary,
    deny_warnings: bool,
) -> Report {
    let properties = properties(info, summary, deny_warnings);
    let mut report = Report::new(xml_text(&info.suite_name, true));
    report.set_time(summary.duration);

    let groups = GROUPS
        .into_iter()
        .filter(|g| results.iter().any(|r| group(r.layer) == *g));
    let mut taken = HashSet::new();
    let mut suites = Vec::new();
    for g in groups {
        let mut suite = TestSuite::new(format!("tenantgate.{g}"));
        suite.add_properties(properties.iter().cloned());
        let mut time = Duration::ZERO;
        for r in results.iter().filter(|r| group(r.layer) == g) {
            time += r.duration;
            let mut case = test_case(r, deny_warnings, info.suite_path.as_deref());
            unique_name(&mut case, &mut taken);
            suite.add_test_case(case);
        }
        suite.set_time(time);
        suites.push(suite);
    }

    // Results alone cannot show an interrupted run or one where nothing ran as red: a CI
    // viewer would count the passes and call it green while we exit 2.
    let c = &summary.counts;
    let run_problem = if summary.incomplete {
        Some((
            "run [incomplete]",
            "interrupted before every check ran; this report is partial",
        ))
    } else if c.pass + c.warn + c.fail + c.error == 0 {
        // Only skips (or nothing at all): exit 2, yet no testcase is red.
        Some((
            "run [nothing ran]",
            "no check ran, so isolation is not proven",
        ))
    } else {
        None
    };
    if let Some((name, message)) = run_problem {
        let mut suite = TestSuite::new("tenantgate.run");
        suite.add_properties(properties.iter().cloned());
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
        status.set_message(message).set_type("undecided");
        let mut case = TestCase::new(name, status);
        case.set_classname("tenantgate.run");
        suite.add_test_case(case);
        suites.push(suite);
    }
    report.add_test_suites(suites);
    report
}

/// The run's identity and outcome, repeated on every `<testsuite>`: quick-junit (like
/// the JUnit schema most viewers follow) has no properties on `<testsuites>`.
fn properties(info: &RunInfo, summary: &RunSummary, deny_warnings: bool) -> Vec<Property> {
    let mut p = vec![
        Property::new("tenantgate.run_id", xml_text(&info.run_id, true)),
        Property::new(
            "tenantgate.tool_version",
            xml_text(&info.tool_version, true),
        ),
        Property::new("tenantgate.suite", xml_text(&info.suite_name, true)),
    ];
    if let Some(path) = &info.suite_path {
        p.push(Property::new("tenantgate.suite_path", xml_text(path, true)));
    }
    if let Some(sha) = &info.suite_sha256 {
        p.push(Property::new(
            "tenantgate.suite_sha256",
            xml_text(sha, true),
        ));
    }
    if let Some(target) = &info.target {
        p.push(Property::new("tenantgate.target", xml_text(target, true)));
    }
    p.push(Property::new(
        "tenantgate.started_at",
        xml_text(&info.started_at, true),
    ));
    p.push(Property::new(
        "tenantgate.exit_code",
        summary.exit_code.to_string(),
    ));
    p.push(Property::new(
        "tenantgate.verdict",
        RunVerdict::from_exit_code(summary.exit_code).as_str(),
    ));
    p.push(Property::new(
        "tenantgate.incomplete",
        summary.incomplete.to_string(),
    ));
    p.push(Property::new(
        "tenantgate.deny_warnings",
        deny_warnings.to_string(),
    ));
    for n in &summary.notices {
        p.push(Property::new("tenantgate.notice", xml_text(n, true)));
    }
    for c in summary.created.iter().filter(|c| !c.removed) {
        p.push(Property::new(
            "tenantgate.left_on_target",
            xml_text(
                &format!(
                    "org {}: {} {}{}",
                    c.org,
                    c.what,
                    c.ids.join(", "),
                    c.kept
                        .as_ref()
                        .map(|r| format!(" (kept: {r})"))
                        .unwrap_or_default()
                ),
                true,
            ),
        ));
    }
    p
}

fn test_case(r: &CheckResult, deny_warnings: bool, suite_path: Option<&str>) -> TestCase {
    let message = xml_text(&r.summary, true);
    let details = || {
        let mut text = format!("{}\nid: {}\n", r.summary, r.id);
        text.push_str(&evidence_text(r, ""));
        xml_text(text.trim_end(), false)
    };
    let non_success = |kind, ty| {
        let mut s = TestCaseStatus::non_success(kind);
        s.set_message(message.clone())
            .set_type(ty)
            .set_description(details());
        s
    };
    let status = match r.verdict {
        Verdict::Pass => TestCaseStatus::success(),
        Verdict::Fail => non_success(NonSuccessKind::Failure, "isolation"),
        Verdict::Error => non_success(NonSuccessKind::Error, "undecided"),
        Verdict::Warn if deny_warnings && r.accepted.is_none() => {
            non_success(NonSuccessKind::Failure, "warning")
        }
        Verdict::Warn => TestCaseStatus::success(),
        Verdict::Skip => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(message.clone());
            s
        }
    };
    let mut case = TestCase::new(xml_text(&display_name(r), true), status);
    case.set_classname(classname(r)).set_time(r.duration);
    if let (Some(file), Layer::Setup | Layer::Http | Layer::Attack) = (suite_path, r.layer) {
        // GitLab and Buildkite show (and link) the file a test case comes from.
        case.extra
            .insert("file".into(), xml_text(file, true).into());
    }
    if let Some(reason) = r.accepted.as_deref().filter(|_| r.verdict == Verdict::Warn) {
        case.set_system_out(format!(
            "warning (accepted: {}): {}",
            xml_text(reason, false),
            details()
        ));
    } else if r.verdict == Verdict::Warn && !deny_warnings {
        case.set_system_out(format!("warning: {}", details()));
    }
    case
}

/// The testsuites, in report order: setup; the suite's checks with their attack
/// variants; the database audit with its live probe.
const GROUPS: [&str; 3] = ["setup", "checks", "database"];

/// The testsuite of a layer: a check's base result (`http`) and its variants (`attack`)
/// share one, and so do a table's catalog rules (`database`) and probes (`probe`).
fn group(layer: Layer) -> &'static str {
    match layer {
        Layer::Setup => GROUPS[0],
        Layer::Http | Layer::Attack => GROUPS[1],
        Layer::Database | Layer::Probe => GROUPS[2],
    }
}

/// `tenantgate.GROUP.KEY`: one classname per check holding its base result and every
/// variant (GitLab shows it as the suite column, Jenkins as package and class). The key
/// comes from the result id (stable across runs): the check slug before `/` for checks,
/// the audited object for the database, the step for setup.
fn classname(r: &CheckResult) -> String {
    let key = match r.layer {
        Layer::Http | Layer::Attack => slug(r.id.split('/').next().unwrap_or(&r.id)),
        Layer::Setup => slug(r.id.strip_prefix("setup/").unwrap_or(&r.id)),
        Layer::Database | Layer::Probe => slug(&r.check),
    };
    format!("tenantgate.{}.{key}", group(r.layer))
}

/// Makes (`classname`, `name`) unique in the report: GitLab keeps only the first of
/// several test cases with the same pair. Result ids are unique, so this only acts on a
/// runner bug; the suffix is deterministic so names stay stable across runs.
fn unique_name(case: &mut TestCase, taken: &mut HashSet<(String, String)>) {
    let class = case
        .classname
        .as_ref()
        .map(|c| c.as_str().to_string())
        .unwrap_or_default();
    let base = case.name.as_str().to_string();
    let mut name = base.clone();
    let mut n = 1;
    while !taken.insert((class.clone(), name.clone())) {
        n += 1;
        name = format!("{base} #{n}");
    }
    if n > 1 {
        case.name = name.into();
    }
}

/// The check's name as one classname segment: lowercase letters and digits joined by
/// `-`. No dots, because viewers split classnames at dots into packages, and the
/// package must stay `tenantgate.LAYER` (a database check is named `schema.table`).
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() { "check".into() } else { out }
}

/// Text that survives XML 1.0. quick-junit escapes markup and drops most C0 controls,
/// but not U+FFFE/U+FFFF (illegal in XML) nor, in attributes, line breaks, which a parser
/// would silently turn into spaces; `one_line` makes that explicit for attribute values.
fn xml_text(s: &str, one_line: bool) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\u{FFFE}' | '\u{FFFF}' => None,
            '\n' | '\r' | '\t' if one_line => Some(' '),
            c => Some(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Evidence, Layer, Verdict};
    use crate::report::tests::{fixture, info, summary_for};

    fn parse(report: &Report) -> Report {
        let xml = report.to_string().unwrap();
        Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"))
    }

    fn case<'a>(report: &'a Report, name: &str) -> &'a TestCase {
        report
            .test_suites
            .iter()
            .flat_map(|s| &s.test_cases)
            .find(|c| c.name.as_str() == name)
            .unwrap_or_else(|| panic!("no testcase {name}"))
    }

    #[test]
    fn maps_verdicts_and_round_trips() {
        let (results, summary) = fixture();
        let back = parse(&junit_report(&info(), &results, &summary, false));

        assert_eq!(back.name.as_ref().unwrap().as_str(), "reference-api");
        assert_eq!(
            (back.tests, back.failures, back.errors, back.skipped),
            (5, 1, 1, 1)
        );
        let suites: Vec<_> = back.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(suites, ["tenantgate.checks", "tenantgate.database"]);

        let fail = case(
            &back,
            "brand is invisible to B [tenant_override:header:X-Org-Id]",
        );
        assert_eq!(
            fail.classname.as_ref().unwrap().as_str(),
            "tenantgate.checks.brand-is-invisible-to-b"
        );
        assert_eq!(fail.time, Some(Duration::from_millis(120)));
        let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            ty,
            description,
            ..
        } = &fail.status
        else {
            panic!("{:?}", fail.status)
        };
        assert_eq!(
            message.as_ref().unwrap().as_str(),
            "B got 200 with A's brand"
        );
        assert_eq!(ty.as_ref().unwrap().as_str(), "isolation");
        let description = description.as_ref().unwrap().as_str();
        assert!(description.contains("request: GET /brands/42 with X-Org-Id: org-a\n"));
        assert!(description.contains("body:\n    {\"id\": 42,\n     \"name\": \"Acme <run>\"}"));

        let base = case(&back, "brand is invisible to B");
        assert!(matches!(base.status, TestCaseStatus::Success { .. }));

        let err = case(&back, "mentions list holds none of A's rows");
        assert!(matches!(
            &err.status,
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, ty: Some(t), .. }
                if t.as_str() == "undecided"
        ));

        let warn = case(&back, "public.unique_email [unique_without_tenant]");
        assert!(matches!(warn.status, TestCaseStatus::Success { .. }));
        assert!(
            warn.system_out
                .as_ref()
                .unwrap()
                .as_str()
                .starts_with("warning: unique (email)")
        );
        assert_eq!(
            warn.classname.as_ref().unwrap().as_str(),
            "tenantgate.database.public-unique-email"
        );

        let skip = case(&back, "token forgery [token_forgery:expired]");
        assert!(matches!(
            &skip.status,
            TestCaseStatus::Skipped { message: Some(m), .. }
                if m.as_str() == "the suite does not mint tokens"
        ));

        let props: Vec<_> = back.test_suites[0]
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        for expected in [
            ("tenantgate.run_id", "r7x2"),
            ("tenantgate.suite_sha256", "9f86d081884c7d65"),
            ("tenantgate.tool_version", "0.1.0"),
            ("tenantgate.exit_code", "1"),
            ("tenantgate.verdict", "broken"),
            ("tenantgate.incomplete", "false"),
        ] {
            assert!(
                props.contains(&expected),
                "{expected:?} missing from {props:?}"
            );
        }
    }

    #[test]
    fn one_classname_per_check_and_unique_pairs() {
        let (mut results, _) = fixture();
        // The base result and its variant share the check's classname.
        let classes: Vec<String> = results.iter().take(2).map(classname).collect();
        assert_eq!(classes[0], classes[1]);
        assert_eq!(classes[0], "tenantgate.checks.brand-is-invisible-to-b");
        // A probe of a table sits with the table's catalog rules.
        let probe = CheckResult::new(
            "public.unique_email.probe_no_tenant",
            "public.unique_email",
            "probe_no_tenant",
            Layer::Probe,
            Verdict::Pass,
            "no rows",
        );
        assert_eq!(classname(&probe), classname(&results[3]));
        // A duplicated result (a runner bug) still gets a unique, stable pair.
        results.push(results[0].clone());
        let summary = summary_for(&results, false);
        let back = parse(&junit_report(&info(), &results, &summary, false));
        let mut pairs = std::collections::HashSet::new();
        for c in back.test_suites.iter().flat_map(|s| &s.test_cases) {
            let class = c.classname.as_ref().unwrap().as_str().to_string();
            assert!(pairs.insert((class, c.name.as_str().to_string())));
        }
        case(&back, "brand is invisible to B #2");
        let fail = case(&back, "brand is invisible to B");
        assert_eq!(
            fail.extra.get("file").map(|f| f.as_str()),
            Some("suites/reference.yaml")
        );
    }

    #[test]
    fn denied_warnings_are_failures() {
        let (results, mut summary) = fixture();
        summary.exit_code = 1;
        let back = parse(&junit_report(&info(), &results, &summary, true));
        assert_eq!((back.failures, back.errors), (2, 1));
        let warn = case(&back, "public.unique_email [unique_without_tenant]");
        assert!(matches!(
            &warn.status,
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, ty: Some(t), .. }
                if t.as_str() == "warning"
        ));
    }

    #[test]
    fn incomplete_and_empty_runs_are_never_green() {
        let results = vec![CheckResult::new(
            "c",
            "c",
            "base",
            Layer::Http,
            Verdict::Pass,
            "",
        )];
        let mut summary = summary_for(&results, false);
        summary.incomplete = true;
        summary.exit_code = 2;
        let back = parse(&junit_report(&info(), &results, &summary, false));
        assert_eq!((back.tests, back.errors), (2, 1));
        let run = case(&back, "run [incomplete]");
        assert!(matches!(
            run.status,
            TestCaseStatus::NonSuccess {
                kind: NonSuccessKind::Error,
                ..
            }
        ));
        assert!(back.test_suites.iter().all(|s| {
            s.properties
                .iter()
                .any(|p| p.name.as_str() == "tenantgate.incomplete" && p.value.as_str() == "true")
        }));

        let back = parse(&junit_report(&info(), &[], &summary_for(&[], false), false));
        assert_eq!((back.tests, back.errors), (1, 1));
        case(&back, "run [nothing ran]");
    }

    #[test]
    fn evil_strings_are_escaped() {
        let evil = "<script>&amp; \"q\" 'a' ]]> \x1b[31mred\x00\x08\u{FFFE} end";
        let r = CheckResult::new("e", evil, "base", Layer::Http, Verdict::Fail, evil)
            .with(evil, format!("{evil}\nline two ]]>"));
        let results = vec![r];
        let summary = summary_for(&results, false);
        let xml = junit_report(&info(), &results, &summary, false)
            .to_string()
            .unwrap();
        assert!(!xml.contains("<script>"), "{xml}");
        assert!(!xml.contains("]]>"), "{xml}");
        assert!(!xml.contains('\x1b') && !xml.contains('\0') && !xml.contains('\u{FFFE}'));

        let back = Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        let clean = "<script>&amp; \"q\" 'a' ]]> red end";
        let c = &back.test_suites[0].test_cases[0];
        assert_eq!(c.name.as_str(), clean);
        let TestCaseStatus::NonSuccess {
            message,
            description,
            ..
        } = &c.status
        else {
            panic!()
        };
        assert_eq!(message.as_ref().unwrap().as_str(), clean);
        assert!(
            description
                .as_ref()
                .unwrap()
                .as_str()
                .contains(&format!("{clean}:\n    {clean}\n    line two ]]>"))
        );
    }

    #[test]
    fn summaries_with_line_breaks_stay_one_line_in_attributes() {
        let mut r = CheckResult::new("e", "c", "base", Layer::Http, Verdict::Error, "a\nb");
        r.evidence.push(Evidence::new("x", "y"));
        let back = parse(&junit_report(
            &info(),
            &[r],
            &summary_for(&[], false),
            false,
        ));
        let c = case(&back, "c");
        assert!(matches!(&c.status,
            TestCaseStatus::NonSuccess { message: Some(m), .. } if m.as_str() == "a b"));
    }

    #[test]
    fn slugs_keep_packages_intact() {
        assert_eq!(slug("Brand is invisible to B!"), "brand-is-invisible-to-b");
        assert_eq!(slug("public.invoices"), "public-invoices");
        assert_eq!(slug("Ünïcode  names"), "ünïcode-names");
        assert_eq!(slug("…"), "check");
    }
}
