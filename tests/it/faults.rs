//! The fault matrix: tenantgate fails closed. The real binary runs against the reference
//! API behind a fault-injecting proxy ([`crate::faultproxy`]) that refuses, resets,
//! delays, truncates, redirects or dies on command. Whatever breaks, the run exits 2
//! (undecided) — never 0, never 1 — the affected checks are `error` with a one-line
//! reason, the other checks still run, teardown still runs, and no secret reaches any
//! output. `docs/faults.md` is the table of these scenarios; keep the two in step.
//!
//! Suites are the bundled one with `target.timeout: 5s` and without its `database:`
//! section (the database scenarios are separate), so a slow answer costs two seconds
//! (one would be flaky for a debug-build API on two busy cores).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::faultproxy::{Fault, Org, Proxy, Rule, Seen};
use crate::support::{Run, Target, bundled_suite, unique};

/// The bundled suite, timeout 5s (slack for a loaded CI machine), no database section, with `edits` applied.
fn suite(dir: &Path, edits: &[(&str, &str)]) -> PathBuf {
    let text = std::fs::read_to_string(bundled_suite()).unwrap();
    let mut text = text
        .split_once("\ndatabase:")
        .map(|(head, _)| head.to_string())
        .unwrap()
        .replace("timeout: 10s", "timeout: 5s")
        // Each fault here targets one check; the pool-reuse attack (tested in `pool`)
        // probes the same endpoints again and would add its own (correct) errors.
        .replace("attacks:\n", "attacks:\n  pool_reuse: false\n");
    for (from, to) in edits {
        assert!(text.contains(from), "the bundled suite lacks {from:?}");
        text = text.replace(from, to);
    }
    let p = dir.join(format!("{}.yaml", unique("faults")));
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `suite` against `url` (the proxy) instead of the API itself.
fn run_via(t: &Target, url: &str, suite: &Path, extra: &[&str]) -> Run {
    t.run_with_env(suite, extra, &[("TARGET_URL", url)])
}

fn results(r: &Run) -> Vec<Value> {
    r.json
        .as_ref()
        .and_then(|j| j["results"].as_array().cloned())
        .unwrap_or_default()
}

fn result(r: &Run, id: &str) -> Value {
    results(r)
        .into_iter()
        .find(|x| x["id"] == id)
        .unwrap_or_else(|| panic!("no result {id}\n{}", r.explain()))
}

/// The errors a fault caused directly: without the override variants of an errored base,
/// which are `error` too ("not judged: B's plain request … was undecided").
fn direct_errors(r: &Run) -> Vec<String> {
    r.ids("error")
        .into_iter()
        .filter(|id| !summary(r, id).starts_with("not judged:"))
        .collect()
}

fn summary(r: &Run, id: &str) -> String {
    result(r, id)["summary"].as_str().unwrap_or("").to_string()
}

/// What every fault scenario must show.
struct Closed<'a> {
    /// Every error's id starts with one of these, and each has at least one error.
    errors: &'a [&'a str],
    /// Some result passed: the checks and variants the fault did not hit still ran.
    others_pass: bool,
    /// Both orgs were provisioned and teardown removed them.
    torn_down: bool,
}

fn assert_closed(t: &Target, r: &Run, c: Closed<'_>) {
    let why = r.explain();
    assert_eq!(r.code, 2, "must be undecided\n{why}");
    assert!(
        r.ids("fail").is_empty(),
        "a fault is never a failure\n{why}"
    );
    let json = r
        .json
        .as_ref()
        .unwrap_or_else(|| panic!("no JSON report\n{why}"));
    assert!(r.junit.is_some(), "no JUnit report\n{why}");
    let errors = r.ids("error");
    for e in &errors {
        assert!(
            c.errors.iter().any(|p| e.starts_with(p)),
            "unexpected error {e}: {}\n{why}",
            summary(r, e)
        );
    }
    for p in c.errors {
        assert!(
            errors.iter().any(|e| e.starts_with(p)),
            "no error for {p}; errors: {errors:?}\n{why}"
        );
    }
    for x in results(r) {
        let s = x["summary"].as_str().unwrap_or("");
        assert!(
            !s.is_empty() && !s.contains('\n') && !s.contains('\r'),
            "{}: the reason must be one line: {s:?}",
            x["id"]
        );
    }
    if c.others_pass {
        assert!(
            !r.ids("pass").is_empty(),
            "the other checks did not run\n{why}"
        );
    }
    if c.torn_down {
        assert_torn_down(r);
    }
    assert_no_secret(t, r);
    assert!(
        r.stdout.contains("UNDECIDED (exit 2)"),
        "the verdict line\n{why}"
    );
    let _ = json;
}

/// Both orgs were created, and teardown removed everything.
fn assert_torn_down(r: &Run) {
    let created = r.json.as_ref().unwrap()["created"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        created.iter().filter(|c| c["what"] == "org").count(),
        2,
        "{created:?}\n{}",
        r.explain()
    );
    assert!(
        created.iter().all(|c| c["removed"] == true),
        "teardown left {created:?}\n{}",
        r.explain()
    );
}

fn assert_no_secret(t: &Target, r: &Run) {
    let all = r.all_output();
    for s in t.secrets() {
        assert!(!all.contains(&s), "secret {s:?} leaked:\n{all}");
    }
    assert!(!all.contains("eyJ"), "a token leaked:\n{all}");
}

fn b_get(prefix: &'static str) -> impl Fn(&Seen) -> bool + Send + Sync + 'static {
    move |s: &Seen| s.org == Org::B && s.method == "GET" && s.path.starts_with(prefix)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn connection_refused_is_a_setup_error() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    let url = format!("http://127.0.0.1:{}", closed_port());
    let r = run_via(&t, &url, &s, &[]);
    assert_closed(
        &t,
        &r,
        Closed {
            errors: &["setup/provision-a"],
            others_pass: false,
            torn_down: false,
        },
    );
    let why = summary(&r, "setup/provision-a");
    assert!(why.contains("cannot connect"), "{why}");
    // Retried (transport errors are transient), and says so.
    let ev = result(&r, "setup/provision-a")["evidence"].to_string();
    assert!(ev.contains("retries"), "{ev}");
}

#[test]
fn a_check_answered_by_a_reset_5xx_or_timeout_errors_and_the_rest_still_runs() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    // Each fault hits only B's reads of one resource; every other check must pass.
    let cases: Vec<(&str, Rule, &str, &[&str])> = vec![
        (
            "reset mid-response",
            Rule::on(b_get("/monitoring/mentions/"), Fault::Reset),
            "the answer was cut off",
            &["mention-is-invisible-to-b"],
        ),
        (
            "500",
            Rule::on(b_get("/brands/"), Fault::Status(500)),
            "server error 500",
            &["brand-is-invisible-to-b"],
        ),
        (
            "502",
            Rule::on(b_get("/subscribers/"), Fault::Status(502)),
            "server error 502",
            &["subscriber-is-invisible-to-b"],
        ),
        (
            "503 on a list",
            Rule::on(b_get("/audit-log"), Fault::Status(503)),
            "B's list got 503",
            &["audit-log-holds-none-of-a-s-rows"],
        ),
        (
            // Only B's first request of the check: one variant errors, the rest pass.
            "slower than target.timeout",
            Rule::on(
                b_get("/ghost-presence/"),
                Fault::Delay(Duration::from_secs(10)),
            )
            .times(1),
            "timed out after 5s",
            &["presence-config-is-invisible-to-b"],
        ),
    ];
    for (name, rule, reason, errors) in cases {
        let p = Proxy::start(&t, vec![rule]);
        let r = run_via(&t, &p.url, &s, &[]);
        assert_closed(
            &t,
            &r,
            Closed {
                errors,
                others_pass: true,
                torn_down: true,
            },
        );
        let hit = r.ids("error");
        assert!(
            hit.iter().any(|id| summary(&r, id).contains(reason)),
            "{name}: no error says {reason:?}: {:?}",
            hit.iter().map(|id| summary(&r, id)).collect::<Vec<_>>()
        );
        if name.starts_with("slower") {
            assert_eq!(
                direct_errors(&r),
                vec!["presence-config-is-invisible-to-b"],
                "{name}"
            );
        }
    }
}

#[test]
fn a_seed_answer_that_is_not_json_is_a_setup_error_naming_the_capture() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    let seed = |x: &Seen| x.org == Org::A && x.method == "POST" && x.path == "/brands";
    for fault in [Fault::Truncate, Fault::NotJson] {
        let p = Proxy::start(&t, vec![Rule::on(seed, fault.clone())]);
        let r = run_via(&t, &p.url, &s, &[]);
        assert_closed(
            &t,
            &r,
            Closed {
                errors: &["setup/seed"],
                others_pass: false,
                torn_down: true,
            },
        );
        let why = summary(&r, "setup/seed");
        assert!(
            why.contains("capture `brand_id`") && why.contains("not JSON"),
            "{fault:?}: {why}"
        );
        assert!(r.ids("pass").is_empty(), "no check may run without a seed");
    }
}

#[test]
fn a_redirect_is_never_a_pass_nor_a_failure() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    // A redirect loop only on B's request for A's brand (its second GET: the
    // never-issued twin is asked first). A 302 where the twin gets 404 would read as an
    // existence oracle; tenantgate does not follow redirects, so it cannot judge it.
    let p = Proxy::start(
        &t,
        vec![
            Rule::on(b_get("/brands/"), Fault::RedirectLoop)
                .after(1)
                .times(1),
        ],
    );
    let r = run_via(&t, &p.url, &s, &["--filter", "brand-is-invisible-to-b"]);
    assert_closed(
        &t,
        &r,
        Closed {
            errors: &["brand-is-invisible-to-b"],
            others_pass: true,
            torn_down: true,
        },
    );
    assert_eq!(direct_errors(&r), vec!["brand-is-invisible-to-b"]);
    let why = summary(&r, "brand-is-invisible-to-b");
    assert!(why.contains("redirect"), "{why}");

    // Every read and list of B redirected: the twins are redirected too.
    let p = Proxy::start(&t, vec![Rule::on(b_get("/brands"), Fault::RedirectLoop)]);
    let r = run_via(&t, &p.url, &s, &["--filter", "brand*"]);
    assert_closed(
        &t,
        &r,
        Closed {
            errors: &[
                "brand-is-invisible-to-b",
                "brands-list-holds-none-of-a-s-rows",
            ],
            others_pass: true,
            torn_down: true,
        },
    );
}

#[test]
fn a_not_found_body_that_varies_per_request_is_asked_twice_and_compared_by_status() {
    // Every answer B gets for a brand carries a new request id. B's answer for A's id
    // then differs from the never-issued twin's; only a second twin shows that the
    // body varies per request (the twin is asked again only when the bodies differ),
    // so the check passes on status and type — not a false existence oracle.
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    let p = Proxy::start(&t, vec![Rule::on(b_get("/brands/"), Fault::StampBody)]);
    let r = run_via(&t, &p.url, &s, &["--filter", "brand-is-invisible-to-b"]);
    assert_eq!(r.code, 0, "a varying body is no leak\n{}", r.explain());
    let why = summary(&r, "brand-is-invisible-to-b");
    assert!(why.contains("bodies vary per request"), "{why}");

    // The same body for the twin every time, another for A's id: a real difference,
    // and a second twin is what proves the twin's body stable.
    let p = Proxy::start(
        &t,
        vec![
            Rule::on(b_get("/brands/"), Fault::StampBody)
                .after(1)
                .times(1),
        ],
    );
    let r = run_via(&t, &p.url, &s, &["--filter", "brand-is-invisible-to-b"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(
        r.ids("fail"),
        ["brand-is-invisible-to-b"],
        "{}",
        r.explain()
    );
    let why = summary(&r, "brand-is-invisible-to-b");
    assert!(why.contains("existence oracle"), "{why}");
}

#[test]
fn a_write_check_reads_a_s_data_a_third_time_only_when_two_reads_differ() {
    // A's verify before and after B's write. When the two answers are the same, nothing
    // changed; only when they differ is A's resource read once more, to tell volatile
    // fields (here a request id that changes on every read) from a change B made.
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    let one = ["--filter", "b-cannot-change-a-s-presence-config"];
    let a_get =
        |x: &Seen| x.org == Org::A && x.method == "GET" && x.path.starts_with("/ghost-presence/");
    // The check's variants (B's plain write, the tenant offered in headers, query and
    // body, ...) run one after another, and each one's read after B's write is the next
    // one's read before it: one read, then one per variant.
    let variants = |r: &Run| {
        results(r)
            .iter()
            .filter(|x| x["id"].as_str().is_some_and(|id| id.starts_with(one[1])))
            .filter(|x| x["verdict"] != "skip")
            .count()
    };
    let p = Proxy::start(&t, Vec::new());
    let r = run_via(&t, &p.url, &s, &one);
    assert_eq!(r.code, 0, "{}", r.explain());
    let n = variants(&r);
    assert!(n > 3, "{}", r.explain());
    assert_eq!(p.count(a_get), 1 + n, "{:?}", p.seen());

    // Every answer A gets carries a new request id: each variant reads a third time,
    // the id is volatile, and nothing else changed.
    let p = Proxy::start(&t, vec![Rule::on(a_get, Fault::StampBody)]);
    let r = run_via(&t, &p.url, &s, &one);
    assert_eq!(r.code, 0, "a volatile field is no change\n{}", r.explain());
    assert!(summary(&r, one[1]).contains("A's data unchanged"));
    assert_eq!(variants(&r), n);
    assert_eq!(p.count(a_get), 1 + 2 * n, "{:?}", p.seen());

    // The third read cannot be judged (503): which difference is volatile is unknown,
    // so the check neither passes nor blames B.
    let p = Proxy::start(
        &t,
        vec![
            Rule::on(a_get, Fault::Status(503)).after(2).times(1),
            Rule::on(a_get, Fault::StampBody),
        ],
    );
    let r = run_via(&t, &p.url, &s, &one);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert_eq!(r.ids("error"), [one[1]], "{}", r.explain());
    let why = summary(&r, one[1]);
    assert!(
        why.contains("volatile fields apart got server error 503"),
        "{why}"
    );

    // B's write goes through (the planted bug) while A's answers carry request ids: the
    // change is found, and the request id is not blamed on B.
    let t = Target::start("write-bypasses-rls");
    let s = suite(t.dir.path(), &[]);
    let p = Proxy::start(&t, vec![Rule::on(a_get, Fault::StampBody)]);
    let r = run_via(&t, &p.url, &s, &one);
    assert_eq!(r.code, 1, "{}", r.explain());
    // Every variant's write is accepted (the bug ignores the tenant entirely).
    assert_eq!(r.ids("fail").len(), variants(&r), "{}", r.explain());
    let res = results(&r);
    let diff = res
        .iter()
        .find(|x| x["id"] == one[1])
        .map(|x| x.to_string())
        .unwrap_or_default();
    assert!(diff.contains("$.enabled: true → false"), "{diff}");
    assert!(!diff.contains("$.request_id"), "{diff}");
}

#[test]
fn a_write_waiting_for_its_resource_holds_back_no_write_on_another() {
    // Writes run one at a time on each resource, in plan order; a write waiting for its
    // resource must not hold back a later write on another. Two writes on A's brand
    // (the second's own URL ends in `/`, which the API does not route: B gets 404, the
    // refusal, and the proxy can tell the two apart), then the subscriber write. A's
    // first read of the brand is held for a second.
    let t = Target::start("");
    let s = suite(
        t.dir.path(),
        &[(
            "  - name: B cannot delete A's subscriber\n",
            "  - name: B cannot rename A's brand again\n    write: { method: PATCH, url: \"/brands/{{a.brand_id}}/\", json: { name: \"pwned by B\" } }\n    verify: \"/brands/{{a.brand_id}}\"\n  - name: B cannot delete A's subscriber\n",
        )],
    );
    let only = [
        "--jobs",
        "4",
        "--filter",
        "b-cannot-rename-a-s-brand*",
        "--filter",
        "b-cannot-delete-a-s-subscriber*",
    ];
    let brand = |x: &Seen| x.path.starts_with("/brands/") && x.path.len() > "/brands/".len();
    let first_read = move |x: &Seen| x.org == Org::A && x.method == "GET" && brand(x);
    let p = Proxy::start(
        &t,
        vec![Rule::on(first_read, Fault::Delay(Duration::from_secs(1))).times(1)],
    );
    let r = run_via(&t, &p.url, &s, &only);
    assert_eq!(r.code, 0, "{}", r.explain());
    for id in [
        "b-cannot-rename-a-s-brand",
        "b-cannot-rename-a-s-brand-again",
        "b-cannot-delete-a-s-subscriber",
    ] {
        assert_eq!(result(&r, id)["verdict"], "pass", "{}", r.explain());
    }
    let seen = p.seen();
    let at = |pred: &dyn Fn(&Seen) -> bool| -> Vec<usize> {
        seen.iter()
            .enumerate()
            .filter(|(_, x)| pred(x))
            .map(|(i, _)| i)
            .collect()
    };
    let first_writes =
        at(&|x| x.org == Org::B && x.method == "PATCH" && brand(x) && !x.path.ends_with('/'));
    let second_writes = at(&|x| x.org == Org::B && x.method == "PATCH" && x.path.ends_with('/'));
    let subscriber =
        at(&|x| x.org == Org::B && x.method == "DELETE" && x.path.starts_with("/subscribers/"));
    assert!(
        !first_writes.is_empty() && !second_writes.is_empty() && !subscriber.is_empty(),
        "{seen:?}"
    );
    // The brand's writes keep their order: the second check's writes after the first's.
    assert!(first_writes.last() < second_writes.first(), "{seen:?}");
    // The subscriber write did not wait behind the brand: B's delete came while the first
    // brand check waited for its read.
    assert!(subscriber[0] < first_writes[0], "{seen:?}");
    assert_torn_down(&r);
}

#[test]
fn checks_that_send_the_same_twin_request_share_its_answer_only_when_b_gets_the_same() {
    // Two reads of the same route, every attack off, one check at a time: the second
    // check's twin request is the first one's but for its random id, so the first twin's
    // answer stands in for it while B's answer is the same as it.
    let t = Target::start("");
    let twice = "  - name: brand is invisible to B\n    read: \"/brands/{{a.brand_id}}\"\n    attacks: { tenant_override: false, token_forgery: false, claim_integrity: false, existence_oracle: true }\n  - name: brand stays invisible to B\n    read: \"/brands/{{a.brand_id}}\"\n    attacks: { tenant_override: false, token_forgery: false, claim_integrity: false, existence_oracle: true }\n";
    let s = suite(
        t.dir.path(),
        &[(
            "  - name: brand is invisible to B\n    read: \"/brands/{{a.brand_id}}\"\n",
            twice,
        )],
    );
    let both = [
        "--jobs",
        "1",
        "--filter",
        "brand-is-invisible-to-b",
        "--filter",
        "brand-stays-invisible-to-b",
    ];
    let passed = |r: &Run| {
        let mut p = r.ids("pass");
        p.sort();
        p
    };
    let p = Proxy::start(&t, Vec::new());
    let r = run_via(&t, &p.url, &s, &both);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(
        passed(&r),
        ["brand-is-invisible-to-b", "brand-stays-invisible-to-b"]
    );
    // The first check's twin and B's request, then the second check's B request only.
    assert_eq!(p.count(b_get("/brands/")), 3, "{:?}", p.seen());

    // Every answer B gets differs (a request id in the body): the second check's answer
    // is not the shared one, so it asks its own twin twice, as without sharing.
    let p = Proxy::start(&t, vec![Rule::on(b_get("/brands/"), Fault::StampBody)]);
    let r = run_via(&t, &p.url, &s, &both);
    assert_eq!(r.code, 0, "a varying body is no leak\n{}", r.explain());
    for id in ["brand-is-invisible-to-b", "brand-stays-invisible-to-b"] {
        assert!(summary(&r, id).contains("bodies vary per request"), "{id}");
    }
    assert_eq!(p.count(b_get("/brands/")), 6, "{:?}", p.seen());

    // Only the second check's answer for A's id differs (B's third GET): the shared twin
    // does not hide it; the check's own twins, asked twice, prove the difference.
    let p = Proxy::start(
        &t,
        vec![
            Rule::on(b_get("/brands/"), Fault::StampBody)
                .after(2)
                .times(1),
        ],
    );
    let r = run_via(&t, &p.url, &s, &both);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(
        r.ids("fail"),
        ["brand-stays-invisible-to-b"],
        "{}",
        r.explain()
    );
    assert!(summary(&r, "brand-stays-invisible-to-b").contains("existence oracle"));
    assert_eq!(p.count(b_get("/brands/")), 5, "{:?}", p.seen());
}

#[test]
fn checks_that_send_the_same_control_as_a_share_it_only_while_nothing_may_have_changed() {
    // Reads of A's brand, every attack off, one check at a time: A's control (the read
    // as A) is the same request each time, so a check may use the answer an earlier one
    // got, but only while it is under a second old and no request that may change state
    // has been sent since.
    let t = Target::start("");
    let read = |name: &str, control: &str| {
        format!(
            "  - name: {name}\n    read: \"/brands/{{{{a.brand_id}}}}\"\n    attacks: {{ tenant_override: false, token_forgery: false, claim_integrity: false }}\n{control}"
        )
    };
    // An explicit control that creates a brand in A: a POST, as A, in the read stage.
    let posts = "    control: { request: { method: POST, url: /brands, json: { name: \"another {{run_id}}\" } }, expect: { status: 201 } }\n";
    let names = ["read one", "read two", "read three"];
    let filters: Vec<&str> = ["read-one", "read-two", "read-three"]
        .iter()
        .flat_map(|id| ["--filter", id])
        .chain(["--jobs", "1"])
        .collect();
    let check = "  - name: brand is invisible to B\n    read: \"/brands/{{a.brand_id}}\"\n";
    let a_brand = |x: &Seen| x.org == Org::A && x.method == "GET" && x.path.starts_with("/brands/");
    let run = |second: &str, rules: Vec<Rule>| {
        let checks = format!(
            "{}{}{}",
            read(names[0], ""),
            read(names[1], second),
            read(names[2], "")
        );
        let s = suite(t.dir.path(), &[(check, &checks)]);
        let p = Proxy::start(&t, rules);
        let r = run_via(&t, &p.url, &s, &filters);
        assert_eq!(r.code, 0, "{}", r.explain());
        let mut passed = r.ids("pass");
        passed.sort();
        assert_eq!(
            passed,
            ["read-one", "read-three", "read-two"],
            "{}",
            r.explain()
        );
        // Until teardown, which reads A's data again to tell what it left behind.
        p.seen()
            .iter()
            .take_while(|x| x.method != "DELETE")
            .filter(|x| a_brand(x))
            .count()
    };

    // Nothing in between: the first check's control stands for all three.
    assert_eq!(run("", Vec::new()), 1);
    // The second check's control is a POST: the third asks A again (the second's own
    // control is its POST).
    assert_eq!(run(posts, Vec::new()), 2);
    // B's answer to the second check takes 1.2 s (its first B request; the twin is
    // shared): by the third check the first control is too old, and it asks its own.
    let slow = Rule::on(b_get("/brands/"), Fault::Delay(Duration::from_millis(1200)))
        .after(2)
        .times(1);
    assert_eq!(run("", vec![slow]), 2);
}

#[test]
fn answers_that_say_nothing_about_isolation_are_errors_not_failures() {
    // Each of these once turned a target fault into a verdict: a failure (exit 1) or,
    // for the HTML list, a pass.
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    let a_get = |prefix: &'static str| {
        move |x: &Seen| x.org == Org::A && x.method == "GET" && x.path.starts_with(prefix)
    };
    let cases: Vec<(&str, Rule, &str, &str)> = vec![
        (
            // B's second GET is for A's brand (the twin is asked first).
            "429 for A's id only",
            Rule::on(b_get("/brands/"), Fault::Status(429))
                .after(1)
                .times(1),
            "brand-is-invisible-to-b",
            "rate limited (429)",
        ),
        (
            // A's second GET is the verify after B's write (one read before it).
            "503 on A's verify after B's write",
            Rule::on(a_get("/brands/"), Fault::Status(503))
                .after(1)
                .times(1),
            "b-cannot-rename-a-s-brand",
            "A's data cannot be compared",
        ),
        (
            "an HTML page for A's verify after B's write",
            Rule::on(a_get("/brands/"), Fault::NotJson)
                .after(1)
                .times(1),
            "b-cannot-rename-a-s-brand",
            "not JSON where it was before",
        ),
        (
            "a 200 HTML page for B's list",
            Rule::on(
                |x: &Seen| x.org == Org::B && x.method == "GET" && x.path == "/brands",
                Fault::NotJson,
            ),
            "brands-list-holds-none-of-a-s-rows",
            "not JSON",
        ),
        (
            "a redirect for a forged token",
            Rule::on(
                |x: &Seen| x.org == Org::Other && x.path.starts_with("/brands/"),
                Fault::RedirectLoop,
            )
            .times(1),
            "brand-is-invisible-to-b/token_forgery",
            "redirect 302",
        ),
        (
            "429 for an anonymous request expected to get 401",
            Rule::on(
                |x: &Seen| x.org == Org::Anon && x.path == "/brands",
                Fault::Status(429),
            ),
            "anonymous-requests-are-refused",
            "rate limited (429)",
        ),
    ];
    for (name, rule, check, reason) in cases {
        let p = Proxy::start(&t, vec![rule]);
        let pattern = format!("{check}*");
        let r = run_via(&t, &p.url, &s, &["--filter", &pattern]);
        assert_closed(
            &t,
            &r,
            Closed {
                errors: &[check],
                // Where the fault hits every request of the check, nothing else runs.
                others_pass: !["anonymous", "brands-list"]
                    .iter()
                    .any(|c| check.starts_with(c)),
                torn_down: true,
            },
        );
        let errors = r.ids("error");
        assert!(
            errors.iter().all(|id| summary(&r, id).contains(reason)),
            "{name}: not every error says {reason:?}: {:?}",
            errors.iter().map(|id| summary(&r, id)).collect::<Vec<_>>()
        );
    }
}

#[test]
fn the_target_dying_mid_run_is_an_error_and_teardown_is_attempted() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    // The fifth GET as B kills the proxy: listener gone, every later request reset.
    let p = Proxy::start(&t, vec![Rule::on(b_get("/"), Fault::Die).after(4)]);
    // One check at a time: which checks come after the death is then fixed (plan order),
    // whatever the machine's load.
    let r = run_via(&t, &p.url, &s, &["--jobs", "1"]);
    assert_closed(
        &t,
        &r,
        Closed {
            errors: &[
                "brand-is-invisible-to-b",
                "mention-is-invisible-to-b",
                "subscriber-is-invisible-to-b",
                "presence-config-is-invisible-to-b",
                "brands-list",
                "mentions-list",
                "subscribers-list",
                "audit-log",
                "b-cannot",
                "anonymous-requests",
                "featured-brands",
                "identity",
                "setup/teardown-",
            ],
            // B's token is judged without a request.
            others_pass: true,
            torn_down: false,
        },
    );
    // Teardown was attempted for both orgs and says what may be left behind.
    for org in ["a", "b"] {
        let why = summary(&r, &format!("setup/teardown-{org}"));
        assert!(why.contains("left behind"), "{why}");
    }
    let created = r.json.as_ref().unwrap()["created"]
        .as_array()
        .unwrap()
        .clone();
    assert!(created.iter().all(|c| c["removed"] == false), "{created:?}");
    assert!(r.stdout.contains("LEFT ON THE TARGET"), "{}", r.stdout);
}

#[test]
fn setup_retries_ride_out_a_brief_outage_and_report_a_lasting_one() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    let seed = |x: &Seen| x.org == Org::A && x.method == "POST" && x.path == "/brands";
    let filter = ["--filter", "brand-is-invisible-to-b"];

    // 503 twice, then the real answer: the default 3 retries absorb it.
    let p = Proxy::start(&t, vec![Rule::on(seed, Fault::Status(503)).times(2)]);
    let r = run_via(&t, &p.url, &s, &filter);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(p.count(seed), 3);
    assert_torn_down(&r);

    // 503 forever: 1 try + 3 retries, then a setup error that says so.
    let p = Proxy::start(&t, vec![Rule::on(seed, Fault::Status(503))]);
    let r = run_via(&t, &p.url, &s, &filter);
    assert_closed(
        &t,
        &r,
        Closed {
            errors: &["setup/seed"],
            others_pass: false,
            torn_down: true,
        },
    );
    assert_eq!(p.count(seed), 4);
    let why = summary(&r, "setup/seed");
    assert!(
        why.contains("503") && why.contains("after 3 retries"),
        "{why}"
    );

    // Retry-After is honoured (capped): the retry waits the second it asks for.
    let p = Proxy::start(
        &t,
        vec![Rule::on(seed, Fault::Unavailable { retry_after: 1 }).times(1)],
    );
    let r = run_via(&t, &p.url, &s, &filter);
    assert_eq!(r.code, 0, "{}", r.explain());
    let at: Vec<Instant> = p.seen().iter().filter(|x| seed(x)).map(|x| x.at).collect();
    assert_eq!(at.len(), 2);
    assert!(
        at[1] - at[0] >= Duration::from_millis(950),
        "{:?}",
        at[1] - at[0]
    );

    // --setup-retries 0: the first 503 is final.
    let p = Proxy::start(&t, vec![Rule::on(seed, Fault::Status(503)).times(1)]);
    let r = run_via(
        &t,
        &p.url,
        &s,
        &["--setup-retries", "0", filter[0], filter[1]],
    );
    assert_eq!(r.code, 2, "{}", r.explain());
    assert_eq!(p.count(seed), 1);
}

#[test]
fn check_retries_retry_transport_errors_only_and_say_so() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    let filter = ["--filter", "brand-is-invisible-to-b"];

    // One reset, retried once: the result passes and records the retry.
    let p = Proxy::start(&t, vec![Rule::on(b_get("/brands/"), Fault::Reset).times(1)]);
    let r = run_via(
        &t,
        &p.url,
        &s,
        &["--check-retries", "1", filter[0], filter[1]],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let base = result(&r, "brand-is-invisible-to-b");
    assert_eq!(base["verdict"], "pass");
    assert_eq!(base["retries"], 1, "{base}");
    assert!(
        base["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["label"] == "retries"),
        "{base}"
    );

    // The same reset without --check-retries: that variant errors.
    let p = Proxy::start(&t, vec![Rule::on(b_get("/brands/"), Fault::Reset).times(1)]);
    let r = run_via(&t, &p.url, &s, &filter);
    assert_closed(
        &t,
        &r,
        Closed {
            errors: &["brand-is-invisible-to-b"],
            others_pass: true,
            torn_down: true,
        },
    );
    assert_eq!(direct_errors(&r), vec!["brand-is-invisible-to-b"]);

    // An answer is never retried, however many retries are allowed.
    let p = Proxy::start(
        &t,
        vec![Rule::on(b_get("/brands/"), Fault::Status(500)).times(1)],
    );
    let before = Instant::now();
    let r = run_via(
        &t,
        &p.url,
        &s,
        &["--check-retries", "3", filter[0], filter[1]],
    );
    assert_eq!(r.code, 2, "{}", r.explain());
    assert_eq!(direct_errors(&r), vec!["brand-is-invisible-to-b"]);
    let base = result(&r, "brand-is-invisible-to-b");
    assert!(base.get("retries").is_none(), "{base}");
    assert!(
        summary(&r, "brand-is-invisible-to-b").contains("server error 500"),
        "{base}"
    );
    assert!(before.elapsed() < Duration::from_secs(30));
}

#[test]
fn sigterm_stops_new_checks_tears_down_and_writes_incomplete_reports() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    // Slow B's reads so the run is mid-check when the signal comes.
    let p = Proxy::start(
        &t,
        vec![Rule::on(
            b_get("/"),
            Fault::Delay(Duration::from_millis(300)),
        )],
    );
    let json = t.dir.path().join(format!("{}.json", unique("sigterm")));
    let junit = t.dir.path().join(format!("{}.xml", unique("sigterm")));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
    cmd.arg("run")
        .arg(&s)
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .envs(t.env())
        .env("TARGET_URL", &p.url)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = cmd.spawn().unwrap();
    assert!(
        p.wait_for(b_get("/"), Duration::from_secs(20)),
        "no check request arrived"
    );
    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let took = killed.elapsed();
    let r = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        json: std::fs::read_to_string(&json)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok()),
        junit: std::fs::read_to_string(&junit).ok(),
    };
    let why = r.explain();
    assert_eq!(r.code, 2, "{why}");
    assert!(r.ids("fail").is_empty(), "{why}");
    // Running checks stop at their next variant: a whole check takes ~10 s here.
    assert!(
        took < Duration::from_secs(6),
        "took {took:?} after SIGTERM\n{why}"
    );
    let j = r.json.as_ref().expect("JSON report written");
    assert_eq!(j["incomplete"], true, "{j}");
    let junit = r.junit.as_deref().expect("JUnit report written");
    assert!(
        junit.contains("tenantgate.incomplete") && junit.contains("run [incomplete]"),
        "{junit}"
    );
    assert!(r.stdout.contains("INCOMPLETE"), "{why}");
    assert!(r.stderr.contains("interrupted"), "{why}");
    assert_torn_down(&r);
    // No request as B once teardown began.
    let seen = p.seen();
    let teardown = seen
        .iter()
        .position(|x| x.method == "DELETE" && x.path.starts_with("/orgs/"))
        .expect("teardown ran");
    assert!(
        seen[teardown..]
            .iter()
            .all(|x| x.org != Org::B || x.method == "DELETE"),
        "checks ran after teardown began: {:?}",
        &seen[teardown..]
    );
    assert_no_secret(&t, &r);
}

#[test]
fn teardown_runs_after_a_proven_failure() {
    // Success, error and interrupt are covered above; here, a planted bug.
    let t = Target::start("tenant-from-header");
    let s = suite(t.dir.path(), &[]);
    let r = t.run(&s, &["--filter", "*/tenant_override:header:X-Org-Id"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_torn_down(&r);
    assert_no_secret(&t, &r);
}

fn tls_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/tls")
}

#[test]
fn tls_with_an_untrusted_certificate_errors_unless_its_ca_is_given() {
    let t = Target::start("");
    let d = tls_dir();
    let p = Proxy::start_tls(&t, vec![], &d.join("server.pem"), &d.join("server.key"));
    assert!(p.url.starts_with("https://"));
    let filter = ["--filter", "brand-is-invisible-to-b"];

    // The system roots do not know the test CA.
    let plain = suite(t.dir.path(), &[]);
    let r = run_via(&t, &p.url, &plain, &filter);
    assert_closed(
        &t,
        &r,
        Closed {
            errors: &["setup/provision-a"],
            others_pass: false,
            torn_down: false,
        },
    );
    let why = summary(&r, "setup/provision-a");
    assert!(why.contains("invalid peer certificate"), "{why}");
    // It names the fix, and is not retried: a certificate does not change in a second.
    assert!(why.contains("target.tls") && !why.contains("retr"), "{why}");

    // `target.tls.ca` adds the private CA to the trust roots.
    let ca = d.join("ca.pem");
    let with_ca = suite(
        t.dir.path(),
        &[(
            "  timeout: 5s\n",
            &format!("  timeout: 5s\n  tls: {{ ca: \"{}\" }}\n", ca.display()),
        )],
    );
    let r = run_via(&t, &p.url, &with_ca, &filter);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.json.as_ref().unwrap()["notices"], serde_json::json!([]));
    assert_torn_down(&r);

    // --insecure passes too, and every output says it was insecure.
    let r = run_via(&t, &p.url, &plain, &["--insecure", filter[0], filter[1]]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let j = r.json.as_ref().unwrap();
    let notices = j["notices"].to_string();
    assert!(notices.contains("--insecure"), "json: {j}");
    assert!(r.stdout.contains("NOTICE: --insecure"), "{}", r.stdout);
    let junit = r.junit.as_deref().unwrap();
    assert!(junit.contains("--insecure"), "{junit}");
    assert!(
        r.stderr.contains("WARNING: --insecure") && r.stderr.contains("NOT be verified"),
        "stderr: {}",
        r.stderr
    );
}

#[test]
fn a_tls_ca_that_is_missing_or_not_pem_is_a_located_load_error() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    for (ca, says) in [
        (dir.path().join("missing.pem"), "cannot be read"),
        (junk, "no PEM certificate"),
    ] {
        let s = suite(
            dir.path(),
            &[(
                "  timeout: 5s\n",
                &format!("  timeout: 5s\n  tls: {{ ca: \"{}\" }}\n", ca.display()),
            )],
        );
        let out = Command::new(env!("CARGO_BIN_EXE_tenantgate"))
            .arg("validate")
            .arg(&s)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(says), "{err}");
        // Located: the line of `tls:` in the suite.
        let line = std::fs::read_to_string(&s)
            .unwrap()
            .lines()
            .position(|l| l.contains("tls:"))
            .unwrap()
            + 1;
        assert!(err.contains(&format!(":{line}:")), "{err}");
    }
}

// --- the database -----------------------------------------------------------------

/// Runs `tenantgate audit --database-url URL` with reports.
fn audit(dir: &Path, url: &str) -> Run {
    let json = dir.join(format!("{}.json", unique("audit")));
    let junit = dir.join(format!("{}.xml", unique("audit")));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tenantgate"));
    cmd.arg("audit")
        .arg("--database-url")
        .arg(url)
        .arg("--json")
        .arg(&json)
        .arg("--junit")
        .arg(&junit)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1");
    Run::of(cmd, json, junit)
}

/// One error result, one line, naming the cause; exit 2; the password nowhere.
fn assert_db_error(r: &Run, password: &str, cause: &[&str]) {
    let why = r.explain();
    assert_eq!(r.code, 2, "{why}");
    let all = results(r);
    assert_eq!(all.len(), 1, "one result: {all:?}");
    assert_eq!(all[0]["verdict"], "error", "{why}");
    let s = all[0]["summary"].as_str().unwrap_or("");
    assert!(!s.contains('\n'), "{s:?}");
    assert!(
        cause.iter().any(|c| s.to_lowercase().contains(c)),
        "{s:?} names none of {cause:?}"
    );
    assert!(!r.all_output().contains(password), "password leaked\n{why}");
}

#[test]
fn database_down_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "postgres://postgres:s3cret-pw@127.0.0.1:{}/app",
        closed_port()
    );
    let r = audit(dir.path(), &url);
    assert_db_error(&r, "s3cret-pw", &["connect", "refused"]);
}

#[test]
fn a_wrong_database_password_is_an_error() {
    let t = Target::start("");
    let admin = crate::common::cluster().admin_url().to_string();
    let user = admin
        .split("://")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .unwrap_or("postgres")
        .to_string();
    let url = crate::common::with_user(&admin, &user, "wrong-password-123");
    let r = audit(t.dir.path(), &url);
    assert_db_error(&r, "wrong-password-123", &["password", "authentication"]);
}

/// A role that may not connect to the database at all (`REVOKE CONNECT ... FROM
/// PUBLIC`): the realistic "no access" case. Catalog views cannot be revoked from a
/// role in general, and a role without USAGE on a schema still reads pg_catalog.
#[test]
fn a_role_that_cannot_connect_is_an_error() {
    let t = Target::start("");
    let db = unique("noconn");
    let role = unique("noconn_role");
    let admin = crate::common::cluster().admin_url().to_string();
    t.rt.block_on(async {
        let (c, conn) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
        c.batch_execute(&format!(
            "REVOKE CONNECT ON DATABASE {db} FROM PUBLIC; \
             CREATE ROLE {role} LOGIN PASSWORD 'no-connect-pw-1'"
        ))
        .await
        .unwrap();
    });
    let url = crate::common::with_database(
        &crate::common::with_user(&admin, &role, "no-connect-pw-1"),
        &db,
    );
    let r = audit(t.dir.path(), &url);
    assert_db_error(&r, "no-connect-pw-1", &["permission denied", "connect"]);
}

#[test]
fn a_slow_target_shows_progress_instead_of_silence() {
    let t = Target::start("");
    let s = suite(t.dir.path(), &[]);
    // B's first reads of a mention take most of the timeout: the check runs ~12 s.
    let p = Proxy::start(
        &t,
        vec![
            Rule::on(
                b_get("/monitoring/mentions/"),
                Fault::Delay(Duration::from_millis(3000)),
            )
            .times(4),
        ],
    );
    let r = run_via(&t, &p.url, &s, &["--filter", "mention-is-invisible-to-b"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.stderr.contains("checks 0/1 done, 1 in flight"),
        "no progress line on stderr:\n{}",
        r.stderr
    );
}
