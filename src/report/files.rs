//! The report files beyond JUnit and JSON (report stage): the `--sarif`, `--html`,
//! `--attestation` and `--reports DIR` flags of `run` and `audit`, and the reporters they
//! add. The command line only flattens [`ReportFlags`] and calls [`push_reporters`], so
//! every report option lives here rather than in `cli.rs`.
//!
//! It also holds [`SuiteLines`]: where each check stands in the suite file, which the
//! SARIF report needs for its locations. The run does not carry source positions in its
//! results, so they are computed here from the loaded suite: result ids are
//! `check-slug` or `check-slug/variant`, and the slug is the check's name as the loader
//! slugs it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use clap::Args;

use super::{Attestation, Html, Json, Junit, Reporters, Sarif};
use crate::redact::Redactor;
use crate::suite::Loaded;
use crate::suite::load::slug;
use crate::suite::template::Loc;

/// The file names `--reports DIR` writes.
pub const REPORT_FILES: [&str; 5] = [
    "junit.xml",
    "report.json",
    "report.sarif",
    "report.html",
    "attestation.intoto.json",
];

/// Report files beyond `--junit` and `--json`, shared by `run` and `audit`.
#[derive(Args, Debug, Clone, Default)]
pub struct ReportFlags {
    /// Write SARIF 2.1.0 here (GitHub code scanning): one result per failure, error and warning.
    #[arg(long, value_name = "PATH")]
    pub sarif: Option<PathBuf>,
    /// Write a self-contained HTML report here (opens offline).
    #[arg(long, value_name = "PATH")]
    pub html: Option<PathBuf>,
    /// Write an in-toto test-result Statement here (sign it with cosign or GitHub attest).
    #[arg(long, value_name = "PATH")]
    pub attestation: Option<PathBuf>,
    /// Write every report into DIR: junit.xml, report.json, report.sarif, report.html,
    /// attestation.intoto.json (an explicit --junit, --json, ... path wins).
    #[arg(long, value_name = "DIR")]
    pub reports: Option<PathBuf>,
}

/// The paths every report goes to once `--reports DIR` has filled the gaps.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReportPaths {
    /// JUnit XML (`--junit`, or `DIR/junit.xml`).
    pub junit: Option<PathBuf>,
    /// The JSON report (`--json`, or `DIR/report.json`).
    pub json: Option<PathBuf>,
    /// SARIF 2.1.0 (`--sarif`, or `DIR/report.sarif`).
    pub sarif: Option<PathBuf>,
    /// The HTML page (`--html`, or `DIR/report.html`).
    pub html: Option<PathBuf>,
    /// The in-toto Statement (`--attestation`, or `DIR/attestation.intoto.json`).
    pub attestation: Option<PathBuf>,
}

impl ReportPaths {
    /// The explicit paths, then `DIR/<name>` for each one `--reports DIR` implies.
    pub fn resolve(flags: &ReportFlags, junit: Option<&Path>, json: Option<&Path>) -> Self {
        let in_dir = |explicit: Option<&Path>, name: &str| -> Option<PathBuf> {
            explicit
                .map(Path::to_path_buf)
                .or_else(|| flags.reports.as_ref().map(|d| d.join(name)))
        };
        ReportPaths {
            junit: in_dir(junit, REPORT_FILES[0]),
            json: in_dir(json, REPORT_FILES[1]),
            sarif: in_dir(flags.sarif.as_deref(), REPORT_FILES[2]),
            html: in_dir(flags.html.as_deref(), REPORT_FILES[3]),
            attestation: in_dir(flags.attestation.as_deref(), REPORT_FILES[4]),
        }
    }
}

/// Adds a file reporter for every path in `paths`, each redacting with `redactor` as a
/// last line of defence. `suite` (absent for `audit`) gives SARIF its source lines.
pub fn push_reporters(
    reps: &mut Reporters,
    paths: &ReportPaths,
    deny_warnings: bool,
    redactor: &Redactor,
    suite: Option<&Loaded>,
) {
    if let Some(p) = &paths.junit {
        reps.push(Box::new(
            Junit::new(p.clone(), deny_warnings).with_redactor(redactor.clone()),
        ));
    }
    if let Some(p) = &paths.json {
        reps.push(Box::new(
            Json::new(p.clone()).with_redactor(redactor.clone()),
        ));
    }
    if let Some(p) = &paths.sarif {
        let lines = suite.map(SuiteLines::of).unwrap_or_default();
        reps.push(Box::new(
            Sarif::new(p.clone(), deny_warnings, lines).with_redactor(redactor.clone()),
        ));
    }
    if let Some(p) = &paths.html {
        reps.push(Box::new(
            Html::new(p.clone(), deny_warnings).with_redactor(redactor.clone()),
        ));
    }
    if let Some(p) = &paths.attestation {
        reps.push(Box::new(
            Attestation::new(p.clone(), deny_warnings)
                .with_url(ci_run_url(&|n| std::env::var(n).ok()))
                .with_redactor(redactor.clone()),
        ));
    }
}

/// The page of the CI run that is running tenantgate, from the variables GitHub
/// Actions, GitLab CI and Buildkite set; `None` elsewhere.
pub fn ci_run_url(env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let (Some(server), Some(repo), Some(run)) = (
        env("GITHUB_SERVER_URL"),
        env("GITHUB_REPOSITORY"),
        env("GITHUB_RUN_ID"),
    ) {
        return Some(format!("{server}/{repo}/actions/runs/{run}"));
    }
    env("CI_JOB_URL").or_else(|| env("BUILDKITE_BUILD_URL"))
}

/// A 1-based line and column in the suite file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LineCol {
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl From<Loc> for LineCol {
    fn from(l: Loc) -> Self {
        LineCol {
            line: l.line.max(1),
            col: l.col.max(1),
        }
    }
}

/// Where the results of a run stand in its suite file.
#[derive(Clone, Debug, Default)]
pub struct SuiteLines {
    /// The check slug (the part of a result id before `/`) → the check's `name:` value.
    checks: HashMap<String, LineCol>,
    /// The top-level sections (`orgs`, `seed`, `database`, ...) → their key's line.
    sections: HashMap<String, LineCol>,
}

impl SuiteLines {
    /// The lines of every check of `loaded` and of its top-level sections. Keyed the way
    /// the planner names checks (the slug of the check's name; `identity` for the
    /// built-in identity check), without depending on the planner itself.
    pub fn of(loaded: &Loaded) -> Self {
        let suite = &loaded.suite;
        let mut checks = HashMap::new();
        for c in &suite.checks {
            checks
                .entry(slug(&c.name.value))
                .or_insert_with(|| Loc::of(&c.name).into());
        }
        if let Some(identity) = suite.orgs.as_ref().and_then(|o| o.identity.as_ref()) {
            checks.insert("identity".to_string(), identity.loc.into());
        }
        SuiteLines {
            checks,
            sections: sections(&loaded.source),
        }
    }

    /// Where a result stands: its check, else the section its layer comes from, else
    /// `None` (a result the suite file cannot point at, e.g. of `tenantgate audit`).
    pub fn of_result(&self, r: &crate::outcome::CheckResult) -> Option<LineCol> {
        use crate::outcome::Layer;
        let slug = r.id.split('/').next().unwrap_or(&r.id);
        let section = match r.layer {
            Layer::Http | Layer::Attack => match slug {
                "jwt" | "identity" => "orgs",
                _ => "checks",
            },
            // Setup ids: setup/provision-a, setup/seed, setup/teardown-b, setup/tls,
            // setup/http-client, setup/signing-key, setup/filter (the command line).
            Layer::Setup => match r.id.strip_prefix("setup/").unwrap_or(&r.id) {
                s if s.starts_with("seed") => "seed",
                s if s.starts_with("provision") || s.starts_with("teardown") => "orgs",
                "tls" | "http-client" => "target",
                "signing-key" => "attacks",
                _ => "name",
            },
            Layer::Database | Layer::Probe => "database",
        };
        match r.layer {
            Layer::Http | Layer::Attack => self.checks.get(slug).copied(),
            _ => None,
        }
        .or_else(|| self.sections.get(section).copied())
        .or_else(|| self.sections.get("name").copied())
    }
}

/// The line of every top-level key (`name:`, `orgs:`, `checks:`, ...) of a YAML file:
/// a key at column 1 followed by a colon. Comments and indented lines are ignored.
fn sections(source: &str) -> HashMap<String, LineCol> {
    let mut out = HashMap::new();
    for (i, line) in source.lines().enumerate() {
        let Some((key, _)) = line.split_once(':') else {
            continue;
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            continue;
        }
        out.entry(key.to_string()).or_insert(LineCol {
            line: i as u32 + 1,
            col: 1,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{CheckResult, Layer, Verdict};

    const SUITE: &str = "\
version: 1
name: lines
target: { base_url: http://127.0.0.1:9 }
orgs:
  provision:
    - name: sign up
      request: { method: POST, url: /signup }
      capture: { token: $.token }
  identity: /me
checks:
  - name: brand is invisible to B
    read: /brands/1
  # a comment
  - name: second check
    list: /brands
database:
  url: postgres://u@127.0.0.1:9/db
";

    fn loaded() -> Loaded {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.yaml");
        std::fs::write(&p, SUITE).unwrap();
        match crate::suite::load::load_file_with_env(&p, &|_| None) {
            Ok(l) => l,
            Err(e) => panic!("{}", e.render(&Redactor::new())),
        }
    }

    #[test]
    fn checks_and_their_variants_point_at_the_check_name() {
        let lines = SuiteLines::of(&loaded());
        let r = |id: &str, layer| CheckResult::new(id, "c", "v", layer, Verdict::Fail, "s");
        let at = |id, layer| lines.of_result(&r(id, layer)).map(|l| l.line);
        assert_eq!(at("brand-is-invisible-to-b", Layer::Http), Some(11));
        assert_eq!(
            at(
                "brand-is-invisible-to-b/tenant_override:header:X-Org-Id",
                Layer::Attack
            ),
            Some(11)
        );
        assert_eq!(at("second-check", Layer::Http), Some(14));
        assert_eq!(at("public.brands.rls_forced", Layer::Database), Some(16));
        assert_eq!(
            at("identity/claim_integrity:identity", Layer::Attack),
            Some(9)
        );
        assert_eq!(at("jwt/claim_integrity:token", Layer::Attack), Some(4));
        assert_eq!(at("setup/provision-a", Layer::Setup), Some(4));
        assert_eq!(at("setup/tls", Layer::Setup), Some(3));
        assert_eq!(at("setup/filter", Layer::Setup), Some(2));
    }

    #[test]
    fn reports_dir_fills_only_the_gaps() {
        let flags = ReportFlags {
            html: Some("mine.html".into()),
            reports: Some("out".into()),
            ..Default::default()
        };
        let p = ReportPaths::resolve(&flags, Some(Path::new("j.xml")), None);
        assert_eq!(p.junit, Some("j.xml".into()));
        assert_eq!(p.json, Some("out/report.json".into()));
        assert_eq!(p.sarif, Some("out/report.sarif".into()));
        assert_eq!(p.html, Some("mine.html".into()));
        assert_eq!(p.attestation, Some("out/attestation.intoto.json".into()));
        assert_eq!(
            ReportPaths::resolve(&ReportFlags::default(), None, None),
            ReportPaths::default()
        );
    }
}
