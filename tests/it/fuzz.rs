//! Fuzzing the parse stage and the pure verdict rules, deterministically: a seeded
//! xorshift generator mutates valid suites (the bundled `suites/reference-api.yaml`,
//! the format contract's example) and the bad-input corpus, and makes random
//! templates, JSONPaths, JSON bodies and identifiers. No dependency, stable Rust.
//!
//! Each target checks properties, not just "no panic":
//! - `load_str`: `Ok`, or `Err` with at least one diagnostic, each saying what to do,
//!   each located one on a line of the input; the report renders; a suite that loads
//!   can be planned. With unknown keys put at random places of a valid suite, one load
//!   reports every one of them.
//! - `Tpl::parse` / `render`: errors carry the value's location; a template without
//!   `$` or `{` is its own text; rendering each placeholder as itself gives the
//!   template's display.
//! - `capture`: `$status` and `$header.NAME` read what the answer has; JSONPath never
//!   panics on any body.
//! - `markers_in`, `mask`, `twin_of`, `json_diff`: found markers are markers and every
//!   marker in the raw body is found; masked ids are gone; a twin differs from its id
//!   and keeps its shape; a body equals itself, and differs exactly when its JSON does.
//! - `redact::structural`: its shortcut (text that no rule can match is returned as it
//!   is) gives what the five rules give, on evidence-like text full of secret words in
//!   any letter case, non-ASCII look-alikes included.
//!
//! Iterations per target: `TENANTGATE_FUZZ_ITERS` (default small: the module runs in
//! seconds in debug). Seed: `TENANTGATE_FUZZ_SEED` (default fixed). A failure prints the
//! seed and the case's number; `TENANTGATE_FUZZ_START=<case> TENANTGATE_FUZZ_ITERS=1`
//! with that seed replays it.
//! A long run, in release:
//!
//! ```text
//! TENANTGATE_FUZZ_ITERS=500000 TENANTGATE_FUZZ_SEED=$RANDOM \
//!   cargo test --release --test it fuzz -- --nocapture
//! ```

use std::collections::BTreeSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use tenantgate::redact::Redactor;
use tenantgate::run::http::Resp;
use tenantgate::run::setup::capture;
use tenantgate::run::verdict::{json_diff, markers_in, mask, twin_of, volatile_paths};
use tenantgate::suite::model::{CaptureSource, CaptureSpec, parse_capture};
use tenantgate::suite::template::{Loc, Tpl};

/// One case taking longer than this (even in debug) counts as a hang.
const SLOW: Duration = Duration::from_secs(5);

/// The contract's complete example (`suite-format.md`), a second valid seed.
const CONTRACT_EXAMPLE: &str = r#"version: 1
name: votriz-isolation

target:
  base_url: ${TARGET_URL:-http://127.0.0.1:8080}   # ${VAR}, ${VAR:-default}, ${VAR:?message}
  timeout: 10s

vars:
  password: ${SEED_PASSWORD:-correct-horse-battery}

orgs:
  provision:                      # run once for org a, once for org b
    - name: sign up
      request:
        method: POST
        url: /auth/signup
        json: { org_name: "tg-{{run_id}}-{{org}}", email: "{{org}}-{{run_id}}@example.test", password: "{{password}}" }
      expect: { status: 201 }
      capture: { token: $.access_token, org_id: $.org.id }
  auth: { header: Authorization, value: "Bearer {{token}}" }
  tenant_claim: org_id            # the JWT claim that carries the tenant
  identity: /me                   # optional: an endpoint that echoes the caller's tenant
  teardown:                       # optional; runs for both orgs, also after failures
    - request: { method: DELETE, url: "/orgs/{{org_id}}" }

seed:                             # runs as org a, in order
  - name: create brand
    request: { method: POST, url: /brands, json: { name: "Acme {{run_id}}" } }
    expect: { status: 201 }
    capture: { brand_id: $.id, brand_name: $.name }

checks:                           # run as org b
  - name: brand is invisible to B
    read: "/brands/{{a.brand_id}}"
  - name: mentions list holds none of A's rows
    list: /monitoring/mentions
  - name: B cannot change A's ghost-presence config
    write: { method: PATCH, url: "/ghost-presence/{{a.brand_id}}/config", json: { enabled: false } }
    verify: "/ghost-presence/{{a.brand_id}}/config"

database:
  url: ${DATABASE_URL}            # any role that can read the catalogs
  tenant_column: org_id
  app_role: app_user
  tenant_setting: app.current_org_id
"#;

/// Pieces that matter to YAML, to templates, to JSONPath and to the suite format.
#[rustfmt::skip]
const TOKENS: &[&str] = &[
    // YAML
    "[", "]", "{", "}", ",", ":", ": ", "- ", "\"", "'", "&a ", "*a", "&b [1, 2]", "*b",
    "!!str ", "!!binary ", "!tag ", "|\n", ">-\n", "? ", "---\n", "...\n", "# c", "\t",
    "\n", "\r\n", "  ", "    ", "~", "null", "true", "yes", "no", "0x1F", "0o17", "1e999",
    ".nan", "-.inf", "-1", "99999999999999999999", "1.5", "<<: *a", "%YAML 1.2\n", "@", "`",
    "%", "\\", "\\u0000", "\"\\x\"",
    // templates
    "${", "}", "${X}", "${X:-d}", "${X-d}", "${X:?msg}", "${X?}", "${1X}", "${}", "$${",
    "{{", "}}", "{{a.brand_id}}", "{{b.x}}", "{{org}}", "{{run_id}}", "{{uuid}}", "{{{{",
    "{{a.b.c}}", "{{}}", "{{ token }}", "{{a.}}", "{{.a}}",
    // JSONPath
    "$", "$.", "$..", "$[", "$[0]", "$[-1]", "$[*]", "$.a[1:2:0]", "$[?@.a==1]", "$[?@.a]",
    "$status", "$header.", "$header.Location", "$['a']", "$..*", "$.a.b.c",
    // keys of the format
    "version", "name", "description", "target", "base_url", "timeout", "headers", "vars",
    "orgs", "provision", "mint", "auth", "header", "value", "tenant_claim", "identity",
    "teardown", "seed", "checks", "read", "list", "write", "verify", "request", "as",
    "expect", "control", "markers", "exclude", "attacks", "tenant_override",
    "token_forgery", "claim_integrity", "existence_oracle", "sign_with", "not_found_status",
    "database", "url", "tenant_column", "schemas", "tables", "exempt", "app_role",
    "tenant_setting", "probe", "algorithm", "secret", "key", "ttl", "claims", "a", "b",
    "method", "query", "json", "body", "status", "body_contains", "body_excludes",
    "capture",
    // values
    "GET", "POTS", "DELETE", "2xx", "7xx", "600", "abc", "[]", "{}", "10s", "10 parsecs",
    "-1s", "1.5s", "18446744073709551615h", "HS256", "RS256", "none", "/path", "http://x",
    "postgres://u@h/db", "anon", "B",
    // text that is not ASCII, or not printable
    "é", "\u{200b}", "\u{feff}", "🦀", "\u{0}", "\u{1b}[31m", "\u{2028}", "\u{85}", "\u{7f}",
    "ß", "İ", "\u{10ffff}",
];

// ---------------------------------------------------------------------------------------
// The generator

/// xorshift64* seeded through splitmix64: small, fast, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
    fn char(&mut self) -> char {
        match self.below(10) {
            0..=5 => (b' ' + self.below(95) as u8) as char,
            6 => *self.pick(&['\n', '\t', '\r', '\0', '\u{1b}']),
            7 => char::from_u32(0x80 + self.below(0x780) as u32).unwrap_or('?'),
            8 => char::from_u32(0x1f300 + self.below(0x300) as u32).unwrap_or('?'),
            _ => *self.pick(&['$', '{', '}', '[', ']', ':', '-', '.', '*', '&', '"', '\'']),
        }
    }
    fn token(&mut self) -> String {
        if self.chance(80) {
            self.pick(TOKENS).to_string()
        } else {
            (0..1 + self.below(6)).map(|_| self.char()).collect()
        }
    }
    /// A string of tokens and characters.
    fn text(&mut self, max_parts: usize) -> String {
        (0..self.below(max_parts + 1))
            .map(|_| {
                if self.chance(60) {
                    self.token()
                } else {
                    self.char().to_string()
                }
            })
            .collect()
    }
}

/// The seed of case `i` of a run started with `seed`: runs with different seeds start
/// far apart, so they do not repeat each other's cases.
fn case_seed(seed: u64, i: u64) -> u64 {
    Rng::new(seed).next().wrapping_add(i)
}

struct Settings {
    iters: u64,
    seed: u64,
    /// The first case (to replay one case of a run).
    start: u64,
}

fn settings(default_iters: u64) -> Settings {
    let num = |name: &str| {
        std::env::var(name).ok().map(|v| {
            v.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={v} is not a whole number"))
        })
    };
    Settings {
        iters: num("TENANTGATE_FUZZ_ITERS").unwrap_or(default_iters),
        seed: num("TENANTGATE_FUZZ_SEED").unwrap_or(20_260_401),
        start: num("TENANTGATE_FUZZ_START").unwrap_or(0),
    }
}

/// Runs `case` for every seed of the run; a panic, a broken property or a slow case
/// fails the test with the case's seed and input.
fn run(target: &str, default_iters: u64, case: impl Fn(&mut Rng) -> (String, Result<(), String>)) {
    let s = settings(default_iters);
    let start = Instant::now();
    let mut slowest = (Duration::ZERO, 0);
    for i in s.start..s.start.saturating_add(s.iters) {
        let seed = case_seed(s.seed, i);
        let mut rng = Rng::new(seed);
        INPUT.with(|c| c.borrow_mut().take());
        let t = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| case(&mut rng)));
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, i);
        }
        let failure = match outcome {
            Ok((_, Ok(()))) if took <= SLOW => None,
            Ok((input, Ok(()))) => Some((input, format!("took {took:?}"))),
            Ok((input, Err(why))) => Some((input, why)),
            Err(p) => Some((
                INPUT
                    .with(|c| c.borrow_mut().take())
                    .unwrap_or_else(|| "(not recorded)".into()),
                format!(
                    "panicked: {}",
                    p.downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| p.downcast_ref::<&str>().copied())
                        .unwrap_or("(no message)")
                ),
            )),
        };
        if let Some((input, why)) = failure {
            panic!(
                "fuzz {target}: case {i} failed: {why}\n\
                 replay: TENANTGATE_FUZZ_SEED={} TENANTGATE_FUZZ_START={i} TENANTGATE_FUZZ_ITERS=1 cargo test --test it fuzz::{target}\n\
                 input ({} bytes): {input:?}",
                s.seed,
                input.len()
            );
        }
    }
    eprintln!(
        "fuzz {target}: {} cases from seed {} in {:.2?} (slowest {:.2?}: case {}), no failure",
        s.iters,
        s.seed,
        start.elapsed(),
        slowest.0,
        slowest.1
    );
}

thread_local! {
    /// The current case's input, recorded before the code under test runs, so that a
    /// panic can be reported with it.
    static INPUT: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn record(input: &str) {
    INPUT.with(|c| *c.borrow_mut() = Some(input.to_string()));
}

// ---------------------------------------------------------------------------------------
// Suites

fn seeds() -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut v = vec![
        std::fs::read_to_string(root.join("suites/reference-api.yaml")).unwrap(),
        CONTRACT_EXAMPLE.to_string(),
    ];
    let mut bad: Vec<_> = std::fs::read_dir(root.join("fixtures/bad-suites"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    bad.sort();
    v.extend(bad.iter().filter_map(|p| std::fs::read_to_string(p).ok()));
    v
}

/// One random edit of a suite's text.
fn mutate(rng: &mut Rng, text: &mut Vec<char>, others: &[String]) {
    let n = text.len();
    let at = if n == 0 { 0 } else { rng.below(n + 1) };
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(
            text.iter()
                .enumerate()
                .filter(|(_, c)| **c == '\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|i| *i < n)
        .collect();
    match rng.below(10) {
        0 | 1 => {
            let t: Vec<char> = rng.token().chars().collect();
            text.splice(at..at, t);
        }
        2 => {
            let len = if rng.chance(80) {
                1 + rng.below(8)
            } else {
                rng.below(200)
            };
            let end = (at + len).min(n);
            text.drain(at..end);
        }
        3 => {
            let len = 1 + rng.below(60);
            let end = (at + len).min(n);
            let span: Vec<char> = text[at..end].to_vec();
            let to = rng.below(n + 1);
            text.splice(to..to, span);
        }
        4 if n > 0 => {
            let i = rng.below(n);
            text[i] = rng.char();
        }
        5 if line_starts.len() > 1 => {
            // Re-indent a line.
            let s = *rng.pick(&line_starts);
            if rng.chance(50) {
                let k = 1 + rng.below(4);
                let pad: Vec<char> = if rng.chance(15) {
                    vec!['\t']
                } else {
                    vec![' '; k]
                };
                text.splice(s..s, pad);
            } else {
                let k = text[s..]
                    .iter()
                    .take_while(|c| **c == ' ')
                    .count()
                    .min(1 + rng.below(4));
                text.drain(s..s + k);
            }
        }
        6 if line_starts.len() > 2 => {
            // Swap two lines.
            let lines: Vec<String> = text
                .iter()
                .collect::<String>()
                .split('\n')
                .map(String::from)
                .collect();
            let mut lines = lines;
            let i = rng.below(lines.len());
            let j = rng.below(lines.len());
            lines.swap(i, j);
            *text = lines.join("\n").chars().collect();
        }
        7 => {
            // Splice in lines of another suite.
            let other = rng.pick(others);
            let lines: Vec<&str> = other.lines().collect();
            if !lines.is_empty() {
                let from = rng.below(lines.len());
                let k = 1 + rng.below(6);
                let chunk: String = lines[from..(from + k).min(lines.len())].join("\n") + "\n";
                let s = if line_starts.is_empty() {
                    0
                } else {
                    *rng.pick(&line_starts)
                };
                text.splice(s..s, chunk.chars());
            }
        }
        8 => {
            // Replace a value after `: ` with a token.
            let s: String = text.iter().collect();
            let colons: Vec<usize> = s
                .char_indices()
                .filter(|(_, c)| *c == ':')
                .map(|(i, _)| s[..i].chars().count())
                .collect();
            if !colons.is_empty() {
                let c = *rng.pick(&colons) + 1;
                let end = text[c..]
                    .iter()
                    .position(|ch| matches!(ch, '\n' | ',' | '}' | ']'))
                    .map(|p| c + p)
                    .unwrap_or(text.len());
                let t: Vec<char> = format!(" {}", rng.token()).chars().collect();
                text.splice(c..end, t);
            }
        }
        _ => {
            if rng.chance(30) {
                text.truncate(at);
            } else {
                let t: Vec<char> = rng.text(6).chars().collect();
                text.splice(at..at, t);
            }
        }
    }
}

fn suite_env(rng: &mut Rng) -> Vec<(String, String)> {
    let mut env = Vec::new();
    if rng.chance(70) {
        for (k, v) in [
            ("TARGET_URL", "http://127.0.0.1:8080"),
            ("DATABASE_URL", "postgres://tg:pw@127.0.0.1:5432/app"),
            ("APP_DATABASE_URL", "postgres://app:pw@127.0.0.1:5432/app"),
            ("JWT_SECRET", "fuzz-secret-0123456789abcdef"),
            ("APP_ROLE", "tg_app"),
        ] {
            if rng.chance(85) {
                env.push((k.to_string(), v.to_string()));
            }
        }
    }
    if rng.chance(20) {
        env.push(("X".into(), rng.text(3)));
    }
    env
}

/// Loads `text` and checks what loading promises.
fn check_load(text: &str, env: &[(String, String)]) -> Result<(), String> {
    let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    match tenantgate::suite::load_str("fuzz.yaml", text, &lookup) {
        Ok(l) => {
            let s = &l.suite;
            let _ =
                tenantgate::run::plan(s, s.orgs.as_ref().is_some_and(|o| o.mint.is_some()), None);
            if l.sha256.len() != 64 {
                return Err(format!("sha256 `{}`", l.sha256));
            }
            Ok(())
        }
        Err(e) => {
            if e.diagnostics.is_empty() {
                return Err("an error without diagnostics".into());
            }
            let out = e.render(&Redactor::new());
            if !out.starts_with("error: ") || !out.contains("(nothing was sent)") {
                return Err(format!("a malformed report:\n{out}"));
            }
            let lines: Vec<&str> = text.lines().collect();
            for d in &e.diagnostics {
                if d.hint.is_none() {
                    return Err(format!(
                        "`{}` says nothing about what to do\n{out}",
                        d.message
                    ));
                }
                let Some(loc) = d.loc else { continue };
                let line = loc.line as usize;
                if line == 0 || line > lines.len().max(1) {
                    return Err(format!(
                        "`{}` is at line {line}; the input has {} lines\n{out}",
                        d.message,
                        lines.len()
                    ));
                }
                let width = lines.get(line - 1).map_or(0, |l| l.chars().count());
                if loc.col == 0 || loc.col as usize > width + 1 {
                    return Err(format!(
                        "`{}` is at column {} of line {line}, which has {width} characters\n{out}",
                        d.message, loc.col
                    ));
                }
            }
            Ok(())
        }
    }
}

#[test]
fn load_str_mutated_suites() {
    let seeds = seeds();
    run("load_str_mutated_suites", 1000, |rng| {
        let base = if rng.chance(85) {
            rng.pick(&seeds[..2]).clone()
        } else {
            rng.pick(&seeds).clone()
        };
        let mut text: Vec<char> = base.chars().collect();
        for _ in 0..1 + rng.below(4) {
            mutate(rng, &mut text, &seeds);
        }
        let text: String = text.into_iter().collect();
        let env = suite_env(rng);
        record(&text);
        let r = check_load(&text, &env);
        (text, r)
    });
}

/// Keys of the format's structs (never of a free mapping such as `vars`), which reject
/// a key they do not know.
const STRUCT_KEYS: &[&str] = &[
    "version",
    "name",
    "target",
    "base_url",
    "timeout",
    "orgs",
    "provision",
    "request",
    "method",
    "url",
    "json",
    "expect",
    "capture",
    "auth",
    "tenant_claim",
    "identity",
    "teardown",
    "seed",
    "checks",
    "read",
    "list",
    "write",
    "verify",
    "database",
    "tenant_column",
    "app_role",
    "tenant_setting",
];

#[test]
fn load_str_reports_every_unknown_key() {
    // One load names every unknown key, wherever the keys are: 1 to 6 keys that are no
    // typo of anything are put before random keys of the contract's example.
    run("load_str_reports_every_unknown_key", 100, |rng| {
        let lines: Vec<&str> = CONTRACT_EXAMPLE.lines().collect();
        let candidates: Vec<usize> = (0..lines.len())
            .filter(|&i| {
                let t = lines[i].trim_start();
                !t.starts_with("- ")
                    && t.split_once(':')
                        .is_some_and(|(k, _)| STRUCT_KEYS.contains(&k))
            })
            .collect();
        let mut at: Vec<usize> = (0..1 + rng.below(6))
            .map(|_| *rng.pick(&candidates))
            .collect();
        at.sort();
        at.dedup();
        let mut out = String::new();
        let mut names = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            if at.contains(&i) {
                let indent = line.len() - line.trim_start().len();
                let name = format!(
                    "zqx{}{i}",
                    (0..6)
                        .map(|_| (b'a' + rng.below(26) as u8) as char)
                        .collect::<String>()
                );
                out.push_str(&format!(
                    "{}{name}: {}\n",
                    " ".repeat(indent),
                    rng.pick(&["1", "[a, b]", "{ k: v }", "\"{{a.x}}\""])
                ));
                names.push(name);
            }
            out.push_str(line);
            out.push('\n');
        }
        record(&out);
        let env = suite_env(rng);
        let lookup = |n: &str| env.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let r = match tenantgate::suite::load_str("fuzz.yaml", &out, &lookup) {
            Ok(_) => Err("loaded".to_string()),
            Err(e) => {
                let report = e.render(&Redactor::new());
                match names
                    .iter()
                    .find(|n| !report.contains(&format!("unknown key `{n}`")))
                {
                    Some(n) => Err(format!("`{n}` not reported:\n{report}")),
                    None => check_load(&out, &env),
                }
            }
        };
        (out, r)
    });
}

#[test]
fn load_str_random_text() {
    run("load_str_random_text", 2000, |rng| {
        let text = if rng.chance(50) {
            // Lines of `key: value` and list items, with random indentation.
            (0..rng.below(30))
                .map(|_| {
                    let indent = " ".repeat(rng.below(4) * 2);
                    let dash = if rng.chance(30) { "- " } else { "" };
                    format!("{indent}{dash}{}: {}\n", rng.token(), rng.text(3))
                })
                .collect()
        } else {
            rng.text(60)
        };
        let env = suite_env(rng);
        record(&text);
        let r = check_load(&text, &env);
        (text, r)
    });
}

// ---------------------------------------------------------------------------------------
// Templates

#[test]
fn templates_parse_and_render() {
    run("templates_parse_and_render", 20000, |rng| {
        let raw = rng.text(12);
        record(&raw);
        let loc = Loc {
            line: 3,
            col: 7,
            offset: 40,
            len: raw.len(),
        };
        let r = (|| {
            let (t, errors) = Tpl::parse(&raw, loc);
            for e in &errors {
                if e.loc != loc {
                    return Err(format!(
                        "error `{}` at {:?}, not the value's {loc:?}",
                        e.message, e.loc
                    ));
                }
                if e.message.is_empty() || e.hint.is_none() {
                    return Err(format!("error `{}` without a hint", e.message));
                }
            }
            let vars: Vec<&str> = t.vars().collect();
            for v in &vars {
                if v.is_empty() || v.contains("}}") || v.split('.').count() > 2 {
                    return Err(format!("placeholder `{v}`"));
                }
            }
            if t.as_literal().is_some() != vars.is_empty() {
                return Err("as_literal disagrees with vars".into());
            }
            if !raw.contains(['$', '{'])
                && (t.as_literal().as_deref() != Some(raw.as_str()) || !errors.is_empty())
            {
                return Err(format!("plain text changed: {:?}", t.as_literal()));
            }
            let shown = t.to_string();
            let itself = t
                .render(&|v| Some(format!("{{{{{v}}}}}")))
                .map_err(|e| e.to_string())?;
            if itself != shown {
                return Err(format!("render as itself `{itself}` != display `{shown}`"));
            }
            if t.render(&|_| None).is_ok() != vars.is_empty() {
                return Err("render without values succeeded with placeholders".into());
            }
            Ok(())
        })();
        (raw, r)
    });
}

// ---------------------------------------------------------------------------------------
// Captures

fn json_value(rng: &mut Rng, depth: usize, pool: &[String]) -> serde_json::Value {
    use serde_json::Value as J;
    let leaf = depth == 0 || rng.chance(40);
    match rng.below(if leaf { 5 } else { 7 }) {
        0 => J::Null,
        1 => J::Bool(rng.chance(50)),
        2 => match rng.below(4) {
            0 => J::from(rng.next() as i64),
            1 => J::from(rng.below(1000) as u64),
            2 => serde_json::Number::from_f64((rng.next() % 100_000) as f64 / 7.0)
                .map(J::Number)
                .unwrap_or(J::Null),
            _ => J::from(u64::MAX - rng.below(3) as u64),
        },
        3 | 4 => J::String(if rng.chance(50) {
            rng.pick(pool).clone()
        } else {
            rng.text(4)
        }),
        5 => J::Array(
            (0..rng.below(5))
                .map(|_| json_value(rng, depth - 1, pool))
                .collect(),
        ),
        _ => J::Object(
            (0..rng.below(5))
                .map(|_| {
                    let k = if rng.chance(70) {
                        rng.pick(&[
                            "id", "a", "b", "org_id", "items", "name", "org", "$", "", "é", "x.y",
                            "a: b", "[0]",
                        ])
                        .to_string()
                    } else {
                        rng.text(2)
                    };
                    (k, json_value(rng, depth - 1, pool))
                })
                .collect(),
        ),
    }
}

/// A body: JSON, JSON spoiled by an edit, or text.
fn body(rng: &mut Rng, pool: &[String]) -> String {
    let v = json_value(rng, 4, pool);
    let mut s = serde_json::to_string(&v).unwrap();
    match rng.below(10) {
        0 => {
            let mut c: Vec<char> = s.chars().collect();
            let at = rng.below(c.len() + 1);
            c.insert(at, rng.char());
            s = c.into_iter().collect();
        }
        1 => s = rng.text(8),
        2 => s = "[".repeat(1 + rng.below(400)),
        _ => {}
    }
    s
}

fn resp(rng: &mut Rng, body: String) -> Resp {
    let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
    if rng.chance(50) {
        headers.push(("location".into(), rng.text(3)));
    }
    if rng.chance(30) {
        headers.push((rng.text(1).to_ascii_lowercase(), rng.text(2)));
    }
    Resp {
        status: 100 + rng.below(500) as u16,
        headers,
        body,
        elapsed: Duration::ZERO,
    }
}

#[test]
fn captures_on_random_bodies() {
    let pool: Vec<String> = [
        "0b6f5d2e-8a41-4c7e-9f0a-1234567890ab",
        "Acme 42",
        "x",
        "",
        "a\"b",
        "a/b",
        "é🦀",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    run("captures_on_random_bodies", 10000, |rng| {
        let path = if rng.chance(70) {
            let mut p = rng
                .pick(&["$", "$.", "$..", "$status", "$header.", "$["])
                .to_string();
            p.push_str(&rng.text(4));
            p
        } else {
            rng.text(5)
        };
        let b = body(rng, &pool);
        let r = resp(rng, b.clone());
        let input = format!("path {path:?} on {b:?}");
        record(&input);
        let result = (|| {
            let Ok(source) = parse_capture(&path) else {
                return Ok(());
            };
            let spec = CaptureSpec {
                source,
                loc: Loc::default(),
            };
            let got = capture(&spec, &r);
            match &spec.source {
                CaptureSource::Status if got != Ok(r.status.to_string()) => {
                    Err(format!("$status gave {got:?}"))
                }
                CaptureSource::Header(h) if got.as_deref().ok() != r.header(h) => {
                    Err(format!("$header.{h} gave {got:?}"))
                }
                CaptureSource::Path(..) if r.json().is_none() && got.is_ok() => Err(format!(
                    "a JSONPath read {got:?} from a body that is not JSON"
                )),
                _ => Ok(()),
            }
        })();
        (input, result)
    });
}

// ---------------------------------------------------------------------------------------
// Verdict rules

/// An identifier of one of the shapes APIs use.
fn ident(rng: &mut Rng) -> String {
    match rng.below(6) {
        0 => {
            let h: String = (0..32)
                .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap())
                .collect();
            let u = format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            );
            if rng.chance(20) {
                u.to_ascii_uppercase()
            } else {
                u
            }
        }
        1 => (0..1 + rng.below(12))
            .map(|_| char::from_digit(rng.below(10) as u32, 10).unwrap())
            .collect(),
        2 => format!(
            "brd_{}",
            (0..1 + rng.below(10))
                .map(|_| rng.pick(&['a', 'Z', '7', 'q', 'K']))
                .collect::<String>()
        ),
        3 => (0..rng.below(24))
            .map(|_| char::from_digit(rng.below(16) as u32, 16).unwrap())
            .collect(),
        _ => rng.text(4),
    }
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars().enumerate().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

#[test]
fn verdict_rules_on_random_bodies() {
    run("verdict_rules_on_random_bodies", 4000, |rng| {
        let mut pool: Vec<String> = (0..1 + rng.below(5)).map(|_| ident(rng)).collect();
        pool.push("Acme {{run_id}}".into());
        let b = body(rng, &pool);
        let other = if rng.chance(30) {
            b.clone()
        } else {
            body(rng, &pool)
        };
        let markers: Vec<String> = (0..rng.below(5))
            .map(|_| {
                if rng.chance(60) {
                    rng.pick(&pool).clone()
                } else {
                    rng.text(2)
                }
            })
            .collect();
        let id = ident(rng);
        let input = format!("body {b:?}\nother {other:?}\nmarkers {markers:?}\nid {id:?}");
        record(&input);
        let r = (|| {
            // markers_in: only markers, and every marker the raw body holds.
            let found = markers_in(&b, &markers.clone().into());
            // The one-pass search finds exactly what looking for each marker alone finds.
            let alone: Vec<String> = markers
                .iter()
                .filter(|m| tenantgate::run::verdict::holds_value(&b, m))
                .cloned()
                .collect();
            if found != alone {
                return Err(format!("one pass found {found:?}, one by one {alone:?}"));
            }
            if tenantgate::run::verdict::any_marker_in(&b, &markers.clone().into())
                == found.is_empty()
            {
                return Err(format!("any_marker_in disagrees with {found:?}"));
            }
            for m in &found {
                if m.is_empty() || !markers.contains(m) {
                    return Err(format!("found `{m}`, not a marker"));
                }
            }
            // Every marker the body holds as a whole JSON string is found (inside other
            // text a marker counts only on token boundaries, and short ones never).
            fn strings(v: &serde_json::Value, out: &mut Vec<String>) {
                match v {
                    serde_json::Value::String(s) => out.push(s.clone()),
                    serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
                    serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
                    _ => {}
                }
            }
            let mut whole = Vec::new();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&b) {
                strings(&v, &mut whole);
            }
            for m in &markers {
                if !m.is_empty() && whole.contains(m) && !found.contains(m) {
                    return Err(format!("missed `{m}`, which the body holds as a value"));
                }
            }
            // mask: every id that cannot be part of `<id>` is gone.
            let masked = mask(&b, &markers);
            for m in &markers {
                if !m.is_empty()
                    && !m.contains(['<', '>'])
                    && !"<id>".contains(m.as_str())
                    && masked.contains(m.as_str())
                {
                    return Err(format!("`{m}` is still in the masked body {masked:?}"));
                }
            }
            if mask(&b, &[]) != b {
                return Err("masking nothing changed the body".into());
            }
            // twin_of: differs, and keeps the shape.
            let twin = twin_of(&id);
            if twin == id {
                return Err(format!("twin of `{id}` is itself"));
            }
            let (ic, tc): (Vec<char>, Vec<char>) = (id.chars().collect(), twin.chars().collect());
            let fallback =
                tc.len() == ic.len() + 1 && twin.starts_with(id.as_str()) && twin.ends_with('0');
            if is_uuid(&id) {
                let upper = id.chars().any(|c| c.is_ascii_uppercase());
                let case_kept = if upper {
                    !twin.chars().any(|c| c.is_ascii_lowercase())
                } else {
                    !twin.chars().any(|c| c.is_ascii_uppercase())
                };
                let shaped = is_uuid(&twin) && case_kept;
                if !shaped && !fallback {
                    return Err(format!("twin `{twin}` of the UUID `{id}`"));
                }
            } else if !fallback {
                if tc.len() != ic.len() {
                    return Err(format!("twin `{twin}` of `{id}` has another length"));
                }
                // A type prefix (`cus_`, up to 8 letters and `_` or `-`) is kept
                // verbatim; the rest keeps its character classes.
                let prefix = id
                    .find(['_', '-'])
                    .filter(|&i| {
                        (1..=8).contains(&i) && id[..i].chars().all(|c| c.is_ascii_alphabetic())
                    })
                    .map(|i| i + 1)
                    .unwrap_or(0);
                if !twin.starts_with(&id[..prefix]) {
                    return Err(format!(
                        "twin `{twin}` of `{id}` lost the prefix `{}`",
                        &id[..prefix]
                    ));
                }
                let hex_lower = id[prefix..]
                    .chars()
                    .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
                for (a, t) in ic.iter().zip(&tc).skip(id[..prefix].chars().count()) {
                    let kept = if a.is_ascii_digit() {
                        t.is_ascii_digit()
                    } else if a.is_ascii_lowercase() {
                        if hex_lower {
                            t.is_ascii_hexdigit() && !t.is_ascii_uppercase()
                        } else {
                            t.is_ascii_lowercase()
                        }
                    } else if a.is_ascii_uppercase() {
                        t.is_ascii_uppercase()
                    } else {
                        a == t
                    };
                    if !kept {
                        return Err(format!("twin `{twin}` of `{id}` changes `{a}` into `{t}`"));
                    }
                }
            }
            // json_diff: a body equals itself; differs exactly when its JSON differs.
            let none = BTreeSet::new();
            if !json_diff(&b, &b, &none).is_empty() {
                return Err("a body differs from itself".into());
            }
            let d = json_diff(&b, &other, &none);
            let same = match (
                serde_json::from_str::<serde_json::Value>(&b),
                serde_json::from_str::<serde_json::Value>(&other),
            ) {
                (Ok(x), Ok(y)) => x == y,
                _ => b == other,
            };
            if d.is_empty() != same {
                return Err(format!("json_diff says {d:?}, but equal is {same}"));
            }
            // What differs between two reads is volatile, and then no change is left.
            let volatile = volatile_paths(&b, &other);
            if serde_json::from_str::<serde_json::Value>(&b).is_ok()
                && serde_json::from_str::<serde_json::Value>(&other).is_ok()
            {
                let left = json_diff(&b, &other, &volatile);
                if !left.is_empty() {
                    return Err(format!("after ignoring {volatile:?}, still {left:?}"));
                }
            }
            Ok(())
        })();
        (input, r)
    });
}

/// A word a structural redaction rule keys on, in random letter case, sometimes with a
/// letter swapped for a non-ASCII one that the rules' `(?i)` folds to it (`K` Kelvin
/// sign for `k`, `ſ` long s for `s`), sometimes cut short. The words are written out
/// here from the rules themselves, not taken from the shortcut's list: a word missing
/// there is what this property must find.
fn secretish(rng: &mut Rng) -> String {
    const WORDS: &[&str] = &[
        "token",
        "secret",
        "password",
        "passwd",
        "authorization",
        "cookie",
        "apikey",
        "api_key",
        "credential",
        "bearer",
        "basic",
        "eyJ",
        "set-cookie",
    ];
    let w = *rng.pick(WORDS);
    let w = if rng.chance(10) { &w[..w.len() - 1] } else { w };
    w.chars()
        .map(|c| match c {
            'k' if rng.chance(15) => '\u{212a}',
            's' if rng.chance(15) => '\u{17f}',
            c if rng.chance(50) => c.to_ascii_uppercase(),
            c => c,
        })
        .collect()
}

#[test]
fn redaction_never_misses_a_structural_secret() {
    use tenantgate::redact::{structural, structural_rules};
    run("redaction_never_misses_a_structural_secret", 4000, |rng| {
        // Evidence-like text: JSON fields, `k=v` pairs, header lines, bearer
        // credentials and JWT-shaped strings, some named by a secret word, among noise.
        let mut text = String::new();
        for _ in 0..rng.below(6) {
            let name = format!("{}{}", rng.token(), secretish(rng));
            let value: String = (0..4 + rng.below(20))
                .map(|_| *rng.pick(&['a', 'Z', '0', '9', '_', '-', '.', '~']))
                .collect();
            let part = match rng.below(6) {
                0 => format!("{{\"{name}\": \"{value}\"}}"),
                1 => format!("?{name}={value}&x=1"),
                2 => format!("\n{name}: {value}\n"),
                3 => format!("{} {value}", secretish(rng)),
                4 => format!("eyJ{value}.{value}.{value}"),
                _ => rng.text(8),
            };
            text.push_str(&part);
            if rng.chance(50) {
                text.push_str(&rng.text(6));
            }
        }
        record(&text);
        let fast = structural(&text);
        let full = structural_rules(&text);
        let r = if fast == full {
            Ok(())
        } else {
            Err(format!("the shortcut gave {fast:?}, the rules {full:?}"))
        };
        (text, r)
    });
}
