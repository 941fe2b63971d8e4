//! The benchmark's workload, written three ways for the same target: a tenantgate suite,
//! the equivalent Hurl files, and the request plan of the plain load generator. Checks
//! cycle read / list / write+verify over a few items seeded in org A; every built-in
//! attack is off, so the figures are the cost of the base checks alone.

use std::fmt::Write as _;

/// Items seeded in org A; check `i` uses item `i % SEEDED`.
pub const SEEDED: usize = 8;

/// What check `i` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    Read,
    List,
    Write,
}

/// The shape of check `i`.
pub fn shape(i: usize) -> Shape {
    match i % 3 {
        0 => Shape::Read,
        1 => Shape::List,
        _ => Shape::Write,
    }
}

/// A tenantgate suite of `checks` checks against `base_url`.
pub fn suite(base_url: &str, checks: usize) -> String {
    let mut s = format!(
        r#"version: 1
name: bench-{checks}
target:
  base_url: {base_url}
attacks: {{ tenant_override: false, token_forgery: false, claim_integrity: false, existence_oracle: false, pool_reuse: false }}
orgs:
  provision:
    - name: sign up
      request: {{ method: POST, url: /signup, json: {{ name: "bench-{{{{run_id}}}}-{{{{org}}}}" }} }}
      expect: {{ status: 201 }}
      capture: {{ token: $.token, org_id: $.org_id }}
  auth: {{ header: Authorization, value: "Bearer {{{{token}}}}" }}
  teardown:
    - request: {{ method: DELETE, url: "/orgs/{{{{org_id}}}}" }}
seed:
"#
    );
    for k in 0..SEEDED {
        let _ = writeln!(
            s,
            r#"  - name: item {k}
    request: {{ method: POST, url: /items, json: {{ name: "item-{k}-{{{{run_id}}}}" }} }}
    expect: {{ status: 201 }}
    capture: {{ item_{k}: $.id }}"#
        );
    }
    s.push_str("checks:\n");
    for i in 0..checks {
        let k = i % SEEDED;
        let _ = match shape(i) {
            Shape::Read => writeln!(
                s,
                "  - {{ name: read {i}, read: \"/items/{{{{a.item_{k}}}}}\" }}"
            ),
            Shape::List => writeln!(s, "  - {{ name: list {i}, list: /items }}"),
            Shape::Write => writeln!(
                s,
                "  - name: write {i}\n    write: {{ method: PATCH, url: \"/items/{{{{a.item_{k}}}}}\", json: {{ name: pwned }} }}\n    verify: \"/items/{{{{a.item_{k}}}}}\""
            ),
        };
    }
    s
}

/// Requests tenantgate sends for a suite of `checks` checks to the benchmark's
/// (correct) target, at least: per check read 1 (B), list 1 (B), write 3 (verify, B's
/// write, verify; A's data is read a third time only when the two reads differ); A's
/// control of a read (one per item) and of a list once, which later checks share while
/// it is under a second old and no write has been sent; the never-issued twin of a read
/// and of a write once each, which later checks share while B's answer is the same as
/// it (checks that start before the first control or twin is answered ask their own,
/// and a control is asked again once a second old); plus `setup` (sign-ups, seed,
/// teardown).
pub fn planned_requests(checks: usize, setup: usize) -> u64 {
    let per = |i: usize| match shape(i) {
        Shape::Read | Shape::List => 1 + usize::from(first_control(i)),
        Shape::Write => 3,
    };
    let twins = (0..checks.min(3))
        .filter(|i| shape(*i) != Shape::List)
        .count();
    ((0..checks).map(per).sum::<usize>() + twins + setup) as u64
}

/// Whether check `i` (a read or a list) is the first to send its control as A: the
/// first read of each seeded item, the first list.
pub fn first_control(i: usize) -> bool {
    match shape(i) {
        Shape::Read => i < 3 * SEEDED,
        Shape::List => i == 1,
        Shape::Write => false,
    }
}

/// A suite of `checks` checks against the reference API (`examples/reference-api`):
/// sign-up, one brand seeded in A, checks cycling read / list / write+verify on it.
pub fn reference_suite(base_url: &str, checks: usize) -> String {
    let mut s = format!(
        r#"version: 1
name: bench-reference-{checks}
target:
  base_url: {base_url}
attacks: {{ tenant_override: false, token_forgery: false, claim_integrity: false, existence_oracle: false, pool_reuse: false }}
orgs:
  provision:
    - name: sign up
      request:
        method: POST
        url: /auth/signup
        json: {{ org_name: "tg-{{{{run_id}}}}-{{{{org}}}}", email: "{{{{org}}}}-{{{{run_id}}}}@example.test", password: "correct-horse-battery-staple" }}
      expect: {{ status: 201 }}
      capture: {{ token: $.access_token, org_id: $.org.id }}
  auth: {{ header: Authorization, value: "Bearer {{{{token}}}}" }}
  teardown:
    - request: {{ method: DELETE, url: "/orgs/{{{{org_id}}}}" }}
seed:
  - name: create brand
    request: {{ method: POST, url: /brands, json: {{ name: "Acme {{{{run_id}}}}" }} }}
    expect: {{ status: 201 }}
    capture: {{ brand_id: $.id, brand_name: $.name }}
checks:
"#
    );
    for i in 0..checks {
        let _ = match shape(i) {
            Shape::Read => writeln!(
                s,
                "  - {{ name: read {i}, read: \"/brands/{{{{a.brand_id}}}}\" }}"
            ),
            Shape::List => writeln!(s, "  - {{ name: list {i}, list: /brands }}"),
            Shape::Write => writeln!(
                s,
                "  - name: write {i}\n    write: {{ method: PATCH, url: \"/brands/{{{{a.brand_id}}}}\", json: {{ name: pwned }} }}\n    verify: \"/brands/{{{{a.brand_id}}}}\""
            ),
        };
    }
    s
}

/// `files` Hurl files that together hold `checks` checks, one request each (what a
/// hand-written Hurl test of the same isolation would send: B's request and its
/// expected answer). Each file signs up its own two orgs and seeds one item, because
/// Hurl's `--parallel` runs files, not entries, in parallel.
pub fn hurl_files(checks: usize, files: usize) -> Vec<String> {
    let files = files.max(1);
    (0..files)
        .map(|f| {
            let mut s = String::from(
                "POST {{base}}/signup\n{\"name\": \"hurl-a\"}\nHTTP 201\n[Captures]\na_token: jsonpath \"$.token\"\n\n\
                 POST {{base}}/signup\n{\"name\": \"hurl-b\"}\nHTTP 201\n[Captures]\nb_token: jsonpath \"$.token\"\n\n\
                 POST {{base}}/items\nAuthorization: Bearer {{a_token}}\n{\"name\": \"hurl-item\"}\nHTTP 201\n[Captures]\nitem: jsonpath \"$.id\"\n\n",
            );
            for i in (f..checks).step_by(files) {
                s.push_str(match shape(i) {
                    Shape::Read => {
                        "GET {{base}}/items/{{item}}\nAuthorization: Bearer {{b_token}}\nHTTP 404\n\n"
                    }
                    Shape::List => {
                        "GET {{base}}/items\nAuthorization: Bearer {{b_token}}\nHTTP 200\n[Asserts]\nbody not contains \"hurl-item\"\n\n"
                    }
                    Shape::Write => {
                        "PATCH {{base}}/items/{{item}}\nAuthorization: Bearer {{b_token}}\n{\"name\": \"pwned\"}\nHTTP 404\n\n"
                    }
                });
            }
            s
        })
        .collect()
}
