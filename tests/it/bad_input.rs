//! Bad input, end to end (parse stage): every malformed suite in `fixtures/bad-suites/`
//! is given to the real `tenantgate validate`, which must exit 2, never panic, point
//! at the file (and line and column, where the problem has one), say what to do, and
//! print exactly what the fixture's `.expected` snapshot holds.
//!
//! The snapshots are what a person reads when a suite is wrong: review them as text.
//! They are compared with snapbox (a failure shows the diff); after an intended change
//! of wording, rewrite them and review the diff:
//!
//! ```text
//! SNAPSHOTS=overwrite cargo test --test it bad_input
//! git diff fixtures/bad-suites
//! ```
//!
//! The binary runs with an empty environment (`PATH` only), so `${VAR}` references
//! resolve the same way on every machine. A suite over the size limit is generated
//! here rather than committed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long one `validate` may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(30);

/// File-level problems: they concern the whole file, so they have no line to point at.
/// Any other diagnostic without `:line:col` is a failure.
const FILE_LEVEL: [&str; 7] = [
    "the suite is empty",
    "bytes; suites over",
    "the suite has no checks and no database section",
    "the suite has checks but no `target:`",
    "the suite has checks but no `orgs:`",
    "`orgs` has neither `provision` nor `mint`",
    "`orgs` has no `auth`",
];

/// Diagnostics allowed without a `help:` line. Empty: every message in the corpus says
/// what to do. (The closing count, `error: could not load the suite: N problems`, is a
/// summary, not a diagnostic, and is not held to it.)
const NO_HELP_ALLOWED: [&str; 0] = [];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> Vec<PathBuf> {
    let dir = root().join("fixtures/bad-suites");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    v.sort();
    v
}

/// The path as the command line names it, relative to the repository root.
fn shown(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

struct Validated {
    code: Option<i32>,
    stderr: String,
}

/// Runs `tenantgate validate PATH` from the repository root with a minimal environment.
fn validate(path: &str) -> Validated {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tenantgate"))
        .arg("validate")
        .arg(path)
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tenantgate");
    // Read stderr on a thread so a chatty child cannot block on a full pipe.
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut err, &mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if start.elapsed() > HANG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr = String::from_utf8_lossy(&reader.join().unwrap()).into_owned();
    Validated {
        code: status.and_then(|s| s.code()),
        stderr: if status.is_none() {
            format!("(hung for more than {HANG:?})\n{stderr}")
        } else {
            stderr
        },
    }
}

/// The diagnostics of a report: each `error:` block, without the closing count.
fn blocks(stderr: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in stderr.lines() {
        if line.starts_with("error: ") {
            out.push(String::new());
        }
        if let Some(b) = out.last_mut() {
            b.push_str(line);
            b.push('\n');
        }
    }
    out.retain(|b| !b.starts_with("error: could not load the suite:"));
    out
}

/// What is wrong with one report, if anything (everything but the snapshot).
fn problems(path: &str, bytes: &[u8], v: &Validated) -> Vec<String> {
    let mut p = Vec::new();
    if v.code != Some(2) {
        p.push(format!("exit code {:?}, expected 2", v.code));
    }
    if v.stderr.contains("panicked") {
        p.push("the loader panicked".into());
    }
    if !v.stderr.ends_with("(nothing was sent)\n") {
        p.push("no closing `could not load the suite` line".into());
    }
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().collect();
    let diags = blocks(&v.stderr);
    if diags.is_empty() {
        p.push("no diagnostic".into());
    }
    for b in &diags {
        let first = b.lines().next().unwrap_or_default();
        let Some(arrow) = b.lines().find_map(|l| l.trim_start().strip_prefix("--> ")) else {
            p.push(format!("`{first}` has no `--> {path}`"));
            continue;
        };
        if arrow == path {
            if !FILE_LEVEL.iter().any(|m| first.contains(m)) {
                p.push(format!(
                    "`{first}` has no line and column (only file-level problems may)"
                ));
            }
        } else {
            let Some((line, col)) = arrow
                .strip_prefix(&format!("{path}:"))
                .and_then(|lc| lc.split_once(':'))
                .and_then(|(l, c)| Some((l.parse::<usize>().ok()?, c.parse::<usize>().ok()?)))
            else {
                p.push(format!("`{first}`: `--> {arrow}` is not `{path}:LINE:COL`"));
                continue;
            };
            // The line must exist (one past the last, for an error at the very end).
            if line == 0 || col == 0 || line > lines.len() + 1 {
                p.push(format!(
                    "`{first}` points at {line}:{col}; the file has {} lines",
                    lines.len()
                ));
            }
            // Where the source line is shown, it is the line the location names.
            let quoted = format!("{line} | ");
            if let Some(q) = b.lines().find_map(|l| l.strip_prefix(&quoted))
                && let Some(actual) = lines.get(line - 1)
                && !q.starts_with("...")
                && !displayed(actual).starts_with(q)
            {
                p.push(format!(
                    "`{first}` quotes `{q}` for line {line}: `{actual}`"
                ));
            }
        }
        if !b.contains("= help: ") && !NO_HELP_ALLOWED.iter().any(|m| first.contains(m)) {
            p.push(format!("`{first}` does not say what to do (no `help:`)"));
        }
    }
    p
}

/// A source line as diagnostics show it: a tab as four spaces, other control
/// characters as `?`.
fn displayed(line: &str) -> String {
    line.chars()
        .map(|c| match c {
            '\t' => "    ".to_string(),
            c if c.is_control() => "?".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[test]
fn every_bad_suite_is_refused_with_its_snapshot() {
    // `SNAPSHOTS=overwrite` rewrites the snapshots; compared raw (no wildcards, no path
    // rewriting: a diagnostic's `...` and paths are part of what is pinned).
    let snapshots = snapbox::Assert::new()
        .action_env("SNAPSHOTS")
        .normalize_paths(false);
    let all = fixtures();
    assert!(all.len() >= 60, "only {} fixtures", all.len());
    let mut failures = Vec::new();
    for f in &all {
        let path = shown(f);
        let bytes = std::fs::read(f).unwrap();
        let v = validate(&path);
        for p in problems(&path, &bytes, &v) {
            failures.push(format!("{path}: {p}"));
        }
        let snap = f.with_extension("expected");
        let expected = snapbox::Data::read_from(&snap, None).raw();
        if let Err(e) = snapshots.try_eq(Some(&path), snapbox::Data::text(v.stderr), expected) {
            failures.push(format!(
                "{path}: stderr differs from {} (review, then `SNAPSHOTS=overwrite`)\n{e}",
                shown(&snap)
            ));
        }
    }
    // A snapshot left behind by a renamed or deleted fixture would mislead a reader.
    let dir = root().join("fixtures/bad-suites");
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "expected") && !p.with_extension("yaml").exists() {
            failures.push(format!("{}: snapshot without a fixture", shown(&p)));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s) in {} fixtures:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}

#[test]
fn a_suite_over_the_size_limit_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    // A plausible suite that grew: a valid head and far too many checks.
    let mut text = String::from(
        "version: 1\nname: huge\ntarget: { base_url: \"http://127.0.0.1:8080\" }\nchecks:\n",
    );
    let mut i = 0;
    while text.len() <= tenantgate::suite::load::MAX_SUITE_BYTES {
        text.push_str(&format!("  - {{ name: check {i}, list: /items/{i} }}\n"));
        i += 1;
    }
    std::fs::write(&path, &text).unwrap();
    let shown = path.display().to_string();
    let v = validate(&shown);
    let p = problems(&shown, text.as_bytes(), &v);
    assert!(p.is_empty(), "{p:?}\n{}", v.stderr);
    assert!(
        v.stderr.starts_with(&format!(
            "error: the suite is {} bytes; suites over 1048576 bytes are refused\n --> {shown}\n",
            text.len()
        )),
        "{}",
        v.stderr
    );
}

#[test]
fn a_suite_just_under_the_size_limit_is_read_quickly() {
    // The same shape, kept under the limit: it must load (or fail) on its merits, fast.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.yaml");
    let mut text = String::from(
        "version: 1\nname: large\ntarget: { base_url: \"http://127.0.0.1:8080\" }\n\
         orgs:\n  provision:\n    - request: { method: POST, url: /signup }\n      \
         capture: { token: $.token, org_id: $.org.id }\nchecks:\n",
    );
    let mut i = 0;
    loop {
        let line = format!("  - {{ name: check {i}, list: /items/{i} }}\n");
        if text.len() + line.len() > tenantgate::suite::load::MAX_SUITE_BYTES {
            break;
        }
        text.push_str(&line);
        i += 1;
    }
    std::fs::write(&path, &text).unwrap();
    let start = Instant::now();
    let v = validate(&path.display().to_string());
    match v.code {
        Some(0) => {}
        Some(2) => {
            let p = problems(&path.display().to_string(), text.as_bytes(), &v);
            assert!(p.is_empty(), "{p:?}\n{}", v.stderr);
        }
        other => panic!("exit code {other:?}\n{}", v.stderr),
    }
    assert!(
        start.elapsed() < HANG,
        "took {:?} for {i} checks",
        start.elapsed()
    );
}

/// Runs the real binary with `args` from the repository root, the environment cleared
/// but for `PATH` and `envs`; returns (exit code, stdout, stderr).
fn tenantgate(args: &[&str], envs: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tenantgate"))
        .args(args)
        .current_dir(root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run tenantgate");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_reports_every_mistake_in_one_run() {
    // Unknown keys (two), a bad duration, an unknown and an unclosed placeholder, a word
    // for a boolean and for a status: one run names all of them, each on its line.
    let (code, _, err) = tenantgate(
        &["validate", "fixtures/bad-suites/97-many-mistakes.yaml"],
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    let want = [
        ("unknown key `targett`", ":4:1"),
        ("invalid duration", ":5:55"),
        ("unknown key `reed`", ":19:5"),
        ("unknown placeholder `{{a.brand_idd}}`", ":21:11"),
        ("`tenant_override` must be true, false", ":22:16"),
        ("unclosed `{{`", ":24:74"),
        ("`not_found_status` must be a whole number", ":26:23"),
    ];
    let found = blocks(&err);
    for (msg, at) in want {
        assert!(
            found.iter().any(|b| b.contains(msg) && b.contains(at)),
            "no `{msg}` at `{at}`:\n{err}"
        );
    }
    assert_eq!(found.len(), want.len(), "{err}");
    assert!(err.ends_with("7 problems (nothing was sent)\n"), "{err}");
}

#[test]
fn validate_no_env_checks_without_secrets_and_names_what_a_run_needs() {
    // A lint step has no secrets: without `--no-env` the reference suite cannot load.
    let (code, _, err) = tenantgate(&["validate", "suites/reference-api.yaml"], &[]);
    assert_eq!(code, Some(2), "{err}");
    // With it, nothing is read (a set variable included) and the needs are listed.
    let (code, out, err) = tenantgate(
        &["validate", "--no-env", "suites/reference-api.yaml"],
        &[("JWT_SECRET", "must-not-be-read")],
    );
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("environment a run needs: APP_DATABASE_URL, DATABASE_URL, JWT_SECRET\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "environment read when set (has a default): APP_ROLE, SEED_PASSWORD, TARGET_URL\n"
        ),
        "{out}"
    );
    assert!(!out.contains("must-not-be-read") && !err.contains("must-not-be-read"));
    // Mistakes are still found: an unknown key and a bad placeholder.
    let (code, _, err) = tenantgate(
        &[
            "validate",
            "--no-env",
            "fixtures/bad-suites/97-many-mistakes.yaml",
        ],
        &[],
    );
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("7 problems"), "{err}");
}

/// A suite in a temporary directory.
fn temp_suite(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("suite.yaml");
    std::fs::write(&path, text).unwrap();
    let shown = path.display().to_string();
    (dir, shown)
}

const SECRET: &str = "victim-secret-4b1d";

fn exfiltrating_suite(url: &str, head: &str) -> String {
    format!(
        "version: 1\nname: exfiltration\n{head}target: {{ base_url: \"http://127.0.0.1:8080\" }}\n\
         orgs:\n  provision:\n    - name: sign up\n      request: {{ method: POST, url: \"{url}\" }}\n      \
         capture: {{ token: $.token, org_id: $.org.id }}\nchecks:\n  - name: brands\n    list: /brands\n"
    )
}

#[test]
fn a_suite_reads_only_the_environment_it_declares() {
    let (_d, path) = temp_suite(&exfiltrating_suite(
        "/signup?k=${TG_VICTIM_SECRET}",
        "env: [TARGET_URL]\n",
    ));
    let (code, out, err) = tenantgate(&["validate", &path], &[("TG_VICTIM_SECRET", SECRET)]);
    assert_eq!(code, Some(2), "{out}{err}");
    assert!(
        err.contains("`${TG_VICTIM_SECRET}` reads an environment variable the suite does not declare in `env:`"),
        "{err}"
    );
    assert!(err.contains(&format!("--> {path}:8:")), "{err}");
    assert!(!err.contains(SECRET) && !out.contains(SECRET));
    // Declared, it is read; without `env:`, every name counts as declared, with a notice.
    for head in ["env: [TG_VICTIM_SECRET]\n", ""] {
        let (_d, path) = temp_suite(&exfiltrating_suite("/signup?k=${TG_VICTIM_SECRET}", head));
        let (code, out, err) = tenantgate(&["validate", &path], &[("TG_VICTIM_SECRET", SECRET)]);
        assert_eq!(code, Some(0), "{out}{err}");
        assert_eq!(
            err.contains("notice: the suite has no `env:` list"),
            head.is_empty(),
            "{err}"
        );
        assert!(!err.contains(SECRET) && !out.contains(SECRET));
    }
}

#[test]
fn a_request_to_another_origin_is_refused_before_anything_is_sent() {
    // The reproduction of the issue: a sign-up URL on another origin carrying a secret.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let url = format!("{origin}/steal?k=${{TG_VICTIM_SECRET}}");
    let (_d, path) = temp_suite(&exfiltrating_suite(&url, ""));
    for cmd in ["validate", "run"] {
        let (code, out, err) = tenantgate(&[cmd, &path], &[("TG_VICTIM_SECRET", SECRET)]);
        assert_eq!(code, Some(2), "{cmd}: {out}{err}");
        assert!(
            err.contains(&format!("this request would go to `{origin}`")),
            "{cmd}: {err}"
        );
        assert!(err.contains(&format!("--> {path}:7:37")), "{err}");
        assert!(
            !err.contains(SECRET) && !out.contains(SECRET),
            "{cmd}: {err}"
        );
    }
    assert!(listener.accept().is_err(), "the other origin was contacted");
    // Declared by the suite, or allowed on the command line, it loads.
    let declared = exfiltrating_suite(&url, "").replace(
        "target: { base_url: \"http://127.0.0.1:8080\" }",
        &format!(
            "target: {{ base_url: \"http://127.0.0.1:8080\", allowed_origins: [\"{origin}\"] }}"
        ),
    );
    let (_d2, declared) = temp_suite(&declared);
    let (code, _, err) = tenantgate(&["validate", &declared], &[("TG_VICTIM_SECRET", SECRET)]);
    assert_eq!(code, Some(0), "{err}");
    let (code, _, err) = tenantgate(
        &["validate", "--allow-origin", &origin, &path],
        &[("TG_VICTIM_SECRET", SECRET)],
    );
    assert_eq!(code, Some(0), "{err}");
}
