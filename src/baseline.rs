//! `tenantgate baseline` (after the report stage, feeding the next parse): turns the
//! warnings of a JSON report into `accept:` entries for the suite, so a team adopting
//! the gate on an existing system fails only on what is new. Every entry carries a
//! reason placeholder a person must replace: accepting is a decision, not a default.

use std::path::Path;

use serde::Deserialize;

use crate::exit;
use crate::outcome::{CheckResult, Verdict};

/// Why no baseline could be written.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not a tenantgate JSON report: {source}")]
    Parse {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: cannot write: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

/// The part of the JSON report a baseline reads.
#[derive(Deserialize)]
struct Report {
    results: Vec<CheckResult>,
}

/// The placeholder every entry's reason starts with.
pub const REASON_PLACEHOLDER: &str = "TODO: why this is acceptable";

/// The accept-list (YAML) for the warnings among `results`, in report order, each id
/// once.
pub fn render(results: &[CheckResult]) -> String {
    let mut ids: Vec<&CheckResult> = Vec::new();
    // Warnings the suite already accepts keep their entry (and its reason) there.
    for r in results
        .iter()
        .filter(|r| r.verdict == Verdict::Warn && r.accepted.is_none())
    {
        if !ids.iter().any(|o| o.id == r.id) {
            ids.push(r);
        }
    }
    let mut out = String::from(
        "# Accepted warnings: add under the suite's top level. Replace every TODO with the\n\
         # reason a reviewer can check; accepted results stay visible in every report.\n",
    );
    if ids.is_empty() {
        out.push_str("# The report has no warnings: nothing to accept.\naccept: []\n");
        return out;
    }
    out.push_str("accept:\n");
    for r in ids {
        // JSON strings are YAML double-quoted scalars: any id is quoted safely.
        let q = |s: &str| serde_json::Value::from(s).to_string();
        let summary: String = r.summary.chars().filter(|c| !c.is_control()).collect();
        out.push_str(&format!("  # {summary}\n"));
        out.push_str(&format!(
            "  - {{ id: {}, reason: {} }}\n",
            q(&r.id),
            q(REASON_PLACEHOLDER)
        ));
    }
    out
}

fn baseline(report: &Path, output: Option<&Path>) -> Result<usize, BaselineError> {
    let path = report.display().to_string();
    let text = std::fs::read_to_string(report).map_err(|source| BaselineError::Read {
        path: path.clone(),
        source,
    })?;
    let r: Report =
        serde_json::from_str(&text).map_err(|source| BaselineError::Parse { path, source })?;
    let yaml = render(&r.results);
    let n = yaml.matches("\n  - ").count();
    match output {
        Some(o) => std::fs::write(o, yaml).map_err(|source| BaselineError::Write {
            path: o.display().to_string(),
            source,
        })?,
        None => {
            use std::io::Write as _;
            let _ = std::io::stdout().lock().write_all(yaml.as_bytes());
        }
    }
    Ok(n)
}

/// The `baseline` command: exit 0 when the entries were written, 2 otherwise.
pub fn command(report: &Path, output: Option<&Path>) -> u8 {
    match baseline(report, output) {
        Ok(n) => {
            if let Some(o) = output {
                eprintln!(
                    "tenantgate: wrote {n} accept entr{} to {}",
                    if n == 1 { "y" } else { "ies" },
                    o.display()
                );
            }
            exit::PROVEN
        }
        Err(e) => {
            eprintln!("tenantgate: baseline: {e}");
            exit::UNDECIDED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Layer;

    #[test]
    fn warnings_become_entries_with_a_reason_to_fill_in() {
        let w =
            |id: &str| CheckResult::new(id, "t", "r", Layer::Database, Verdict::Warn, "hint\nx");
        let results = vec![
            w("public.users.unique_without_tenant"),
            CheckResult::new("c", "c", "base", Layer::Http, Verdict::Fail, "leak"),
            w("public.users.unique_without_tenant"),
            w("odd\"id"),
        ];
        let y = render(&results);
        assert!(y.contains(
            "  - { id: \"public.users.unique_without_tenant\", reason: \"TODO: why this is acceptable\" }\n"
        ));
        assert!(y.contains("id: \"odd\\\"id\""));
        assert_eq!(y.matches("\n  - ").count(), 2, "{y}");
        assert!(!y.contains("\"c\""), "failures are never accepted");
        assert!(y.contains("  # hintx\n"));
        assert!(render(&[]).contains("accept: []"));
    }
}
