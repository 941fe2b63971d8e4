//! Support for the end-to-end tests: the reference API launched with chosen bugs on the
//! shared cluster ([`crate::common::cluster`]: `DATABASE_URL`, else a throwaway one),
//! and the real `tenantgate` binary run against it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use tenantgate_reference_api::bugs::Bugs;

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A unique lowercase name for a database / role prefix.
pub fn unique(stem: &str) -> String {
    format!(
        "{stem}{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The reference API running with some bugs, and how to reach it.
pub struct Target {
    pub rt: tokio::runtime::Runtime,
    pub launched: Option<tenantgate_reference_api::Launched>,
    pub dir: tempfile::TempDir,
}

impl Target {
    /// Launches the reference API with `bugs` (comma-separated names, or empty).
    pub fn start(bugs: &str) -> Target {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let name = unique("tg");
        let bugs = Bugs::parse(bugs).expect("known bugs");
        let admin = crate::common::cluster().admin_url().to_string();
        let launched = rt
            .block_on(tenantgate_reference_api::launch_at(
                &admin, &name, &name, bugs,
            ))
            .expect("launch the reference API");
        Target {
            rt,
            launched: Some(launched),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn l(&self) -> &tenantgate_reference_api::Launched {
        self.launched.as_ref().unwrap()
    }

    /// The environment the bundled suite reads.
    pub fn env(&self) -> Vec<(String, String)> {
        let l = self.l();
        vec![
            ("TARGET_URL".into(), l.base_url.clone()),
            ("DATABASE_URL".into(), l.admin_url.clone()),
            ("APP_DATABASE_URL".into(), l.app_url.clone()),
            ("APP_ROLE".into(), l.app_role.clone()),
            ("JWT_SECRET".into(), l.jwt_secret.clone()),
        ]
    }

    /// Secrets that must never appear in any output.
    pub fn secrets(&self) -> Vec<String> {
        let l = self.l();
        let mut s = vec![
            l.jwt_secret.clone(),
            "correct-horse-battery-staple".to_string(),
        ];
        for url in [&l.app_url, &l.admin_url] {
            s.extend(tenantgate::redact::url_password(url));
        }
        s
    }

    /// Runs `tenantgate run SUITE` with reports into the temp dir.
    pub fn run(&self, suite: &Path, extra: &[&str]) -> Run {
        self.run_with_env(suite, extra, &[])
    }

    pub fn run_with_env(&self, suite: &Path, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let json = self.dir.path().join(format!("{}.json", unique("r")));
        let junit = self.dir.path().join(format!("{}.xml", unique("r")));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
        cmd.arg("run")
            .arg(suite)
            .arg("--json")
            .arg(&json)
            .arg("--junit")
            .arg(&junit)
            .args(extra);
        for (k, v) in self.env() {
            cmd.env(k, v);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.env("NO_COLOR", "1");
        Run::of(cmd, json, junit)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(l) = self.launched.take() {
            self.rt.block_on(l.api.shutdown());
        }
    }
}

/// One finished run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub json: Option<serde_json::Value>,
    pub junit: Option<String>,
}

impl Run {
    pub fn of(mut cmd: Command, json: PathBuf, junit: PathBuf) -> Run {
        let out = cmd.output().expect("run tenantgate");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            json: std::fs::read_to_string(&json)
                .ok()
                .and_then(|s| serde_json::from_str(&s).ok()),
            junit: std::fs::read_to_string(&junit).ok(),
        }
    }

    /// Result ids with a verdict.
    pub fn ids(&self, verdict: &str) -> Vec<String> {
        self.json
            .as_ref()
            .and_then(|j| j["results"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|r| r["verdict"] == verdict)
            .filter_map(|r| r["id"].as_str().map(String::from))
            .collect()
    }

    /// Everything the run wrote, for secret scans.
    pub fn all_output(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}",
            self.stdout,
            self.stderr,
            self.json
                .as_ref()
                .map(|j| j.to_string())
                .unwrap_or_default(),
            self.junit.clone().unwrap_or_default()
        )
    }

    pub fn explain(&self) -> String {
        format!(
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// The bundled suite.
pub fn bundled_suite() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/reference-api.yaml")
}

/// A copy of the bundled suite with text replaced, written into `dir`.
pub fn edited_suite(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(bundled_suite()).unwrap();
    for (from, to) in edits {
        assert!(
            text.contains(from),
            "the bundled suite no longer contains {from:?}"
        );
        text = text.replace(from, to);
    }
    let p = dir.join(format!("{}.yaml", unique("suite")));
    std::fs::write(&p, text).unwrap();
    p
}
