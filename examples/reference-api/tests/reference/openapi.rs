//! `openapi.yaml` and the router agree: every operation served is documented and every
//! documented operation is served, tenant-scoped ones marked as such — checked against
//! the router's own list and then over HTTP, where a tenant-scoped operation without a
//! credential must be 401 and a public one must answer without one.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::Value;
use tenantgate_reference_api::api::operations;

use crate::common::*;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document as JSON.
fn document() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("openapi.yaml");
    serde_saphyr::from_str(&text).expect("openapi.yaml is YAML")
}

/// `(METHOD, path, x-tenant-scoped)` of every documented operation.
fn documented(doc: &Value) -> BTreeSet<(String, String, bool)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (key, op) in item.as_object().unwrap() {
            if !METHODS.contains(&key.as_str()) {
                continue;
            }
            let scoped = op["x-tenant-scoped"]
                .as_bool()
                .unwrap_or_else(|| panic!("{key} {path}: no x-tenant-scoped"));
            ops.insert((key.to_uppercase(), path.clone(), scoped));
        }
    }
    ops
}

#[test]
fn every_served_operation_is_documented_and_vice_versa() {
    let doc = document();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let served: BTreeSet<(String, String, bool)> = operations()
        .into_iter()
        .map(|o| (o.method.to_string(), o.path.to_string(), o.tenant_scoped))
        .collect();
    let documented = documented(&doc);
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "served but not documented (or marked differently): {missing:?}\n\
         documented but not served (or marked differently): {extra:?}"
    );
    assert_eq!(
        served.len(),
        operations().len(),
        "an operation registered twice"
    );

    // Tenant-scoped operations require a credential; public ones explicitly none. Every
    // path parameter is declared.
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let params: Vec<&str> = path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        for (method, op) in item.as_object().unwrap() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let security = op["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path}: no explicit security requirement"));
            if op["x-tenant-scoped"] == true {
                assert!(!security.is_empty(), "{method} {path}");
                for req in security {
                    for name in req.as_object().unwrap().keys() {
                        assert!(schemes.contains_key(name), "{method} {path}: {name}");
                    }
                }
            } else {
                assert!(security.is_empty(), "{method} {path}");
            }
            let declared = [&item["parameters"], &op["parameters"]]
                .into_iter()
                .filter_map(Value::as_array)
                .flatten()
                .map(|p| resolve(&doc, p)["name"].as_str().unwrap().to_string())
                .collect::<Vec<_>>();
            for p in &params {
                assert!(declared.iter().any(|d| d == p), "{method} {path}: {p}");
            }
        }
    }
}

#[test]
fn every_reference_in_the_document_resolves() {
    fn walk(doc: &Value, v: &Value, seen: &mut usize) {
        match v {
            Value::Object(map) => {
                if map.contains_key("$ref") {
                    resolve(doc, v);
                    *seen += 1;
                }
                map.values().for_each(|x| walk(doc, x, seen));
            }
            Value::Array(items) => items.iter().for_each(|x| walk(doc, x, seen)),
            _ => {}
        }
    }
    let doc = document();
    let mut seen = 0;
    walk(&doc, &doc, &mut seen);
    assert!(seen > 50, "{seen} references");
}

/// `value`, or what its `$ref` (a local `#/...` pointer) names.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value["$ref"].as_str() {
        Some(r) => doc
            .pointer(r.strip_prefix('#').expect("a local $ref"))
            .unwrap_or_else(|| panic!("dangling $ref {r}")),
        None => value,
    }
}

#[tokio::test]
async fn every_documented_operation_answers_as_marked() {
    let env = env("openapi_http", "").await;
    let id = "00000000-0000-4000-8000-000000000000";
    for (method, path, scoped) in documented(&document()) {
        let concrete = path.replace("{id}", id).replace("{brand_id}", id);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let r = env.anon(method.clone(), &concrete).await;
        if scoped {
            assert_eq!(
                (r.status, r.raw.as_str()),
                (401, r#"{"error":"unauthorized"}"#),
                "{method} {path}"
            );
        } else {
            // Served (not 404/405) and open: a missing body is 400, a read is 200.
            assert!(matches!(r.status, 200 | 400), "{method} {path}: {r:?}");
        }
    }
    // And something undocumented is not served.
    let r = env.anon(Method::PUT, "/brands").await;
    assert_eq!(r.status, 405);
}
