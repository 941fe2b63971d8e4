//! Distribution and CI recipes, as far as they can be tested on one machine without a
//! network or a container daemon: every workflow, the composite action and the CI
//! recipes parse as YAML with the keys their runner needs; the Dockerfile is well formed;
//! the release packaging script and the install script work together on the real
//! binary, and the install script refuses an archive whose checksum does not match.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(rel: &str) -> Value {
    let text = std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

#[test]
fn workflows_actions_and_recipes_parse() {
    for rel in [
        ".github/workflows/ci.yml",
        ".github/workflows/release.yml",
        "examples/ci/github-actions.yml",
    ] {
        let w = yaml(rel);
        assert!(w.get("on").is_some(), "{rel}: no `on`");
        let jobs = w["jobs"]
            .as_object()
            .unwrap_or_else(|| panic!("{rel}: no jobs"));
        for (name, job) in jobs {
            assert!(
                job.get("runs-on").is_some(),
                "{rel}: job {name} has no runs-on"
            );
            let steps = job["steps"].as_array().unwrap();
            for s in steps {
                assert!(
                    s.get("uses").is_some() ^ s.get("run").is_some(),
                    "{rel}: job {name}: a step needs exactly one of uses/run: {s}"
                );
            }
        }
    }
    let action = yaml(".github/actions/tenantgate/action.yml");
    assert_eq!(action["runs"]["using"], "composite");
    for s in action["runs"]["steps"].as_array().unwrap() {
        assert!(
            s.get("shell").is_some(),
            "a composite run step needs a shell: {s}"
        );
    }
    assert!(action["inputs"]["suite"]["required"] == true);
    // The composite action finds the install script relative to itself.
    assert!(
        root()
            .join(".github/actions/tenantgate/../../../scripts/install.sh")
            .is_file()
    );
    let gitlab = yaml("examples/ci/gitlab-ci.yml");
    let job = &gitlab["tenant-isolation"];
    assert_eq!(
        job["artifacts"]["reports"]["junit"],
        "tenantgate-reports/junit.xml"
    );
    assert_eq!(job["artifacts"]["when"], "always");
    assert!(job["script"][0].as_str().unwrap().contains("--reports"));
}

/// The Dockerfile's instructions, continuation lines joined.
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if current.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        current.push_str(t.trim_end_matches('\\'));
        current.push(' ');
        if !t.ends_with('\\') {
            let (k, v) = current
                .trim()
                .split_once(' ')
                .unwrap_or((current.trim(), ""));
            out.push((k.to_string(), v.trim().to_string()));
            current.clear();
        }
    }
    assert!(
        current.is_empty(),
        "a continuation line ends the Dockerfile"
    );
    out
}

#[test]
fn the_dockerfile_is_well_formed() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let ins = instructions(&text);
    const KNOWN: &[&str] = &[
        "FROM",
        "RUN",
        "COPY",
        "WORKDIR",
        "ENTRYPOINT",
        "CMD",
        "USER",
        "ENV",
        "ARG",
        "LABEL",
    ];
    assert_eq!(ins[0].0, "FROM", "a Dockerfile starts with FROM");
    let mut stages = Vec::new();
    for (k, v) in &ins {
        assert!(KNOWN.contains(&k.as_str()), "unknown instruction {k}");
        if k == "FROM" {
            assert!(!v.contains(":latest"), "pin the base images: {v}");
            if let Some((_, name)) = v.split_once(" AS ") {
                stages.push(name.trim().to_string());
            }
        }
        if let Some(stage) = v.strip_prefix("--from=") {
            let stage = stage.split_whitespace().next().unwrap();
            assert!(stages.iter().any(|s| s == stage), "no stage {stage}");
        }
        if k == "ENTRYPOINT" || k == "CMD" {
            let _: Vec<String> = serde_json::from_str(v)
                .unwrap_or_else(|e| panic!("{k} must be a JSON array (exec form): {e}"));
        }
    }
    assert_eq!(ins.last().unwrap().0, "CMD");
    assert!(
        ins.iter().any(|(k, _)| k == "USER"),
        "the image runs as a non-root user"
    );
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "target/"));
}

/// The archive name the install script picks on this machine.
fn this_target() -> Option<&'static str> {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => Some("x86_64-unknown-linux-musl"),
        ("linux", "aarch64") => Some("aarch64-unknown-linux-musl"),
        _ => None,
    }
}

fn sh(script: &str, args: &[&str], env: &[(&str, &Path)]) -> std::process::Output {
    let mut c = Command::new("sh");
    c.arg(root().join("scripts").join(script)).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run sh")
}

#[test]
fn the_install_script_installs_a_packaged_release_and_checks_its_sum() {
    let Some(target) = this_target() else {
        eprintln!("SKIPPED: the install script test runs on Linux x86_64/aarch64");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    let out = sh(
        "package.sh",
        &[
            target,
            env!("CARGO_BIN_EXE_tenantgate"),
            dist.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let archive = dist.join(format!("tenantgate-{target}.tar.gz"));
    assert!(archive.is_file());
    let sum =
        std::fs::read_to_string(dist.join(format!("tenantgate-{target}.tar.gz.sha256"))).unwrap();
    assert_eq!(sum.split_whitespace().next().unwrap().len(), 64);

    let base = dist.clone();
    let base_url = PathBuf::from(format!("file://{}", base.display()));
    let bin = dir.path().join("bin");
    let out = sh(
        "install.sh",
        &[],
        &[("TENANTGATE_BASE_URL", &base_url), ("BIN_DIR", &bin)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = Command::new(bin.join("tenantgate"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&v.stdout).trim(),
        format!("tenantgate {}", env!("CARGO_PKG_VERSION"))
    );

    // A checksum that does not match: refused, nothing installed.
    std::fs::write(
        dist.join(format!("tenantgate-{target}.tar.gz.sha256")),
        format!("{}  tenantgate-{target}.tar.gz\n", "0".repeat(64)),
    )
    .unwrap();
    let bin2 = dir.path().join("bin2");
    let out = sh(
        "install.sh",
        &[],
        &[("TENANTGATE_BASE_URL", &base_url), ("BIN_DIR", &bin2)],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("checksum mismatch"));
    assert!(!bin2.join("tenantgate").exists());
}
