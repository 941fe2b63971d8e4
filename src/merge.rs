//! `tenantgate merge` (report stage, after several partitioned runs): reads the JSON
//! reports of every slice of a `--partition K/N` run, checks that they belong together
//! (same suite digest, same tool version, every slice 1..N exactly once, no result id
//! twice), and replays them as the [`Event`]s of one run, so every reporter writes the
//! whole run's JUnit/JSON/SARIF/HTML and the exit status is that of the whole.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::outcome::{CheckResult, Counts, Created, Event, Layer, RunInfo, RunSummary, Verdict};
use crate::plan::Partition;
use crate::report::SCHEMA_VERSION;

/// Why the slices cannot be merged: each is an undecided run (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("no report given: pass the JSON report of every slice")]
    Empty,
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a tenantgate JSON report: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: schema_version {found}, this tenantgate reads {SCHEMA_VERSION}")]
    Schema { path: PathBuf, found: u32 },
    #[error(
        "{path}: not the report of a partitioned run (it has no `partition`; run with --partition K/N)"
    )]
    NotPartitioned { path: PathBuf },
    #[error(
        "{path}: {what} `{found}` differs from `{expected}` in {first}: the slices are not of one run"
    )]
    Differs {
        path: PathBuf,
        what: &'static str,
        found: String,
        expected: String,
        first: PathBuf,
    },
    #[error("{path}: slice {slice} is also in {other}")]
    DuplicateSlice {
        path: PathBuf,
        slice: Partition,
        other: PathBuf,
    },
    #[error("slice(s) {missing} of {total} missing: the merged run would not hold every check")]
    MissingSlices { missing: String, total: u32 },
    #[error(
        "{path}: result `{id}` is also in {other}: the slices overlap (were they run with the same suite and flags?)"
    )]
    DuplicateResult {
        path: PathBuf,
        id: String,
        other: PathBuf,
    },
}

/// The part of a JSON report (`docs/reports.md`) merge reads.
#[derive(Debug, Deserialize)]
struct SliceReport {
    schema_version: u32,
    tool: SliceTool,
    suite: SliceSuite,
    run_id: String,
    target: Option<String>,
    started_at: String,
    duration_ms: u64,
    exit_code: u8,
    incomplete: bool,
    #[serde(default)]
    notices: Vec<String>,
    #[serde(default)]
    created: Vec<Created>,
    partition: Option<Partition>,
    #[serde(default)]
    env_read: Vec<String>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    #[serde(default)]
    load_notices: Vec<String>,
    #[serde(default)]
    catalog_sha256: Option<String>,
    results: Vec<CheckResult>,
}

#[derive(Debug, Deserialize)]
struct SliceTool {
    version: String,
}

#[derive(Debug, Deserialize)]
struct SliceSuite {
    name: String,
    path: Option<String>,
    sha256: Option<String>,
}

/// The whole run, rebuilt from its slices.
#[derive(Debug)]
pub struct Merged {
    /// The header of the whole run.
    pub info: RunInfo,
    /// Every slice's results, slice by slice (setup results once each).
    pub results: Vec<CheckResult>,
    /// The counts and the exit status of the whole.
    pub summary: RunSummary,
}

impl Merged {
    /// The events of the whole run, for the reporters.
    pub fn events(&self) -> Vec<Event> {
        let mut v = vec![Event::Started(self.info.clone())];
        v.extend(self.results.iter().cloned().map(Event::Finished));
        v.push(Event::Ended(self.summary.clone()));
        v
    }
}

fn read(path: &Path) -> Result<SliceReport, MergeError> {
    let text = std::fs::read_to_string(path).map_err(|source| MergeError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let r: SliceReport = serde_json::from_str(&text).map_err(|source| MergeError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    if r.schema_version != SCHEMA_VERSION {
        return Err(MergeError::Schema {
            path: path.to_path_buf(),
            found: r.schema_version,
        });
    }
    Ok(r)
}

/// Reads and checks the slices' reports; `deny_warnings` as for `run`.
pub fn merge(paths: &[PathBuf], deny_warnings: bool) -> Result<Merged, MergeError> {
    if paths.is_empty() {
        return Err(MergeError::Empty);
    }
    let mut slices: BTreeMap<u32, (PathBuf, SliceReport)> = BTreeMap::new();
    let mut total = None;
    for path in paths {
        let r = read(path)?;
        let p = r
            .partition
            .ok_or_else(|| MergeError::NotPartitioned { path: path.clone() })?;
        if let Some((_, (fp, f))) = slices.first_key_value() {
            let same = |what, found: String, expected: String| {
                if found == expected {
                    Ok(())
                } else {
                    Err(MergeError::Differs {
                        path: path.clone(),
                        what,
                        found,
                        expected,
                        first: fp.clone(),
                    })
                }
            };
            let digest = |s: &SliceReport| s.suite.sha256.clone().unwrap_or_default();
            same("suite digest", digest(&r), digest(f))?;
            same(
                "tool version",
                r.tool.version.clone(),
                f.tool.version.clone(),
            )?;
            same(
                "slice count",
                p.total.to_string(),
                total.unwrap_or(0).to_string(),
            )?;
        }
        total = Some(p.total);
        if let Some((other, _)) = slices.get(&p.index) {
            return Err(MergeError::DuplicateSlice {
                path: path.clone(),
                slice: p,
                other: other.clone(),
            });
        }
        slices.insert(p.index, (path.clone(), r));
    }
    let total = total.unwrap_or(0);
    let missing: Vec<String> = (1..=total)
        .filter(|k| !slices.contains_key(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingSlices {
            missing: missing.join(", "),
            total,
        });
    }
    combine(slices.into_values().collect(), deny_warnings)
}

/// Severity for keeping one of a setup result seen in several slices: the worst wins.
fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::Fail => 4,
        Verdict::Error => 3,
        Verdict::Warn => 2,
        Verdict::Skip => 1,
        Verdict::Pass => 0,
    }
}

fn combine(slices: Vec<(PathBuf, SliceReport)>, deny_warnings: bool) -> Result<Merged, MergeError> {
    let mut results: Vec<CheckResult> = Vec::new();
    let mut seen: BTreeMap<String, (usize, PathBuf)> = BTreeMap::new();
    let mut notices: Vec<String> = Vec::new();
    let mut created = Vec::new();
    let (mut incomplete, mut any_not_proven) = (false, false);
    let mut duration = Duration::ZERO;
    for (path, r) in &slices {
        for res in &r.results {
            match seen.get(&res.id) {
                // Every slice provisions (and tears down) its own orgs: its setup results
                // share ids; the worst of each is kept.
                Some((i, _)) if res.layer == Layer::Setup && results[*i].layer == Layer::Setup => {
                    if severity(res.verdict) > severity(results[*i].verdict) {
                        results[*i] = res.clone();
                    }
                }
                Some((_, other)) => {
                    return Err(MergeError::DuplicateResult {
                        path: path.clone(),
                        id: res.id.clone(),
                        other: other.clone(),
                    });
                }
                None => {
                    seen.insert(res.id.clone(), (results.len(), path.clone()));
                    results.push(res.clone());
                }
            }
        }
        for n in &r.notices {
            if !notices.contains(n) {
                notices.push(n.clone());
            }
        }
        created.extend(r.created.iter().cloned());
        incomplete |= r.incomplete;
        any_not_proven |= r.exit_code != crate::exit::PROVEN;
        // The slices ran side by side: the whole took as long as the longest.
        duration = duration.max(Duration::from_millis(r.duration_ms));
    }
    let first = &slices[0].1;
    let run_ids: Vec<&str> = slices.iter().map(|(_, r)| r.run_id.as_str()).collect();
    notices.push(format!(
        "merged from {} slices (runs {})",
        slices.len(),
        run_ids.join(", ")
    ));
    let counts = Counts::of(&results);
    let mut exit_code = crate::exit::for_counts(&counts, deny_warnings, incomplete);
    if exit_code == crate::exit::PROVEN && any_not_proven {
        // A slice that did not prove isolation on its own (e.g. nothing ran in it) keeps
        // the whole from being proven.
        notices.push("a slice did not exit 0 on its own: the whole is undecided".into());
        exit_code = crate::exit::UNDECIDED;
    }
    let started_at = slices
        .iter()
        .map(|(_, r)| r.started_at.clone())
        .min()
        .unwrap_or_default();
    let targets: BTreeSet<&str> = slices
        .iter()
        .filter_map(|(_, r)| r.target.as_deref())
        .collect();
    let info = RunInfo {
        suite_name: first.suite.name.clone(),
        suite_path: first.suite.path.clone(),
        suite_sha256: first.suite.sha256.clone(),
        run_id: run_ids.join("+"),
        target: targets.iter().next().map(|t| t.to_string()),
        tool_version: first.tool.version.clone(),
        started_at,
        partition: None,
        env_read: first.env_read.clone(),
        allowed_origins: first.allowed_origins.clone(),
        load_notices: first.load_notices.clone(),
    };
    // The slice that audited the database (the first, unless every slice did: the same
    // database, so the first digest stands for all).
    let catalog_sha256 = slices.iter().find_map(|(_, r)| r.catalog_sha256.clone());
    let summary = RunSummary {
        counts,
        duration,
        exit_code,
        incomplete,
        created,
        notices,
        catalog_sha256,
    };
    Ok(Merged {
        info,
        results,
        summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(dir: &Path, k: u32, n: u32, sha: &str, ids: &[(&str, &str, &str)]) -> PathBuf {
        let results: Vec<serde_json::Value> = ids
            .iter()
            .map(|(id, layer, verdict)| {
                serde_json::json!({"id": id, "check": id, "variant": "base", "layer": layer,
                    "verdict": verdict, "summary": "s", "evidence": [], "duration_ms": 1})
            })
            .collect();
        let v = serde_json::json!({
            "schema_version": 1, "tool": {"name": "tenantgate", "version": "0.1.0"},
            "suite": {"name": "s", "path": "s.yaml", "sha256": sha}, "run_id": format!("r{k}"),
            "target": "http://t", "started_at": format!("2025-01-01T00:00:0{k}Z"),
            "duration_ms": 10 * k, "exit_code": 0, "verdict": "proven", "incomplete": false,
            "counts": {"pass": 0, "fail": 0, "error": 0, "warn": 0, "skip": 0},
            "notices": [], "created": [], "partition": {"index": k, "total": n},
            "results": results,
        });
        let p = dir.join(format!("{k}-{sha}.json"));
        std::fs::write(&p, v.to_string()).unwrap();
        p
    }

    #[test]
    fn slices_merge_into_one_run_with_setup_results_once() {
        let d = tempfile::tempdir().unwrap();
        let a = report(
            d.path(),
            1,
            2,
            "x",
            &[("setup/provision", "setup", "pass"), ("c1", "http", "pass")],
        );
        let b = report(
            d.path(),
            2,
            2,
            "x",
            &[("setup/provision", "setup", "pass"), ("c2", "http", "fail")],
        );
        let m = merge(&[b, a], false).unwrap();
        let ids: Vec<&str> = m.results.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["setup/provision", "c1", "c2"]);
        assert_eq!(m.summary.exit_code, crate::exit::ISOLATION_FAILURE);
        assert_eq!(m.summary.duration, Duration::from_millis(20));
        assert_eq!(m.info.run_id, "r1+r2");
    }

    #[test]
    fn a_missing_slice_another_suite_or_an_overlap_is_an_error() {
        let d = tempfile::tempdir().unwrap();
        let a = report(d.path(), 1, 3, "x", &[("c1", "http", "pass")]);
        let b = report(d.path(), 2, 3, "x", &[("c2", "http", "pass")]);
        let e = merge(&[a.clone(), b], false).unwrap_err();
        assert!(e.to_string().contains("slice(s) 3 of 3 missing"), "{e}");
        let other = report(d.path(), 2, 3, "y", &[("c2", "http", "pass")]);
        let e = merge(&[a.clone(), other], false).unwrap_err();
        assert!(e.to_string().contains("suite digest `y` differs"), "{e}");
        let dup = report(d.path(), 2, 2, "x", &[("c1", "http", "pass")]);
        let a2 = report(d.path(), 1, 2, "x", &[("c1", "http", "pass")]);
        let e = merge(&[a2, dup], false).unwrap_err();
        assert!(e.to_string().contains("result `c1` is also in"), "{e}");
        assert!(matches!(merge(&[], false), Err(MergeError::Empty)));
    }
}
